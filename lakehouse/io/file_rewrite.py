"""Copy-on-write by key on Iceberg tables: find, read and rewrite only the data files a batch touches.

The merge semantics live in ``lakehouse.io.merge_rules``; this module is the file-level machinery under
them, used for a Silver table and for its tombstones table:

1. ``file_ranges``: each live data file of the current snapshot with its key bounds, taken from the
   manifest's column statistics.
2. ``lookup``: the candidate files (some batch key lies inside the file's bounds) are read one at a
   time, narrowed to the requested columns, and only their rows whose key is in the batch are kept,
   tagged with the file they came from. Memory: one file's columns plus the matches.
3. ``rewrite``: inside an ``OverwriteFiles`` snapshot producer, each file that loses a row is read
   whole, loses its replaced rows, takes the new rows that fall inside its key range, and is written
   back; new rows outside every rewritten file's range go to new files in key order. Unaffected
   files are neither read whole nor rewritten, and keep their paths. ``WORKERS`` files are in flight at a
   time, so memory is bounded by the affected files and the batch, not by the table.

Pruning uses the key's bounds and not partition values: a key's current row may sit in any
partition (an update can change a partition column), so a batch's own partition values say
nothing about where its keys are. Partitioned tables still work: ``_dataframe_to_data_files``
splits what is written by partition.

Every file written covers a narrow key range (its old range, or a key-ordered slice of the new
rows, cut at the target size), which is what lets the bounds prune the next merge.
"""

from __future__ import annotations

import itertools
import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table, TableProperties, Transaction
from pyiceberg.table.update.snapshot import _OverwriteFiles

# Files are cut at this much in-memory Arrow data unless the table sets write.target-file-size-bytes
# (pyiceberg's default of 512 MiB would leave a 5M-row Silver table in two files, with nothing to
# prune). 32 MiB is ~150k order rows: a few MB of zstd Parquet and ~30 files per 5M rows, a
# granularity at which a CDC batch concentrated on recent keys touches a few files, while per-file
# costs (manifest entries, footers, object-store requests) stay negligible.
DEFAULT_TARGET_FILE_BYTES = 32 * 1024 * 1024

FILE = "__lakehouse_file"  # index of the file a looked-up row came from
ROW = "__lakehouse_file_row"  # and its row in that file

# Files in flight: one more than the cores this process may use, because a worker waits while
# pyiceberg's own writer thread encodes its file; at most 8, so memory stays a small multiple of
# one file.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
WORKERS = min(8, _CORES + 1)


@dataclass(frozen=True)
class FileRange:
    """A live data file and the bounds of its key column (None where the file has no statistic)."""

    task: FileScanTask
    lower: Any
    upper: Any

    @property
    def path(self) -> str:
        return self.task.file.file_path


@dataclass(frozen=True)
class Lookup:
    """What a batch's keys find in a table: the candidate files and their matching rows."""

    files: list[FileRange]  # candidates, in order of lower bound
    rows: pa.Table  # requested columns + FILE + ROW, only rows whose key is in the batch
    scanned: int  # data files in the snapshot

    @property
    def values(self) -> pa.Table:
        """The rows found, with the requested columns only."""
        return self.rows.drop_columns([FILE, ROW])


def file_ranges(table: Table, key: str) -> list[FileRange]:
    """Every live data file of the current snapshot with its key bounds, as Python values of the
    key's Arrow type (so they compare with ``pa.Array`` elements).

    Bounds come from the manifests. String bounds may be truncated (pyiceberg and Java Iceberg
    default to truncate(16)); a truncated lower bound is a prefix and still <= every value, and a
    truncated upper bound is stored with its last code point incremented, so it is still >= every
    value: the bounds stay correct, only looser. A file without bounds is always a candidate.
    """
    if table.current_snapshot() is None:
        return []
    field = table.schema().find_field(key)
    arrow_type = schema_to_pyarrow(field.field_type)

    def decode(raw: bytes | None) -> Any:
        # from_bytes gives days for dates and microseconds for timestamps; Arrow takes those as is.
        return None if raw is None else pa.scalar(from_bytes(field.field_type, raw), arrow_type).as_py()

    ranges = []
    for task in table.scan().plan_files():
        low = task.file.lower_bounds.get(field.field_id) if task.file.lower_bounds else None
        high = task.file.upper_bounds.get(field.field_id) if task.file.upper_bounds else None
        ranges.append(FileRange(task, decode(low), decode(high)))
    return ranges


