"""What a table write asks of the checks: audit one write, return each check's outcome.

The checks live a floor up (lakehouse/checks); the table writer gets them as a resource of this
type (``lakehouse.checks.write_audit.ContractChecks``), so io never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa

from lakehouse.contracts.expectations import Severity
from lakehouse.contracts.model import TableContract


@dataclass(frozen=True)
class AuditInput:
    """What one write knows about itself."""

    written: pa.Table  # rows added by the write (merge: inserted/updated rows; overwrite: all rows)
    row_count_before: int | None
    row_count_after: int
    # the new snapshot's key values for the given keys (one per row holding them), for merges
    key_column: Callable[[pa.Array], pa.Array] | None = None
    lookup: Callable[[str, str], pa.Array] | None = None  # (layer/table, column) -> values, for relationships
    records_read: int | None = None  # records the transformation read (Bronze increment)
    records_rejected: int | None = None
    reject_rate_limit: float = 0.05  # for reject_rate expectations without their own max_rate
    # The batch's files with the most rejected records, (file, rejects), most first: called only
    # when a reject-rate check fails, so its cost (validating the batch again) is paid only then.
    reject_files: Callable[[], list[tuple[str, int]] | None] | None = None


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result on one write: an asset check result in Dagster, wherever the write ran."""

    name: str
    passed: bool
    severity: Severity
    description: str
    metadata: dict = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return not self.passed and self.severity is Severity.error

    def check_result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=self.passed,
            severity=dg.AssetCheckSeverity.ERROR if self.severity is Severity.error else dg.AssetCheckSeverity.WARN,
            description=self.description,
            metadata=self.metadata,
        )


class WriteAudit(dg.ConfigurableResource):
    """Evaluates a table's checks on one write; a blocking check that fails keeps the write from
    being published."""

    def audit(self, contract: TableContract, audit: AuditInput, *, wrote: bool) -> list[CheckOutcome]:
        """``wrote`` False: the write changed nothing, and its checks ran on zero rows."""
        raise NotImplementedError(f"{type(self).__name__} does not audit writes: give the IO manager lakehouse.checks.write_audit.ContractChecks")
