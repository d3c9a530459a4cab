"""The release and watch rooms: imports one way, with no circle; the journal's step kinds as on disk; the
config groups admin.py reads without composing the training config."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from stockcast.config import load_config, train_groups
from stockcast.release.journal import Step
from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "stockcast"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the stockcast modules it imports: every import statement, at module level, in a function or
    under `if TYPE_CHECKING:` alike (`from pkg import mod` names the module `pkg.mod`)."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "stockcast":
                for alias in node.names:
                    edges.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else
                              node.module)
        edges.discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_type_only_imports_included():
    assert cycles(import_graph()) == []


def test_release_never_imports_watch():
    graph = import_graph()
    assert {(module, target) for module, targets in graph.items() if module.startswith("stockcast.release")
            for target in targets if target.startswith("stockcast.watch")} == set()


def test_the_gate_and_the_drift_rules_import_no_torch():
    """scripts/admin.py shows their defaults in --help without importing torch or MLflow."""
    code = ("import sys, stockcast.release.policy, stockcast.watch.drift; "
            "print(sorted({'torch', 'mlflow'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_step_kinds_are_the_strings_journals_on_disk_hold():
    assert [str(step) for step in Step] == ["training", "mlflow_version", "archived", "server_version", "default",
                                            "champion", "committed"]


def test_the_groups_admin_reads_are_the_composed_training_configs():
    groups, composed = train_groups("paths", "logger"), load_config("train")
    assert groups.paths.data_dir == composed.paths.data_dir
    assert groups.logger.tracking_uri == composed.logger.tracking_uri
