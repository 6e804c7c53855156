"""The `lakehouse` command: land sample data, refresh every table through Dagster, inspect and
validate the code location, run one asset, read a run's logs, scaffold a new table.

One module per command group (lakehouse/cli/<group>.py, each with its ``register``); this one
holds the parser and the shared error handling. docs/cli.md documents every command.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from lakehouse.cli import deploy, inspect, landing, refresh, runs, scaffold, tables
from lakehouse.cli.errors import UsageError, explain
from lakehouse.cli.home import dagster_home as _dagster_home
from lakehouse.cli.output import _setup_output, printable
from lakehouse.cli.report import asset_outcome, report_run
from lakehouse.cli.tables import shown_raw
from lakehouse.settings import load_settings

EPILOG = """\
exit codes:
  0  the command succeeded (refresh: every run succeeded and no ERROR check failed)
  1  a run or an ERROR check failed (the lines above say which), validate found problems
     (one line each), or an unexpected error
  2  a setting, an argument or the home needs fixing (the message says which)
  3  another lakehouse process held a lock: another refresh held the refresh lock for
     longer than --wait, or the SQLite catalog was locked
options such as --debug and --verbose may also follow the command; docs/cli.md has them all."""

EXAMPLES = """\
examples:
  lakehouse land-sample && lakehouse refresh      bring every table up to date
  lakehouse validate                              check the code location before a commit
  lakehouse list --json                           what runs, in execution order
  lakehouse run silver/orders --upstream          one asset and what it reads, as a Dagster run
  lakehouse logs                                  the latest run's events
  lakehouse new table gold/order_counts           scaffold a contract, transformation and test
"""

# The command groups, in the order --help lists them.
_GROUPS = (landing, refresh, tables, inspect, runs, scaffold, deploy)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """A wrong argument is one line too (argparse prints the usage first)."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _flags(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("--debug", action="store_true", default=default, help="on an error, also print its traceback")
    p.add_argument(
        "--verbose", action="store_true", default=default,
        help="also print Dagster's event log (DEBUG), Spark's INFO log and Python warnings",
    )


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="lakehouse", description=__doc__, epilog=f"{EXAMPLES}\n{EPILOG}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _flags(p, False)
    # The same flags after the command (`lakehouse refresh --verbose`); absent there, the ones before it count.
    flags = argparse.ArgumentParser(add_help=False)
    _flags(flags, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, examples: str, **kwargs) -> argparse.ArgumentParser:
        """A command whose --help ends with its examples and the exit codes."""
        kwargs.setdefault("description", kwargs.get("help"))
        epilog = f"examples:\n{examples.rstrip()}\n\n{EPILOG}"
        return sub.add_parser(name, parents=[flags], epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    for group in _GROUPS:
        group.register(command)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _setup_output(args.verbose)
    settings = None
    try:
        if getattr(args, "own_settings", False):  # validate reports a settings error as a problem
            return args.run(args, None)
        settings = load_settings()
        return args.run(args, settings)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("lakehouse: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        code, line = explain(exc, settings)
        if args.debug:
            traceback.print_exc()
        print(f"lakehouse: {printable(line)}", file=sys.stderr)
        return code
    finally:
        sys.stdout.flush()


__all__ = ["EPILOG", "UsageError", "_dagster_home", "asset_outcome", "explain", "main", "parser", "printable", "report_run", "shown_raw"]
