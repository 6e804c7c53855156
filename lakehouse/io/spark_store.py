"""The Spark-native table store: Silver merges and Gold overwrites as Spark SQL on Iceberg's own
Spark runtime, as AWS Glue 5.x and EMR run them.

Only the data-changing statements run in Spark. What is about the catalog rather than the data —
creating tables and evolving their schemas (io/iceberg_tables.py), branches and the publish that
moves main and sets the watermark in one commit with asserted refs (io/audited_tables.py), Bronze
files and their registry (io/table_appends.py), reads for planning (io/table_reads.py) — is the
same code as the Arrow store's (the same modules), so both stores keep one protocol and
either reads, merges and overwrites what the other wrote. In production that split is also where
the work runs: the Spark statements in the Glue/EMR job, the publish in the Dagster process.

Writes are copy-on-write (Iceberg's default for MERGE and overwrite): a changed data file is
rewritten whole, with no delete files, because the tables' other readers (Athena, DuckDB, pyiceberg)
then read plain data files, and the Arrow store writes the same way.

Every write goes to a branch: the audit branch given, or a private one published at once. So a
write's watermark (table properties) reaches main in the same commit as its data even though Spark
SQL cannot set table properties in a data commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException

from lakehouse.contracts.model import TableContract
from lakehouse.io.audit_branches import MERGE_ATTEMPTS, audit_branch_name, backoff
from lakehouse.io.audited_tables import AuditedTables
from lakehouse.io.spark_frames import conform_frame, frame_rows_outside, is_spark_frame
from lakehouse.io.table_maintenance import TableMaintenance
from lakehouse.io.table_reads import TableReads
from lakehouse.io.table_store import CommitStamp, TableStore, WriteResult, arrow_rows_outside, partition_values
from lakehouse.io.watermarks import changed_summary

_CATALOG_KEYS_SET: dict[str, set[str]] = {}  # Spark catalog conf keys set by a store, per catalog
PRIVATE_BRANCH_PREFIX = "write"  # the branch of a write that is not audited: published at once
_POS = "__lakehouse_pos"


class SparkTableStore(TableReads, AuditedTables, TableMaintenance, TableStore):
    """Merges and overwrites take a Spark DataFrame where it is (or an Arrow table); Bronze appends
    and everything else are the Arrow store's.

    ``spark_session()`` gives a session started with the Iceberg Spark runtime and its SQL
    extensions; ``spark_catalog`` holds the Iceberg catalog's Spark properties (``catalog-impl``,
    ``uri``, ``warehouse``, ``io-impl``, ...) for the same catalog as ``catalog``."""

    writes_spark_frames = True

    def __init__(self, *args, spark_session: Callable[[], object], spark_catalog: Mapping[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self._spark_session = spark_session
        self.spark_catalog = dict(spark_catalog)
        # The same name as pyiceberg's catalog: Iceberg's JdbcCatalog keeps it in every row of the
        # catalog tables, so only under that name does Spark see the tables pyiceberg made.
        self.spark_catalog_name = self.catalog.name

    # ---- Spark plumbing --------------------------------------------------------------------
    @property
    def spark(self):
        session = self._spark_session()
        extensions = session.conf.get("spark.sql.extensions", "") or ""
        if "IcebergSparkSessionExtensions" not in extensions:
            raise RuntimeError(
                "the Spark session was started without Iceberg's SQL extensions, which the spark table store needs: "
                "start it with the Iceberg Spark runtime (see README, 'Spark-native Iceberg')"
            )
        prefix = f"spark.sql.catalog.{self.spark_catalog_name}"
        # No cached table metadata: branches and publishes are committed by pyiceberg, outside Spark.
        catalog = {"cache-enabled": "false", **self.spark_catalog}
        if catalog.get("catalog-impl", "").endswith("JdbcCatalog"):
            # pyiceberg made the catalog tables; Iceberg 1.10's check for them leaves a result set
            # open, whose SQLite read transaction then hides (or locks out) every later commit.
            catalog.setdefault("jdbc.init-catalog-tables", "false")
        wanted = {prefix: "org.apache.iceberg.spark.SparkCatalog", **{f"{prefix}.{k}": v for k, v in catalog.items()}}
        if any(session.conf.get(k, None) != v for k, v in wanted.items()):
            # Another home's catalog of the same name was in use (one session serving several
            # stores, as in the tests): point the name at this one and drop the loaded instance.
            for key in _CATALOG_KEYS_SET.pop(prefix, set()) - set(wanted):
                session.conf.unset(key)
            for key, value in wanted.items():
                session.conf.set(key, value)
            _CATALOG_KEYS_SET[prefix] = set(wanted)
            session._jsparkSession.sessionState().catalogManager().reset()
        return session

    def spark_name(self, contract: TableContract, suffix: str = "", branch: str | None = None) -> str:
        namespace, name = self.identifier(contract, suffix)
        ident = f"`{self.spark_catalog_name}`.`{namespace}`.`{name}`"
        return f"{ident}.`branch_{branch}`" if branch else ident

    def _frame(self, data):
        """A Spark DataFrame of ``data`` (an Arrow table, or already a DataFrame) with each row's
        position, which breaks ties between events of one key (the later wins)."""
        if is_spark_frame(data):
            from pyspark.sql import functions as F

            return data.withColumn(_POS, F.monotonically_increasing_id())
        from pyspark.sql.pandas.types import from_arrow_schema

        data = data.append_column(_POS, pa.array(range(data.num_rows), pa.int64()))
        schema = from_arrow_schema(data.schema)
        if data.num_rows == 0:
            return self.spark.createDataFrame([], schema)
        return self.spark.createDataFrame(data.to_pandas(types_mapper=None, timestamp_as_object=True), schema)

    def _sql_with_summary(self, statement: str, summary: Mapping[str, str]) -> None:
        """Run ``statement`` so that the snapshot it commits carries ``summary``. Spark SQL takes no
        snapshot properties; Iceberg's CommitMetadata attaches them to commits made inside a
        callable on the calling thread, so the statement runs inside one (a Python callback)."""
        from pyspark.java_gateway import ensure_callback_server_started

        spark = self.spark
        gateway = spark.sparkContext._gateway
        ensure_callback_server_started(gateway)
        jvm = spark.sparkContext._jvm
        properties = jvm.java.util.HashMap()
        for key, value in summary.items():
            properties.put(key, value)
        failure: list[BaseException] = []

        class Statement:
            def call(self):
                try:
                    spark.sql(statement)
                except BaseException as exc:  # raised again below, with Python's own type
                    failure.append(exc)
                return None

            class Java:
                implements = ["java.util.concurrent.Callable"]

        jvm.org.apache.iceberg.spark.CommitMetadata.withCommitProperties(properties, Statement(), jvm.java.lang.RuntimeException._java_lang_class)
        if failure:
            raise _as_commit_failure(failure[0])

    # ---- writes ----------------------------------------------------------------------------
    def _on_a_branch(self, contract: TableContract, stamp: CommitStamp, branch: str | None, write: Callable[[str], WriteResult]) -> WriteResult:
        """``write(branch)``; without a branch, on a private one published with the stamp's table
        properties (the watermark) at once, planned again if another writer published first."""
        if branch is not None:
            return write(branch)
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            private = audit_branch_name(PRIVATE_BRANCH_PREFIX, stamp.run_id)
            base = self.start_audit(contract, private)
            try:
                result = write(private)
                if result.committed or stamp.table_properties:
                    self.publish(contract, private, stamp.table_properties, base=base, head=result.snapshot_id)
                else:
                    self._remove_branch(contract, private)
                table = self.load_table(contract)
                snap = table.current_snapshot()
                return WriteResult(
                    result.table, result.uri, result.mode, result.rows_written,
                    int(snap.summary.get("total-records", 0)) if snap and snap.summary else 0,
                    snapshot_id=snap.snapshot_id if snap else None, committed=result.committed, counts=result.counts,
                    changed=result.changed, branch=None, written_rows=result.written_rows,
                )
            except CommitFailedException:
                self._remove_branch(contract, private)
                if attempt == MERGE_ATTEMPTS:
                    raise
                time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def _remove_branch(self, contract: TableContract, branch: str) -> None:
        for suffix in ("", "__tombstones") if contract.delete_flag else ("",):
            table = self.load_table(contract, suffix)
            if table is not None and branch in table.refs():
                with table.manage_snapshots() as refs:
                    refs.remove_branch(branch)

    def merge(self, contract: TableContract, data, stamp: CommitStamp, branch: str | None = None) -> WriteResult:
        # Null keys and other contract breaks refused before anything runs; a DataFrame is then
        # planned once, so the transformation behind it is not computed again for every step.
        data = conform_frame(contract, data).localCheckpoint() if is_spark_frame(data) else contract.conform(data)
        return self._on_a_branch(contract, stamp, branch, lambda b: self._merge_on(contract, data, stamp, b))

    def _merge_on(self, contract: TableContract, data, stamp: CommitStamp, branch: str) -> WriteResult:
        from pyspark.sql import functions as F

        key, seq, flag = contract.primary_key[0], contract.sequence_by, contract.delete_flag
        table = self.ensure_table(contract)
        head = self._branch_head(table, contract, branch)
        events = self._frame(data)
        if flag and flag not in events.columns:
            events = events.withColumn(flag, F.lit(False))
        # Rule 1 (io/merge_rules.py): one event per key, the highest sequence, ties to the later row.
        order = [*([F.col(seq).desc()] if seq else []), F.col(_POS).desc()]
        from pyspark.sql import Window

        events = events.withColumn("__rank", F.row_number().over(Window.partitionBy(key).orderBy(*order))).where("__rank = 1").drop("__rank")
        changes = list(contract.change_columns)
        current = self.spark.sql(f"SELECT * FROM {self.spark_name(contract)} VERSION AS OF {head}").select(
            F.col(key).alias("__key"), *([F.col(seq).alias("__old")] if seq else [F.lit(True).alias("__old")]),
            *[F.col(c).alias(f"__old_{c}") for c in changes],
        )
        planned = events.join(current, events[key] == current["__key"], "left")
        if flag:
            tombs = self._tombstones(contract)
            tomb_head = self._branch_head(tombs, contract, branch, suffix="__tombstones")
            tomb_rows = self.spark.sql(f"SELECT * FROM {self.spark_name(contract, '__tombstones')} VERSION AS OF {tomb_head}")
            planned = planned.join(tomb_rows.select(F.col(key).alias("__tkey"), F.col("seq").alias("__tomb")), F.col(key) == F.col("__tkey"), "left")
        else:
            planned = planned.withColumn("__tomb", F.lit(None).cast(events.schema[seq].dataType if seq else "long"))
        present = F.col("__key").isNotNull()
        if seq:
            newer_than_tomb = F.col("__tomb").isNull() | (F.col(seq) > F.col("__tomb"))
            applies = F.when(present, F.col(seq) > F.col("__old")).otherwise(newer_than_tomb)
        else:
            applies = ~present  # rule 2 without a sequence: a present key never changes
        is_delete = F.coalesce(F.col(flag), F.lit(False)) if flag else F.lit(False)
        # Planned once, against the snapshots read: the counts, the change report, the tombstones
        # and the MERGE all see the same decision.
        planned = planned.withColumn("__applies", F.coalesce(applies, F.lit(False))).withColumn("__present", present).withColumn(
            "__delete", is_delete
        ).localCheckpoint()
        row = planned.agg(
            F.count("*").alias("events"),
            F.sum((F.col("__applies") & ~F.col("__delete") & ~F.col("__present")).cast("long")).alias("inserted"),
            F.sum((F.col("__applies") & ~F.col("__delete") & F.col("__present")).cast("long")).alias("updated"),
            F.sum((F.col("__applies") & F.col("__delete") & F.col("__present")).cast("long")).alias("deleted"),
            F.sum((F.col("__applies") & F.col("__delete")).cast("long")).alias("tombstones"),
            F.sum(F.col("__applies").cast("long")).alias("applied"),
        ).first()
        counts = {k: int(row[k] or 0) for k in ("inserted", "updated", "deleted")}
        counts["ignored"] = int(row["events"]) - int(row["applied"] or 0)
        changed = self._changed_days(planned, changes)
        if int(row["applied"] or 0) == 0:
            return self._result(contract, table, 0, committed=False, counts=counts, changed=changed, branch=branch,
                                written_rows=contract.arrow_schema.empty_table())
        summary = {**stamp.properties(), **{f"lakehouse.rows-{k}": str(v) for k, v in counts.items()}, **changed_summary(changed)}
        applied = planned.where("__applies")
        applied.createOrReplaceTempView("__lakehouse_applied")
        if flag and int(row["tombstones"] or 0):
            # Tombstones first, as in the Arrow store: a crash before the data commit re-applies the
            # batch later, and its deletes apply again.
            self._sql_with_summary(
                f"MERGE INTO {self.spark_name(contract, '__tombstones', branch)} t "
                f"USING (SELECT `{key}` AS k, `{seq}` AS s FROM __lakehouse_applied WHERE __delete) d ON t.`{key}` = d.k "
                "WHEN MATCHED AND d.s > t.seq THEN UPDATE SET t.seq = d.s "
                f"WHEN NOT MATCHED THEN INSERT (`{key}`, seq) VALUES (d.k, d.s)",
                stamp.properties(),
            )
        columns = contract.column_names
        types = {c.name: c.spark_type().simpleString() for c in contract.columns}
        values = ", ".join(f"CAST(s.`{c}` AS {types[c]})" for c in columns)
        self._sql_with_summary(
            f"MERGE INTO {self.spark_name(contract, branch=branch)} t USING __lakehouse_applied s ON t.`{key}` = s.`{key}` "
            "WHEN MATCHED AND s.__delete THEN DELETE "
            f"WHEN MATCHED THEN UPDATE SET {', '.join(f't.`{c}` = CAST(s.`{c}` AS {types[c]})' for c in columns)} "
            f"WHEN NOT MATCHED AND NOT s.__delete THEN INSERT ({', '.join(f'`{c}`' for c in columns)}) VALUES ({values})",
            summary,
        )
        written = applied.where("NOT __delete").select(*[F.col(c).cast(types[c]).alias(c) for c in columns])
        return self._result(
            contract, table, counts["inserted"] + counts["updated"], committed=True, counts=counts, changed=changed, branch=branch,
            written_rows=_to_arrow(written, contract.arrow_schema),
        )

    @staticmethod
    def _changed_days(planned, changes: list[str]) -> dict[str, list]:
        """Distinct UTC days of each change column on rows the merge replaces or deletes (old
        values) and on rows it writes (new values), as io/merge_rules.py's changed_values reports them."""
        from pyspark.sql import functions as F

        out = {}
        for column in changes:
            old = planned.where("__applies AND __present").select(F.to_date(F.col(f"__old_{column}")).alias("d"))
            new = planned.where("__applies AND NOT __delete").select(F.to_date(F.col(column)).alias("d"))
            out[column] = sorted(r["d"] for r in old.union(new).where("d IS NOT NULL").distinct().collect())
        return out

    def _branch_head(self, table, contract: TableContract, branch: str, suffix: str = "") -> int:
        snap = table.refresh().snapshot_by_name(branch)
        if snap is None:
            raise CommitFailedException(f"{contract.qualified_name}{suffix}: audit branch {branch!r} no longer exists; run the write again")
        return snap.snapshot_id

    def overwrite(self, contract: TableContract, data, stamp: CommitStamp, partition: dict | None = None, branch: str | None = None) -> WriteResult:
        self.ensure_table(contract)  # schema evolution first, with its own messages (as the Arrow store)
        if is_spark_frame(data):
            data = conform_frame(contract, data).localCheckpoint()
            outside = frame_rows_outside(data)
        else:
            data = contract.conform(data)
            outside = arrow_rows_outside(data)
        condition = _partition_condition(contract, partition, outside)
        return self._on_a_branch(contract, stamp, branch, lambda b: self._overwrite_on(contract, data, stamp, condition, b))

    def _overwrite_on(self, contract: TableContract, data, stamp: CommitStamp, condition: str, branch: str) -> WriteResult:
        from pyspark.sql import functions as F

        table = self.ensure_table(contract)
        self._branch_head(table, contract, branch)
        types = {c.name: c.spark_type().simpleString() for c in contract.columns}
        frame = self._frame(data).select(*[F.col(c).cast(types[c]).alias(c) for c in contract.column_names])
        writer = frame.writeTo(self.spark_name(contract, branch=branch))
        for key, value in stamp.properties().items():
            writer = writer.option(f"snapshot-property.{key}", value)
        try:
            # Overwrite by filter: the files of the partitions named are replaced, every other
            # partition's files stay as they are (a whole-table overwrite replaces them all).
            writer.overwrite(F.expr(condition))
        except Exception as exc:
            raise _as_commit_failure(exc) from exc
        rows = data.count() if is_spark_frame(data) else data.num_rows
        return self._result(contract, table, rows, branch=branch, written_rows=_to_arrow(frame, contract.arrow_schema))


