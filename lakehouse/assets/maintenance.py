"""Table maintenance as assets: ``maintenance/silver`` and ``maintenance/gold``, one step per layer,
downstream of the tables they maintain, each materialization saying per table what it did.

The work is the table store's (io/table_maintenance.py); each table's policy is its contract's.
The maintenance job runs them daily (automation/schedules.py) and ``lakehouse maintain`` from the
terminal, on the same function (``maintain_tables``).
"""


import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import dagster as dg

from lakehouse.assets.transformation import TRANSIENT_RETRY_POLICY
from lakehouse.contracts.model import Layer, TableContract
from lakehouse.contracts.tables import ALL_TABLES, DATA_PLATFORM, DATABASE_TABLES
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_maintenance import MaintenanceReport
from lakehouse.io.table_store import CommitStamp, TableStore
from lakehouse.resources.dbt import DbtBuildResource, dbt_models, load_manifest

MAINTENANCE_GROUP = "maintenance"
MAINTAINED_LAYERS = (Layer.silver, Layer.gold)  # Bronze's files are the record of what landed (contracts/maintenance.py)


def maintenance_key(layer: Layer) -> dg.AssetKey:
    return dg.AssetKey([MAINTENANCE_GROUP, layer.value])


def maintain_tables(
    store: TableStore, contracts: Iterable[TableContract], stamp: CommitStamp, *, dry_run: bool = False,
    now: dt.datetime | None = None, on_report: Callable[[MaintenanceReport], None] | None = None,
) -> list[MaintenanceReport]:
    """Maintain each table under its own policy; ``on_report`` hears of each as it is done."""
    reports = []
    for contract in contracts:
        for report in store.maintain(contract, stamp, dry_run=dry_run, now=now):
            reports.append(report)
            if on_report is not None:
                on_report(report)
    return reports


def reports_metadata(reports: Sequence[MaintenanceReport]) -> dict:
    """Totals as numbers (Dagster plots them over materializations) and a table per table."""
    done = [r for r in reports if r.skipped is None]
    total = {
        "data_files_before": sum(r.data_files_before for r in done),
        "data_files_after": sum(r.data_files_after for r in done),
        "data_bytes_before": sum(r.data_bytes_before for r in done),
        "data_bytes_after": sum(r.data_bytes_after for r in done),
        "files_compacted": sum(r.files_compacted for r in done),
        "snapshots_expired": sum(r.snapshots_expired for r in done),
        "orphan_files_deleted": sum(r.orphan_files_deleted for r in done),
        "bytes_reclaimed": sum(r.bytes_reclaimed for r in done),
        "duration_seconds": round(sum(r.seconds for r in done), 3),
    }
    lines = ["| table | files before → after | bytes before → after | snapshots expired | orphans deleted | bytes reclaimed | actions |",
             "|---|---|---|---|---|---|---|"]
    for r in reports:
        if r.skipped is not None:
            lines.append(f"| {r.table} | | | | | | skipped: {r.skipped} |")
            continue
        actions = "; ".join(r.actions) or "nothing to do"
        lines.append(
            f"| {r.table} | {r.data_files_before} → {r.data_files_after} | {r.data_bytes_before} → {r.data_bytes_after} | "
            f"{r.snapshots_expired} | {r.orphan_files_deleted} | {r.bytes_reclaimed} | {actions} |"
        )
    changed = any(r.changed for r in done)
    return {**total, "changed": changed, "tables": dg.MetadataValue.md("\n".join(lines))}


def _layer_tables(layer: Layer, dbt_tables: Sequence[TableContract], database_sources: bool = False) -> list[TableContract]:
    return [c for c in (*ALL_TABLES, *(DATABASE_TABLES if database_sources else ()), *dbt_tables) if c.layer is layer]


def maintenance_assets(dbt_target: str = "duckdb", database_sources: bool = False) -> list[dg.AssetsDefinition]:
    dbt_tables = [m.contract for m in dbt_models(load_manifest(dbt_target))]
    return [_maintenance_asset(layer, _layer_tables(layer, dbt_tables, database_sources), database_sources) for layer in MAINTAINED_LAYERS]


def _maintenance_asset(layer: Layer, tables: Sequence[TableContract], database_sources: bool = False) -> dg.AssetsDefinition:
    @dg.asset(
        key=maintenance_key(layer),
        group_name=MAINTENANCE_GROUP,
        owners=list(DATA_PLATFORM),
        deps=[c.asset_key for c in tables],
        retry_policy=TRANSIENT_RETRY_POLICY,
        kinds={"iceberg"},
        description=f"Compacts, expires and cleans the {layer.value} tables under each contract's maintenance policy.",
    )
    def maintain_layer(context: dg.AssetExecutionContext, store: TableStoreResource, dbt: DbtBuildResource) -> dg.MaterializeResult:
        contracts = _layer_tables(layer, [m.contract for m in dbt.models()], database_sources)
        stamp = CommitStamp(run_id=context.run.run_id, asset_key=maintenance_key(layer).to_user_string())
        reports = maintain_tables(
            store.get_store(), contracts, stamp,
            on_report=lambda r: context.log.info(f"{r.table}: {'; '.join(r.actions) or r.skipped or 'nothing to do'}"),
        )
        return dg.MaterializeResult(metadata=reports_metadata(reports))

    return maintain_layer
