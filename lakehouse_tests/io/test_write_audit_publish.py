"""Write-audit-publish: each audited write has a branch of its own, main moves only to the snapshot
that write produced, and its side tables (tombstones, watermark) are published with it or not at all."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pytest
from pyiceberg.exceptions import CommitFailedException

from lakehouse.checks.write_audit import ContractChecks
from lakehouse.contracts.tables import DAILY_SALES, ORDERS
from lakehouse.environment import local_store
from lakehouse.io import arrow_merge
from lakehouse.io.audit_branches import KEPT_AUDIT_BRANCHES, audit_branch_name
from lakehouse.io.io_manager import LakehouseIOManager
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.table_write import TableWrite, TableWriter
from lakehouse.settings import Settings
from lakehouse_tests.conftest import make_store
from lakehouse_tests.io.cdc import batch, event, state

WATERMARK = "lakehouse.applied.bronze.orders_raw"
T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def stamp(run: str, **properties: str) -> CommitStamp:
    return CommitStamp(run_id=run, asset_key="silver/orders", table_properties=properties)


class Writer:
    """One audited Silver write, a step at a time: start the audit, write the batch, publish it with
    the writer's watermark (as the IO manager does)."""

    def __init__(self, store, name: str, events: list[dict], branch: str | None = None):
        self.store, self.name, self.events = store, name, events
        self.branch = branch or audit_branch_name("audit", f"run-{name}")
        self.base = self.head = None
        self.published = False
        self.steps = iter([self.start, self.write, self.publish])

    def start(self) -> None:
        self.base = self.store.start_audit(ORDERS, self.branch)

    def write(self) -> None:
        self.head = self.store.merge(ORDERS, batch(*self.events), stamp(self.name), branch=self.branch).snapshot_id

    def publish(self) -> None:
        self.store.publish(ORDERS, self.branch, {WATERMARK: self.name}, base=self.base, head=self.head)
        self.published = True

    def run(self) -> None:
        self.start()
        self.write()
        self.publish()

    def step(self) -> None:
        try:
            next(self.steps)()
        except CommitFailedException:
            pass  # refused: the writer's input stays pending and is applied again by a later run


def refs(store, suffix: str = "") -> set[str]:
    return set(store.load_table(ORDERS, suffix).refs())


def tombstones(store) -> dict[str, int]:
    return {r["order_id"]: r["seq"] for r in store.load_table(ORDERS, "__tombstones").scan().to_arrow().to_pylist()}


def main_ids(store) -> tuple[int | None, int | None]:
    data, tombs = store.load_table(ORDERS), store.load_table(ORDERS, "__tombstones")
    return data.current_snapshot().snapshot_id, (tombs.current_snapshot().snapshot_id if tombs and tombs.current_snapshot() else None)


# ---- two writers on one table ----------------------------------------------------------------
def test_a_writer_whose_base_was_published_over_is_refused_and_publishes_nothing(table_store):
    table_store.merge(ORDERS, batch(event("x", 1)), stamp("setup"))
    a, b = Writer(table_store, "A", [event("a", 2)]), Writer(table_store, "B", [event("b", 2)])
    a.start()
    b.run()
    a.write()
    with pytest.raises(CommitFailedException, match=r"^silver\.orders: main moved .* run the write again"):
        a.publish()
    assert state(table_store.read(ORDERS)) == {"x": ("placed", 1), "b": ("placed", 2)}
    info = table_store.info(ORDERS)
    assert info.properties[WATERMARK] == "B" and info.summary["dagster.run-id"] == "B"
    assert a.branch in refs(table_store) and b.branch not in refs(table_store)  # A's kept for inspection


def test_the_reset_branch_interleaving_publishes_no_writer_with_anothers_watermark(table_store):
    """The reproduced defect: A writes, B resets the shared branch and writes, A publishes B's snapshot.
    Even with one branch name for both, A's publish is refused: the head is not A's snapshot."""
    table_store.merge(ORDERS, batch(event("x", 1)), stamp("setup"))
    a, b = (Writer(table_store, n, [event(n.lower(), 2)], branch="audit") for n in "AB")
    a.start()
    a.write()
    b.start()
    b.write()
    with pytest.raises(CommitFailedException, match=r"^silver\.orders: branch 'audit' is at snapshot \d+, not \d+ .* run the write again"):
        a.publish()
    assert WATERMARK not in table_store.info(ORDERS).properties
    b.publish()
    assert state(table_store.read(ORDERS)) == {"x": ("placed", 1), "b": ("placed", 2)}
    assert table_store.info(ORDERS).properties[WATERMARK] == "B"


