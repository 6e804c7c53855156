"""The lakehouse's tables, declared once each."""

from __future__ import annotations

from lakehouse.contracts.expectations import Severity, accepted_values, freshness, in_range, reject_rate, relationship, row_count_change
from lakehouse.contracts.model import Column, Layer, TableContract

# Share of a batch's records above which the reject rate is reported as a warning; the blocking
# limit is a setting (LAKEHOUSE_REJECT_RATE_LIMIT, default 5%).
REJECT_RATE_WARNING = 0.05

LINEAGE = (
    Column(name="_source_file", type="string", required=True, description="Landing file, relative to the landing root"),
    Column(name="_ingested_at", type="timestamptz", required=True, description="When Bronze ingested the record"),
    Column(name="_batch_id", type="string", required=True, description="Bronze ingestion batch (Dagster run id)"),
)

_RECORD = (
    Column(name="_raw", type="string", required=True,
           description="The record exactly as landed (a line that is not UTF-8: its bytes, \\ and \\xhh escaped)"),
    Column(name="_line_number", type="long", required=True, description="1-based line in the landing file (0: the whole file, quarantined as unreadable)"),
)

# Who answers for the tables (Dagster owners, shown in the catalog): the platform team for what
# is ingested and merged, the analytics team for the reporting tables.
DATA_PLATFORM = ("team:data-platform",)
ANALYTICS = ("team:analytics",)

_DT = Column(name="dt", type="date", required=True, description="Day the landing file arrived")

ORDERS_RAW = TableContract(
    name="orders_raw",
    layer=Layer.bronze,
    owners=DATA_PLATFORM,
    tags={"domain": "sales"},
    description="Every order CDC event landed, once, as raw JSON text with its lineage.",
    columns=(
        *_RECORD,
        Column(name="_parse_error", type="string", description="not_utf8 when the line is not UTF-8 (else null)"),
        *LINEAGE,
        _DT,
    ),
    partition_by=("dt",),
)

CUSTOMERS_RAW = TableContract(
    name="customers_raw",
    layer=Layer.bronze,
    owners=DATA_PLATFORM,
    tags={"domain": "customers"},
    description="Every customer CSV row landed, once, split into text fields, with its lineage.",
    columns=(
        Column(name="customer_id", type="string", description="customer_id field as landed (text)"),
        Column(name="name", type="string", pii="name", description="name field as landed (text)"),
        Column(name="email", type="string", pii="email", description="email field as landed (text)"),
        Column(name="country", type="string", description="country field as landed (text)"),
        Column(name="updated_at", type="string", description="updated_at field as landed (text, validated in Silver)"),
        Column(name="_parse_error", type="string", description="Why the row could not be split: malformed_csv or not_utf8 (else null)"),
        *_RECORD,
        *LINEAGE,
        _DT,
    ),
    partition_by=("dt",),
)

ORDERS = TableContract(
    name="orders",
    layer=Layer.silver,
    owners=DATA_PLATFORM,
    tags={"domain": "sales"},
    description="One row per live order: its highest-lsn valid CDC event. Deleted orders are absent.",
    columns=(
        Column(name="order_id", type="string", required=True, description="Order identifier"),
        Column(name="customer_id", type="string", required=True, description="Customer who placed the order"),
        Column(name="status", type="string", required=True, description="placed|paid|shipped|delivered|cancelled"),
        Column(name="amount", type="decimal(18,2)", required=True, description="Order amount, >= 0"),
        Column(name="currency", type="string", required=True, description="ISO-4217 code"),
        Column(name="created_at", type="timestamptz", required=True, description="When the order was created (UTC)"),
        Column(name="updated_at", type="timestamptz", required=True, description="When the order last changed (UTC)"),
        Column(name="lsn", type="long", required=True, description="Log sequence number of the winning event"),
        *LINEAGE,
    ),
    primary_key=("order_id",),
    sequence_by="lsn",
    delete_flag="_is_delete",
    change_columns=("created_at",),
    expectations=(
        accepted_values("status", ["placed", "paid", "shipped", "delivered", "cancelled"]),
        in_range("amount", min=0),
        relationship("customer_id", to_table="silver/customers", to_column="customer_id"),
        row_count_change(max_drop=0.5),
        freshness("updated_at", max_age_hours=48),
        reject_rate(REJECT_RATE_WARNING, Severity.warn, name="reject_rate"),
        reject_rate(None, Severity.error, name="reject_rate_limit"),
    ),
)

