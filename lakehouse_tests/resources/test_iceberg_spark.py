"""Spark on Iceberg's own runtime (1.10.0, as AWS Glue 5.1 runs it) and pyiceberg on one catalog.

The Spark configuration comes from ``iceberg_spark_config`` and the store's catalog properties
exactly as the environment builds them: the embedded SQLite catalog (Iceberg's JdbcCatalog in
Spark) and, against moto on 127.0.0.1, the Glue Data Catalog with S3. Each side reads and changes
what the other wrote.

Spark runs in a child process of its own, one per catalog kind and module: ``spark.jars`` only
takes effect when a JVM starts, and this test process may already run a JVM started without them
(the shared ``spark`` fixture); a child also starts fresh as a pipeline step's process would.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog, load_catalog

from lakehouse.resources.iceberg_spark import FETCH_COMMAND, ICEBERG_JARS, S3_FILESYSTEM_JARS, iceberg_spark_config, jar_paths, missing_jars
from lakehouse.settings import Settings, SettingsError, default_spark_jars, load_settings

PROJECT = Path(__file__).resolve().parents[2]
JARS = Path(os.environ.get("LAKEHOUSE_SPARK_JARS") or default_spark_jars()).expanduser().absolute()
_needs_jars = pytest.mark.skipif(
    bool(missing_jars(JARS)),
    reason=f"the Iceberg Spark jars are not in {JARS} (LAKEHOUSE_SPARK_JARS): fetch them with `{FETCH_COMMAND}` (CI always does)",
)


def needs_spark(test):
    """A test on a shared Spark process with the jars: skipped without them, and slow (starting the
    JVM and Iceberg's first catalog access, read and merge take 30-40 s per catalog kind here)."""
    return pytest.mark.slow(_needs_jars(test))
UTC = dt.UTC


# ---- Spark in a child process ----------------------------------------------------------------
class SparkError(RuntimeError):
    """A statement failed in the Spark process (the message is Spark's)."""


def _serve(conn, config: dict[str, str]) -> None:
    """The child: start a session with ``config``, then run each SQL statement received and send
    back its rows (as tuples) and column types, until told to stop (None)."""
    from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, ensure_java, logging_config

    ensure_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in logging_config({**LOCAL_SPARK_CONFIG, "spark.master": "local[2]", **config}).items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("error", f"Spark did not start: {exc}"))
        return
    conn.send(("ok", None))
    while (statement := conn.recv()) is not None:
        try:
            frame = spark.sql(statement)
            rows = [tuple(row) for row in frame.collect()]
            conn.send(("ok", (rows, [field.dataType.simpleString() for field in frame.schema])))
        except Exception as exc:
            # Py4J errors carry the whole Java stack: the exception lines say what went wrong.
            lines = [line for line in str(exc).splitlines() if "Exception" in line or "Error" in line]
            conn.send(("error", "\n".join(lines[:6]) or str(exc)))
    spark.stop()


class SparkProcess:
    """A Spark session in a child process (spawned: a fresh interpreter and JVM), driven by SQL."""

    def __init__(self, config: dict[str, str], timeout: float = 300) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, config), daemon=True, name="iceberg-spark")
        started = time.monotonic()
        self._process.start()
        child.close()
        self._reply(timeout)
        self.start_seconds = time.monotonic() - started

    def sql(self, statement: str, timeout: float = 300) -> list[tuple]:
        return self.query(statement, timeout)[0]

    def query(self, statement: str, timeout: float = 300) -> tuple[list[tuple], list[str]]:
        """Rows and column types of ``statement``."""
        self._conn.send(statement)
        return self._reply(timeout)

    def _reply(self, timeout: float):
        if not self._conn.poll(timeout):
            raise TimeoutError(f"no answer from the Spark process within {timeout} s")
        status, value = self._conn.recv()
        if status == "error":
            raise SparkError(value)
        return value

    def close(self) -> None:
        try:
            self._conn.send(None)
        except OSError:
            pass
        self._process.join(60)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)


