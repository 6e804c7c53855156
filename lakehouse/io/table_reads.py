"""Reads of a store's tables, for transformations, planning and checks: Bronze files as one
Arrow dataset, Iceberg scans pruned by day, key lookups, history and the table's state."""

from __future__ import annotations

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from lakehouse.contracts.model import Layer, TableContract
from lakehouse.io import file_rewrite
from lakehouse.io.table_appends import TableAppends
from lakehouse.io.table_store import DayRange, TableInfo


class TableReads(TableAppends):
    def key_matches(self, contract: TableContract, keys: pa.Array, branch: str | None = None) -> pa.Array:
        """The primary-key values of rows whose key is one of ``keys`` (one per row, so a duplicated
        key shows twice), reading only files whose key bounds can hold them."""
        key = contract.primary_key[0]
        table = self.load_table(contract)
        if table is None or len(keys) == 0:
            return pa.array([], contract.column(key).arrow_type())
        if branch:
            head = table.snapshot_by_name(branch)
            if head is None:
                return pa.array([], contract.column(key).arrow_type())
            # A read-only view of the table whose current snapshot is the branch head, so the
            # pruned lookup reads the branch.
            view = table.metadata.model_copy(update={"current_snapshot_id": head.snapshot_id})
            table = Table(table.name(), view, table.metadata_location, table.io, self.catalog)
        return file_rewrite.lookup(table, key, keys, [key]).rows[key].combine_chunks()

    def column(self, contract: TableContract, column: str, branch: str | None = None) -> pa.Array:
        """One column of the table (of a branch's head if given): a projected read."""
        table = self.load_table(contract)
        if table is None:
            return pa.array([], contract.column(column).arrow_type())
        snap = table.snapshot_by_name(branch) if branch else table.current_snapshot()
        if snap is None:
            return pa.array([], contract.column(column).arrow_type())
        return table.scan(snapshot_id=snap.snapshot_id, selected_fields=(column,)).to_arrow()[column].combine_chunks()

    def read(self, contract: TableContract, *, bronze_files: list[str] | None = None, days: DayRange | None = None) -> pa.Table:
        if contract.layer is Layer.bronze:
            dataset = self._bronze_dataset(contract, bronze_files)
            data = dataset.to_table() if dataset is not None else contract.arrow_schema.empty_table()
        else:
            table = self.load_table(contract)
            if table is None:
                data = contract.arrow_schema.empty_table()
            else:
                # File statistics on the column prune the scan to files that can hold those days.
                data = table.scan(row_filter=_day_filter(days) if days else AlwaysTrue()).to_arrow()
        return contract.conform(data)

    def history(self, contract: TableContract, after: int = 0) -> list[tuple[int, dict[str, str]]]:
        """(sequence number, summary) of each snapshot in main's history newer than sequence number
        ``after``, oldest first: what the table itself says changed, commit by commit."""
        table = self.load_table(contract)
        if table is None or table.current_snapshot() is None:
            return []
        changes = []
        for snap in ancestors_of(table.current_snapshot(), table.metadata):
            seq = snap.sequence_number or 0
            if seq <= after:
                break
            changes.append((seq, dict(snap.summary.additional_properties) if snap.summary else {}))
        return changes[::-1]

    def current_seq(self, contract: TableContract) -> int:
        """Sequence number of main's current snapshot (0: none yet)."""
        table = self.load_table(contract)
        snap = table.current_snapshot() if table is not None else None
        return (snap.sequence_number or 0) if snap is not None else 0

    def data_files(self, contract: TableContract, *, bronze_files: list[str] | None = None, days: DayRange | None = None) -> list[str] | None:
        """URIs of the Parquet files holding what ``read`` would return, for engines that read Parquet
        themselves (Spark), or None when the files alone would not give the right rows (delete files).

        With ``days``, the files may also hold rows of other days: the reader must filter."""
        if contract.layer is Layer.bronze:
            root = self.uri(contract).rstrip("/")
            names = self.bronze_files(contract) if bronze_files is None else bronze_files
            return [f"{root}/{name}" for name in names]
        table = self.load_table(contract)
        if table is None or table.current_snapshot() is None:
            return []
        tasks = list(table.scan(row_filter=_day_filter(days) if days else AlwaysTrue()).plan_files())
        if any(task.delete_files for task in tasks):
            return None
        return [task.file.file_path for task in tasks]

    def info(self, contract: TableContract) -> TableInfo:
        if contract.layer is Layer.bronze:
            # From the registry's running totals: no listing, no footer read.
            registry = self.bronze(contract)._registry()
            props = registry.properties if registry is not None else {}
            rows, files = int(props.get("lakehouse.records-total", 0)), int(props.get("lakehouse.files-total", 0))
            return TableInfo(contract.qualified_name, self.uri(contract), contract.mode, registry is not None, rows, files=files)
        table = self.load_table(contract)
        if table is None:
            return TableInfo(contract.qualified_name, self.uri(contract), contract.mode, False, 0)
        snap = table.current_snapshot()
        summary = dict(snap.summary.additional_properties) if snap and snap.summary else {}
        return TableInfo(
            contract.qualified_name,
            table.location(),
            contract.mode,
            True,
            int(summary.get("total-records", 0)),
            snapshot_id=snap.snapshot_id if snap else None,
            files=int(summary.get("total-data-files", 0)),
            summary=summary,
            properties=dict(table.properties),
        )


    def set_table_properties(self, contract: TableContract, properties: dict[str, str]) -> None:
        if not properties:
            return
        table = self.load_table(contract)
        if table is None:
            raise ValueError(f"{contract.qualified_name}: the table does not exist, so its properties cannot be set; build it first")
        with table.transaction() as tx:
            tx.set_properties(properties)


def _day_filter(days: DayRange) -> BooleanExpression:
    start, end = days.bounds()
    return And(GreaterThanOrEqual(days.column, start.isoformat()), LessThan(days.column, end.isoformat()))
