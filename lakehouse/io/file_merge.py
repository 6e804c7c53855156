"""Copy-on-write by key on Iceberg tables: find, read and rewrite only the data files a batch touches.

The merge semantics live in ``lakehouse.io.merge``; this module is the file-level machinery under
them, used for a Silver table and for its tombstones table:

1. ``file_ranges``: each live data file of the current snapshot with its key bounds, taken from the
   manifest's column statistics.
2. ``lookup``: the candidate files (some batch key lies inside the file's bounds) are read one at a
   time, narrowed to the requested columns, and only their rows whose key is in the batch are kept,
   tagged with the file they came from. Memory: one file's columns plus the matches.
3. ``rewrite``: inside an ``OverwriteFiles`` snapshot producer, each file that loses a row is read
   whole, loses its replaced rows, takes the new rows that fall inside its key range, and is written
   back sorted by key; new rows outside every rewritten file's range go to new files sorted by key.
   Unaffected files are neither read whole nor rewritten, and keep their paths.

Files are written sorted by key and cut to a target size, so each covers a narrow key range, which
is what lets the bounds prune the next merge.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.conversions import from_bytes
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, TableProperties, Transaction
from pyiceberg.table.update.snapshot import _OverwriteFiles

# Files are cut at this much in-memory Arrow data unless the table sets write.target-file-size-bytes
# (pyiceberg's default of 512 MiB would leave a 5M-row Silver table in two files, with nothing to
# prune). 32 MiB is ~150k order rows: a few MB of zstd Parquet and ~30 files per 5M rows, a
# granularity at which a CDC batch concentrated on recent keys touches a few files, while per-file
# costs (manifest entries, footers, object-store requests) stay negligible.
DEFAULT_TARGET_FILE_BYTES = 32 * 1024 * 1024

FILE = "__lakehouse_file"  # index of the file a looked-up row came from

# Two files in flight: the machine's cores, and memory stays a small multiple of one file.
_WORKERS = 2


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
    rows: pa.Table  # requested columns + FILE, only rows whose key is in the batch
    scanned: int  # data files in the snapshot


def file_ranges(table: Table, key: str) -> list[FileRange]:
    """Every live data file of the current snapshot with its decoded key bounds.

    Bounds come from the manifests. String bounds may be truncated (pyiceberg and Java Iceberg
    default to truncate(16)); a truncated lower bound is a prefix and still <= every value, and a
    truncated upper bound is stored with its last code point incremented, so it is still >= every
    value: the bounds stay correct, only looser. A file without bounds is always a candidate.
    """
    if table.current_snapshot() is None:
        return []
    field = table.schema().find_field(key)
    ranges = []
    for task in table.scan().plan_files():
        low = task.file.lower_bounds.get(field.field_id) if task.file.lower_bounds else None
        high = task.file.upper_bounds.get(field.field_id) if task.file.upper_bounds else None
        ranges.append(
            FileRange(
                task,
                from_bytes(field.field_type, low) if low is not None else None,
                from_bytes(field.field_type, high) if high is not None else None,
            )
        )
    return ranges


def _as_numpy(values: pa.Array) -> np.ndarray:
    """Sortable numpy values with the same order as Iceberg's (strings compare by code point)."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_decimal(values.type):
        return np.array(values.to_pylist(), dtype=object)
    return values.to_numpy(zero_copy_only=False)


def _bounds(ranges: Sequence[FileRange], key_type: pa.DataType) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper bounds as numpy values of the key's type, and which files have both."""
    known = np.array([r.lower is not None and r.upper is not None for r in ranges], dtype=bool)
    # from_bytes yields days for dates and microseconds for timestamps, which Arrow takes as is.
    lows = pa.array([r.lower for r, k in zip(ranges, known) if k], key_type)
    highs = pa.array([r.upper for r, k in zip(ranges, known) if k], key_type)
    return _as_numpy(lows), _as_numpy(highs), known


