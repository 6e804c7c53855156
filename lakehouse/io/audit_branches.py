"""Write-audit-publish on Iceberg branches, written once for both table stores: a branch per
write (named by ``audit_branch_name``), started at main, published by one catalog commit that moves
main to the branch's head, sets the write's table properties (its watermark) and removes the branch,
asserting that neither ref moved meanwhile. The commits are catalog metadata, whatever engine wrote
the data files on the branch (pyiceberg and Arrow, or Spark)."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import secrets
import time

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import ancestors_of
from pyiceberg.table.update import (
    AssertRefSnapshotId,
    AssertTableUUID,
    RemoveSnapshotRefUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableRequirement,
    TableUpdate,
)


def at_branch(table: Table, branch: str) -> Table:
    """A read-only view of ``table`` whose current snapshot is the head of ``branch``.

    The branch must exist (start_audit makes it): a commit to a missing branch would start it with
    no parent, holding this write's rows alone, and a newer audit may have removed it as stale."""
    head = table.snapshot_by_name(branch)
    if head is None:
        raise CommitFailedException(f"{'.'.join(table.name())}: audit branch {branch!r} no longer exists; run the write again")
    view = table.metadata.model_copy(update={"current_snapshot_id": head.snapshot_id})
    return Table(table.name(), view, table.metadata_location, table.io, table.catalog)


# A published write removes its branch; a blocked, refused or crashed one keeps it for inspection.
# So that those do not pile up, each new audit removes the table's audit branches of the same
# prefix beyond the KEPT_AUDIT_BRANCHES most recently started (by the start time in their names).
# A write still running on a branch removed this way fails safely: its commits and its publish
# find the branch gone and refuse, nothing of it is published.
KEPT_AUDIT_BRANCHES = 3
_AUDIT_BRANCH = re.compile(r"^(?P<prefix>.+?)-(?P<started>\d{8}t\d{9}z)-")


