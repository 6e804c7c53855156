"""The file-level helpers under the merge: key order, dropping rows by position, the written rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakehouse.contracts.tables import ORDERS
from lakehouse.io import file_rewrite
from lakehouse.io.table_store import CommitStamp
from lakehouse_tests.io.cdc import batch, event

pytestmark = pytest.mark.arrow_store_only("the Arrow merge's file rewriting")

STAMP = CommitStamp(run_id="run-files", asset_key="silver/orders")


def test_key_order_is_none_for_sorted_keys_and_a_stable_sort_otherwise():
    assert file_rewrite.key_order(pa.array(["a", "a", "b", "c"])) is None
    assert file_rewrite.key_order(pa.chunked_array([["a", "b"], ["b", "c"]])) is None
    order = file_rewrite.key_order(pa.array(["b", "a", "b", "a"]))
    assert order.to_pylist() == [1, 3, 0, 2]  # equal keys keep their order


def _found(keys: list[str], rows: list[int]) -> pa.Table:
    return pa.table({"k": pa.array(keys, pa.large_string()), file_rewrite.ROW: pa.array(rows, pa.int64())})


def test_rows_are_dropped_by_their_position_in_the_file():
    data = pa.table({"k": pa.array(["a", "b", "c", "d"], pa.large_string())})
    keep = file_rewrite._without(data, "k", _found(["b", "d"], [1, 3]))
    assert data.filter(keep)["k"].to_pylist() == ["a", "c"]


def test_positions_that_do_not_hold_their_keys_fall_back_to_matching_by_key():
    # The file read back in another order than the lookup saw it, or positions past its end:
    # dropping by position would remove the wrong rows, so the keys decide.
    data = pa.table({"k": pa.array(["d", "c", "b", "a"], pa.large_string())})
    keep = file_rewrite._without(data, "k", _found(["b", "d"], [1, 3]))
    assert data.filter(keep)["k"].to_pylist() == ["c", "a"]
    keep = file_rewrite._without(data, "k", _found(["a"], [9]))
    assert data.filter(keep)["k"].to_pylist() == ["d", "c", "b"]


def test_a_merge_reports_the_rows_it_wrote(table_store):
    table_store.merge(ORDERS, batch(*(event(f"o{i}", 1) for i in range(6))), STAMP)
    # Out of key order, with a tie on o3 (the later event wins) and a delete.
    cdc = batch(event("o9", 2), event("o3", 2, status="paid"), event("o3", 2, status="shipped"), event("o1", 2, delete=True), event("o0", 0))
    result = table_store.merge(ORDERS, cdc, STAMP)
    assert result.counts == {"inserted": 1, "updated": 1, "deleted": 1, "ignored": 1}
    written = result.written_rows
    assert written.schema == ORDERS.arrow_schema
    assert sorted(zip(written["order_id"].to_pylist(), written["status"].to_pylist())) == [("o3", "shipped"), ("o9", "placed")]
    assert pc.all(pc.equal(written["lsn"], 2)).as_py()


def test_a_key_another_writer_left_twice_in_one_file_keeps_one_row(table_store):
    from lakehouse_tests.io.cdc import state

    table = table_store.ensure_table(ORDERS)
    twice = batch(event("a", 1, status="placed"), event("a", 1, status="paid"), event("b", 1))
    table.append(twice.drop_columns(["_is_delete"]).cast(ORDERS.arrow_schema))  # one file, "a" in it twice
    result = table_store.merge(ORDERS, batch(event("a", 5, status="shipped")), STAMP)
    assert result.counts["updated"] == 1
    rows = table_store.read(ORDERS)
    assert sorted(rows["order_id"].to_pylist()) == ["a", "b"]
    assert state(rows)["a"] == ("shipped", 5)
