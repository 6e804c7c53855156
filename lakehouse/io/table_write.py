"""One table write from start to finish: write (on an audit branch), audit, publish, report.

The same code runs wherever the write happens: under the IO manager, in the asset body of a local
transformation, and in the remote driver on Glue or EMR Serverless. It needs no Dagster context,
only the step's identity (``WriteStep``), and returns what Dagster shows (``WriteReport``): the
materialization's metadata and the check outcomes.
"""


import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from lakehouse.contracts.model import Layer, TableContract, WriteMode
from lakehouse.contracts.tables import contract_for
from lakehouse.faults import point
from lakehouse.io.audit_branches import audit_branch_name
from lakehouse.io.glue import catalog_metadata
from lakehouse.io.metadata import info_metadata, unwritten_metadata, write_metadata
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import CommitStamp, TableStore
from lakehouse.io.write_audit import AuditInput, CheckOutcome, WriteAudit

CODE_VERSION_KEY = "lakehouse/code_version"
# The ``outcome`` metadata of a write that did not publish new data (a write that did has none):
NO_NEW_DATA = "no new data"  # nothing changed (committed false); the table is as it was
# Counts of what a write changed in main (plotted over materializations): 0 when it was refused.
APPLIED_KEYS = ("records_applied", "records_superseded")
REFUSED = "refused"  # a blocking check failed: main unchanged, the audit branch kept

_LOG = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class WriteStep:
    """Which Dagster step writes: stamped on the commit, and names the audit branch."""

    run_id: str
    asset_key: str  # e.g. "silver/orders"
    partition_keys: tuple[str, ...] = ()
    code_version: str | None = None

    @property
    def partition_key(self) -> str | None:
        keys = self.partition_keys
        return (keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]}") if keys else None


@dataclass(frozen=True)
class WriteReport:
    """What one write shows in Dagster: its materialization metadata and its checks' outcomes."""

    metadata: dict[str, Any]
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def published(self) -> bool:
        """New data reached the table's main branch."""
        return self.metadata.get("outcome") is None

    def materialize_result(self) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=self.metadata, check_results=[o.check_result() for o in self.checks])


