"""Dagster metadata values as Dagster Pipes carries them: ``{"type": ..., "raw_value": ...}``.

Dagster turns them back into the same values on its side
(``dagster._core.definitions.metadata.external_metadata.metadata_value_from_external``), so a
remote write's materialization shows what a local one shows. dagster-pipes converts only plain
values itself; this covers the metadata value classes the table writer produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def to_pipes(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: _value(key, value) for key, value in metadata.items()}


def _value(key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null", "raw_value": None}
    if isinstance(value, bool):
        return {"type": "bool", "raw_value": value}
    if isinstance(value, int):
        return {"type": "int", "raw_value": value}
    if isinstance(value, float):
        return {"type": "float", "raw_value": value}
    if isinstance(value, str):
        return {"type": "text", "raw_value": value}
    if isinstance(value, dg.TableSchema):
        value = dg.MetadataValue.table_schema(value)
    if isinstance(value, dg.TableSchemaMetadataValue):
        return {"type": "table_schema", "raw_value": {"columns": [_column(c) for c in value.schema.columns]}}
    simple = {
        dg.TextMetadataValue: "text",
        dg.PathMetadataValue: "path",
        dg.UrlMetadataValue: "url",
        dg.JsonMetadataValue: "json",
        dg.IntMetadataValue: "int",
        dg.FloatMetadataValue: "float",
        dg.BoolMetadataValue: "bool",
        dg.MarkdownMetadataValue: "md",
        dg.TimestampMetadataValue: "timestamp",
    }
    for cls, kind in simple.items():
        if isinstance(value, cls):
            return {"type": kind, "raw_value": value.value}
    if isinstance(value, list | tuple | dict):  # after the metadata classes: some are tuples
        return {"type": "json", "raw_value": list(value) if not isinstance(value, dict) else value}
    raise TypeError(f"metadata {key!r}: no Dagster Pipes form for {type(value).__name__}; report it as text, a number or JSON")


def _column(column: dg.TableColumn) -> dict[str, Any]:
    constraints = column.constraints
    return {
        "name": column.name,
        "type": column.type,
        "description": column.description,
        "tags": dict(column.tags) if column.tags else None,
        "constraints": {"nullable": constraints.nullable, "unique": constraints.unique, "other": list(constraints.other)},
    }
