"""The dbt models (lakehouse/dbt) as Gold assets, downstream of the Silver assets they read.

One ``@dbt_assets`` definition: each model is an asset ``gold/<model>``, each dbt test an asset
check (error severity: blocking), each model's code version dbt's checksum of its SQL. The step
runs ``dbt build`` and then publishes every model whose error-severity tests passed; a model with a
failed one is not published (its table stays as it was) and dbt skips what is built on it.
"""


import contextlib
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from lakehouse.assets.transformation import TRANSIENT_RETRY_POLICY, permanent_errors_fail_at_once, table_metadata
from lakehouse.dbt.table_store_plugin import STORE_VARIABLE
from lakehouse.io.glue import catalog_metadata
from lakehouse.io.metadata import info_metadata
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_write import TableWrite, TableWriter, WriteStep
from lakehouse.io.watermarks import built_from_properties
from lakehouse.resources.dbt import (
    CODE_VERSION_PROPERTY,
    SCRATCH_DATABASE,
    TARGETS,
    DbtBuildResource,
    DbtModel,
    dbt_models,
    dbt_project,
    load_manifest,
    stale_models,
)

# For `dagster-dbt project prepare-and-package --file lakehouse/assets/gold/dbt_models.py`: the image
# is built with both targets' manifests, so no process parses the project at start-up.
DUCKDB_PROJECT, ATHENA_PROJECT = (dbt_project(t) for t in TARGETS)


class LakehouseDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the existing Silver assets (source('silver', 'orders') -> silver/orders);
    models are ``<layer>/<model>`` in their layer's group, versioned by dbt's checksum."""

    def __init__(self, models: Mapping[str, DbtModel]):
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self._models = models

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        model = self._models.get(dbt_resource_props["unique_id"])
        return model.contract.asset_key if model else super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        model = self._models.get(dbt_resource_props["unique_id"])
        return model.contract.layer.value if model else super().get_group_name(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        model = self._models.get(dbt_resource_props["unique_id"])
        return list(model.contract.owners) if model else super().get_owners(dbt_resource_props)

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        model = self._models.get(dbt_resource_props["unique_id"])
        return {**super().get_tags(dbt_resource_props), **(model.contract.catalog_tags if model else {})}

    def get_code_version(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props.get("checksum", {}).get("checksum")

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        model = self._models.get(dbt_resource_props["unique_id"])
        extra = table_metadata(model.contract, model.code_version) if model else {}
        return {**super().get_metadata(dbt_resource_props), **extra}


def dbt_model_assets(target: str = "duckdb") -> dg.AssetsDefinition:
    """The dbt project's models on ``target`` (its manifest is parsed first if it is stale)."""
    manifest = load_manifest(target)
    models = {m.unique_id: m for m in dbt_models(manifest)}
    translator = LakehouseDbtTranslator(models)

    @dbt_assets(
        manifest=manifest,
        project=dbt_project(target),
        dagster_dbt_translator=translator,
        name="dbt_models",
        retry_policy=TRANSIENT_RETRY_POLICY,
        required_resource_keys={"dbt", "table_writer"},
    )
    def _dbt_models(context: dg.AssetExecutionContext):
        with permanent_errors_fail_at_once():
            yield from build_models(context, context.resources.dbt, context.resources.table_writer, list(models.values()))

    return _dbt_models


def build_models(context: dg.AssetExecutionContext, dbt: DbtBuildResource, writer: TableWriter, models: list[DbtModel]) -> Iterator:
    selected = [m for m in models if m.contract.asset_key in context.selected_asset_keys]
    store = writer.store.get_store()
    stale = {m.unique_id for m in stale_models(store, models)}
    if not any(m.unique_id in stale for m in selected):
        for m in selected:  # nothing changed since the tables were built: dbt is not run
            context.log.info(f"{m.contract.qualified_name}: its Silver sources and SQL are unchanged since it was built")
            report = writer.write(m.contract, None, _step(context, m))
            yield dg.Output(None, output_name=m.contract.asset_key.to_python_identifier(), metadata=report.metadata)
        return
    # Read before dbt reads the sources: a change made meanwhile is only built again, never missed.
    lineage = {m.unique_id: built_from_properties(store.info(m.contract).properties, store, m.silver_sources, None) for m in selected}
    if dbt.publish == "in_place":
        yield from _build_in_place(context, dbt, store, selected, lineage)
        return
    with dbt.build_folder() as folder:
        database = folder / SCRATCH_DATABASE
        _load_unselected_parents(dbt.manifest(), store, models, selected, database)
        invocation = dbt.cli(
            ["build"], context=context, raise_on_error=False, target_path=folder / "target",
            extra_environment={STORE_VARIABLE: _arrow_reader(writer.store).model_dump_json()},
        )
        built: dict[str, dg.Output] = {}
        checks: list[dg.AssetCheckResult] = []
        for event in _quiet(invocation.stream(), context.log):
            if isinstance(event, dg.Output):
                built[event.output_name] = event
            elif isinstance(event, dg.AssetCheckResult):
                checks.append(event)
            else:
                yield event
        refused = {c.asset_key for c in checks if not c.passed and c.severity is dg.AssetCheckSeverity.ERROR}
        with duckdb.connect(str(database), read_only=True) if built else contextlib.nullcontext() as connection:
            by_output = {m.contract.asset_key.to_python_identifier(): m for m in selected}
            for output in built.values():  # in dbt's order: a model after those it is built on
                m = by_output[output.output_name]
                if m.contract.asset_key in refused:
                    failed = sorted(c.check_name for c in checks if c.asset_key == m.contract.asset_key and not c.passed)
                    context.log.error(f"{m.contract.qualified_name}: not published: dbt test(s) {', '.join(failed)} failed; the table is unchanged")
                    continue
                rows = connection.sql(f'select * from "{m.contract.layer.value}"."{m.contract.name}"').to_arrow_table()
                report = writer.write(m.contract, TableWrite(rows, table_properties=lineage[m.unique_id]), _step(context, m), context.log)
                yield dg.Output(None, output_name=output.output_name, metadata={**output.metadata, **report.metadata})
        yield from checks
        failures = _failed_nodes(invocation)
        if failures:
            raise dg.Failure(description="dbt build failed: " + "; ".join(failures))


