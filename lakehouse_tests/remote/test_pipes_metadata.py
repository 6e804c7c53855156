"""A remote write's metadata reaches Dagster as the same values a local write reports."""

import dagster as dg
from dagster._core.definitions.metadata import normalize_metadata_value
from dagster._core.definitions.metadata.external_metadata import metadata_map_from_external

from lakehouse.contracts.tables import ORDERS
from lakehouse.remote.pipes_metadata import to_pipes


def test_every_kind_of_write_metadata_comes_back_from_pipes_as_it_was_sent():
    metadata = {
        "dagster/row_count": 12,
        "dagster/column_schema": ORDERS.column_schema,
        "dagster/uri": dg.MetadataValue.path("s3://lakehouse-silver-dev/silver/orders"),
        "snapshot_id": dg.MetadataValue.text("8812734"),
        "committed": True,
        "reject_share": 0.25,
        "outcome": "refused",
        "blocking_failures": ["reject_rate_limit"],
        "changed_created_at": dg.MetadataValue.json(["2026-01-01"]),
        "audit_snapshot_id": None,
    }
    back = metadata_map_from_external(to_pipes(metadata))
    # What Dagster records for the same metadata of a local materialization:
    assert back == {key: normalize_metadata_value(value) for key, value in metadata.items()}
    assert back["dagster/column_schema"] == dg.MetadataValue.table_schema(ORDERS.column_schema)
    assert back["dagster/uri"] == dg.MetadataValue.path("s3://lakehouse-silver-dev/silver/orders")
    assert back["dagster/row_count"] == dg.MetadataValue.int(12)
    assert back["committed"] == dg.MetadataValue.bool(True)
    assert back["blocking_failures"] == dg.MetadataValue.json(["reject_rate_limit"])
    assert back["audit_snapshot_id"] == dg.MetadataValue.null()
    assert back["outcome"] == dg.MetadataValue.text("refused")


def test_a_value_pipes_cannot_carry_is_refused_naming_its_key():
    import pytest

    with pytest.raises(TypeError, match="metadata 'plot'"):
        to_pipes({"plot": object()})
