"""The exit code and one line for whatever ended a command."""

from __future__ import annotations

import traceback

from lakehouse.cli.report import _locked_database
from lakehouse.settings import Settings, SettingsError


class UsageError(ValueError):
    """An argument the command cannot use (exit code 2)."""



def explain(exc: BaseException, settings: Settings | None) -> tuple[int, str]:
    """The exit code and one line for an error that ended a command."""
    from lakehouse.automation.lock import RefreshLocked
    from lakehouse.automation.partitions import PartitionRangeError
    from lakehouse.io.bronze_files import LegacyBronzeError
    from lakehouse.io.watermarks import LegacyWatermarkError
    from lakehouse.sources.landing import LandingError

    if isinstance(exc, RefreshLocked):
        return 3, str(exc)
    if isinstance(exc, (SettingsError, UsageError, PartitionRangeError, LandingError, LegacyBronzeError, LegacyWatermarkError)):
        return 2, str(exc)
    stack = "".join(traceback.format_tb(exc.__traceback__))
    locked = _locked_database(str(exc), stack, settings) if type(exc).__name__ == "OperationalError" else None
    if locked:
        return 3, locked
    if isinstance(exc, OSError) and exc.strerror:
        return 2, f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return 1, f"unexpected error: {type(exc).__name__}{': ' + first if first else ''} (run with --debug to see the traceback)"

