"""The code location: loads with `dagster definitions validate` and declares what the contracts say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.automation.planning import INGEST_JOB, PUBLISH_JOB
from lakehouse.contracts import ALL_TABLES
from lakehouse.contracts.model import Layer
from lakehouse.definitions import build_definitions
from lakehouse.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
VALIDATE_TIMEOUT = 300


def _dagster_cli() -> list[str]:
    script = Path(sys.executable).parent / "dagster"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dagster"]


def test_dagster_definitions_validate(tmp_path):
    env = dict(os.environ)  # LAKEHOUSE_HOME / DAGSTER_HOME under tmp_path (autouse fixture)
    proc = subprocess.run(
        [*_dagster_cli(), "definitions", "validate"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Validation successful" in proc.stdout + proc.stderr


@pytest.fixture
def defs(tmp_path) -> dg.Definitions:
    return build_definitions(Settings(home=tmp_path / "lakehouse_defs"))


@pytest.fixture
def specs(defs) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {spec.key: spec for spec in defs.resolve_all_asset_specs()}


def test_every_table_is_an_asset_under_its_layer(specs):
    expected = {contract.asset_key for contract in ALL_TABLES}
    assert set(specs) == expected
    assert len(expected) == 8
    for contract in ALL_TABLES:
        key = contract.asset_key
        assert key.path == [contract.layer.value, contract.name]
        assert specs[key].group_name == contract.layer.value
    layers = sorted(key.path[0] for key in specs)
    assert layers == ["bronze"] * 2 + ["gold"] * 2 + ["silver"] * 4


def test_ingest_and_publish_jobs_cover_every_asset_once(defs):
    ingest = set(defs.resolve_job_def(INGEST_JOB).asset_layer.selected_asset_keys)
    publish = set(defs.resolve_job_def(PUBLISH_JOB).asset_layer.selected_asset_keys)
    assert ingest == {c.asset_key for c in ALL_TABLES if c.layer.value in ("bronze", "silver")}
    assert publish == {c.asset_key for c in ALL_TABLES if c.layer.value == "gold"}


def test_partitioned_assets_backfill_in_a_single_run(defs):
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert {k for k, s in specs.items() if s.partitions_def is not None} == {"bronze/orders_raw", "bronze/customers_raw", "gold/daily_sales"}
    for key in ("bronze/orders_raw", "gold/daily_sales"):
        assets_def = defs.resolve_assets_def(dg.AssetKey.from_user_string(key))
        assert assets_def.backfill_policy == dg.BackfillPolicy.single_run()
        assert assets_def.partitions_def.get_first_partition_key() == "2000-01-01"


def test_sensors_and_schedule_are_defined(defs):
    assert {s.name for s in defs.sensors} == {"landing_sensor", "gold_sensor"}
    (schedule,) = defs.schedules
    assert schedule.cron_schedule == "15 * * * *" and schedule.execution_timezone == "UTC"


def _column_schema(metadata: dict) -> dg.TableSchema:
    value = metadata["dagster/column_schema"]
    return value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value


@pytest.mark.parametrize("contract", ALL_TABLES, ids=lambda c: c.asset_key.to_user_string())
def test_column_schema_matches_contract(specs, contract):
    spec = specs[contract.asset_key]
    schema = _column_schema(spec.metadata)
    assert isinstance(schema, dg.TableSchema)
    assert [column.name for column in schema.columns] == contract.column_names
    assert [column.type for column in schema.columns] == [c.type for c in contract.columns]
    assert spec.metadata["dagster/table_name"] in (contract.qualified_name, dg.MetadataValue.text(contract.qualified_name))
    for column, declared in zip(schema.columns, contract.columns):
        assert column.constraints.nullable == (not declared.required), column.name


@pytest.mark.parametrize("contract", ALL_TABLES, ids=lambda c: c.asset_key.to_user_string())
def test_transformations_have_code_versions(specs, contract):
    spec = specs[contract.asset_key]
    if contract.layer is Layer.bronze:
        return
    assert spec.code_version, f"{contract.asset_key.to_user_string()} has no code version"
    # The IO manager stamps snapshots with the code version it finds in the definition metadata.
    stamped = spec.metadata.get("lakehouse/code_version")
    stamped = getattr(stamped, "value", stamped)
    assert stamped == spec.code_version


def test_code_versions_are_distinct(specs):
    versions = [s.code_version for s in specs.values() if s.key.path[0] != "bronze"]
    assert len(versions) == 6 and len(set(versions)) == 6


def test_executor_is_in_process(defs):
    job = defs.resolve_job_def(INGEST_JOB)
    assert job.executor_def.name == dg.in_process_executor.name == "in_process"
    assert defs.executor is dg.in_process_executor or getattr(defs.executor, "name", None) == "in_process"


def test_build_definitions_uses_the_given_settings(tmp_path, defs):
    # The store resource points at the settings' home, not the environment's LAKEHOUSE_HOME.
    store = defs.resources["store"]
    assert str(tmp_path / "lakehouse_defs" / "catalog.db") in store.catalog_properties["uri"]
    assert defs.resources["landing"].root == str(tmp_path / "lakehouse_defs" / "landing")
