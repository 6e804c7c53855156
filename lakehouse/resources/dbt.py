"""The dbt project as a Dagster resource: which target runs the models, and how they are published.

On target ``duckdb`` (dbt-duckdb, the default locally) dbt builds the models in a scratch DuckDB database of the
run and the dbt asset publishes each one through the table store (``publish = "table_store"``): the
same overwrite, write-audit-publish and commit stamps (run, asset, code version, Silver lineage) as
every Python-built Gold table, and one write path for both stores and both catalogs. On AWS (target
``athena``) Athena itself writes the Iceberg tables into the Gold Glue database (``in_place``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.metadata
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject
from packaging import version

from lakehouse.contracts.dbt_models import dbt_contracts, model_nodes
from lakehouse.contracts.model import Layer, TableContract
from lakehouse.contracts.tables import contract_for
from lakehouse.io.table_store import TableStore
from lakehouse.io.watermarks import BuiltFrom, is_stale, source_changes

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"
TARGETS = ("duckdb", "athena")


def dbt_project(target: str) -> DbtProject:
    """The project for ``target``; its manifest is kept under target/<target>/ (one per target:
    sources and schemas render differently)."""
    if target not in TARGETS:
        raise ValueError(f"unknown dbt target {target!r}; one of {', '.join(TARGETS)}")
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target=target, target_path=Path("target") / target)


def _sources_newest(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


def prepared_manifest_path(target: str) -> Path:
    """The manifest of ``target``, parsed now if missing or older than the project's files. A built
    image has it already (``dagster-dbt project prepare-and-package``, deploy/Dockerfile); a source
    checkout parses on first use, one process at a time."""
    project = dbt_project(target)
    manifest = project.manifest_path
    if manifest.exists() and manifest.stat().st_mtime >= _sources_newest(project.project_dir):
        return manifest
    target_dir = project.project_dir / project.target_path
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent processes (a code server, test workers) parse once
        if not (manifest.exists() and manifest.stat().st_mtime >= _sources_newest(project.project_dir)):
            _cli(target).cli(["parse", "--quiet"], target_path=target_dir).wait()
    return manifest


def dbt_executable() -> str:
    """dbt of this Python environment (its scripts folder need not be on PATH: a venv's python run
    by path, the image's entrypoint), else the first on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


class _InstalledDbtCli(DbtCliResource):
    """DbtCliResource for the dbt-core installed beside this process, without two costs of each
    ``cli()`` call that buy the lakehouse nothing (measured 4.9 s and 4.5 s per build on a loaded
    2-core machine): running ``dbt --version`` (its version is the installed dbt-core's), and
    loading the adapter with all its macros in this process, a handle used only by
    ``fetch_row_counts``/``fetch_column_metadata`` (the table store reports rows and columns)."""

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


@functools.cache
def _cli(target: str) -> DbtCliResource:
    return _InstalledDbtCli(project_dir=dbt_project(target), target=target, dbt_executable=dbt_executable())


@functools.cache
def _manifest(path: str, mtime: float) -> Mapping[str, Any]:
    return json.loads(Path(path).read_text())


def load_manifest(target: str) -> Mapping[str, Any]:
    path = prepared_manifest_path(target)
    return _manifest(str(path), path.stat().st_mtime)


@dataclass(frozen=True)
class DbtModel:
    """A dbt model as the lakehouse sees it: its table, the Silver tables it is built from (through
    other models too) and its code version (dbt's checksum of its SQL)."""

    contract: TableContract
    silver_sources: tuple[TableContract, ...]
    code_version: str
    unique_id: str
    model_parents: tuple[str, ...] = ()  # the models it is built on (unique ids)


CODE_VERSION_PROPERTY = "lakehouse.dbt-code-version"  # on tables dbt's target engine wrote in place


def model_stale(store: TableStore, model: DbtModel) -> bool:
    """Whether ``model``'s table needs a build: it does not exist, another SQL built it, or a
    Silver source it is built from changed after (the same lineage as the Python Gold tables').
    A model whose Silver sources do not exist yet has nothing to be built from: not stale."""
    if not all(store.info(source).exists for source in model.silver_sources):
        return False
    info = store.info(model.contract)
    # The table store stamps the code version on the snapshot; a table the target's engine wrote
    # (Athena) carries it as a property the asset sets after the build.
    version = info.summary.get("dagster.code-version") or info.properties.get(CODE_VERSION_PROPERTY)
    if not info.exists or version != model.code_version:
        return True
    for source in model.silver_sources:
        if not BuiltFrom.recorded(info.properties, source.qualified_name):
            return True  # never built from it (or by an older version): build from all of it
        built = BuiltFrom.parse(info.properties, source.qualified_name)
        if is_stale(source_changes(store, source, built.through), built):
            return True
    return False


def dbt_models(manifest: Mapping[str, Any]) -> list[DbtModel]:
    contracts = {c.name: c for c in dbt_contracts(manifest)}
    parents = manifest["parent_map"]

    @functools.cache
    def silver_of(unique_id: str) -> frozenset[TableContract]:
        found: set[TableContract] = set()
        for parent in parents.get(unique_id, []):
            if parent.startswith("source."):
                source = manifest["sources"][parent]
                if source["source_name"] == Layer.silver.value:
                    found.add(contract_for(source["source_name"], source["name"]))
            elif parent.startswith("model."):
                found |= silver_of(parent)
        return frozenset(found)

    found = [
        DbtModel(
            contracts[n["name"]],
            tuple(sorted(silver_of(n["unique_id"]), key=lambda c: c.name)),
            n["checksum"]["checksum"],
            n["unique_id"],
            tuple(p for p in parents.get(n["unique_id"], []) if p.startswith("model.")),
        )
        for n in model_nodes(manifest)
    ]
    return _parents_first(found)


def _parents_first(models: list[DbtModel]) -> list[DbtModel]:
    """``models`` ordered so each comes after the models it is built on (Dagster wants a
    multi-asset's outputs in that order), otherwise by name."""
    ordered: list[DbtModel] = []
    placed: set[str] = set()
    pending = list(models)
    while pending:  # bounded: every pass places at least one model of an acyclic project
        ready = [m for m in pending if placed.issuperset(p for p in m.model_parents if any(x.unique_id == p for x in models))]
        if not ready:
            raise ValueError(f"dbt models {', '.join(m.contract.name for m in pending)} depend on each other in a cycle")
        ordered += ready
        placed |= {m.unique_id for m in ready}
        pending = [m for m in pending if m.unique_id not in placed]
    return ordered


def stale_models(store: TableStore, models: Sequence[DbtModel]) -> list[DbtModel]:
    """The models to build: the stale ones (model_stale) and every model built on one of them."""
    stale = {m.unique_id for m in models if model_stale(store, m)}
    grew = True
    while grew:  # bounded: each pass adds a model or stops
        added = {m.unique_id for m in models if m.unique_id not in stale and stale.intersection(m.model_parents)}
        stale |= added
        grew = bool(added)
    return [m for m in models if m.unique_id in stale]


WORK_DIR_VARIABLE = "LAKEHOUSE_DBT_WORK_DIR"
SCRATCH_DATABASE = "scratch.duckdb"


def _remove_scratch(folder: Path) -> None:
    for path in (folder / SCRATCH_DATABASE, folder / f"{SCRATCH_DATABASE}.wal"):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ while the dbt process starts. DbtCliResource gives dbt a copy of
    this process's environment and takes no environment of its own; the runs execute one step at a
    time in their process (definitions.py: in_process_executor), so no other step sees them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class DbtBuildResource(dg.ConfigurableResource):
    """Runs the lakehouse's dbt project (lakehouse/dbt) on ``target``."""

    target: str = "duckdb"
    # table_store: dbt builds in a scratch DuckDB, the asset publishes through the table store;
    # in_place: the target's engine writes the tables itself (Athena's Iceberg tables).
    publish: Literal["table_store", "in_place"] = "table_store"
    # Passed to the dbt process (profiles.yml and sources.yml read them): schemas, staging paths.
    environment: dict[str, str] = {}
    # Where dbt keeps its state between runs (its target folder with the partial-parse state, the
    # duckdb target's scratch database): in the lakehouse home, so one home builds one at a time.
    work_dir: str | None = None

    @contextlib.contextmanager
    def build_folder(self) -> Iterator[Path]:
        """The work folder, held for one build at a time (another waits), its scratch database
        removed before and after."""
        if self.work_dir is None:
            raise ValueError("DbtBuildResource.work_dir is not set: the folder dbt builds in (environment.py sets $LAKEHOUSE_HOME/dbt-build)")
        folder = Path(self.work_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _remove_scratch(folder)
            try:
                yield folder
            finally:
                _remove_scratch(folder)

    @property
    def project(self) -> DbtProject:
        return dbt_project(self.target)

    def manifest(self) -> Mapping[str, Any]:
        return load_manifest(self.target)

    def models(self) -> list[DbtModel]:
        return dbt_models(self.manifest())

    def cli(self, args: list[str], *, context=None, extra_environment: Mapping[str, str] = {}, **kwargs) -> DbtCliInvocation:
        dbt = _cli(self.target)
        # dagster-dbt copies dbt's partial-parse state from DBT_TARGET_PATH into the invocation's own
        # target path: the project's prepared one, so dbt does not parse the project again.
        prepared = {"DBT_TARGET_PATH": str(self.project.project_dir / self.project.target_path)}
        if self.work_dir:
            prepared[WORK_DIR_VARIABLE] = self.work_dir
        with _environment({**self.environment, **prepared, **extra_environment}):
            return dbt.cli(args, context=context, **kwargs)
