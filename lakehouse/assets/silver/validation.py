"""Spark expressions for the landing contract's validation rules (docs/landing-contract.md)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Java regexes: \z, not $, ends the value ($ would also accept a trailing line terminator).
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\z"
INTEGER = r"^-?[0-9]+\z"
NUMBER = r"^-?[0-9]+(\.[0-9]+)?\z"
CURRENCY = r"^[A-Z]{3}\z"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+\z"
COUNTRY = r"^[A-Z]{2}\z"


# --- JSON: strict RFC 8259, every value's text as written -----------------------------------------
#
# Spark's JSON reader (Jackson) turns numbers into doubles before they can be read as text
# (12345678.90 comes back as 1.23456789E7), reads only the first value of a line and ignores the
# rest, and by default accepts NaN. So the line is rewritten first, in one linear regex pass that
# turns every string "<text>" into "<text>#" and every number outside strings into the string
# "#<literal>": each value's kind and exact text survive Jackson (a number never ends with "#", a
# string always does). Jackson, with every lenient option off, then checks the syntax; what follows
# the object and how deep it nests are checked on the line's bracket skeleton.

MAX_JSON_DEPTH = 64  # the record's object is level 1
MAX_RECORD_BYTES = 16 * 1024 * 1024  # UTF-8 bytes of a line (below Jackson's own string limit)

_JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": "__corrupt",
    "allowComments": "false",
    "allowUnquotedFieldNames": "false",
    "allowSingleQuotes": "false",
    "allowNumericLeadingZeros": "false",
    "allowNonNumericNumbers": "false",
    "allowBackslashEscapingAnyCharacter": "false",
    "allowUnquotedControlChars": "false",
}
# Escaped backslashes and quotes become \u escapes, which mean the same inside a string (outside one
# a backslash is an error either way): afterwards every " of a valid line delimits a string.
_ESCAPED_BACKSLASH, _AS_U005C = r"\\\\", r"\\u005C"
_ESCAPED_QUOTE, _AS_U0022 = r'\\"', r"\\u0022"
# A number as RFC 8259 writes it, standing alone, and not where a name belongs ("5: ..."). A
# number-like token that is not one (007, 1., .5, +1, 0x10, NaN) is left as it is, for Jackson to refuse.
_NUMBER = r"(?=[-0-9])(?<![-+.0-9A-Za-z_])(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)(?![-+.0-9A-Za-z_]|[ \t\n\r]*:)"
_TOKEN, _TOKEN_AS = f'"([^"]*)"|{_NUMBER}', '"$1#$2"'
_MARK = "#"
_LONE_SURROGATE = (
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def with_json_object(df: DataFrame, raw: str, names: list[str], into: str) -> DataFrame:
    """``df`` with the JSON object in column ``raw``: column ``<into>_ok`` is false when the line is
    not one strictly valid JSON object (docs/landing-contract.md), and :func:`json_member` gives each
    top-level member in ``names``: null when absent or JSON null, else its value in the form
    :func:`json_text` reads. Each step is a column of its own, so that none is computed twice."""
    u, typed, skeleton, shape = (f"{into}__{step}" for step in ("unescaped", "typed", "skeleton", "shape"))
    line = F.col(raw)
    unescape = F.regexp_replace(F.regexp_replace(line, _ESCAPED_BACKSLASH, _AS_U005C), _ESCAPED_QUOTE, _AS_U0022)
    df = df.withColumn(u, F.when(line.contains("\\"), unescape).otherwise(line))
    df = df.withColumn(typed, F.regexp_replace(F.col(u), _TOKEN, _TOKEN_AS))
    # What is left outside strings, brackets only: "{}" for a flat object. A quote left means an
    # unterminated string.
    df = df.withColumn(skeleton, F.regexp_replace(F.col(typed), r'"[^"]*"|[^\[\]{}"]+', ""))
    df = df.withColumn(
        shape,
        (F.octet_length(line) <= MAX_RECORD_BYTES)
        & ~(F.col(u).contains("\\u") & F.col(u).rlike(_LONE_SURROGATE))
        & F.col(typed).rlike(r"\}[ \t\n\r]*\z")
        & F.when(F.col(skeleton) == "{}", F.lit(True))
        .when(F.col(skeleton).contains('"'), F.lit(False))
        .otherwise(_one_object(F.col(skeleton))),
    )
    schema = ", ".join(f"`{name}{_MARK}` string" for name in names) + ", __corrupt string"
    parsed = F.from_json(F.when(F.col(shape), F.col(typed)), schema, _JSON_OPTIONS)
    # A filter on anything computed from the members (``reason IS NULL``) is pushed below the
    # projections by substituting each column's expression, which would copy this whole parse once
    # per reference (over a hundred times for the order rules: minutes of code generation). A
    # nondeterministic (and always true) condition keeps the optimizer from moving or copying it.
    df = df.withColumn(into, F.when(F.monotonically_increasing_id() >= 0, parsed))
    df = df.withColumn(f"{into}_ok", F.coalesce(F.col(shape) & F.col(into).isNotNull() & F.col(into)["__corrupt"].isNull(), F.lit(False)))
    return df.drop(u, typed, skeleton, shape)


def json_member(into: str, name: str) -> Column:
    """Member ``name`` of the object :func:`with_json_object` parsed into ``into``."""
    return F.col(into)[f"{name}{_MARK}"]


def _one_object(skeleton: Column) -> Column:
    """The brackets close the first object exactly at their end, never go below zero, and nest at most
    MAX_JSON_DEPTH deep: nothing but white space follows the object (Jackson reads only the first
    value of a line and ignores the rest). One step per bracket, read by byte offset (the skeleton is
    ASCII), so a line of millions of brackets costs an array of ints, not of strings; the bytes ride
    in the accumulator, as an expression from outside the lambda would be evaluated at every step."""
    opening, closing = (F.lit(bytearray(b"{")), F.lit(bytearray(b"["))), (F.lit(bytearray(b"}")), F.lit(bytearray(b"]")))
    start = F.struct(
        skeleton.cast("binary").alias("brackets"),
        F.lit(0).alias("depth"), F.lit(0).alias("closed"), F.lit(0).alias("low"), F.lit(0).alias("high"),
    )

    def step(acc, i):
        char = acc["brackets"].substr(i, F.lit(1))
        opens, closes = char.isin(*opening), char.isin(*closing)
        depth = acc["depth"] + F.when(opens, 1).when(closes, -1).otherwise(0)
        return F.struct(
            acc["brackets"].alias("brackets"),
            depth.alias("depth"),
            (acc["closed"] + F.when(closes & (acc["depth"] == 1), 1).otherwise(0)).alias("closed"),
            F.least(acc["low"], depth).alias("low"),
            F.greatest(acc["high"], depth).alias("high"),
        )

    def finish(end):
        return (end["depth"] == 0) & (end["closed"] == 1) & (end["low"] >= 0) & (end["high"] <= MAX_JSON_DEPTH)

    return F.aggregate(F.sequence(F.lit(1), F.length(skeleton)), start, step, finish)


def json_text(value: Column) -> Column:
    """A member's text (docs/landing-contract.md): the string itself or the number as written; a
    boolean, object or array keeps its JSON form, which no text rule accepts."""
    return (
        F.when(is_json_string(value), value.substr(F.lit(1), F.length(value) - 1))
        .when(value.startswith(_MARK), value.substr(F.lit(2), F.length(value)))
        .otherwise(value)
    )


def is_json_text(value: Column) -> Column:
    """The member is a string or a number (it has a text)."""
    return value.endswith(_MARK) | value.startswith(_MARK)


def is_json_string(value: Column) -> Column:
    return value.endswith(_MARK)


def first_failure(rules: list[tuple[Column, str | Column]]) -> Column:
    """The reason of the first rule whose condition holds (null when the record is valid)."""
    expr = None
    for condition, reason in rules:
        reason_col = F.lit(reason) if isinstance(reason, str) else reason
        expr = F.when(condition, reason_col) if expr is None else expr.when(condition, reason_col)
    return expr.otherwise(F.lit(None).cast("string"))


def is_timestamp(text: Column) -> Column:
    """ISO-8601 with an offset, and a real instant."""
    return text.rlike(ISO_TIMESTAMP) & F.to_timestamp(text).isNotNull()


def latest_per_key(df: DataFrame, key: str, *order: Column) -> DataFrame:
    """Keep the first row per key under ``order`` (the winner); ties are broken by ``order`` itself."""
    w = Window.partitionBy(key).orderBy(*order)
    return df.withColumn("__rank", F.row_number().over(w)).where(F.col("__rank") == 1).drop("__rank")


def delivery_order_desc() -> list[Column]:
    """Later delivered first: the tie-break of the landing contract."""
    return [F.col("_source_file").desc(), F.col("_line_number").desc()]


def rejects(df: DataFrame) -> DataFrame:
    """Shape invalid records as a rejects table (raw text, source, line and reason)."""
    return df.where(F.col("reason").isNotNull()).select(
        F.concat_ws(":", F.col("_source_file"), F.col("_line_number").cast("string")).alias("record_id"),
        "reason",
        "_raw",
        "_line_number",
        "_source_file",
        "_ingested_at",
        "_batch_id",
    )


def count_records(validated: DataFrame) -> dict[str, int]:
    """Records in a validated Bronze input and how many are invalid (they go to a rejects table)."""
    row = validated.agg(F.count("*").alias("read"), F.count("reason").alias("rejected")).first()
    return {"read": row["read"], "rejected": row["rejected"]}
