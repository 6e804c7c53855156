"""The code location: loads with `dagster definitions validate` and shows a user what README.md
("What it builds", "Incremental processing and automation") describes.

The expectations are written out here, not computed from lakehouse.contracts: a table dropped from
or renamed in the contracts, or a column changed, has to show up in this file too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.definitions import build_definitions
from lakehouse.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
VALIDATE_TIMEOUT = 300

DBT_MODEL_KEYS = ["gold/order_status_daily", "gold/order_fulfilment_daily", "gold/customer_cohorts"]
# asset key -> group (the layer), README "What it builds"
ASSET_GROUPS = {
    "bronze/orders_raw": "bronze",
    "bronze/customers_raw": "bronze",
    "silver/orders": "silver",
    "silver/customers": "silver",
    "silver/orders_rejects": "silver",
    "silver/customers_rejects": "silver",
    "gold/daily_sales": "gold",
    "gold/customer_summary": "gold",
    # dbt models (lakehouse/dbt)
    "gold/order_status_daily": "gold",
    "gold/order_fulfilment_daily": "gold",
    "gold/customer_cohorts": "gold",
    # table maintenance, per layer (lakehouse/assets/maintenance.py)
    "maintenance/silver": "maintenance",
    "maintenance/gold": "maintenance",
}
# asset key -> the assets it is computed from
ASSET_DEPS = {
    "bronze/orders_raw": set(),
    "bronze/customers_raw": set(),
    "silver/orders": {"bronze/orders_raw"},
    "silver/customers": {"bronze/customers_raw"},
    "silver/orders_rejects": {"bronze/orders_raw", "silver/orders"},
    "silver/customers_rejects": {"bronze/customers_raw", "silver/customers"},
    "gold/daily_sales": {"silver/orders"},
    "gold/customer_summary": {"silver/orders", "silver/customers"},
    "gold/order_status_daily": {"silver/orders"},
    "gold/order_fulfilment_daily": {"gold/order_status_daily"},
    "gold/customer_cohorts": {"silver/orders", "silver/customers"},
    "maintenance/silver": {"silver/orders", "silver/customers", "silver/orders_rejects", "silver/customers_rejects"},
    "maintenance/gold": {"gold/daily_sales", "gold/customer_summary", *DBT_MODEL_KEYS},
}
DBT_MODELS = DBT_MODEL_KEYS
# Bronze copies, it does not transform; dbt models are SQL, not registered transformations; maintenance writes no table
TRANSFORMATIONS = [key for key in ASSET_GROUPS if key.split("/")[0] in ("silver", "gold") and key not in DBT_MODELS]

_LINEAGE = ["_source_file string!", "_ingested_at timestamptz!", "_batch_id string!"]
_REJECT = ["record_id string!", "reason string!", "_raw string!", "_line_number long!", *_LINEAGE]
# asset key -> (Iceberg/Glue table name, "column type" with ! for a column that is not nullable)
TABLES = {
    "bronze/orders_raw": ("bronze.orders_raw", [
        "_raw string!", "_line_number long!", "_parse_error string", *_LINEAGE, "dt date!"]),
    "bronze/customers_raw": ("bronze.customers_raw", [
        "customer_id string", "name string", "email string", "country string", "updated_at string",
        "_parse_error string", "_raw string!", "_line_number long!", *_LINEAGE, "dt date!"]),
    "silver/orders": ("silver.orders", [
        "order_id string!", "customer_id string!", "status string!", "amount decimal(18,2)!", "currency string!",
        "created_at timestamptz!", "updated_at timestamptz!", "lsn long!", *_LINEAGE]),
    "silver/customers": ("silver.customers", [
        "customer_id string!", "name string", "email string", "country string", "updated_at timestamptz!", *_LINEAGE]),
    "silver/orders_rejects": ("silver.orders_rejects", _REJECT),
    "silver/customers_rejects": ("silver.customers_rejects", _REJECT),
    "gold/daily_sales": ("gold.daily_sales", [
        "report_date date!", "currency string!", "total_orders long!", "total_revenue decimal(18,2)!",
        "unique_customers long!"]),
    "gold/customer_summary": ("gold.customer_summary", [
        "customer_id string!", "name string", "email string", "country string", "order_count long!",
        "total_revenue decimal(18,2)!"]),
}


def _dagster_cli() -> list[str]:
    script = Path(sys.executable).parent / "dagster"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dagster"]


@pytest.mark.parametrize("database_sources", [False, True], ids=["landing", "with-postgres"])
def test_dagster_definitions_validate(tmp_path, database_sources):
    env = dict(os.environ)  # LAKEHOUSE_HOME / DAGSTER_HOME under tmp_path (autouse fixture)
    if database_sources:  # only the settings: validating connects to nothing
        env.update(LAKEHOUSE_POSTGRES_HOST="127.0.0.1", LAKEHOUSE_POSTGRES_DATABASE="shop")
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


def test_database_sources_join_the_code_location_with_their_own_job_and_schedule(tmp_path):
    plain = build_definitions(Settings(home=tmp_path / "plain"))
    with_db = build_definitions(Settings(home=tmp_path / "db", postgres_host="127.0.0.1"))
    added = {k.to_user_string() for k in with_db.resolve_all_asset_keys()} - {k.to_user_string() for k in plain.resolve_all_asset_keys()}
    assert added == {"bronze/payments_raw", "silver/payments", "silver/payments_rejects", "gold/order_revenue"}
    job = with_db.resolve_job_def("database_ingest")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"bronze/payments_raw", "silver/payments", "silver/payments_rejects"}
    ingest = {k.to_user_string() for k in with_db.resolve_job_def("ingest").asset_layer.executable_asset_keys}
    assert not ingest & added  # the landing ingest never waits on the database
    assert "gold/order_revenue" in {k.to_user_string() for k in with_db.resolve_job_def("publish").asset_layer.executable_asset_keys}
    assert with_db.resolve_schedule_def("database_ingest_schedule").cron_schedule == "*/15 * * * *"
    checks = {(k.asset_key.to_user_string(), k.name) for k in with_db.resolve_asset_graph().asset_check_keys}
    assert ("silver/payments", "records_accounted_for") in checks
    assert "postgres" not in plain.resources and "database_ingest" not in {j.name for j in plain.resolve_all_job_defs()}


def test_the_catalog_shows_each_tables_description_columns_owners_and_tags(tmp_path):
    defs = build_definitions(Settings(home=tmp_path / "catalog", postgres_host="127.0.0.1"))
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    tables = {k: s for k, s in specs.items() if not k.startswith("maintenance/")}
    assert len(tables) == 15  # 8 landing-fed tables, 4 of the database source, 3 dbt models
    for key, spec in tables.items():
        layer = key.split("/")[0]
        assert spec.description and spec.owners == (["team:analytics"] if layer == "gold" else ["team:data-platform"]), key
        assert spec.tags["lakehouse/layer"] == layer and spec.tags["domain"] in ("sales", "customers", "payments"), key
        columns = spec.metadata["dagster/column_schema"].columns
        assert columns and all(c.description for c in columns if not c.name.startswith("_") and c.name != "dt"), key
    labelled = {k for k, s in tables.items() if "lakehouse/pii" in s.tags}
    assert labelled == {"bronze/customers_raw", "silver/customers", "gold/customer_summary"}
    email = next(c for c in tables["silver/customers"].metadata["dagster/column_schema"].columns if c.name == "email")
    assert email.tags == {"pii": "email"}


def test_a_contract_refuses_an_owner_dagster_would_not_show():
    from lakehouse.contracts.model import Column, Layer, TableContract

    with pytest.raises(ValueError, match="neither an e-mail address nor 'team:<name>'"):
        TableContract(name="t", layer=Layer.gold, description="d", columns=(Column(name="a", type="long"),), owners=("analytics",))


@pytest.fixture
def defs(tmp_path) -> dg.Definitions:
    return build_definitions(Settings(home=tmp_path / "lakehouse_defs"))


@pytest.fixture
def specs(defs) -> dict[str, dg.AssetSpec]:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def _keys(user_strings) -> set[tuple[str, ...]]:
    """Asset keys as path tuples: "silver/orders" is the two-part key ["silver", "orders"]."""
    return {tuple(key.split("/")) for key in user_strings}


def test_the_eight_tables_are_assets_in_their_layers_group(defs):
    specs = defs.resolve_all_asset_specs()
    assert sorted(tuple(spec.key.path) for spec in specs) == sorted(_keys(ASSET_GROUPS))
    assert {spec.key.to_user_string(): spec.group_name for spec in specs} == ASSET_GROUPS


def test_assets_depend_on_what_they_are_computed_from(specs):
    assert {key: {dep.asset_key.to_user_string() for dep in spec.deps} for key, spec in specs.items()} == ASSET_DEPS


def test_ingest_and_publish_jobs_select_their_layers(defs):
    jobs = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    assert jobs == {"ingest", "publish", "maintenance"}
    ingest = {tuple(k.path) for k in defs.resolve_job_def("ingest").asset_layer.selected_asset_keys}
    publish = {tuple(k.path) for k in defs.resolve_job_def("publish").asset_layer.selected_asset_keys}
    assert ingest == _keys([
        "bronze/orders_raw", "bronze/customers_raw",
        "silver/orders", "silver/customers", "silver/orders_rejects", "silver/customers_rejects",
    ])
    assert publish == _keys(["gold/daily_sales", "gold/customer_summary", *DBT_MODELS])


def test_partitioned_assets_backfill_in_a_single_run(defs):
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert {k for k, s in specs.items() if s.partitions_def is not None} == {"bronze/orders_raw", "bronze/customers_raw", "gold/daily_sales"}
    for key in ("bronze/orders_raw", "gold/daily_sales"):
        assets_def = defs.resolve_assets_def(dg.AssetKey.from_user_string(key))
        assert assets_def.backfill_policy == dg.BackfillPolicy.single_run()
        assert assets_def.partitions_def.get_first_partition_key() == "2000-01-01"


def test_sensors_and_schedule_are_defined(defs):
    assert {s.name for s in defs.sensors} == {"landing_sensor", "gold_sensor"}
    schedules = {s.name: s for s in defs.schedules}
    assert set(schedules) == {"ingest_schedule", "maintenance_schedule"}
    assert schedules["ingest_schedule"].cron_schedule == "15 * * * *" and schedules["ingest_schedule"].execution_timezone == "UTC"
    assert schedules["maintenance_schedule"].cron_schedule == "0 3 * * *" and schedules["maintenance_schedule"].execution_timezone == "UTC"


def _column_schema(metadata: dict) -> dg.TableSchema:
    value = metadata["dagster/column_schema"]
    return value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value


@pytest.mark.parametrize("key", TABLES)
def test_column_schema_and_table_name(specs, key):
    table_name, columns = TABLES[key]
    spec = specs[key]
    schema = _column_schema(spec.metadata)
    assert isinstance(schema, dg.TableSchema)
    shown = [f"{c.name} {c.type}" + ("" if c.constraints.nullable else "!") for c in schema.columns]
    assert shown == columns
    assert spec.metadata["dagster/table_name"] in (table_name, dg.MetadataValue.text(table_name))


@pytest.mark.parametrize("key", TRANSFORMATIONS)
def test_transformations_have_code_versions(specs, key):
    spec = specs[key]
    assert spec.code_version, f"{key} has no code version"
    # The IO manager stamps snapshots with the code version it finds in the definition metadata.
    stamped = spec.metadata.get("lakehouse/code_version")
    stamped = getattr(stamped, "value", stamped)
    assert stamped == spec.code_version


def test_code_versions_are_distinct(specs):
    versions = {specs[key].code_version for key in TRANSFORMATIONS}
    assert len(TRANSFORMATIONS) == 6 and len(versions) == 6


def test_executor_is_in_process(defs):
    job = defs.resolve_job_def("ingest")
    assert job.executor_def.name == dg.in_process_executor.name == "in_process"
    assert defs.executor is dg.in_process_executor or getattr(defs.executor, "name", None) == "in_process"


def test_build_definitions_uses_the_given_settings(tmp_path, defs):
    # The store resource points at the settings' home, not the environment's LAKEHOUSE_HOME.
    store = defs.resources["store"]
    assert str(tmp_path / "lakehouse_defs" / "catalog.db") in store.catalog_properties["uri"]
    assert defs.resources["landing"].root == str(tmp_path / "lakehouse_defs" / "landing")