@pytest.mark.parametrize("steps", sorted({"".join(p) for p in itertools.permutations("AAABBB")}))
def test_no_interleaving_of_two_writers_loses_data_or_mislabels_it(table_store, steps):
    """Every order of the two writers' start / write / publish steps: each published writer's rows are
    on main, no refused writer's are, and the watermark is that of the writer whose snapshot main is."""
    table_store.merge(ORDERS, batch(event("x", 1)), stamp("setup"))
    writers = {n: Writer(table_store, n, [event(n.lower(), 2)]) for n in "AB"}
    for name in steps:
        writers[name].step()
    published = [w for w in writers.values() if w.published]
    assert published  # the first to publish always may
    rows = state(table_store.read(ORDERS))
    for w in writers.values():
        assert (w.name.lower() in rows) is w.published, (steps, w.name)
        assert (w.branch in refs(table_store)) is not w.published, (steps, w.name)
    info = table_store.info(ORDERS)
    assert info.properties[WATERMARK] == info.summary["dagster.run-id"], steps


@pytest.mark.parametrize("moved", ["main", "branch"])
def test_the_publish_commit_itself_asserts_main_and_the_branch(table_store, monkeypatch, moved):
    """A commit landing between publish's checks and its own commit makes the catalog refuse it."""
    table_store.merge(ORDERS, batch(event("x", 1)), stamp("setup"))
    a = Writer(table_store, "A", [event("a", 2)])
    a.start()
    a.write()
    commit = table_store.catalog.commit_table
    raced = []

    def race_then_commit(table, requirements, updates):
        if not raced and table.name()[-1] == "orders":
            raced.append(True)
            if moved == "main":  # another writer commits to main
                table_store.merge(ORDERS, batch(event("z", 3)), stamp("Z"))
            else:  # another writer resets the branch to main
                t = table_store.load_table(ORDERS)
                t.manage_snapshots().remove_branch(a.branch).create_branch(t.current_snapshot().snapshot_id, a.branch).commit()
        return commit(table, requirements, updates)

    monkeypatch.setattr(table_store.catalog, "commit_table", race_then_commit)
    with pytest.raises(CommitFailedException, match="has changed"):
        a.publish()
    monkeypatch.undo()
    assert raced and "a" not in state(table_store.read(ORDERS)) and WATERMARK not in table_store.info(ORDERS).properties


# ---- tombstones publish with the data ----------------------------------------------------------
DELETES = [event("a", 2, delete=True), event("gone", 2, delete=True), event("n", 2)]


def with_history(store) -> None:
    """Rows a and b, c deleted (so the tombstones table has a snapshot) and watermark 0."""
    store.merge(ORDERS, batch(event("a", 1), event("b", 1), event("c", 1), event("c", 2, delete=True)), stamp("setup", **{WATERMARK: "0"}))


def test_a_blocked_audit_with_deletes_leaves_table_tombstones_and_watermark_as_they_were(table_store):
    with_history(table_store)
    before = (main_ids(table_store), state(table_store.read(ORDERS)), tombstones(table_store), table_store.info(ORDERS).properties)
    w = Writer(table_store, "A", DELETES)
    w.start()
    w.write()  # the audit blocks here: no publish
    after = (main_ids(table_store), state(table_store.read(ORDERS)), tombstones(table_store), table_store.info(ORDERS).properties)
    assert after == before
    # Both branches stay for inspection; the tombstones branch holds the deletes the audit blocked.
    assert w.branch in refs(table_store) and w.branch in refs(table_store, "__tombstones")
    tombs = table_store.load_table(ORDERS, "__tombstones")
    on_branch = tombs.scan(snapshot_id=tombs.snapshot_by_name(w.branch).snapshot_id).to_arrow()
    assert sorted(on_branch["order_id"].to_pylist()) == ["a", "c", "gone"]


def test_a_publish_moves_tombstones_data_and_watermark_and_removes_the_branches(table_store):
    with_history(table_store)
    w = Writer(table_store, "A", DELETES)
    w.run()
    assert state(table_store.read(ORDERS)) == {"b": ("placed", 1), "n": ("placed", 2)}
    assert tombstones(table_store) == {"a": 2, "c": 2, "gone": 2}
    assert table_store.info(ORDERS).properties[WATERMARK] == "A"
    assert refs(table_store) == refs(table_store, "__tombstones") == {"main"}


