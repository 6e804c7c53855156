"""The table contracts' checks as the IO manager's write audit (lakehouse/io/write_audit.py)."""

from __future__ import annotations

import dataclasses

from pydantic import Field

from lakehouse.checks.evaluate import evaluate
from lakehouse.contracts.model import TableContract
from lakehouse.io.write_audit import AuditInput, CheckOutcome, WriteAudit


class ContractChecks(WriteAudit):
    """Every expectation of the table's contract, evaluated on the write before it is published."""

    # Share of a batch's records that may be rejected before a Silver write is refused (the limit of
    # reject_rate expectations without their own max_rate).
    reject_rate_limit: float = Field(default=0.05, ge=0, le=1)

    def audit(self, contract: TableContract, audit: AuditInput, *, wrote: bool) -> list[CheckOutcome]:
        outcomes = evaluate(contract, dataclasses.replace(audit, reject_rate_limit=self.reject_rate_limit))
        return outcomes if wrote or any(o.blocks for o in outcomes) else _nothing_written(outcomes)


def _nothing_written(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    """The checks of a write that changed nothing ran on zero rows: say so, rather than let them
    read as fresh passes."""
    return [
        dataclasses.replace(o, description=f"nothing new was written (0 rows evaluated): {o.description}", metadata={**o.metadata, "evaluated_rows": 0})
        for o in outcomes
    ]
