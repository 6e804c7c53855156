"""Table maintenance on Iceberg tables, written once for both table stores: compaction of small
files, manifest rewrites, snapshot expiry with deletion of the files only expired snapshots held,
and removal of orphan files. Every change is catalog metadata plus Parquet files, whichever engine
wrote the table (pyiceberg and Arrow, or Spark), on the local catalog or on Glue.

pyiceberg 0.12 expires snapshots in metadata only and has neither rewrite-data-files nor
rewrite-manifests nor remove-orphan-files, so those are here, on its snapshot producers:

1. **Compaction**: per partition, once it holds ``min_small_files`` files smaller than
   ``small_file_bytes``, they are read, sorted by the key (so the merge's key-range pruning stays
   sharp) and written as target-size files, in one overwrite commit that asserts main did not move.
   A writer that commits first wins: the compaction re-plans on the new state and tries again
   (``COMMIT_ATTEMPTS``), never overwriting a newer snapshot. The snapshot says it changed no rows
   (``MAINTENANCE_PROPERTY`` and empty ``lakehouse.changed.*``), so Gold sees no change in it.
2. **Manifests**: once the current snapshot has ``max_manifests``, they are merged into target-size
   manifests by a commit that adds no file.
3. **Expiry**: snapshots past both retention rules (count and age) are expired, except ref heads,
   each branch's history back to main, and any snapshot newer than what a consumer of the table
   still has to read (a Gold table's or dbt model's ``lakehouse.built-from`` watermark). Then the
   files that only the expired snapshots referenced are deleted.
4. **Orphans**: files under the table's location that no snapshot and no metadata-log entry
   references, and that are older than ``orphan_file_days``, are deleted. Younger files may belong
   to a write still in flight and are never touched.

A dry run plans every step and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, ancestors_of
from pyiceberg.table.update.snapshot import _MergeAppendFiles

from lakehouse.contracts.maintenance import MaintenancePolicy
from lakehouse.contracts.model import Layer, TableContract
from lakehouse.faults import point
from lakehouse.io import file_rewrite
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.watermarks import BUILT_FROM_PREFIX, CHANGED_PREFIX, MAINTENANCE_PROPERTY, BuiltFrom

COMMIT_ATTEMPTS = 5  # a compaction that loses this many races in a row to writers waits for the next run


@dataclass
class MaintenanceReport:
    """What maintenance did (or, in a dry run, would do) to one Iceberg table."""

    table: str
    dry_run: bool
    skipped: str | None = None  # why nothing was looked at (opted out, no table)
    data_files_before: int = 0
    data_bytes_before: int = 0
    data_files_after: int = 0
    data_bytes_after: int = 0
    files_compacted: int = 0  # small files rewritten
    files_written: int = 0  # the files they became
    compaction_conflicts: int = 0  # commits lost to a concurrent writer, re-planned
    manifests_before: int = 0
    manifests_after: int = 0
    snapshots_before: int = 0
    snapshots_after: int = 0
    snapshots_expired: int = 0
    expired_files_deleted: int = 0
    orphan_files_deleted: int = 0
    bytes_reclaimed: int = 0
    seconds: float = 0.0
    actions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files_compacted or self.manifests_after != self.manifests_before or self.snapshots_expired
                    or self.expired_files_deleted or self.orphan_files_deleted)


# ---- what a table references -------------------------------------------------------------------
def _path(uri: str) -> str:
    """A file's location as the filesystem lists it (``s3://b/k`` -> ``b/k``, ``file:///p`` -> ``/p``)."""
    if uri.startswith("file:"):
        return "/" + uri[len("file:"):].lstrip("/")
    return uri.split("://", 1)[-1]


def referenced_files(table: Table, snapshot_ids: Iterable[int]) -> set[str]:
    """Every file the given snapshots reference: manifest lists, manifests, data and delete files."""
    files: set[str] = set()
    seen_manifests: set[str] = set()
    for snapshot_id in snapshot_ids:
        snapshot = table.metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            continue
        files.add(_path(snapshot.manifest_list))
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            files.add(_path(manifest.manifest_path))
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.add(_path(entry.data_file.file_path))
    return files


def _checksum_of(path: str) -> str | None:
    """The file a Hadoop checksum sidecar (``dir/.name.crc``, written by Spark on a local
    filesystem) belongs to, or None if ``path`` is not one."""
    folder, _, name = path.rpartition("/")
    if name.startswith(".") and name.endswith(".crc"):
        return f"{folder}/{name[1:-4]}"
    return None


