"""Archives of the served set: which bundle answers each ticker, packed with every bundle for TorchServe.

One registered model (`lstm`) answers every ticker, so each archive holds the whole served set: the
handler, its request modules and `bundle.py` (`settings.shipped_code`), `portfolio.json` (ticker -> bundle,
the exchanges' trading sessions) and one folder per bundle under `bundles/` (both names: `bundle.py`). A
deployment writes the next version of the set with one ticker's bundle changed (`ServedSet.with_bundle`,
`with_member`, `without`); the other bundles are copied byte for byte from the archive serving now, so
their answers cannot change. A bundle keeps the version it was first deployed with (its `model_version`);
the archive's version is the set's.

`make archive` writes `lstm.mar` from the newest runs of the named tickers. Archiving records nothing
in MLflow: a model version is registered when one is deployed (`scripts/admin.py retrain`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from stockcast.errors import StockcastError
from stockcast.runtime.bundle import BUNDLES, METADATA, PORTFOLIO, BundleMeta, deployed
from stockcast.serving.sessions import trading_calendar
from stockcast.serving.settings import HANDLER, MODEL_CONFIG, MODEL_NAME, RUNTIME
from stockcast.serving.versions import next_version
from stockcast.tracking import existing_store, find_run

# The archive's `stockcast/__init__.py`: the worker imports `stockcast.runtime` and nothing else of the package.
SHIPPED_PARENT = '"""stockcast, as far as an archive ships it: the runtime package `stockcast.runtime`."""\n'


@dataclass(frozen=True)
class ServedSet:
    """Which bundle answers each ticker, each bundle's metadata, and where its files are."""

    members: dict[str, str] = field(default_factory=dict)  # ticker -> bundle name
    bundles: dict[str, BundleMeta] = field(default_factory=dict)  # bundle name -> its metadata
    sources: dict[str, Path] = field(default_factory=dict)  # bundle name -> an archive holding it, or its folder
    any_ticker: str | None = None  # the global bundle answering tickers no member names (`serve_any_ticker`)

    @classmethod
    def read(cls, archive: Path) -> ServedSet:
        """The set an archive serves."""
        try:
            with zipfile.ZipFile(archive) as mar:
                manifest = json.loads(mar.read(PORTFOLIO))
                members, any_ticker = manifest["members"], manifest.get("any_ticker")
                names = {*members.values(), any_ticker} - {None}
                bundles = {name: BundleMeta.from_dict(json.loads(mar.read(f"{BUNDLES}/{name}/{METADATA}")))
                           for name in names}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
            raise StockcastError(f"cannot read the served set of {archive} ({err}): an archive from before "
                                 "portfolios? archive it again (make archive)") from None
        return cls(members, bundles, {name: archive for name in bundles}, any_ticker)

    def bundle_of(self, symbol: str) -> BundleMeta:
        """The metadata of the bundle answering `symbol`."""
        return self.bundles[self.members[symbol]]

    def with_runs(self, tracking_uri: str, run_ids: Sequence[str], version: int, work: Path) -> ServedSet:
        """The set with these runs' bundles (downloaded into `work`, which must outlive the set's `write`),
        deployed as `version`, in order (`with_bundle`)."""
        served = self
        for number, run_id in enumerate(run_ids):
            served = served.with_bundle(download_bundle(tracking_uri, run_id, work / str(number)), version)
        return served

    def with_bundle(self, folder: Path, version: int) -> ServedSet:
        """The set with a newly trained bundle (a run's, downloaded to `folder`), deployed as `version`: it
        answers its ticker, or a pooled model each of its tickers that has no model of its own; a global one
        (metadata `any_ticker`) also every ticker no member names."""
        meta = deployed(folder, version)
        name = f"{re.sub(r'[^A-Za-z0-9.+-]', '_', meta.symbol)}-v{version}"
        members = dict(self.members)
        for symbol in meta.stocks:
            current = members.get(symbol)
            if not meta.pooled or current is None or self.bundles[current].pooled:
                members[symbol] = name
        any_ticker = name if meta.any_ticker else self.any_ticker
        return ServedSet(members, {**self.bundles, name: meta}, {**self.sources, name: folder}, any_ticker)._pruned()

    def with_member(self, symbol: str, other: ServedSet) -> ServedSet:
        """The set with `symbol` answered by the bundle answering it in `other` (a rollback of one ticker)."""
        name = other.members[symbol]
        return replace(self, members={**self.members, symbol: name},
                       bundles={**self.bundles, name: other.bundles[name]},
                       sources={**self.sources, name: other.sources[name]})._pruned()

    def without(self, symbol: str) -> ServedSet:
        members = {key: value for key, value in self.members.items() if key != symbol}
        return replace(self, members=members)._pruned()

    def changed(self, other: ServedSet) -> list[str]:
        """The tickers whose answering bundle differs between the two sets (added and removed ones too)."""
        return sorted(symbol for symbol in set(self.members) | set(other.members)
                      if self.members.get(symbol) != other.members.get(symbol))

    def _pruned(self) -> ServedSet:
        """Without bundles that answer no ticker."""
        used = {*self.members.values(), self.any_ticker} - {None}
        return ServedSet(dict(sorted(self.members.items())), {k: v for k, v in self.bundles.items() if k in used},
                         {k: v for k, v in self.sources.items() if k in used}, self.any_ticker)