def _partition_condition(contract: TableContract, partition: dict | None, rows_outside) -> str:
    """The SQL condition of the rows an overwrite replaces: all, or those of the partitions given
    (checked as in the Arrow store)."""
    terms = []
    for column, values in partition_values(contract, partition, rows_outside).items():
        column_type = contract.column(column).spark_type().simpleString()
        literals = [str(v.isoformat() if hasattr(v, "isoformat") else v).replace("'", "''") for v in values]
        casts = ", ".join(f"CAST('{lit}' AS {column_type})" for lit in literals)
        terms.append(f"`{column}` IN ({casts})")
    return " AND ".join(terms) or "true"


def _to_arrow(frame, schema: pa.Schema) -> pa.Table:
    """A (small: the rows one write added) DataFrame as Arrow in the contract's schema."""
    pdf = frame.toPandas()
    return pa.Table.from_pandas(pdf, schema=schema, preserve_index=False) if len(pdf) else schema.empty_table()


def _as_commit_failure(exc: BaseException) -> BaseException:
    """Iceberg's commit conflicts, as Spark reports them, as pyiceberg's CommitFailedException: the
    callers' retries and messages are the same for both stores."""
    text = str(exc)
    # Py4J's message: "An error occurred while calling o61.sql.", then ": <java class>: <why>".
    java = next((line[2:] for line in text.splitlines() if line.startswith(": ")), None)
    if java and any(name in java.split(":", 1)[0] for name in ("CommitFailedException", "ValidationException", "CommitStateUnknown")):
        return CommitFailedException(java)
    return exc