def candidates(ranges: Sequence[FileRange], keys: np.ndarray, key_type: pa.DataType) -> list[FileRange]:
    """The files whose [lower, upper] holds at least one of ``keys`` (sorted, unique).

    Written by hand rather than left to ``table.scan(row_filter=In(key, keys))``: pyiceberg's
    inclusive metrics evaluator stops evaluating an ``In`` of more than 200 literals and keeps every
    file, so a CDC batch would never prune. Sorted keys make this a binary search per file.
    """
    if not ranges:
        return []
    lows, highs, known = _bounds(ranges, key_type)
    hit = np.ones(len(ranges), dtype=bool)
    if len(keys) == 0:
        hit[:] = False
    elif known.any():
        first = np.searchsorted(keys, lows, side="left")  # first batch key >= lower
        inside = first < len(keys)
        inside[inside] = keys[first[inside]] <= highs[inside]
        hit[known] = inside
    chosen = [r for r, h in zip(ranges, hit) if h]
    return sorted(chosen, key=lambda r: (r.lower is None, r.lower if r.lower is not None else 0))


def read_file(table: Table, task: FileScanTask, columns: Sequence[str] | None = None) -> pa.Table:
    """One data file through pyiceberg's reader: columns are resolved by field id (so renamed or
    added columns read right) and any delete files of the task are applied."""
    schema = table.schema() if columns is None else table.schema().select(*columns)
    return ArrowScan(table.metadata, table.io, schema, AlwaysTrue()).to_table([task])


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
    key_type = keys.type
    ranges = file_ranges(table, key)
    empty = pa.schema([*(pa.field(c, t) for c, t in _types(table, columns)), pa.field(FILE, pa.int32())]).empty_table()
    if not ranges or len(keys) == 0:
        return Lookup([], empty, len(ranges))
    ordered = pc.unique(keys).sort()
    sorted_keys = _as_numpy(ordered)
    files = candidates(ranges, sorted_keys, key_type)
    pieces = []
    for i, data in enumerate(_prefetched(table, files, columns)):
        # Only the batch keys inside this file's range can match: probing with that slice keeps the
        # hash-set builds proportional to the batch, not to batch x files.
        f = files[i]
        if f.lower is not None and f.upper is not None:
            lo, hi = _slice(sorted_keys, f.lower, f.upper, key_type)
            probe = ordered.slice(lo, hi - lo)
        else:
            probe = ordered
        hit = data.filter(pc.is_in(data[key], value_set=probe.cast(data.schema.field(key).type)))
        if hit.num_rows:
            pieces.append(hit.append_column(FILE, pa.repeat(pa.scalar(i, pa.int32()), hit.num_rows)))
    rows = pa.concat_tables(pieces, promote_options="permissive") if pieces else empty
    return Lookup(files, rows, len(ranges))


def _types(table: Table, columns: Sequence[str]) -> list[tuple[str, pa.DataType]]:
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    arrow = schema_to_pyarrow(table.schema().select(*columns), include_field_ids=False)
    return [(f.name, f.type) for f in arrow]


def _slice(sorted_keys: np.ndarray, lower: Any, upper: Any, key_type: pa.DataType) -> tuple[int, int]:
    low, high = _as_numpy(pa.array([lower, upper], key_type))
    return int(np.searchsorted(sorted_keys, low, side="left")), int(np.searchsorted(sorted_keys, high, side="right"))


def target_rows(table_properties: dict[str, str], sample: pa.Table) -> int:
    target = int(table_properties.get(TableProperties.WRITE_TARGET_FILE_SIZE_BYTES, DEFAULT_TARGET_FILE_BYTES))
    per_row = max(1.0, sample.nbytes / max(1, sample.num_rows))
    return max(1, int(target / per_row))


@dataclass
class Rewrite:
    """What one ``rewrite`` did to a table: files removed and added, rows carried over."""

    removed: list[DataFile]
    added: list[DataFile]
    kept_rows: int