class TableWriter(dg.ConfigurableResource):
    """Writes outputs with their table's write mode; Silver and Gold writes are audited by ``audit``
    (the contracts' checks) on a branch of their own and published only if no blocking check fails."""

    store: dg.ResourceDependency[TableStoreResource]
    audit: dg.ResourceDependency[WriteAudit]
    # Silver and Gold writes go to an audit branch; main moves to it only if no blocking check fails.
    write_audit_publish: bool = True
    # Each write gets a branch of its own named <audit_branch>-<start time>-<run id>-<random>, so
    # concurrent writers never share one (audit_branches.audit_branch_name).
    audit_branch: str = "audit"

    def write(self, contract: TableContract, output: Any, step: WriteStep, log: logging.Logger | None = None) -> WriteReport:
        """Write ``output`` (a TableWrite, or its data alone; None: nothing new) to ``contract``'s table."""
        log = log or _LOG
        write = output if isinstance(output, TableWrite) else TableWrite(output)
        store = self.store.get_store()
        iceberg = contract.layer is not Layer.bronze
        before = store.info(contract)
        if write.data is None:  # nothing new to write: report the table as it stands
            checks: list[CheckOutcome] = []
            if iceberg:
                audit = _audit_input(store, contract, contract.arrow_schema.empty_table(), before.row_count, before.row_count, None, {})
                checks = self.audit.audit(contract, audit, wrote=False)
            log.info(f"{contract.qualified_name}: {NO_NEW_DATA}, the table is unchanged")
            metadata = {
                **info_metadata(contract, before), **catalog_metadata(store, contract), **unwritten_metadata(contract),
                **_accounting_metadata(None, write.accounting), "committed": False, "outcome": NO_NEW_DATA,
            }
            return WriteReport(metadata, checks)
        audited = self.write_audit_publish and iceberg
        branch = audit_branch_name(self.audit_branch, step.run_id) if audited else None
        base = store.start_audit(contract, branch) if audited else None
        if audited and contract.layer is Layer.silver:
            point("silver.start_audit", step.asset_key)
        stamp = CommitStamp(
            run_id=step.run_id,
            asset_key=step.asset_key,
            partition_key=step.partition_key,
            code_version=step.code_version,
            # With an audit, watermarks are set when main is published, never before.
            table_properties={} if audited else write.table_properties,
        )
        result = store.write(contract, write.data, stamp, partition_filter(contract, list(step.partition_keys)), branch=branch)
        metadata = write_metadata(contract, result)
        metadata.update(catalog_metadata(store, contract))
        metadata.update(_accounting_metadata(result, write.accounting))
        checks = []
        blocking: list[str] = []
        if iceberg:
            written = result.written_rows if result.written_rows is not None else contract.arrow_schema.empty_table()
            audit = _audit_input(store, contract, written, before.row_count, result.row_count, branch, write.accounting, write.reject_files)
            checks = self.audit.audit(contract, audit, wrote=result.committed)
            blocking = [o.name for o in checks if o.blocks]
            if audited:
                metadata["audit_branch"] = branch
                metadata["published"] = not blocking
                if blocking:
                    # main stays where it was; the branch keeps the rejected snapshot for inspection
                    log.error(
                        f"{contract.qualified_name}: {REFUSED}: blocking check(s) {', '.join(blocking)} failed; main unchanged, "
                        f"branch {branch!r} kept for inspection"
                    )
                    metadata.update(
                        outcome=REFUSED, committed=False, blocking_failures=blocking, audit_snapshot_id=metadata.pop("snapshot_id", None)
                    )
                    # Nothing reached main: the plotted change counts say 0; the branch's are kept apart.
                    for key in [k for k in metadata if k.startswith("rows_") or k in APPLIED_KEYS]:
                        metadata[f"audit_{key}"], metadata[key] = metadata[key], 0
                    if before.snapshot_id is not None:
                        metadata["snapshot_id"] = str(before.snapshot_id)
                    metadata["dagster/row_count"] = before.row_count
                else:
                    layer = contract.layer.value
                    point(f"{layer}.before_publish", step.asset_key)
                    # Main moves only to the snapshot this write produced, and only from the base it
                    # audited against; the branch is then removed.
                    store.publish(contract, branch, write.table_properties, base=base, head=result.snapshot_id)
                    point(f"{layer}.after_publish", step.asset_key)
        if not result.committed and not blocking:  # e.g. every event already applied, or no landing file new
            metadata["outcome"] = NO_NEW_DATA
            log.info(f"{contract.qualified_name}: {NO_NEW_DATA}, the table's rows are unchanged")
        return WriteReport(metadata, checks)


def _audit_input(
    store: TableStore, contract: TableContract, written, before: int, after: int, branch: str | None, accounting: dict,
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


def _accounting_metadata(result, accounting: dict[str, int]) -> dict:
    """Where the records this write read went: rejected, applied, or superseded by a later event
    (``result`` None: nothing was written)."""
    if "read" not in accounting:
        return {}
    valid = accounting["read"] - accounting.get("rejected", 0)
    applied = sum(result.counts.get(k, 0) for k in ("inserted", "updated", "deleted")) if result is not None else 0
    return {
        "records_read": accounting["read"],
        "records_rejected": accounting.get("rejected", 0),
        "records_applied": applied,
        "records_superseded": valid - applied,
    }


def partition_filter(contract: TableContract, partition_keys: list[str]) -> dict | None:
    """Map Dagster partition keys onto the table's partition column: an overwrite replaces exactly
    those partitions (Bronze appends, so it needs none)."""
    if not partition_keys or not contract.partition_by or contract.mode is not WriteMode.overwrite:
        return None
    column = contract.column(contract.partition_by[0])
    values: list[Any] = [dt.date.fromisoformat(k) for k in partition_keys] if column.type == "date" else list(partition_keys)
    return {column.name: values}
