"""Contracts are the single source of the Iceberg schema, Spark schema and Dagster column schema."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from pydantic import ValidationError
from pyiceberg import types as it

from lakehouse.contracts import ALL_TABLES, Column, ContractViolation, Layer, TableContract, WriteMode
from lakehouse.contracts.tables import DAILY_SALES, ORDERS


def test_iceberg_schema_follows_the_contract():
    schema = ORDERS.iceberg_schema
    assert [f.name for f in schema.fields] == ORDERS.column_names
    assert schema.find_field("amount").field_type == it.DecimalType(18, 2)
    assert schema.find_field("created_at").field_type == it.TimestamptzType()
    assert schema.find_field("order_id").required and schema.find_field("customer_id").required
    assert schema.find_field("_batch_id").field_type == it.StringType()
    assert schema.identifier_field_names() == {"order_id"}


def test_spark_schema_follows_the_contract():
    from pyspark.sql import types as st

    fields = {f.name: f for f in ORDERS.spark_schema.fields}
    assert fields["amount"].dataType == st.DecimalType(18, 2)
    assert fields["lsn"].dataType == st.LongType()
    assert fields["created_at"].dataType == st.TimestampType()
    assert not fields["order_id"].nullable


def test_column_schema_metadata_follows_the_contract():
    columns = {c.name: c for c in DAILY_SALES.column_schema.columns}
    assert list(columns) == DAILY_SALES.column_names
    assert columns["total_revenue"].type == "decimal(18,2)"
    assert columns["report_date"].constraints.nullable is False


def test_partition_spec_uses_declared_columns():
    spec = DAILY_SALES.partition_spec()
    assert [f.name for f in spec.fields] == ["report_date"]


def test_write_mode_follows_the_layer():
    modes = {c.layer: c.mode for c in ALL_TABLES}
    assert modes == {Layer.bronze: WriteMode.append, Layer.silver: WriteMode.merge, Layer.gold: WriteMode.overwrite}


def _contract(**overrides) -> TableContract:
    base = dict(
        name="t",
        layer=Layer.silver,
        description="d",
        columns=(Column(name="id", type="string", required=True), Column(name="v", type="long")),
        primary_key=("id",),
    )
    return TableContract(**{**base, **overrides})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"primary_key": ()}, "exactly one primary-key column"),
        ({"primary_key": ("nope",)}, "'nope' is referenced but not declared"),
        ({"columns": (Column(name="id", type="double", required=True),)}, "float type"),
        ({"columns": (Column(name="id", type="string"),)}, "must be required"),
        ({"delete_flag": "_d"}, "needs a sequence_by"),
    ],
)
def test_inconsistent_contracts_are_refused_with_the_table_named(overrides, message):
    with pytest.raises(ValidationError) as err:
        _contract(**overrides)
    assert message in str(err.value) and "silver/t" in str(err.value)


def test_unknown_column_type_is_refused():
    with pytest.raises(ValidationError, match="unknown column type 'varchar'"):
        Column(name="x", type="varchar")


def test_conform_casts_and_orders_columns():
    data = pa.table({"v": pa.array([1], pa.int32()), "id": ["a"], "extra": [1]})
    out = _contract().conform(data)
    assert out.column_names == ["id", "v"] and out.schema.field("v").type == pa.int64()


@pytest.mark.parametrize(
    "data, message",
    [
        (pa.table({"id": ["a"]}), "silver/t: output is missing column(s) v"),
        (pa.table({"id": ["a"], "v": ["not a number"]}), "silver/t: column 'v' has type string, contract says long"),
        (pa.table({"id": ["a", None], "v": [1, 2]}), "silver/t: required column 'id' has 1 null value(s)"),
    ],
)
def test_conform_names_table_column_and_problem(data, message):
    with pytest.raises(ContractViolation) as err:
        _contract().conform(data)
    assert message in str(err.value)


def test_conform_lets_delete_events_omit_non_key_columns():
    rows = [
        dict(order_id="a", customer_id=None, status=None, amount=None, currency=None, created_at=None, updated_at=None,
             lsn=5, _source_file="f", _ingested_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), _batch_id="b", _is_delete=True),
    ]
    assert ORDERS.conform(pa.Table.from_pylist(rows)).num_rows == 1
    rows[0]["_is_delete"] = False
    with pytest.raises(ContractViolation, match="required column 'customer_id'"):
        ORDERS.conform(pa.Table.from_pylist(rows))
