"""Bronze on S3 registered in Glue as an external Parquet table with one partition per landing day."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse.contracts import tables as t
from lakehouse.environment import resources_for
from lakehouse.io.glue import catalog_metadata, hive_type
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import load_settings


def _batch(day: dt.date, files: list[str]) -> pa.Table:
    rows = [{"_raw": "{}", "_line_number": i + 1, "_source_file": f, "_ingested_at": dt.datetime(2026, 1, 9, tzinfo=dt.UTC), "_batch_id": "b", "dt": day} for i, f in enumerate(files)]
    return pa.Table.from_pylist(rows, schema=t.ORDERS_RAW.arrow_schema)


@pytest.fixture
def store(aws_env):
    return resources_for(load_settings())["store"].get_store()


def _partitions(glue, store) -> dict[str, str]:
    database, name = store.identifier(t.ORDERS_RAW)
    return {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in glue.get_partitions(DatabaseName=database, TableName=name)["Partitions"]}


def test_append_registers_the_table_and_each_new_day_once(store, moto):
    glue = moto.client("glue")
    day1, day2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    store.write(t.ORDERS_RAW, _batch(day1, ["orders/dt=2026-01-01/a.jsonl"]), CommitStamp("run-0001", "bronze/orders_raw"))
    database, name = store.identifier(t.ORDERS_RAW)
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    assert table["TableType"] == "EXTERNAL_TABLE" and table["Parameters"]["classification"] == "parquet"
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns == {"_raw": "string", "_line_number": "bigint", "_parse_error": "string", "_source_file": "string", "_ingested_at": "timestamp", "_batch_id": "string"}
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "date", "Comment": "Day the landing file arrived"}]
    assert _partitions(glue, store) == {"2026-01-01": f"{store.uri(t.ORDERS_RAW)}/dt=2026-01-01/"}
    # The same day again (a second batch) and a new day: one more partition, no error, no duplicate.
    store.write(t.ORDERS_RAW, _batch(day1, ["orders/dt=2026-01-01/b.jsonl"]), CommitStamp("run-0002", "bronze/orders_raw"))
    store.write(
        t.ORDERS_RAW,
        pa.concat_tables([_batch(day1, ["orders/dt=2026-01-01/c.jsonl"]), _batch(day2, ["orders/dt=2026-01-02/d.jsonl"])]),
        CommitStamp("run-0003", "bronze/orders_raw"),
    )
    assert set(_partitions(glue, store)) == {"2026-01-01", "2026-01-02"}
    assert store.read(t.ORDERS_RAW).num_rows == 4
    assert store.ingested_sources(t.ORDERS_RAW, days={day1}) == {f"dt=2026-01-01/{n}.jsonl" for n in "abc"}


def test_an_empty_batch_registers_and_writes_nothing(store, moto):
    store.write(t.ORDERS_RAW, t.ORDERS_RAW.arrow_schema.empty_table(), CommitStamp("run-0001", "bronze/orders_raw"))
    database, name = store.identifier(t.ORDERS_RAW)
    assert name not in {x["Name"] for x in moto.client("glue").get_tables(DatabaseName=database)["TableList"]}
    assert store.bronze_files(t.ORDERS_RAW) == []


def test_a_registration_that_no_longer_matches_the_contract_is_corrected(store, moto):
    glue = moto.client("glue")
    database, name = store.identifier(t.ORDERS_RAW)
    glue.create_table(  # e.g. created by hand, or by an older contract
        DatabaseName=database,
        TableInput={"Name": name, "TableType": "EXTERNAL_TABLE", "StorageDescriptor": {"Columns": [{"Name": "_raw", "Type": "string"}], "Location": "s3://elsewhere/"}},
    )
    store.write(t.ORDERS_RAW, _batch(dt.date(2026, 1, 1), ["orders/dt=2026-01-01/a.jsonl"]), CommitStamp("run-0001", "bronze/orders_raw"))
    table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    assert table["StorageDescriptor"]["Location"] == store.uri(t.ORDERS_RAW) + "/"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["_raw", "_line_number", "_parse_error", "_source_file", "_ingested_at", "_batch_id"]


def test_hive_types_follow_the_contract_types():
    assert [hive_type(x) for x in ("string", "long", "int", "double", "boolean", "date", "timestamptz", "decimal(18, 2)")] == [
        "string", "bigint", "int", "double", "boolean", "date", "timestamp", "decimal(18,2)",
    ]


def test_catalog_metadata_names_the_glue_table(store, aws_env):
    info = catalog_metadata(store, t.ORDERS)
    assert info["catalog_table"] == f"{aws_env.database('silver')}.orders"
    assert info["glue_table"] == f"glue://{aws_env.database('silver')}/orders"
    assert info["glue_console_url"].startswith("https://eu-west-1.console.aws.amazon.com/glue/home?region=eu-west-1#")
