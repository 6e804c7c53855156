"""The report of a run: one line for the run, one per step, one per asset written and failed check."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from lakehouse.cli.output import printable
from lakehouse.settings import Settings


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

