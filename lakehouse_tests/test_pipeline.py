"""End to end in process: every asset materialized over sample data equals an independent reference.

The module runs once per environment and table store: ``local`` (SQLite catalog, warehouse folder)
and ``aws`` (S3 buckets and the Glue Data Catalog, served over HTTP by moto on 127.0.0.1), each with
the default Arrow store and with ``LAKEHOUSE_STORE=spark`` (``local-spark``, ``aws-spark``: Silver
merges and Gold overwrites in Spark SQL on Iceberg's Spark runtime, the jars in ``.jars``). The assets
and tests are the same; only LAKEHOUSE_* variables differ.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from pyiceberg.table import StaticTable

from lakehouse.automation.refresh import refresh
from lakehouse.contracts import ALL_TABLES
from lakehouse.contracts import tables as t
from lakehouse.contracts.model import Layer
from lakehouse.environment import resources_for
from lakehouse.faults import FAULT_VARIABLE
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.spark_store import SparkTableStore
from lakehouse.io.table_store import TableStore
from lakehouse.remote.emulator import emulated_aws, provision
from lakehouse.settings import Settings, load_settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.aws.server import AWS_TEST_ENV, LAKEHOUSE_VARIABLES, REGION, AwsEnvironment, MotoAws, aws_test_env, moto_server
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.conftest import ICEBERG_JARS
from lakehouse_tests.reference import expected_state

ICEBERG_TABLES = [c for c in ALL_TABLES if c.layer is not Layer.bronze]
BRONZE_FILE = re.compile(r"^dt=\d{4}-\d{2}-\d{2}/[^/.][^/]*\.(jsonl|jsonl\.gz|csv)\.parquet$")


@pytest.fixture(autouse=True)
def _isolated_env():
    """This module's runs share one home, set by the ``lakehouse`` fixture, across its tests."""


@dataclass
class Lakehouse:
    mode: str  # local or aws
    settings: Settings
    store: TableStore
    landing: Path  # every landed file, locally: what the reference reads
    refresh: Callable[[], Materializations]
    aws: MotoAws | None = None
    env: AwsEnvironment | None = None

    def land(self, **sample) -> list[Path]:
        """Land sample files; in aws mode they are then uploaded to the S3 landing prefix."""
        new = land_sample(self.landing, **sample)
        self._deliver(new)
        return new

    def put(self, relative: str, text: str) -> None:
        path = self.landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self._deliver([path])

    def _deliver(self, files: list[Path]) -> None:
        if self.aws is not None:
            self.aws.upload(self.landing, files, self.settings.landing_root)

    def location(self, layer: Layer) -> str:
        return self.store.locations[layer].rstrip("/")

    def files(self, uri: str) -> list[str]:
        """Every object under a location, relative to it."""
        if self.aws is not None:
            return self.aws.keys(uri)
        root = Path(uri.removeprefix("file://"))
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def catalog_entries(self) -> dict[tuple[str, str], dict[str, str]]:
        """(namespace, table) -> what the catalog itself holds: the Glue table parameters, or the
        SQL catalog's row, read directly rather than through pyiceberg."""
        if self.aws is not None:
            glue = self.aws.client("glue")
            entries = {}
            for layer in Layer:
                database = self.settings.glue_database(layer.value)
                for table in glue.get_tables(DatabaseName=database)["TableList"]:
                    entries[(database, table["Name"])] = {**table.get("Parameters", {}), "TableType": table.get("TableType", "")}
            return entries
        with contextlib.closing(sqlite3.connect(self.settings.catalog_path)) as db:
            rows = db.execute("select table_namespace, table_name, metadata_location from iceberg_tables").fetchall()
        return {(ns, name): {"table_type": "ICEBERG", "metadata_location": loc} for ns, name, loc in rows}


