"""The lakehouse IO manager: Dagster's face of the table store for in-process runs."""


import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from lakehouse.contracts.model import Layer, TableContract, WriteMode
from lakehouse.contracts.tables import contract_for
from lakehouse.faults import point
from lakehouse.io.audit_branches import audit_branch_name
from lakehouse.io.glue import catalog_metadata
from lakehouse.io.metadata import info_metadata, write_metadata
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.write_audit import AuditInput, WriteAudit

CODE_VERSION_KEY = "lakehouse/code_version"
# The ``outcome`` metadata of a write that did not publish new data (a write that did has none):
NO_NEW_DATA = "no new data"  # nothing changed (committed false); the table is as it was
REFUSED = "refused"  # a blocking check failed: main unchanged, the audit branch kept


@dataclass(frozen=True)
class TableWrite:
    """An output plus the table properties (watermarks) to commit atomically with it, and the
    record counts of the input it came from (records read, rejected)."""

    data: Any
    table_properties: dict[str, str] = field(default_factory=dict)
    accounting: dict[str, int] = field(default_factory=dict)
    # The input's files with the most rejected records, (file, rejects), most first, or None if
    # they cannot be told: called only when a reject-rate check fails (AuditInput.reject_files).
    reject_files: Callable[[], list[tuple[str, int]] | None] | None = None


def contract_of(asset_key) -> TableContract:
    if len(asset_key.path) != 2:
        raise KeyError(f"asset {asset_key.to_user_string()} is not a lakehouse table (expected <layer>/<table>)")
    return contract_for(*asset_key.path)


