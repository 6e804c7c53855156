"""The `lakehouse` command: land sample data, refresh every table through Dagster, list tables."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import logging
import os
import re
import sys
import traceback
import warnings
from pathlib import Path

from lakehouse.settings import Settings, SettingsError, load_settings

EPILOG = """\
exit codes:
  0  the command succeeded (refresh: every run succeeded and no ERROR check failed)
  1  a run or an ERROR check failed (the lines above say which), or an unexpected error
  2  a setting, an argument or the home needs fixing (the message says which)
  3  another lakehouse process held a lock: another refresh held the refresh lock for
     longer than --wait, or the SQLite catalog was locked
options such as --debug and --verbose may also follow the command."""


class UsageError(ValueError):
    """An argument the command cannot use (exit code 2)."""


# ---- output ----------------------------------------------------------------------------------


class _Stdout(io.TextIOBase):
    """sys.stdout, flushed at each line, that goes quiet once its reader has gone (`lakehouse
    rejects | head`): output nobody reads is dropped, and the command ends as it would have."""

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self._stream.write(text)
                if "\n" in text:
                    self._stream.flush()
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        # What is still buffered, and whatever else writes to the descriptor, goes nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return self._stream.encoding

    @property
    def errors(self) -> str | None:
        return self._stream.errors


def _setup_output(verbose: bool) -> None:
    """Quiet by default: Python warnings off (unless -W or PYTHONWARNINGS asks for them), Spark at
    ERROR, this package's progress lines (such as "starting Spark ...") on stderr. ``verbose``:
    warnings on, Spark at INFO, every Python logger at INFO."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # text the terminal cannot show is escaped, never an error
            stream.reconfigure(errors="backslashreplace")
    if not isinstance(sys.stdout, _Stdout):
        sys.stdout = _Stdout(sys.stdout)
    if not sys.warnoptions:
        warnings.simplefilter("default" if verbose else "ignore")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("lakehouse: %(message)s"))
    ours = logging.getLogger("lakehouse")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.INFO)
    ours.propagate = False
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from lakehouse.resources.spark import set_log_level

        set_log_level("INFO")


def printable(text: str | None) -> str:
    """``text`` safe for a terminal: control and other unprintable characters (escape sequences,
    NUL, bidirectional overrides, lone surrogates) as Python escapes (\\x1b, \\u202e)."""
    if text is None:
        return ""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


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

    def sample(folder: Path) -> list[Path]:
        try:
            return land_sample(folder, seed=args.seed, days=args.days, orders_per_day=args.orders_per_day, start=args.start)
        except FileExistsError as exc:
            raise UsageError(f"{exc.filename}: {exc.strerror}; land-sample never changes a landed file") from exc
        except ValueError as exc:
            if "orders_per_day" not in str(exc):
                raise
            # the sample's own limits
            raise UsageError(f"--orders-per-day {args.orders_per_day}: {str(exc).replace('orders_per_day', 'it')}") from exc

    if "://" not in settings.landing_root:
        landing = Path(settings.landing_root)
        written = sample(landing)
        print(f"landed {len(written)} new file(s) under {landing}")
        return 0
    # An object-store landing zone: generate locally, then upload the files it does not have yet.
    import tempfile

    import pyarrow.fs as pafs

    from lakehouse.environment import resources_for

    zone = resources_for(settings)["landing"].zone()
    uploaded = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sample(Path(tmp)):
            target = f"{zone.base}/{path.relative_to(tmp).as_posix()}"
            if zone.fs.get_file_info(target).type == pafs.FileType.NotFound:
                pafs.copy_files(str(path), target, destination_filesystem=zone.fs)
                uploaded += 1
    print(f"landed {uploaded} new file(s) under {settings.landing_root}")
    return 0


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
        home = _dagster_home(settings)
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


# ---- the report of a run ------------------------------------------------------------------------


def _value(value):
    return getattr(value, "value", value)


def asset_outcome(metadata) -> str:
    """What a write did, from its materialization metadata (lakehouse/io/io_manager.py): published
    (rows inserted/updated/deleted for a merge, rows written otherwise), no new data, or refused."""
    m = {k: _value(v) for k, v in metadata.items()}
    outcome = m.get("outcome")
    if outcome == "refused" or (outcome is None and m.get("published") is False):
        failed = ", ".join(m.get("blocking_failures") or []) or "blocking"
        return f"refused: blocking check(s) {failed} failed; main unchanged, branch {m.get('audit_branch')} kept"
    if outcome == "no new data" or (outcome is None and m.get("committed") is False):
        return "no new data"
    if m.get("write_mode") == "merge":
        return f"published ({m.get('rows_inserted', 0)} inserted, {m.get('rows_updated', 0)} updated, {m.get('rows_deleted', 0)} deleted)"
    rows = m.get("rows_written", 0)
    return f"published ({rows} row{'' if rows == 1 else 's'} written)"


