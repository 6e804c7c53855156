"""Writers racing on one home end consistent: nothing lost, nothing applied twice.

`lakehouse refresh` serializes on a lock, so the interleavings are forced with a second writer that
does not take it (Dagster's own CLI, as the UI or a sensor run would) and with LAKEHOUSE_FAULT
pauses (`lakehouse/faults.py`). Whatever the outcome of the racing writers (either may fail with a
clear message, neither may hang), one more refresh must exit 0 and leave every table equal to the
oracle, each landing file in Bronze exactly once. A batch refused by its audit changes nothing.
"""

from __future__ import annotations

import json

import pytest

from lakehouse.contracts.tables import ORDERS
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.conftest import make_store
from lakehouse_tests.processes import (
    MATERIALIZE_TIMEOUT,
    REFRESH_TIMEOUT,
    SILVER_SELECTION,
    assert_bronze_once,
    assert_clean_success,
    assert_ended,
    cleanup,
    dagster_materialize,
    environment,
    explain,
    finish,
    lakehouse,
    land,
    landing_days,
    prepare_dagster_home,
    refresh,
    start,
    table_states,
    temporaries,
    wait_for_pause,
    with_fault,
)
from lakehouse_tests.reference import expected_state


def _assert_consistent(home, landing) -> None:
    assert_matches(make_store(home), expected_state(landing))
    assert_bronze_once(home, landing)
    assert not temporaries(home), f"temporary files left in the warehouse: {temporaries(home)}"


def _assert_refresh_output_clean(done) -> None:
    """A refresh that lost a race may fail, but with a message, not a crash."""
    assert_ended(done)
    assert done.returncode >= 0, f"{done.name} died of a signal:\n{explain(done)}"
    assert "Traceback" not in done.stderr, f"{done.name} printed a traceback:\n{explain(done)}"


# ---- (a) a stale Silver writer released after a full refresh -------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("point", ["silver.start_audit", "silver.before_publish"])
def test_a_silver_writer_paused_while_a_refresh_runs_loses_nothing(tmp_path, point):
    """Writer A (`dagster asset materialize` of Bronze and Silver for the first landing day) pauses
    in silver/orders' write; B (`lakehouse refresh`) meanwhile ingests and publishes everything; A
    is released. A must not publish its stale batch over B's (the data loss this reproduces)."""
    home, dagster_home, fault_dir = tmp_path / "lakehouse", tmp_path / "dagster_home", tmp_path / "faults"
    landing = home / "landing"
    env = environment(home, dagster_home)
    prepare_dagster_home(dagster_home)
    land(env, tmp_path, days=2, orders_per_day=60)
    days = landing_days(landing)
    assert len(days) >= 2, days

    writer = start("A: dagster asset materialize", dagster_materialize(SILVER_SELECTION, days[0]),
                   with_fault(env, f"pause:{point}@silver/orders", fault_dir), tmp_path)
    try:
        release = wait_for_pause(writer, fault_dir, point, "silver/orders", MATERIALIZE_TIMEOUT)
        b = refresh(env, tmp_path, name="B: lakehouse refresh")
        _assert_refresh_output_clean(b)
        release.touch()
        a = finish(writer, MATERIALIZE_TIMEOUT)
        assert_ended(a)
    finally:
        cleanup(writer)

    final = refresh(env, tmp_path, name="refresh after both")
    assert_clean_success(final)
    _assert_consistent(home, landing)


