"""Table contracts of dbt models, read from the manifest: what schema.yml declares becomes the
contract, and what it leaves out is refused naming the model, the column and the fix."""

from __future__ import annotations

import copy

import pytest

from lakehouse.contracts.dbt_models import DbtContractError, dbt_contracts, model_contract
from lakehouse.resources.dbt import load_manifest


@pytest.fixture(scope="module")
def manifest():
    return load_manifest("duckdb")


def test_schema_yml_is_the_contract(manifest):
    contracts = {c.name: c for c in dbt_contracts(manifest)}
    assert sorted(contracts) == ["customer_cohorts", "order_fulfilment_daily", "order_status_daily"]
    cohorts = contracts["customer_cohorts"]
    assert cohorts.qualified_name == "gold.customer_cohorts" and cohorts.mode.value == "overwrite"
    assert cohorts.primary_key == ("cohort_month", "order_month")
    assert cohorts.column("revenue").type == "decimal(18,2)" and cohorts.column("revenue").required  # it has a not_null test
    fulfilment = contracts["order_fulfilment_daily"]
    assert not fulfilment.column("cancel_rate").required  # no not_null test
    assert fulfilment.column("cancel_rate").description == "cancelled_orders / orders"


def _node(manifest, name="order_status_daily"):
    return copy.deepcopy(manifest["nodes"][f"model.lakehouse.{name}"])


def test_a_column_without_a_lakehouse_type_is_refused_naming_it(manifest):
    node = _node(manifest)
    node["columns"]["orders"]["data_type"] = None
    with pytest.raises(DbtContractError, match=r"dbt model order_status_daily .*column 'orders' has no data_type; give it a lakehouse type"):
        model_contract(manifest, node)
    node["columns"]["orders"]["data_type"] = "bigint"
    with pytest.raises(DbtContractError, match=r"column 'orders'.*unknown column type 'bigint'"):
        model_contract(manifest, node)


def test_a_key_column_that_is_not_declared_or_not_required_is_refused(manifest):
    node = _node(manifest)
    node["config"]["meta"]["lakehouse"]["primary_key"] = ["report_date", "region"]
    with pytest.raises(DbtContractError, match=r"order_status_daily.*column 'region' is referenced but not declared"):
        model_contract(manifest, node)
    node = _node(manifest, "order_fulfilment_daily")
    node["config"]["meta"]["lakehouse"]["primary_key"] = ["cancel_rate"]
    with pytest.raises(DbtContractError, match=r"primary-key column 'cancel_rate' must be required"):
        model_contract(manifest, node)


def test_a_model_outside_the_layers_is_refused(manifest):
    node = _node(manifest)
    node["config"]["schema"] = "marts"
    with pytest.raises(DbtContractError, match=r"schema 'marts' is not a lakehouse layer; set `\+schema: gold`"):
        model_contract(manifest, node)


def test_a_column_tagged_in_schema_yml_is_a_pii_column_and_a_wrong_tag_is_refused(manifest):
    node = _node(manifest)
    node["columns"]["orders"].setdefault("meta", {})["lakehouse"] = {"pii": "name"}
    assert model_contract(manifest, node).column("orders").pii == "name"
    assert model_contract(manifest, _node(manifest)).column("orders").pii is None
    node["columns"]["orders"]["meta"]["lakehouse"] = {"pii": "mail"}
    with pytest.raises(DbtContractError, match=r"column 'orders'.*unknown pii kind 'mail'; use one of email"):
        model_contract(manifest, node)