def _locked_database(text: str, stack: str, settings: Settings | None) -> str | None:
    """One line for SQLite's "database is locked", naming the database (None for other errors)."""
    if "database is locked" not in text:
        return None
    if "pyiceberg" in stack and settings is not None and settings.env == "local":
        return f"the catalog {settings.catalog_path} is locked: another lakehouse process holds it (a refresh, a run or `dagster dev`); run again when it has finished"
    if "dagster" in stack and "pyiceberg" not in stack:
        where = os.environ.get("DAGSTER_HOME", "DAGSTER_HOME")
        return f"the Dagster instance's database in {where} is locked: another process holds it; run again when it has finished"
    return "a SQLite database is locked: another lakehouse process holds it; run again when it has finished"


def _error_line(error, settings: Settings | None) -> str:
    """One line for a step's error (a Dagster SerializableErrorInfo): its innermost cause."""
    while error.cause is not None:
        error = error.cause
    stack = "".join(error.stack)
    locked = _locked_database(error.message, stack, settings)
    if locked:
        return locked
    lines = [line for line in error.message.strip().splitlines() if line.strip()]
    if error.cls_name == "DagsterAssetCheckFailedError":
        return "blocking check(s) failed: " + "; ".join(lines[1:])
    first = lines[0] if lines else error.cls_name
    qualified, _, message = first.partition(": ")
    if error.cls_name == "Py4JJavaError":  # "An error occurred while calling ...", then ": java.lang...: why"
        java = next((line[2:] for line in lines[1:] if line.startswith(": ")), None)
        return f"Spark failed: {java or message}"
    if qualified.endswith(error.cls_name) and message:
        # the lakehouse's own errors say everything in their message; others are named
        return message if qualified.startswith("lakehouse.") else f"{error.cls_name}: {message}"
    return first


def report_run(result, instance, home: Path | None = None, debug: bool = False, settings: Settings | None = None) -> None:
    """One line for the run, one per step (outcome, seconds), one per asset written (what the
    write did) and per failed ERROR check; problems on stderr, the rest on stdout."""
    run_id = result.run_id
    started: dict[str, float] = {}
    ended: dict[str, tuple[str, float, object]] = {}  # step -> (status, time, error)
    planned: list[str] = []
    not_run: dict[str, str] = {}  # step -> why
    details: dict[str, list[tuple[bool, str]]] = {}  # step -> (to stderr, line)
    first = last = None
    for entry in instance.all_logs(run_id):
        first = entry.timestamp if first is None else first
        last = entry.timestamp
        step = entry.step_key
        event = entry.dagster_event
        lines = details.setdefault(step, []) if step else []
        if event is None:
            if step and entry.level == logging.WARNING:
                lines.append((True, f"    warning: {printable(entry.user_message)}"))
            elif step and entry.level >= logging.ERROR and "Not executing" in entry.user_message:
                upstream = re.search(r"failed: \[([^\]]*)\]", entry.user_message)
                not_run[step] = f"{upstream.group(1).replace(chr(39), '')} failed" if upstream else "a step it depends on failed"
            continue
        kind = event.event_type_value
        if step and step not in planned and kind in ("ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED", "STEP_START"):
            planned.append(step)
        if kind == "STEP_START":
            started[step] = entry.timestamp
        elif kind == "STEP_SUCCESS":
            ended[step] = ("succeeded", entry.timestamp, None)
        elif kind == "STEP_FAILURE":
            ended[step] = ("failed", entry.timestamp, event.step_failure_data.error)
        elif kind == "STEP_SKIPPED":
            not_run.setdefault(step, "skipped")
        elif kind == "ASSET_MATERIALIZATION":
            materialization = event.step_materialization_data.materialization
            outcome = asset_outcome(materialization.metadata)
            lines.append((outcome.startswith("refused"), f"    {materialization.asset_key.to_user_string()}: {outcome}"))
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity.value == "ERROR":
                failing = evaluation.metadata.get("failing_count")
                count = f" ({failing.value} failing)" if failing is not None else ""
                lines.append((True, (
                    f"    check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed{count}: "
                    f"{printable(evaluation.description)}"
                )))
    record = instance.get_run_record_by_id(run_id)
    start = record.start_time if record is not None and record.start_time else first
    end = record.end_time if record is not None and record.end_time else last
    seconds = f" in {end - start:.1f} s" if start is not None and end is not None else ""
    where = f" (DAGSTER_HOME={home})" if home is not None else ""
    print(f"run {run_id} ({result.dagster_run.job_name}) {'succeeded' if result.success else 'FAILED'}{seconds}{where}")
    # In the order they ran; those that never started last, in the plan's order.
    for step in sorted(planned, key=lambda step: (step not in started, started.get(step, 0.0))):
        if step in ended:
            status, at, error = ended[step]
            took = f" in {at - started.get(step, at):.1f} s"
            if error is None:
                print(f"  step {step} {status}{took}")
            else:
                print(f"  step {step} {status}{took}: {printable(_error_line(error, settings))}", file=sys.stderr)
                if debug:
                    print(error.to_string(), file=sys.stderr)
        elif step in started:
            print(f"  step {step} did not finish", file=sys.stderr)
        elif not_run.get(step) == "skipped":
            print(f"  step {step} skipped")
        else:
            print(f"  step {step} not run: {not_run.get(step, 'the run ended first')}", file=sys.stderr)
        for to_stderr, line in details.get(step, []):
            print(line, file=sys.stderr if to_stderr else sys.stdout)


