"""Shared fixtures: temp lakehouse homes (never the user's ~), a table store, one Spark session."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse.contracts.model import Layer
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.table_store import TableStore
from lakehouse.resources import iceberg_spark
from lakehouse.settings import Settings

# Test samples are small, so one invalid record of each kind per day is a large share of them:
# allow it (the 5% default is tested on its own). Subprocesses inherit this.
os.environ["LAKEHOUSE_REJECT_RATE_LIMIT"] = "0.5"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Every test gets its own LAKEHOUSE_HOME and DAGSTER_HOME under tmp_path."""
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "lakehouse"))
    monkeypatch.delenv("LAKEHOUSE_LANDING", raising=False)
    monkeypatch.delenv("LAKEHOUSE_ENV", raising=False)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "lakehouse")


# The Iceberg Spark runtime and its companions (jars/pom.xml fetches them here; CI always does).
_JARS = Path(__file__).resolve().parents[1] / ".jars"
ICEBERG_JARS = [] if iceberg_spark.missing_jars(_JARS) else [str(p) for p in iceberg_spark.jar_paths(_JARS)]


def make_store(home: Path, kind: str = "arrow", spark_session=None) -> TableStore:
    home.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog("lakehouse", uri=f"sqlite:///{home}/catalog.db", warehouse=(home / "warehouse").as_uri())
    warehouse = (home / "warehouse").as_uri()
    locations = {layer: f"{warehouse}/{layer.value}" for layer in Layer}
    namespaces = {layer: layer.value for layer in Layer}
    if kind == "arrow":
        return ArrowTableStore(catalog, locations, namespaces)
    from lakehouse.io.spark_store import SparkTableStore


    spark_catalog = {"catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog", "uri": f"jdbc:sqlite:{home}/catalog.db",
                     "warehouse": warehouse, "jdbc.schema-version": "V1"}
    store_class = SparkTableStore if kind == "spark" else _given_dataframes(SparkTableStore)
    return store_class(catalog, locations, namespaces, spark_session=lambda: spark_session, spark_catalog=spark_catalog)


def _given_dataframes(store_class):
    """``store_class`` whose merges and overwrites are handed Spark DataFrames of the Arrow data the
    tests build, through the store interface's ``write`` (as the IO manager hands a transformation's
    output): the same semantics suite then proves the DataFrame path too."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from lakehouse.io.spark_frames import arrow_to_spark

    class GivenDataFrames(store_class):
        def merge(self, contract, data, stamp, branch=None):
            if isinstance(data, pa.Table):
                return self.write(contract, self._as_frame(data), stamp, branch=branch)
            return super().merge(contract, data, stamp, branch)

        def overwrite(self, contract, data, stamp, partition=None, branch=None):
            if isinstance(data, pa.Table):
                return self.write(contract, self._as_frame(data), stamp, partition, branch=branch)
            return super().overwrite(contract, data, stamp, partition, branch)

        def _as_frame(self, data):
            return arrow_to_spark(self.spark, data, from_arrow_schema(data.schema))

    return GivenDataFrames


@pytest.fixture(scope="module")
def glue_endpoint():
    """A moto server on 127.0.0.1 answering S3 and Glue, for the stores on the Glue catalog."""
    from lakehouse_tests.aws.server import aws_test_env, moto_server

    with pytest.MonkeyPatch.context() as mp:
        aws_test_env(mp)
        with moto_server() as server:
            yield server


@pytest.fixture(params=["arrow", "spark", "spark_frames", "arrow-glue", "spark-glue"])
def table_store(request, tmp_path, monkeypatch):
    """Every table-store implementation: pyiceberg/Arrow, and Spark SQL on Iceberg's Spark runtime
    (as Glue and EMR run it), each on the local SQLite catalog and on the Glue catalog (S3 + Glue of
    a moto server on 127.0.0.1), built the way the lakehouse builds them (resources_for)."""
    engine, _, catalog = request.param.partition("-")
    if engine.startswith("spark") and not ICEBERG_JARS:
        pytest.skip("the Iceberg Spark runtime is not in .jars: fetch it with `mvn -q -B -f jars/pom.xml dependency:copy-dependencies`")
    if not catalog:
        return make_store(tmp_path / "store", engine, request.getfixturevalue("spark") if engine != "arrow" else None)
    from lakehouse.environment import resources_for
    from lakehouse.settings import load_settings
    from lakehouse_tests.aws.server import LAKEHOUSE_VARIABLES, aws_test_env

    server = request.getfixturevalue("glue_endpoint")
    aws_test_env(monkeypatch)
    for name in LAKEHOUSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in server.create_environment().variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAKEHOUSE_STORE", engine)
    if engine == "spark":
        request.getfixturevalue("spark")  # the session, started with the jars (and the test credentials)
    return resources_for(load_settings())["store"].get_store()


@pytest.fixture(scope="session")
def spark():
    from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, ensure_java

    ensure_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    # The JVM reads its environment once, at start: the moto server's dummy credentials reach the
    # Iceberg AWS SDK (Spark on the Glue catalog) as system properties, for the JVM alone.
    iceberg = {"spark.jars": ",".join(ICEBERG_JARS),
               "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
               "spark.driver.extraJavaOptions": "-Daws.accessKeyId=testing -Daws.secretAccessKey=testing"} if ICEBERG_JARS else {}
    for key, value in {**LOCAL_SPARK_CONFIG, "spark.master": "local[2]", **iceberg}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    if not os.environ.get("LAKEHOUSE_KEEP_SPARK"):
        session.stop()


def pytest_collection_modifyitems(config, items):
    """A test marked ``arrow_store_only`` checks how the Arrow store does something (its file-by-file
    merge, its commit hooks), not what: its Spark variant is not collected. The Spark variants of
    the others are slow (they need the JVM). A test over random batches (a ``seed`` parameter) runs
    every seed on the Arrow store, whose own merge planning the seeds explore, and one seed on each
    Spark variant, where Iceberg's MERGE INTO plans the merge: every store still runs every test."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_spark = str(params.get("table_store", "")).startswith("spark")  # spark, spark_frames, spark-glue
        if on_spark:
            item.add_marker(pytest.mark.slow)  # a JVM with the Iceberg runtime: the full tier only
        local_only = item.get_closest_marker("local_arrow_store_only") and params.get("table_store", "arrow") != "arrow"
        other_seed = on_spark and params.get("seed", 0) != 0
        (dropped if (item.get_closest_marker("arrow_store_only") and on_spark) or local_only or other_seed else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
