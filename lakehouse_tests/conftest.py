"""Shared fixtures: temp lakehouse homes (never the user's ~), a table store, one Spark session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse.contracts.model import Layer
from lakehouse.io.arrow_store import ArrowTableStore
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
ICEBERG_JARS = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / ".jars").glob("*.jar"))


def make_store(home: Path, kind: str = "arrow", spark_session=None) -> ArrowTableStore:
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
    return SparkTableStore(catalog, locations, namespaces, spark_session=lambda: spark_session, spark_catalog=spark_catalog)


@pytest.fixture(params=["arrow", "spark"])
def table_store(request, tmp_path):
    """Every table-store implementation: pyiceberg/Arrow, and Spark SQL on Iceberg's Spark runtime
    (as Glue and EMR run it) over the same catalog."""
    if request.param == "spark":
        if not ICEBERG_JARS:
            pytest.skip("the Iceberg Spark runtime is not in .jars: fetch it with `mvn -q -B -f jars/pom.xml dependency:copy-dependencies`")
        return make_store(tmp_path / "store", "spark", request.getfixturevalue("spark"))
    return make_store(tmp_path / "store")


@pytest.fixture(scope="session")
def spark():
    from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, ensure_java

    ensure_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    iceberg = {"spark.jars": ",".join(ICEBERG_JARS),
               "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"} if ICEBERG_JARS else {}
    for key, value in {**LOCAL_SPARK_CONFIG, "spark.master": "local[2]", **iceberg}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    if not os.environ.get("LAKEHOUSE_KEEP_SPARK"):
        session.stop()


def pytest_collection_modifyitems(config, items):
    """A test marked ``arrow_store_only`` checks how the Arrow store does something (its file-by-file
    merge, its commit hooks), not what: its Spark variant is not collected. The Spark variants of
    the others are slow (they need the JVM)."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_spark = params.get("table_store") == "spark"
        if on_spark:
            item.add_marker(pytest.mark.slow)  # a JVM with the Iceberg runtime: the full tier only
        (dropped if item.get_closest_marker("arrow_store_only") and on_spark else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
