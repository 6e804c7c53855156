"""Record accounting: every Bronze record is applied, superseded, or quarantined with its reason."""

import dagster as dg

from lakehouse.contracts.model import TableContract
from lakehouse.contracts.tables import (
    CUSTOMERS,
    CUSTOMERS_RAW,
    CUSTOMERS_REJECTS,
    ORDERS,
    ORDERS_RAW,
    ORDERS_REJECTS,
    PAYMENTS,
    PAYMENTS_RAW,
    PAYMENTS_REJECTS,
)
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.watermarks import applied_seq
from lakehouse.resources.transformation_run import ACCOUNTING_PREFIX

ACCOUNTED = ((ORDERS, ORDERS_RAW, ORDERS_REJECTS), (CUSTOMERS, CUSTOMERS_RAW, CUSTOMERS_REJECTS))
ACCOUNTED_FROM_DATABASE = ((PAYMENTS, PAYMENTS_RAW, PAYMENTS_REJECTS),)


def account(store, silver: TableContract, bronze: TableContract, rejects: TableContract) -> dict:
    """Compare Bronze with where its records went, from metadata only (footers, snapshot summaries,
    table properties): no table scan."""
    silver_props = store.info(silver).properties
    rejects_info = store.info(rejects)
    applied = applied_seq(silver_props, bronze.qualified_name)
    quarantined = applied_seq(rejects_info.properties, bronze.qualified_name)
    landed = store.bronze_records_through(bronze, applied)
    read = int(silver_props.get(f"{ACCOUNTING_PREFIX}read", 0))
    rejected = int(silver_props.get(f"{ACCOUNTING_PREFIX}rejected", 0))
    problems = []
    if read != landed:
        problems.append(f"{silver.qualified_name} read {read} records but its Bronze batches hold {landed}")
    if quarantined != applied:
        problems.append(
            f"{rejects.qualified_name} has applied {bronze.qualified_name} through registration {quarantined}, "
            f"{silver.qualified_name} through {applied}: run the ingest job again to bring both to the same point"
        )
    elif rejected != rejects_info.row_count:
        problems.append(f"{rejected} records were rejected but {rejects.qualified_name} holds {rejects_info.row_count}")
    return {
        "bronze_records": landed,
        "records_read": read,
        "records_rejected": rejected,
        "records_in_quarantine": rejects_info.row_count,
        "records_valid": read - rejected,
        "unaccounted": abs(landed - read) + abs(rejected - rejects_info.row_count),
        "problems": problems,
    }


def accounting_check(silver: TableContract, bronze: TableContract, rejects: TableContract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=silver.asset_key,
        name="records_accounted_for",
        additional_deps=[rejects.asset_key],
        # Evaluated after both tables published, from their metadata: there is nothing left to
        # hold back in the run (its quarantine table runs after the Silver table and before this
        # check, so blocking would make a cycle). An ERROR failure still fails `lakehouse refresh`.
        blocking=False,
        description=f"every {bronze.qualified_name} record is in {silver.qualified_name} (applied or superseded) or in {rejects.qualified_name}",
    )
    def _check(store: TableStoreResource) -> dg.AssetCheckResult:
        facts = account(store.get_store(), silver, bronze, rejects)
        problems = facts.pop("problems")
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems) or "every record accounted for",
            metadata=facts,
        )

    return _check


def accounting_checks(database_sources: bool = False) -> list[dg.AssetChecksDefinition]:
    return [accounting_check(*triple) for triple in (*ACCOUNTED, *(ACCOUNTED_FROM_DATABASE if database_sources else ()))]
