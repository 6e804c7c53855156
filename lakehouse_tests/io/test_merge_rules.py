"""Property-style checks: random CDC histories, split into random batches, merge to the same state."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from lakehouse.contracts.tables import ORDERS
from lakehouse.io.merge_rules import reduce_batch
from lakehouse.io.table_store import CommitStamp
from lakehouse_tests.io.cdc import batch, event, state

STAMP = CommitStamp(run_id="run-prop", asset_key="silver/orders")


def random_history(rng: random.Random, keys: int, events: int) -> list[dict]:
    """Events with unique lsns per key, re-deliveries (identical duplicates), deletes of absent
    keys and re-inserts after deletes, in a shuffled delivery order."""
    history = []
    lsn = 0
    for _ in range(events):
        lsn += rng.randint(1, 3)
        key = f"k{rng.randrange(keys)}"
        kind = rng.random()
        history.append(event(key, lsn, delete=kind < 0.25, status=rng.choice(["placed", "paid", "shipped"])))
    history += rng.sample(history, k=len(history) // 5)  # re-delivered events
    rng.shuffle(history)  # late arrivals: delivery order is not lsn order
    return history


def expected(history: list[dict]) -> dict[str, tuple[str, int]]:
    """The plain-Python reference: per key the highest-lsn event wins; a winning delete means absent."""
    winners: dict[str, dict] = {}
    for e in history:
        if e["order_id"] not in winners or e["lsn"] > winners[e["order_id"]]["lsn"]:
            winners[e["order_id"]] = e
    return {k: (e["status"], e["lsn"]) for k, e in winners.items() if not e["_is_delete"]}


@pytest.mark.parametrize("seed", range(6))
def test_random_batches_merge_to_the_reference_state(table_store, seed):
    rng = random.Random(seed)
    history = random_history(rng, keys=25, events=120)
    cuts = sorted(rng.sample(range(1, len(history)), k=5))
    for start, end in zip([0, *cuts], [*cuts, len(history)]):
        table_store.merge(ORDERS, batch(*history[start:end]), STAMP)
    assert state(table_store.read(ORDERS)) == expected(history)
    # Re-applying everything as one batch changes nothing.
    again = table_store.merge(ORDERS, batch(*history), STAMP)
    assert not again.committed
    assert state(table_store.read(ORDERS)) == expected(history)


def test_untouched_rows_keep_their_data_files(table_store):
    table_store.merge(ORDERS, batch(*(event(f"a{i}", 1) for i in range(5))), STAMP)
    table_store.merge(ORDERS, batch(*(event(f"b{i}", 1) for i in range(5))), STAMP)
    files_before = {t.file.file_path for t in table_store.load_table(ORDERS).scan().plan_files()}
    table_store.merge(ORDERS, batch(event("b1", 2, status="paid")), STAMP)
    files_after = {t.file.file_path for t in table_store.load_table(ORDERS).scan().plan_files()}
    assert len(files_before - files_after) == 1  # only the file holding b1 was rewritten


def test_reduce_batch_keeps_the_later_row_on_equal_sequence():
    reduced = reduce_batch(batch(event("a", 1, status="paid"), event("a", 1, status="shipped")), "order_id", "lsn")
    assert reduced.to_pylist()[0]["status"] == "shipped"


# ---- copy-on-write by file ---------------------------------------------------------------------
# Keys share a 20-character prefix, longer than the default truncate(16) of string statistics.
PREFIX = "order-2026-01-01-ab-"


def small_files(store, rows_per_file: int = 8) -> None:
    """Make silver/orders cut its data files at a few rows, so tests see many files."""
    table = store.ensure_table(ORDERS)
    with table.transaction() as tx:
        tx.set_properties({"write.target-file-size-bytes": str(rows_per_file * 200)})


def set_key_metrics(store, mode: str) -> None:
    table = store.ensure_table(ORDERS)
    with table.transaction() as tx:
        tx.set_properties({"write.metadata.metrics.column.order_id": mode})


def is_arrow(store) -> bool:
    from lakehouse.io.spark_store import SparkTableStore

    return not isinstance(store, SparkTableStore)


def data_files(store) -> set[str]:
    table = store.load_table(ORDERS)
    return {t.file.file_path for t in table.scan().plan_files()} if table.current_snapshot() else set()


def apply_reference(rows: dict[str, dict], tombs: dict[str, int], events: list[dict]) -> None:
    """The merge rules of lakehouse.io.merge_rules, one batch, in plain Python."""
    winners: dict[str, dict] = {}
    for e in events:  # rule 1: highest lsn per key, the later row on a tie
        if e["order_id"] not in winners or e["lsn"] >= winners[e["order_id"]]["lsn"]:
            winners[e["order_id"]] = e
    for k, e in winners.items():
        if k in rows:  # rule 2
            applies = e["lsn"] > rows[k]["lsn"]
        else:  # rule 3
            applies = k not in tombs or e["lsn"] > tombs[k]
        if not applies:
            continue
        if e["_is_delete"]:  # rule 4
            rows.pop(k, None)
            tombs[k] = e["lsn"]
        else:
            rows[k] = e


def tied_history(rng: random.Random, keys: int, events: int) -> list[dict]:
    """Events whose lsns often tie for a key (with different contents), identical re-deliveries,
    deletes of keys never inserted and re-inserts after deletes."""
    history = []
    for _ in range(events):
        key = f"{PREFIX}{rng.randrange(keys):04d}"
        history.append(
            event(key, rng.randint(1, 40), delete=rng.random() < 0.25, status=rng.choice(["placed", "paid", "shipped"]))
        )
    history += rng.sample(history, k=len(history) // 5)
    rng.shuffle(history)
    return history


def as_state(rows: dict[str, dict]) -> dict[str, tuple[str, int]]:
    return {k: (e["status"], e["lsn"]) for k, e in rows.items()}


@pytest.mark.parametrize("metrics", ["full", "truncate(16)", "truncate(3)", "none"])
@pytest.mark.parametrize("seed", range(3))
def test_random_batches_over_many_files_match_the_plain_python_reference(table_store, seed, metrics):
    """Whatever the file layout and however the key statistics are kept (exact, truncated, or not
    at all), the file-by-file merge ends in the reference state, batch after batch."""
    rng = random.Random(100 + seed)
    small_files(table_store)
    set_key_metrics(table_store, metrics)
    history = tied_history(rng, keys=60, events=300)
    rows: dict[str, dict] = {}
    tombs: dict[str, int] = {}
    cuts = sorted(rng.sample(range(1, len(history)), k=7))
    for start, end in zip([0, *cuts], [*cuts, len(history)]):
        part = history[start:end]
        result = table_store.merge(ORDERS, batch(*part), STAMP)
        apply_reference(rows, tombs, part)
        got = table_store.read(ORDERS)
        assert state(got) == as_state(rows)
        assert got.num_rows == len(rows)  # one row per key
        assert result.row_count == len(rows)
    if is_arrow(table_store):  # the Arrow merge went file by file (Spark sizes its files itself)
        assert len(data_files(table_store)) > 3
    again = table_store.merge(ORDERS, batch(*history), STAMP)
    assert not again.committed
    assert state(table_store.read(ORDERS)) == as_state(rows)


@pytest.mark.arrow_store_only("the Arrow merge's file-by-file reads and rewrites")
def test_a_merge_reads_and_rewrites_only_the_files_holding_its_keys(table_store, monkeypatch):
    import lakehouse.io.file_rewrite as file_rewrite

    small_files(table_store, rows_per_file=10)
    table_store.merge(ORDERS, batch(*(event(f"{PREFIX}{i:04d}", 1) for i in range(100))), STAMP)
    before = data_files(table_store)
    assert len(before) > 4
    ranges = file_rewrite.file_ranges(table_store.load_table(ORDERS), "order_id")
    (holder,) = [r for r in ranges if r.lower <= f"{PREFIX}0042" <= r.upper]
    reads: list[str] = []
    read = file_rewrite.read_file

    def counting(table, task, columns=None):
        reads.append(task.file.file_path)
        return read(table, task, columns)

    monkeypatch.setattr(file_rewrite, "read_file", counting)
    # 42 and the last key of its file change; 1000 is past every file's range (a pure insert).
    gone = holder.upper
    cdc = batch(event(f"{PREFIX}0042", 2, status="paid"), event(gone, 2, delete=True), event(f"{PREFIX}1000", 2))
    result = table_store.merge(ORDERS, cdc, STAMP)
    assert result.counts == {"inserted": 1, "updated": 1, "deleted": 1, "ignored": 0}
    after = data_files(table_store)
    assert before - after == {holder.path}  # exactly the file holding 42 was replaced
    assert set(reads) == {holder.path}  # and no other data file was opened
    assert len(after - before) == 2  # its rewrite, and a new file for the insert
    expected = {f"{PREFIX}{i:04d}": ("placed", 1) for i in range(100)}
    del expected[gone]
    expected |= {f"{PREFIX}0042": ("paid", 2), f"{PREFIX}1000": ("placed", 2)}
    assert state(table_store.read(ORDERS)) == expected


def test_an_ignored_batch_rewrites_nothing(table_store):
    small_files(table_store)
    table_store.merge(ORDERS, batch(*(event(f"{PREFIX}{i:04d}", 5) for i in range(40))), STAMP)
    before = data_files(table_store)
    result = table_store.merge(ORDERS, batch(event(f"{PREFIX}0003", 4, status="paid"), event(f"{PREFIX}0020", 5, delete=True)), STAMP)
    assert result.counts["ignored"] == 2 and not result.committed
    assert data_files(table_store) == before


def test_null_keys_are_refused_naming_table_and_column(table_store):
    from lakehouse.contracts.model import ContractViolation

    bad = batch(event("a", 1), event("b", 2))
    bad = bad.set_column(0, "order_id", pa.array(["a", None], pa.large_string()))
    with pytest.raises(ContractViolation, match="silver/orders.*'order_id'.*null"):
        table_store.merge(ORDERS, bad, STAMP)
    assert table_store.info(ORDERS).snapshot_id is None


def test_a_partitioned_merge_table_matches_the_reference(table_store):
    """Rows move between partitions when an update changes the partition column."""
    from lakehouse.contracts.model import Column, Layer, TableContract

    contract = TableContract(
        name="regional",
        layer=Layer.silver,
        description="test",
        columns=(
            Column(name="order_id", type="string", required=True),
            Column(name="region", type="string", required=True),
            Column(name="status", type="string", required=True),
            Column(name="lsn", type="long", required=True),
        ),
        primary_key=("order_id",),
        partition_by=("region",),
        sequence_by="lsn",
        delete_flag="_is_delete",
    )
    rng = random.Random(7)
    rows: dict[str, dict] = {}
    tombs: dict[str, int] = {}
    schema = pa.schema([*(f.with_nullable(True) for f in contract.arrow_schema), pa.field("_is_delete", pa.bool_())])
    for _ in range(6):
        events = [
            dict(order_id=f"k{rng.randrange(30)}", region=rng.choice(["eu", "us", "ap"]), status=rng.choice(["a", "b"]),
                 lsn=rng.randint(1, 30), _is_delete=rng.random() < 0.2)
            for _ in range(25)
        ]
        table_store.merge(contract, pa.Table.from_pylist(events, schema=schema), STAMP)
        apply_reference(rows, tombs, events)
        got = table_store.read(contract)
        assert {r["order_id"]: (r["region"], r["status"], r["lsn"]) for r in got.to_pylist()} == {
            k: (e["region"], e["status"], e["lsn"]) for k, e in rows.items()
        }
    from lakehouse.io.file_rewrite import read_file

    table = table_store.load_table(contract)
    for task in table.scan().plan_files():  # every file holds rows of its own partition only
        assert set(read_file(table, task)["region"].to_pylist()) == {task.file.partition[0]}


# ---- concurrent writers ------------------------------------------------------------------------
def second_store(table_store):
    """Another process's view: its own catalog object on the same catalog (SQLite or Glue)."""
    from pyiceberg.catalog import load_catalog

    from lakehouse.io.arrow_store import ArrowTableStore

    catalog = load_catalog(table_store.catalog.name, **table_store.catalog.properties)
    return ArrowTableStore(catalog, table_store.locations, table_store.namespaces, table_store._fs, aws=table_store.aws)