class _Sorted(Sequence):
    """Positional access to a sorted Arrow array, so ``bisect`` searches it with O(log n) scalar
    reads and no conversion of the whole array to Python objects."""

    def __init__(self, values: pa.Array | pa.ChunkedArray):
        self.values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i):  # type: ignore[override]
        return self.values[i].as_py()


def key_order(values: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """Indices that sort ``values`` (a non-null key), or None when they are sorted already.

    The merge sorts its batch by key once; what it derives from it (the keys to look up, the rows
    to write) keeps that order, so the check here, one vectorised comparison, saves a sort of
    strings per step."""
    n = len(values)
    if n < 2 or pc.all(pc.less_equal(values.slice(0, n - 1), values.slice(1))).as_py():
        return None
    return pc.sort_indices(values)


def _span(keys: _Sorted, f: FileRange) -> tuple[int, int]:
    """Positions [start, end) of the sorted ``keys`` that lie inside the file's bounds."""
    return bisect_left(keys, f.lower), bisect_right(keys, f.upper)


def _holds_any(keys: _Sorted, f: FileRange) -> bool:
    start, end = _span(keys, f)
    return end > start


def _bounded(f: FileRange) -> bool:
    return f.lower is not None and f.upper is not None


def candidates(ranges: Sequence[FileRange], keys: _Sorted) -> list[FileRange]:
    """The files whose [lower, upper] holds at least one of the sorted ``keys``, by lower bound.

    Written by hand rather than left to ``table.scan(row_filter=In(key, keys))``: pyiceberg's
    inclusive metrics evaluator stops evaluating an ``In`` of more than 200 literals and keeps every
    file, so a CDC batch would never prune. Sorted keys make this a binary search per file.
    """
    if len(keys) == 0:
        return []
    chosen = [f for f in ranges if not _bounded(f) or _holds_any(keys, f)]
    return sorted(chosen, key=lambda f: (not _bounded(f), f.lower if _bounded(f) else 0))


def read_file(table: Table, task: FileScanTask, columns: Sequence[str] | None = None) -> pa.Table:
    """One data file, as the table's current schema (or ``columns`` of it) sees it.

    A file written with the current schema and without delete files is read with pyarrow directly
    (about twice as fast as pyiceberg's scan on whole files); any other goes through pyiceberg's
    reader, which resolves columns by field id (renamed, added, dropped columns) and applies
    delete files.
    """
    schema = table.schema() if columns is None else table.schema().select(*columns)
    if not task.delete_files:
        with table.io.new_input(task.file.file_path).open() as stream:
            parquet = pq.ParquetFile(stream)
            if _same_field_ids(parquet.schema_arrow, schema):
                return parquet.read(columns=[f.name for f in schema.fields])
    return ArrowScan(table.metadata, table.io, schema, AlwaysTrue()).to_table([task])


def _same_field_ids(arrow: pa.Schema, schema: Schema) -> bool:
    for field in schema.fields:
        i = arrow.get_field_index(field.name)
        if i < 0:
            return False
        meta = arrow.field(i).metadata or {}
        if meta.get(b"PARQUET:field_id") != str(field.field_id).encode() or not field.field_type.is_primitive:
            return False
    return True


def _prefetched(table: Table, files: Sequence[FileRange], columns: Sequence[str] | None) -> Iterator[pa.Table]:
    """Read files in order with the next one already being read, so decoding overlaps processing."""
    if not files:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read_file, table, files[0].task, columns)
        for following in [*files[1:], None]:
            data = pending.result()
            if following is not None:
                pending = pool.submit(read_file, table, following.task, columns)
            yield data


