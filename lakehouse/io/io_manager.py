"""The lakehouse IO manager: Dagster's face of the table store for in-process runs."""


import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from lakehouse.checks.evaluate import AuditInput, CheckOutcome, evaluate
from lakehouse.checks.specs import stash
from lakehouse.contracts.model import Layer, TableContract, WriteMode
from lakehouse.contracts.tables import contract_for
from lakehouse.faults import point
from lakehouse.io.audit_branches import audit_branch_name
from lakehouse.io.glue import catalog_metadata
from lakehouse.io.metadata import info_metadata, write_metadata
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import CommitStamp

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


def contract_of(asset_key) -> TableContract:
    if len(asset_key.path) != 2:
        raise KeyError(f"asset {asset_key.to_user_string()} is not a lakehouse table (expected <layer>/<table>)")
    return contract_for(*asset_key.path)


class LakehouseIOManager(ConfigurableIOManager):
    """Stores outputs with the table's write mode (append / merge / overwrite) and loads inputs.

    Outputs may be Spark DataFrames or Arrow tables. Inputs are loaded as the type the consuming
    asset annotates: a Spark DataFrame, or (default) an Arrow table. A partitioned Gold output
    overwrites only its partition.
    """

    store: ResourceDependency[TableStoreResource]
    # Silver and Gold writes go to an audit branch; main moves to it only if no blocking check fails.
    write_audit_publish: bool = True
    # Each write gets a branch of its own named <audit_branch>-<start time>-<run id>-<random>, so
    # concurrent writers never share one (audit_branches.audit_branch_name).
    audit_branch: str = "audit"
    # Share of a batch's records that may be rejected before a Silver write is refused.
    reject_rate_limit: float = 0.05

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        contract = contract_of(context.asset_key)
        store = self.store.get_store()
        properties: dict[str, str] = {}
        accounting: dict[str, int] = {}
        if isinstance(obj, TableWrite):
            obj, properties, accounting = obj.data, obj.table_properties, obj.accounting
        iceberg = contract.layer is not Layer.bronze
        before = store.info(contract)
        if obj is None:  # nothing new to write: report the table as it stands
            if iceberg:
                empty = contract.arrow_schema.empty_table()
                outcomes = evaluate(contract, self._audit_input(store, contract, empty, before.row_count, before.row_count, None, {}))
                stash(context.run_id, context.asset_key, _nothing_written(outcomes))
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
        result = store.write(contract, _to_arrow(obj), stamp, _partition_filter(contract, keys), branch=branch)
        metadata = write_metadata(contract, result)
        metadata.update(catalog_metadata(store, contract))
        metadata.update(_accounting_metadata(result, accounting))
        blocking: list[str] = []
        if iceberg:
            written = result.written_rows if result.written_rows is not None else contract.arrow_schema.empty_table()
            reject_files = _reject_files(store, contract, properties) if accounting.get("rejected") else None
            audit = self._audit_input(store, contract, written, before.row_count, result.row_count, branch, accounting, reject_files)
            outcomes = evaluate(contract, audit)
            blocking = [o.name for o in outcomes if o.blocks]
            stash(context.run_id, context.asset_key, outcomes if result.committed or blocking else _nothing_written(outcomes))
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
            reject_rate_limit=self.reject_rate_limit,
            reject_files=reject_files,
        )

    def load_input(self, context: InputContext) -> Any:
        contract = contract_of(context.asset_key)
        data = self.store.get_store().read(contract)
        wanted = getattr(context.dagster_type, "typing_type", None)
        if wanted is not None and getattr(wanted, "__module__", "").startswith("pyspark"):
            from pyspark.sql import SparkSession

            from lakehouse.resources.spark import arrow_to_spark, ensure_java

            ensure_java()
            spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
            return arrow_to_spark(spark, data, contract.spark_schema)
        return data


def _nothing_written(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    """The checks of a write that changed nothing ran on zero rows: say so, rather than let them
    read as fresh passes."""
    return [
        dataclasses.replace(o, description=f"nothing new was written (0 rows evaluated): {o.description}", metadata={**o.metadata, "evaluated_rows": 0})
        for o in outcomes
    ]


def _reject_files(store, contract: TableContract, properties: dict[str, str]) -> Callable[[], list[tuple[str, int]] | None]:
    """For a Silver table fed from Bronze: a function giving the files of this write's Bronze batch
    with the most rejected records, (file, rejects), most first, or None if they cannot be told.

    It runs the table's quarantine transformation (``<layer>/<name>_rejects``, the one that follows
    this table) over the same Bronze files, so a record counts as rejected exactly when it would
    be quarantined. The reject-rate check calls it only when it fails."""

    @functools.cache
    def files() -> list[tuple[str, int]] | None:
        from lakehouse.assets.transformation import registered
        from lakehouse.io.watermarks import applied_seq

        try:
            quarantine = registered(f"{contract.layer.value}/{contract.name}_rejects")
        except KeyError:
            return None
        if contract not in quarantine.after:
            return None
        try:
            from pyspark.sql import SparkSession

            from lakehouse.resources.compute import LocalSparkCompute, SourceRead

            applied = store.info(contract).properties  # main's watermark: where this batch starts
            spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
            inputs = {}
            for name, source in quarantine.sources.items():
                if source.layer is not Layer.bronze:
                    return None
                pending = store.pending_bronze(source, applied_seq(applied, source.qualified_name))
                if pending.seq != applied_seq(properties, source.qualified_name):
                    return None  # Bronze has moved on since this batch was read: not the same files
                inputs[name] = LocalSparkCompute._load(spark, store, SourceRead(source, bronze_files=pending.files))
            counts = quarantine.fn(**inputs).groupBy("_source_file").count().collect()
        except Exception:
            return None
        return sorted(((r["_source_file"], r["count"]) for r in counts), key=lambda fc: (-fc[1], fc[0]))

    return files


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


def _to_arrow(obj: Any) -> pa.Table:
    if isinstance(obj, pa.Table):
        return obj
    if type(obj).__module__.startswith("pyspark"):
        from lakehouse.resources.spark import spark_to_arrow

        return spark_to_arrow(obj)
    raise TypeError(f"the lakehouse IO manager stores Spark DataFrames or Arrow tables, not {type(obj).__name__}")


def _partition_filter(contract: TableContract, partition_keys: list[str]) -> dict | None:
    """Map Dagster partition keys onto the table's partition column: an overwrite replaces exactly
    those partitions (Bronze appends, so it needs none)."""
    if not partition_keys or not contract.partition_by or contract.mode is not WriteMode.overwrite:
        return None
    column = contract.column(contract.partition_by[0])
    values: list[Any] = [dt.date.fromisoformat(k) for k in partition_keys] if column.type == "date" else list(partition_keys)
    return {column.name: values}