def commit_first(monkeypatch, other_store, other_batch):
    """Let ``other_store`` merge ``other_batch`` right before the next silver/orders data commit,
    i.e. after that merge has read the table and planned."""
    from pyiceberg.table import Transaction

    original = Transaction.commit_transaction
    done = {"other": False}

    def commit(self):
        if not done["other"] and self._table.name()[-1] == ORDERS.name:
            done["other"] = True
            other_store.merge(ORDERS, other_batch, CommitStamp(run_id="other", asset_key="silver/orders"))
        return original(self)

    monkeypatch.setattr(Transaction, "commit_transaction", commit)
    return done


@pytest.mark.arrow_store_only("its commit hook; the Spark store's replan is tested below")
@pytest.mark.parametrize("overlap", ["disjoint keys", "same keys"])
def test_a_concurrent_commit_is_replanned_and_both_writes_survive(table_store, monkeypatch, overlap):
    import lakehouse.io.arrow_merge as arrow_merge
    from lakehouse.io.arrow_store import ArrowTableStore

    monkeypatch.setattr(arrow_merge, "backoff", lambda attempt: 0.0)
    small_files(table_store, rows_per_file=5)
    table_store.merge(ORDERS, batch(*(event(f"{PREFIX}{i:04d}", 1) for i in range(20))), STAMP)
    if overlap == "disjoint keys":
        other = batch(event(f"{PREFIX}0002", 3, status="shipped"), event(f"{PREFIX}0500", 3), event(f"{PREFIX}0011", 3, delete=True))
        mine = batch(event(f"{PREFIX}0003", 2, status="paid"), event(f"{PREFIX}0600", 2), event(f"{PREFIX}0012", 2, delete=True))
    else:  # both update key 2 and insert key 500: the higher lsn must win, with no duplicate row
        other = batch(event(f"{PREFIX}0002", 3, status="shipped"), event(f"{PREFIX}0500", 2, status="paid"))
        mine = batch(event(f"{PREFIX}0002", 2, status="paid"), event(f"{PREFIX}0500", 3, status="shipped"))
    attempts = {"n": 0}
    plan_once = ArrowTableStore._merge_once

    def counted(self, *args):
        attempts["n"] += self is table_store
        return plan_once(self, *args)

    monkeypatch.setattr(ArrowTableStore, "_merge_once", counted)
    done = commit_first(monkeypatch, second_store(table_store), other)
    table_store.merge(ORDERS, mine, STAMP)
    assert done["other"] and attempts["n"] == 2  # the first plan was stale and was redone

    rows: dict[str, dict] = {}
    tombs: dict[str, int] = {}
    for events in ([event(f"{PREFIX}{i:04d}", 1) for i in range(20)], other.to_pylist(), mine.to_pylist()):
        apply_reference(rows, tombs, events)
    got = table_store.read(ORDERS)
    assert got.num_rows == len(rows)
    assert state(got) == as_state(rows)
    history = table_store.load_table(ORDERS).history()
    runs = [table_store.load_table(ORDERS).snapshot_by_id(h.snapshot_id).summary["dagster.run-id"] for h in history]
    assert runs[-2:] == ["other", "run-prop"]  # the other writer's commit stays in the history