# ---- the two catalogs --------------------------------------------------------------------------
@dataclass
class Lake:
    catalog: Catalog  # pyiceberg's, as the Arrow store opens it
    spark: SparkProcess
    properties: dict[str, str]
    locations: dict[str, str]  # layer -> root URI
    namespaces: dict[str, str]  # layer -> namespace (Glue database)
    catalog_db: Path | None = None  # local: the SQLite file
    moto: object = None  # aws: the moto server

    def location(self, layer: str, table: str) -> str:
        return f"{self.locations[layer]}/{table}"


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from lakehouse.environment import local_store

    home = tmp_path_factory.mktemp("iceberg-spark-local")
    store = local_store(Settings(home=home))
    # pyiceberg first: opening its SQL catalog creates the catalog tables Spark's JdbcCatalog expects.
    catalog = load_catalog(store.catalog_name, **store.catalog_properties)
    for namespace in store.namespaces.values():  # as the Arrow store does on first write
        catalog.create_namespace_if_not_exists(namespace)
    spark = SparkProcess(iceberg_spark_config(store.catalog_name, store.catalog_properties, jar_paths(JARS)))
    try:
        yield Lake(catalog, spark, store.catalog_properties, store.locations, store.namespaces, catalog_db=home / "catalog.db")
    finally:
        spark.close()


@pytest.fixture(scope="module")
def aws():
    from lakehouse.environment import aws_store
    from lakehouse_tests.aws.server import REGION, aws_test_env, moto_server

    with pytest.MonkeyPatch.context() as mp:
        aws_test_env(mp)  # dummy credentials in the environment: the child's AWS SDK finds them there
        with moto_server() as moto:
            env = moto.create_environment()
            settings = Settings(env="aws", aws_region=REGION, landing=env.landing, aws_endpoint_url=moto.endpoint, environment_name=env.name)
            store = aws_store(settings)
            catalog = load_catalog(store.catalog_name, **store.catalog_properties)
            spark = SparkProcess(iceberg_spark_config(store.catalog_name, store.catalog_properties, jar_paths(JARS)))
            try:
                yield Lake(catalog, spark, store.catalog_properties, store.locations, store.namespaces, moto=moto)
            finally:
                spark.close()


ORDERS = pa.schema(
    [
        pa.field("order_id", pa.string(), nullable=False),
        ("amount", pa.int64()),
        ("updated_at", pa.timestamp("us")),  # Iceberg timestamp: Spark's TIMESTAMP_NTZ
        ("placed_at", pa.timestamp("us", tz="UTC")),  # Iceberg timestamptz: Spark's TIMESTAMP
    ]
)
MERGE = """
MERGE INTO {table} t
USING (SELECT 'a' AS order_id, 10L AS amount, TIMESTAMP_NTZ'2024-01-02 08:00:00' AS updated_at, TIMESTAMP'2024-01-02 09:00:00' AS placed_at
       UNION ALL
       SELECT 'c', 3L, TIMESTAMP_NTZ'2024-01-03 08:00:00', TIMESTAMP'2024-01-03 09:00:00') s
ON t.order_id = s.order_id
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *
"""


def _orders(*rows) -> pa.Table:
    return pa.Table.from_pylist(
        [{"order_id": o, "amount": a, "updated_at": dt.datetime(*u), "placed_at": dt.datetime(*p, tzinfo=UTC)} for o, a, u, p in rows], schema=ORDERS
    )


def _read_back(catalog: Catalog, identifier) -> list[tuple]:
    rows = catalog.load_table(identifier).scan().to_arrow().sort_by("order_id").to_pylist()
    return [(r["order_id"], r["amount"], r["updated_at"], r["placed_at"]) for r in rows]