def cmd_tables(args: argparse.Namespace, settings: Settings) -> int:
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.contracts.tables import DATABASE_TABLES
    from lakehouse.environment import resources_for

    resources = resources_for(settings)
    store = resources["store"].get_store()
    from lakehouse.io.glue import catalog_metadata

    rows = [("table", "layer", "mode", "rows", "snapshot", "location", "catalog")]
    dbt_tables = [m.contract for m in resources["dbt"].models()]  # the dbt project's models (lakehouse/dbt)
    for contract in (*ALL_TABLES, *(DATABASE_TABLES if settings.database_sources else ()), *dbt_tables):
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


def cmd_maintain(args: argparse.Namespace, settings: Settings) -> int:
    """Table maintenance now (the maintenance job runs it daily): see lakehouse/io/table_maintenance.py."""
    import uuid

    from lakehouse.assets.maintenance import MAINTAINED_LAYERS, maintain_tables
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.environment import resources_for
    from lakehouse.io.table_store import CommitStamp

    resources = resources_for(settings)
    known = [c for c in (*ALL_TABLES, *(m.contract for m in resources["dbt"].models())) if c.layer in MAINTAINED_LAYERS]
    if args.table:
        chosen = [c for c in known if args.table in (c.asset_key.to_user_string(), c.qualified_name)]
        if not chosen:
            names = ", ".join(c.asset_key.to_user_string() for c in known)
            raise SettingsError(f"--table {args.table}: no such Silver or Gold table; choose one of {names}")
    else:
        chosen = known
    verb = "would" if args.dry_run else "did"
    stamp = CommitStamp(run_id=f"cli-{uuid.uuid4().hex[:12]}", asset_key="lakehouse maintain")

    def show(report) -> None:
        if report.skipped:
            print(f"{report.table}: skipped ({report.skipped})")
            return
        print(f"{report.table}: {'; '.join(report.actions) or 'nothing to do'}")
        if report.actions:
            print(
                f"  {verb} leave {report.data_files_after} data files (from {report.data_files_before}), "
                f"{report.snapshots_after} snapshots (from {report.snapshots_before}); reclaimed {report.bytes_reclaimed} bytes"
            )

    maintain_tables(resources["store"].get_store(), chosen, stamp, dry_run=args.dry_run, on_report=show)
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


