"""The table store on pyiceberg and Arrow: runs wherever Python runs (local disk or S3)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchNamespaceError,
    NoSuchTableError,
    ValidationException,
)
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThanOrEqual, In, LessThan
from pyiceberg.table import Table
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import ancestors_of

from lakehouse.contracts.model import Column, Layer, TableContract, WriteMode
from lakehouse.io import file_rewrite
from lakehouse.io.audit_branches import (
    at_branch,
    backoff,
    check_fast_forward,
    conflicts_as_commit_failures,
    fast_forward,
    lineage,
    start_branch,
    with_first_snapshot,
)
from lakehouse.io.aws import DOCS, AwsConfig, AwsSetupError, Requirement, missing, s3_errors
from lakehouse.io.bronze_files import BATCH_SOURCES_KEY, BronzeFiles, PendingBronze, create_namespace_if_missing, landing_day
from lakehouse.io.glue import GlueParquetTables
from lakehouse.io.iceberg_schema import evolve_schema, full_key_bounds
from lakehouse.io.merge_rules import changed_values, plan_merge, reduce_batch, tombstone_schema
from lakehouse.io.table_store import CommitStamp, DayRange, TableInfo, TableStore, WriteResult, arrow_rows_outside, partition_values
from lakehouse.io.watermarks import changed_summary
from lakehouse.setting_names import bucket_variable, database_variable


class ArrowTableStore(TableStore):
    """Iceberg tables through a pyiceberg catalog; Bronze as Hive-partitioned Parquet through Arrow.

    ``locations`` maps each layer to the root URI its tables live under (``<root>/<table>``);
    ``namespaces`` maps each layer to its catalog namespace (Glue database).
    """

    def __init__(
        self,
        catalog: Catalog,
        locations: Mapping[Layer, str],
        namespaces: Mapping[Layer, str],
        filesystem: pafs.FileSystem | None = None,
        *,
        bronze_catalog: GlueParquetTables | None = None,
        create_namespaces: bool = True,
        aws: AwsConfig | None = None,
    ):
        """``filesystem`` serves every location (for S3: one configured with region and endpoint);
        ``bronze_catalog`` registers Bronze tables and partitions (Glue); ``create_namespaces=False``
        leaves namespaces to whoever provisions them (on AWS the Glue databases come from terraform)."""
        self.catalog = catalog
        self.locations = dict(locations)
        self.namespaces = dict(namespaces)
        self._fs = filesystem
        self.bronze_catalog = bronze_catalog
        self.create_namespaces = create_namespaces
        self.aws = aws
        self._s3 = None  # boto3 S3 client for conditional PUTs, made on first use

    # ---- locations -------------------------------------------------------------------------
    def uri(self, contract: TableContract) -> str:
        return f"{self.locations[contract.layer].rstrip('/')}/{contract.name}"

    def identifier(self, contract: TableContract, suffix: str = "") -> tuple[str, str]:
        return (self.namespaces[contract.layer], contract.name + suffix)

    def _fs_path(self, uri: str) -> tuple[pafs.FileSystem, str]:
        if self._fs is not None:
            return self._fs, uri.split("://", 1)[-1]
        return pafs.FileSystem.from_uri(uri)

    def _storage_errors(self, contract: TableContract):
        """S3 errors on a table's location (missing bucket, access denied, ...) as messages that say what to do."""
        return s3_errors(self.uri(contract), f"{contract.layer.value} tables", bucket_variable(contract.layer.value), self.aws)

    # ---- Bronze: one Parquet file per landing file (io/bronze_files.py) ----------------------
    def bronze(self, contract: TableContract) -> BronzeFiles:
        """A Bronze table's files and their registry."""
        fs, root = self._fs_path(self.uri(contract))
        put = self._put_if_absent if fs.type_name in ("s3", "gcs", "abfs") else None
        return BronzeFiles(
            contract, self.uri(contract), fs, root, self.catalog, self.namespaces[contract.layer], put, create_namespace=self.create_namespaces
        )

    def _put_if_absent(self, path: str, body: bytes) -> bool:
        """Create ``bucket/key`` unless it exists, in one conditional PUT (S3's If-None-Match)."""
        from botocore.exceptions import ClientError

        if self._s3 is None:
            self._s3 = (self.aws or AwsConfig(None)).client("s3")
        bucket, key = path.split("/", 1)
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            # 412: the object exists; 409: another conditional PUT of it is in flight. Either way
            # another writer has this landing file.
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def append(self, contract: TableContract, data: pa.Table, stamp: CommitStamp) -> WriteResult:
        if contract.layer is not Layer.bronze:
            return self._iceberg_append(contract, data, stamp)
        listed = (data.schema.metadata or {}).get(BATCH_SOURCES_KEY)
        data = contract.conform(data)
        sources = json.loads(listed) if listed else sorted(set(data["_source_file"].to_pylist()))
        sizes = sources if isinstance(sources, dict) else None  # path -> size in bytes as listed
        sources = list(sources)
        with self._storage_errors(contract):
            if self.bronze_catalog is not None and sources:
                # Registered before the files are written: the catalog may list a partition that is
                # still empty (readers see no rows), never miss one that holds data.
                database, location = self.namespaces[contract.layer], self.uri(contract)
                self.bronze_catalog.ensure_table(contract, database, location)
                days = sorted({landing_day(s) for s in sources})
                self.bronze_catalog.add_partitions(contract, database, location, [(d,) for d in days])
            written, appeared = self.bronze(contract).append(data, sources, stamp, sizes)
        info = self.info(contract)
        return WriteResult(contract.qualified_name, info.uri, WriteMode.append, written, info.row_count, committed=bool(appeared))

    def bronze_files(self, contract: TableContract) -> list[str]:
        with self._storage_errors(contract):
            return self.bronze(contract).files()

    def ingested_sources(self, contract: TableContract, days: set[dt.date] | None = None) -> set[str]:
        """Landing keys (``dt=D/name``) in Bronze on ``days``: a listing, no file is opened."""
        with self._storage_errors(contract):
            bronze = self.bronze(contract)
            return bronze.ingested(days) if days is not None else {f[: -len(".parquet")] for f in bronze.files()}

    def ingested_sizes(self, contract: TableContract, days: set[dt.date]) -> dict[str, int | None]:
        """Landing file -> its size in bytes when ingested (None: not recorded), of ``days``."""
        with self._storage_errors(contract):
            return self.bronze(contract).source_sizes(days)

    def pending_bronze(self, contract: TableContract, after: int) -> PendingBronze:
        with self._storage_errors(contract):
            return self.bronze(contract).pending(after)

    def bronze_records_through(self, contract: TableContract, seq: int) -> int:
        return self.bronze(contract).records_through(seq)

    def bronze_seq(self, contract: TableContract) -> int:
        return self.bronze(contract).current_seq()

    def _bronze_dataset(self, contract: TableContract, files: list[str] | None = None) -> ds.Dataset | None:
        fs, root = self._fs_path(self.uri(contract))
        root = root.rstrip("/")
        names = self.bronze(contract).files() if files is None else files
        if not names:
            return None
        part_schema = pa.schema([contract.arrow_schema.field(c) for c in contract.partition_by])
        return ds.dataset(
            [f"{root}/{f}" for f in names],
            filesystem=fs,
            format="parquet",
            # The contract's schema, not the first file's: files written before a column was added
            # read that column as null instead of failing the whole scan.
            schema=contract.arrow_schema,
            partitioning=ds.partitioning(part_schema, flavor="hive"),
            partition_base_dir=root,
        )

    # ---- Iceberg ---------------------------------------------------------------------------
    def load_table(self, contract: TableContract, suffix: str = "") -> Table | None:
        try:
            return self.catalog.load_table(self.identifier(contract, suffix))
        except NoSuchTableError:
            return None

    def ensure_table(self, contract: TableContract) -> Table:
        table = self.load_table(contract)
        if table is None:
            namespace = self.namespaces[contract.layer]
            if self.create_namespaces:
                create_namespace_if_missing(self.catalog, namespace)
            # pyiceberg would re-apply a conflicting commit to the new metadata by itself; the
            # merge re-plans from the new state instead (merge()), so its own retries are off.
            properties = {"format-version": "2", "write.parquet.compression-codec": "zstd", "commit.retry.num-retries": "0"}
            if contract.mode is WriteMode.merge:
                properties.update(full_key_bounds(contract))
            layer = contract.layer.value
            try:
                with self._storage_errors(contract):  # the first metadata file goes to the table's bucket
                    table = self.catalog.create_table_if_not_exists(
                        self.identifier(contract),
                        schema=contract.iceberg_schema,
                        partition_spec=contract.partition_spec(),
                        location=self.uri(contract),
                        properties=properties,
                    )
            except NoSuchNamespaceError:
                req = Requirement("database", namespace, f"{layer} tables", database_variable(layer))
                raise AwsSetupError(missing(req, self.aws or AwsConfig(None)) + f" (see {DOCS})") from None
            return table
        return evolve_schema(contract, table)

    def _tombstones(self, contract: TableContract) -> Table:
        table = self.load_table(contract, "__tombstones")
        if table is None:
            key = contract.column(contract.primary_key[0])
            seq = contract.column(contract.sequence_by)
            tomb = TableContract(
                name=contract.name + "__tombstones",
                layer=contract.layer,
                description=f"Applied deletes of {contract.qualified_name}",
                columns=(key, Column(name="seq", type=seq.type, required=True)),
                primary_key=(key.name,),
                write_mode=WriteMode.overwrite,
            )
            table = self.catalog.create_table_if_not_exists(
                self.identifier(tomb),
                schema=tomb.iceberg_schema,
                location=self.uri(tomb),
                properties={"format-version": "2", **full_key_bounds(tomb)},
            )
        return table

    def _iceberg_append(self, contract: TableContract, data: pa.Table, stamp: CommitStamp) -> WriteResult:
        table = self.ensure_table(contract)
        data = contract.conform(data)
        if data.num_rows:
            table.append(data, snapshot_properties=stamp.properties())
        return self._result(contract, table, data.num_rows, committed=data.num_rows > 0)

    def merge(self, contract: TableContract, data: pa.Table, stamp: CommitStamp, branch: str | None = None) -> WriteResult:
        # conform refuses null keys (key columns are required) and other contract breaks before
        # anything is read or written.
        batch = contract.conform(data)
        events = _events(contract, batch)
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                with self._storage_errors(contract):
                    return self._merge_once(contract, batch, events, stamp, branch)
            except (CommitFailedException, ValidationException):
                # Another writer committed since this attempt read the table. Its plan may be stale
                # (a key the other writer inserted, a file it rewrote), so plan again from the new
                # state rather than replaying this one; the other writer's rows are never dropped.
                if attempt == MERGE_ATTEMPTS:
                    raise
                time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def _merge_once(
        self, contract: TableContract, batch: pa.Table, events: pa.Table, stamp: CommitStamp, branch: str | None = None
    ) -> WriteResult:
        key = contract.primary_key[0]
        seq = contract.sequence_by
        table = self.ensure_table(contract)
        keys = events[key].combine_chunks()
        wanted = [key, *([seq] if seq else []), *contract.change_columns]
        # Look up in what the commit replaces: the branch's head when writing to a branch.
        found = file_rewrite.lookup(at_branch(table, branch) if branch else table, key, keys, wanted)
        found_rows = _cast(found.values, contract.arrow_schema)
        # A table (and its tombstones) should hold one row per key; should another writer have left
        # more, planning on the newest keeps the merge's rules well defined.
        existing = reduce_batch(found_rows, key, seq)
        # No key found twice (as the merge writes tables): existing is then row for row found.rows,
        # and the plan's positions in it mark the rows to drop. Otherwise the rows go by key, so
        # every copy of a key some other writer left twice is replaced.
        aligned = existing.num_rows == found_rows.num_rows
        tomb_table = self._tombstones(contract) if contract.delete_flag else None
        # With an audit the tombstones are read from and written to the tombstones table's branch of
        # the same name (start_audit made it): they are published with the data or not at all.
        tomb_read = (at_branch(tomb_table, branch) if branch else tomb_table) if tomb_table is not None else None
        tomb_found = file_rewrite.lookup(tomb_read, key, keys, [key, "seq"]) if tomb_read is not None else None
        tombs = (
            reduce_batch(_cast(tomb_found.values, tombstone_schema(contract)), key, "seq")
            if tomb_found is not None
            else tombstone_schema(contract).empty_table()
        )
        plan = plan_merge(contract, events, existing, tombs)
        counts = {"inserted": plan.inserted, "updated": plan.updated, "deleted": plan.deleted, "ignored": plan.ignored}
        # Which looked-up rows the merge replaces or deletes: used for the change report and to
        # pick the files to rewrite, so computed once.
        replaced = _mask(found.rows.num_rows, plan.removed_rows) if aligned else pc.is_in(
            found.rows[key], value_set=plan.remove_keys.cast(found.rows.schema.field(key).type)
        )
        changed = changed_values(contract, existing, plan, replaced if aligned else None)
        positions = plan.upserts[_POSITION]

        def fetch(at: pa.Array) -> pa.Table:
            # Delete events may hold nulls in required columns: cast only the upserts taken.
            return batch.take(positions.take(at)).select(contract.column_names).cast(contract.arrow_schema)

        if plan.changes == 0 and not stamp.table_properties:
            return self._result(
                contract, table, 0, committed=False, counts=counts, changed=changed, branch=branch,
                written_rows=contract.arrow_schema.empty_table(),
            )
        props = {
            **stamp.properties(),
            **{f"lakehouse.rows-{k}": str(v) for k, v in counts.items()},
            # What this snapshot changed, in the snapshot itself: Gold plans its rebuilds from the
            # tables' own history, never from what Dagster happened to record (io/watermarks.py).
            **changed_summary(changed),
        }
        if tomb_table is not None and len(plan.tombstones):
            # Tombstones are committed first (to the audit branch if there is one): if the data commit
            # then fails, re-applying the batch still deletes (the row's own sequence is older), so
            # nothing is lost or resurrected.
            self._commit_tombstones(contract, tomb_table, tomb_found, tombs, plan.tombstones, stamp, branch)
        done = None
        tx = table.transaction()
        try:
            if len(plan.remove_keys) or plan.upserts.num_rows:
                # One OVERWRITE snapshot: the files that lose a row are replaced, new rows added.
                with tx.update_snapshot(snapshot_properties=props, branch=branch or MAIN_BRANCH).overwrite() as ow:
                    done = file_rewrite.rewrite(tx, table, ow, key, found, replaced, plan.upserts[key], fetch)
            if stamp.table_properties:
                tx.set_properties(stamp.table_properties)
            with conflicts_as_commit_failures():
                tx.commit_transaction()
        except (CommitFailedException, ValidationException):
            if done is not None:
                file_rewrite.discard(table, done.added)  # the commit did not land: its files are orphans
            raise
        return self._result(
            contract, table, plan.upserts.num_rows, committed=plan.changes > 0, counts=counts, changed=changed,
            branch=branch, written_rows=done.written if done is not None else contract.arrow_schema.empty_table(),
        )

    def _commit_tombstones(
        self, contract, tomb_table: Table, found, current: pa.Table, new: pa.Table, stamp: CommitStamp, branch: str | None = None
    ) -> None:
        key = contract.primary_key[0]
        old = current.select([key, "seq"]).rename_columns([key, "__old_seq"])
        joined = new.join(old, keys=key, join_type="left outer")
        # A tombstone already recorded with the same sequence (a retry after a crash between the
        # two commits) is not written again.
        fresh = joined.filter(pc.fill_null(pc.greater(joined["seq"], joined["__old_seq"]), True))
        if fresh.num_rows == 0:
            return
        raised = fresh.filter(pc.is_valid(fresh["__old_seq"]))[key].combine_chunks()
        rows = fresh.select([key, "seq"]).cast(tombstone_schema(contract))
        replaced = pc.is_in(found.rows[key], value_set=raised.cast(found.rows.schema.field(key).type))
        written: list = []
        tx = tomb_table.transaction()
        try:
            with tx.update_snapshot(snapshot_properties=stamp.properties(), branch=branch or MAIN_BRANCH).overwrite() as ow:
                written = file_rewrite.rewrite(tx, tomb_table, ow, key, found, replaced, rows[key], rows.take).added
            with conflicts_as_commit_failures():
                tx.commit_transaction()
        except (CommitFailedException, ValidationException):
            file_rewrite.discard(tomb_table, written)
            raise

    def overwrite(
        self, contract: TableContract, data: pa.Table, stamp: CommitStamp, partition: dict | None = None, branch: str | None = None
    ) -> WriteResult:
        table = self.ensure_table(contract)
        data = contract.conform(data)
        condition: BooleanExpression = AlwaysTrue()
        terms = [EqualTo(c, v[0]) if len(v) == 1 else In(c, v) for c, v in partition_values(contract, partition, arrow_rows_outside(data)).items()]
        if terms:
            condition = reduce(And, terms) if len(terms) > 1 else terms[0]
        if branch:
            at_branch(table, branch)  # the branch must still exist: a commit would start a missing one empty
        with self._storage_errors(contract), conflicts_as_commit_failures(), table.transaction() as tx:
            tx.overwrite(data, overwrite_filter=condition, snapshot_properties=stamp.properties(), branch=branch or MAIN_BRANCH)
            if stamp.table_properties:
                tx.set_properties(stamp.table_properties)
        return self._result(contract, table, data.num_rows, branch=branch, written_rows=data)

    def _result(
        self, contract, table: Table, written: int, committed: bool = True, counts=None, changed=None,
        branch: str | None = None, written_rows: pa.Table | None = None,
    ) -> WriteResult:
        table = table.refresh()
        snap = table.snapshot_by_name(branch) if branch else table.current_snapshot()
        rows = int(snap.summary.get("total-records", 0)) if snap and snap.summary else 0
        return WriteResult(
            contract.qualified_name, table.location(), contract.mode, written, rows,
            snapshot_id=snap.snapshot_id if snap else None, committed=committed, counts=counts or {}, changed=changed or {},
            branch=branch, written_rows=written_rows,
        )

    # ---- write-audit-publish ---------------------------------------------------------------
    # Each audited write has a branch of its own (audit_branch_name), on the table and, for a table
    # with deletes, on its tombstones table: nothing the write changes reaches a main before publish.
    def start_audit(self, contract: TableContract, branch: str) -> int:
        """Point ``branch`` of the table (and of its tombstones table) at main's current snapshot,
        replacing what an earlier attempt of the same name left there, and remove the table's stale
        audit branches (KEPT_AUDIT_BRANCHES). Returns main's snapshot id: the base ``publish``
        expects main still to be at."""
        table = with_first_snapshot(self.ensure_table(contract), contract.arrow_schema)  # makes the namespace too
        if contract.delete_flag:
            start_branch(with_first_snapshot(self._tombstones(contract), tombstone_schema(contract)), branch)
        return start_branch(table, branch)

    def publish(self, contract: TableContract, branch: str, table_properties: dict[str, str], *, base: int, head: int) -> int:
        """Move main from ``base`` to ``head``, the snapshot this write produced on ``branch``, set
        ``table_properties`` (the watermark) and remove the branch. Returns main's new snapshot id.

        Refused (CommitFailedException, nothing published) unless the branch is still at ``head``,
        main still at ``base`` and ``head`` descends from ``base``: otherwise another writer moved
        one of them, and publishing would drop its work or publish a snapshot under this write's
        watermark. The write's tombstones are published first, then data and watermark in one
        commit; a crash between the two leaves only tombstones published, which is harmless: the
        watermark did not move, so the batch is applied again and its deletes apply again (the
        rows' own sequence is older, lakehouse/io/merge_rules.py)."""
        table = self.load_table(contract)
        if table is None:
            raise CommitFailedException(f"{contract.qualified_name}: the table does not exist; nothing to publish from branch {branch!r}, run the write again")
        check_fast_forward(contract.qualified_name, table, branch, base, head)
        if contract.delete_flag:
            self._publish_tombstones(contract, branch)
        fast_forward(table, branch, base, head, table_properties)
        return head

    def _publish_tombstones(self, contract: TableContract, branch: str) -> None:
        """Move the tombstones table's main to its ``branch`` (and remove the branch), if main has not
        moved since the branch was made (one commit asserting both refs)."""
        where = f"{contract.qualified_name}__tombstones"
        tombs = self.load_table(contract, "__tombstones")
        head = tombs.snapshot_by_name(branch) if tombs is not None else None
        if head is None:  # start_audit made it: gone means removed as stale, so its deletes are unknown
            raise CommitFailedException(f"{where}: audit branch {branch!r} no longer exists; nothing published, run the write again")
        main = tombs.current_snapshot().snapshot_id
        if main not in lineage(tombs, head.snapshot_id):
            raise CommitFailedException(
                f"{where}: main moved to snapshot {main} since the audit began (another write published deletes); "
                f"branch {branch!r} not published, run the write again"
            )
        fast_forward(tombs, branch, main, head.snapshot_id, {})

    def key_matches(self, contract: TableContract, keys: pa.Array, branch: str | None = None) -> pa.Array:
        """The primary-key values of rows whose key is one of ``keys`` (one per row, so a duplicated
        key shows twice), reading only files whose key bounds can hold them."""
        key = contract.primary_key[0]
        table = self.load_table(contract)
        if table is None or len(keys) == 0:
            return pa.array([], contract.column(key).arrow_type())
        if branch:
            head = table.snapshot_by_name(branch)
            if head is None:
                return pa.array([], contract.column(key).arrow_type())
            # A read-only view of the table whose current snapshot is the branch head, so the
            # pruned lookup reads the branch.
            view = table.metadata.model_copy(update={"current_snapshot_id": head.snapshot_id})
            table = Table(table.name(), view, table.metadata_location, table.io, self.catalog)
        return file_rewrite.lookup(table, key, keys, [key]).rows[key].combine_chunks()

    def column(self, contract: TableContract, column: str, branch: str | None = None) -> pa.Array:
        """One column of the table (of a branch's head if given): a projected read."""
        table = self.load_table(contract)
        if table is None:
            return pa.array([], contract.column(column).arrow_type())
        snap = table.snapshot_by_name(branch) if branch else table.current_snapshot()
        if snap is None:
            return pa.array([], contract.column(column).arrow_type())
        return table.scan(snapshot_id=snap.snapshot_id, selected_fields=(column,)).to_arrow()[column].combine_chunks()

    # ---- reading ---------------------------------------------------------------------------
    def read(self, contract: TableContract, *, bronze_files: list[str] | None = None, days: DayRange | None = None) -> pa.Table:
        if contract.layer is Layer.bronze:
            dataset = self._bronze_dataset(contract, bronze_files)
            data = dataset.to_table() if dataset is not None else contract.arrow_schema.empty_table()
        else:
            table = self.load_table(contract)
            if table is None:
                data = contract.arrow_schema.empty_table()
            else:
                # File statistics on the column prune the scan to files that can hold those days.
                data = table.scan(row_filter=_day_filter(days) if days else AlwaysTrue()).to_arrow()
        return contract.conform(data)

    def history(self, contract: TableContract, after: int = 0) -> list[tuple[int, dict[str, str]]]:
        """(sequence number, summary) of each snapshot in main's history newer than sequence number
        ``after``, oldest first: what the table itself says changed, commit by commit."""
        table = self.load_table(contract)
        if table is None or table.current_snapshot() is None:
            return []
        changes = []
        for snap in ancestors_of(table.current_snapshot(), table.metadata):
            seq = snap.sequence_number or 0
            if seq <= after:
                break
            changes.append((seq, dict(snap.summary.additional_properties) if snap.summary else {}))
        return changes[::-1]

    def current_seq(self, contract: TableContract) -> int:
        """Sequence number of main's current snapshot (0: none yet)."""
        table = self.load_table(contract)
        snap = table.current_snapshot() if table is not None else None
        return (snap.sequence_number or 0) if snap is not None else 0

    def data_files(self, contract: TableContract, *, bronze_files: list[str] | None = None, days: DayRange | None = None) -> list[str] | None:
        """URIs of the Parquet files holding what ``read`` would return, for engines that read Parquet
        themselves (Spark), or None when the files alone would not give the right rows (delete files).

        With ``days``, the files may also hold rows of other days: the reader must filter."""
        if contract.layer is Layer.bronze:
            root = self.uri(contract).rstrip("/")
            names = self.bronze_files(contract) if bronze_files is None else bronze_files
            return [f"{root}/{name}" for name in names]
        table = self.load_table(contract)
        if table is None or table.current_snapshot() is None:
            return []
        tasks = list(table.scan(row_filter=_day_filter(days) if days else AlwaysTrue()).plan_files())
        if any(task.delete_files for task in tasks):
            return None
        return [task.file.file_path for task in tasks]

    def info(self, contract: TableContract) -> TableInfo:
        if contract.layer is Layer.bronze:
            # From the registry's running totals: no listing, no footer read.
            registry = self.bronze(contract)._registry()
            props = registry.properties if registry is not None else {}
            rows, files = int(props.get("lakehouse.records-total", 0)), int(props.get("lakehouse.files-total", 0))
            return TableInfo(contract.qualified_name, self.uri(contract), contract.mode, registry is not None, rows, files=files)
        table = self.load_table(contract)
        if table is None:
            return TableInfo(contract.qualified_name, self.uri(contract), contract.mode, False, 0)
        snap = table.current_snapshot()
        summary = dict(snap.summary.additional_properties) if snap and snap.summary else {}
        return TableInfo(
            contract.qualified_name,
            table.location(),
            contract.mode,
            True,
            int(summary.get("total-records", 0)),
            snapshot_id=snap.snapshot_id if snap else None,
            files=int(summary.get("total-data-files", 0)),
            summary=summary,
            properties=dict(table.properties),
        )