def test_a_crash_between_the_tombstone_and_the_data_publish_converges_on_reapplying(table_store, tmp_path, monkeypatch):
    with_history(table_store)
    commit = table_store.catalog.commit_table

    def crash_on_data_publish(table, requirements, updates):
        if table.name()[-1] == "orders" and any(u.action == "set-properties" for u in updates):
            raise RuntimeError("killed between the tombstone and the data publish")
        return commit(table, requirements, updates)

    monkeypatch.setattr(table_store.catalog, "commit_table", crash_on_data_publish)
    crashed = Writer(table_store, "A", DELETES)
    crashed.start()
    crashed.write()
    with pytest.raises(RuntimeError, match="killed between"):
        crashed.publish()
    monkeypatch.undo()
    # Only the tombstones landed: the rows are still there and the watermark says the batch is pending.
    assert tombstones(table_store) == {"a": 2, "c": 2, "gone": 2}
    assert "a" in state(table_store.read(ORDERS)) and table_store.info(ORDERS).properties[WATERMARK] == "0"

    retry = Writer(table_store, "A", DELETES)  # the next run applies the same batch again
    retry.run()
    once = make_store(tmp_path / "once")
    with_history(once)
    w = Writer(once, "A", DELETES)
    w.run()
    assert state(table_store.read(ORDERS)) == state(once.read(ORDERS)) == {"b": ("placed", 1), "n": ("placed", 2)}
    assert tombstones(table_store) == tombstones(once)
    assert table_store.info(ORDERS).properties[WATERMARK] == once.info(ORDERS).properties[WATERMARK] == "A"


def test_a_write_without_audit_still_commits_its_tombstones_directly(table_store):
    with_history(table_store)
    table_store.merge(ORDERS, batch(*DELETES), stamp("direct"))
    assert tombstones(table_store) == {"a": 2, "c": 2, "gone": 2}
    assert refs(table_store, "__tombstones") == {"main"}


# ---- branches: names, cleanup, Gold --------------------------------------------------------------
def test_audit_branch_names_are_unique_valid_refs_that_sort_by_start():
    first = audit_branch_name("audit", "6f1c0f3e-9a2b-4c1d-8e7f-0123456789ab", started=T)
    second = audit_branch_name("audit", "6f1c0f3e-9a2b-4c1d-8e7f-0123456789ab", started=T)
    later = audit_branch_name("audit", "Run/With Odd_Chars", started=T + dt.timedelta(milliseconds=1))
    assert first != second and first.startswith("audit-20260101t000000000z-6f1c0f3e-9a2b-4c1d-8e7f-0123456789ab-")
    assert sorted([later, first]) == [first, later]
    assert all(c.isalnum() or c == "-" for c in later)


def test_a_new_audit_removes_branches_of_earlier_attempts_beyond_the_most_recent_few(table_store):
    table_store.merge(ORDERS, batch(event("x", 1)), stamp("setup"))
    table_store.start_audit(ORDERS, "audit")  # not an audit-<time>-... name: never removed
    names = [audit_branch_name("audit", f"run-{i}", started=T + dt.timedelta(seconds=i)) for i in range(KEPT_AUDIT_BRANCHES + 3)]
    for name in names:  # each attempt blocked (or still running): its branch is kept
        table_store.start_audit(ORDERS, name)
    kept = {"main", "audit", *names[-(KEPT_AUDIT_BRANCHES + 1) :]}
    assert refs(table_store) == kept and refs(table_store, "__tombstones") == kept


def test_a_write_to_a_removed_audit_branch_fails_instead_of_starting_it_empty(table_store, monkeypatch):
    monkeypatch.setattr(arrow_merge, "backoff", lambda attempt: 0)
    table_store.merge(ORDERS, batch(event("x", 1)), stamp("setup"))
    w = Writer(table_store, "A", [event("a", 2)])
    w.start()
    table_store.load_table(ORDERS).manage_snapshots().remove_branch(w.branch).commit()
    with pytest.raises(CommitFailedException, match=f"audit branch {w.branch!r} no longer exists"):
        w.write()


def sales(day: dt.date, currency: str, orders: int) -> dict:
    return dict(report_date=day, currency=currency, total_orders=orders, total_revenue=Decimal("1.50"), unique_customers=1)


D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def test_gold_overwrites_a_partition_on_its_branch_and_publishes_it_with_its_watermark(table_store):
    gold = CommitStamp(run_id="g", asset_key="gold/daily_sales")
    table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D1, "EUR", 1), sales(D2, "EUR", 2)]), gold)

    def rows() -> list[tuple]:
        return sorted((r["report_date"], r["currency"], r["total_orders"]) for r in table_store.read(DAILY_SALES).to_pylist())

    before = rows()
    branch = audit_branch_name("audit", "g")
    base = table_store.start_audit(DAILY_SALES, branch)
    result = table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D2, "USD", 5)]), gold, partition={"report_date": D2}, branch=branch)
    assert rows() == before and result.branch == branch
    table_store.publish(DAILY_SALES, branch, {"lakehouse.built-from.silver.orders": "7"}, base=base, head=result.snapshot_id)
    assert rows() == [(D1, "EUR", 1), (D2, "USD", 5)]
    assert table_store.info(DAILY_SALES).properties["lakehouse.built-from.silver.orders"] == "7"
    assert set(table_store.load_table(DAILY_SALES).refs()) == {"main"}


