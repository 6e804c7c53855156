"""Contract changes reach existing tables: additive ones applied in place, others refused clearly."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse.contracts.model import Column, Layer, SchemaEvolutionError, TableContract
from lakehouse.io.table_store import CommitStamp

STAMP = CommitStamp(run_id="r", asset_key="gold/evolving")


def version(*extra: Column, amount: str = "int", amount_required: bool = False) -> TableContract:
    return TableContract(
        name="evolving", layer=Layer.gold, description="d",
        columns=(Column(name="id", type="string", required=True), Column(name="amount", type=amount, required=amount_required), *extra),
        primary_key=("id",),
    )


def test_a_new_optional_column_is_added_without_rewriting_data(table_store):
    v1 = version()
    table_store.overwrite(v1, pa.table({"id": ["a", "b"], "amount": pa.array([1, 2], pa.int32())}), STAMP)
    files = {t.file.file_path for t in table_store.load_table(v1).scan().plan_files()}
    v2 = version(Column(name="note", type="string"))
    table = table_store.ensure_table(v2)
    assert [f.name for f in table.schema().fields] == ["id", "amount", "note"]
    assert {t.file.file_path for t in table.scan().plan_files()} == files  # no data file rewritten
    assert table_store.read(v2).column("note").to_pylist() == [None, None]


def test_widening_a_type_is_allowed(table_store):
    table_store.overwrite(version(), pa.table({"id": ["a"], "amount": pa.array([1], pa.int32())}), STAMP)
    table = table_store.ensure_table(version(amount="long"))
    assert str(table.schema().find_field("amount").field_type) == "long"


@pytest.mark.parametrize(
    "changed, message",
    [
        (version(amount="string"), "gold.evolving: column 'amount' is int in the table but string in the contract"),
        (version(Column(name="must", type="string", required=True)), "gold.evolving: new column 'must' is required"),
        (version(amount_required=True), "gold.evolving: column 'amount' is optional in the table"),
        (TableContract(name="evolving", layer=Layer.gold, description="d", columns=(Column(name="id", type="string", required=True),), primary_key=("id",)),
         "gold.evolving: column(s) amount are in the table but not in the contract"),
    ],
)
def test_incompatible_changes_are_refused_naming_table_and_column(table_store, changed, message):
    table_store.overwrite(version(), pa.table({"id": ["a"], "amount": pa.array([1], pa.int32())}), STAMP)
    with pytest.raises(SchemaEvolutionError) as err:
        table_store.overwrite(changed, pa.table({"id": ["b"], "amount": pa.array([2], pa.int32())}), STAMP)
    assert message in str(err.value)
    assert table_store.read(version()).column("id").to_pylist() == ["a"]  # nothing written
