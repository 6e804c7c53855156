"""Watermarks: what a table has consumed of its sources, in formats whose size does not grow with history.

Two kinds, both kept in the consuming table's properties and committed with its data:

- Bronze -> Silver: Bronze files are registered in order (``io/bronze_files.py``); each
  registration commit has a sequence number. A Silver table records the highest one it has
  applied, ``{"seq": N}``: pending work is every registration after N, found without listing
  what came before.
- Silver -> Gold: every Silver snapshot says in its summary which days it changed
  (``lakehouse.changed.<column>``). A Gold table records the Silver sequence number it is
  rebuilt through, plus the few days rebuilt beyond it: ``{"through": N, "days": {"D": M}}``.
  Which Gold days are stale is then read from the Silver table's own snapshots, never from
  Dagster's event log (which a crash between commit and record can leave behind).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CHANGED_PREFIX = "lakehouse.changed."
APPLIED_PREFIX = "lakehouse.applied."
BUILT_FROM_PREFIX = "lakehouse.built-from."
# On a snapshot made by table maintenance (io/table_maintenance.py): the rows are the same as before.
MAINTENANCE_PROPERTY = "lakehouse.maintenance"


class LegacyWatermarkError(RuntimeError):
    """A table carries bookkeeping written by an older version of the lakehouse."""


# ---- day lists ---------------------------------------------------------------------------
def encode_days(days: Iterable[dt.date]) -> str:
    """Sorted days as ranges: ``2026-01-01..2026-01-10,2026-02-03`` (a year of days stays short)."""
    parts: list[str] = []
    run: list[dt.date] = []
    for day in sorted(set(days)):
        if run and day == run[-1] + dt.timedelta(days=1):
            run.append(day)
            continue
        if run:
            parts.append(_span(run))
        run = [day]
    if run:
        parts.append(_span(run))
    return ",".join(parts)


def _span(run: list[dt.date]) -> str:
    return run[0].isoformat() if len(run) == 1 else f"{run[0].isoformat()}..{run[-1].isoformat()}"


def decode_days(text: str) -> set[dt.date]:
    days: set[dt.date] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("..")
        start = dt.date.fromisoformat(first)
        end = dt.date.fromisoformat(last) if last else start
        days.update(start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return days


def changed_summary(changed: Mapping[str, list]) -> dict[str, str]:
    """Snapshot-summary entries for the days (of each change column) a merge changed."""
    return {f"{CHANGED_PREFIX}{column}": encode_days(_as_day(v) for v in values) for column, values in changed.items()}


def _as_day(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


# ---- Bronze -> Silver --------------------------------------------------------------------
def applied_property(source_qualified_name: str) -> str:
    """The target-table property holding how far it has applied a Bronze source."""
    return f"{APPLIED_PREFIX}{source_qualified_name}"


def applied_seq(properties: Mapping[str, str], source_qualified_name: str) -> int:
    """The highest Bronze registration a table has applied (0: none)."""
    raw = properties.get(applied_property(source_qualified_name))
    if raw is None:
        return 0
    value = json.loads(raw)
    if not isinstance(value, dict) or not isinstance(value.get("seq"), int):
        raise LegacyWatermarkError(
            f"{applied_property(source_qualified_name)} holds a watermark of an older lakehouse version (a list of files); "
            "run `lakehouse repair` once to convert this home"
        )
    return value["seq"]


def applied_value(seq: int) -> str:
    return json.dumps({"seq": seq}, separators=(",", ":"))


# ---- Silver -> Gold ----------------------------------------------------------------------
ALL_DAYS = None  # a change whose days are unknown: every day is stale


@dataclass(frozen=True)
class SnapshotChange:
    """One snapshot in a Silver table's main history: its sequence number and the days it changed
    (``ALL_DAYS`` when the snapshot does not say, e.g. one written by an older version)."""

    seq: int
    days: frozenset[dt.date] | None

    @classmethod
    def from_summary(cls, seq: int, summary: Mapping[str, str], column: str | None = None) -> SnapshotChange:
        if summary.get(MAINTENANCE_PROPERTY):  # compaction, manifest rewrite: no row changed
            return cls(seq, frozenset())
        text = summary.get(f"{CHANGED_PREFIX}{column}") if column else None
        if text is not None:
            return cls(seq, frozenset(decode_days(text)))
        touched = any(int(summary.get(k, 0) or 0) for k in ("added-records", "deleted-records"))
        return cls(seq, ALL_DAYS if touched else frozenset())


@dataclass(frozen=True)
class BuiltFrom:
    """How far a Gold table is rebuilt from one Silver source."""

    through: int = 0  # every change up to this Silver sequence number is rebuilt
    days: dict[dt.date, int] = field(default_factory=dict)  # days rebuilt from a later sequence number

    @classmethod
    def parse(cls, properties: Mapping[str, str], source_qualified_name: str) -> BuiltFrom:
        raw = properties.get(f"{BUILT_FROM_PREFIX}{source_qualified_name}")
        if raw is None:
            return cls()
        value = json.loads(raw)
        return cls(int(value.get("through", 0)), {dt.date.fromisoformat(d): int(s) for d, s in value.get("days", {}).items()})

    def property(self, source_qualified_name: str) -> dict[str, str]:
        value = {"through": self.through, "days": {d.isoformat(): s for d, s in sorted(self.days.items())}}
        return {f"{BUILT_FROM_PREFIX}{source_qualified_name}": json.dumps(value, separators=(",", ":"))}

    @staticmethod
    def recorded(properties: Mapping[str, str], source_qualified_name: str) -> bool:
        """Whether a table records lineage from that source at all (False: never built from it).
        A table never built from a source must read all of it: maintenance may have expired the
        source's oldest snapshots, so its history no longer names every day it holds."""
        return f"{BUILT_FROM_PREFIX}{source_qualified_name}" in properties

    def built_seq(self, day: dt.date) -> int:
        return max(self.through, self.days.get(day, 0))


