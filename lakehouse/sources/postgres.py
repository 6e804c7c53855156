"""PostgreSQL sources: a table read incrementally by a watermark column, through Arrow.

Rows are read with ADBC's PostgreSQL driver (libpq's binary COPY, straight into Arrow; no JDBC and
no row-by-row Python in the Dagster process), in pages of ``batch_rows`` ordered by
``(watermark, key)``, each page a Bronze batch committed with its watermark
(``io/bronze_files.py``, ``append_extract``), so memory stays flat however large the table.

Each extract starts ``overlap`` before the committed watermark, so a row committed late with an
older watermark value (a long transaction) is still read; rows already in Bronze with the same key
and watermark value are dropped, so the overlap reads nothing twice. Every ``key_snapshot_hours``
the source's full key set is read, and each key Silver holds that the source no longer has becomes
a delete event, merged by Silver under the same CDC rules as any other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field, field_validator

from lakehouse.setting_names import SettingsError

PASSWORD_VARIABLE = "LAKEHOUSE_POSTGRES_PASSWORD"
PASSWORD_SECRET_VARIABLE = "LAKEHOUSE_POSTGRES_PASSWORD_SECRET"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class SourceError(RuntimeError):
    """The database source cannot be read: a setting to fix (permanent) or an outage (retried)."""


class SourceSettingError(SourceError, SettingsError):
    """A connection setting is wrong: no retry helps (the step fails at once, naming the setting)."""


@dataclass(frozen=True)
class PostgresTable:
    """A source table: which columns to read, its key, and the watermark it is read by."""

    name: str  # the source's name: Bronze batches are recorded as <name>/dt=D/<name>-<seq>
    table: str  # schema.table in PostgreSQL
    columns: tuple[str, ...]
    key: str
    watermark: str  # a timestamptz column set on every change (e.g. updated_at) or an increasing id
    watermark_kind: str = "timestamp"  # "timestamp" or "integer"

    def __post_init__(self):
        for name in (*self.table.split("."), *self.columns, self.key, self.watermark):
            if not _IDENTIFIER.match(name):
                raise ValueError(f"source {self.name}: {name!r} is not a plain SQL identifier (letters, digits, _)")
        if self.key not in self.columns or self.watermark not in self.columns:
            raise ValueError(f"source {self.name}: the key and the watermark column must be among its columns")
        if self.watermark_kind not in ("timestamp", "integer"):
            raise ValueError(f"source {self.name}: watermark_kind is 'timestamp' or 'integer', not {self.watermark_kind!r}")

    @property
    def quoted_table(self) -> str:
        return ".".join(f'"{part}"' for part in self.table.split("."))


def literal(value) -> str:
    """A SQL literal for a watermark or key value this source read itself (text, integer or instant)."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"no literal for {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat()}'::timestamptz"
    return "'" + str(value).replace("'", "''") + "'"


