"""`lakehouse tables`, `repair`, `maintain` and `rejects`: the tables as they are, and their upkeep."""

from __future__ import annotations

import argparse
import datetime as dt

from lakehouse.cli.arguments import positive
from lakehouse.cli.output import printable
from lakehouse.settings import Settings, SettingsError


def cmd_tables(args: argparse.Namespace, settings: Settings) -> int:
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.contracts.tables import DATABASE_TABLES
    from lakehouse.environment import resources_for

    resources = resources_for(settings)
    store = resources["store"].get_store()
    from lakehouse.io.glue import catalog_metadata

    rows = [("table", "layer", "mode", "rows", "snapshot", "location", "catalog")]
    dbt_tables = [m.contract for m in resources["dbt"].models()]  # the dbt project's models (lakehouse/dbt)
    for contract in (*ALL_TABLES, *(DATABASE_TABLES if settings.database_sources else ()), *dbt_tables):
        info = store.info(contract)
        snapshot = str(info.snapshot_id) if info.snapshot_id is not None else (f"{info.files} files" if info.exists else "-")
        catalog = catalog_metadata(store, contract)
        rows.append((
            contract.asset_key.to_user_string(), contract.layer.value, contract.mode.value, str(info.row_count), snapshot,
            info.uri, catalog.get("glue_table", catalog["catalog_table"]),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    """Convert a home written (or damaged) by an older version: see lakehouse/io/repair.py."""
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.environment import resources_for
    from lakehouse.io.repair import repair

    store = resources_for(settings)["store"].get_store()
    report = repair(store, ALL_TABLES, print, dry_run=args.dry_run)
    if report.purged and not args.dry_run:
        print("run `lakehouse refresh` to rebuild Silver and Gold from Bronze")
    return 0


def cmd_maintain(args: argparse.Namespace, settings: Settings) -> int:
    """Table maintenance now (the maintenance job runs it daily): see lakehouse/io/table_maintenance.py."""
    import uuid

    from lakehouse.assets.maintenance import MAINTAINED_LAYERS, maintain_tables
    from lakehouse.contracts import ALL_TABLES
    from lakehouse.environment import resources_for
    from lakehouse.io.table_store import CommitStamp

    resources = resources_for(settings)
    known = [c for c in (*ALL_TABLES, *(m.contract for m in resources["dbt"].models())) if c.layer in MAINTAINED_LAYERS]
    if args.table:
        chosen = [c for c in known if args.table in (c.asset_key.to_user_string(), c.qualified_name)]
        if not chosen:
            names = ", ".join(c.asset_key.to_user_string() for c in known)
            raise SettingsError(f"--table {args.table}: no such Silver or Gold table; choose one of {names}")
    else:
        chosen = known
    verb = "would" if args.dry_run else "did"
    stamp = CommitStamp(run_id=f"cli-{uuid.uuid4().hex[:12]}", asset_key="lakehouse maintain")

    def show(report) -> None:
        if report.skipped:
            print(f"{report.table}: skipped ({report.skipped})")
            return
        print(f"{report.table}: {'; '.join(report.actions) or 'nothing to do'}")
        if report.actions:
            print(
                f"  {verb} leave {report.data_files_after} data files (from {report.data_files_before}), "
                f"{report.snapshots_after} snapshots (from {report.snapshots_before}); reclaimed {report.bytes_reclaimed} bytes"
            )

    maintain_tables(resources["store"].get_store(), chosen, stamp, dry_run=args.dry_run, on_report=show)
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


def cmd_rejects(args: argparse.Namespace, settings: Settings) -> int:
    """Recent rejects grouped by reason: how many, from how many files, the latest example."""
    import pyarrow.compute as pc

    from lakehouse.contracts.tables import CUSTOMERS_RAW, CUSTOMERS_REJECTS, ORDERS_RAW, ORDERS_REJECTS
    from lakehouse.environment import resources_for

    store = resources_for(settings)["store"].get_store()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.days)
    # Each quarantine with the Bronze table its records come from: their raw text holds its columns.
    for contract, source in ((ORDERS_REJECTS, ORDERS_RAW), (CUSTOMERS_REJECTS, CUSTOMERS_RAW)):
        rows = store.read(contract)
        rows = rows.filter(pc.greater_equal(rows["_ingested_at"], since))
        print(f"{contract.asset_key.to_user_string()}: {rows.num_rows} reject(s) ingested in the last {args.days} day(s)")
        if rows.num_rows == 0:
            continue
        by_reason = rows.group_by("reason").aggregate([("record_id", "count"), ("_source_file", "count_distinct")])
        for r in sorted(by_reason.to_pylist(), key=lambda r: (-r["record_id_count"], r["reason"])):
            example = rows.filter(pc.equal(rows["reason"], r["reason"])).sort_by([("_ingested_at", "descending")]).slice(0, 1).to_pylist()[0]
            # Landed text is anybody's: escape what a terminal would act on (escape sequences, NUL).
            print(
                f"  {printable(r['reason']):<32} {r['record_id_count']:>6}  in {r['_source_file_count_distinct']} file(s); "
                f"latest {printable(example['record_id'])}: {printable(shown_raw(source, example['_raw'], args.unmask)[:60])}"
            )
    return 0


def shown_raw(source, raw: str, unmask: bool = False) -> str:
    """A quarantined record's raw text as `lakehouse rejects` shows it: the fields of its source's
    pii columns masked unless ``unmask`` (the table itself keeps the text as landed, for repair).
    A line that cannot be split is masked whole: never shown clear by mistake."""
    from lakehouse.contracts.sensitive import mask_fields, mask_text, pii_columns
    from lakehouse.contracts.tables import CUSTOMERS_RAW
    from lakehouse.sources.landing import CUSTOMER_HEADER, split_customer_row

    kinds = pii_columns(source)
    if unmask or not kinds:
        return raw
    if source is CUSTOMERS_RAW:
        fields, _ = split_customer_row(raw)
        if fields is not None:
            return mask_fields(fields, {i: kinds[name] for i, name in enumerate(CUSTOMER_HEADER) if name in kinds})
    return mask_text(raw)


def register(command) -> None:
    tables = command(
        "tables", help="list tables with layer, write mode, rows and latest snapshot",
        examples="  lakehouse tables\n  lakehouse list        the code location instead: assets, jobs, schedules, sensors",
    )
    tables.set_defaults(run=cmd_tables)
    repair = command(
        "repair", help="convert a home written or damaged by an older version (Bronze once per landing file)",
        examples="  lakehouse repair --dry-run        say what would change\n  lakehouse repair",
    )
    repair.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    repair.set_defaults(run=cmd_repair)
    maintain = command(
        "maintain", help="compact, expire and clean Silver and Gold tables under their maintenance policies",
        examples="  lakehouse maintain --dry-run\n  lakehouse maintain --table silver/orders",
    )
    maintain.add_argument("--table", metavar="TABLE", help="only this table (e.g. silver/orders)")
    maintain.add_argument("--dry-run", action="store_true", help="print what it would do, change nothing")
    maintain.set_defaults(run=cmd_maintain)
    rejects = command(
        "rejects", help="recent rejected records grouped by reason",
        examples="  lakehouse rejects\n  lakehouse rejects --days 30 | head",
    )
    rejects.add_argument("--days", type=positive, default=7, help="look back this many days of ingestion (default 7)")
    rejects.add_argument(
        "--unmask", action="store_true",
        help="show the raw text of rejected records as landed, personal data (pii columns) included; masked by default",
    )
    rejects.set_defaults(run=cmd_rejects)
