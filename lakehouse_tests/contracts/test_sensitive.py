"""Sensitive columns: the pii tag and its validation, masking, keyed pseudonyms on write."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from lakehouse.contracts.model import Column, Layer, TableContract
from lakehouse.contracts.sensitive import mask, mask_fields, mask_row, mask_text, pseudonym_key, pseudonymise, pseudonymise_table
from lakehouse.contracts.tables import CUSTOMER_SUMMARY, CUSTOMERS, CUSTOMERS_RAW, ORDERS
from lakehouse.io.table_store import CommitStamp
from lakehouse.setting_names import SettingsError
from lakehouse_tests.conftest import make_store

KEY = b"k" * 32
OTHER_KEY = b"o" * 32

PEOPLE = TableContract(
    name="people",
    layer=Layer.silver,
    description="d",
    columns=(
        Column(name="person_id", type="string", required=True),
        Column(name="email", type="string", pii="email", pseudonymise=True),
        Column(name="name", type="string", pii="name"),
        Column(name="country", type="string"),
    ),
    primary_key=("person_id",),
)


def test_masking_is_partial_and_deterministic():
    assert mask("jane.doe@example.com", "email") == "j***@example.com"
    assert mask("jane.doe@example.com", "email") == mask("jane.doe@example.com", "email")
    assert mask("Jane van Doe", "name") == "J*** v*** D***"
    assert mask("+49 30 1234567", "phone") == "+***"
    assert mask("not-an-address", "email") == "n***"  # no @: nothing of it is a domain to keep
    assert mask(None, "email") is None
    assert mask(12345, "address") == "1***"


def test_rows_fields_and_free_text_are_masked_only_where_tagged():
    row = {"customer_id": "c-1", "name": "Jane Doe", "email": "jane@example.com", "country": "DE"}
    assert mask_row(CUSTOMERS, row) == {"customer_id": "c-1", "name": "J*** D***", "email": "j***@example.com", "country": "DE"}
    assert mask_fields(["c,1", "Doe, Jane", "jane@example.com", "DE", None], {1: "name", 2: "email"}) == \
        '"c,1",D*** J***,j***@example.com,DE,'  # CSV again: a field with a comma quoted
    text = mask_text('c-1,"Jane Doe,jane@example.com,DE')
    assert "Jane" not in text and "jane@" not in text and "j***@example.com" in text and text.startswith("c***")


def test_the_customer_columns_are_tagged_and_the_tag_shows_in_the_column_schema():
    for contract in (CUSTOMERS_RAW, CUSTOMERS, CUSTOMER_SUMMARY):
        tags = {c.name: c.tags for c in contract.column_schema.columns}
        assert tags["email"] == {"pii": "email"} and tags["name"] == {"pii": "name"}, contract.name
        assert not tags["customer_id"] and not tags["country"], contract.name
        assert not any(c.pseudonymise for c in contract.columns), contract.name  # their stored values stay as landed
    assert not any(c.tags for c in ORDERS.column_schema.columns)
    assert {c.name: c.tags for c in PEOPLE.column_schema.columns}["email"] == {"pii": "email", "pseudonymised": "true"}


@pytest.mark.parametrize("column, words", [
    (dict(name="e", type="string", pii="mail"), ["column 'e'", "unknown pii kind 'mail'", "email, name, phone"]),
    (dict(name="e", type="string", pseudonymise=True), ["column 'e'", "pseudonymise needs a pii kind"]),
    (dict(name="n", type="long", pii="phone", pseudonymise=True), ["column 'n'", "only a string column", "long"]),
])
def test_a_wrong_tag_is_refused_naming_the_column(column, words):
    with pytest.raises(ValidationError) as caught:
        Column(**column)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_a_pseudonymised_sequence_column_is_refused():
    with pytest.raises(ValidationError, match="sequence_by column 'v' cannot be pseudonymised"):
        TableContract(
            name="t", layer=Layer.silver, description="d", primary_key=("id",), sequence_by="v",
            columns=(Column(name="id", type="string", required=True), Column(name="v", type="string", pii="name", pseudonymise=True)),
        )


def test_pseudonyms_are_deterministic_per_key_and_differ_across_keys():
    values = pa.array(["jane@example.com", None, "joe@example.com", "jane@example.com"])
    first, again, other = pseudonymise(values, KEY), pseudonymise(values, KEY), pseudonymise(values, OTHER_KEY)
    assert first.equals(again)
    assert first[1].as_py() is None and first[0] == first[3] and first[0] != first[2]
    assert all(a != b for a, b in zip(first.to_pylist(), other.to_pylist()) if a is not None)
    assert not any("@" in v for v in first.to_pylist() if v is not None)


def test_a_missing_or_short_key_is_an_error_naming_the_variable_and_never_the_key():
    with pytest.raises(SettingsError, match="LAKEHOUSE_PSEUDONYM_KEY is not set.*openssl rand -hex 32"):
        pseudonym_key({})
    with pytest.raises(SettingsError) as caught:
        pseudonym_key({"LAKEHOUSE_PSEUDONYM_KEY": "tooshort"})
    assert "LAKEHOUSE_PSEUDONYM_KEY" in str(caught.value) and "tooshort" not in str(caught.value)
    assert pseudonym_key({"LAKEHOUSE_PSEUDONYM_KEY": "x" * 16}) == b"x" * 16


def _people() -> pa.Table:
    return pa.Table.from_pylist([
        {"person_id": "p-1", "email": "jane@example.com", "name": "Jane Doe", "country": "DE"},
        {"person_id": "p-2", "email": "joe@example.com", "name": "Joe Bloggs", "country": "NL"},
        {"person_id": "p-3", "email": "jane@example.com", "name": "Jane Doe", "country": "DE"},
    ])


def test_the_store_keeps_pseudonyms_of_a_pseudonymised_column_and_can_still_count_them(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_PSEUDONYM_KEY", KEY.decode())
    store = make_store(tmp_path / "lh")
    store.write(PEOPLE, _people(), CommitStamp("run-1", "silver/people"))
    stored = store.read(PEOPLE)
    assert stored["email"].to_pylist() == pseudonymise_table(PEOPLE, _people(), KEY)["email"].to_pylist()
    assert "jane@example.com" not in stored["email"].to_pylist()
    assert stored["name"].to_pylist() == ["Jane Doe", "Joe Bloggs", "Jane Doe"]  # tagged, not pseudonymised: kept
    assert len(set(stored["email"].to_pylist())) == 2  # distinct people still count
    # The same rows again: the same pseudonyms, so the merge finds nothing to change.
    again = store.write(PEOPLE, _people(), CommitStamp("run-2", "silver/people"))
    assert again.counts.get("inserted", 0) == 0 and again.counts.get("updated", 0) == 0, again.counts


def test_writing_a_pseudonymised_column_without_the_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_PSEUDONYM_KEY", raising=False)
    store = make_store(tmp_path / "lh")
    with pytest.raises(SettingsError, match="LAKEHOUSE_PSEUDONYM_KEY is not set"):
        store.write(PEOPLE, _people(), CommitStamp("run-1", "silver/people"))
    assert store.read(PEOPLE).num_rows == 0


@pytest.mark.slow
def test_the_spark_store_hashes_a_dataframe_in_spark_as_the_arrow_path_does(tmp_path, monkeypatch, spark):
    from lakehouse_tests.conftest import ICEBERG_JARS

    if not ICEBERG_JARS:
        pytest.skip("the Iceberg Spark runtime is not in .jars: fetch it with `mvn -q -B -f jars/pom.xml dependency:copy-dependencies`")
    from lakehouse.io.spark_frames import arrow_to_spark

    monkeypatch.setenv("LAKEHOUSE_PSEUDONYM_KEY", KEY.decode())
    store = make_store(tmp_path / "lh", "spark", spark)
    assert store.writes_spark_frames  # the DataFrame is written where it is, not collected to Arrow
    store.write(PEOPLE, arrow_to_spark(spark, _people(), PEOPLE.spark_schema), CommitStamp("run-1", "silver/people"))
    stored = store.read(PEOPLE).sort_by("person_id")
    assert stored["email"].to_pylist() == pseudonymise_table(PEOPLE, _people(), KEY)["email"].to_pylist()
