"""`lakehouse run ASSET` and `lakehouse logs [RUN_ID]`: one asset as a Dagster run, and a run's events.

A run is recorded in the instance at DAGSTER_HOME like a sensor's or a refresh's, and runs on the
configured compute (LAKEHOUSE_COMPUTE): the job is rebuilt from the same settings, as refresh's are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import re
import sys

from lakehouse.cli.arguments import date, seconds
from lakehouse.cli.errors import UsageError
from lakehouse.cli.home import dagster_home
from lakehouse.cli.output import emit_json, printable
from lakehouse.cli.refresh import REFRESH_WAIT_SECONDS
from lakehouse.cli.report import _error_line, asset_outcome, report_run
from lakehouse.settings import Settings

# The job of every asset (Dagster's implicit one): a selection that spans defined jobs runs in it.
ALL_ASSETS_JOB = "__ASSET_JOB"
# Materialization metadata that points at a remote job's logs (lakehouse/resources/pipes_compute.py
# and dagster-aws's Pipes clients): shown by `logs` next to the write it belongs to.
REMOTE_LOG_KEY = re.compile(r"(^|_)(log|logs|url|console)(_|$)|job_?run|run_?id", re.IGNORECASE)


def _day_range(text: str) -> tuple[dt.date, dt.date]:
    first, sep, last = text.partition("...")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range of days (YYYY-MM-DD...YYYY-MM-DD)")
    a, b = date(first), date(last)
    if b < a:
        raise argparse.ArgumentTypeError(f"{text!r} ends before it starts")
    return a, b


def _choose(defs, name: str, upstream: bool):
    """The asset keys to run and the job to run them in; one line naming close matches if unknown."""
    import dagster as dg

    graph = defs.resolve_asset_graph()
    known = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    key = known.get(name.strip("/"))
    if key is None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5) or sorted(known)[:5]
        raise UsageError(f"no asset {name!r}; did you mean {', '.join(close)}? (`lakehouse list` shows them all)")
    selection = dg.AssetSelection.assets(key)
    keys = (selection.upstream() if upstream else selection).resolve(graph)
    for job in defs.jobs or ():
        if keys <= defs.resolve_job_def(job.name).asset_layer.selected_asset_keys:
            return key, keys, job.name
    return key, keys, ALL_ASSETS_JOB


def _partition_tags(defs, keys, args) -> dict[str, str]:
    from lakehouse.automation.partitions import check_days
    from lakehouse.automation.planning import range_tags

    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    partitioned = sorted(k.to_user_string() for k in keys if specs[k].partitions_def is not None)
    if args.partition is None and args.range is None:
        if partitioned:
            raise UsageError(f"{', '.join(partitioned)} is partitioned by day: give --partition YYYY-MM-DD or --range FIRST...LAST")
        return {}
    if not partitioned:
        raise UsageError(f"{args.asset} has no partitions (nor has what it reads): drop --partition/--range")
    first, last = (args.partition, args.partition) if args.partition else args.range
    # The partitions the code location has (from the setting, or the data's first day).
    days = next(specs[k].partitions_def for k in keys if specs[k].partitions_def is not None)
    check_days({first, last}, days, "--partition" if args.partition else "--range day")
    if args.partition:
        return {"dagster/partition": first.isoformat()}
    return range_tags(first, last)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    import dagster as dg

    from lakehouse.automation.lock import refresh_lock
    from lakehouse.automation.refresh import TRIGGER_TAG, RefreshResult, _job, run_config
    from lakehouse.automation.runs import process_tags
    from lakehouse.definitions import build_definitions

    defs = build_definitions(settings)
    key, keys, job = _choose(defs, args.asset, args.upstream)
    tags = {**_partition_tags(defs, keys, args), TRIGGER_TAG: "cli run", **process_tags()}

    def note(line: str) -> None:
        print(f"lakehouse: {line}", file=sys.stderr)

    # A refresh commits the same tables: one at a time on a home.
    with refresh_lock(settings.home, args.wait, on_wait=note):
        home = dagster_home(settings)
        with dg.DagsterInstance.get() as instance:
            result = dg.execute_job(
                _job(job, settings), instance=instance, asset_selection=sorted(keys, key=str), tags=tags,
                run_config=run_config("DEBUG" if args.verbose else "CRITICAL"),
            )
            success = RefreshResult(runs=[result]).success
            if args.json:
                emit_json({
                    "run_id": result.run_id, "job": job, "success": success, "dagster_home": str(home),
                    "assets": sorted(k.to_user_string() for k in keys), "tags": {k: v for k, v in tags.items() if k.startswith("dagster/")},
                    "materializations": [
                        {"asset": e.asset_key.to_user_string(), "partition": e.partition, "outcome": asset_outcome(e.materialization.metadata)}
                        for e in result.get_asset_materialization_events()
                    ],
                })
            else:
                report_run(result, instance, home, debug=args.debug, settings=settings)
                print(f"lakehouse logs {result.run_id}  shows its events")
    return 0 if success else 1


# ---- logs -------------------------------------------------------------------------------------


def _plain(value):
    value = getattr(value, "value", value)
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _find_run(instance, run_id: str | None, home) -> str:
    if run_id is None:
        records = instance.get_run_records(limit=1)
        if not records:
            raise UsageError(f"no runs in DAGSTER_HOME={home} yet: `lakehouse run ASSET` or `lakehouse refresh` makes one")
        return records[0].dagster_run.run_id
    if instance.has_run(run_id):
        return run_id
    # The UI shows a run's first 8 characters: a unique prefix names it too.
    matches = [r for r in instance.get_run_ids(limit=10_000) if r.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    raise UsageError(f"run {run_id}: {'ambiguous' if matches else 'no such run'} in DAGSTER_HOME={home}; `lakehouse logs` shows the latest")


def run_events(instance, run_id: str, settings: Settings | None = None) -> list[dict]:
    """The run's events as plain values: steps, writes (with remote log links), checks, log lines
    at INFO or above, and where each step's captured stdout/stderr are."""
    events = []
    manager = instance.compute_log_manager
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        row = {"time": dt.datetime.fromtimestamp(entry.timestamp, dt.UTC).isoformat(timespec="milliseconds"), "step": entry.step_key}
        if event is None:
            if entry.level < 20:
                continue
            events.append({**row, "event": "LOG", "level": _level(entry.level), "message": entry.user_message})
            continue
        kind = event.event_type_value
        if kind == "STEP_FAILURE":
            row["error"] = _error_line(event.step_failure_data.error, settings)
        elif kind in ("RUN_FAILURE", "PIPELINE_FAILURE") and event.event_specific_data is not None and getattr(event.event_specific_data, "error", None):
            row["error"] = _error_line(event.event_specific_data.error, settings)
        elif kind == "ASSET_MATERIALIZATION":
            m = event.step_materialization_data.materialization
            row.update(asset=m.asset_key.to_user_string(), partition=m.partition, outcome=asset_outcome(m.metadata))
            remote = {k: _plain(v) for k, v in m.metadata.items() if REMOTE_LOG_KEY.search(k) or type(v).__name__ == "UrlMetadataValue"}
            if remote:
                row["remote_logs"] = remote
        elif kind == "ASSET_CHECK_EVALUATION":
            e = event.event_specific_data
            row.update(asset=e.asset_key.to_user_string(), check=e.check_name, passed=e.passed, severity=e.severity.value, description=e.description)
        elif kind == "LOGS_CAPTURED":
            data = event.logs_captured_data
            row["steps"] = list(data.step_keys or [])
            paths = {}
            for stream, extension in (("stdout", "out"), ("stderr", "err")):
                external = getattr(data, f"external_{stream}_url", None)
                if external:
                    paths[stream] = external
                elif hasattr(manager, "get_captured_local_path"):
                    paths[stream] = manager.get_captured_local_path([run_id, "compute_logs", data.file_key], extension)
            row["compute_logs"] = paths
        elif kind not in ("STEP_START", "STEP_SUCCESS", "STEP_SKIPPED", "RUN_START", "RUN_SUCCESS", "PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE", "STEP_UP_FOR_RETRY", "STEP_RESTARTED"):
            continue
        events.append({"event": kind, **row})
    return events


