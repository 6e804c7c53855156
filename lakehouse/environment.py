"""Resource sets per environment: the same resource keys everywhere, only implementations differ.

``LAKEHOUSE_ENV`` picks the set; no asset ever branches on it.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from lakehouse.assets.transformation import FailFastIOManager
from lakehouse.automation.partitions import DEFAULT_START, PartitionsResource, first_day_of_data
from lakehouse.checks.write_audit import ContractChecks
from lakehouse.contracts.model import Layer
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS, ORDERS_RAW
from lakehouse.io.aws import AwsConfig
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_write import TableWriter
from lakehouse.resources.compute import LocalSparkCompute, SparkCompute
from lakehouse.resources.dbt import DbtBuildResource
from lakehouse.resources.iceberg_spark import iceberg_spark_config
from lakehouse.resources.pipes_compute import EmrServerlessCompute, GlueCompute
from lakehouse.resources.release import release_hash
from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, LocalSparkResource
from lakehouse.settings import Settings
from lakehouse.sources.landing import SOURCE_SUFFIXES, LandingZoneResource
from lakehouse.sources.postgres import PASSWORD_VARIABLE, PostgresSourceResource

# How long a catalog statement waits for another process's lock on the SQLite catalog before
# failing with "database is locked". A commit holds the lock for milliseconds, so a writer queued
# behind a few others gets through; one held longer (a stuck process, a shell in a transaction)
# fails after this and is the step's retry policy's, then the user's, to deal with. pysqlite
# (Python's sqlite3) waits 5 s by default; pyiceberg's SqlCatalog passes its "uri" property to
# SQLAlchemy's create_engine unchanged (pyiceberg/catalog/sql.py) and SQLAlchemy's pysqlite
# dialect hands a "timeout" query parameter to sqlite3.connect (sqlalchemy/dialects/sqlite/pysqlite.py).
# A catalog opened while the lock is held waits twice: pyiceberg's first check of its tables
# fails, then it tries to create them.
CATALOG_BUSY_TIMEOUT_SECONDS = 15


def local_store(settings: Settings) -> TableStoreResource:
    """The embedded default: a pyiceberg SQL catalog on SQLite and a warehouse folder."""
    settings.home.mkdir(parents=True, exist_ok=True)
    warehouse = settings.warehouse.as_uri()
    uri = f"sqlite:///{settings.catalog_path}?timeout={CATALOG_BUSY_TIMEOUT_SECONDS}"
    return _store(
        settings,
        catalog_properties={"type": "sql", "uri": uri, "warehouse": warehouse},
        locations={layer.value: f"{warehouse}/{layer.value}" for layer in Layer},
        namespaces={layer.value: layer.value for layer in Layer},
    )


def aws_config(settings: Settings) -> AwsConfig:
    return AwsConfig(settings.aws_region, s3_endpoint=settings.s3_endpoint, glue_endpoint=settings.glue_endpoint)


def aws_store(settings: Settings) -> TableStoreResource:
    """S3 buckets per layer and the Glue Data Catalog: Iceberg tables (Silver, Gold) through
    pyiceberg's GlueCatalog, Bronze Parquet registered as external tables in the Bronze database."""
    return _store(
        settings,
        catalog_properties=aws_config(settings).catalog_properties(),
        locations={layer.value: settings.layer_location(layer.value) for layer in Layer},
        namespaces={layer.value: settings.glue_database(layer.value) for layer in Layer},
    )


def table_store(settings: Settings) -> TableStoreResource:
    return aws_store(settings) if settings.env == "aws" else local_store(settings)


