"""Table contracts: one declaration per table, from which every schema and check is derived."""

from __future__ import annotations

import re
from enum import Enum
from functools import cached_property

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pyiceberg import types as it
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform

from lakehouse.contracts.expectations import Expectation, unique
from lakehouse.contracts.maintenance import DEFAULT_POLICIES, MaintenancePolicy
from lakehouse.contracts.sensitive import PII_KINDS


class Layer(str, Enum):
    bronze = "bronze"
    silver = "silver"
    gold = "gold"


class WriteMode(str, Enum):
    append = "append"  # Bronze: Parquet, new files only
    merge = "merge"  # Silver: Iceberg merge on the primary key
    overwrite = "overwrite"  # Gold: Iceberg overwrite of the table or one partition


DEFAULT_WRITE_MODE = {Layer.bronze: WriteMode.append, Layer.silver: WriteMode.merge, Layer.gold: WriteMode.overwrite}

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_OWNER_TEAM = re.compile(r"^team:[A-Za-z0-9_-]+$")
_OWNER_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SIMPLE_TYPES = {"string", "long", "int", "double", "boolean", "date", "timestamptz"}


class Column(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    required: bool = False
    description: str = ""
    # The kind of personal data the column holds (docs/sensitive-data.md): its values are masked
    # wherever they could be shown, and the tag shows in Dagster's column schema.
    pii: str | None = None
    # Store a keyed hash of each value instead of the value (a pii string column only).
    pseudonymise: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in _SIMPLE_TYPES and not _DECIMAL.match(value):
            raise ValueError(f"unknown column type {value!r}; use one of {sorted(_SIMPLE_TYPES)} or decimal(p,s)")
        return value

    @model_validator(mode="after")
    def _sensitive(self) -> Column:
        if self.pii is not None and self.pii not in PII_KINDS:
            raise ValueError(f"column {self.name!r}: unknown pii kind {self.pii!r}; use one of {', '.join(PII_KINDS)}")
        if self.pseudonymise and self.pii is None:
            raise ValueError(f"column {self.name!r}: pseudonymise needs a pii kind (pii='email', ...): only tagged columns are pseudonymised")
        if self.pseudonymise and self.type != "string":
            # A pseudonym is text: a column of another type could not hold it.
            raise ValueError(f"column {self.name!r}: only a string column can be pseudonymised, not {self.type}")
        return self

    def iceberg_type(self) -> it.IcebergType:
        if m := _DECIMAL.match(self.type):
            return it.DecimalType(int(m[1]), int(m[2]))
        return {
            "string": it.StringType(),
            "long": it.LongType(),
            "int": it.IntegerType(),
            "double": it.DoubleType(),
            "boolean": it.BooleanType(),
            "date": it.DateType(),
            "timestamptz": it.TimestamptzType(),
        }[self.type]

    def arrow_type(self) -> pa.DataType:
        if m := _DECIMAL.match(self.type):
            return pa.decimal128(int(m[1]), int(m[2]))
        return {
            "string": pa.large_string(),
            "long": pa.int64(),
            "int": pa.int32(),
            "double": pa.float64(),
            "boolean": pa.bool_(),
            "date": pa.date32(),
            "timestamptz": pa.timestamp("us", tz="UTC"),
        }[self.type]

    def spark_type(self):
        from pyspark.sql import types as st

        if m := _DECIMAL.match(self.type):
            return st.DecimalType(int(m[1]), int(m[2]))
        return {
            "string": st.StringType(),
            "long": st.LongType(),
            "int": st.IntegerType(),
            "double": st.DoubleType(),
            "boolean": st.BooleanType(),
            "date": st.DateType(),
            "timestamptz": st.TimestampType(),
        }[self.type]


class TableContract(BaseModel):
    """What a table is: its columns, key, partitioning, layer and how it is written.

    ``sequence_by`` (merge tables): the column whose highest value wins per key; without it a key
    already in the table is never changed (landing records are immutable).
    ``delete_flag`` (merge tables): a boolean column the transformation adds to mark a delete
    event; it drives the merge and is not stored.
    ``change_columns`` (merge tables): columns whose values on changed rows, before and after, the
    merge reports, so downstream partitions can be recomputed selectively.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    layer: Layer
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    sequence_by: str | None = None
    delete_flag: str | None = None
    change_columns: tuple[str, ...] = ()
    write_mode: WriteMode | None = None
    expectations: tuple[Expectation, ...] = ()
    maintenance: MaintenancePolicy | None = None  # None: the layer's default (contracts/maintenance.py)
    # Who answers for the table (Dagster owners: an e-mail address or "team:<name>"), and tags
    # (key -> value; "" for a label) shown in the Dagster catalog. Pairs, so the contract stays hashable.
    owners: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_pairs(cls, value):
        return tuple(sorted(value.items())) if isinstance(value, dict) else value

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for owner in value:
            if not (_OWNER_TEAM.match(owner) or _OWNER_EMAIL.match(owner)):
                raise ValueError(f"owner {owner!r} is neither an e-mail address nor 'team:<name>' (Dagster's two kinds of owner)")
        return value

    @property
    def catalog_tags(self) -> dict[str, str]:
        """The Dagster asset tags: the contract's, plus its layer and whether it holds personal data."""
        tags = {"lakehouse/layer": self.layer.value, **dict(self.tags)}
        if any(c.pii for c in self.columns):
            tags["lakehouse/pii"] = ""  # a label: the table holds personal data (its columns say which)
        return tags

    @model_validator(mode="after")
    def _consistent(self) -> TableContract:
        where = f"table contract {self.layer.value}/{self.name}"
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: duplicate column names")
        expected = [c for e in self.expectations for c in e.columns]
        for ref in (*self.primary_key, *self.partition_by, *self.change_columns, *expected, *([self.sequence_by] if self.sequence_by else [])):
            if ref not in names:
                raise ValueError(f"{where}: column {ref!r} is referenced but not declared")
        if self.delete_flag and not self.sequence_by:
            raise ValueError(f"{where}: a delete flag needs a sequence_by column to order deletes")
        if self.delete_flag and self.delete_flag in names:
            raise ValueError(f"{where}: delete flag {self.delete_flag!r} must not be a stored column")
        mode = self.mode
        if mode is WriteMode.merge:
            if len(self.primary_key) != 1:
                raise ValueError(f"{where}: a merge table needs exactly one primary-key column")
            key = self.column(self.primary_key[0])
            if key.type in ("double",):
                # Float keys compare unreliably (rounding, NaN), so a merge on them is refused.
                raise ValueError(f"{where}: primary key {key.name!r} is of float type; use an exact type")
        for key in self.primary_key:
            if not self.column(key).required:
                raise ValueError(f"{where}: primary-key column {key!r} must be required")
        if self.sequence_by and self.column(self.sequence_by).pseudonymise:
            # Pseudonyms keep equality, not order: the latest row per key could not be told.
            raise ValueError(f"{where}: sequence_by column {self.sequence_by!r} cannot be pseudonymised")
        return self

    @property
    def all_expectations(self) -> tuple[Expectation, ...]:
        """Declared expectations plus those the contract implies: required columns are not null
        (in the rows written), the primary key is unique."""
        required = tuple(c.name for c in self.columns if c.required)
        implied = [Expectation(kind="not_null", columns=required, name="required_columns_not_null")] if required else []
        if self.primary_key:
            implied.append(unique(*self.primary_key))
        return (*implied, *self.expectations)

    @property
    def maintenance_policy(self) -> MaintenancePolicy:
        return self.maintenance or DEFAULT_POLICIES[self.layer.value]

    @property
    def mode(self) -> WriteMode:
        return self.write_mode or DEFAULT_WRITE_MODE[self.layer]

    @property
    def qualified_name(self) -> str:
        return f"{self.layer.value}.{self.name}"

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.layer.value, self.name])

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.layer.value}/{self.name} has no column {name!r}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def iceberg_schema(self) -> Schema:
        fields = [
            it.NestedField(field_id=i, name=c.name, field_type=c.iceberg_type(), required=c.required, doc=c.description or None)
            for i, c in enumerate(self.columns, start=1)
        ]
        key_ids = [i for i, c in enumerate(self.columns, start=1) if c.name in self.primary_key]
        return Schema(*fields, identifier_field_ids=key_ids)

    def partition_spec(self, schema: Schema | None = None) -> PartitionSpec:
        schema = schema or self.iceberg_schema
        return PartitionSpec(
            *(
                PartitionField(source_id=schema.find_field(col).field_id, field_id=1000 + i, transform=IdentityTransform(), name=col)
                for i, col in enumerate(self.partition_by)
            )
        )

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type(), nullable=not c.required) for c in self.columns])

    @property
    def spark_schema(self):
        from pyspark.sql import types as st

        return st.StructType([st.StructField(c.name, c.spark_type(), nullable=not c.required) for c in self.columns])

    @property
    def column_schema(self) -> dg.TableSchema:
        return dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=c.name,
                    type=c.type,
                    description=c.description or None,
                    constraints=dg.TableColumnConstraints(nullable=not c.required, unique=self.primary_key == (c.name,)),
                    tags={"pii": c.pii, **({"pseudonymised": "true"} if c.pseudonymise else {})} if c.pii else None,
                )
                for c in self.columns
            ]
        )

    def conform(self, data: pa.Table) -> pa.Table:
        """Return ``data`` with exactly the contract's columns and types, or fail naming the problem.

        Extra columns are dropped (the delete flag is kept for merges). Nothing is written on failure.
        """
        where = f"{self.layer.value}/{self.name}"
        present = set(data.column_names)
        missing = [c for c in self.column_names if c not in present]
        if missing:
            raise ContractViolation(f"{where}: output is missing column(s) {', '.join(missing)}")
        arrays, fields = [], []
        deleting = None
        if self.delete_flag and self.delete_flag in present:
            # Delete events carry only the key and sequence; other required columns may be null there.
            deleting = pc.fill_null(data[self.delete_flag].cast(pa.bool_()), False)
        for column, field in zip(self.columns, self.arrow_schema):
            values = data[column.name]
            if values.type != field.type:
                try:
                    values = values.cast(field.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    # Arrow's message quotes the value it could not cast: a tagged column's is not shown.
                    detail = f"the value is not shown: the column is tagged pii {column.pii}" if column.pii else str(exc)
                    raise ContractViolation(
                        f"{where}: column {column.name!r} has type {values.type}, contract says {column.type} ({detail})"
                    ) from (None if column.pii else exc)
            exempt = deleting is not None and column.name not in (*self.primary_key, self.sequence_by)
            nulls = pc.sum(pc.and_(pc.is_null(values), pc.invert(deleting))).as_py() if exempt else values.null_count
            if column.required and nulls:
                raise ContractViolation(f"{where}: required column {column.name!r} has {nulls} null value(s)")
            arrays.append(values)
            fields.append(field.with_nullable(True) if exempt else field)
        if self.delete_flag and self.delete_flag in present:
            arrays.append(data[self.delete_flag].cast(pa.bool_()))
            fields.append(pa.field(self.delete_flag, pa.bool_()))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class ContractViolation(ValueError):
    """Data does not match its table contract."""


class SchemaEvolutionError(ContractViolation):
    """A contract changed in a way its existing table cannot follow."""
