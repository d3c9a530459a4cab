"""An import-linter contract type the built-in ones lack: an allow-list. `make lint` states with it that the
runtime package (the archive's code) imports nothing but itself, the standard library and the packages named."""

from __future__ import annotations

import sys

import grimp
from importlinter import Contract, ContractCheck, fields, output


class AllowedImports(Contract):
    """Every module under `source` imports only modules under `source`, the standard library and `allowed`
    (top-level packages), directly; what those import in turn is theirs."""

    type_name = "allowed_imports"
    source = fields.ModuleField()
    allowed = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        source = self.source.name  # type: ignore[attr-defined]
        allowed = {*self.allowed, *sys.stdlib_module_names}  # type: ignore[misc]
        inside = {source} | graph.find_descendants(source)
        found = sorted((importer, imported) for importer in inside
                       for imported in graph.find_modules_directly_imported_by(importer)
                       if imported not in inside and imported.split(".")[0] not in allowed)
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported in check.metadata["found"]:
            output.print_error(f"{importer} imports {imported}", bold=False)
            output.new_line()