def _arrow_reader(store: TableStoreResource) -> TableStoreResource:
    """The same catalog and tables, read through pyiceberg and Arrow whichever engine writes: the
    dbt process then starts no JVM."""
    return TableStoreResource(
        catalog_name=store.catalog_name, catalog_properties=store.catalog_properties, locations=store.locations, namespaces=store.namespaces
    )


def _step(context: dg.AssetExecutionContext, m: DbtModel) -> WriteStep:
    return WriteStep(run_id=context.run.run_id, asset_key=m.contract.asset_key.to_user_string(), code_version=m.code_version)


def _load_unselected_parents(manifest: Mapping[str, Any], store, models: list[DbtModel], selected: list[DbtModel], database: Path) -> None:
    """Models a selected model is built on but that this run does not build are read from their
    published tables into the scratch database (dbt finds them where it would have built them)."""
    by_id = {m.unique_id: m for m in models}
    chosen = {m.unique_id for m in selected}
    needed = {p for m in selected for p in manifest["parent_map"].get(m.unique_id, []) if p in by_id and p not in chosen}
    if not needed:
        return
    with duckdb.connect(str(database)) as connection:
        for unique_id in sorted(needed):
            contract = by_id[unique_id].contract
            connection.register("published_rows", store.read(contract))
            connection.execute(f'create schema if not exists "{contract.layer.value}"')
            connection.execute(f'create or replace table "{contract.layer.value}"."{contract.name}" as select * from published_rows')
            connection.unregister("published_rows")


def _build_in_place(context: dg.AssetExecutionContext, dbt: DbtBuildResource, store, selected: list[DbtModel], lineage) -> Iterator:
    """The target's engine wrote the tables (Athena: Iceberg tables in the Gold Glue database):
    dbt's events as they are, with each table as the catalog now has it."""
    with dbt.build_folder() as folder:
        invocation = dbt.cli(["build"], context=context, raise_on_error=False, target_path=folder / "target")
        yield from _in_place_events(invocation, store, selected, context.log, lineage)


def _in_place_events(invocation, store, selected: list[DbtModel], log, lineage: dict[str, dict[str, str]]) -> Iterator:
    """dbt's events; each model it built records the Silver lineage read before the build, so it is
    built again only when its sources change (model_stale), as a model the table store publishes."""
    names = {m.contract.asset_key.to_python_identifier(): m for m in selected}
    for event in _quiet(invocation.stream(), log):
        if isinstance(event, dg.Output) and event.output_name in names:
            model = names[event.output_name]
            contract = model.contract
            store.set_table_properties(contract, {**lineage.get(model.unique_id, {}), CODE_VERSION_PROPERTY: model.code_version})
            extra = {**info_metadata(contract, store.info(contract)), **catalog_metadata(store, contract)}
            event = dg.Output(None, output_name=event.output_name, metadata={**event.metadata, **extra})
        yield event
    failures = _failed_nodes(invocation)
    if failures:
        raise dg.Failure(description="dbt build failed: " + "; ".join(failures))


class _LineLog(io.TextIOBase):
    """A text stream whose lines go to ``log`` (at debug level)."""

    def __init__(self, log):
        self._log, self._partial = log, ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._log.debug(line)
        return len(text)


def _quiet(events: Iterator, log) -> Iterator:
    """``events`` with dbt's log lines (dagster-dbt writes each to stdout) in the step's debug log
    instead: the terminal of `lakehouse refresh` shows its own report, the UI keeps dbt's lines."""
    stream = _LineLog(log)
    iterator = iter(events)
    while True:
        with contextlib.redirect_stdout(stream):
            try:
                event = next(iterator)
            except StopIteration:
                return
        yield event  # outside the redirect: the consumer's own output is its own


def _failed_nodes(invocation) -> list[str]:
    """dbt nodes that errored (not failed tests: those are failed checks), with dbt's message."""
    results = invocation.get_artifact("run_results.json").get("results", [])
    return [f"{r['unique_id']}: {(r.get('message') or '').strip()}" for r in results if r.get("status") == "error"]