def write(served: ServedSet, model_store: Path, version: int, file_name: str) -> Path:
    """Pack the set as `<model_store>/<file_name>`, TorchServe version `version` (replaced atomically)."""
    if not served.members:
        raise StockcastError("the served set would be empty: at least one ticker must stay served")
    model_store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=model_store, prefix=".archive-") as work:
        payload = Path(work, "payload")
        for name, source in served.sources.items():
            target = payload / BUNDLES / name
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                _extract(source, f"{BUNDLES}/{name}/", target)
        first_day = min(meta.first_date for meta in served.bundles.values())
        manifest = {"version": str(version), "members": served.members, "any_ticker": served.any_ticker,
                    "calendar": trading_calendar(list(served.members), first_day)}
        (payload / PORTFOLIO).write_text(json.dumps(manifest, indent=1))
        _package(payload, version, Path(work))
        target = model_store / file_name
        os.replace(Path(work) / f"{MODEL_NAME}.mar", target)
    return target


def _extract(archive: Path, prefix: str, target: Path) -> None:
    with zipfile.ZipFile(archive) as mar:
        for member in mar.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                path = target / member.removeprefix(prefix)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(mar.read(member))


def extract_bundle(archive: Path, name: str, folder: Path) -> Path:
    """Bundle `name`'s files from `archive` into `folder`, as `load_bundle` reads them: the track record
    recomputes what an archived net served."""
    _extract(archive, f"{BUNDLES}/{name}/", folder)
    return folder


def download_bundle(tracking_uri: str, run_id: str, folder: Path) -> Path:
    """A run's serving bundle, downloaded into `folder`."""
    client = existing_store(tracking_uri)
    return Path(client.download_artifacts(run_id, client.get_run(run_id).data.tags["bundle"], str(folder)))


@dataclass(frozen=True)
class Archived:
    """What `make archive` produced."""

    path: Path
    version: int
    run_ids: list[str]
    served: ServedSet


def archive(tracking_uri: str, experiment: str, model_store: Path, symbols: Sequence[str] = (),
            run_ids: Sequence[str] = (), version: int | None = None,
            file_name: str = f"{MODEL_NAME}.mar") -> Archived:
    """The newest finished run of each of `symbols`, and the runs `run_ids`, as one served set in
    `<model_store>/<file_name>`, as `version` (default: the next after the store's archives)."""
    client = existing_store(tracking_uri)
    runs = [find_run(client, experiment, symbol) for symbol in symbols] + [find_run(client, experiment, "", run_id)
                                                                          for run_id in run_ids]
    if not runs:
        raise StockcastError("nothing to archive: name a ticker or a run")
    version = version or next_version(model_store)
    with tempfile.TemporaryDirectory(prefix="stockcast-bundles-") as work:
        served = ServedSet().with_runs(tracking_uri, [run.info.run_id for run in runs], version, Path(work))
        path = write(served, model_store, version, file_name)
    return Archived(path, version, [run.info.run_id for run in runs], served)


def _package(payload: Path, version: int, export_path: Path) -> None:
    """torch-model-archiver, in process: the payload folder's contents land at the archive's root, with the
    runtime package as `stockcast/runtime/` (the handler also at the root, where TorchServe imports it)."""
    from model_archiver.model_archiver_config import ModelArchiverConfig
    from model_archiver.model_archiver_error import ModelArchiverError
    from model_archiver.model_packaging import generate_model_archive

    package = payload / "stockcast"
    shutil.copytree(RUNTIME, package / RUNTIME.name, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__init__.py").write_text(SHIPPED_PARENT)
    config = ModelArchiverConfig(model_name=MODEL_NAME, handler=str(HANDLER), version=str(version),
                                 extra_files=str(payload),
                                 config_file=str(MODEL_CONFIG), export_path=str(export_path), force=True)
    try:
        generate_model_archive(config)
    except ModelArchiverError as err:
        raise StockcastError(f"torch-model-archiver failed: {err}") from None