# ---- the IO manager --------------------------------------------------------------------------
@pytest.fixture
def materialize(tmp_path, monkeypatch):
    """Materialize one asset through the IO manager; returns its metadata and the fault points reached."""
    from lakehouse.io import table_write

    reached: list[tuple[str, str]] = []
    monkeypatch.setattr(table_write, "point", lambda name, asset=None: reached.append((name, asset)))
    store = local_store(Settings(home=tmp_path / "lh"))
    writer = TableWriter(store=store, audit=ContractChecks(reject_rate_limit=0.05))
    resources = {"store": store, "lakehouse_io_manager": LakehouseIOManager(writer=writer)}

    def run(key: list[str], output):
        @dg.asset(key=key, io_manager_key="lakehouse_io_manager")
        def table():
            return output

        result = dg.materialize([table], resources=resources)
        (event_,) = result.get_asset_materialization_events()
        points = list(reached)
        reached.clear()
        return {k: v.value for k, v in event_.materialization.metadata.items()}, points, result.run_id

    run.store = store.get_store()
    return run


def test_the_io_manager_gives_each_write_its_own_branch_and_marks_the_publish_points(materialize):
    orders = TableWrite(batch(event("a", 1)), table_properties={WATERMARK: "1"})
    first, points, run_id = materialize(["silver", "orders"], orders)
    second, _, _ = materialize(["silver", "orders"], TableWrite(batch(event("b", 1)), table_properties={WATERMARK: "2"}))
    assert first["published"] and first["audit_branch"].startswith("audit-") and run_id in first["audit_branch"]
    assert first["audit_branch"] != second["audit_branch"]
    assert points == [("silver.start_audit", "silver/orders"), ("silver.before_publish", "silver/orders"), ("silver.after_publish", "silver/orders")]
    assert set(materialize.store.load_table(ORDERS).refs()) == {"main"}
    assert materialize.store.info(ORDERS).properties[WATERMARK] == "2"

    gold, points, _ = materialize(["gold", "daily_sales"], pa.Table.from_pylist([sales(D1, "EUR", 1)]))
    assert gold["published"] and points == [("gold.before_publish", "gold/daily_sales"), ("gold.after_publish", "gold/daily_sales")]


def test_a_blocked_write_keeps_its_branch_and_reaches_no_publish_point(materialize):
    blocked = TableWrite(batch(event("a", 1), event("z", 1, delete=True)), table_properties={WATERMARK: "1"}, accounting={"read": 10, "rejected": 9})
    meta, points, _ = materialize(["silver", "orders"], blocked)
    assert meta["published"] is False and meta["blocking_failures"] == ["reject_rate_limit"]
    assert points == [("silver.start_audit", "silver/orders")]
    store = materialize.store
    assert meta["audit_branch"] in store.load_table(ORDERS).refs() and meta["audit_branch"] in store.load_table(ORDERS, "__tombstones").refs()
    assert store.read(ORDERS).num_rows == 0 and WATERMARK not in store.info(ORDERS).properties
    assert store.load_table(ORDERS, "__tombstones").scan().to_arrow().num_rows == 0


def test_a_branch_write_retries_when_another_writer_committed_on_main_meanwhile(tmp_path, monkeypatch):
    """pyiceberg reports this conflict as a ValueError (sequence number taken): it is retried."""
    home = tmp_path / "store"
    writer, other = make_store(home), make_store(home)
    writer.merge(ORDERS, batch(event("a", 1)), stamp("r0"))
    writer.start_audit(ORDERS, "audit-w")
    rewrite = arrow_merge.file_rewrite.rewrite
    interfered = []

    def rewrite_after_another_commit(*args, **kwargs):
        if not interfered:
            interfered.append(True)
            other.merge(ORDERS, batch(event("b", 1)), stamp("r1"))  # on main, while w plans on its branch
        return rewrite(*args, **kwargs)

    monkeypatch.setattr(arrow_merge.file_rewrite, "rewrite", rewrite_after_another_commit)
    result = writer.merge(ORDERS, batch(event("c", 1)), stamp("r2"), branch="audit-w")
    assert result.counts["inserted"] == 1 and interfered
    table = writer.load_table(ORDERS)
    on_branch = table.scan(snapshot_id=table.snapshot_by_name("audit-w").snapshot_id).to_arrow()
    assert sorted(state(on_branch)) == ["a", "c"] and sorted(state(table.scan().to_arrow())) == ["a", "b"]
