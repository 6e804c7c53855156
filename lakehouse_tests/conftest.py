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


def make_store(home: Path) -> ArrowTableStore:
    home.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog("lakehouse", uri=f"sqlite:///{home}/catalog.db", warehouse=(home / "warehouse").as_uri())
    warehouse = (home / "warehouse").as_uri()
    return ArrowTableStore(catalog, {layer: f"{warehouse}/{layer.value}" for layer in Layer}, {layer: layer.value for layer in Layer})


@pytest.fixture(params=["arrow"])
def table_store(request, tmp_path):
    """Every table-store implementation that can run here.

    The Spark-native store needs the Iceberg Spark runtime, which only Glue/EMR provide, so the
    shared semantics suite runs here against the pyiceberg/Arrow store.
    """
    return make_store(tmp_path / "store")


@pytest.fixture(scope="session")
def spark():
    from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, ensure_java

    ensure_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in {**LOCAL_SPARK_CONFIG, "spark.master": "local[2]"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    if not os.environ.get("LAKEHOUSE_KEEP_SPARK"):
        session.stop()