MERGE_ATTEMPTS = 5  # plans of one merge before a run of concurrent commits is reported as a failure


_POSITION = "__lakehouse_position"  # an event's row in the conformed batch


def _events(contract: TableContract, batch: pa.Table) -> pa.Table:
    """What planning a merge needs of a batch, in key order: key, sequence, delete flag, change
    columns and each event's position in the batch. The other columns stay where they are until
    the rows are written (``fetch``): sorting and filtering a narrow table is what keeps the
    plan's cost small next to the files it rewrites.

    Sorted once here, with a stable sort, so equal keys keep their order (ties go to the later
    event): the lookups, the plan and the files written all need key order and keep it."""
    columns = [contract.primary_key[0], contract.sequence_by, contract.delete_flag, *contract.change_columns]
    present = [c for c in dict.fromkeys(columns) if c and c in batch.column_names]
    events = batch.select(present).append_column(_POSITION, pa.array(np.arange(batch.num_rows, dtype=np.int64)))
    order = file_rewrite.key_order(events[contract.primary_key[0]])
    return events if order is None else events.take(order)


def _mask(length: int, positions: pa.Array) -> pa.Array:
    """A boolean array of ``length``, true at ``positions``."""
    mask = np.zeros(length, dtype=bool)
    mask[positions.to_numpy(zero_copy_only=False)] = True
    return pa.array(mask)


def _cast(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    return rows.cast(pa.schema([schema.field(name).with_nullable(True) for name in rows.column_names]))


def _day_filter(days: DayRange) -> BooleanExpression:
    start, end = days.bounds()
    return And(GreaterThanOrEqual(days.column, start.isoformat()), LessThan(days.column, end.isoformat()))