def _pyiceberg_writes_spark_reads_and_merges(lake: Lake, table: str) -> None:
    namespace = lake.namespaces["silver"]
    identifier = (namespace, table)
    created = lake.catalog.create_table(identifier, schema=ORDERS, location=lake.location("silver", table))
    created.append(_orders(("a", 1, (2024, 1, 1, 8), (2024, 1, 1, 9)), ("b", 2, (2024, 1, 1, 8), (2024, 1, 1, 9))))
    name = f"lakehouse.{namespace}.{table}"

    rows, types = lake.spark.query(f"SELECT order_id, amount, updated_at, placed_at, CAST(placed_at AS STRING) FROM {name} ORDER BY order_id")
    assert types == ["string", "bigint", "timestamp_ntz", "timestamp", "string"]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("a", 1, dt.datetime(2024, 1, 1, 8), "2024-01-01 09:00:00"),  # timestamptz in the session's UTC
        ("b", 2, dt.datetime(2024, 1, 1, 8), "2024-01-01 09:00:00"),
    ]

    lake.spark.sql(MERGE.format(table=name))
    assert _read_back(lake.catalog, identifier) == [
        ("a", 10, dt.datetime(2024, 1, 2, 8), dt.datetime(2024, 1, 2, 9, tzinfo=UTC)),
        ("b", 2, dt.datetime(2024, 1, 1, 8), dt.datetime(2024, 1, 1, 9, tzinfo=UTC)),
        ("c", 3, dt.datetime(2024, 1, 3, 8), dt.datetime(2024, 1, 3, 9, tzinfo=UTC)),
    ]
    summary = lake.catalog.load_table(identifier).current_snapshot().summary
    # Copy-on-write, Iceberg's default for MERGE: rewritten data files and no delete files, which
    # every reader (pyiceberg, DuckDB, Athena) reads as plain Parquet.
    assert summary.operation.value == "overwrite"
    assert summary["total-delete-files"] == "0"


def _spark_creates_pyiceberg_reads(lake: Lake, table: str) -> None:
    namespace = lake.namespaces["gold"]
    name = f"lakehouse.{namespace}.{table}"
    lake.spark.sql(f"CREATE TABLE {name} (k STRING NOT NULL, n BIGINT) USING iceberg LOCATION '{lake.location('gold', table)}'")
    lake.spark.sql(f"INSERT INTO {name} VALUES ('x', 1), ('y', 2)")
    assert (namespace, table) in lake.catalog.list_tables(namespace)
    loaded = lake.catalog.load_table((namespace, table))
    # Spark qualifies a LOCATION as a Hadoop path, which writes file:///x as file:/x (s3:// stays).
    assert loaded.location() in {lake.location("gold", table), lake.location("gold", table).replace("file:///", "file:/")}
    assert loaded.format_version == 2
    assert sorted(loaded.scan().to_arrow().to_pylist(), key=lambda r: r["k"]) == [{"k": "x", "n": 1}, {"k": "y", "n": 2}]


# ---- local: pyiceberg's SQL catalog and Iceberg's JdbcCatalog on one SQLite file ----------------
@needs_spark
def test_local_spark_reads_and_merges_a_table_pyiceberg_wrote(local):
    _pyiceberg_writes_spark_reads_and_merges(local, "orders")


@needs_spark
def test_local_pyiceberg_reads_a_table_spark_created(local):
    _spark_creates_pyiceberg_reads(local, "daily")


@needs_spark
def test_local_spark_sees_a_pyiceberg_commit_at_once(local):
    """The Spark catalog caches no tables (cache-enabled=false): another writer's commit is read at once."""
    identifier = (local.namespaces["silver"], "fresh")
    table = local.catalog.create_table(identifier, schema=ORDERS, location=local.location("silver", "fresh"))
    table.append(_orders(("a", 1, (2024, 1, 1), (2024, 1, 1))))
    name = f"lakehouse.{identifier[0]}.{identifier[1]}"
    assert local.spark.sql(f"SELECT count(*) FROM {name}") == [(1,)]
    table.append(_orders(("b", 2, (2024, 1, 1), (2024, 1, 1))))
    assert local.spark.sql(f"SELECT count(*) FROM {name}") == [(2,)]