_REJECT_COLUMNS = (
    Column(name="record_id", type="string", required=True, description="<source file>:<line number>"),
    Column(name="reason", type="string", required=True, description="First validation rule the record broke"),
    Column(name="_raw", type="string", required=True,
           description="The record exactly as landed (a line that is not UTF-8: its bytes, \\ and \\xhh escaped)"),
    Column(name="_line_number", type="long", required=True, description="1-based line in the landing file (0: the whole file, quarantined as unreadable)"),
    *LINEAGE,
)

ORDERS_REJECTS = TableContract(
    name="orders_rejects",
    layer=Layer.silver,
    owners=DATA_PLATFORM,
    tags={"domain": "sales"},
    description="Quarantine: every invalid order record with its raw text, source and reason.",
    columns=_REJECT_COLUMNS,
    primary_key=("record_id",),
)

CUSTOMERS = TableContract(
    name="customers",
    layer=Layer.silver,
    owners=DATA_PLATFORM,
    tags={"domain": "customers"},
    description="One row per customer: the valid row with the latest updated_at.",
    columns=(
        Column(name="customer_id", type="string", required=True, description="Customer identifier"),
        Column(name="name", type="string", description="Display name", pii="name"),
        Column(name="email", type="string", description="E-mail address", pii="email"),
        Column(name="country", type="string", description="ISO-3166 alpha-2 code"),
        Column(name="updated_at", type="timestamptz", required=True, description="When the customer last changed (UTC)"),
        *LINEAGE,
    ),
    primary_key=("customer_id",),
    sequence_by="updated_at",
)

CUSTOMERS_REJECTS = TableContract(
    name="customers_rejects",
    layer=Layer.silver,
    owners=DATA_PLATFORM,
    tags={"domain": "customers"},
    description="Quarantine: every invalid customer record with its raw text, source and reason.",
    columns=_REJECT_COLUMNS,
    primary_key=("record_id",),
)

DAILY_SALES = TableContract(
    name="daily_sales",
    layer=Layer.gold,
    owners=ANALYTICS,
    tags={"domain": "sales"},
    description="Sales per UTC day of order creation and currency, over live orders not cancelled.",
    columns=(
        Column(name="report_date", type="date", required=True, description="UTC date of created_at"),
        Column(name="currency", type="string", required=True, description="ISO-4217 code"),
        Column(name="total_orders", type="long", required=True, description="Number of orders"),
        Column(name="total_revenue", type="decimal(18,2)", required=True, description="Sum of amount"),
        Column(name="unique_customers", type="long", required=True, description="Distinct customers"),
    ),
    primary_key=("report_date", "currency"),
    partition_by=("report_date",),
    expectations=(in_range("total_revenue", min=0), in_range("total_orders", min=1)),
)

CUSTOMER_SUMMARY = TableContract(
    name="customer_summary",
    layer=Layer.gold,
    owners=ANALYTICS,
    tags={"domain": "customers"},
    description="Per customer: attributes, number of live orders and revenue of those not cancelled.",
    columns=(
        Column(name="customer_id", type="string", required=True, description="Customer identifier"),
        Column(name="name", type="string", description="Display name (null if unknown)", pii="name"),
        Column(name="email", type="string", description="E-mail address", pii="email"),
        Column(name="country", type="string", description="ISO-3166 alpha-2 code"),
        Column(name="order_count", type="long", required=True, description="Live orders, any status"),
        Column(name="total_revenue", type="decimal(18,2)", required=True, description="Sum of amount, not cancelled"),
    ),
    primary_key=("customer_id",),
)

ALL_TABLES: tuple[TableContract, ...] = (
    ORDERS_RAW,
    CUSTOMERS_RAW,
    ORDERS,
    ORDERS_REJECTS,
    CUSTOMERS,
    CUSTOMERS_REJECTS,
    DAILY_SALES,
    CUSTOMER_SUMMARY,
)


def contract_for(layer: str, name: str) -> TableContract:
    known = (*ALL_TABLES, *DATABASE_TABLES)
    for contract in known:
        if contract.layer.value == layer and contract.name == name:
            return contract
    raise KeyError(f"no table contract for {layer}/{name}; known: {', '.join(c.qualified_name for c in known)}")