def _level(level: int) -> str:
    import logging

    return logging.getLevelName(level)


def _line(e: dict) -> str:
    where = f" {e['step']}" if e.get("step") else ""
    text = {
        "LOG": lambda: f"{e['level']}: {e['message']}",
        "STEP_FAILURE": lambda: e.get("error", ""),
        "RUN_FAILURE": lambda: e.get("error", ""),
        "ASSET_MATERIALIZATION": lambda: f"{e['asset']}{' [' + e['partition'] + ']' if e.get('partition') else ''}: {e['outcome']}",
        "ASSET_CHECK_EVALUATION": lambda: f"check {e['check']} on {e['asset']} {'passed' if e['passed'] else 'FAILED'} ({e['severity']}): {e.get('description') or ''}",
        "LOGS_CAPTURED": lambda: "stdout " + e["compute_logs"].get("stdout", "-") + "  stderr " + e["compute_logs"].get("stderr", "-"),
    }.get(e["event"], lambda: "")()
    line = f"{e['time'][11:23]} {e['event']}{where}{': ' + text if text else ''}"
    for name, value in (e.get("remote_logs") or {}).items():
        line += f"\n    {name}: {value}"
    return printable(line.strip()) if "\n" not in line else "\n".join(printable(x) for x in line.split("\n"))


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    import dagster as dg

    home = dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        run_id = _find_run(instance, args.run_id, home)
        record = instance.get_run_record_by_id(run_id)
        run = record.dagster_run
        events = run_events(instance, run_id, settings)
    if args.json:
        emit_json({"run_id": run_id, "job": run.job_name, "status": run.status.value, "tags": dict(run.tags), "events": events})
        return 0
    print(f"run {run_id} ({run.job_name}) {run.status.value}")
    for e in events:
        print(_line(e))
    return 0


