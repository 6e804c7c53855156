"""Dagster asset-check specs from the expectations of a table (their results: io.write_audit.CheckOutcome)."""

from __future__ import annotations

import dagster as dg

from lakehouse.checks.evaluate import describe
from lakehouse.checks.expect import expectations_for
from lakehouse.contracts.expectations import Severity
from lakehouse.contracts.model import TableContract


def check_specs(contract: TableContract) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name=e.check_name,
            asset=contract.asset_key,
            description=f"{describe(e)} ({e.severity.value})",
            blocking=e.severity is Severity.error,
        )
        for e in expectations_for(contract)
    ]
