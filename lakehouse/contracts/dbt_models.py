"""Table contracts of the dbt models, read from the dbt project's manifest.

A model's schema.yml is its declaration: ``data_type`` gives each column's lakehouse type,
``config.meta.lakehouse.primary_key`` the key, a ``not_null`` test makes a column required, the
descriptions are the table's and columns'. Layer and write mode follow the model's schema (gold:
overwrite of the whole table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakehouse.contracts.model import Column, Layer, TableContract


class DbtContractError(ValueError):
    """A dbt model's schema.yml does not declare what its lakehouse table needs."""


def model_nodes(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The project's models (not those of installed packages), by name."""
    project = manifest["metadata"].get("project_name")
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["package_name"] == project]
    return sorted(nodes, key=lambda n: n["name"])


def _required_columns(manifest: Mapping[str, Any], unique_id: str) -> set[str]:
    required = set()
    for node in manifest["nodes"].values():
        test = node.get("test_metadata") or {}
        if node["resource_type"] == "test" and test.get("name") == "not_null" and node.get("attached_node") == unique_id:
            required.add(node.get("column_name") or test.get("kwargs", {}).get("column_name"))
    return required


def model_contract(manifest: Mapping[str, Any], node: Mapping[str, Any]) -> TableContract:
    where = f"dbt model {node['name']} ({node['original_file_path']} and its schema.yml)"
    layer = node["config"].get("schema") or node["schema"]
    if layer not in {x.value for x in Layer}:
        raise DbtContractError(f"{where}: schema {layer!r} is not a lakehouse layer; set `+schema: gold` for its folder")
    meta = (node["config"].get("meta") or node.get("meta") or {}).get("lakehouse", {})
    required = _required_columns(manifest, node["unique_id"])
    columns = []
    for name, column in node["columns"].items():
        if not column.get("data_type"):
            raise DbtContractError(f"{where}: column {name!r} has no data_type; give it a lakehouse type such as long or decimal(18,2)")
        try:
            # A column's `meta: {lakehouse: {pii: email}}` tags it as Python contracts do (docs/sensitive-data.md).
            tags = ((column.get("config") or {}).get("meta") or column.get("meta") or {}).get("lakehouse", {})
            columns.append(Column(
                name=name, type=column["data_type"], required=name in required, description=column.get("description") or "",
                pii=tags.get("pii"), pseudonymise=bool(tags.get("pseudonymise", False)),
            ))
        except ValueError as exc:
            raise DbtContractError(f"{where}: column {name!r}: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}") from None
    if not columns:
        raise DbtContractError(f"{where}: no columns are documented; list them with their data_type in schema.yml")
    try:
        return TableContract(
            name=node["name"],
            layer=Layer(layer),
            description=(node.get("description") or "").strip() or f"dbt model {node['name']}",
            columns=tuple(columns),
            primary_key=tuple(meta.get("primary_key", ())),
            owners=tuple(meta.get("owners", ())),
            tags={**{tag: "" for tag in node.get("tags") or ()}, **(meta.get("tags") or {})},
        )
    except ValueError as exc:
        raise DbtContractError(f"{where}: {exc}") from None


def dbt_contracts(manifest: Mapping[str, Any]) -> tuple[TableContract, ...]:
    return tuple(model_contract(manifest, n) for n in model_nodes(manifest))
