"""Write-audit-publish of a store's tables: each audited write gets a branch of its own
(audit_branch_name), on the table and, for a table with deletes, on its tombstones table, so nothing
the write changes reaches a main before publish (the protocol itself: io/audit_branches.py)."""

from __future__ import annotations

from pyiceberg.exceptions import (
    CommitFailedException,
)

from lakehouse.contracts.model import TableContract
from lakehouse.io.audit_branches import (
    check_fast_forward,
    fast_forward,
    lineage,
    start_branch,
    with_first_snapshot,
)
from lakehouse.io.iceberg_tables import IcebergTables
from lakehouse.io.merge_rules import tombstone_schema


class AuditedTables(IcebergTables):
    # Each audited write has a branch of its own (audit_branch_name), on the table and, for a table
    # with deletes, on its tombstones table: nothing the write changes reaches a main before publish.
    def start_audit(self, contract: TableContract, branch: str) -> int:
        """Point ``branch`` of the table (and of its tombstones table) at main's current snapshot,
        replacing what an earlier attempt of the same name left there, and remove the table's stale
        audit branches (KEPT_AUDIT_BRANCHES). Returns main's snapshot id: the base ``publish``
        expects main still to be at."""
        table = with_first_snapshot(self.ensure_table(contract), contract.arrow_schema)  # makes the namespace too
        if contract.delete_flag:
            start_branch(with_first_snapshot(self._tombstones(contract), tombstone_schema(contract)), branch)
        return start_branch(table, branch)

    def publish(self, contract: TableContract, branch: str, table_properties: dict[str, str], *, base: int, head: int) -> int:
        """Move main from ``base`` to ``head``, the snapshot this write produced on ``branch``, set
        ``table_properties`` (the watermark) and remove the branch. Returns main's new snapshot id.

        Refused (CommitFailedException, nothing published) unless the branch is still at ``head``,
        main still at ``base`` and ``head`` descends from ``base``: otherwise another writer moved
        one of them, and publishing would drop its work or publish a snapshot under this write's
        watermark. The write's tombstones are published first, then data and watermark in one
        commit; a crash between the two leaves only tombstones published, which is harmless: the
        watermark did not move, so the batch is applied again and its deletes apply again (the
        rows' own sequence is older, lakehouse/io/merge_rules.py)."""
        table = self.load_table(contract)
        if table is None:
            raise CommitFailedException(f"{contract.qualified_name}: the table does not exist; nothing to publish from branch {branch!r}, run the write again")
        check_fast_forward(contract.qualified_name, table, branch, base, head)
        if contract.delete_flag:
            self._publish_tombstones(contract, branch)
        fast_forward(table, branch, base, head, table_properties)
        return head

    def _publish_tombstones(self, contract: TableContract, branch: str) -> None:
        """Move the tombstones table's main to its ``branch`` (and remove the branch), if main has not
        moved since the branch was made (one commit asserting both refs)."""
        where = f"{contract.qualified_name}__tombstones"
        tombs = self.load_table(contract, "__tombstones")
        head = tombs.snapshot_by_name(branch) if tombs is not None else None
        if head is None:  # start_audit made it: gone means removed as stale, so its deletes are unknown
            raise CommitFailedException(f"{where}: audit branch {branch!r} no longer exists; nothing published, run the write again")
        main = tombs.current_snapshot().snapshot_id
        if main not in lineage(tombs, head.snapshot_id):
            raise CommitFailedException(
                f"{where}: main moved to snapshot {main} since the audit began (another write published deletes); "
                f"branch {branch!r} not published, run the write again"
            )
        fast_forward(tombs, branch, main, head.snapshot_id, {})