@needs_spark
def test_local_catalogs_agree_on_namespaces_and_tables_both_ways(local):
    # Spark -> pyiceberg
    local.spark.sql("CREATE NAMESPACE lakehouse.from_spark")
    local.spark.sql("CREATE TABLE lakehouse.from_spark.t (k STRING, n BIGINT) USING iceberg")
    local.spark.sql("INSERT INTO lakehouse.from_spark.t VALUES ('s', 1)")
    assert ("from_spark",) in local.catalog.list_namespaces()
    assert local.catalog.list_tables("from_spark") == [("from_spark", "t")]
    assert local.catalog.load_table("from_spark.t").scan().to_arrow().to_pylist() == [{"k": "s", "n": 1}]

    # pyiceberg -> Spark
    local.catalog.create_namespace("from_pyiceberg")
    table = local.catalog.create_table("from_pyiceberg.t", schema=pa.schema([("k", pa.string()), ("n", pa.int64())]))
    table.append(pa.table({"k": ["p"], "n": [2]}))
    assert {"from_spark", "from_pyiceberg"} <= {row[0] for row in local.spark.sql("SHOW NAMESPACES IN lakehouse")}
    assert [(row[0], row[1]) for row in local.spark.sql("SHOW TABLES IN lakehouse.from_pyiceberg")] == [("from_pyiceberg", "t")]
    assert local.spark.sql("SELECT k, n FROM lakehouse.from_pyiceberg.t") == [("p", 2)]

    # One schema, the same rows: catalog name, namespace, type TABLE, namespace properties.
    with sqlite3.connect(local.catalog_db) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(iceberg_tables)")]
        tables = db.execute(
            "SELECT catalog_name, table_namespace, table_name, iceberg_type, metadata_location IS NOT NULL FROM iceberg_tables "
            "WHERE table_namespace IN ('from_spark', 'from_pyiceberg') ORDER BY table_namespace"
        ).fetchall()
        namespaces = db.execute(
            "SELECT catalog_name, namespace, property_key, property_value FROM iceberg_namespace_properties "
            "WHERE namespace IN ('from_spark', 'from_pyiceberg') ORDER BY namespace, property_key"
        ).fetchall()
    assert columns == ["catalog_name", "table_namespace", "table_name", "metadata_location", "previous_metadata_location", "iceberg_type"]
    assert tables == [("lakehouse", "from_pyiceberg", "t", "TABLE", 1), ("lakehouse", "from_spark", "t", "TABLE", 1)]
    assert ("lakehouse", "from_pyiceberg", "exists", "true") in namespaces
    assert ("lakehouse", "from_spark", "exists", "true") in namespaces


