"""Dagster asset-check specs and results from the expectations of a table."""

from __future__ import annotations

import dagster as dg

from lakehouse.checks.evaluate import CheckOutcome, describe
from lakehouse.checks.expect import expectations_for
from lakehouse.contracts.expectations import Severity
from lakehouse.contracts.model import TableContract

# Outcomes computed by the IO manager during a write, picked up by the asset body that yields
# them as check results. Both run in the step's process, one after the other.
_OUTCOMES: dict[tuple[str, str], list[CheckOutcome]] = {}


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


def stash(run_id: str, asset_key: dg.AssetKey, outcomes: list[CheckOutcome]) -> None:
    _OUTCOMES[(run_id, asset_key.to_user_string())] = outcomes


def check_results(run_id: str, asset_key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    outcomes = _OUTCOMES.pop((run_id, asset_key.to_user_string()), [])
    return [
        dg.AssetCheckResult(
            check_name=o.name,
            asset_key=asset_key,
            passed=o.passed,
            severity=dg.AssetCheckSeverity.ERROR if o.severity is Severity.error else dg.AssetCheckSeverity.WARN,
            description=o.description,
            metadata=o.metadata,
        )
        for o in outcomes
    ]