def audit_branch_name(prefix: str, writer: str, started: dt.datetime | None = None) -> str:
    """A branch of its own for one audited write: ``<prefix>-<UTC start to the ms>-<writer>-<random>``,
    e.g. ``audit-20260101t101500123z-<run id>-3f9a1c``.

    Lower-case letters, digits and dashes only, a ref name every engine accepts; the start time
    first, so names sort in the order the audits started; the random tail tells two attempts of
    one writer (a retried step) apart."""
    started = (started or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    when = started.strftime("%Y%m%dt%H%M%S") + f"{started.microsecond // 1000:03d}z"
    safe = re.sub(r"[^a-z0-9]+", "-", writer.lower()).strip("-")
    return f"{prefix}-{when}-{safe}-{secrets.token_hex(3)}"


def stale_audit_branches(refs, branch: str) -> list[str]:
    """Audit branches with ``branch``'s prefix, other than ``branch``, beyond the KEPT_AUDIT_BRANCHES
    most recently started."""
    mine = _AUDIT_BRANCH.match(branch)
    if mine is None:
        return []  # a fixed name (tests, a hand-made branch): nothing to clean up after
    others = sorted(
        (found["started"], name)
        for name in refs
        if name != branch and (found := _AUDIT_BRANCH.match(name)) and found["prefix"] == mine["prefix"]
    )
    return [name for _, name in others[: max(0, len(others) - KEPT_AUDIT_BRANCHES)]]


def with_first_snapshot(table: Table, schema: pa.Schema) -> Table:
    """``table``, given an empty first snapshot if it has none: Iceberg branches start from a
    snapshot (readers already saw the table as empty)."""
    if table.current_snapshot() is None:
        table.append(schema.empty_table())
        table = table.refresh()
    return table


def start_branch(table: Table, branch: str) -> int:
    """Point ``branch`` at main's current snapshot and remove stale audit branches, in one commit;
    returns main's snapshot id."""
    base = table.current_snapshot().snapshot_id
    refs = table.refs()
    updates: list[TableUpdate] = [RemoveSnapshotRefUpdate(ref_name=name) for name in stale_audit_branches(refs, branch)]
    if branch in refs:
        updates.append(RemoveSnapshotRefUpdate(ref_name=branch))
    updates.append(SetSnapshotRefUpdate(ref_name=branch, type=SnapshotRefType.BRANCH, snapshot_id=base))
    # The branch is as this write last saw it (absent, or an earlier attempt's): two writers never
    # both make the same branch.
    commit_refs(table, updates, [AssertRefSnapshotId(ref=branch, snapshot_id=refs[branch].snapshot_id if branch in refs else None)])
    return base


def lineage(table: Table, snapshot_id: int) -> set[int]:
    """``snapshot_id`` and its ancestors."""
    snapshot = table.metadata.snapshot_by_id(snapshot_id)
    return {s.snapshot_id for s in ancestors_of(snapshot, table.metadata)} if snapshot is not None else set()


def check_fast_forward(where: str, table: Table, branch: str, base: int, head: int) -> None:
    """Refuse, with what happened and what to do, unless ``branch`` is at ``head``, main at ``base``
    and ``head`` descends from ``base``."""
    at = table.snapshot_by_name(branch)
    at = at.snapshot_id if at is not None else None
    if at != head:
        raise CommitFailedException(
            f"{where}: branch {branch!r} is at snapshot {at}, not {head} that this write produced (another writer used "
            "the branch); nothing published, run the write again"
        )
    main = table.current_snapshot().snapshot_id if table.current_snapshot() is not None else None
    if main != base:
        raise CommitFailedException(
            f"{where}: main moved from snapshot {base} to {main} since the audit began; branch {branch!r} not published, "
            "run the write again"
        )
    if base not in lineage(table, head):
        raise CommitFailedException(
            f"{where}: snapshot {head} on branch {branch!r} does not descend from main's {base}; nothing published, "
            "run the write again"
        )


def fast_forward(table: Table, branch: str, base: int, head: int, properties: dict[str, str]) -> None:
    """One commit: main from ``base`` to ``head``, ``properties`` set, ``branch`` removed; the
    catalog refuses it unless main is still at ``base`` and the branch still at ``head``."""
    updates: list[TableUpdate] = []
    if head != base:
        updates.append(SetSnapshotRefUpdate(ref_name=MAIN_BRANCH, type=SnapshotRefType.BRANCH, snapshot_id=head))
    if properties:
        updates.append(SetPropertiesUpdate(updates=properties))
    updates.append(RemoveSnapshotRefUpdate(ref_name=branch))
    commit_refs(table, updates, [AssertRefSnapshotId(ref=MAIN_BRANCH, snapshot_id=base), AssertRefSnapshotId(ref=branch, snapshot_id=head)])


REF_COMMIT_ATTEMPTS = 5


def commit_refs(table: Table, updates: list[TableUpdate], requirements: list[TableRequirement]) -> None:
    """Commit ``updates`` asserting ``requirements``, straight to the catalog.

    Not through a pyiceberg Transaction: it keeps one requirement of each type, so of two
    AssertRefSnapshotId (main and a branch) it would silently drop the second."""
    asserted = (AssertTableUUID(uuid=table.metadata.table_uuid), *requirements)
    for attempt in range(1, REF_COMMIT_ATTEMPTS + 1):
        try:
            table.catalog.commit_table(table, asserted, tuple(updates))
            return
        except CommitFailedException:
            # Also raised when any other commit landed between the catalog's read and its swap (a
            # writer on its own branch, say): try again while every requirement still holds. One
            # that no longer holds raises here, for good.
            if attempt == REF_COMMIT_ATTEMPTS:
                raise
            table = table.refresh()
            for requirement in asserted:
                requirement.validate(table.metadata)
            time.sleep(backoff(attempt))


@contextlib.contextmanager
def conflicts_as_commit_failures():
    """A commit to a branch asserts only that branch's ref. When another writer committed a
    snapshot of the table on another branch meanwhile, pyiceberg finds this commit's sequence
    number taken and raises ValueError: the same conflict as a moved ref, so the same retry."""
    try:
        yield
    except ValueError as exc:
        if str(exc).startswith(("Cannot add snapshot with sequence number", "Snapshot with id")):
            raise CommitFailedException(f"another writer committed to the table meanwhile ({exc})") from exc
        raise


MERGE_ATTEMPTS = 5  # plans of one write before a run of concurrent commits is reported as a failure


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter, so writers that collided do not collide again in step."""
    return min(5.0, 0.1 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