def encode(value):
    """A watermark or key value as JSON can hold it (instants as ISO text)."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


def decode(value, kind: str):
    return dt.datetime.fromisoformat(value) if kind == "timestamp" and isinstance(value, str) else value


class PostgresSourceResource(ConfigurableResource):
    """Connection settings of the PostgreSQL database the sources live in. The password comes from
    ``LAKEHOUSE_POSTGRES_PASSWORD`` (an EnvVar, never a literal in config files) or an AWS Secrets
    Manager secret (``password_secret``: a plain password, or RDS's JSON with a ``password``)."""

    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    database: str
    user: str
    password: str | None = None
    password_secret: str | None = None
    region: str | None = None  # of the secret (default: the AWS chain's)
    endpoint_url: str | None = None  # Secrets Manager endpoint (tests: a local one)
    sslmode: str = "prefer"
    connect_timeout: int = Field(default=10, ge=1)
    batch_rows: int = Field(default=100_000, ge=1)
    overlap_seconds: float = Field(default=300, ge=0)  # for an integer watermark: this many ids
    key_snapshot_hours: float | None = Field(default=24, gt=0)  # None: never look for deletes

    @field_validator("sslmode")
    @classmethod
    def _known_sslmode(cls, value: str) -> str:
        if value not in _SSLMODES:
            raise ValueError(f"LAKEHOUSE_POSTGRES_SSLMODE {value!r} is not one of {', '.join(_SSLMODES)}")
        return value

    def _password(self) -> str:
        if self.password:
            return self.password
        if not self.password_secret:
            raise SourceSettingError(
                f"PostgreSQL source at {self.host}:{self.port}: no password; set {PASSWORD_VARIABLE} in the environment "
                f"or {PASSWORD_SECRET_VARIABLE} to an AWS Secrets Manager secret"
            )
        from botocore.exceptions import BotoCoreError, ClientError

        from lakehouse.io.aws import AwsConfig

        try:
            client = AwsConfig(self.region).client("secretsmanager", endpoint=self.endpoint_url)
            secret = client.get_secret_value(SecretId=self.password_secret)
        except (ClientError, BotoCoreError) as exc:
            raise SourceSettingError(f"{PASSWORD_SECRET_VARIABLE}={self.password_secret!r} cannot be read: {exc}") from exc
        text = secret.get("SecretString") or ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            return json.loads(text)["password"]
        return text

    def uri(self, password: str | None = None) -> str:
        quote = urllib.parse.quote
        password = password if password is not None else self._password()
        query = urllib.parse.urlencode({"sslmode": self.sslmode, "connect_timeout": self.connect_timeout, "application_name": "lakehouse"})
        return f"postgresql://{quote(self.user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/{quote(self.database, safe='')}?{query}"

    @contextlib.contextmanager
    def connect(self) -> Iterator[PostgresReader]:
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as pg

        password = self._password()  # once: a secret is fetched from Secrets Manager
        uri = self.uri(password)
        try:
            connection = pg.connect(uri, autocommit=True)
        except adbc_driver_manager.Error as exc:
            raise self._connection_error(exc, uri, password) from None
        try:
            yield PostgresReader(connection, f"{self.user}@{self.host}:{self.port}/{self.database}")
        finally:
            connection.close()

    def _connection_error(self, exc: Exception, uri: str, password: str) -> SourceError:
        text = str(exc).replace(uri, "<uri>").replace(password, "***")
        where = f"PostgreSQL source {self.user}@{self.host}:{self.port}/{self.database}"
        low = text.lower()
        if "password authentication failed" in low or "no password supplied" in low:
            return SourceSettingError(f"{where}: password authentication failed for user {self.user!r}; check {PASSWORD_VARIABLE} "
                                      f"(or {PASSWORD_SECRET_VARIABLE}) and LAKEHOUSE_POSTGRES_USER")
        if "does not exist" in low and "database" in low:
            return SourceSettingError(f"{where}: database {self.database!r} does not exist; check LAKEHOUSE_POSTGRES_DATABASE")
        if "connection refused" in low or "could not connect" in low or "timeout" in low or "could not translate host" in low:
            return SourceError(f"{where}: cannot connect ({_first_line(text)}); check LAKEHOUSE_POSTGRES_HOST and "
                               "LAKEHOUSE_POSTGRES_PORT, and that the server accepts TCP connections from here")
        return SourceError(f"{where}: {_first_line(text)}")


def _first_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with types the contracts cast from: ADBC returns ``numeric`` as an opaque
    extension type holding the exact decimal text, which becomes plain text (cast exactly later)."""
    columns = [c.combine_chunks().storage if isinstance(c.type, pa.BaseExtensionType) else c for c in table.columns]
    return pa.table(columns, names=table.column_names)


class PostgresReader:
    """Reads pages of a source table as Arrow."""

    def __init__(self, connection, where: str):
        self.connection = connection
        self.where = where

    def query(self, sql: str) -> pa.Table:
        import adbc_driver_manager

        with self.connection.cursor() as cursor:
            try:
                cursor.execute(sql)
                return _plain(cursor.fetch_arrow_table())
            except adbc_driver_manager.Error as exc:
                raise SourceError(f"PostgreSQL source {self.where}: {_first_line(str(exc))}") from None

    def now(self) -> dt.datetime:
        return self.query("SELECT now() AS now")["now"][0].as_py()

    def page(self, table: PostgresTable, after: tuple | None, start, limit: int) -> pa.Table:
        """Up to ``limit`` rows in ``(watermark, key)`` order: those after ``after`` (a
        ``(watermark, key)`` pair), else those whose watermark is at least ``start`` (None: all)."""
        columns = ", ".join(f'"{c}"' for c in table.columns)
        wm, key = f'"{table.watermark}"', f'"{table.key}"'
        if after is not None:
            where = f"WHERE ({wm}, {key}) > ({literal(after[0])}, {literal(after[1])})"
        elif start is not None:
            where = f"WHERE {wm} >= {literal(start)}"
        else:
            where = f"WHERE {wm} IS NOT NULL"
        return self.query(f"SELECT {columns} FROM {table.quoted_table} {where} ORDER BY {wm}, {key} LIMIT {int(limit)}")

    def without_watermark(self, table: PostgresTable) -> int:
        """Rows whose watermark is null: no extract can read them, so they are counted and reported."""
        return self.query(f'SELECT count(*) AS n FROM {table.quoted_table} WHERE "{table.watermark}" IS NULL')["n"][0].as_py()

    def keys(self, table: PostgresTable) -> pa.Array:
        return self.query(f'SELECT "{table.key}" FROM {table.quoted_table}')[table.key].combine_chunks()