def lookup(table: Table, key: str, keys: pa.Array, columns: Sequence[str]) -> Lookup:
    """The rows (``columns`` + FILE) whose key is one of ``keys``, read from candidate files only."""
    columns = list(dict.fromkeys([key, *columns]))
    ranges = file_ranges(table, key)
    arrow = schema_to_pyarrow(table.schema().select(*columns), include_field_ids=False)
    empty = pa.schema([*arrow, pa.field(FILE, pa.int32()), pa.field(ROW, pa.int64())]).empty_table()
    if not ranges or len(keys) == 0:
        return Lookup([], empty, len(ranges))
    order = key_order(keys)
    ordered = keys if order is None else keys.take(order)
    sorted_keys = _Sorted(ordered)
    files = candidates(ranges, sorted_keys)
    pieces = []
    for i, data in enumerate(_prefetched(table, files, columns)):
        # Only the batch keys inside this file's range can match: probing with that slice keeps the
        # hash-set builds proportional to the batch, not to batch x files.
        start, end = _span(sorted_keys, files[i]) if _bounded(files[i]) else (0, len(ordered))
        probe = ordered.slice(start, end - start).cast(data.schema.field(key).type)
        matches = pc.is_in(data[key], value_set=probe)
        hit = data.filter(matches)
        if hit.num_rows:
            hit = hit.append_column(FILE, pa.repeat(pa.scalar(i, pa.int32()), hit.num_rows))
            pieces.append(hit.append_column(ROW, pc.indices_nonzero(matches).cast(pa.int64())))
    rows = pa.concat_tables(pieces, promote_options="permissive") if pieces else empty
    return Lookup(files, rows, len(ranges))


def target_rows(table_properties: dict[str, str], sample: pa.Table) -> int:
    target = int(table_properties.get(TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, DEFAULT_TARGET_FILE_BYTES))
    per_row = max(1.0, sample.nbytes / max(1, sample.num_rows))
    return max(1, int(target / per_row))


@dataclass
class Rewrite:
    """What one ``rewrite`` did to a table: files removed and added, rows carried over, and the new
    rows as written (in no particular order)."""

    removed: list[DataFile]
    added: list[DataFile]
    kept_rows: int
    written: pa.Table


# Materialises new rows by position: ``rewrite`` plans with their keys alone, and each worker
# takes (and casts) only the rows of the files it writes, in parallel and never all at once.
Fetch = Callable[[pa.Array], pa.Table]


class FileWriter:
    """Writes sorted, target-sized data files for one snapshot producer."""

    def __init__(self, tx: Transaction, table: Table, producer: _OverwriteFiles, key: str):
        self.tx, self.table, self.producer, self.key = tx, table, producer, key
        self.counter = itertools.count(0)

    def write(self, rows: pa.Table, ordered: bool = False) -> list[DataFile]:
        # _dataframe_to_data_files is private to pyiceberg, but it is exactly what
        # Transaction.append uses to turn Arrow data into DataFiles (field ids, statistics,
        # partition split, file naming under the producer's commit uuid); adding the files to our
        # own OverwriteFiles producer is what makes the overwrite a single snapshot.
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        if rows.num_rows == 0:
            return []
        step = target_rows(self.tx.table_metadata.properties, rows)
        if not ordered and rows.num_rows > step:
            # Cut into several files, each must cover its own slice of the key range. A single
            # file's bounds are its min and max whatever the row order, so it is left unsorted.
            rows = rows.sort_by(self.key)
        files: list[DataFile] = []
        for start in range(0, rows.num_rows, step):
            files += _dataframe_to_data_files(
                table_metadata=self.tx.table_metadata,
                df=rows.slice(start, step),
                io=self.table.io,
                write_uuid=self.producer.commit_uuid,
                counter=self.counter,
            )
        return files


