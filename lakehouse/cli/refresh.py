"""`lakehouse refresh`: every table up to date, as Dagster runs in the instance."""

from __future__ import annotations

import argparse
import sys

from lakehouse.cli.arguments import seconds
from lakehouse.cli.home import dagster_home
from lakehouse.cli.report import report_run
from lakehouse.settings import Settings

REFRESH_WAIT_SECONDS = 3600


def cmd_refresh(args: argparse.Namespace, settings: Settings) -> int:
    from dagster import DagsterInstance

    from lakehouse.automation.instance_storage import repair_racing_stamps
    from lakehouse.automation.lock import refresh_lock
    from lakehouse.automation.refresh import refresh

    def note(line: str) -> None:
        print(f"lakehouse: {line}", file=sys.stderr)

    # Before the Dagster instance is created or opened: two refreshes creating one would race
    # in its migrations, and two committing the same tables would fail each other's commits.
    with refresh_lock(settings.home, args.wait, on_wait=note):
        home = dagster_home(settings)
        repair_racing_stamps(home, log=note)
        with DagsterInstance.get() as instance:
            outcome = refresh(
                settings, instance, log=note,
                # Dagster's event log on stderr only with --verbose: by default the report below
                # says what each run and step did, and the instance keeps every event for the UI.
                console_log_level="DEBUG" if args.verbose else "CRITICAL",
                on_run=lambda result: report_run(result, instance, home, debug=args.debug, settings=settings),
            )
    if not outcome.runs:
        print("nothing to do")
    return 0 if outcome.success else 1


def register(command) -> None:
    refresh = command(
        "refresh", help="bring every table up to date, as a Dagster run in $DAGSTER_HOME",
        examples="  lakehouse refresh                 ingest what landed, then publish the Gold days it changed\n"
        "  lakehouse refresh --wait 0        give up at once (exit 3) if another refresh is running",
    )
    refresh.add_argument(
        "--wait", type=seconds, default=REFRESH_WAIT_SECONDS, metavar="SECONDS",
        help=f"wait up to SECONDS for a refresh already running on this LAKEHOUSE_HOME to finish, then give up "
        f"with exit code 3 (default {REFRESH_WAIT_SECONDS}; 0 gives up at once)",
    )
    refresh.set_defaults(run=cmd_refresh)