def cmd_rejects(args: argparse.Namespace, settings: Settings) -> int:
    """Recent rejects grouped by reason: how many, from how many files, the latest example."""
    import pyarrow.compute as pc

    from lakehouse.contracts.tables import CUSTOMERS_RAW, CUSTOMERS_REJECTS, ORDERS_RAW, ORDERS_REJECTS
    from lakehouse.environment import resources_for

    store = resources_for(settings)["store"].get_store()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.days)
    # Each quarantine with the Bronze table its records come from: their raw text holds its columns.
    for contract, source in ((ORDERS_REJECTS, ORDERS_RAW), (CUSTOMERS_REJECTS, CUSTOMERS_RAW)):
        rows = store.read(contract)
        rows = rows.filter(pc.greater_equal(rows["_ingested_at"], since))
        print(f"{contract.asset_key.to_user_string()}: {rows.num_rows} reject(s) ingested in the last {args.days} day(s)")
        if rows.num_rows == 0:
            continue
        by_reason = rows.group_by("reason").aggregate([("record_id", "count"), ("_source_file", "count_distinct")])
        for r in sorted(by_reason.to_pylist(), key=lambda r: (-r["record_id_count"], r["reason"])):
            example = rows.filter(pc.equal(rows["reason"], r["reason"])).sort_by([("_ingested_at", "descending")]).slice(0, 1).to_pylist()[0]
            # Landed text is anybody's: escape what a terminal would act on (escape sequences, NUL).
            print(
                f"  {printable(r['reason']):<32} {r['record_id_count']:>6}  in {r['_source_file_count_distinct']} file(s); "
                f"latest {printable(example['record_id'])}: {printable(shown_raw(source, example['_raw'], args.unmask)[:60])}"
            )
    return 0