def stale_days(history: Iterable[SnapshotChange], built: BuiltFrom) -> set[dt.date] | None:
    """Days changed by a Silver snapshot later than the day's last rebuild (``ALL_DAYS``: unknown)."""
    stale: set[dt.date] = set()
    for change in history:
        if change.seq <= built.through:
            continue
        if change.days is ALL_DAYS:
            return ALL_DAYS
        stale.update(d for d in change.days if built.built_seq(d) < change.seq)
    return stale


def is_stale(history: Iterable[SnapshotChange], built: BuiltFrom) -> bool:
    """For an unpartitioned Gold table: did Silver change anything after its last rebuild?"""
    return any(c.seq > built.through and (c.days is ALL_DAYS or c.days) for c in history)


def rebuilt(
    built: BuiltFrom, days: Iterable[dt.date] | None, source_seq: int, history: Iterable[SnapshotChange], buildable=None
) -> BuiltFrom:
    """``built`` after rebuilding ``days`` (None: the whole table) from Silver as of ``source_seq``.

    ``through`` then moves up to the newest sequence number whose changes are all rebuilt, and the
    days it covers leave ``days``: the property keeps only what is ahead of the low-water mark.
    A day ``buildable`` refuses (no partition for it) does not hold ``through`` back: one record
    dated outside the partitions must not keep every later change pending."""
    if days is None:
        return BuiltFrom(max(built.through, source_seq))
    per_day = dict(built.days)
    for day in days:
        per_day[day] = max(per_day.get(day, 0), source_seq)
    through = built.through
    for change in sorted((c for c in history if built.through < c.seq <= source_seq), key=lambda c: c.seq):
        pending = [d for d in (change.days or ()) if buildable is None or buildable(d)]
        if change.days is ALL_DAYS or any(max(through, per_day.get(d, 0)) < change.seq for d in pending):
            break
        through = change.seq
    if through < source_seq and not any(c.seq > through and c.seq <= source_seq for c in history):
        through = source_seq  # nothing in between changed anything
    return BuiltFrom(through, {d: s for d, s in per_day.items() if s > through})


def source_changes(store, source, after: int, column: str | None = None) -> list[SnapshotChange]:
    """The changes in ``source``'s main history after sequence number ``after`` (``store`` is a
    table store: ``history(contract, after)`` gives (sequence number, summary) pairs)."""
    return [SnapshotChange.from_summary(seq, summary, column) for seq, summary in store.history(source, after)]


def built_from_properties(
    target_properties: Mapping[str, str], store, sources, days, partition_source=None, buildable=None
) -> dict[str, str]:
    """Gold lineage to commit with a rebuild of ``days`` (None: the whole table) from ``sources``:
    how far the target is rebuilt from each once the write lands. Read before the sources are, so
    a change made while the rebuild reads is only rebuilt again, never missed.

    ``partition_source`` is (source contract, column) when the target's partitions follow a column
    of one source (daily_sales: silver orders' created_at)."""
    props: dict[str, str] = {}
    for source in sources:
        column = partition_source[1] if partition_source and partition_source[0] is source else None
        built = BuiltFrom.parse(target_properties, source.qualified_name)
        seq = store.current_seq(source)
        scope = days if column else None
        changes = source_changes(store, source, built.through, column)
        props.update(rebuilt(built, scope, seq, changes, buildable).property(source.qualified_name))
    return props
