"""A failing check on a pii column shows no clear value: not in its samples, the run's metadata, its
event log or its log lines; an untagged column's sample is shown as before."""

import logging

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.checks.evaluate import AuditInput, evaluate
from lakehouse.checks.specs import check_specs
from lakehouse.contracts.expectations import Expectation, Severity, accepted_values, relationship
from lakehouse.contracts.model import Column, ContractViolation, Layer, TableContract
from lakehouse.environment import resources_for
from lakehouse.io.table_write import TableWriter, WriteStep
from lakehouse.settings import Settings

CLEAR = ("jane@example.com", "joe@example.com", "Jane Doe", "Joe Bloggs")

CONTACTS = TableContract(
    name="contacts",
    layer=Layer.gold,
    description="d",
    columns=(
        Column(name="contact_id", type="string", required=True),
        Column(name="email", type="string", pii="email"),
        Column(name="name", type="string", pii="name"),
        Column(name="country", type="string"),
    ),
    primary_key=("contact_id",),
    expectations=(
        Expectation(kind="unique", columns=("email",), name="unique_email"),
        Expectation(kind="unique", columns=("country",), severity=Severity.warn, name="unique_country"),
    ),
)

ROWS = pa.Table.from_pylist([
    {"contact_id": "c-1", "email": "jane@example.com", "name": "Jane Doe", "country": "DE"},
    {"contact_id": "c-2", "email": "jane@example.com", "name": "Jane Doe", "country": "DE"},
    {"contact_id": "c-3", "email": "joe@example.com", "name": "Joe Bloggs", "country": "NL"},
])


def outcomes(contract: TableContract, written: pa.Table, **audit) -> dict:
    return {o.name: o for o in evaluate(contract, AuditInput(written=written, row_count_before=0, row_count_after=written.num_rows, **audit))}


def test_duplicate_samples_of_a_tagged_column_are_masked_and_of_an_untagged_one_shown():
    got = outcomes(CONTACTS, ROWS)
    assert got["unique_email"].metadata["failing_sample"] == ["{'email': 'j***@example.com'}"]
    assert got["unique_country"].metadata["failing_sample"] == ["{'country': 'DE'}"]


def test_a_row_sample_without_a_key_masks_the_tagged_values_in_it():
    keyless = TableContract(
        name="mailing", layer=Layer.gold, description="d", columns=CONTACTS.columns,
        expectations=(accepted_values("country", ["DE"]),),
    )
    sample = outcomes(keyless, ROWS)["accepted_values_country"].metadata["failing_sample"]
    assert sample == ["['c-3', 'j***@example.com', 'J*** B***', 'NL']"]


def test_key_and_relationship_samples_of_tagged_columns_are_masked():
    by_email = TableContract(
        name="subscribers", layer=Layer.gold, description="d", primary_key=("email",),
        columns=(Column(name="email", type="string", required=True, pii="email"), Column(name="country", type="string"),
                 Column(name="referrer", type="string", pii="email")),
        expectations=(accepted_values("country", ["DE"]), relationship("referrer", to_table="gold/subscribers", to_column="email")),
    )
    rows = pa.Table.from_pylist([{"email": "joe@example.com", "country": "NL", "referrer": "jane@example.com"}])
    got = outcomes(by_email, rows, lookup=lambda table, column: pa.array(["someone@example.com"]))
    assert got["accepted_values_country"].metadata["failing_sample"] == ["j***@example.com"]
    assert got["relationship_referrer"].metadata["failing_sample"] == ["j***@example.com"]


def test_a_value_of_a_tagged_column_that_cannot_be_cast_is_not_quoted():
    contract = TableContract(name="calls", layer=Layer.gold, description="d",
                             columns=(Column(name="phone", type="long", pii="phone"), Column(name="minutes", type="long")))
    with pytest.raises(ContractViolation) as tagged:
        contract.conform(pa.table({"phone": ["+49 30 1234567"], "minutes": [1]}))
    assert "1234567" not in str(tagged.value) and "tagged pii phone" in str(tagged.value)
    assert tagged.value.__cause__ is None and tagged.value.__suppress_context__  # no traceback quotes it either
    with pytest.raises(ContractViolation, match="twelve"):  # an untagged column's error says what it could not cast
        contract.conform(pa.table({"phone": ["1"], "minutes": ["twelve"]}))


@dg.asset(key=CONTACTS.asset_key, check_specs=check_specs(CONTACTS))
def contacts(context: dg.AssetExecutionContext, table_writer: TableWriter) -> dg.MaterializeResult:
    step = WriteStep(run_id=context.run_id, asset_key=CONTACTS.asset_key.to_user_string())
    return table_writer.write(CONTACTS, ROWS, step, context.log).materialize_result()


def test_a_refused_write_shows_no_clear_value_in_metadata_event_log_or_log_lines(tmp_path, caplog, capfd):
    settings = Settings(home=tmp_path / "lh")
    caplog.set_level(logging.DEBUG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([contacts], resources=resources_for(settings), instance=instance, raise_on_error=False)
        records = instance.all_logs(result.run_id)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["unique_email"].passed, "the duplicate e-mail must fail its check for this test to mean anything"
    assert checks["unique_email"].metadata["failing_sample"].value == ["{'email': 'j***@example.com'}"]
    assert checks["unique_country"].metadata["failing_sample"].value == ["{'country': 'DE'}"]  # untagged: as it is
    materialization = next(e for e in result.get_asset_materialization_events()).materialization
    assert materialization.metadata["outcome"].value == "refused"
    shown = {
        "check metadata": repr([c.metadata for c in checks.values()]) + repr([c.description for c in checks.values()]),
        "materialization metadata": repr(materialization.metadata),
        "event log": "\n".join(repr(r) for r in records),
        "log lines": caplog.text + "".join(capfd.readouterr()),
    }
    assert "j***@example.com" in shown["event log"]  # the samples are in the run's log, masked
    for where, text in shown.items():
        for value in CLEAR:
            assert value not in text, f"{value!r} shown clear in the {where}"


def test_the_newest_value_of_a_freshness_check_on_a_tagged_column_is_masked():
    import datetime as dt

    from lakehouse.contracts.expectations import freshness

    seen = dt.datetime(2020, 5, 17, 8, 30, tzinfo=dt.UTC)
    columns = (Column(name="id", type="string", required=True), Column(name="seen_at", type="timestamptz"))
    for pii, shown in (("birth_date", "2***"), (None, seen.isoformat())):
        contract = TableContract(name="t", layer=Layer.gold, description="d", primary_key=("id",),
                                 columns=(columns[0], columns[1].model_copy(update={"pii": pii})), expectations=(freshness("seen_at", 1),))
        got = outcomes(contract, pa.Table.from_pylist([{"id": "a", "seen_at": seen}], schema=contract.arrow_schema))
        assert got["freshness_seen_at"].metadata["newest"] == shown
