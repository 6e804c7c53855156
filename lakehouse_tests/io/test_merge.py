"""Property-style checks: random CDC histories, split into random batches, merge to the same state."""

from __future__ import annotations

import random

import pytest

from lakehouse.contracts.tables import ORDERS
from lakehouse.io.merge import reduce_batch
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