# ---- (b) two refreshes and a materialize started at once -----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("home_kind", ["new", "existing"])
def test_two_refreshes_and_a_materialize_at_once(tmp_path, home_kind):
    home, landing = tmp_path / "lakehouse", tmp_path / "lakehouse" / "landing"
    dagster_home = tmp_path / "new_dagster_home"  # not created by conftest: the first writer makes the instance
    env = environment(home, dagster_home)
    land(env, tmp_path, days=2, orders_per_day=60)
    if home_kind == "existing":
        first = refresh(env, tmp_path, name="first refresh")
        assert_clean_success(first)
        land(env, tmp_path, days=3, orders_per_day=60)  # one more day (and the late files of day 2)
    # `dagster asset materialize` needs DAGSTER_HOME and its dagster.yaml; on a new home the instance
    # itself (its SQLite databases) does not exist yet.
    prepare_dagster_home(dagster_home)
    newest = landing_days(landing)[-1]

    procs = []
    try:
        procs = [
            start("refresh 1", lakehouse("refresh"), env, tmp_path),
            start("refresh 2", lakehouse("refresh"), env, tmp_path),
            start("dagster asset materialize", dagster_materialize(SILVER_SELECTION, newest), env, tmp_path),
        ]
        done = [finish(p, REFRESH_TIMEOUT + MATERIALIZE_TIMEOUT) for p in procs]
    finally:
        cleanup(*procs)
    for d in done:
        assert_ended(d)
    for d in done[:2]:
        _assert_refresh_output_clean(d)

    final = refresh(env, tmp_path, name="refresh after all three")
    assert_clean_success(final)
    _assert_consistent(home, landing)


# ---- (c) a blocked audit on a batch with deletes changes nothing --------------------------------


@pytest.mark.slow
def test_a_blocked_audit_of_a_batch_with_deletes_leaves_every_table_as_it_was(tmp_path):
    home, dagster_home = tmp_path / "lakehouse", tmp_path / "dagster_home"
    landing = home / "landing"
    env = environment(home, dagster_home)
    land(env, tmp_path, days=2, orders_per_day=60)
    first = refresh(env, tmp_path, name="first refresh")
    assert_clean_success(first)

    # A late landing day: deletes of live orders (lsn above anything they had) and one invalid
    # record, so with a reject-rate limit of 0 the batch fails its blocking audit.
    live = sorted(make_store(home).read(ORDERS).to_pylist(), key=lambda r: r["order_id"])
    victims = live[:5]
    assert len(victims) == 5
    day = landing / "orders" / "dt=2026-01-03"
    day.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"lsn": 9_000_001 + k, "op": "d", "order_id": r["order_id"]}) for k, r in enumerate(victims)]
    lines.append(json.dumps({"lsn": 9_000_100, "op": "x", "order_id": victims[0]["order_id"]}))  # invalid_op
    (day / "orders-deletes.jsonl").write_text("".join(f"{line}\n" for line in lines))

    watched = ("silver", "gold")  # silver.orders__tombstones among them once it exists
    before = table_states(home, watched)
    blocked = refresh(dict(env, LAKEHOUSE_REJECT_RATE_LIMIT="0.0"), tmp_path, name="refresh with reject-rate limit 0")
    assert_ended(blocked)
    assert blocked.returncode != 0, f"a batch over the reject-rate limit should fail the refresh:\n{explain(blocked)}"
    assert "reject_rate_limit" in blocked.stderr, f"the refresh should name the failed check:\n{explain(blocked)}"
    after = table_states(home, watched)

    appeared = sorted(set(after) - set(before))
    assert not appeared, f"the blocked batch created tables {appeared}"
    for name, (snapshot, properties) in before.items():
        now_snapshot, now_properties = after[name]
        assert now_snapshot == snapshot, f"{name}: main moved from snapshot {snapshot} to {now_snapshot} although the batch was blocked"
        changed = {k: (properties.get(k), now_properties.get(k)) for k in set(properties) | set(now_properties) if properties.get(k) != now_properties.get(k)}
        assert not changed, f"{name}: table properties changed by the blocked batch (before, after): {changed}"

    # The refused batch is still pending: with the limit back, it is applied (deletes included).
    again = refresh(env, tmp_path, name="refresh with the limit back")
    assert_clean_success(again)
    _assert_consistent(home, landing)
    remaining = {r["order_id"] for r in make_store(home).read(ORDERS).to_pylist()}
    assert not remaining & {r["order_id"] for r in victims}, "deleted orders are still in silver/orders"
