"""A refresh killed (SIGKILL, as a crash or `kill -9` would) at each fault point of the write path,
then refreshed again without the fault, ends exactly where an uninterrupted refresh would:

(a) every table equals the oracle (`reference.py`; Silver, rejects, Gold and Bronze row counts);
(b) Bronze holds each landing file exactly once, under its name, registered once;
(c) no temporary file is left in the warehouse;
(d) Gold is current: a further refresh runs no publish run and commits nothing;
and the killed refresh's Dagster run does not stay STARTED.

The fault points are `lakehouse/faults.py`'s POINTS; a point the code does not reach yet makes
the faulted refresh exit normally instead of dying, and its test fails on that.
"""

from __future__ import annotations

import signal

import pytest

from lakehouse_tests.compare import assert_matches
from lakehouse_tests.conftest import make_store
from lakehouse_tests.processes import (
    ACTIVE,
    assert_bronze_once,
    assert_clean_success,
    dagster_runs,
    environment,
    explain,
    land,
    refresh,
    snapshot_ids,
    temporaries,
    with_fault,
)
from lakehouse_tests.reference import expected_state

POINTS = [
    "bronze.before_register",
    "bronze.before_claim",
    "silver.start_audit@silver/orders",
    "silver.before_publish@silver/orders",
    "silver.after_publish@silver/orders",
    "gold.before_publish@gold/daily_sales",
    "gold.after_publish@gold/daily_sales",
]


def _homes(tmp_path):
    # conftest created tmp_path/dagster_home (empty): the CLI gives it the project's dagster.yaml.
    home, dagster_home = tmp_path / "lakehouse", tmp_path / "dagster_home"
    return home, dagster_home, home / "landing", environment(home, dagster_home)


def _assert_killed(done, point: str) -> None:
    assert done.returncode == -signal.SIGKILL, (
        f"the refresh with LAKEHOUSE_FAULT=kill:{point} should have died of SIGKILL at that point "
        f"(returncode -9); it never got there or failed before it:\n{explain(done)}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_refresh_killed_at_a_fault_point_is_repaired_by_the_next_refresh(tmp_path, point):
    home, dagster_home, landing, env = _homes(tmp_path)
    land(env, tmp_path, days=2, orders_per_day=60)

    killed = refresh(with_fault(env, f"kill:{point}"), tmp_path, name=f"refresh killed at {point}")
    _assert_killed(killed, point)

    again = refresh(env, tmp_path, name="refresh after the crash")
    assert_clean_success(again)

    # (a) every table, Gold included, equals the oracle
    assert_matches(make_store(home), expected_state(landing))
    # (b) each landing file in Bronze exactly once
    assert_bronze_once(home, landing)
    # (c) nothing the crashed writer staged is left behind
    assert not temporaries(home), f"temporary files left in the warehouse: {temporaries(home)}"

    # (d) Gold is current: one more refresh publishes nothing and commits nothing anywhere
    before_runs = dagster_runs(dagster_home)
    before = snapshot_ids(home)
    third = refresh(env, tmp_path, name="refresh with nothing new")
    assert_clean_success(third)
    known = {r[0] for r in before_runs}
    new_runs = [r for r in dagster_runs(dagster_home) if r[0] not in known]
    publish = [r for r in new_runs if r[1] == "publish"]
    assert not publish and "(publish)" not in third.stdout, (
        f"Gold was not current after the repairing refresh: the next refresh ran publish run(s) {publish}\n{explain(third)}"
    )
    after = snapshot_ids(home)
    changed = {name: (before.get(name), after.get(name)) for name in set(before) | set(after) if before.get(name) != after.get(name)}
    assert not changed, f"a refresh with nothing new changed table snapshots (before, after): {changed}\n{explain(third)}"


@pytest.mark.slow
def test_a_killed_refreshs_run_does_not_stay_started_after_the_next_refresh(tmp_path):
    home, dagster_home, landing, env = _homes(tmp_path)
    land(env, tmp_path, days=2, orders_per_day=60)

    point = "bronze.before_claim"  # inside the ingest run, after its first commit
    killed = refresh(with_fault(env, f"kill:{point}"), tmp_path, name=f"refresh killed at {point}")
    _assert_killed(killed, point)
    left = [r for r in dagster_runs(dagster_home) if r[2] in ACTIVE]
    assert len(left) == 1 and left[0][1] == "ingest", f"the killed refresh should have left its ingest run STARTED: {left}"
    run_id = left[0][0]

    again = refresh(env, tmp_path, name="refresh after the crash")
    assert_clean_success(again)
    status = {r[0]: r[2] for r in dagster_runs(dagster_home)}
    assert status[run_id] == "FAILURE", f"the killed refresh's run {run_id} is {status[run_id]} after the next refresh\n{explain(again)}"
    active = [r for r in dagster_runs(dagster_home) if r[2] in ACTIVE]
    assert not active, f"runs still active after the next refresh: {active}"
    assert run_id in again.stderr, f"the refresh should say it marked run {run_id} failed\n{explain(again)}"
    assert_matches(make_store(home), expected_state(landing))
