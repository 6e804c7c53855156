"""The `lakehouse` command: land sample data, refresh every table through Dagster, list tables."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from lakehouse.settings import Settings, SettingsError, load_settings


def _dagster_home(settings: Settings) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SettingsError(f"DAGSTER_HOME: {home} is not a directory") from None
    config = home / "dagster.yaml"
    if not config.exists():  # a new instance: the project's instance settings (run queue limits)
        config.write_text((Path(__file__).parent / "dagster_instance.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(home.absolute())
    return home


def cmd_land_sample(args: argparse.Namespace, settings: Settings) -> int:
    from lakehouse.sources.sample import land_sample

    if "://" not in settings.landing_root:
        landing = Path(settings.landing_root)
        written = land_sample(landing, seed=args.seed, days=args.days, orders_per_day=args.orders_per_day, start=args.start)
        print(f"landed {len(written)} new file(s) under {landing}")
        return 0
    # An object-store landing zone: generate locally, then upload the files it does not have yet.
    import tempfile

    import pyarrow.fs as pafs

    from lakehouse.environment import resources_for

    zone = resources_for(settings)["landing"].zone()
    uploaded = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in land_sample(Path(tmp), seed=args.seed, days=args.days, orders_per_day=args.orders_per_day, start=args.start):
            target = f"{zone.base}/{path.relative_to(tmp).as_posix()}"
            if zone.fs.get_file_info(target).type == pafs.FileType.NotFound:
                pafs.copy_files(str(path), target, destination_filesystem=zone.fs)
                uploaded += 1
    print(f"landed {uploaded} new file(s) under {settings.landing_root}")
    return 0


REFRESH_WAIT_SECONDS = 3600


def cmd_refresh(args: argparse.Namespace, settings: Settings) -> int:
    from dagster import DagsterInstance

    from lakehouse.automation.lock import RefreshLocked, refresh_lock
    from lakehouse.automation.partitions import PartitionRangeError
    from lakehouse.automation.refresh import refresh

    def note(line: str) -> None:
        print(f"lakehouse: {line}", file=sys.stderr)

    try:
        # Before the Dagster instance is created or opened: two refreshes creating one would race
        # in its migrations, and two committing the same tables would fail each other's commits.
        with refresh_lock(settings.home, args.wait, on_wait=note):
            home = _dagster_home(settings)
            with DagsterInstance.get() as instance:
                try:
                    outcome = refresh(settings, instance, log=note)
                except PartitionRangeError as exc:
                    note(str(exc))
                    return 2
                for result in outcome.runs:
                    _report(result, home)
    except RefreshLocked as exc:
        note(str(exc))
        return 3
    if not outcome.runs:
        print("nothing to do")
    return 0 if outcome.success else 1


def _report(result, home: Path) -> None:
    materialized = sorted(
        {e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key is not None}
    )
    print(f"run {result.run_id} ({result.dagster_run.job_name}) {'succeeded' if result.success else 'FAILED'} (DAGSTER_HOME={home})")
    for key in materialized:
        print(f"  materialized {key}")
    for event in result.all_events:
        if event.is_step_failure:
            print(f"  failed {event.step_key}", file=sys.stderr)
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity.value == "ERROR":
            failing = evaluation.metadata.get("failing_count")
            detail = f" ({failing.value} failing)" if failing is not None else ""
            print(f"  check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed{detail}: {evaluation.description}", file=sys.stderr)


def cmd_tables(args: argparse.Namespace, settings: Settings) -> int:
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.environment import resources_for

    store = resources_for(settings)["store"].get_store()
    from lakehouse.io.glue import catalog_metadata

    rows = [("table", "layer", "mode", "rows", "snapshot", "location", "catalog")]
    for contract in ALL_TABLES:
        info = store.info(contract)
        snapshot = str(info.snapshot_id) if info.snapshot_id is not None else (f"{info.files} files" if info.exists else "-")
        catalog = catalog_metadata(store, contract)
        rows.append((
            contract.asset_key.to_user_string(), contract.layer.value, contract.mode.value, str(info.row_count), snapshot,
            info.uri, catalog.get("glue_table", catalog["catalog_table"]),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    """Convert a home written (or damaged) by an older version: see lakehouse/io/repair.py."""
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.environment import resources_for
    from lakehouse.io.repair import repair

    store = resources_for(settings)["store"].get_store()
    report = repair(store, ALL_TABLES, print, dry_run=args.dry_run)
    if report.purged and not args.dry_run:
        print("run `lakehouse refresh` to rebuild Silver and Gold from Bronze")
    return 0


def cmd_rejects(args: argparse.Namespace, settings: Settings) -> int:
    """Recent rejects grouped by reason: how many, from how many files, the latest example."""
    import pyarrow.compute as pc

    from lakehouse.contracts.tables import CUSTOMERS_REJECTS, ORDERS_REJECTS
    from lakehouse.environment import resources_for

    store = resources_for(settings)["store"].get_store()
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=args.days)
    for contract in (ORDERS_REJECTS, CUSTOMERS_REJECTS):
        rows = store.read(contract)
        rows = rows.filter(pc.greater_equal(rows["_ingested_at"], since))
        print(f"{contract.asset_key.to_user_string()}: {rows.num_rows} reject(s) ingested in the last {args.days} day(s)")
        if rows.num_rows == 0:
            continue
        by_reason = rows.group_by("reason").aggregate([("record_id", "count"), ("_source_file", "count_distinct")])
        for r in sorted(by_reason.to_pylist(), key=lambda r: (-r["record_id_count"], r["reason"])):
            example = rows.filter(pc.equal(rows["reason"], r["reason"])).sort_by([("_ingested_at", "descending")]).slice(0, 1).to_pylist()[0]
            print(f"  {r['reason']:<32} {r['record_id_count']:>6}  in {r['_source_file_count_distinct']} file(s); latest {example['record_id']}: {example['_raw'][:60]}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    land = sub.add_parser("land-sample", help="land deterministic sample files into the landing zone")
    land.add_argument("--seed", type=int, default=7)
    land.add_argument("--days", type=int, default=3)
    land.add_argument("--orders-per-day", type=int, default=500)
    land.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 1), help="first landing day (YYYY-MM-DD)")
    land.set_defaults(run=cmd_land_sample)
    refresh = sub.add_parser("refresh", help="bring every table up to date, as a Dagster run in $DAGSTER_HOME")
    refresh.add_argument(
        "--wait", type=_seconds, default=REFRESH_WAIT_SECONDS, metavar="SECONDS",
        help=f"wait up to SECONDS for a refresh already running on this LAKEHOUSE_HOME to finish, then give up "
        f"with exit code 3 (default {REFRESH_WAIT_SECONDS}; 0 gives up at once)",
    )
    refresh.set_defaults(run=cmd_refresh)
    tables = sub.add_parser("tables", help="list tables with layer, write mode, rows and latest snapshot")
    tables.set_defaults(run=cmd_tables)
    repair = sub.add_parser("repair", help="convert a home written or damaged by an older version (Bronze once per landing file)")
    repair.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    repair.set_defaults(run=cmd_repair)
    rejects = sub.add_parser("rejects", help="recent rejected records grouped by reason")
    rejects.add_argument("--days", type=int, default=7, help="look back this many days of ingestion (default 7)")
    rejects.set_defaults(run=cmd_rejects)
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2
    from lakehouse.io.bronze_files import LegacyBronzeError
    from lakehouse.io.watermarks import LegacyWatermarkError

    try:
        return args.run(args, settings)
    except (SettingsError, LegacyBronzeError, LegacyWatermarkError) as exc:
        print(f"lakehouse: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
