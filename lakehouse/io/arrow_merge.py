"""The Silver CDC merge on pyiceberg and Arrow: plan with the merge rules (io/merge_rules.py) against
the rows the batch's keys find, rewrite only the files that lose a row (io/file_rewrite.py), one
OVERWRITE commit; deletes recorded as tombstones first. Re-planned from the new state when another
writer commits first."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import (
    CommitFailedException,
    ValidationException,
)
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH

from lakehouse.contracts.model import TableContract
from lakehouse.io import file_rewrite
from lakehouse.io.audit_branches import (
    MERGE_ATTEMPTS,
    at_branch,
    backoff,
    conflicts_as_commit_failures,
)
from lakehouse.io.iceberg_tables import IcebergTables
from lakehouse.io.merge_rules import changed_values, plan_merge, reduce_batch, tombstone_schema
from lakehouse.io.table_store import CommitStamp, WriteResult
from lakehouse.io.watermarks import changed_summary


class ArrowMerge(IcebergTables):
    def merge(self, contract: TableContract, data: pa.Table, stamp: CommitStamp, branch: str | None = None) -> WriteResult:
        # conform refuses null keys (key columns are required) and other contract breaks before
        # anything is read or written.
        batch = contract.conform(data)
        events = _events(contract, batch)
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                with self._storage_errors(contract):
                    return self._merge_once(contract, batch, events, stamp, branch)
            except (CommitFailedException, ValidationException):
                # Another writer committed since this attempt read the table. Its plan may be stale
                # (a key the other writer inserted, a file it rewrote), so plan again from the new
                # state rather than replaying this one; the other writer's rows are never dropped.
                if attempt == MERGE_ATTEMPTS:
                    raise
                time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def _merge_once(
        self, contract: TableContract, batch: pa.Table, events: pa.Table, stamp: CommitStamp, branch: str | None = None
    ) -> WriteResult:
        key = contract.primary_key[0]
        seq = contract.sequence_by
        table = self.ensure_table(contract)
        keys = events[key].combine_chunks()
        wanted = [key, *([seq] if seq else []), *contract.change_columns]
        # Look up in what the commit replaces: the branch's head when writing to a branch.
        found = file_rewrite.lookup(at_branch(table, branch) if branch else table, key, keys, wanted)
        found_rows = _cast(found.values, contract.arrow_schema)
        # A table (and its tombstones) should hold one row per key; should another writer have left
        # more, planning on the newest keeps the merge's rules well defined.
        existing = reduce_batch(found_rows, key, seq)
        # No key found twice (as the merge writes tables): existing is then row for row found.rows,
        # and the plan's positions in it mark the rows to drop. Otherwise the rows go by key, so
        # every copy of a key some other writer left twice is replaced.
        aligned = existing.num_rows == found_rows.num_rows
        tomb_table = self._tombstones(contract) if contract.delete_flag else None
        # With an audit the tombstones are read from and written to the tombstones table's branch of
        # the same name (start_audit made it): they are published with the data or not at all.
        tomb_read = (at_branch(tomb_table, branch) if branch else tomb_table) if tomb_table is not None else None
        tomb_found = file_rewrite.lookup(tomb_read, key, keys, [key, "seq"]) if tomb_read is not None else None
        tombs = (
            reduce_batch(_cast(tomb_found.values, tombstone_schema(contract)), key, "seq")
            if tomb_found is not None
            else tombstone_schema(contract).empty_table()
        )
        plan = plan_merge(contract, events, existing, tombs)
        counts = {"inserted": plan.inserted, "updated": plan.updated, "deleted": plan.deleted, "ignored": plan.ignored}
        # Which looked-up rows the merge replaces or deletes: used for the change report and to
        # pick the files to rewrite, so computed once.
        replaced = _mask(found.rows.num_rows, plan.removed_rows) if aligned else pc.is_in(
            found.rows[key], value_set=plan.remove_keys.cast(found.rows.schema.field(key).type)
        )
        changed = changed_values(contract, existing, plan, replaced if aligned else None)
        positions = plan.upserts[_POSITION]

        def fetch(at: pa.Array) -> pa.Table:
            # Delete events may hold nulls in required columns: cast only the upserts taken.
            return batch.take(positions.take(at)).select(contract.column_names).cast(contract.arrow_schema)

        if plan.changes == 0 and not stamp.table_properties:
            return self._result(
                contract, table, 0, committed=False, counts=counts, changed=changed, branch=branch,
                written_rows=contract.arrow_schema.empty_table(),
            )
        props = {
            **stamp.properties(),
            **{f"lakehouse.rows-{k}": str(v) for k, v in counts.items()},
            # What this snapshot changed, in the snapshot itself: Gold plans its rebuilds from the
            # tables' own history, never from what Dagster happened to record (io/watermarks.py).
            **changed_summary(changed),
        }
        if tomb_table is not None and len(plan.tombstones):
            # Tombstones are committed first (to the audit branch if there is one): if the data commit
            # then fails, re-applying the batch still deletes (the row's own sequence is older), so
            # nothing is lost or resurrected.
            self._commit_tombstones(contract, tomb_table, tomb_found, tombs, plan.tombstones, stamp, branch)
        done = None
        tx = table.transaction()
        try:
            if len(plan.remove_keys) or plan.upserts.num_rows:
                # One OVERWRITE snapshot: the files that lose a row are replaced, new rows added.
                with tx.update_snapshot(snapshot_properties=props, branch=branch or MAIN_BRANCH).overwrite() as ow:
                    done = file_rewrite.rewrite(tx, table, ow, key, found, replaced, plan.upserts[key], fetch)
            if stamp.table_properties:
                tx.set_properties(stamp.table_properties)
            with conflicts_as_commit_failures():
                tx.commit_transaction()
        except (CommitFailedException, ValidationException):
            if done is not None:
                file_rewrite.discard(table, done.added)  # the commit did not land: its files are orphans
            raise
        return self._result(
            contract, table, plan.upserts.num_rows, committed=plan.changes > 0, counts=counts, changed=changed,
            branch=branch, written_rows=done.written if done is not None else contract.arrow_schema.empty_table(),
        )

    def _commit_tombstones(
        self, contract, tomb_table: Table, found, current: pa.Table, new: pa.Table, stamp: CommitStamp, branch: str | None = None
    ) -> None:
        key = contract.primary_key[0]
        old = current.select([key, "seq"]).rename_columns([key, "__old_seq"])
        joined = new.join(old, keys=key, join_type="left outer")
        # A tombstone already recorded with the same sequence (a retry after a crash between the
        # two commits) is not written again.
        fresh = joined.filter(pc.fill_null(pc.greater(joined["seq"], joined["__old_seq"]), True))
        if fresh.num_rows == 0:
            return
        raised = fresh.filter(pc.is_valid(fresh["__old_seq"]))[key].combine_chunks()
        rows = fresh.select([key, "seq"]).cast(tombstone_schema(contract))
        replaced = pc.is_in(found.rows[key], value_set=raised.cast(found.rows.schema.field(key).type))
        written: list = []
        tx = tomb_table.transaction()
        try:
            with tx.update_snapshot(snapshot_properties=stamp.properties(), branch=branch or MAIN_BRANCH).overwrite() as ow:
                written = file_rewrite.rewrite(tx, tomb_table, ow, key, found, replaced, rows[key], rows.take).added
            with conflicts_as_commit_failures():
                tx.commit_transaction()
        except (CommitFailedException, ValidationException):
            file_rewrite.discard(tomb_table, written)
            raise


_POSITION = "__lakehouse_position"  # an event's row in the conformed batch


def _events(contract: TableContract, batch: pa.Table) -> pa.Table:
    """What planning a merge needs of a batch, in key order: key, sequence, delete flag, change
    columns and each event's position in the batch. The other columns stay where they are until
    the rows are written (``fetch``): sorting and filtering a narrow table is what keeps the
    plan's cost small next to the files it rewrites.

    Sorted once here, with a stable sort, so equal keys keep their order (ties go to the later
    event): the lookups, the plan and the files written all need key order and keep it."""
    columns = [contract.primary_key[0], contract.sequence_by, contract.delete_flag, *contract.change_columns]
    present = [c for c in dict.fromkeys(columns) if c and c in batch.column_names]
    events = batch.select(present).append_column(_POSITION, pa.array(np.arange(batch.num_rows, dtype=np.int64)))
    order = file_rewrite.key_order(events[contract.primary_key[0]])
    return events if order is None else events.take(order)


def _mask(length: int, positions: pa.Array) -> pa.Array:
    """A boolean array of ``length``, true at ``positions``."""
    mask = np.zeros(length, dtype=bool)
    mask[positions.to_numpy(zero_copy_only=False)] = True
    return pa.array(mask)


def _cast(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    return rows.cast(pa.schema([schema.field(name).with_nullable(True) for name in rows.column_names]))