# ---- a database source: payments, extracted from PostgreSQL (sources/postgres.py) ----------------

PAYMENT_STATUSES = ["pending", "captured", "refunded", "failed"]

PAYMENTS_RAW = TableContract(
    name="payments_raw",
    layer=Layer.bronze,
    owners=DATA_PLATFORM,
    tags={"domain": "payments"},
    description="Every payments row read from PostgreSQL, as read (typed), with delete events from key snapshots and lineage.",
    columns=(
        Column(name="payment_id", type="string", description="Payment identifier (the source's key)"),
        Column(name="order_id", type="string", description="Order paid"),
        Column(name="amount", type="decimal(18,2)", description="Amount, in currency"),
        Column(name="currency", type="string", description="ISO-4217 code"),
        Column(name="status", type="string", description="|".join(PAYMENT_STATUSES)),
        Column(name="updated_at", type="timestamptz", description="When the row last changed in the source (the watermark)"),
        Column(name="_deleted", type="boolean", required=True, description="A delete event: the key was gone from the source's key snapshot"),
        Column(name="_line_number", type="long", required=True, description="1-based row in its batch"),
        *LINEAGE,
        _DT,
    ),
    partition_by=("dt",),
)

PAYMENTS = TableContract(
    name="payments",
    layer=Layer.silver,
    owners=DATA_PLATFORM,
    tags={"domain": "payments"},
    description="One row per live payment: its latest valid version. Payments deleted in the source are absent.",
    columns=(
        Column(name="payment_id", type="string", required=True, description="Payment identifier"),
        Column(name="order_id", type="string", required=True, description="Order paid"),
        Column(name="amount", type="decimal(18,2)", required=True, description="Amount, > 0"),
        Column(name="currency", type="string", required=True, description="ISO-4217 code"),
        Column(name="status", type="string", required=True, description="|".join(PAYMENT_STATUSES)),
        Column(name="updated_at", type="timestamptz", required=True, description="When the payment last changed (UTC)"),
        *LINEAGE,
    ),
    primary_key=("payment_id",),
    sequence_by="updated_at",
    delete_flag="_is_delete",
    expectations=(
        accepted_values("status", PAYMENT_STATUSES),
        in_range("amount", min=0),
        row_count_change(max_drop=0.5),
        reject_rate(REJECT_RATE_WARNING, Severity.warn, name="reject_rate"),
        reject_rate(None, Severity.error, name="reject_rate_limit"),
    ),
)

PAYMENTS_REJECTS = TableContract(
    name="payments_rejects",
    layer=Layer.silver,
    owners=DATA_PLATFORM,
    tags={"domain": "payments"},
    description="Quarantine: every invalid payments row with its values (as JSON), source batch and reason.",
    columns=_REJECT_COLUMNS,
    primary_key=("record_id",),
)

ORDER_REVENUE = TableContract(
    name="order_revenue",
    layer=Layer.gold,
    owners=ANALYTICS,
    tags={"domain": "payments"},
    description="Per live order: its amount, what its payments captured and refunded, and revenue net of refunds.",
    columns=(
        Column(name="order_id", type="string", required=True, description="Order identifier"),
        Column(name="customer_id", type="string", required=True, description="Customer who placed the order"),
        Column(name="currency", type="string", required=True, description="The order's ISO-4217 code"),
        Column(name="order_amount", type="decimal(18,2)", required=True, description="The order's amount"),
        Column(name="captured_amount", type="decimal(18,2)", required=True, description="Payments captured (refunded later or not), in the order's currency"),
        Column(name="refunded_amount", type="decimal(18,2)", required=True, description="Payments refunded, in the order's currency"),
        Column(name="net_revenue", type="decimal(18,2)", required=True, description="captured_amount - refunded_amount"),
        Column(name="payments", type="long", required=True, description="Live payments of the order, any status or currency"),
    ),
    primary_key=("order_id",),
    expectations=(in_range("captured_amount", min=0), in_range("refunded_amount", min=0)),
)

# Tables of database sources: in the code location when their database is configured (settings).
DATABASE_TABLES: tuple[TableContract, ...] = (PAYMENTS_RAW, PAYMENTS, PAYMENTS_REJECTS, ORDER_REVENUE)