class _Writer:
    """Writes sorted, target-sized data files for one snapshot producer."""

    def __init__(self, tx: Transaction, table: Table, producer: _OverwriteFiles, key: str, schema: pa.Schema):
        self.tx, self.table, self.producer, self.key, self.schema = tx, table, producer, key, schema
        self.counter = itertools.count(0)

    def write(self, rows: pa.Table) -> list[DataFile]:
        # _dataframe_to_data_files is private to pyiceberg, but it is exactly what
        # Transaction.append uses to turn Arrow data into DataFiles (field ids, statistics,
        # partition split, file naming under the producer's commit uuid); adding the files to our
        # own OverwriteFiles producer is what makes the overwrite a single snapshot.
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        if rows.num_rows == 0:
            return []
        rows = rows.sort_by(self.key)
        step = target_rows(self.tx.table_metadata.properties, rows)
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
    remove_keys: pa.Array,
    new_rows: pa.Table,
) -> Rewrite:
    """Stage, on ``producer``, the removal of every row whose key is in ``remove_keys`` and the
    addition of ``new_rows``: files that lose a row are rewritten, all others stay as they are."""
    schema = new_rows.schema
    writer = _Writer(tx, table, producer, key, schema)
    losing = found.rows.filter(pc.is_in(found.rows[key], value_set=remove_keys.cast(found.rows.schema.field(key).type)))
    affected_ids = sorted(set(pc.unique(losing[FILE]).to_pylist())) if losing.num_rows else []
    affected = [found.files[i] for i in affected_ids]

    new_rows = new_rows.sort_by(key) if new_rows.num_rows else new_rows
    share, rest = _share_by_range(new_rows, key, affected)

    def redo(item: tuple[FileRange, pa.Table]) -> tuple[int, list[DataFile]]:
        f, extra = item
        data = read_file(table, f.task)
        keep = data.filter(pc.invert(pc.is_in(data[key], value_set=remove_keys.cast(data.schema.field(key).type))))
        kept = keep.num_rows
        combined = pa.concat_tables([keep.select(schema.names).cast(schema), extra]) if extra.num_rows else keep.select(schema.names).cast(schema)
        return kept, writer.write(combined)

    added: list[DataFile] = []
    kept_rows = 0
    if affected:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for kept, files in pool.map(redo, zip(affected, share)):
                kept_rows += kept
                added += files
    added += writer.write(rest)
    for f in affected:
        producer.delete_data_file(f.task.file)
    for data_file in added:
        producer.append_data_file(data_file)
    return Rewrite([f.task.file for f in affected], added, kept_rows)


def _share_by_range(rows: pa.Table, key: str, files: Sequence[FileRange]) -> tuple[list[pa.Table], pa.Table]:
    """Give each rewritten file the new rows inside its key range (so files stay narrow and
    disjoint); the rows left over go to new files. ``rows`` is sorted by key."""
    if not files or rows.num_rows == 0:
        return [rows.slice(0, 0) for _ in files], rows
    keys = _as_numpy(rows[key].combine_chunks())
    taken = np.zeros(rows.num_rows, dtype=bool)
    shares = []
    end = 0
    for f in files:
        if f.lower is None or f.upper is None:
            shares.append(rows.slice(0, 0))
            continue
        lo, hi = _slice(keys, f.lower, f.upper, rows.schema.field(key).type)
        lo = max(lo, end)
        if hi > lo:
            taken[lo:hi] = True
            end = hi
        shares.append(rows.slice(lo, max(0, hi - lo)))
    return shares, rows.filter(pa.array(~taken))


def discard(table: Table, files: Sequence[DataFile]) -> None:
    """Delete data files written for a commit that did not land (best effort)."""
    for f in files:
        try:
            table.io.delete(f.file_path)
        except Exception:  # noqa: BLE001 - an orphan file is harmless; cleaning it is a courtesy
            pass

