"""`lakehouse repair`: bring a home written by an older version, or damaged by one, to the current layout.

An older version appended Bronze as one file per batch, several landing files each, and two
refreshes at once could append the same landing files twice; Silver kept the list of every Bronze
file it had applied. Repair:

1. removes temporary files whose writer is gone;
2. rewrites every such Bronze file as one file per landing file, dropping a landing file's second
   copy, and registers them (io/bronze_files.py); the old files are deleted once their rows are
   in the new ones;
3. if Bronze changed, or a Silver table carries the old watermark, purges the Silver and Gold
   tables, so the next refresh rebuilds them from Bronze (which holds every landed record once).

Nothing in Bronze is lost: a landing file's rows are deleted only where another copy remains.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lakehouse.contracts.model import Layer, TableContract
from lakehouse.io.bronze_files import (
    LEGACY_NAME,
    SUFFIX,
    _Entry,
    bronze_name,
    landing_day,
)
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.watermarks import LegacyWatermarkError, applied_seq


@dataclass
class RepairReport:
    temporaries_removed: int = 0
    legacy_files: int = 0
    files_written: int = 0
    duplicate_copies_dropped: int = 0  # landing files found in Bronze more than once
    registered: int = 0
    purged: list[str] = field(default_factory=list)

    @property
    def changed_bronze(self) -> bool:
        return bool(self.legacy_files or self.registered)


def repair(store, tables: tuple[TableContract, ...], say: Callable[[str], object], dry_run: bool = False) -> RepairReport:
    """Repair every table of ``tables`` in ``store`` (an ArrowTableStore); ``say`` gets one line per action."""
    report = RepairReport()
    stamp = CommitStamp(run_id="lakehouse-repair", asset_key="repair")
    for contract in (c for c in tables if c.layer is Layer.bronze):
        _repair_bronze(store, contract, report, stamp, say, dry_run)
    stale = []
    for contract in (c for c in tables if c.layer is not Layer.bronze):
        props = store.info(contract).properties
        try:
            for source in (c for c in tables if c.layer is Layer.bronze):
                applied_seq(props, source.qualified_name)
        except LegacyWatermarkError:
            stale.append(contract)
    if report.changed_bronze or stale:
        for contract in (c for c in tables if c.layer is not Layer.bronze):
            for suffix in ("", "__tombstones"):
                identifier = store.identifier(contract, suffix)
                if store.load_table(contract, suffix) is None:
                    continue
                say(f"{'would purge' if dry_run else 'purged'} {'.'.join(identifier)}: the next refresh rebuilds it from Bronze")
                if not dry_run:
                    store.catalog.purge_table(identifier)
                report.purged.append(".".join(identifier))
    if not (report.changed_bronze or report.temporaries_removed or report.purged):
        say("nothing to repair")
    return report


def _repair_bronze(store, contract: TableContract, report: RepairReport, stamp: CommitStamp, say, dry_run: bool) -> None:
    bronze = store.bronze(contract)
    if not dry_run:
        removed = bronze.remove_orphaned_temporaries()
        if removed:
            say(f"removed {removed} temporary file(s) of crashed writers from {contract.qualified_name}")
        report.temporaries_removed += removed
    infos = sorted(bronze._list(None), key=lambda i: i.path)
    legacy = [i for i in infos if LEGACY_NAME.match(i.base_name)]
    present = {i.path[len(bronze.fs_root) + 1 :] for i in infos if i.base_name.endswith(SUFFIX) and not LEGACY_NAME.match(i.base_name) and not i.base_name.startswith(".")}
    report.legacy_files += len(legacy)
    for info in legacy:
        rows = ds.dataset(info.path, filesystem=bronze.fs, format="parquet").to_table()
        day = landing_day(info.path[len(bronze.fs_root) + 1 :].split("/", 1)[0] + "/")
        for source in sorted(set(rows["_source_file"].to_pylist())):
            name = bronze_name(source)
            if name in present:
                report.duplicate_copies_dropped += 1
                say(f"{contract.qualified_name}: dropping a second copy of {source} in {info.path}")
                continue
            part = rows.filter(pc.equal(rows["_source_file"], source))
            if not dry_run:
                stage = bronze._stage(name, part.append_column("dt", _repeat_day(day, part.num_rows)), stamp)
                try:
                    bronze.register([_Entry(name, landing_day(source), source, part.num_rows)], stamp)
                    bronze._claim(name, stage)
                finally:
                    bronze._unstage(stage)
            present.add(name)
            report.files_written += 1
        if not dry_run:
            bronze.fs.delete_file(info.path)
        say(f"{contract.qualified_name}: {'would convert' if dry_run else 'converted'} {info.path} to one file per landing file")
    # Files that are there but were never registered (written by the old layout's successor before
    # the registry existed, or by hand): registered so Silver applies them.
    registered = set(bronze.registered()["file"].to_pylist())
    unregistered = sorted(present - registered)
    if unregistered and not dry_run:
        fs_root = bronze.fs_root
        entries = [
            _Entry(name, landing_day(name), _source_of(bronze, f"{fs_root}/{name}", name), pq.read_metadata(f"{fs_root}/{name}", filesystem=bronze.fs).num_rows)
            for name in unregistered
        ]
        bronze.register(entries, stamp)
    if unregistered:
        say(f"{contract.qualified_name}: {'would register' if dry_run else 'registered'} {len(unregistered)} Bronze file(s)")
    report.registered += len(unregistered)


def _source_of(bronze, path: str, name: str) -> str:
    meta = pq.read_schema(path, filesystem=bronze.fs).metadata or {}
    sources = json.loads(meta.get(b"lakehouse.source_files", b"[]"))
    return sources[0] if sources else name[: -len(SUFFIX)]


def _repeat_day(day, n: int) -> pa.Array:
    return pa.array([day] * n, pa.date32())