def _checksum_sidecar(path: str) -> str:
    folder, _, name = path.rpartition("/")
    return f"{folder}/.{name}.crc"


def _metadata_files(table: Table) -> set[str]:
    return {_path(table.metadata_location)} | {_path(entry.metadata_file) for entry in table.metadata.metadata_log}


def _live_tasks(table: Table) -> list[FileScanTask]:
    return list(table.scan().plan_files()) if table.current_snapshot() is not None else []


# ---- the steps ---------------------------------------------------------------------------------
def compaction_groups(tasks: list[FileScanTask], policy: MaintenancePolicy) -> list[list[FileScanTask]]:
    """The small files to rewrite together: per partition, when there are at least
    ``min_small_files`` of them (a file with delete files is left alone: its rows need them)."""
    by_partition: dict[tuple, list[FileScanTask]] = {}
    for task in tasks:
        if task.delete_files or task.file.file_size_in_bytes >= policy.small_file_bytes:
            continue
        partition = tuple(task.file.partition) if task.file.partition is not None else ()
        by_partition.setdefault((task.file.spec_id, partition), []).append(task)
    return [group for _, group in sorted(by_partition.items(), key=lambda kv: str(kv[0])) if len(group) >= policy.min_small_files]


class _ManifestRewrite(_MergeAppendFiles):
    """A commit that adds no file and merges every manifest of the current snapshot into
    target-size ones: pyiceberg's manifest merging, on for this commit alone."""

    def __init__(self, transaction, io, snapshot_properties):
        super().__init__(Operation.APPEND, transaction, io, MAIN_BRANCH, snapshot_properties=snapshot_properties)
        self._merge_enabled = True
        self._min_count_to_merge = 2


