"""The table store on pyiceberg and Arrow: runs wherever Python runs (local disk or S3).

Composed of one module per job, shared with the Spark store (io/spark_store.py) where the job is
the same: iceberg_tables (locations, creation, schema evolution), table_appends (Bronze), table_reads,
audited_tables (write-audit-publish); its own are arrow_merge and the overwrite below."""

from __future__ import annotations

from functools import reduce

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, In
from pyiceberg.table.refs import MAIN_BRANCH

from lakehouse.contracts.model import TableContract
from lakehouse.io.arrow_merge import ArrowMerge
from lakehouse.io.audit_branches import (
    at_branch,
    conflicts_as_commit_failures,
)
from lakehouse.io.audited_tables import AuditedTables
from lakehouse.io.table_maintenance import TableMaintenance
from lakehouse.io.table_reads import TableReads
from lakehouse.io.table_store import CommitStamp, TableStore, WriteResult, arrow_rows_outside, partition_values


class ArrowTableStore(TableReads, AuditedTables, ArrowMerge, TableMaintenance, TableStore):
    """Iceberg tables through a pyiceberg catalog; Bronze as Hive-partitioned Parquet through Arrow."""

    def overwrite(
        self, contract: TableContract, data: pa.Table, stamp: CommitStamp, partition: dict | None = None, branch: str | None = None
    ) -> WriteResult:
        table = self.ensure_table(contract)
        data = contract.conform(data)
        condition: BooleanExpression = AlwaysTrue()
        terms = [EqualTo(c, v[0]) if len(v) == 1 else In(c, v) for c, v in partition_values(contract, partition, arrow_rows_outside(data)).items()]
        if terms:
            condition = reduce(And, terms) if len(terms) > 1 else terms[0]
        if branch:
            at_branch(table, branch)  # the branch must still exist: a commit would start a missing one empty
        with self._storage_errors(contract), conflicts_as_commit_failures(), table.transaction() as tx:
            tx.overwrite(data, overwrite_filter=condition, snapshot_properties=stamp.properties(), branch=branch or MAIN_BRANCH)
            if stamp.table_properties:
                tx.set_properties(stamp.table_properties)
        return self._result(contract, table, data.num_rows, branch=branch, written_rows=data)
