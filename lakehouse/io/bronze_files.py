"""Bronze files: one Parquet file per landing file, appearing at most once, registered in order.

Layout: ``<root>/dt=YYYY-MM-DD/<landing file name>.parquet`` (Hive partitions any engine reads),
and a registry, the Iceberg table ``<namespace>.<table>__files``: one row per Bronze file with the
sequence number of the commit that registered it. Silver asks the registry for what came after
its watermark (``io/watermarks.py``), so neither planning nor the watermark grows with history.

For each landing file L, whoever writes it and wherever a crash lands:
1. L's rows are written under a hidden temporary name (local disk) or held in memory (S3);
2. L is registered unless it already is: one Iceberg commit asserting the registry did not change
   since it was read, so of two writers racing, exactly one registers L;
3. the file appears under its deterministic name by a create-if-absent (a hard link on local
   disk, a conditional PUT on S3): it appears whole, and at most once.
A crash after 2 leaves L registered with no file: L still looks new (there is no file), so the
next ingest writes the file without registering it again, and Silver meanwhile applies only the
registrations before the first file still missing. A crash before 2 leaves a temporary file,
removed by the next write to that folder once its writer's process is gone.

Written by hand because no library offers an at-most-once file append to a Hive layout; the
registry itself is an ordinary Iceberg table written with pyiceberg.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.expressions import And, EqualTo, GreaterThan, GreaterThanOrEqual, In

from lakehouse import faults
from lakehouse.contracts.model import Column, TableContract, WriteMode
from lakehouse.io.table_store import CommitStamp

SOURCE_FILES_KEY = b"lakehouse.source_files"
STAMP_KEY = b"lakehouse.stamp"
# The landing files an appended batch covers, empty ones included (a file of no records is
# ingested too: recorded, so it is not read again). Travels in the batch's schema metadata: a JSON
# list of paths, or an object of path -> size in bytes as listed (recorded, so a file changed after
# its ingestion is noticed).
BATCH_SOURCES_KEY = b"lakehouse.batch_sources"

# A database source's extract watermark (sources/postgres.py): a registry property set in the
# commit that registers the batch it describes, and a key of that batch's Parquet footer.
EXTRACT_WATERMARK_PROPERTY = "lakehouse.extract-watermark"
EXTRACT_WATERMARK_KEY = b"lakehouse.extract_watermark"

SUFFIX = ".parquet"
# Files an older lakehouse version appended (one per batch, several landing files each).
LEGACY_NAME = re.compile(r"^part-[0-9a-f]{8}-[0-9a-f]{12}\.parquet$")
_DT = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/")
SEQ_BLOCK = 32  # registry partitions: a scan for "after N" opens only the manifests of the last block or two
REGISTER_ATTEMPTS = 8
# The registry's rows are its history; its newest snapshots also name the files they registered, so
# a consumer that is at most this many registrations behind finds its work in the table metadata
# alone, without reading a manifest list as long as the history.
REGISTRY_SNAPSHOTS_KEPT = 20
SUMMARY_NAMES_MAX_BYTES = 8192  # a larger registration is found by a scan instead
TEMP_MAX_AGE = dt.timedelta(days=1)  # a temporary file this old is orphaned whoever wrote it

REGISTRY = TableContract(
    name="registry",
    layer="bronze",
    description="Bronze files in the order they were registered",
    columns=(
        Column(name="file", type="string", required=True, description="Bronze file, relative to the table root"),
        Column(name="dt", type="date", required=True),
        Column(name="source_file", type="string", required=True, description="landing file, relative to the landing root"),
        Column(name="records", type="long", required=True),
        Column(name="source_size", type="long", description="landing file's size in bytes when it was read"),
        Column(name="seq", type="long", required=True, description="sequence number of the registering commit"),
        Column(name="seq_block", type="long", required=True),
        Column(name="records_total", type="long", required=True, description="records in every file registered up to this commit"),
        Column(name="run_id", type="string"),
        Column(name="registered_at", type="timestamptz"),
    ),
    primary_key=("file",),
    partition_by=("seq_block", "dt"),
    write_mode=WriteMode.append,
)


def create_namespace_if_missing(catalog: Catalog, namespace: str) -> None:
    """Create ``namespace`` unless it exists, also when another process creates it at the same
    moment (the SQL catalog then reports the unique-key violation instead of "already exists")."""
    from sqlalchemy.exc import IntegrityError

    try:
        catalog.create_namespace(namespace)
    except (NamespaceAlreadyExistsError, IntegrityError):
        pass


class LegacyBronzeError(RuntimeError):
    """A Bronze folder holds files of an older lakehouse version."""


def bronze_name(landing_path: str) -> str:
    """``orders/dt=2026-01-01/a.jsonl`` -> ``dt=2026-01-01/a.jsonl.parquet``."""
    day = landing_day(landing_path)
    return f"dt={day.isoformat()}/{landing_path.rsplit('/', 1)[-1]}{SUFFIX}"


def landing_key(landing_path: str) -> str:
    """A landing file's identity within its source: ``dt=2026-01-01/a.jsonl``."""
    return bronze_name(landing_path)[: -len(SUFFIX)]