def rewrite(
    tx: Transaction,
    table: Table,
    producer: _OverwriteFiles,
    key: str,
    found: Lookup,
    replaced: pa.Array | pa.ChunkedArray,
    new_keys: pa.Array | pa.ChunkedArray,
    fetch: Fetch,
) -> Rewrite:
    """Stage, on ``producer``, the removal of the looked-up rows marked ``replaced`` (every row of
    their keys goes) and the addition of the new rows, given by their keys and ``fetch``: files
    that lose a row are rewritten, all others stay as they are."""
    writer = FileWriter(tx, table, producer, key)
    losing = found.rows.filter(replaced)
    affected_ids = sorted(set(pc.unique(losing[FILE]).to_pylist())) if losing.num_rows else []
    affected = [found.files[i] for i in affected_ids]
    shares, rest = _share_by_range(new_keys, affected)
    losing = losing.select([key, FILE, ROW])
    sample = fetch(rest.slice(0, min(len(rest), 1000)))  # the rows' schema and size per row
    schema = sample.schema

    def redo(i: int, f: FileRange, share: pa.Array) -> tuple[int, pa.Table, list[DataFile]]:
        data = read_file(table, f.task)
        keep = data.filter(_without(data, key, losing.filter(pc.equal(losing[FILE], i))))
        keep = keep.select(schema.names).cast(schema)
        new = fetch(share)
        return keep.num_rows, new, writer.write(pa.concat_tables([keep, new]) if new.num_rows else keep)

    def insert(positions: pa.Array) -> tuple[int, pa.Table, list[DataFile]]:
        new = fetch(positions)
        return 0, new, writer.write(new, ordered=True)  # positions are in key order

    added: list[DataFile] = []
    written: list[pa.Table] = []
    kept_rows = 0
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # Each new file is its own job, submitted before the rewrites: the jobs are then of similar
        # size and the largest work does not start last, so the workers finish together.
        step = target_rows(tx.table_metadata.properties, sample) if len(rest) else 1
        jobs = [pool.submit(insert, rest.slice(start, step)) for start in range(0, len(rest), step)]
        jobs += [pool.submit(redo, i, f, share) for i, f, share in zip(affected_ids, affected, shares)]
        for job in jobs:
            kept, new, files = job.result()
            kept_rows += kept
            written.append(new)
            added += files
    for f in affected:
        producer.delete_data_file(f.task.file)
    for data_file in added:
        producer.append_data_file(data_file)
    rows = pa.concat_tables(written) if written else schema.empty_table()
    return Rewrite([f.task.file for f in affected], added, kept_rows, rows)


def _without(data: pa.Table, key: str, gone: pa.Table) -> pa.Array:
    """A mask of ``data`` (a file read whole) without the rows ``gone`` (key, ROW) found in it.

    The lookup read the same file and knows the rows' positions: dropping by position spares a
    hash probe of every key in the file. The keys found there are checked first; should the file
    ever read back in another order, the rows are matched by key instead."""
    rows = gone[ROW].combine_chunks()
    if len(rows) == 0:
        return pa.repeat(pa.scalar(True), data.num_rows)
    at = rows.to_numpy(zero_copy_only=False)
    if int(at.max()) < data.num_rows and pc.all(pc.equal(data[key].take(rows), gone[key].cast(data.schema.field(key).type))).as_py():
        mask = np.ones(data.num_rows, dtype=bool)
        mask[at] = False
        return pa.array(mask)
    return pc.invert(pc.is_in(data[key], value_set=gone[key].combine_chunks().cast(data.schema.field(key).type)))


def _share_by_range(keys: pa.Array | pa.ChunkedArray, files: Sequence[FileRange]) -> tuple[list[pa.Array], pa.Array]:
    """Give each rewritten file the new rows whose ``keys`` fall inside its key range, so files
    stay narrow; the rows outside every rewritten file's range are left over for new files, in key
    order. Returns row positions (taken later, in the worker that writes them). ``files`` are in
    order of lower bound; where ranges overlap, a row goes to the first file that holds it."""
    order = key_order(keys)
    sorted_keys = _Sorted(keys if order is None else keys.take(order))
    if order is None:
        order = pa.array(np.arange(len(keys), dtype=np.int64))
    none = order.slice(0, 0)
    if len(keys) == 0:
        return [none for _ in files], order
    shares, gaps, end = [], [], 0
    for f in files:
        start, stop = _span(sorted_keys, f) if _bounded(f) else (0, 0)
        start = max(start, end)
        if stop <= start:
            shares.append(none)
            continue
        gaps.append(order.slice(end, start - end))
        shares.append(order.slice(start, stop - start))
        end = stop
    gaps.append(order.slice(end))
    return shares, pa.concat_arrays(gaps)


def discard(table: Table, files: Sequence[DataFile]) -> None:
    """Delete data files written for a commit that did not land (best effort)."""
    for f in files:
        try:
            table.io.delete(f.file_path)
        except Exception:
            pass