def register(command) -> None:
    run = command(
        "run", help="materialize one asset (and with --upstream what it reads) as a Dagster run in $DAGSTER_HOME",
        examples="  lakehouse run bronze/orders_raw --partition 2026-01-01\n"
        "  lakehouse run bronze/orders_raw --range 2026-01-01...2026-01-03   one run for the days (single-run backfill)\n"
        "  lakehouse run silver/orders --upstream --partition 2026-01-01     Bronze's day, then Silver\n"
        "  lakehouse run gold/customer_summary --json",
    )
    run.add_argument("asset", metavar="ASSET", help="an asset key as `lakehouse list` shows it (e.g. silver/orders)")
    days = run.add_mutually_exclusive_group()
    days.add_argument("--partition", type=date, metavar="DAY", help="the daily partition to run (YYYY-MM-DD)")
    days.add_argument("--range", type=_day_range, metavar="FIRST...LAST", help="consecutive daily partitions, in one run")
    run.add_argument("--upstream", action="store_true", help="also every asset it depends on, in order")
    run.add_argument(
        "--wait", type=seconds, default=REFRESH_WAIT_SECONDS, metavar="SECONDS",
        help="wait up to SECONDS for a refresh or run on this LAKEHOUSE_HOME to finish (exit 3 after)",
    )
    run.add_argument("--json", action="store_true", help="print {run_id, job, success, assets, tags, materializations} instead")
    run.set_defaults(run=cmd_run)
    logs = command(
        "logs", help="a run's events (steps, writes, checks, log lines) and where its step logs are",
        examples="  lakehouse logs                      the latest run\n"
        "  lakehouse logs 1a2b3c4d             a run by id (or the first characters the UI shows)\n"
        "  lakehouse logs --json | jq '.events[] | select(.event == \"STEP_FAILURE\")'",
    )
    logs.add_argument("run_id", metavar="RUN_ID", nargs="?", help="default: the latest run")
    logs.add_argument("--json", action="store_true", help="print {run_id, job, status, tags, events: [...]} instead")
    logs.set_defaults(run=cmd_logs)
