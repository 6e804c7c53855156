"""Each expectation kind, evaluated on small written batches: counts, samples, thresholds."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse.checks.evaluate import AuditInput, evaluate
from lakehouse.checks.expect import expect, expectations_for
from lakehouse.contracts.expectations import Severity, accepted_values, freshness, in_range, reject_rate, relationship, row_count_change, sql
from lakehouse.contracts.model import Column, Layer, TableContract

NOW = dt.datetime.now(dt.UTC)


def contract(*expectations) -> TableContract:
    return TableContract(
        name="t", layer=Layer.silver, description="d",
        columns=(Column(name="id", type="string", required=True), Column(name="status", type="string"),
                 Column(name="amount", type="double"), Column(name="ts", type="timestamptz"), Column(name="ref", type="string")),
        primary_key=("id",), expectations=expectations,
    )


def rows(*records) -> pa.Table:
    base = {"id": None, "status": "ok", "amount": 1.0, "ts": NOW, "ref": None}
    return pa.Table.from_pylist([{**base, **r} for r in records], schema=contract().arrow_schema.remove_metadata())


def outcomes(c: TableContract, written: pa.Table, **audit) -> dict:
    audit = {"row_count_before": 10, "row_count_after": 10, **audit}
    return {o.name: o for o in evaluate(c, AuditInput(written=written, **audit))}


def test_required_columns_and_key_uniqueness_come_from_the_contract():
    got = outcomes(contract(), rows({"id": "a"}, {"id": "a"}, {"id": "b"}))
    assert got["required_columns_not_null"].passed
    unique = got["unique_id"]
    assert not unique.passed and unique.metadata["failing_count"] == 1 and unique.severity is Severity.error


def test_unique_for_a_merge_counts_written_keys_in_the_new_snapshot():
    got = outcomes(contract(), rows({"id": "a"}), key_column=lambda keys: pa.array(["a", "a", "z", "z"]))
    assert got["unique_id"].metadata["failing_count"] == 1  # z is duplicated too, but this write did not touch it


def test_accepted_values_and_range_report_count_sample_and_threshold():
    c = contract(accepted_values("status", ["ok"]), in_range("amount", min=0, max=10))
    got = outcomes(c, rows({"id": "a", "status": "bad"}, {"id": "b", "amount": -1.0}, {"id": "c", "amount": 11.0}, {"id": "d"}))
    assert got["accepted_values_status"].metadata["failing_count"] == 1 and got["accepted_values_status"].metadata["failing_sample"] == ["a"]
    assert got["range_amount"].metadata["failing_count"] == 2 and got["range_amount"].metadata["threshold"] == {"min": 0, "max": 10}
    assert sorted(got["range_amount"].metadata["failing_sample"]) == ["b", "c"]


def test_sql_expectation_treats_null_as_failure():
    got = outcomes(contract(sql("amount * 2 < 10", name="small")), rows({"id": "a", "amount": 6.0}, {"id": "b", "amount": None}, {"id": "c"}))
    assert got["small"].metadata["failing_count"] == 2


def test_relationship_is_a_warning_with_missing_values():
    c = contract(relationship("ref", to_table="silver/other", to_column="id"))
    got = outcomes(c, rows({"id": "a", "ref": "x"}, {"id": "b", "ref": "y"}, {"id": "c"}), lookup=lambda table, column: pa.array(["x"]))
    o = got["relationship_ref"]
    assert not o.passed and o.severity is Severity.warn and o.metadata["failing_sample"] == ["y"] and not o.blocks


def test_row_count_change_compares_with_the_previous_snapshot():
    c = contract(row_count_change(max_drop=0.5))
    assert not outcomes(c, rows(), row_count_before=100, row_count_after=40)["row_count_change"].passed
    assert outcomes(c, rows(), row_count_before=100, row_count_after=60)["row_count_change"].passed


def test_freshness_uses_the_newest_written_value():
    c = contract(freshness("ts", max_age_hours=1))
    assert outcomes(c, rows({"id": "a", "ts": NOW - dt.timedelta(minutes=5)}))["freshness_ts"].passed
    stale = outcomes(c, rows({"id": "a", "ts": NOW - dt.timedelta(hours=3)}))["freshness_ts"]
    assert not stale.passed and stale.metadata["age_hours"] >= 3


def test_reject_rate_uses_its_own_or_the_configured_limit():
    c = contract(reject_rate(0.1, Severity.warn, name="rate"), reject_rate(None, Severity.error, name="limit"))
    got = outcomes(c, rows(), records_read=100, records_rejected=7, reject_rate_limit=0.05)
    assert got["rate"].passed and not got["limit"].passed and got["limit"].blocks
    assert got["limit"].metadata["threshold"] == 0.05 and got["limit"].metadata["rate"] == 0.07


def test_expect_decorator_adds_a_row_rule_to_the_transformation():
    c = contract()

    class Fake:
        key = "silver/t"

    expect("amount >= 0", severity="WARN")(Fake())
    names = {e.check_name: e for e in expectations_for(c)}
    assert names["expect_amount_0"].severity is Severity.warn
    got = outcomes(c, rows({"id": "a", "amount": -5.0}))
    assert not got["expect_amount_0"].passed and not got["expect_amount_0"].blocks


@pytest.mark.parametrize("bad", ["not sql at all (", "missing_column > 1"])
def test_a_broken_sql_expectation_fails_loudly(bad):
    with pytest.raises(ValueError, match=r"expectation 'broken' of table .* is not valid SQL.*fix it in the table contract"):
        outcomes(contract(sql(bad, name="broken")), rows({"id": "a"}))


# ---- the reject-rate gate says what it measured, against what, and where to look ------------


def test_a_failing_reject_rate_gives_rate_limit_setting_and_the_worst_files():
    c = contract(reject_rate(None, Severity.error, name="limit"))
    calls = []

    def files():
        calls.append(1)
        return [("orders/dt=2026-01-02/b.jsonl", 6), ("orders/dt=2026-01-01/a.jsonl", 4), ("orders/dt=2026-01-01/c.jsonl", 1), ("orders/x.jsonl", 1)]

    o = outcomes(c, rows(), records_read=200, records_rejected=12, reject_rate_limit=0.05, reject_files=files)["limit"]
    assert not o.passed and o.blocks
    assert calls == [1]
    for part in ("12 of 200", "6%", "limit of 5%", "LAKEHOUSE_REJECT_RATE_LIMIT", "orders/dt=2026-01-02/b.jsonl (6)", "orders/dt=2026-01-01/a.jsonl (4)"):
        assert part in o.description, (part, o.description)
    assert "orders/x.jsonl" not in o.description  # at most three files
    assert o.metadata["rate"] == 0.06 and o.metadata["threshold"] == 0.05
    assert o.metadata["limit_setting"] == "LAKEHOUSE_REJECT_RATE_LIMIT"
    assert o.metadata["top_reject_files"] == [
        {"file": "orders/dt=2026-01-02/b.jsonl", "rejects": 6},
        {"file": "orders/dt=2026-01-01/a.jsonl", "rejects": 4},
        {"file": "orders/dt=2026-01-01/c.jsonl", "rejects": 1},
    ]


def test_a_passing_reject_rate_gives_its_rate_and_does_not_look_for_files():
    c = contract(reject_rate(None, Severity.error, name="limit"))

    def files():
        raise AssertionError("only a failing check looks for the files")

    o = outcomes(c, rows(), records_read=200, records_rejected=2, reject_rate_limit=0.05, reject_files=files)["limit"]
    assert o.passed
    assert "2 of 200" in o.description and "1%" in o.description and "5%" in o.description
    assert "top_reject_files" not in o.metadata


def test_a_reject_rate_with_its_own_limit_does_not_name_the_setting():
    c = contract(reject_rate(0.1, Severity.warn, name="rate"))
    o = outcomes(c, rows(), records_read=10, records_rejected=5, reject_files=lambda: [("f.jsonl", 5)])["rate"]
    assert not o.passed
    assert "50%" in o.description and "10%" in o.description and "f.jsonl (5)" in o.description
    assert "LAKEHOUSE_REJECT_RATE_LIMIT" not in o.description and "limit_setting" not in o.metadata


def test_a_failing_reject_rate_without_known_files_still_gives_rate_and_limit():
    c = contract(reject_rate(None, Severity.error, name="limit"))
    o = outcomes(c, rows(), records_read=19, records_rejected=13, reject_rate_limit=0.05)["limit"]
    assert not o.passed and "13 of 19" in o.description and "68.42%" in o.description and "LAKEHOUSE_REJECT_RATE_LIMIT" in o.description
    # The CLI prints the description after this prefix, which scripts may match on.
    assert o.description.startswith("reject rate within the configured limit")