def shown_raw(source, raw: str, unmask: bool = False) -> str:
    """A quarantined record's raw text as `lakehouse rejects` shows it: the fields of its source's
    pii columns masked unless ``unmask`` (the table itself keeps the text as landed, for repair).
    A line that cannot be split is masked whole: never shown clear by mistake."""
    from lakehouse.contracts.sensitive import mask_fields, mask_text, pii_columns
    from lakehouse.contracts.tables import CUSTOMERS_RAW
    from lakehouse.sources.landing import CUSTOMER_HEADER, split_customer_row

    kinds = pii_columns(source)
    if unmask or not kinds:
        return raw
    if source is CUSTOMERS_RAW:
        fields, _ = split_customer_row(raw)
        if fields is not None:
            return mask_fields(fields, {i: kinds[name] for i, name in enumerate(CUSTOMER_HEADER) if name in kinds})
    return mask_text(raw)


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
    p = _Parser(prog="lakehouse", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _flags(p, False)
    # The same flags after the command (`lakehouse refresh --verbose`); absent there, the ones before it count.
    flags = argparse.ArgumentParser(add_help=False)
    _flags(flags, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[flags], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    land = command("land-sample", help="land deterministic sample files into the landing zone")
    land.add_argument("--seed", type=int, default=7)
    land.add_argument("--days", type=_positive, default=3)
    land.add_argument("--orders-per-day", type=int, default=500)
    land.add_argument("--start", type=_date, default=dt.date(2026, 1, 1), help="first landing day (YYYY-MM-DD)")
    land.set_defaults(run=cmd_land_sample)
    refresh = command("refresh", help="bring every table up to date, as a Dagster run in $DAGSTER_HOME")
    refresh.add_argument(
        "--wait", type=_seconds, default=REFRESH_WAIT_SECONDS, metavar="SECONDS",
        help=f"wait up to SECONDS for a refresh already running on this LAKEHOUSE_HOME to finish, then give up "
        f"with exit code 3 (default {REFRESH_WAIT_SECONDS}; 0 gives up at once)",
    )
    refresh.set_defaults(run=cmd_refresh)
    tables = command("tables", help="list tables with layer, write mode, rows and latest snapshot")
    tables.set_defaults(run=cmd_tables)
    repair = command("repair", help="convert a home written or damaged by an older version (Bronze once per landing file)")
    repair.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    repair.set_defaults(run=cmd_repair)
    maintain = command("maintain", help="compact, expire and clean Silver and Gold tables under their maintenance policies")
    maintain.add_argument("--table", metavar="TABLE", help="only this table (e.g. silver/orders)")
    maintain.add_argument("--dry-run", action="store_true", help="print what it would do, change nothing")
    maintain.set_defaults(run=cmd_maintain)
    rejects = command("rejects", help="recent rejected records grouped by reason")
    rejects.add_argument("--days", type=_positive, default=7, help="look back this many days of ingestion (default 7)")
    rejects.add_argument(
        "--unmask", action="store_true",
        help="show the raw text of rejected records as landed, personal data (pii columns) included; masked by default",
    )
    rejects.set_defaults(run=cmd_rejects)
    package = command("package", help="the release (wheel and driver, by content hash) remote jobs run; --upload puts it in the artifacts bucket")
    package.add_argument("--upload", action="store_true", help="upload it unless it is there (needs LAKEHOUSE_ENV=aws)")
    package.set_defaults(run=cmd_package)
    dev_aws = command("dev-aws", help="serve a local AWS (moto) whose Glue job runs really run, to try LAKEHOUSE_COMPUTE=glue without an account")
    dev_aws.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000; 0: any free one)")
    dev_aws.add_argument("--region", default="eu-west-1")
    dev_aws.add_argument("--for", dest="seconds", type=_seconds, default=0, metavar="SECONDS", help="stop after SECONDS (default: until Ctrl-C)")
    dev_aws.set_defaults(run=cmd_dev_aws)
    infra = command("infra", help="what the terraform stack reads from the code")
    infra_sub = infra.add_subparsers(dest="infra_command", required=True)
    export = infra_sub.add_parser("export", help="write terraform/lakehouse.auto.tfvars.json (layers, buckets, databases, transformations)")
    export.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is not what the code exports")
    export.add_argument("--output", type=Path, default=None, help="where to write (default terraform/lakehouse.auto.tfvars.json)")
    export.set_defaults(run=cmd_infra_export)
    return p


def cmd_infra_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write (or with --check compare) the stack's view of the code."""
    from lakehouse import infra

    path = args.output or infra.EXPORT_PATH
    if args.check:
        if infra.is_current(path):
            print(f"{path} is current")
            return 0
        print(f"{path} is stale: run `lakehouse infra export` and commit it", file=sys.stderr)
        return 1
    changed = infra.write(path)
    print(f"{'wrote' if changed else 'unchanged:'} {path}")
    return 0


def cmd_package(args: argparse.Namespace, settings: Settings) -> int:
    """Say which release this code is, and with --upload put it in the artifacts bucket."""
    from lakehouse.resources.release import current_release, upload

    if not args.upload:
        release = current_release(settings.bucket("artifacts"))
        print(f"release {release.hash}: {release.wheel_uri} and {release.driver_uri}")
        return 0
    if settings.env != "aws":
        raise UsageError("lakehouse package --upload puts the release in the artifacts bucket: it needs LAKEHOUSE_ENV=aws and its settings")
    import boto3

    s3 = boto3.client("s3", region_name=settings.aws_region, endpoint_url=settings.s3_endpoint)
    release, uploaded = upload(s3, settings.bucket("artifacts"))
    what = ", ".join(uploaded) if uploaded else "nothing (it is there already)"
    print(f"release {release.hash} in s3://{release.bucket}/{release.prefix}/: uploaded {what}")
    return 0


def cmd_dev_aws(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the local AWS emulation until interrupted (or for --for seconds)."""
    import time

    from lakehouse.remote.emulator import emulated_aws, provision

    name = settings.environment_name
    with emulated_aws(port=args.port, region=args.region) as (endpoint, _runner):
        aws = Settings(
            env="aws", aws_region=args.region, aws_endpoint_url=endpoint, landing=settings.landing if (settings.landing or "").startswith("s3://")
            else f"s3://lakehouse-landing-{name}/incoming", compute="glue",
        )
        provision(aws, endpoint)
        variables = {
            "LAKEHOUSE_ENV": "aws", "LAKEHOUSE_AWS_REGION": args.region, "LAKEHOUSE_AWS_ENDPOINT_URL": endpoint,
            "LAKEHOUSE_LANDING": aws.landing_root, "LAKEHOUSE_ENVIRONMENT_NAME": name, "LAKEHOUSE_COMPUTE": "glue",
            "LAKEHOUSE_DBT_TARGET": "duckdb",  # the local endpoint has no Athena: dbt-duckdb over its Glue catalog
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        }
        print(f"local AWS (moto) on {endpoint}: S3, Glue Data Catalog, CloudWatch Logs; Glue job runs of "
              f"{aws.job_name} run the remote driver under spark-submit.")
        print(f"environment {name!r} provisioned: buckets, Glue databases, the driver and the Glue job. In another shell:")
        print("  export " + " ".join(f"{k}={v}" for k, v in variables.items()))
        print("  lakehouse land-sample  (then upload: aws --endpoint-url ... s3 sync $LAKEHOUSE_HOME/landing " + aws.landing_root + ")")
        print("  lakehouse refresh")
        print("Ctrl-C stops the server and every job run still running.", flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days (1 or more)")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _setup_output(args.verbose)
    settings = None
    try:
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


if __name__ == "__main__":
    sys.exit(main())
