"""The transformation registry: a runner finds each transformation by its asset key."""

from __future__ import annotations

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