class LakehouseIOManager(ConfigurableIOManager):
    """Stores outputs with the table's write mode (append / merge / overwrite) and loads inputs.

    Outputs may be Spark DataFrames or Arrow tables, handed to the store as they are (the Spark
    store writes a DataFrame where it is; the Arrow store collects it). Inputs are loaded as the
    type the consuming asset annotates: a Spark DataFrame, or (default) an Arrow table. A
    partitioned Gold output overwrites only its partition. Every Silver and Gold write is audited
    by ``audit`` (the contracts' checks) before it is published.
    """

    store: ResourceDependency[TableStoreResource]
    audit: ResourceDependency[WriteAudit]
    # Silver and Gold writes go to an audit branch; main moves to it only if no blocking check fails.
    write_audit_publish: bool = True
    # Each write gets a branch of its own named <audit_branch>-<start time>-<run id>-<random>, so
    # concurrent writers never share one (audit_branches.audit_branch_name).
    audit_branch: str = "audit"

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        contract = contract_of(context.asset_key)
        store = self.store.get_store()
        properties: dict[str, str] = {}
        accounting: dict[str, int] = {}
        reject_files = None
        if isinstance(obj, TableWrite):
            obj, properties, accounting, reject_files = obj.data, obj.table_properties, obj.accounting, obj.reject_files
        iceberg = contract.layer is not Layer.bronze
        before = store.info(contract)
        if obj is None:  # nothing new to write: report the table as it stands
            if iceberg:
                empty = contract.arrow_schema.empty_table()
                audit = self._audit_input(store, contract, empty, before.row_count, before.row_count, None, {})
                self.audit.audit(context.run_id, context.asset_key, contract, audit, wrote=False)
            context.log.info(f"{contract.qualified_name}: {NO_NEW_DATA}, the table is unchanged")
            context.add_output_metadata(
                {**info_metadata(contract, before), **catalog_metadata(store, contract), "committed": False, "outcome": NO_NEW_DATA}
            )
            return
        audited = self.write_audit_publish and iceberg
        asset = context.asset_key.to_user_string()
        branch = audit_branch_name(self.audit_branch, context.run_id) if audited else None
        base = store.start_audit(contract, branch) if audited else None
        if audited and contract.layer is Layer.silver:
            point("silver.start_audit", asset)
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        stamp = CommitStamp(
            run_id=context.run_id,
            asset_key=asset,
            partition_key=(keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]}") if keys else None,
            code_version=(context.definition_metadata or {}).get(CODE_VERSION_KEY),
            # With an audit, watermarks are set when main is published, never before.
            table_properties={} if audited else properties,
        )
        result = store.write(contract, obj, stamp, _partition_filter(contract, keys), branch=branch)
        metadata = write_metadata(contract, result)
        metadata.update(catalog_metadata(store, contract))
        metadata.update(_accounting_metadata(result, accounting))
        blocking: list[str] = []
        if iceberg:
            written = result.written_rows if result.written_rows is not None else contract.arrow_schema.empty_table()
            audit = self._audit_input(store, contract, written, before.row_count, result.row_count, branch, accounting, reject_files)
            blocking = self.audit.audit(context.run_id, context.asset_key, contract, audit, wrote=result.committed)
            if audited:
                metadata["audit_branch"] = branch
                metadata["published"] = not blocking
                if blocking:
                    # main stays where it was; the branch keeps the rejected snapshot for inspection
                    context.log.error(
                        f"{contract.qualified_name}: {REFUSED}: blocking check(s) {', '.join(blocking)} failed; main unchanged, "
                        f"branch {branch!r} kept for inspection"
                    )
                    metadata.update(
                        outcome=REFUSED, committed=False, blocking_failures=blocking, audit_snapshot_id=metadata.pop("snapshot_id", None)
                    )
                    if before.snapshot_id is not None:
                        metadata["snapshot_id"] = str(before.snapshot_id)
                    metadata["dagster/row_count"] = before.row_count
                else:
                    layer = contract.layer.value
                    point(f"{layer}.before_publish", asset)
                    # Main moves only to the snapshot this write produced, and only from the base it
                    # audited against; the branch is then removed.
                    store.publish(contract, branch, properties, base=base, head=result.snapshot_id)
                    point(f"{layer}.after_publish", asset)
        if not result.committed and not blocking:  # e.g. every event already applied, or no landing file new
            metadata["outcome"] = NO_NEW_DATA
            context.log.info(f"{contract.qualified_name}: {NO_NEW_DATA}, the table's rows are unchanged")
        context.add_output_metadata(metadata)

    def _audit_input(
        self, store, contract: TableContract, written, before: int, after: int, branch: str | None, accounting: dict,
        reject_files: Callable[[], list[tuple[str, int]] | None] | None = None,
    ) -> AuditInput:
        key = contract.primary_key[0] if len(contract.primary_key) == 1 and contract.mode is WriteMode.merge else None
        return AuditInput(
            written=written,
            row_count_before=before,
            row_count_after=after,
            key_column=(lambda keys: store.key_matches(contract, keys, branch)) if key else None,
            lookup=lambda table, column: store.column(contract_for(*table.split("/")), column),
            records_read=accounting.get("read"),
            records_rejected=accounting.get("rejected"),
            reject_files=reject_files,
        )

    def load_input(self, context: InputContext) -> Any:
        contract = contract_of(context.asset_key)
        data = self.store.get_store().read(contract)
        wanted = getattr(context.dagster_type, "typing_type", None)
        if wanted is not None and getattr(wanted, "__module__", "").startswith("pyspark"):
            from pyspark.sql import SparkSession

            from lakehouse.io.spark_frames import arrow_to_spark

            spark = SparkSession.getActiveSession()
            if spark is None:
                raise RuntimeError(
                    f"{context.asset_key.to_user_string()} asks for {contract.qualified_name} as a Spark DataFrame, but no Spark "
                    "session is running: give the asset the `spark` resource (LocalSparkResource) and start its session, "
                    "or annotate the input as pyarrow.Table"
                )
            return arrow_to_spark(spark, data, contract.spark_schema)
        return data


def _accounting_metadata(result, accounting: dict[str, int]) -> dict:
    """Where the records this write read went: rejected, applied, or superseded by a later event."""
    if "read" not in accounting:
        return {}
    valid = accounting["read"] - accounting.get("rejected", 0)
    applied = sum(result.counts.get(k, 0) for k in ("inserted", "updated", "deleted"))
    return {
        "records_read": accounting["read"],
        "records_rejected": accounting.get("rejected", 0),
        "records_applied": applied,
        "records_superseded": valid - applied,
    }


def _partition_filter(contract: TableContract, partition_keys: list[str]) -> dict | None:
    """Map Dagster partition keys onto the table's partition column: an overwrite replaces exactly
    those partitions (Bronze appends, so it needs none)."""
    if not partition_keys or not contract.partition_by or contract.mode is not WriteMode.overwrite:
        return None
    column = contract.column(contract.partition_by[0])
    values: list[Any] = [dt.date.fromisoformat(k) for k in partition_keys] if column.type == "date" else list(partition_keys)
    return {column.name: values}