@pytest.mark.arrow_store_only("its commit hook; the Spark store's replan is tested below")
def test_retries_are_bounded(table_store, monkeypatch):
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table import Transaction

    import lakehouse.io.arrow_merge as arrow_merge

    table_store.merge(ORDERS, batch(event("a", 1)), STAMP)
    sleeps: list[float] = []
    backoff = arrow_merge.backoff

    def no_wait(attempt: int) -> float:
        sleeps.append(backoff(attempt))
        return 0.0

    monkeypatch.setattr(arrow_merge, "backoff", no_wait)

    def always_conflicts(self):
        raise CommitFailedException("the table moved")

    monkeypatch.setattr(Transaction, "commit_transaction", always_conflicts)
    with pytest.raises(CommitFailedException):
        table_store.merge(ORDERS, batch(event("a", 2, status="paid")), STAMP)
    assert len(sleeps) == arrow_merge.MERGE_ATTEMPTS - 1
    assert max(sleeps) <= 7.5 and sleeps[-1] > sleeps[0]  # backing off, capped
    monkeypatch.undo()
    assert state(table_store.read(ORDERS)) == {"a": ("placed", 1)}


@pytest.mark.parametrize("kind", ["long", "int", "date", "timestamptz", "decimal(10,2)"])
def test_keys_of_every_exact_type_prune_and_merge_right(table_store, kind):
    """File bounds decode to the key's own type (days, microseconds, decimals) and compare right."""
    import datetime as dt
    from decimal import Decimal

    from lakehouse.contracts.model import Column, Layer, TableContract

    contract = TableContract(
        name=f"typed_{kind.split('(')[0]}",
        layer=Layer.silver,
        description="test",
        columns=(
            Column(name="id", type=kind, required=True),
            Column(name="v", type="string", required=True),
            Column(name="lsn", type="long", required=True),
        ),
        primary_key=("id",),
        sequence_by="lsn",
        delete_flag="_is_delete",
    )
    value = {
        "long": lambda i: i * 1_000_003,
        "int": lambda i: i - 50,
        "date": lambda i: dt.date(2026, 1, 1) + dt.timedelta(days=i),
        "timestamptz": lambda i: dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        "decimal(10,2)": lambda i: Decimal(i) / 100,
    }[kind]
    table = table_store.ensure_table(contract)
    with table.transaction() as tx:
        tx.set_properties({"write.target-file-size-bytes": "400"})
    schema = pa.schema([*(f.with_nullable(True) for f in contract.arrow_schema), pa.field("_is_delete", pa.bool_())])
    rng = random.Random(kind)
    rows: dict = {}
    tombs: dict = {}
    for round_ in range(5):
        events = [
            dict(id=value(rng.randrange(120)), v=f"r{round_}", lsn=rng.randint(1, 60), _is_delete=rng.random() < 0.2)
            for _ in range(40)
        ]
        table_store.merge(contract, pa.Table.from_pylist(events, schema=schema), STAMP)
        keyed = [dict(e, order_id=e["id"]) for e in events]
        apply_reference(rows, tombs, keyed)
        got = {r["id"]: (r["v"], r["lsn"]) for r in table_store.read(contract).to_pylist()}
        assert got == {k: (e["v"], e["lsn"]) for k, e in rows.items()}
    if is_arrow(table_store):  # bounds of several files were compared (Spark sizes its files itself)
        assert len(list(table_store.load_table(contract).scan().plan_files())) > 3


