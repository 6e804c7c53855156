"""Runs whose process is gone are marked failed, so they stop holding the run queue's slots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test

from lakehouse.automation.planning import INGEST_JOB, PIPELINE_TAG
from lakehouse.automation.runs import HOST_TAG, PID_TAG, PROCESS_STARTED_TAG, fail_dead_runs, process_tags

PROJECT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 120


@dg.op
def _hang() -> None:
    time.sleep(3600)


@dg.job
def hanging_job():
    """Stands in for a refresh's ingest run: started, then its process is killed."""
    _hang()


def _run_hanging_job() -> None:
    """In the child: execute hanging_job with the tags `lakehouse refresh` gives its runs."""
    with DagsterInstance.get() as instance:
        tags = {**process_tags(), PIPELINE_TAG: INGEST_JOB}
        dg.execute_job(dg.reconstructable(hanging_job), instance=instance, tags=tags)


def kill_a_started_run(dagster_home: Path) -> str:
    """A run left STARTED in the instance at ``dagster_home`` by a process killed with SIGKILL."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    code = "from lakehouse_tests.automation.test_runs import _run_hanging_job; _run_hanging_job()"
    log = dagster_home.parent / "hanging_job.log"
    child = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=PROJECT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            while time.monotonic() < deadline and child.poll() is None:
                started = instance.get_runs(filters=dg.RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={PID_TAG: str(child.pid)}))
                if started:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"the child never started its run (exit {child.poll()}):\n{log.read_text()[-3000:]}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    return started[0].run_id


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_killed_process_leaves_its_run_started_until_reaped(tmp_path):
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    run_id = kill_a_started_run(dagster_home)
    lines = []
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert _status(instance, run_id) == DagsterRunStatus.STARTED  # what held the ingest slot
        failed = fail_dead_runs(instance, lines.append)
        assert [r.run_id for r in failed] == [run_id]
        assert _status(instance, run_id) == DagsterRunStatus.FAILURE
        assert len(lines) == 1 and run_id in lines[0] and "hanging_job" in lines[0], lines
        # Reaping twice fails nothing more.
        assert fail_dead_runs(instance, lines.append) == [] and len(lines) == 1


def test_live_foreign_and_untagged_runs_are_left_alone():
    instance = DagsterInstance.ephemeral()
    me = process_tags()
    live = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags=me)
    elsewhere = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags={**me, HOST_TAG: "another-host", PID_TAG: "999999999"})
    untagged = create_run_for_test(instance, status=DagsterRunStatus.STARTED)  # e.g. launched by the daemon
    finished = create_run_for_test(instance, status=DagsterRunStatus.SUCCESS, tags={**me, PID_TAG: "999999999"})
    assert fail_dead_runs(instance, print) == []
    for run in (live, elsewhere, untagged):
        assert _status(instance, run.run_id) == DagsterRunStatus.STARTED
    assert _status(instance, finished.run_id) == DagsterRunStatus.SUCCESS


def test_a_dead_starting_run_is_failed_too():
    instance = DagsterInstance.ephemeral()
    run = create_run_for_test(instance, status=DagsterRunStatus.STARTING, tags={**process_tags(), PID_TAG: "999999999"})
    assert [r.run_id for r in fail_dead_runs(instance, print)] == [run.run_id]
    assert _status(instance, run.run_id) == DagsterRunStatus.FAILURE


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times are read from /proc")
def test_a_reused_pid_does_not_keep_a_dead_run_alive():
    # A container restarts its refresh with the same pid: the pid is alive, the run's process is not.
    instance = DagsterInstance.ephemeral()
    me = process_tags()
    assert me[PROCESS_STARTED_TAG]
    run = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags={**me, PROCESS_STARTED_TAG: "1"})
    assert [r.run_id for r in fail_dead_runs(instance, print)] == [run.run_id]
