"""Daily partitions for landing days (Bronze) and report dates (Gold), and their range check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import dagster as dg

START_SETTING = "LAKEHOUSE_PARTITIONS_START"
# The first partition before any data exists: wide, so files landing on any day are taken while
# the code location runs (derived from the data at its next load, see ``first_day_of_data``).
DEFAULT_START = dt.date(2000, 1, 1)


class PartitionRangeError(ValueError):
    """Data falls on a day outside the configured partitions."""


class PartitionsResource(dg.ConfigurableResource):
    """The daily partitions' first day, for sensors and schedules to check days against before
    requesting runs (``LAKEHOUSE_PARTITIONS_START``)."""

    start: str = DEFAULT_START.isoformat()

    def definition(self) -> dg.DailyPartitionsDefinition:
        return daily_partitions(dt.date.fromisoformat(self.start))


def daily_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    # end_offset=1 includes today's (still open) day, so files landing today are processed today.
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1, timezone="UTC", fmt="%Y-%m-%d")


def check_days(days: Iterable[dt.date], partitions: dg.DailyPartitionsDefinition, what: str) -> None:
    """Fail, naming the day and the setting, if any day has no partition."""
    start = partitions.start.date()
    last = dt.datetime.now(dt.UTC).date()
    for day in sorted(set(days)):
        if day < start:
            raise PartitionRangeError(
                f"{what} {day} is before the first daily partition, {start} ({START_SETTING}, or when unset the first day of "
                f"the data when the code location loaded): set {START_SETTING} to {day} or earlier, or reload the code location"
            )
        if day > last:
            raise PartitionRangeError(f"{what} {day} is in the future (partitions end today, {last}); check the data's dates")


def first_day_of_data(days: Iterable[dt.date | None]) -> dt.date | None:
    """The first partition a code location needs: the earliest of the days its data falls on
    (landing days, Bronze days, Silver's earliest report date), None when there is no data yet.
    Partitions from there, not from a fixed year, so the UI shows the days that exist."""
    found = [d for d in days if d is not None]
    return min(found) if found else None


def contiguous_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Group days into runs of consecutive days: one Dagster run (single-run backfill) each."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