@contextlib.contextmanager
def _jvm_aws_credentials(spark):
    """The dummy credentials, for the AWS SDK in the JVM too: the shared session's JVM started
    before aws_test_env set them in this process's environment, which it does not see; its SDK's
    default chain reads the aws.* system properties first."""
    system = spark.sparkContext._jvm.java.lang.System
    properties = {"aws.accessKeyId": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"], "aws.secretAccessKey": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"]}
    before = {key: system.getProperty(key) for key in properties}
    for key, value in properties.items():
        system.setProperty(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                system.clearProperty(key)
            else:
                system.setProperty(key, value)


@pytest.fixture(scope="module", params=["local", "aws", "local-spark", "aws-spark", pytest.param("aws-glue", marks=pytest.mark.slow),
                                                 pytest.param("aws-emr", marks=pytest.mark.slow)])
def lakehouse(request, tmp_path_factory, spark):
    mode, _, variant = request.param.partition("-")
    # aws-glue, aws-emr: Silver and Gold run as Glue / EMR Serverless job runs of the remote driver,
    # on the local emulation (lakehouse.remote.emulator), which runs each under spark-submit with
    # Iceberg's Spark runtime.
    compute = {"glue": "glue", "emr": "emr-serverless"}.get(variant, "local")
    store_kind = "spark" if variant == "spark" else "arrow"
    if (store_kind == "spark" or compute != "local") and not ICEBERG_JARS:
        pytest.skip("the Iceberg Spark runtime is not in .jars: fetch it with `mvn -q -B -f jars/pom.xml dependency:copy-dependencies`")
    home = tmp_path_factory.mktemp(f"pipeline-{request.param}")
    with contextlib.ExitStack() as stack:
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        for name in LAKEHOUSE_VARIABLES:
            mp.delenv(name, raising=False)
        # The reconstructed jobs read their settings from the environment, like a deployed code location.
        mp.setenv("LAKEHOUSE_HOME", str(home / "lakehouse"))
        mp.setenv("LAKEHOUSE_STORE", store_kind)
        aws = env = None
        if mode == "aws":
            aws_test_env(mp)
            if compute == "local":
                aws = stack.enter_context(moto_server())
            else:
                endpoint, _ = stack.enter_context(emulated_aws(region=REGION))
                aws = MotoAws(endpoint)
            env = aws.create_environment()
            for name, value in env.variables.items():
                mp.setenv(name, value)
            if compute != "local":
                # the driver, the Glue job and the EMR application, as terraform makes them
                for name, value in provision(load_settings(), aws.endpoint).items():
                    mp.setenv(name, value)
            mp.setenv("LAKEHOUSE_COMPUTE", compute)
            if store_kind == "spark":
                stack.enter_context(_jvm_aws_credentials(spark))
        settings = load_settings()
        assert (settings.env, settings.store, settings.compute) == (mode, store_kind, compute)
        store = resources_for(settings)["store"].get_store()
        assert isinstance(store, SparkTableStore) == (store_kind == "spark")
        instance = dg.DagsterInstance.ephemeral()

        def run_refresh() -> Materializations:
            outcome = refresh(settings, instance, trigger="test")
            assert outcome.success
            return Materializations(outcome.runs)

        # Locally the landing zone is a folder; on S3 files are landed here first, then uploaded.
        landing = home / "landing" if mode == "aws" else Path(settings.landing_root)
        yield Lakehouse(mode, settings, store, landing, run_refresh, aws, env)


class Materializations:
    """The materialization metadata of a refresh's runs, by asset key."""

    def __init__(self, runs):
        self.runs = runs
        self.by_key = {}
        for run in runs:
            for event in run.get_asset_materialization_events():
                self.by_key[event.asset_key.to_user_string()] = event.materialization.metadata

    def metadata(self, key: str) -> dict:
        return self.by_key[key]


def test_first_batch_matches_the_reference(lakehouse):
    store = lakehouse.store
    lakehouse.land(seed=11, days=3, orders_per_day=30)
    result = lakehouse.refresh()
    assert_matches(store, expected_state(lakehouse.landing))
    silver = result.metadata("silver/orders")
    # What a user sees on every Silver materialization, wherever it ran:
    shown = {"dagster/row_count", "dagster/column_schema", "dagster/uri", "table_uri", "snapshot_id", "rows_inserted", "rows_updated",
             "rows_deleted", "records_read", "records_rejected", "records_applied", "new_bronze_files", "published", "audit_branch"}
    assert shown <= set(silver), shown - set(silver)
    assert silver["dagster/column_schema"].value == t.ORDERS.column_schema
    # A remote run says what it cost and which job run it was.
    if lakehouse.settings.compute == "glue":
        assert silver["glue_dpu_seconds"].value > 0 and silver["AWS Glue Job Run ID"].value.startswith("jr_")
    elif lakehouse.settings.compute == "emr-serverless":
        assert silver["emr_billed_vCPUHour"].value > 0 and silver["AWS EMR Serverless Job Run ID"].value
    assert silver["dagster/row_count"].value == store.info(t.ORDERS).row_count
    assert silver["rows_inserted"].value == store.info(t.ORDERS).row_count  # first merge only inserts
    assert silver["snapshot_id"].value == str(store.info(t.ORDERS).snapshot_id)
    # The store chosen made the commits: Iceberg's Spark writes record their application id (a
    # remote job always writes with the Spark-native store).
    for contract in (t.ORDERS, t.CUSTOMERS, t.DAILY_SALES):
        summary = store.load_table(contract).current_snapshot().summary.additional_properties
        spark_wrote = isinstance(store, SparkTableStore) or lakehouse.settings.compute != "local"
        assert ("spark.app.id" in summary) == spark_wrote, (contract.qualified_name, summary)
    # The asset metadata shows where each table lives: s3:// in aws mode, file:// locally.
    for contract in ALL_TABLES:
        uri = result.metadata(contract.asset_key.to_user_string())["table_uri"].value
        assert uri.rstrip("/") == f"{lakehouse.location(contract.layer)}/{contract.name}"
        assert uri.startswith("s3://" if lakehouse.mode == "aws" else "file://")


def test_second_batch_with_late_files_matches_the_reference(lakehouse):
    store = lakehouse.store
    before = store.info(t.ORDERS).snapshot_id
    new = lakehouse.land(seed=11, days=5, orders_per_day=30)
    assert any("late" in p.name for p in new)
    result = lakehouse.refresh()
    assert_matches(store, expected_state(lakehouse.landing))
    assert store.info(t.ORDERS).snapshot_id != before
    counts = result.metadata("silver/orders")
    assert counts["rows_updated"].value > 0 and counts["rows_deleted"].value > 0


def test_rerun_without_new_data_changes_nothing(lakehouse):
    store = lakehouse.store
    silver = {c.name: store.info(c).snapshot_id for c in (t.ORDERS, t.CUSTOMERS, t.ORDERS_REJECTS, t.CUSTOMERS_REJECTS)}
    bronze_files = store.info(t.ORDERS_RAW).files
    result = lakehouse.refresh()
    assert {c.name: store.info(c).snapshot_id for c in (t.ORDERS, t.CUSTOMERS, t.ORDERS_REJECTS, t.CUSTOMERS_REJECTS)} == silver
    assert store.info(t.ORDERS_RAW).files == bronze_files
    assert result.runs == []  # nothing landed, Silver has applied all of Bronze, no Gold day changed
    assert_matches(store, expected_state(lakehouse.landing))


def test_storage_layout_and_catalog_entries(lakehouse):
    """Where the README (local) and docs/aws.md (aws) say: Bronze as dt= folders of Parquet files,
    Iceberg tables as metadata/ and data/ under their location, each registered in the catalog."""
    store, entries = lakehouse.store, lakehouse.catalog_entries()
    landed_days = {p.name for p in lakehouse.landing.glob("*/dt=*")}
    for source, contract in (("orders", t.ORDERS_RAW), ("customers", t.CUSTOMERS_RAW)):
        files = lakehouse.files(store.uri(contract))
        assert files and all(BRONZE_FILE.match(f) for f in files), files  # no temporary or marker objects
        assert {f.split("/")[0] for f in files} <= landed_days
        # exactly one Bronze file per landing file, named after it, in its landing day
        landed = {p.relative_to(lakehouse.landing / source).as_posix() + ".parquet" for p in (lakehouse.landing / source).glob("dt=*/*")}
        assert set(files) == landed
    for contract in ICEBERG_TABLES:
        table = store.load_table(contract)
        assert table.location().rstrip("/") == f"{lakehouse.location(contract.layer)}/{contract.name}"
        files = lakehouse.files(table.location())
        assert {f.split("/")[0] for f in files} == {"metadata", "data"}, contract.qualified_name
        entry = entries[store.identifier(contract)]
        assert entry["table_type"].upper() == "ICEBERG"
        assert entry["metadata_location"] == table.metadata_location
        assert entry["metadata_location"].removeprefix(table.location().rstrip("/") + "/") in files
        # Another reader needs nothing but the catalog entry to read the current snapshot.
        other = StaticTable.from_metadata(entry["metadata_location"], properties=dict(store.catalog.properties))
        assert other.scan().to_arrow().num_rows == store.info(contract).row_count
    if lakehouse.aws is not None:
        _assert_bronze_is_registered_in_glue(lakehouse, entries)


def _assert_bronze_is_registered_in_glue(lakehouse: Lakehouse, entries: dict) -> None:
    """What Athena needs: an external Parquet table per Bronze table, one partition per dt folder."""
    store, glue = lakehouse.store, lakehouse.aws.client("glue")
    for contract in (t.ORDERS_RAW, t.CUSTOMERS_RAW):
        database, name = store.identifier(contract)
        assert entries[(database, name)]["TableType"] == "EXTERNAL_TABLE"
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        sd = table["StorageDescriptor"]
        assert sd["Location"] == store.uri(contract) + "/"
        assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
        assert [c["Name"] for c in sd["Columns"]] == [c for c in contract.column_names if c != "dt"]
        partitions = glue.get_partitions(DatabaseName=database, TableName=name)["Partitions"]
        folders = {f.split("/")[0] for f in lakehouse.files(store.uri(contract))}
        assert {f"dt={p['Values'][0]}" for p in partitions} == folders
        assert {p["StorageDescriptor"]["Location"] for p in partitions} == {f"{store.uri(contract)}/{f}/" for f in folders}
        # Read as a Hive-partitioned engine would: the files under the partition locations Glue lists.
        locations = [p["StorageDescriptor"]["Location"] for p in partitions]
        paths = [f"{loc.removeprefix('s3://')}{key}" for loc in locations for key in lakehouse.aws.keys(loc)]
        fs = pafs.S3FileSystem(endpoint_override=lakehouse.aws.endpoint.removeprefix("http://"), scheme="http", region=lakehouse.env.region)
        assert ds.dataset(paths, filesystem=fs, format="parquet").count_rows() == store.read(contract).num_rows > 0


def test_lakehouse_tables_lists_each_tables_location(lakehouse, capsys):
    from lakehouse.cli import main

    assert main(["tables"]) == 0
    out = capsys.readouterr().out
    for contract in ALL_TABLES:
        row = next(line for line in out.splitlines() if line.startswith(contract.asset_key.to_user_string() + " "))
        location, catalog = row.split()[-2:]
        assert location == lakehouse.store.info(contract).uri, row
        database, name = lakehouse.store.identifier(contract)
        assert catalog in (f"{database}.{name}", f"glue://{database}/{name}"), row


def test_one_changed_order_rebuilds_only_its_gold_day(lakehouse):
    store = lakehouse.store
    order = max(store.read(t.ORDERS).to_pylist(), key=lambda r: r["lsn"])
    day = order["created_at"].date()
    gold = store.load_table(t.DAILY_SALES)
    files_before = {f.file.file_path for f in gold.scan().plan_files()}
    event = {
        "lsn": order["lsn"] + 1, "op": "u", "order_id": order["order_id"], "customer_id": order["customer_id"],
        "status": "cancelled", "amount": str(order["amount"]), "currency": order["currency"],
        "created_at": order["created_at"].isoformat(), "updated_at": "2026-01-06T09:00:00+00:00",
    }
    lakehouse.put("orders/dt=2026-01-06/one-update.jsonl", json.dumps(event) + "\n")
    result = lakehouse.refresh()
    assert [r.dagster_run.tags.get("dagster/asset_partition_range_start") for r in result.runs if r.dagster_run.job_name == "publish"] == [day.isoformat()]
    files_after = {f.file.file_path for f in store.load_table(t.DAILY_SALES).scan().plan_files()}
    untouched = {f for f in files_before if f"report_date={day.isoformat()}" not in f}
    assert untouched and untouched <= files_after  # every other day keeps its data files
    assert_matches(store, expected_state(lakehouse.landing))


def test_silver_crash_between_write_and_commit_loses_and_duplicates_nothing(lakehouse, monkeypatch):
    from pyiceberg.table import Transaction

    store = lakehouse.store
    lakehouse.land(seed=11, days=6, orders_per_day=30)
    before = store.info(t.ORDERS).snapshot_id
    applied_before = store.info(t.ORDERS).properties.get("lakehouse.applied.bronze.orders_raw")
    original = Transaction.commit_transaction
    orders = store.identifier(t.ORDERS)

    def crash_silver_orders(self):
        if self._table.name() == orders:
            raise RuntimeError("killed before the commit")
        return original(self)

    if lakehouse.settings.compute != "local":
        # The remote job writes: it is killed (SIGKILL, as a lost executor host would) with its
        # audited snapshot on the branch and main not moved.
        monkeypatch.setenv(FAULT_VARIABLE, "kill:silver.before_publish@silver/orders")
    elif isinstance(store, SparkTableStore):
        # Spark commits the merged data to the write's branch; what makes it count is the publish
        # that moves main and the watermark (one catalog commit): the process is killed there.
        import lakehouse.io.audited_tables as audited_tables

        publish = audited_tables.fast_forward

        def crash_silver_orders_publish(table, *args, **kwargs):
            if table.name() == orders:
                raise RuntimeError("killed before the commit")
            return publish(table, *args, **kwargs)

        monkeypatch.setattr(audited_tables, "fast_forward", crash_silver_orders_publish)
    else:
        monkeypatch.setattr(Transaction, "commit_transaction", crash_silver_orders)
    outcome = refresh(lakehouse.settings, dg.DagsterInstance.ephemeral(), trigger="test")
    assert not outcome.success
    monkeypatch.undo()
    # Bronze took the new files; Silver neither moved nor advanced its watermark (a table the write
    # created holds only the empty first snapshot its audit branch starts from).
    after = store.info(t.ORDERS)
    assert after.snapshot_id == before or (before is None and after.row_count == 0), after
    assert store.info(t.ORDERS).properties.get("lakehouse.applied.bronze.orders_raw") == applied_before
    lakehouse.refresh()
    assert_matches(store, expected_state(lakehouse.landing))


def test_landing_day_before_the_partitions_is_refused_naming_day_and_setting(tmp_path, monkeypatch):
    from lakehouse.automation.partitions import PartitionRangeError

    for name in LAKEHOUSE_VARIABLES:  # a local lakehouse, whichever mode the module is running
        monkeypatch.delenv(name, raising=False)
    settings = Settings(home=tmp_path / "lh", partitions_start="2026-01-02")
    land_sample(settings.home / "landing", seed=1, days=1, orders_per_day=5, start=dt.date(2026, 1, 1))
    with pytest.raises(PartitionRangeError, match=r"landing day 2026-01-01 is before the first daily partition, 2026-01-02 \(LAKEHOUSE_PARTITIONS_START"):
        refresh(settings, dg.DagsterInstance.ephemeral())


@pytest.mark.parametrize("store_kind", ["arrow", "spark"])
def test_the_store_setting_picks_the_store_and_the_spark_session_s_settings(tmp_path, monkeypatch, store_kind):
    """No JVM: what resources_for gives for LAKEHOUSE_STORE. With spark, the store opens pyiceberg's
    catalog in Spark under the same name, and the spark resource (whose session the store writes
    in) starts with Iceberg's runtime jars, its SQL extensions and that catalog; with arrow, the
    local Spark settings as before and no jars."""
    from lakehouse.resources.iceberg_spark import EXTENSIONS, jar_paths
    from lakehouse.resources.spark import LOCAL_SPARK_CONFIG

    if store_kind == "spark" and not ICEBERG_JARS:
        pytest.skip("the Iceberg Spark runtime is not in .jars")
    for name in LAKEHOUSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAKEHOUSE_STORE", store_kind)
    settings = Settings(home=tmp_path / "lh")
    resources = resources_for(settings)
    store, spark = resources["store"], resources["spark"]
    assert store.store_kind == store_kind
    if store_kind == "arrow":
        assert spark.spark_config == LOCAL_SPARK_CONFIG and not store.spark_catalog
        assert type(store.get_store()) is ArrowTableStore
        return
    config = spark.spark_config
    assert config == store.spark_config  # a session the store starts itself is started the same way
    assert config["spark.jars"].split(",") == [str(p) for p in jar_paths(settings.spark_jars)]
    assert config["spark.sql.extensions"] == EXTENSIONS
    assert config["spark.sql.catalog.lakehouse"] == "org.apache.iceberg.spark.SparkCatalog"
    assert LOCAL_SPARK_CONFIG.items() <= config.items()
    assert {f"spark.sql.catalog.lakehouse.{k}": v for k, v in store.spark_catalog.items()}.items() <= config.items()
    assert store.spark_catalog["uri"] == f"jdbc:sqlite:{settings.catalog_path}?busy_timeout=15000"
    built = store.get_store()
    assert isinstance(built, SparkTableStore) and built.spark_catalog_name == "lakehouse"
    assert built.spark_catalog == store.spark_catalog
