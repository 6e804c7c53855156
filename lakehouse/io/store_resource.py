"""The table store as a Dagster resource: where tables live is configuration, not code."""

import functools

from dagster import ConfigurableResource
from pydantic import Field
from pyiceberg.catalog import load_catalog

from lakehouse.contracts.model import Layer
from lakehouse.io import aws
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.glue import GlueParquetTables
from lakehouse.io.table_store import TableStore


class TableStoreResource(ConfigurableResource):
    """Configures the pyiceberg/Arrow table store.

    ``catalog_properties`` go to ``pyiceberg.catalog.load_catalog`` unchanged (for example
    ``{"type": "sql", "uri": "sqlite:///...", "warehouse": "file:///..."}`` or ``{"type": "glue", ...}``).
    With a Glue catalog the same properties (``s3.region``, ``s3.endpoint``) configure Bronze's S3
    access, Bronze tables are registered in Glue too, and the buckets and databases are checked once
    per process before first use.

    ``store_kind`` picks the engine of the data-changing writes: ``arrow`` (pyiceberg and Arrow) or
    ``spark`` (Spark SQL on Iceberg's Spark runtime, ``SparkTableStore``), on the same catalog. The
    Spark store opens that catalog in Spark with ``spark_catalog`` (Iceberg's catalog properties,
    without the ``spark.sql.catalog.<catalog_name>.`` prefix) and uses the process's Spark session
    (the ``spark`` resource's, started with the Iceberg runtime); if none is running when it first
    needs one, it starts one with ``spark_config`` (the same settings that resource starts with).
    """

    catalog_name: str = "lakehouse"
    catalog_properties: dict[str, str]
    locations: dict[str, str] = Field(description="layer -> root URI its tables live under")
    namespaces: dict[str, str] = Field(description="layer -> catalog namespace (Glue database)")
    store_kind: str = Field(default="arrow", description="arrow (pyiceberg + Arrow) or spark (Spark SQL on Iceberg's Spark runtime)")
    spark_catalog: dict[str, str] = Field(
        default={}, description="spark store: the catalog's Spark properties, without the spark.sql.catalog.<name>. prefix"
    )
    spark_config: dict[str, str] = Field(
        default={}, description="spark store: the Spark settings of a session it starts (when none is running yet)"
    )

    @property
    def is_glue(self) -> bool:
        return self.catalog_properties.get("type") == "glue"

    def get_store(self) -> TableStore:
        locations = {Layer(k): v for k, v in self.locations.items()}
        namespaces = {Layer(k): v for k, v in self.namespaces.items()}
        store_class, spark = self._engine()
        if not self.is_glue:
            catalog = _catalog(self.catalog_name, tuple(sorted(self.catalog_properties.items())))
            return store_class(catalog, locations=locations, namespaces=namespaces, **spark)
        config = aws.AwsConfig.from_catalog_properties(self.catalog_properties)
        aws.verify(config, aws.store_requirements(self.locations, self.namespaces))
        catalog, filesystem = _glue_catalog(self.catalog_name, tuple(sorted(self.catalog_properties.items())))
        return store_class(
            catalog,
            locations=locations,
            namespaces=namespaces,
            filesystem=filesystem,
            bronze_catalog=GlueParquetTables(catalog.glue),
            # The databases are infrastructure (terraform/): creating a missing one here would
            # hide a wrong name or region, and needs a permission the pipeline should not have.
            create_namespaces=False,
            aws=config,
            **spark,
        )

    def _engine(self) -> tuple[type[TableStore], dict]:
        """The store class and its Spark arguments (none for the Arrow store)."""
        if self.store_kind == "arrow":
            return ArrowTableStore, {}
        if self.store_kind != "spark":
            raise ValueError(f"unknown table store kind {self.store_kind!r}: 'arrow' or 'spark'")
        from lakehouse.io.spark_store import SparkTableStore

        if not self.spark_catalog:
            raise ValueError("the spark table store needs spark_catalog: the Iceberg catalog's Spark properties")
        return SparkTableStore, {
            "spark_session": functools.partial(_spark_session, tuple(sorted(self.spark_config.items()))),
            "spark_catalog": dict(self.spark_catalog),
        }


def _spark_session(config: tuple[tuple[str, str], ...]):
    """The process's Spark session; if none is running yet, one started with ``config``.

    A running session is returned as it is: the Iceberg runtime can only have been loaded when its
    JVM started (the store checks for its extensions), and pointing the catalog at this store's is
    the store's own business (it also drops a catalog Spark loaded for another home)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if SparkContext._active_spark_context is None:
        for key, value in config:
            builder = builder.config(key, value)
    return builder.getOrCreate()


@functools.lru_cache(maxsize=8)
def _catalog(name: str, properties: tuple[tuple[str, str], ...]):
    """One catalog per process and configuration, as a run asks for the store at every step and
    write: a SQL catalog opens an engine and checks its tables, a Glue one loads boto3's model."""
    return load_catalog(name, **dict(properties))


@functools.lru_cache(maxsize=8)
def _glue_catalog(name: str, properties: tuple[tuple[str, str], ...]):
    """One Glue catalog and S3 filesystem per process and configuration: creating a boto3 Glue
    client loads the service model (about 0.3 s), and a run asks for the store at every step.
    Both hold only HTTP clients, which are safe to share between threads.

    Every client retries transient failures the same way (aws.REQUEST_ATTEMPTS): the Glue client
    is AwsConfig's, not one pyiceberg builds from ``glue.*`` properties (pyiceberg/catalog/glue.py
    would retry 10 times and hands ``glue.max-retries`` to botocore as given, where a string, as
    configuration holds, fails), and the tables' S3 FileIO gets Arrow's retry strategy through
    ``s3.retry-strategy-impl`` unless the configuration names another."""
    props = dict(properties)
    config = aws.AwsConfig.from_catalog_properties(props)
    props.setdefault("s3.retry-strategy-impl", aws.S3_RETRY_STRATEGY_IMPL)
    catalog = load_catalog(name, **props, client=config.client("glue"))
    return catalog, config.s3_filesystem()
