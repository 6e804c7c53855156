"""The transformation registry: a runner finds each transformation by its asset key."""

from __future__ import annotations

import dataclasses

import pytest

import lakehouse.assets  # noqa: F401 - registers every transformation
from lakehouse.assets.silver.orders import orders
from lakehouse.assets.transformation import registered, transformation
from lakehouse.contracts.tables import ORDERS, ORDERS_RAW


def test_transformations_are_found_by_asset_key():
    found = registered("silver/orders")
    assert found is orders and found.target is ORDERS and found.sources == {"orders_raw": ORDERS_RAW}


def test_an_unknown_key_names_the_known_ones():
    with pytest.raises(KeyError, match="no transformation produces gold/nope; known: .*silver/orders"):
        registered("gold/nope")


def test_declared_sources_must_match_the_parameters():
    with pytest.raises(TypeError, match="takes \\['raw'\\] but declares sources \\['orders_raw'\\]"):
        transformation(target=ORDERS, sources={"orders_raw": ORDERS_RAW})(lambda raw: raw)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("profile", "huge", "silver/orders: unknown profile 'huge'; one of small, medium, large"),
    ("engine", "dataproc", "silver/orders: unknown engine 'dataproc'; one of local, glue, emr-serverless"),
])
def test_an_unknown_profile_or_engine_is_refused_naming_the_choices(option, value, message):
    with pytest.raises(ValueError, match=message):
        transformation(target=ORDERS, sources={"orders_raw": ORDERS_RAW}, **{option: value})


def test_a_transformation_runs_on_the_configured_compute_unless_it_pins_an_engine():
    assert orders.compute_key == "compute"
    assert dataclasses.replace(orders, engine="emr-serverless").compute_key == "compute_emr_serverless"
