"""Sensitive values: masking for what people see, keyed pseudonyms for what tables keep.

A contract column tagged ``pii`` (Column.pii) is masked wherever a value of it could be shown:
check samples, error messages, materialization metadata, the ``lakehouse rejects`` view. Masking
is deterministic (the same value always looks the same) and partial (enough to recognise a value
you already know, not to learn one you don't). A column with ``pseudonymise`` is stored as a keyed
hash of its value (HMAC-SHA256 with the key in LAKEHOUSE_PSEUDONYM_KEY): equal values stay equal,
so counts and joins still work, but the table never holds the value itself.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lakehouse.setting_names import PSEUDONYM_KEY_VARIABLE, SettingsError

if TYPE_CHECKING:
    from lakehouse.contracts.model import TableContract

PII_KINDS = ("email", "name", "phone", "address", "birth_date")
HIDDEN = "***"
# Hex digits kept of the HMAC: 128 bits, far beyond any collision a table of customers could meet.
PSEUDONYM_LENGTH = 32
# A shorter key is guessable by brute force over a known list of e-mail addresses.
MIN_KEY_LENGTH = 16
_EMAIL_LIKE = re.compile(r"[^\s@,;\"'<>()]+@[^\s@,;\"'<>()]+")


def mask(value: Any, kind: str) -> str | None:
    """``value`` with most of it hidden: ``jane@example.com`` -> ``j***@example.com``,
    ``Jane Doe`` -> ``J*** D***``, anything else -> its first character and ``***``."""
    if value is None:
        return None
    text = str(value)
    if kind == "email" and "@" in text:
        local, domain = text.rsplit("@", 1)
        return f"{local[:1]}{HIDDEN}@{domain}"
    if kind == "name" and text.split():
        return " ".join(word[:1] + HIDDEN for word in text.split())
    return text[:1] + HIDDEN


def mask_text(text: str | None) -> str | None:
    """Free text that may hold sensitive values but cannot be taken apart (a malformed landed
    line): only its first character and the masked form of each e-mail-like part in it."""
    if text is None:
        return None
    emails = [mask(e, "email") for e in _EMAIL_LIKE.findall(text)]
    return " ".join([text[:1] + HIDDEN, *emails])


def mask_fields(fields: list[str | None], kinds: Mapping[int, str]) -> str:
    """CSV fields (as split from a landed line), the ones at ``kinds``' positions masked, as one CSV line."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([mask(f, kinds[i]) if i in kinds else f for i, f in enumerate(fields)])
    return out.getvalue()


def pii_columns(contract: TableContract) -> dict[str, str]:
    """Column name -> pii kind, of the contract's tagged columns."""
    return {c.name: c.pii for c in contract.columns if c.pii}


def mask_value(contract: TableContract, column: str, value: Any) -> Any:
    """``value`` of ``column`` as it may be shown: masked if the column is tagged, else as it is."""
    kind = pii_columns(contract).get(column)
    return mask(value, kind) if kind else value


def mask_row(contract: TableContract, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (column -> value) as it may be shown: its tagged columns masked."""
    return {name: mask_value(contract, name, value) for name, value in row.items()}


def mask_values(contract: TableContract, column: str, values: Iterable[Any]) -> list[Any]:
    return [mask_value(contract, column, v) for v in values]


def pseudonym(value: str, key: bytes) -> str:
    """The keyed pseudonym of ``value``: the same for the same value and key, unrelated across keys."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]


def pseudonymise(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Each value's pseudonym (nulls stay null); a value that is not text is hashed as its text."""
    return pa.array([None if v is None else pseudonym(str(v), key) for v in values.to_pylist()], pa.large_string())


def pseudonymised_columns(contract: TableContract) -> list[str]:
    return [c.name for c in contract.columns if c.pseudonymise]


def pseudonymise_table(contract: TableContract, data: pa.Table, key: bytes) -> pa.Table:
    """``data`` with each of the contract's pseudonymised columns replaced by its pseudonyms."""
    for name in pseudonymised_columns(contract):
        if name in data.column_names:
            index = data.column_names.index(name)
            data = data.set_column(index, data.schema.field(index).with_type(pa.large_string()), pseudonymise(data[name], key))
    return data


def pseudonymise_frame(contract: TableContract, frame, key: bytes):
    """The same for a Spark DataFrame: a Python UDF per column, so the rows never leave Spark.
    Not Spark SQL's sha2: an HMAC built from it would put the key into the plan, which Spark's UI shows."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    hashed = F.udf(_hasher(key), T.StringType())
    for name in pseudonymised_columns(contract):
        if name in frame.columns:
            frame = frame.withColumn(name, hashed(F.col(name)))
    return frame


def _hasher(key: bytes):
    """``pseudonym`` as a closure of the standard library alone: Spark's Python workers run it
    without importing the lakehouse (they may not have it, or its dependencies)."""
    length = PSEUDONYM_LENGTH

    def hashed(value):
        import hashlib
        import hmac

        return None if value is None else hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:length]

    return hashed


def pseudonym_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The pseudonymisation key, from LAKEHOUSE_PSEUDONYM_KEY.

    Read from the environment at the write that needs it, never passed around as configuration: a
    resource's configuration is shown in Dagster's UI and a remote job's arguments in its console.
    The key itself is never part of a message."""
    text = (os.environ if environ is None else environ).get(PSEUDONYM_KEY_VARIABLE, "")
    if not text:
        raise SettingsError(
            f"{PSEUDONYM_KEY_VARIABLE} is not set, and a table contract pseudonymises a column: set it to a secret of at least "
            f"{MIN_KEY_LENGTH} characters (for example `export {PSEUDONYM_KEY_VARIABLE}=$(openssl rand -hex 32)`), the same for "
            "every run that writes the table; see docs/sensitive-data.md"
        )
    if len(text) < MIN_KEY_LENGTH:
        raise SettingsError(
            f"{PSEUDONYM_KEY_VARIABLE} is {len(text)} characters long; a pseudonymisation key needs at least {MIN_KEY_LENGTH} "
            f"(for example `openssl rand -hex 32`); see docs/sensitive-data.md"
        )
    return text.encode("utf-8")