def test_merges_on_an_audit_branch_plan_against_the_branch(table_store):
    """The lookup reads the branch being written, not main, even after main has moved on."""
    small_files(table_store)
    table_store.merge(ORDERS, batch(*(event(f"{PREFIX}{i:04d}", 1) for i in range(30))), STAMP)
    rows: dict[str, dict] = {}
    tombs: dict[str, int] = {}
    apply_reference(rows, tombs, [event(f"{PREFIX}{i:04d}", 1) for i in range(30)])
    table_store.start_audit(ORDERS, "audit")
    first = [event(f"{PREFIX}0001", 2, status="paid"), event(f"{PREFIX}0100", 2)]
    table_store.merge(ORDERS, batch(*first), STAMP, branch="audit")
    table_store.merge(ORDERS, batch(event(f"{PREFIX}0200", 3)), STAMP)  # main moves on
    second = [event(f"{PREFIX}0100", 3, status="shipped"), event(f"{PREFIX}0002", 3, delete=True)]
    table_store.merge(ORDERS, batch(*second), STAMP, branch="audit")
    apply_reference(rows, tombs, first)
    apply_reference(rows, tombs, second)
    table = table_store.load_table(ORDERS)
    on_branch = table.scan(snapshot_id=table.snapshot_by_name("audit").snapshot_id).to_arrow()
    assert on_branch.num_rows == len(rows)
    assert state(on_branch) == as_state(rows)
    assert f"{PREFIX}0200" in state(table_store.read(ORDERS))  # main kept its own write


