"""A DataFrame handed to the Spark store meets the contract as an Arrow table does (conform_frame)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import types as T

from lakehouse.contracts.model import ContractViolation
from lakehouse.contracts.tables import DAILY_SALES
from lakehouse.io.spark_frames import conform_frame, frame_rows_outside

D1 = dt.date(2026, 1, 1)


def _sales(spark, rows, **types):
    """daily_sales rows as a DataFrame whose columns have the contract's Spark types, except ``types``."""
    fields = [T.StructField(c.name, types.get(c.name, c.spark_type()), True) for c in DAILY_SALES.columns]
    return spark.createDataFrame(rows, T.StructType(fields))


def _row(**changes):
    row = {c.name: None for c in DAILY_SALES.columns}
    row.update({"report_date": D1, "currency": "EUR", "total_orders": 3, "total_revenue": Decimal("12.50"), "unique_customers": 2, **changes})
    return tuple(row[c.name] for c in DAILY_SALES.columns)


def test_a_frame_of_the_contracts_types_passes_unchanged(spark):
    frame = conform_frame(DAILY_SALES, _sales(spark, [_row()]))
    assert frame.columns == DAILY_SALES.column_names
    assert [f.dataType for f in frame.schema.fields] == [c.spark_type() for c in DAILY_SALES.columns]
    assert frame.first()["total_revenue"] == Decimal("12.50")


def test_a_narrower_integer_is_widened_without_change(spark):
    frame = conform_frame(DAILY_SALES, _sales(spark, [_row(total_orders=7)], total_orders=T.IntegerType()))
    assert frame.schema["total_orders"].dataType == DAILY_SALES.column("total_orders").spark_type()
    assert frame.first()["total_orders"] == 7


def test_a_type_spark_would_cast_to_null_is_refused(spark):
    frame = _sales(spark, [_row(total_orders="three")], total_orders=T.StringType())
    with pytest.raises(ContractViolation, match="gold/daily_sales: column 'total_orders' has type string, contract says"):
        conform_frame(DAILY_SALES, frame)


def test_a_missing_column_and_a_null_required_value_are_named(spark):
    with pytest.raises(ContractViolation, match="gold/daily_sales: output is missing column\\(s\\) total_revenue"):
        conform_frame(DAILY_SALES, _sales(spark, [_row()]).drop("total_revenue"))
    with pytest.raises(ContractViolation, match="gold/daily_sales: required column 'report_date' has 1 null value\\(s\\)"):
        conform_frame(DAILY_SALES, _sales(spark, [_row(), _row(report_date=None)]))


def test_rows_outside_a_partition_are_counted_nulls_included(spark):
    frame = _sales(spark, [_row(), _row(report_date=D1 + dt.timedelta(days=1)), _row(report_date=None)])
    assert frame_rows_outside(frame)("report_date", [D1]) == 2
