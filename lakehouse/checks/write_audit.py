"""The table contracts' checks as the IO manager's write audit (lakehouse/io/write_audit.py)."""

from __future__ import annotations

import dataclasses

import dagster as dg
from pydantic import Field

from lakehouse.checks.evaluate import CheckOutcome, evaluate
from lakehouse.checks.specs import stash
from lakehouse.contracts.model import TableContract
from lakehouse.io.write_audit import AuditInput, WriteAudit


class ContractChecks(WriteAudit):
    """Every expectation of the table's contract, evaluated on the write before it is published."""

    # Share of a batch's records that may be rejected before a Silver write is refused (the limit of
    # reject_rate expectations without their own max_rate).
    reject_rate_limit: float = Field(default=0.05, ge=0, le=1)

    def audit(self, run_id: str, asset_key: dg.AssetKey, contract: TableContract, audit: AuditInput, *, wrote: bool) -> list[str]:
        outcomes = evaluate(contract, dataclasses.replace(audit, reject_rate_limit=self.reject_rate_limit))
        blocking = [o.name for o in outcomes if o.blocks]
        stash(run_id, asset_key, outcomes if wrote or blocking else _nothing_written(outcomes))
        return blocking


def _nothing_written(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    """The checks of a write that changed nothing ran on zero rows: say so, rather than let them
    read as fresh passes."""
    return [
        dataclasses.replace(o, description=f"nothing new was written (0 rows evaluated): {o.description}", metadata={**o.metadata, "evaluated_rows": 0})
        for o in outcomes
    ]