@pytest.mark.parametrize("overlap", ["disjoint keys", "same keys"])
def test_the_spark_store_replans_when_another_writer_published_first(tmp_path, spark, monkeypatch, overlap):
    """The Spark store merges on a branch of its own and publishes it asserting main did not move:
    when another writer published meanwhile, the publish is refused and the merge planned again
    from the new main, so both writes survive under the merge rules."""
    from lakehouse.io.spark_store import SparkTableStore
    from lakehouse_tests.conftest import ICEBERG_JARS, make_store

    if not ICEBERG_JARS:
        pytest.skip("the Iceberg Spark runtime is not in .jars")
    store = make_store(tmp_path / "home", "spark", spark)
    other_store = make_store(tmp_path / "home")  # the Arrow store on the same catalog
    store.merge(ORDERS, batch(*(event(f"{PREFIX}{i:04d}", 1) for i in range(20))), STAMP)
    if overlap == "disjoint keys":
        other = batch(event(f"{PREFIX}0002", 3, status="shipped"), event(f"{PREFIX}0011", 3, delete=True))
        mine = batch(event(f"{PREFIX}0003", 2, status="paid"), event(f"{PREFIX}0012", 2, delete=True))
    else:
        other = batch(event(f"{PREFIX}0002", 3, status="shipped"), event(f"{PREFIX}0500", 2, status="paid"))
        mine = batch(event(f"{PREFIX}0002", 2, status="paid"), event(f"{PREFIX}0500", 3, status="shipped"))
    publish = SparkTableStore.publish
    calls = {"n": 0}

    def publish_after_the_other(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            other_store.merge(ORDERS, other, CommitStamp(run_id="other", asset_key="silver/orders"))
        return publish(self, *args, **kwargs)

    monkeypatch.setattr(SparkTableStore, "publish", publish_after_the_other)
    store.merge(ORDERS, mine, STAMP)
    assert calls["n"] == 2  # refused once, then planned and published again
    rows: dict[str, dict] = {}
    tombs: dict[str, int] = {}
    for events in ([event(f"{PREFIX}{i:04d}", 1) for i in range(20)], other.to_pylist(), mine.to_pylist()):
        apply_reference(rows, tombs, events)
    got = store.read(ORDERS)
    assert got.num_rows == len(rows) and state(got) == as_state(rows)
    table = store.load_table(ORDERS)
    assert [b for b in table.refs() if b != "main"] == []  # the refused attempt's branch is gone