@needs_spark
def test_local_spark_holds_no_lock_on_the_catalog(local):
    """Between statements the Spark process holds no SQLite lock, so other processes commit: Iceberg
    1.10's JdbcCatalog leaves a read cursor open when it checks for its tables, which the
    configuration avoids (jdbc.init-catalog-tables=false)."""
    local.spark.sql("SHOW NAMESPACES IN lakehouse")
    local.spark.sql(f"SHOW TABLES IN lakehouse.{local.namespaces['silver']}")
    db = sqlite3.connect(local.catalog_db, timeout=1, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")  # fails after 1 s if any connection holds even a read lock
        db.execute("ROLLBACK")
    finally:
        db.close()


@needs_spark
def test_local_spark_waits_for_another_writer_as_pyiceberg_does(local):
    """The store's busy timeout (15 s) reaches Spark's SQLite driver: a commit waits out a lock held
    longer than the driver's own default (3 s) instead of failing with 'database is locked'."""
    identifier = (local.namespaces["silver"], "locked")
    local.catalog.create_table(identifier, schema=pa.schema([("k", pa.string())]), location=local.location("silver", "locked"))
    name = f"lakehouse.{identifier[0]}.{identifier[1]}"
    local.spark.sql(f"SELECT * FROM {name}")  # loaded once, so the insert below is quick once the lock goes
    held, hold_seconds = threading.Event(), 4.0

    def hold_lock():
        db = sqlite3.connect(local.catalog_db, timeout=5, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(hold_seconds)
        db.execute("ROLLBACK")
        db.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    local.spark.sql(f"INSERT INTO {name} VALUES ('waited')")
    waited = time.monotonic() - started
    holder.join()
    assert waited >= hold_seconds - 1
    assert local.catalog.load_table(identifier).scan().to_arrow().to_pylist() == [{"k": "waited"}]


# ---- aws: Glue Data Catalog and S3 (moto on 127.0.0.1) ------------------------------------------
@needs_spark
def test_aws_spark_reads_and_merges_a_table_pyiceberg_wrote(aws):
    _pyiceberg_writes_spark_reads_and_merges(aws, "orders")
    keys = aws.moto.keys(aws.location("silver", "orders"))
    assert any(k.startswith("data/") for k in keys) and any(k.startswith("metadata/") for k in keys)


@needs_spark
def test_aws_pyiceberg_reads_a_table_spark_created(aws):
    _spark_creates_pyiceberg_reads(aws, "daily")
    glue_table = aws.moto.client("glue").get_table(DatabaseName=aws.namespaces["gold"], Name="daily")["Table"]
    assert glue_table["Parameters"]["table_type"].upper() == "ICEBERG"  # what Athena and Glue jobs look for


@needs_spark
def test_aws_spark_sees_a_pyiceberg_commit_at_once(aws):
    identifier = (aws.namespaces["silver"], "fresh")
    table = aws.catalog.create_table(identifier, schema=ORDERS, location=aws.location("silver", "fresh"))
    table.append(_orders(("a", 1, (2024, 1, 1), (2024, 1, 1))))
    name = f"lakehouse.{identifier[0]}.{identifier[1]}"
    assert aws.spark.sql(f"SELECT count(*) FROM {name}") == [(1,)]
    table.append(_orders(("b", 2, (2024, 1, 1), (2024, 1, 1))))
    assert aws.spark.sql(f"SELECT count(*) FROM {name}") == [(2,)]


# ---- the configuration itself (no JVM) ---------------------------------------------------------
def test_local_configuration_opens_the_store_s_sqlite_file_and_warehouse(tmp_path):
    properties = {"type": "sql", "uri": f"sqlite:///{tmp_path}/catalog.db?timeout=15", "warehouse": (tmp_path / "warehouse").as_uri()}
    config = iceberg_spark_config("lakehouse", properties, [tmp_path / "a.jar", tmp_path / "b.jar"])
    assert config == {
        "spark.jars": f"{tmp_path}/a.jar,{tmp_path}/b.jar",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.catalog.lakehouse": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.lakehouse.cache-enabled": "false",
        "spark.sql.catalog.lakehouse.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "spark.sql.catalog.lakehouse.uri": f"jdbc:sqlite:{tmp_path}/catalog.db?busy_timeout=15000",
        "spark.sql.catalog.lakehouse.warehouse": (tmp_path / "warehouse").as_uri(),
        "spark.sql.catalog.lakehouse.jdbc.schema-version": "V1",
        "spark.sql.catalog.lakehouse.jdbc.init-catalog-tables": "false",
        "spark.sql.session.timeZone": "UTC",
    }


def test_local_configuration_resolves_a_relative_sqlite_path_and_defaults_the_timeout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = iceberg_spark_config("cat", {"type": "sql", "uri": "sqlite:///rel/catalog.db", "warehouse": "file:///w"})
    assert config["spark.sql.catalog.cat.uri"] == f"jdbc:sqlite:{tmp_path}/rel/catalog.db?busy_timeout=5000"
    assert "spark.jars" not in config  # no jars: the runtime provides Iceberg (Glue, EMR)


def test_aws_configuration_uses_glue_and_s3_file_io_with_the_store_s_region_and_endpoints():
    from lakehouse.io.aws import AwsConfig

    properties = AwsConfig("eu-west-1", s3_endpoint="http://127.0.0.1:5000", glue_endpoint="http://127.0.0.1:5001").catalog_properties()
    config = iceberg_spark_config("lakehouse", properties)
    assert {k: v for k, v in config.items() if k.startswith("spark.sql.catalog.")} == {
        "spark.sql.catalog.lakehouse": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.lakehouse.cache-enabled": "false",
        "spark.sql.catalog.lakehouse.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        "spark.sql.catalog.lakehouse.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "spark.sql.catalog.lakehouse.client.region": "eu-west-1",
        "spark.sql.catalog.lakehouse.glue.endpoint": "http://127.0.0.1:5001",
        "spark.sql.catalog.lakehouse.s3.endpoint": "http://127.0.0.1:5000",
        "spark.sql.catalog.lakehouse.s3.path-style-access": "true",
    }
    # AWS's own endpoints: the SDK's defaults (virtual-hosted S3 addressing), nothing secret anywhere.
    plain = iceberg_spark_config("lakehouse", AwsConfig("eu-west-1").catalog_properties())
    assert not any(k.endswith((".s3.endpoint", ".glue.endpoint", ".s3.path-style-access")) for k in plain)
    assert not any("key" in k or "secret" in k or "token" in k for k in {**config, **plain})


@pytest.mark.parametrize(
    ("properties", "says"),
    [
        ({"type": "rest", "uri": "http://x"}, "only 'sql' (SQLite) and 'glue'"),
        ({"type": "sql", "uri": "postgresql://h/db", "warehouse": "file:///w"}, "SQLite file only"),
        ({"type": "sql", "uri": "sqlite:///:memory:", "warehouse": "file:///w"}, "in-memory"),
        ({"type": "sql", "uri": "sqlite:////tmp/c.db"}, "'warehouse'"),
    ],
)
def test_catalogs_spark_cannot_share_are_refused(properties, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        iceberg_spark_config("lakehouse", properties)


def test_the_pom_lists_the_jars_the_code_expects():
    pom = ET.parse(PROJECT / "jars" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = {p.tag.split("}")[1]: p.text for p in pom.find("m:properties", ns)}
    names = []
    for dependency in pom.find("m:dependencies", ns):
        version = dependency.find("m:version", ns).text
        if version.startswith("${"):
            version = properties[version[2:-1]]
        names.append(f"{dependency.find('m:artifactId', ns).text}-{version}.jar")
    assert sorted(names) == sorted(ICEBERG_JARS + S3_FILESYSTEM_JARS)
    assert properties["outputDirectory"] == "${project.basedir}/../.jars"  # the project root's .jars, the default folder


# ---- settings ------------------------------------------------------------------------------------
def _fake_jars(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ICEBERG_JARS:
        (folder / name).write_bytes(b"")
    return folder


def test_the_store_is_arrow_by_default_and_needs_no_jars(monkeypatch, tmp_path):
    monkeypatch.delenv("LAKEHOUSE_STORE", raising=False)
    monkeypatch.setenv("LAKEHOUSE_SPARK_JARS", str(tmp_path / "nowhere"))
    settings = load_settings()
    assert settings.store == "arrow"
    assert settings.spark_jars == tmp_path / "nowhere"


def test_the_spark_store_finds_its_jars(monkeypatch, tmp_path):
    folder = _fake_jars(tmp_path / "jars")
    monkeypatch.setenv("LAKEHOUSE_STORE", "spark")
    monkeypatch.setenv("LAKEHOUSE_SPARK_JARS", str(folder))
    settings = load_settings()
    assert settings.store == "spark"
    assert settings.spark_jar_files == [folder / name for name in ICEBERG_JARS]


def test_a_relative_jar_folder_is_taken_from_the_working_directory(monkeypatch, tmp_path):
    _fake_jars(tmp_path / "lib")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKEHOUSE_STORE", "spark")
    monkeypatch.setenv("LAKEHOUSE_SPARK_JARS", "lib")
    assert load_settings().spark_jars == tmp_path / "lib"


def test_the_default_jar_folder_is_the_checkout_s_dot_jars(monkeypatch, tmp_path):
    monkeypatch.delenv("LAKEHOUSE_SPARK_JARS", raising=False)
    monkeypatch.chdir(tmp_path)  # not the working directory's
    assert default_spark_jars() == PROJECT / ".jars"
    assert load_settings().spark_jars == PROJECT / ".jars"


@pytest.mark.parametrize("value", ["Spark", "pyspark", "", "duckdb"])
def test_an_unknown_store_is_refused_naming_the_setting_and_the_choices(monkeypatch, value):
    monkeypatch.setenv("LAKEHOUSE_STORE", value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "LAKEHOUSE_STORE" in message and "'arrow'" in message and "'spark'" in message


@pytest.mark.parametrize("state", ["missing folder", "empty folder", "one jar short"])
def test_the_spark_store_without_its_jars_says_where_and_how_to_fetch_them(monkeypatch, tmp_path, state):
    folder = tmp_path / "jars"
    if state != "missing folder":
        folder.mkdir()
    if state == "one jar short":
        _fake_jars(folder)
        (folder / ICEBERG_JARS[1]).unlink()
    monkeypatch.setenv("LAKEHOUSE_STORE", "spark")
    monkeypatch.setenv("LAKEHOUSE_SPARK_JARS", str(folder))
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert str(folder) in message and "LAKEHOUSE_SPARK_JARS" in message and FETCH_COMMAND in message
    if state == "one jar short":
        assert ICEBERG_JARS[1] in message and ICEBERG_JARS[0] not in message
