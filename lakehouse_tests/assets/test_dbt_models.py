"""The dbt models (lakehouse/dbt) as Gold assets: in the graph downstream of Silver, built by
`lakehouse refresh` when Silver changed and only then, published as Iceberg tables equal to an
independent computation, and held back by their failing error-severity tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.automation.planning import plan_gold
from lakehouse.automation.refresh import refresh
from lakehouse.contracts import tables as t
from lakehouse.definitions import build_definitions
from lakehouse.environment import resources_for
from lakehouse.io.table_store import CommitStamp
from lakehouse.resources.dbt import DbtBuildResource, load_manifest
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.aws.server import aws_test_env
from lakehouse_tests.reference import expected_dbt_models as expected_models
from lakehouse_tests.reference import expected_state

STATUS_DAILY, FULFILMENT, COHORTS = (dg.AssetKey(["gold", n]) for n in ("order_status_daily", "order_fulfilment_daily", "customer_cohorts"))
MODELS = (STATUS_DAILY, FULFILMENT, COHORTS)


def actual_models(store, contracts) -> dict[str, set[tuple]]:
    return {c.name: {tuple(r.values()) for r in store.read(c).to_pylist()} for c in contracts}


# ---- a home refreshed once per module ------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("dbt-home")
    settings = Settings(home=root / "lakehouse")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(root / "dagster"))
        (root / "dagster").mkdir()
        instance = dg.DagsterInstance.ephemeral()
        resources = resources_for(settings)
        yield settings, instance, resources


def _contracts(resources) -> list:
    return [m.contract for m in resources["dbt"].models()]


def _snapshot(store, contract) -> int | None:
    return store.info(contract).snapshot_id


def _run_with(outcome, asset_key: dg.AssetKey):
    return [r for r in outcome.runs if any(m.asset_key == asset_key for m in r.get_asset_materialization_events())]


def test_models_are_gold_assets_downstream_of_silver(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    assert graph.get(STATUS_DAILY).parent_keys == {t.ORDERS.asset_key}
    assert graph.get(COHORTS).parent_keys == {t.ORDERS.asset_key, t.CUSTOMERS.asset_key}
    assert graph.get(FULFILMENT).parent_keys == {STATUS_DAILY}
    assert all(graph.get(k).group_name == "gold" for k in MODELS)
    # Silver stays the Silver assets' own: dbt adds no source asset of its own
    assert not any(k.path[0] not in ("bronze", "silver", "gold", "maintenance") for k in graph.get_all_asset_keys())
    manifest = load_manifest("duckdb")
    node = manifest["nodes"]["model.lakehouse.order_status_daily"]
    assert graph.get(STATUS_DAILY).code_version == node["checksum"]["checksum"]
    spec = graph.get(STATUS_DAILY)
    schema = spec.metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == [("report_date", "date"), ("status", "string"), ("orders", "long"), ("revenue", "decimal(18,2)")]
    assert {c.name: c.description for c in schema.columns}["revenue"] == node["columns"]["revenue"]["description"]
    assert spec.description.startswith(node["description"])
    keys = {k.name for k in graph.asset_check_keys if k.asset_key == STATUS_DAILY}
    assert "accepted_values_order_status_daily_status__placed__paid__shipped__delivered__cancelled" in keys
    assert any(k.startswith("total_matches_order_status_daily_revenue") for k in keys)


def test_refresh_builds_the_models_equal_to_an_independent_computation(home):
    settings, instance, resources = home
    land_sample(settings.home / "landing", seed=11, days=2, orders_per_day=40)
    outcome = refresh(settings, instance, trigger="test")
    assert outcome.success
    store = resources["store"].get_store()
    assert actual_models(store, _contracts(resources)) == expected_models(expected_state(settings.home / "landing"))


def test_each_model_table_is_stamped_with_its_run_code_version_and_silver_lineage(home):
    settings, instance, resources = home
    store = resources["store"].get_store()
    for model in resources["dbt"].models():
        info = store.info(model.contract)
        event = instance.get_latest_materialization_event(model.contract.asset_key)
        metadata = event.asset_materialization.metadata
        assert info.summary["dagster.run-id"] == event.run_id
        assert info.summary["dagster.code-version"] == model.code_version
        assert metadata["snapshot_id"].value == str(info.snapshot_id)
        assert metadata["dagster/row_count"].value == info.row_count > 0
        assert str(metadata["table_uri"].value) == info.uri
        for source in model.silver_sources:  # built through the Silver version current when it ran
            built = json.loads(info.properties[f"lakehouse.built-from.{source.qualified_name}"])
            assert built["through"] == store.current_seq(source)


def test_a_second_batch_rebuilds_them_and_a_rerun_changes_nothing(home):
    settings, instance, resources = home
    store = resources["store"].get_store()
    land_sample(settings.home / "landing", seed=11, days=4, orders_per_day=40)  # days 3 and 4 are new
    assert refresh(settings, instance, trigger="test").success
    assert actual_models(store, _contracts(resources)) == expected_models(expected_state(settings.home / "landing"))

    before = {c.name: _snapshot(store, c) for c in _contracts(resources)}
    assert refresh(settings, instance, trigger="test").runs == []  # nothing landed, nothing stale: no run
    # Materialized by hand with unchanged inputs and SQL: dbt does not run and nothing is committed.
    result = dg.materialize(
        [a for a in build_definitions(settings).assets if isinstance(a, dg.AssetsDefinition) and STATUS_DAILY in a.keys],
        resources=resources, instance=instance, raise_on_error=True,
    )
    assert {c.name: _snapshot(store, c) for c in _contracts(resources)} == before
    outcomes = {m.asset_key: m.materialization.metadata["outcome"].value for m in result.get_asset_materialization_events()}
    assert outcomes == dict.fromkeys(MODELS, "no new data")


def test_a_change_to_one_silver_table_rebuilds_only_the_models_it_feeds(home):
    settings, instance, resources = home
    store = resources["store"].get_store()
    row = store.read(t.CUSTOMERS).slice(0, 1).to_pylist()[0]
    row.update(customer_id="c-without-orders", updated_at=row["updated_at"] + dt.timedelta(seconds=1))
    store.merge(t.CUSTOMERS, pa.Table.from_pylist([row], schema=t.CUSTOMERS.arrow_schema), CommitStamp(run_id="test-customer", asset_key="silver/customers"))
    assert plan_gold(store, resources["dbt"].models()).dbt_models == (COHORTS,)
    outcome = refresh(settings, instance, trigger="test")
    assert outcome.success
    materialized = {m.asset_key for r in outcome.runs for m in r.get_asset_materialization_events()}
    assert materialized & set(MODELS) == {COHORTS}
    assert actual_models(store, _contracts(resources)) == expected_models(expected_state(settings.home / "landing"))  # no orders: same cohorts


def test_a_failing_error_test_blocks_its_model_and_whats_built_on_it(home):
    settings, instance, resources = home
    store = resources["store"].get_store()
    before = {c.name: _snapshot(store, c) for c in _contracts(resources)}
    # A defect upstream: a status the landing contract would have rejected reaches Silver directly.
    row = store.read(t.ORDERS).slice(0, 1).to_pylist()[0]
    row.update(order_id="o-defect-1", status="refunded", lsn=row["lsn"] + 10**9)
    store.merge(t.ORDERS, pa.Table.from_pylist([row], schema=t.ORDERS.arrow_schema), CommitStamp(run_id="test-defect", asset_key="silver/orders"))

    outcome = refresh(settings, instance, trigger="test")
    assert not outcome.success
    evaluations = [e for r in outcome.runs for e in r.get_asset_check_evaluations()]
    failed = {(e.asset_key, e.check_name) for e in evaluations if not e.passed}
    assert failed == {(STATUS_DAILY, "accepted_values_order_status_daily_status__placed__paid__shipped__delivered__cancelled")}
    assert all(e.severity is dg.AssetCheckSeverity.ERROR for e in evaluations if not e.passed)
    after = {c.name: _snapshot(store, c) for c in _contracts(resources)}
    assert after["order_status_daily"] == before["order_status_daily"]  # not published
    assert after["order_fulfilment_daily"] == before["order_fulfilment_daily"]  # built on it: skipped
    assert after["customer_cohorts"] != before["customer_cohorts"]  # unaffected: published
    materialized = {m.asset_key for r in outcome.runs for m in r.get_asset_materialization_events()}
    assert STATUS_DAILY not in materialized and FULFILMENT not in materialized and COHORTS in materialized
    # Still stale: the next plan builds them again (and fails again until Silver is repaired).
    assert set(plan_gold(store, resources["dbt"].models()).dbt_models) == {STATUS_DAILY, FULFILMENT}


def test_the_athena_target_parses_and_compiles_against_the_glue_databases(tmp_path, monkeypatch):
    aws_test_env(monkeypatch)
    settings = Settings(home=tmp_path / "lakehouse", env="aws", aws_region="eu-west-1", environment_name="prod", landing="s3://landing-prod/incoming")
    assert settings.dbt_models_target == "athena"
    resources = resources_for(settings)
    dbt: DbtBuildResource = resources["dbt"]
    assert (dbt.target, dbt.publish) == ("athena", "in_place")
    target = tmp_path / "compiled"
    # No Athena here: compile without the warehouse (no relation cache, no introspective queries).
    invocation = dbt.cli(["compile", "--no-populate-cache", "--no-introspect"], target_path=target).wait()
    assert invocation.is_successful()
    compiled = (target / "compiled/lakehouse/models/gold/customer_cohorts.sql").read_text()
    assert '"awsdatacatalog"."lakehouse_silver_prod"."orders"' in compiled
    assert '"awsdatacatalog"."lakehouse_silver_prod"."customers"' in compiled
    manifest = json.loads(Path(target / "manifest.json").read_text())
    for name in ("order_status_daily", "order_fulfilment_daily", "customer_cohorts"):
        node = manifest["nodes"][f"model.lakehouse.{name}"]
        assert (node["schema"], node["config"]["table_type"], node["config"]["materialized"]) == ("lakehouse_gold_prod", "iceberg", "table")
    graph = build_definitions(settings).resolve_asset_graph()
    assert graph.get(COHORTS).parent_keys == {t.ORDERS.asset_key, t.CUSTOMERS.asset_key}


def test_a_model_built_in_place_records_its_lineage_and_is_built_again_only_when_silver_changes(tmp_path):
    """On Athena (publish in_place) the engine writes the table; the asset then records the Silver
    lineage and the SQL's code version on it, so the next publish skips it until Silver changes."""
    import logging

    from lakehouse.assets.gold.dbt_models import _in_place_events
    from lakehouse.io.watermarks import built_from_properties
    from lakehouse.resources.dbt import dbt_models, model_stale
    from lakehouse_tests.conftest import make_store
    from lakehouse_tests.io.cdc import batch, event

    store = make_store(tmp_path / "store")
    store.merge(t.ORDERS, batch(event("a", 1)), CommitStamp(run_id="r1", asset_key="silver/orders"))
    model = next(m for m in dbt_models(load_manifest("duckdb")) if m.contract.asset_key == STATUS_DAILY)
    lineage = {model.unique_id: built_from_properties(store.info(model.contract).properties, store, model.silver_sources, None)}
    # What Athena leaves: an Iceberg table whose snapshot carries no lakehouse stamp.
    store.overwrite(model.contract, model.contract.arrow_schema.empty_table(), CommitStamp(run_id="athena", asset_key="-"))
    assert model_stale(store, model)

    class Invocation:  # dagster-dbt's DbtCliInvocation, as far as the asset uses it
        def stream(self):
            yield dg.Output(None, output_name=model.contract.asset_key.to_python_identifier())

        def get_artifact(self, name):
            return {"results": [{"unique_id": model.unique_id, "status": "success"}]}

    (output,) = list(_in_place_events(Invocation(), store, [model], logging.getLogger("test"), lineage))
    assert output.metadata["table_uri"].value == store.info(model.contract).uri
    assert not model_stale(store, model)
    store.merge(t.ORDERS, batch(event("b", 2)), CommitStamp(run_id="r2", asset_key="silver/orders"))
    assert model_stale(store, model)