class TableMaintenance:
    """Maintenance for a store's Iceberg tables (mixed into both stores, over IcebergTables)."""

    def maintain(
        self, contract: TableContract, stamp: CommitStamp, *, dry_run: bool = False, now: dt.datetime | None = None,
        policy: MaintenancePolicy | None = None,
    ) -> list[MaintenanceReport]:
        """Maintain ``contract``'s table (and a merge table's tombstones) under its policy."""
        policy = policy or contract.maintenance_policy
        now = now or dt.datetime.now(dt.UTC)
        if not policy.enabled:
            return [MaintenanceReport(contract.qualified_name, dry_run, skipped="maintenance is off in its policy")]
        if contract.layer is Layer.bronze:
            return [MaintenanceReport(contract.qualified_name, dry_run, skipped="Bronze files are the record of what landed: never rewritten")]
        reports = []
        for suffix in ("", "__tombstones") if contract.delete_flag else ("",):
            table = self.load_table(contract, suffix)
            name = contract.qualified_name + suffix
            if table is None:
                reports.append(MaintenanceReport(name, dry_run, skipped="the table does not exist yet"))
                continue
            key = contract.primary_key[0] if contract.primary_key else None
            change_columns = contract.change_columns if not suffix else ()
            consumed_as = contract.qualified_name if not suffix else None  # Gold reads the table, not its tombstones
            reports.append(self._maintain_table(table, name, consumed_as, key, change_columns, policy, stamp, dry_run, now))
        return reports

    def _maintain_table(self, table, name, consumed_as, key, change_columns, policy, stamp, dry_run, now) -> MaintenanceReport:
        started = time.monotonic()
        report = MaintenanceReport(name, dry_run)
        tasks = _live_tasks(table)
        report.data_files_before = len(tasks)
        report.data_bytes_before = sum(t.file.file_size_in_bytes for t in tasks)
        report.snapshots_before = len(table.metadata.snapshots)
        report.manifests_before = len(table.current_snapshot().manifests(table.io)) if table.current_snapshot() else 0
        properties = self._maintenance_properties(table, stamp, change_columns)
        table = self._compact(table, key, policy, properties, report)
        table = self._rewrite_manifests(table, policy, properties, report)
        table = self._expire(table, policy, now, report, consumed_as)
        self._remove_orphans(table, policy, now, report)
        tasks = _live_tasks(table.refresh()) if not dry_run else tasks
        if not dry_run:
            report.data_files_after = len(tasks)
            report.data_bytes_after = sum(t.file.file_size_in_bytes for t in tasks)
            report.snapshots_after = len(table.metadata.snapshots)
            report.manifests_after = len(table.current_snapshot().manifests(table.io)) if table.current_snapshot() else 0
        else:
            report.data_files_after = report.data_files_before - report.files_compacted + report.files_written
            report.data_bytes_after = report.data_bytes_before
            report.snapshots_after = report.snapshots_before - report.snapshots_expired
            report.manifests_after = report.manifests_after or report.manifests_before
        report.seconds = time.monotonic() - started
        return report

    @staticmethod
    def _maintenance_properties(table: Table, stamp: CommitStamp, change_columns) -> dict[str, str]:
        """The summary of a maintenance commit: who ran it, that it changed no rows (so no Gold day
        is stale because of it), and the code version of the data it holds (unchanged)."""
        props = {**CommitStamp(stamp.run_id, stamp.asset_key).properties(), MAINTENANCE_PROPERTY: "true"}
        current = table.current_snapshot()
        version = (current.summary or {}).get("dagster.code-version") if current is not None else None
        if version:
            props["dagster.code-version"] = version
        props.update({f"{CHANGED_PREFIX}{column}": "" for column in change_columns})
        return props

    def _compact(self, table: Table, key: str | None, policy: MaintenancePolicy, properties, report: MaintenanceReport) -> Table:
        for _attempt in range(COMMIT_ATTEMPTS):
            table = table.refresh()
            groups = compaction_groups(_live_tasks(table), policy)
            if not groups:
                return table
            inputs = sum(len(g) for g in groups)
            if report.dry_run:
                report.files_compacted = inputs
                report.files_written = len(groups)  # at least one file per partition; more if they exceed the target
                report.actions.append(f"compact {inputs} small files in {len(groups)} partition(s)")
                return table
            written: list = []
            try:
                with table.transaction() as tx:
                    tx.set_properties({"write.target-file-size-bytes": str(policy.target_file_bytes)})
                    with tx.update_snapshot(snapshot_properties=properties).overwrite() as producer:
                        writer = file_rewrite.FileWriter(tx, table, producer, key)
                        for group in groups:
                            rows = pa.concat_tables(file_rewrite.read_file(table, task) for task in group)
                            if key is not None:
                                rows = rows.sort_by(key)
                            files = writer.write(rows, ordered=True)  # sorted by key above, or no key to sort by
                            written += files
                            for task in group:
                                producer.delete_data_file(task.file)
                            for data_file in files:
                                producer.append_data_file(data_file)
                    point("maintenance.before_commit", report.table)  # staged; main is asserted unmoved on commit
            except CommitFailedException:
                file_rewrite.discard(table, written)
                report.compaction_conflicts += 1
                continue
            report.files_compacted += inputs
            report.files_written += len(written)
            report.actions.append(f"compacted {inputs} small files into {len(written)}")
            return table.refresh()
        report.actions.append(f"compaction gave up after {COMMIT_ATTEMPTS} commits lost to concurrent writers; the next run tries again")
        return table.refresh()

    def _rewrite_manifests(self, table: Table, policy: MaintenancePolicy, properties, report: MaintenanceReport) -> Table:
        current = table.current_snapshot()
        count = len(current.manifests(table.io)) if current is not None else 0
        if count < policy.max_manifests:
            return table
        if report.dry_run:
            report.actions.append(f"rewrite {count} manifests")
            report.manifests_after = 1
            return table
        try:
            with table.transaction() as tx:
                _ManifestRewrite(tx, table.io, properties).commit()
        except CommitFailedException:
            report.actions.append("manifest rewrite lost to a concurrent writer; the next run tries again")
            return table.refresh()
        table = table.refresh()
        report.actions.append(f"rewrote {count} manifests into {len(table.current_snapshot().manifests(table.io))}")
        return table

    def expirable(self, table: Table, policy: MaintenancePolicy, now: dt.datetime, consumed_as: str | None = None) -> set[int]:
        """Snapshots neither retention rule keeps, that no ref needs and no consumer has yet to read."""
        metadata = table.metadata
        current = table.current_snapshot()
        if current is None:
            return set()
        main = list(ancestors_of(current, metadata))
        on_main = {s.snapshot_id for s in main}
        keep = {s.snapshot_id for s in main[: policy.keep_snapshots]}
        cutoff_ms = (now - dt.timedelta(days=policy.keep_snapshot_days)).timestamp() * 1000
        keep |= {s.snapshot_id for s in metadata.snapshots if s.timestamp_ms >= cutoff_ms}
        for ref in metadata.refs.values():
            keep.add(ref.snapshot_id)
            head = metadata.snapshot_by_id(ref.snapshot_id)
            for snapshot in ancestors_of(head, metadata) if head is not None else ():
                keep.add(snapshot.snapshot_id)  # a branch's history back to where it left main
                if snapshot.snapshot_id in on_main:
                    break
        floor = self._consumer_floor(table, consumed_as) if consumed_as else None
        if floor is not None:
            keep |= {s.snapshot_id for s in metadata.snapshots if (s.sequence_number or 0) > floor}
        return {s.snapshot_id for s in metadata.snapshots} - keep

    def _consumer_floor(self, table: Table, qualified: str) -> int | None:
        """The lowest sequence number of this table (``qualified``: layer.name) that a table built
        from it is rebuilt through: the later snapshots say what it has yet to rebuild
        (io/watermarks.py), so they stay."""
        floors = []
        for layer_namespace in set(self.namespaces.values()):
            try:
                identifiers = self.catalog.list_tables(layer_namespace)
            except Exception:  # a namespace not created yet holds no consumer
                continue
            for identifier in identifiers:
                if tuple(identifier) == tuple(table.name()[-2:]):
                    continue
                try:
                    properties = self.catalog.load_table(identifier).properties
                except Exception:  # dropped meanwhile, or not an Iceberg table (Glue's Bronze tables)
                    continue
                if f"{BUILT_FROM_PREFIX}{qualified}" in properties:
                    floors.append(BuiltFrom.parse(properties, qualified).through)
        return min(floors) if floors else None

    def _expire(self, table: Table, policy: MaintenancePolicy, now: dt.datetime, report: MaintenanceReport, consumed_as: str | None) -> Table:
        table = table.refresh()
        expire = self.expirable(table, policy, now, consumed_as)
        if not expire:
            return table
        report.snapshots_expired = len(expire)
        if report.dry_run:
            report.actions.append(f"expire {len(expire)} snapshots")
            return table
        every = [s.snapshot_id for s in table.metadata.snapshots]
        before = referenced_files(table, every)
        table.maintenance.expire_snapshots().by_ids(sorted(expire)).commit()
        table = table.refresh()
        after = referenced_files(table, [s.snapshot_id for s in table.metadata.snapshots])
        gone = before - after
        report.expired_files_deleted, reclaimed = self._delete(table, gone)
        report.bytes_reclaimed += reclaimed
        report.actions.append(f"expired {len(expire)} snapshots, deleted {report.expired_files_deleted} files only they held")
        return table

    def _remove_orphans(self, table: Table, policy: MaintenancePolicy, now: dt.datetime, report: MaintenanceReport) -> None:
        fs, root = self._fs_path(table.location())
        try:
            listed = fs.get_file_info(pafs.FileSelector(root.rstrip("/"), recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return
        referenced = referenced_files(table, [s.snapshot_id for s in table.metadata.snapshots]) | _metadata_files(table)
        cutoff = now - dt.timedelta(days=policy.orphan_file_days)
        def unreferenced(path: str) -> bool:
            owner = _checksum_of(path)  # a checksum goes with its file
            return path not in referenced and (owner is None or owner not in referenced)

        orphans = [
            info for info in listed
            if info.type == pafs.FileType.File and unreferenced(_path(info.path)) and info.mtime is not None
            and _aware(info.mtime) < cutoff
        ]
        if not orphans:
            return
        if report.dry_run:
            report.orphan_files_deleted = len(orphans)
            report.actions.append(f"delete {len(orphans)} orphan files older than {policy.orphan_file_days:g} days")
            return
        for info in orphans:
            fs.delete_file(info.path)
        report.orphan_files_deleted = len(orphans)
        report.bytes_reclaimed += sum(info.size or 0 for info in orphans)
        report.actions.append(f"deleted {len(orphans)} orphan files older than {policy.orphan_file_days:g} days")

    def _delete(self, table: Table, paths: set[str]) -> tuple[int, int]:
        fs, _ = self._fs_path(table.location())
        deleted = reclaimed = 0
        for path in sorted(paths):
            info = fs.get_file_info(path)
            if info.type != pafs.FileType.File:
                continue
            fs.delete_file(path)
            deleted += 1
            reclaimed += info.size or 0
            checksum = fs.get_file_info(_checksum_sidecar(path))
            if checksum.type == pafs.FileType.File:
                fs.delete_file(checksum.path)
        return deleted, reclaimed


def _aware(mtime: dt.datetime) -> dt.datetime:
    return mtime if mtime.tzinfo else mtime.replace(tzinfo=dt.UTC)

