"""Iceberg tables as their contracts want them: schema evolution (what may change without a rewrite,
and the refusal, naming table and column, of what may not) and the table properties the merge
relies on. Shared by both table stores: tables are created and evolved through pyiceberg whichever
engine then writes them."""

from __future__ import annotations

from pyiceberg import types as it
from pyiceberg.table import Table

from lakehouse.contracts.model import SchemaEvolutionError, TableContract


def full_key_bounds(contract: TableContract) -> dict[str, str]:
    # Untruncated key bounds in the manifests: the merge prunes files by them, and keys longer than
    # the default truncate(16) that share a prefix (e.g. "order-2026-01-01-...") would otherwise all
    # get the same bounds.
    return {f"write.metadata.metrics.column.{contract.primary_key[0]}": "full"}


# Type changes Iceberg allows without rewriting data (a reader widens old values).
_WIDENINGS = {("int", "long"), ("float", "double")}


def evolve_schema(contract: TableContract, table: Table) -> Table:
    """Bring an existing table's schema to its contract: new optional columns are added (old rows
    read them as null) and types widened where Iceberg allows; anything else is refused with a
    message naming the table, column and change. No data file is rewritten."""
    where = contract.qualified_name
    current = {f.name: f for f in table.schema().fields}
    wanted = contract.iceberg_schema
    changes = []
    for field in wanted.fields:
        have = current.get(field.name)
        if have is None:
            if field.required:
                raise SchemaEvolutionError(f"{where}: new column {field.name!r} is required; existing rows have no value for it, so add it as optional")
            changes.append(("add", field))
            continue
        if have.field_type != field.field_type:
            pair = (str(have.field_type), str(field.field_type))
            widen_decimal = (
                isinstance(have.field_type, it.DecimalType) and isinstance(field.field_type, it.DecimalType)
                and have.field_type.scale == field.field_type.scale and field.field_type.precision > have.field_type.precision
            )
            if pair not in _WIDENINGS and not widen_decimal:
                raise SchemaEvolutionError(f"{where}: column {field.name!r} is {have.field_type} in the table but {field.field_type} in the contract; only widening (int->long, float->double, larger decimal precision) is allowed")
            changes.append(("type", field))
        if field.required and not have.required:
            raise SchemaEvolutionError(f"{where}: column {field.name!r} is optional in the table; making it required would break rows that hold nulls")
        if have.required and not field.required:
            changes.append(("optional", field))
    removed = sorted(set(current) - {f.name for f in wanted.fields})
    if removed:
        raise SchemaEvolutionError(f"{where}: column(s) {', '.join(removed)} are in the table but not in the contract; dropping columns is not supported")
    if not changes:
        return table
    with table.update_schema() as update:
        for kind, field in changes:
            if kind == "add":
                update.add_column(field.name, field.field_type, doc=field.doc)
            elif kind == "type":
                update.update_column(field.name, field_type=field.field_type)
            else:
                update.make_column_optional(field.name)
    return table.refresh()
