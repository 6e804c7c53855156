"""Runs whose process is gone: found by the host and pid in their tags, and marked failed.

`lakehouse refresh` executes its runs in its own process. Killed (kill -9, out of memory), it leaves
them STARTED for ever, and a STARTED ingest run holds the run queue's only ingest slot (dagster.yaml),
so every sensor and schedule run would stay QUEUED. Dagster's run monitoring cannot tell: the default
run launcher cannot check a run's process, and these runs were never launched through it.

The landing sensor calls ``fail_dead_runs`` on every tick, `lakehouse refresh` before it starts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import dagster as dg

HOST_TAG = "lakehouse/host"
PID_TAG = "lakehouse/pid"
# When the process started (Linux: clock ticks after boot): a pid reused by a later process, as
# in a restarted container whose refresh gets the same pid, is then not mistaken for the run's.
PROCESS_STARTED_TAG = "lakehouse/process-started"
_ACTIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes itself."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    stat = _stat(os.getpid())
    if stat is not None:
        tags[PROCESS_STARTED_TAG] = stat[_STARTED]
    return tags


def fail_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], object]) -> list[dg.DagsterRun]:
    """Marks failed every STARTING or STARTED run tagged with this host whose process is gone;
    ``log`` gets one line per run. Returns those runs."""
    host = socket.gethostname()
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_ACTIVE, tags={HOST_TAG: host})):
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _alive(int(pid), run.tags.get(PROCESS_STARTED_TAG)):
            continue
        current = instance.get_run_by_id(run.run_id)  # another reaper may have been first
        if current is None or current.status not in _ACTIVE:
            continue
        message = f"its process (pid {pid} on {host}) is gone, so it can never finish"
        instance.report_run_failed(current, message=f"Marked failed by lakehouse: {message}.")
        log(f"marked run {run.run_id} ({run.job_name}) failed: {message}")
        failed.append(current)
    return failed


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    stat = _stat(pid)
    if stat is None:  # no /proc (macOS): the pid alone decides
        return True
    return stat[_STATE] != "Z" and (started is None or stat[_STARTED] == started)


_STATE, _STARTED = 0, 19  # fields 3 and 22 of /proc/<pid>/stat, counted from field 3


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None without /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2, in parentheses) may itself hold spaces and parentheses.
    return text.rpartition(")")[2].split()
