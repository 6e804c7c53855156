"""Expectations: what a table's data must satisfy, declared with its contract, checked on every write."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Severity(str, Enum):
    error = "ERROR"  # blocking: the write is not published and downstream assets do not run
    warn = "WARN"  # reported, never blocks


class Expectation(BaseModel):
    """One rule. ``kind`` says which; the other fields are its parameters.

    - ``not_null`` / ``unique`` (column(s)); ``accepted_values`` (column, values);
      ``range`` (column, min and/or max); ``sql`` (a boolean SQL expression each row must satisfy);
    - ``relationship``: every non-null ``column`` value exists in ``to_table``'s ``to_column``;
    - ``row_count_change``: the table's row count may not fall by more than ``max_drop`` (a fraction)
      versus the previous snapshot;
    - ``freshness``: the newest ``column`` value is at most ``max_age_hours`` old;
    - ``reject_rate``: at most ``max_rate`` (None: the configured limit) of the records this write
      read were rejected.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["not_null", "unique", "accepted_values", "range", "sql", "relationship", "row_count_change", "freshness", "reject_rate"]
    name: str | None = None
    columns: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    sql: str | None = None
    to_table: str | None = None  # "layer/name"
    to_column: str | None = None
    max_drop: float | None = None
    max_age_hours: float | None = None
    max_rate: float | None = None
    severity: Severity = Severity.error

    @property
    def check_name(self) -> str:
        if self.name:
            return self.name
        target = "_".join(self.columns)
        return f"{self.kind}_{target}" if target else self.kind


def not_null(column: str, severity: Severity = Severity.error) -> Expectation:
    return Expectation(kind="not_null", columns=(column,), severity=severity)


def unique(*columns: str) -> Expectation:
    return Expectation(kind="unique", columns=columns)


def accepted_values(column: str, values, severity: Severity = Severity.error) -> Expectation:
    return Expectation(kind="accepted_values", columns=(column,), values=tuple(values), severity=severity)


def in_range(column: str, min: float | None = None, max: float | None = None, severity: Severity = Severity.error) -> Expectation:
    return Expectation(kind="range", columns=(column,), min=min, max=max, severity=severity)


def relationship(column: str, to_table: str, to_column: str, severity: Severity = Severity.warn) -> Expectation:
    return Expectation(kind="relationship", columns=(column,), to_table=to_table, to_column=to_column, severity=severity)


def row_count_change(max_drop: float = 0.5, severity: Severity = Severity.warn) -> Expectation:
    return Expectation(kind="row_count_change", max_drop=max_drop, severity=severity)


def freshness(column: str, max_age_hours: float, severity: Severity = Severity.warn) -> Expectation:
    return Expectation(kind="freshness", columns=(column,), max_age_hours=max_age_hours, severity=severity)


def reject_rate(max_rate: float | None, severity: Severity, name: str) -> Expectation:
    """``max_rate`` None: the configured limit (the IO manager's ``reject_rate_limit``)."""
    return Expectation(kind="reject_rate", max_rate=max_rate, severity=severity, name=name)


def sql(expression: str, severity: Severity = Severity.error, name: str | None = None) -> Expectation:
    return Expectation(kind="sql", sql=expression, severity=severity, name=name)
