"""``@expect``: declare an expectation right on a transformation, next to the logic it guards."""

from __future__ import annotations

from collections.abc import Callable

from lakehouse.contracts.expectations import Expectation, Severity, sql
from lakehouse.contracts.model import TableContract

_DECLARED: dict[str, list[Expectation]] = {}


def expect(expression: str, severity: Severity | str = Severity.error, name: str | None = None) -> Callable:
    """Every row the transformation writes must satisfy the SQL ``expression``.

        @expect("amount >= 0", severity="WARN")
        @transformation(target=ORDERS, sources=...)
        def orders(...): ...
    """

    def attach(t):
        rule = sql(expression, severity=Severity(severity), name=name or _name(expression))
        _DECLARED.setdefault(t.key, []).append(rule)
        return t

    return attach


def expectations_for(contract: TableContract) -> tuple[Expectation, ...]:
    """The contract's expectations plus those declared on its transformation."""
    return (*contract.all_expectations, *_DECLARED.get(contract.asset_key.to_user_string(), ()))


def _name(expression: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in expression.lower())
    return "expect_" + "_".join(part for part in cleaned.split("_") if part)[:60]
