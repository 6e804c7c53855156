"""The merge semantics of Silver tables, written once for every table-store implementation.

Given a table T with key column ``k`` and (optionally) a sequence column ``s``, and a batch B:

1. B is reduced to one event per key: the highest ``s`` wins; on a tie, the later row in B wins.
2. An event for a key present in T applies only if its ``s`` is higher than the row's. Without a
   sequence column an event for a present key never applies (records are immutable).
3. An event for a key absent from T applies unless a tombstone for that key has an equal or higher
   ``s``. Tombstones remember applied deletes, so a late or re-delivered older event cannot bring a
   deleted key back, while a genuinely newer event (a re-insert) can.
4. An applied delete removes the key from T (if present) and records the tombstone ``(k, s)``.
   An applied upsert inserts the row, or replaces the present row.

Applying the same batch twice changes nothing the second time (idempotent), and the result does
not depend on how events are split into batches. The Spark-native store expresses the same rules
as MERGE INTO statements; both are tested against the plain-Python reference in the test suite.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.model import TableContract

_ROW = "__lakehouse_row"
_OLD = "__lakehouse_existing_seq"
_TOMB = "__lakehouse_tombstone_seq"


@dataclass(frozen=True)
class MergePlan:
    # Events to write as rows: the columns the batch carries, less the delete flag, those of the
    # contract cast to its types. A batch may carry only some of the contract's columns plus a
    # column of its own (the merge plans on the key, sequence and change columns and a row
    # position, and takes the full rows only when writing them).
    upserts: pa.Table
    remove_keys: pa.Array  # keys whose current row is replaced or deleted
    removed_rows: pa.Array  # positions in ``existing`` of those rows
    tombstones: pa.Table  # (key, seq) of applied deletes
    inserted: int
    updated: int
    deleted: int
    ignored: int

    @property
    def changes(self) -> int:
        return self.inserted + self.updated + self.deleted + len(self.tombstones)


def reduce_batch(batch: pa.Table, key: str, sequence: str | None) -> pa.Table:
    """One event per key: highest sequence, ties to the later row (rule 1)."""
    if batch.num_rows == 0:
        return batch
    keys = batch[key]
    if batch.num_rows < 2 or pc.all(pc.less(keys.slice(0, batch.num_rows - 1), keys.slice(1))).as_py():
        return batch  # sorted, one event per key (as the merge passes it): nothing to reduce
    if len(pc.unique(keys)) == batch.num_rows:
        return batch  # already one event per key, as the transformations deliver it: skip the sort
    indexed = batch.append_column(_ROW, pa.array(range(batch.num_rows), pa.int64()))
    order = [(key, "ascending")] + ([(sequence, "descending")] if sequence else []) + [(_ROW, "descending")]
    ordered = indexed.take(pc.sort_indices(indexed, sort_keys=order))
    keys = ordered[key]
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1)) if len(keys) > 1 else pa.array([], pa.bool_())
    keep = pa.concat_arrays([pa.array([True]), first.combine_chunks() if isinstance(first, pa.ChunkedArray) else first])
    return ordered.filter(keep).drop_columns([_ROW])


def plan_merge(contract: TableContract, batch: pa.Table, existing: pa.Table, tombstones: pa.Table) -> MergePlan:
    """Decide what a batch does to a table.

    ``existing`` and ``tombstones`` hold (key, sequence) of the table's rows and of its tombstones,
    one row per key; they need only cover the batch's keys.
    """
    key = contract.primary_key[0]
    seq = contract.sequence_by
    flag = contract.delete_flag
    batch = reduce_batch(batch, key, seq)
    if batch.num_rows == 0:
        empty_keys = pa.array([], batch.schema.field(key).type)
        return MergePlan(
            _as_rows(contract, batch.drop_columns([flag] if flag in batch.column_names else [])), empty_keys,
            pa.array([], pa.int32()), _tomb_table(contract, empty_keys, None), 0, 0, 0, 0,
        )

    # _OLD holds the present row's sequence (or, without a sequence column, a marker of presence).
    # Both lookups are by key (index_in + take) rather than joins: existing and tombstones hold one
    # row per key, and the batch keeps its order without going through a hash join's copy.
    keys = batch[key]
    marker = existing[seq] if seq else pa.repeat(pa.scalar(True), existing.num_rows)
    where = _positions(keys, existing[key])
    joined = batch.append_column(_OLD, pa.chunked_array(marker).take(where))
    if tombstones.num_rows:
        tomb_seq = pa.chunked_array(tombstones["seq"]).take(_positions(keys, tombstones[key]))
        joined = joined.append_column(_TOMB, tomb_seq.cast(joined.schema.field(_OLD).type))
    else:
        joined = joined.append_column(_TOMB, pa.nulls(joined.num_rows, joined.schema.field(_OLD).type))

    present = pc.is_valid(joined[_OLD])
    if seq:
        newer_than_row = pc.greater(joined[seq], joined[_OLD])
        newer_than_tomb = pc.or_kleene(pc.is_null(joined[_TOMB]), pc.greater(joined[seq], joined[_TOMB]))
        applies = pc.if_else(present, newer_than_row, newer_than_tomb)
    else:
        applies = pc.invert(present)
    applies = pc.fill_null(applies, False)
    is_delete = pc.fill_null(joined[flag], False) if flag and flag in joined.column_names else pa.repeat(pa.scalar(False), joined.num_rows)

    apply_delete = pc.and_(applies, is_delete)
    apply_upsert = pc.and_(applies, pc.invert(is_delete))
    removed = pc.and_(applies, present)

    carried = [c for c in batch.column_names if c != flag]
    upserts = _as_rows(contract, joined.select(carried).filter(apply_upsert))
    remove_keys = joined[key].filter(removed).combine_chunks()
    removed_rows = pa.chunked_array(where).filter(removed).combine_chunks()
    deletes = joined.select([key, *([seq] if seq else [])]).filter(apply_delete)
    tombs = _tomb_table(contract, deletes[key].combine_chunks(), deletes[seq].combine_chunks() if seq else None)
    inserted = pc.sum(pc.and_(apply_upsert, pc.invert(present))).as_py() or 0
    updated = pc.sum(pc.and_(apply_upsert, present)).as_py() or 0
    deleted = pc.sum(pc.and_(apply_delete, present)).as_py() or 0
    ignored = batch.num_rows - (pc.sum(applies).as_py() or 0)
    return MergePlan(upserts, remove_keys, removed_rows, tombs, inserted, updated, deleted, ignored)


def _positions(keys: pa.ChunkedArray, table_keys: pa.ChunkedArray) -> pa.Array:
    """For each of ``keys``, its position in ``table_keys`` (one row per key), or null."""
    return pc.index_in(keys, value_set=pa.chunked_array(table_keys).combine_chunks().cast(keys.type))


def _as_rows(contract: TableContract, events: pa.Table) -> pa.Table:
    """Events as rows: the contract's columns first, in its order and types, then any other."""
    names = [c for c in contract.column_names if c in events.column_names]
    names += [c for c in events.column_names if c not in names]
    schema = pa.schema([contract.arrow_schema.field(c) if c in contract.column_names else events.schema.field(c) for c in names])
    return events.select(names).cast(schema)