def remote_spark_session(store: TableStoreResource):
    """The Spark session of a remote job (the driver's): the platform's Spark (master, resources and
    Iceberg's runtime are the job's), with the store's catalog and Iceberg's SQL extensions."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("lakehouse-remote-driver")
    for key, value in store.spark_config.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _store(settings: Settings, catalog_properties: dict[str, str], locations: dict[str, str], namespaces: dict[str, str]) -> TableStoreResource:
    """The table store on catalog ``lakehouse``; with ``LAKEHOUSE_STORE=spark``, the Spark-native one
    on the same catalog: its Spark catalog properties, and the Spark settings of the process's
    session (the local ones with Iceberg's runtime jars, SQL extensions and this catalog)."""
    name = "lakehouse"
    engine: dict[str, Any] = {}
    if settings.store == "spark":
        jars = settings.spark_jar_files if settings.spark_runtime == "jars" else []
        iceberg = iceberg_spark_config(name, catalog_properties, jars)
        prefix = f"spark.sql.catalog.{name}."
        engine = {
            "store_kind": "spark",
            "spark_catalog": {key[len(prefix) :]: value for key, value in iceberg.items() if key.startswith(prefix)},
            # A remote job's Spark is the platform's: only Iceberg's settings, no local master or memory.
            "spark_config": {**LOCAL_SPARK_CONFIG, **iceberg} if settings.spark_runtime == "jars" else iceberg,
        }
    return TableStoreResource(catalog_name=name, catalog_properties=catalog_properties, locations=locations, namespaces=namespaces, **engine)


def resources_for(settings: Settings) -> dict[str, Any]:
    store = table_store(settings)
    if settings.env == "aws":
        landing = LandingZoneResource(root=settings.landing_root, region=settings.aws_region, endpoint_url=settings.s3_endpoint)
    else:
        # The default folder appears with the first landed file; one set by hand must exist (a typo).
        landing = LandingZoneResource(root=settings.landing_root, must_exist=settings.landing is not None)
    # Local Spark in both: it reads s3:// data through Arrow (no Hadoop S3 connector needed). With the
    # Spark store, the session starts with Iceberg's runtime and the store's catalog (its settings),
    # and the store writes in the same session: whichever asks first starts it, with these settings.
    spark = LocalSparkResource(spark_config=store.spark_config if store.store_kind == "spark" else LOCAL_SPARK_CONFIG)
    # One writer, the same for the IO manager and the compute: write, audit (the contracts' checks), publish.
    writer = table_writer(settings, store)
    return {
        "store": store,
        "landing": landing,
        "spark": spark,
        "compute": compute_for(settings, spark, writer),
        # Each engine under its own key too, for transformations that pin one (Transformation.engine).
        **{f"compute_{engine.replace('-', '_')}": compute_for(settings, spark, writer, engine) for engine in engines_for(settings)},
        # dbt models: built on dbt-duckdb and published through the same writer, or on Athena in aws mode.
        "dbt": DbtBuildResource(
            target=settings.dbt_models_target,
            publish="in_place" if settings.dbt_models_target == "athena" else "table_store",
            environment=settings.dbt_environment(),
            # Not "dbt": a folder named like a subpackage of lakehouse, in a home named lakehouse/ in the
            # working directory, shadows that subpackage for an editable install.
            work_dir=str(settings.home / "dbt-build"),
        ),
        "table_writer": writer,
        "partitions": PartitionsResource(start=(settings.partitions_start or DEFAULT_START).isoformat()),
        # A LakehouseIOManager whose permanent errors bypass the assets' retry policy.
        "lakehouse_io_manager": FailFastIOManager(writer=writer),
        **({"postgres": postgres_source(settings)} if settings.database_sources else {}),
    }


def with_partitions_start(settings: Settings) -> Settings:
    """``settings`` with the first daily partition decided: the setting, else the first day of the
    data (landing and Bronze days, Silver orders' earliest creation day), else DEFAULT_START. Read
    from listings and Iceberg metadata only; the copy carries it explicitly, so every job rebuilt
    from it, and every remote job it starts, partitions alike."""
    if settings.partitions_start is not None:
        return settings
    try:
        store = table_store(settings).get_store()
        zone = LandingZoneResource(root=settings.landing_root, region=settings.aws_region, endpoint_url=settings.s3_endpoint,
                                   must_exist=False).zone()
        days = [next(iter(zone.days(source)), None) for source in SOURCE_SUFFIXES]
        days += [next(iter(store.bronze_days(contract)), None) for contract in (ORDERS_RAW, CUSTOMERS_RAW)]
        days.append(store.earliest_day(ORDERS, "created_at"))
    except Exception:  # an unreachable bucket must not keep the code location from loading: the
        days = []      # steps that use it report the problem themselves, naming the setting
    return settings.model_copy(update={"partitions_start": first_day_of_data(days) or DEFAULT_START})


def postgres_source(settings: Settings) -> PostgresSourceResource:
    """The database sources' connection; its password is read when a run uses it, from the
    environment (an EnvVar: its value is in no run config) or Secrets Manager."""
    return PostgresSourceResource(
        host=settings.postgres_host,
        port=settings.postgres_port,
        database=settings.postgres_database,
        user=settings.postgres_user,
        password=dg.EnvVar(PASSWORD_VARIABLE) if os.environ.get(PASSWORD_VARIABLE) else None,
        password_secret=settings.postgres_password_secret,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        sslmode=settings.postgres_sslmode,
        batch_rows=settings.postgres_batch_rows,
        overlap_seconds=settings.postgres_overlap_seconds,
        key_snapshot_hours=settings.postgres_key_snapshot_hours,
    )


def engines_for(settings: Settings) -> list[str]:
    """The engines these settings can run: local Spark always; in aws mode Glue, and EMR Serverless
    once its application and role are set."""
    if settings.env != "aws":
        return ["local"]
    return ["local", "glue"] + (["emr-serverless"] if settings.emr_application_id and settings.emr_execution_role_arn else [])


def compute_for(settings: Settings, spark: LocalSparkResource, writer: TableWriter, engine: str | None = None) -> SparkCompute:
    """``engine`` (default ``LAKEHOUSE_COMPUTE``): local Spark, or a Glue job / EMR Serverless
    application through Dagster Pipes."""
    engine = engine or settings.compute
    if engine == "local":
        return LocalSparkCompute(spark=spark, writer=writer)
    remote = {
        "writer": writer,
        "region": settings.aws_region,
        "endpoint_url": settings.aws_endpoint_url,
        "pipes_bucket": settings.bucket("artifacts"),
        "job_variables": settings.remote_variables(),
        "release": release_hash(),  # jobs run exactly the code this code location runs
    }
    if engine == "glue":
        return GlueCompute(job_name=settings.job_name, **remote)
    return EmrServerlessCompute(application_id=settings.emr_application_id, execution_role_arn=settings.emr_execution_role_arn, **remote)


def table_writer(settings: Settings, store: TableStoreResource) -> TableWriter:
    return TableWriter(store=store, audit=ContractChecks(reject_rate_limit=settings.reject_rate_limit))