def landing_day(landing_path: str) -> dt.date:
    m = _DT.search(landing_path)
    if not m:
        raise ValueError(f"{landing_path!r} is not under a dt=YYYY-MM-DD folder")
    return dt.date.fromisoformat(m[1])


@dataclass(frozen=True)
class PendingBronze:
    files: list[str]  # Bronze files registered after the watermark, relative to the root
    seq: int  # the watermark once they are applied
    records: int  # records in them (from the registry)
    waiting: list[str]  # registered files not written yet: applied by a later run


@dataclass(frozen=True)
class ExtractPosition:
    """A database source's extract position: the watermark of the last batch registered (None:
    nothing extracted yet) and the registry sequence number the next batch follows."""

    watermark: dict | None
    seq: int


@dataclass(frozen=True)
class _Entry:
    file: str
    day: dt.date
    source: str
    records: int
    source_size: int | None = None


def _host() -> str:
    return socket.gethostname().replace(".", "-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BronzeFiles:
    """The files of one Bronze table and their registry."""

    def __init__(
        self,
        contract: TableContract,
        root: str,
        fs: pafs.FileSystem,
        fs_root: str,
        catalog: Catalog,
        namespace: str,
        put_if_absent: Callable[[str, bytes], bool] | None = None,
        create_namespace: bool = True,
    ):
        """``root`` is the table's URI, ``fs_root`` the same path as ``fs`` names it. On an object
        store ``put_if_absent(path, body)`` creates an object unless it exists (False then)."""
        self.contract = contract
        self.root = root.rstrip("/")
        self.fs = fs
        self.fs_root = fs_root.rstrip("/")
        self.catalog = catalog
        self.identifier = (namespace, f"{contract.name}__files")
        self.put_if_absent = put_if_absent
        self.create_namespace = create_namespace

    # ---- listing ---------------------------------------------------------------------------
    def _list(self, days: Iterable[dt.date] | None) -> list[pafs.FileInfo]:
        if days is None:
            infos = self.fs.get_file_info(pafs.FileSelector(self.fs_root, recursive=True, allow_not_found=True))
        else:
            infos = [
                i for d in sorted(set(days))
                for i in self.fs.get_file_info(pafs.FileSelector(f"{self.fs_root}/dt={d.isoformat()}", allow_not_found=True))
            ]
        return [i for i in infos if i.type == pafs.FileType.File]

    def files(self, days: Iterable[dt.date] | None = None) -> list[str]:
        """Visible Bronze files (optionally of some days only), relative to the root."""
        infos = self._list(days)
        legacy = [i.path for i in infos if LEGACY_NAME.match(i.base_name)]
        if legacy:
            raise LegacyBronzeError(
                f"{self.contract.qualified_name}: {len(legacy)} Bronze file(s) such as {legacy[0]} were written by an older "
                "lakehouse version; run `lakehouse repair` once to convert this home"
            )
        names = [i.path[len(self.fs_root) + 1 :] for i in infos if i.base_name.endswith(SUFFIX) and not i.base_name.startswith((".", "_"))]
        return sorted(names)

    def days(self) -> list[dt.date]:
        """Days that have a ``dt=`` folder, oldest first."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.fs_root, allow_not_found=True))
        found = [m[1] for i in infos if i.type == pafs.FileType.Directory and (m := re.match(r"^dt=(\d{4}-\d{2}-\d{2})$", i.base_name))]
        return sorted(dt.date.fromisoformat(d) for d in found)

    def ingested(self, days: Iterable[dt.date]) -> set[str]:
        """Landing keys (``dt=D/name``) of the files that are in Bronze on those days."""
        return {name[: -len(SUFFIX)] for name in self.files(days)}

    # ---- writing ---------------------------------------------------------------------------
    def append(self, data: pa.Table, sources: list[str], stamp: CommitStamp, sizes: dict[str, int] | None = None) -> tuple[int, list[str]]:
        """Append one Bronze file per landing file in ``sources`` (relative landing paths; their
        rows are those of ``data`` with that ``_source_file``). Returns the rows and the files this
        call made appear; a landing file already in Bronze is left as it is."""
        by_source = _split_by_source(data, sources)
        present = set(self.files({landing_day(s) for s in sources}))
        todo = {s: rows for s, rows in by_source.items() if bronze_name(s) not in present}
        if not todo:
            return 0, []
        since = self.current_seq()  # read before the markers: see register()
        # A marker per landing file, created if absent: a file whose marker this call created was
        # never attempted before, so only registrations made since can hold it. Any other (a
        # crashed attempt, a writer racing this one) is looked up in the whole registry.
        attempted = {s for s in todo if not self._mark(bronze_name(s))}
        staged = {s: self._stage(bronze_name(s), rows, stamp) for s, rows in todo.items()}
        appeared: list[str] = []
        written = 0
        try:
            faults.point("bronze.before_register", self.contract.asset_key.to_user_string())
            entries = [_Entry(bronze_name(s), landing_day(s), s, rows.num_rows, (sizes or {}).get(s)) for s, rows in todo.items()]
            self.register(entries, stamp, since=since, look_up={bronze_name(s) for s in attempted})
            faults.point("bronze.before_claim", self.contract.asset_key.to_user_string())
            for source, stage in staged.items():
                if self._claim(bronze_name(source), stage):
                    appeared.append(bronze_name(source))
                    written += todo[source].num_rows
        finally:
            for stage in staged.values():
                self._unstage(stage)
        return written, appeared

    def _mark(self, name: str) -> bool:
        """Create the attempt marker of a Bronze file; False if it exists already."""
        target = f"{self.fs_root}__files/attempts/{name}"
        if self.put_if_absent is not None:
            return self.put_if_absent(target, b"")
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _stage(self, name: str, rows: pa.Table, stamp: CommitStamp, extra: dict[bytes, bytes] | None = None):
        body = rows.drop_columns([c for c in self.contract.partition_by if c in rows.column_names])
        body = body.replace_schema_metadata(
            {SOURCE_FILES_KEY: json.dumps(sorted(set(body["_source_file"].to_pylist()))).encode(), STAMP_KEY: json.dumps(stamp.properties()).encode(),
             **(extra or {})}
        )
        if self.put_if_absent is not None:
            buffer = io.BytesIO()
            pq.write_table(body, buffer, compression="zstd")
            return buffer.getvalue()
        folder = f"{self.fs_root}/{name.rsplit('/', 1)[0]}"
        self.fs.create_dir(folder, recursive=True)
        self._remove_orphaned_temporaries(folder)
        base = name.rsplit("/", 1)[-1]
        # Hidden (readers skip names starting with "."), naming its writer so a later run can
        # tell a crashed writer's leftovers from a live writer's work in progress.
        tmp = f"{folder}/.{base}.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(body, tmp, filesystem=self.fs, compression="zstd")
        return tmp

    def _claim(self, name: str, stage) -> bool:
        """Make the staged file appear as ``name`` unless it exists; True if this call made it appear."""
        target = f"{self.fs_root}/{name}"
        if self.put_if_absent is not None:
            return self.put_if_absent(target, stage)
        try:
            os.link(stage, target)  # atomic, and refuses to replace: the loser of a race learns it here
        except FileExistsError:
            return False
        return True

    def _unstage(self, stage) -> None:
        if isinstance(stage, str):
            try:
                os.unlink(stage)
            except FileNotFoundError:
                pass

    def _remove_orphaned_temporaries(self, folder: str) -> int:
        """Remove temporary files whose writer is gone (same host, dead pid) or that are a day old."""
        removed = 0
        now = time.time()
        for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            if info.type != pafs.FileType.File or not (info.base_name.startswith(".") and info.base_name.endswith(".tmp")):
                continue
            parts = info.base_name.rsplit(".", 4)  # .<base>.<host>.<pid>.<token>.tmp
            mine = len(parts) == 5 and parts[1] == _host() and parts[2].isdigit()
            dead = mine and not _alive(int(parts[2]))
            old = info.mtime is not None and now - info.mtime.timestamp() > TEMP_MAX_AGE.total_seconds()
            if dead or old:
                self.fs.delete_file(info.path)
                removed += 1
        return removed

    def remove_orphaned_temporaries(self) -> int:
        """Every day folder's leftovers of crashed writers (see ``_remove_orphaned_temporaries``)."""
        if self.put_if_absent is not None:
            return 0  # object stores get whole objects or nothing: no temporaries
        folders = {f"{self.fs_root}/{i.path[len(self.fs_root) + 1 :].split('/', 1)[0]}" for i in self._list(None) if "/" in i.path[len(self.fs_root) + 1 :]}
        return sum(self._remove_orphaned_temporaries(f) for f in sorted(folders))

    # ---- registry --------------------------------------------------------------------------
    def _registry(self, create: bool = False):
        try:
            return _with_every_column(self.catalog.load_table(self.identifier))
        except NoSuchTableError:
            if not create:
                return None
        if self.create_namespace:
            create_namespace_if_missing(self.catalog, self.identifier[0])
        return self.catalog.create_table_if_not_exists(
            self.identifier,
            schema=REGISTRY.iceberg_schema,
            partition_spec=REGISTRY.partition_spec(),
            location=f"{self.root}__files",
            properties={
                "format-version": "2",
                "write.parquet.compression-codec": "zstd",
                # Fast appends add a manifest per registration, and every commit rewrites a manifest
                # list as long as the history; merged, it stays short.
                "commit.manifest-merge.enabled": "true",
                # pyiceberg re-applies a failed append to the new metadata by itself; a registration
                # must instead re-check what the winner registered (register()), so it retries itself.
                "commit.retry.num-retries": "0",
                # Every commit copies the metadata (pyiceberg deep-copies it per change): keep it short.
                "write.metadata.previous-versions-max": "5",
                "write.metadata.delete-after-commit.enabled": "true",
                "lakehouse.records-total": "0",
                "lakehouse.files-total": "0",
            },
        )

    def register(
        self, entries: list[_Entry], stamp: CommitStamp, since: int | None = None, look_up: set[str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> list[str]:
        """Register the entries not registered yet, in one commit; returns the files it registered.
        ``properties`` are set on the registry in that same commit (an extract's watermark).

        With ``since``, an entry not in ``look_up`` can only have been registered after registry
        sequence number ``since`` (see ``append``): only those registrations are checked, from
        their snapshots' summaries. Otherwise (and for ``look_up``) the registry's rows are."""
        if not entries:
            return []
        for attempt in range(1, REGISTER_ATTEMPTS + 1):
            table = self._registry(create=True)
            if since is None:
                known = self._registered(table, entries)
            else:
                recent = self._recent_commits(table, since)
                slow = entries if recent is None else [e for e in entries if e.file in (look_up or set())]
                known = {name for commit in (recent or {}).values() for name, _ in commit}
                known |= self._registered(table, slow) if slow else set()
            new = [e for e in entries if e.file not in known]
            if not new:
                return []
            # The commit asserts main did not move since this read, so this is its sequence number.
            seq = table.metadata.last_sequence_number + 1
            total = int(table.properties.get("lakehouse.records-total", "0")) + sum(e.records for e in new)
            file_count = int(table.properties.get("lakehouse.files-total", "0")) + len(new)
            now = dt.datetime.now(dt.UTC)
            rows = pa.table(
                {
                    "file": [e.file for e in new],
                    "dt": [e.day for e in new],
                    "source_file": [e.source for e in new],
                    "records": [e.records for e in new],
                    "source_size": [e.source_size for e in new],
                    "seq": [seq] * len(new),
                    "seq_block": [seq // SEQ_BLOCK] * len(new),
                    "records_total": [total] * len(new),
                    "run_id": [stamp.run_id] * len(new),
                    "registered_at": [now] * len(new),
                },
                schema=REGISTRY.arrow_schema,
            )
            try:
                summary = {**stamp.properties(), "lakehouse.records-total": str(total)}
                names = json.dumps([[e.file, e.records] for e in new], separators=(",", ":"))
                if len(names) <= SUMMARY_NAMES_MAX_BYTES:
                    summary["lakehouse.registered"] = names
                with table.transaction() as tx:
                    tx.append(rows, snapshot_properties=summary)
                    tx.set_properties({"lakehouse.records-total": str(total), "lakehouse.files-total": str(file_count), **(properties or {})})
            except CommitFailedException:
                if attempt == REGISTER_ATTEMPTS:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
                continue
            self._expire(table)
            return [e.file for e in new]
        raise AssertionError("unreachable")

    def _registered(self, table, entries: list[_Entry]) -> set[str]:
        """Which entries the registry holds, from its rows (reads its manifests)."""
        days = sorted({e.day for e in entries})
        names = [e.file for e in entries]
        found = table.scan(row_filter=And(In("dt", days), In("file", names)) if len(days) > 1 else And(EqualTo("dt", days[0]), In("file", names)), selected_fields=("file",)).to_arrow()
        return set(found["file"].to_pylist())

    def _expire(self, table) -> None:
        """Keep the registry's metadata small: its rows are its history, so old snapshots can go
        (in batches, so most registrations are one commit)."""
        table = table.refresh()
        snapshots = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number or 0)
        if len(snapshots) < REGISTRY_SNAPSHOTS_KEPT + REGISTRY_SNAPSHOTS_KEPT // 5:
            return
        old = [s.snapshot_id for s in snapshots[:-REGISTRY_SNAPSHOTS_KEPT]]
        try:
            table.maintenance.expire_snapshots().by_ids(old).commit()
        except CommitFailedException:
            pass  # another writer committed meanwhile; a later registration expires them

    # ---- extracts (database sources) --------------------------------------------------------
    def extract_position(self) -> ExtractPosition:
        """Where the next extract of a database source starts: the watermark committed with the
        last registration, and the registry sequence number the next batch is named after."""
        table = self._registry()
        if table is None:
            return ExtractPosition(None, 0)
        raw = table.properties.get(EXTRACT_WATERMARK_PROPERTY)
        return ExtractPosition(json.loads(raw) if raw else None, table.metadata.last_sequence_number)

    def extract_batch_path(self, source: str, position: ExtractPosition, today: dt.date) -> str:
        """The source path (``<source>/dt=D/<source>-<seq>``) of the batch that follows ``position``.

        The same position always names the same batch, so an extract that crashed after its file
        appeared and before it was registered is found, and registered as it is, by the next one.
        Its day is the first attempt's, kept in a marker created if absent."""
        name = f"{source}-{position.seq + 1:010d}"
        marker = f"{self.fs_root}__files/attempts/{source}/{name}.day"
        body = today.isoformat().encode()
        if self.put_if_absent is not None:
            if not self.put_if_absent(marker, body):
                with self.fs.open_input_stream(marker) as f:
                    body = f.read()
        else:
            self.fs.create_dir(marker.rsplit("/", 1)[0], recursive=True)
            tmp = f"{marker}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            Path(tmp).write_bytes(body)
            try:
                os.link(tmp, marker)  # appears whole, and the first attempt's day stays
            except FileExistsError:
                body = Path(marker).read_bytes()
            finally:
                os.unlink(tmp)
        return f"{source}/dt={body.decode()}/{name}"

    def append_extract(self, data: pa.Table, path: str, stamp: CommitStamp, watermark: dict) -> tuple[int, str | None]:
        """Append one extracted batch (``data``, whose rows all name source ``path``) and commit
        ``watermark`` with its registration. Unlike a landing file, an extract cannot be read again
        as it was, so its file appears first and is then registered: a crash in between leaves a
        file no reader of the registry sees, which the next extract (the same ``path``, see
        ``extract_batch_path``) registers as it is, with the watermark it was written with.
        Returns the records registered and the Bronze file (None: nothing registered by this call)."""
        name = bronze_name(path)
        stage = self._stage(name, data, stamp, extra={EXTRACT_WATERMARK_KEY: json.dumps(watermark).encode()})
        try:
            faults.point("extract.before_claim", self.contract.asset_key.to_user_string())
            if not self._claim(name, stage):  # an earlier attempt's file, or a racing extract's: it wins
                present = pq.ParquetFile(f"{self.fs_root}/{name}", filesystem=self.fs)
                watermark = json.loads(present.schema_arrow.metadata[EXTRACT_WATERMARK_KEY])
                records = present.metadata.num_rows
            else:
                records = data.num_rows
        finally:
            self._unstage(stage)
        faults.point("extract.before_register", self.contract.asset_key.to_user_string())
        entry = _Entry(name, landing_day(path), path, records)
        done = self.register([entry], stamp, properties={EXTRACT_WATERMARK_PROPERTY: json.dumps(watermark, separators=(",", ":"))})
        return (records, name) if done else (0, None)

    def current_seq(self) -> int:
        """The sequence number of the newest registration (0: none)."""
        table = self._registry()
        return table.metadata.last_sequence_number if table is not None else 0

    def pending(self, after: int) -> PendingBronze:
        """Registrations after ``after``, in order, up to the first whose file is not written yet."""
        table = self._registry()
        if table is None or table.metadata.last_sequence_number <= after:
            return PendingBronze([], after, 0, [])
        commits = self._recent_commits(table, after)
        if commits is None:  # further behind than the snapshots kept: read the rows themselves
            rows = table.scan(
                row_filter=And(GreaterThanOrEqual("seq_block", after // SEQ_BLOCK), GreaterThan("seq", after)),
                selected_fields=("file", "seq", "records"),
            ).to_arrow()
            commits = {}
            for row in rows.to_pylist():
                commits.setdefault(row["seq"], []).append((row["file"], row["records"]))
        names = [name for commit in commits.values() for name, _ in commit]
        present = set(self.files({landing_day(n) for n in names}))
        files: list[str] = []
        records, seq = 0, after
        for commit_seq, commit in sorted(commits.items()):
            if any(name not in present for name, _ in commit):
                break  # the watermark moves by whole commits, and never past a file still to come
            files += sorted(name for name, _ in commit)
            records += sum(n for _, n in commit)
            seq = commit_seq
        return PendingBronze(files, seq, records, sorted(n for n in names if n not in present))

    @staticmethod
    def _recent_commits(table, after: int) -> dict[int, list[tuple[str, int]]] | None:
        """The files of each registration after ``after``, from the snapshots' summaries (None when
        a registration's snapshot is no longer kept or does not list its files)."""
        by_seq = {s.sequence_number: s for s in table.metadata.snapshots}
        commits = {}
        for seq in range(after + 1, table.metadata.last_sequence_number + 1):
            snap = by_seq.get(seq)
            listed = snap.summary.additional_properties.get("lakehouse.registered") if snap is not None and snap.summary else None
            if listed is None:
                return None
            commits[seq] = [(name, records) for name, records in json.loads(listed)]
        return commits

    def records_through(self, seq: int) -> int:
        """Records in every file registered up to commit ``seq``, as the registry counted them."""
        table = self._registry()
        if table is None or seq <= 0:
            return 0
        for snap in table.metadata.snapshots:
            if snap.sequence_number == seq and snap.summary and "lakehouse.records-total" in snap.summary.additional_properties:
                return int(snap.summary.additional_properties["lakehouse.records-total"])
        rows = table.scan(row_filter=And(EqualTo("seq_block", seq // SEQ_BLOCK), EqualTo("seq", seq)), selected_fields=("records_total",)).to_arrow()
        if rows.num_rows == 0:
            raise LookupError(f"{self.contract.qualified_name}: no Bronze registration has sequence number {seq}")
        return int(rows["records_total"][0].as_py())

    def source_sizes(self, days: Iterable[dt.date]) -> dict[str, int | None]:
        """Landing file -> its size when it was ingested (None if not recorded), on ``days``."""
        table = self._registry()
        days = sorted(set(days))
        if table is None or not days:
            return {}
        found = table.scan(row_filter=In("dt", days) if len(days) > 1 else EqualTo("dt", days[0]),
                           selected_fields=("source_file", "source_size")).to_arrow()
        return dict(zip(found["source_file"].to_pylist(), found["source_size"].to_pylist()))

    def registered(self) -> pa.Table:
        """Every registration (for repair and tests)."""
        table = self._registry()
        return table.scan().to_arrow() if table is not None else REGISTRY.arrow_schema.empty_table()


def _with_every_column(table):
    """The registry with the columns of REGISTRY: one an older version created lacks them, and
    gets them (optional, so its rows read them as null)."""
    missing = [c for c in REGISTRY.columns if c.name not in table.schema().column_names]
    if not missing:
        return table
    try:
        with table.update_schema() as update:
            for column in missing:
                update.add_column(column.name, REGISTRY.iceberg_schema.find_field(column.name).field_type, doc=column.description)
    except CommitFailedException:
        pass  # another writer added them meanwhile
    return table.refresh()


def _split_by_source(data: pa.Table, sources: list[str]) -> dict[str, pa.Table]:
    """The rows of each landing file, in their order (empty for a file of no records)."""
    if data.num_rows == 0:
        return {s: data for s in sources}
    column = data["_source_file"]
    pieces = {s: data.filter(pc.equal(column, s)) for s in sources}
    if sum(p.num_rows for p in pieces.values()) != data.num_rows:
        unknown = sorted(set(column.to_pylist()) - set(sources))
        raise ValueError(f"Bronze batch holds rows of landing files it does not list: {unknown[:3]}")
    return pieces