def tombstone_schema(contract: TableContract) -> pa.Schema:
    key = contract.column(contract.primary_key[0])
    seq_type = contract.column(contract.sequence_by).arrow_type() if contract.sequence_by else pa.int64()
    return pa.schema([pa.field(key.name, key.arrow_type(), nullable=False), pa.field("seq", seq_type, nullable=False)])


def _tomb_table(contract: TableContract, keys: pa.Array, seqs: pa.Array | None) -> pa.Table:
    schema = tombstone_schema(contract)
    if seqs is None:
        seqs = pa.nulls(len(keys), schema.field("seq").type)
    return pa.Table.from_arrays([keys.cast(schema.field(0).type), seqs.cast(schema.field(1).type)], schema=schema)


def changed_values(contract: TableContract, existing: pa.Table, plan: MergePlan, replaced: pa.Array | None = None) -> dict[str, list]:
    """Distinct values of the contract's change columns on rows the merge changes, old and new.

    Timestamps are reported as UTC days: what partition planning needs, and far fewer values.
    ``replaced`` (optional) marks the rows of ``existing`` whose key is in ``plan.remove_keys``,
    for a caller that has computed it already."""
    if not contract.change_columns:
        return {}
    key = contract.primary_key[0]
    if replaced is None:
        replaced = pc.is_in(existing[key], value_set=plan.remove_keys) if len(plan.remove_keys) else pa.repeat(pa.scalar(False), existing.num_rows)
    before = existing.filter(replaced)
    out = {}
    for column in contract.change_columns:
        kind = before.schema.field(column).type
        values = pa.chunked_array([*before[column].chunks, *plan.upserts[column].cast(kind).chunks], kind)
        if pa.types.is_timestamp(kind):
            values = values.cast(pa.timestamp(kind.unit, tz="UTC")).cast(pa.date32())
        out[column] = sorted(v for v in pc.unique(values.drop_null()).to_pylist())
    return out
