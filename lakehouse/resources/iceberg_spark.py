"""Spark configuration for Iceberg tables in the store's catalog, as AWS Glue 5.1 / EMR run them.

``iceberg_spark_config`` turns the catalog properties the table store holds (pyiceberg's, see
``lakehouse.environment``) into the Spark settings that open the same catalog from Spark:

- local: pyiceberg's SQL catalog on SQLite is, table for table, Iceberg's ``JdbcCatalog`` (the same
  ``iceberg_tables`` and ``iceberg_namespace_properties`` rows, ``iceberg_type`` column included), so
  Spark opens the same ``catalog.db`` through the SQLite JDBC driver, with the same warehouse. The
  catalog tables must exist first: open the catalog with pyiceberg before Spark (see
  ``jdbc.init-catalog-tables`` below for why Spark does not create them);
- aws: pyiceberg's GlueCatalog is Iceberg's ``GlueCatalog`` with ``S3FileIO``, in the same region
  and with the same endpoint overrides; credentials come from the AWS SDK's default chain
  (environment, profile, container or instance role), never from configuration.

The jars (Iceberg's Spark runtime and AWS bundle, the SQLite driver) come from Maven Central
through ``jars/pom.xml`` (``FETCH_COMMAND``); on Glue and EMR the runtime provides them, so pass
no jars there. ``spark.jars`` takes effect only when the JVM starts: these settings must be in the
first Spark session a process creates (``SparkSession.builder.getOrCreate`` returns an existing
session unchanged).

Nothing here imports Spark or the settings: the function is pure, and io/ can use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qs

# The versions AWS Glue 5.1 runs (Spark 3.5, Scala 2.12, Java 17); jars/pom.xml lists the same.
ICEBERG_VERSION = "1.10.0"
SQLITE_JDBC_VERSION = "3.50.3.0"
ICEBERG_JARS = (
    f"iceberg-spark-runtime-3.5_2.12-{ICEBERG_VERSION}.jar",
    f"iceberg-aws-bundle-{ICEBERG_VERSION}.jar",
    f"sqlite-jdbc-{SQLITE_JDBC_VERSION}.jar",
)
# The s3:// file system Glue and EMR give Spark (EMRFS), for the local emulation of their jobs:
# S3A of Spark 3.5's Hadoop (3.3.4) and the AWS SDK it was built on. jars/pom.xml fetches them too.
HADOOP_VERSION = "3.3.4"
S3_FILESYSTEM_JARS = (f"hadoop-aws-{HADOOP_VERSION}.jar", "aws-java-sdk-bundle-1.12.262.jar")
# Run from the project root; jars/pom.xml sends the jars to <project root>/.jars.
FETCH_COMMAND = "mvn -q -B -f jars/pom.xml dependency:copy-dependencies"

EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
SPARK_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
JDBC_CATALOG = "org.apache.iceberg.jdbc.JdbcCatalog"
GLUE_CATALOG = "org.apache.iceberg.aws.glue.GlueCatalog"
S3_FILE_IO = "org.apache.iceberg.aws.s3.S3FileIO"
# SQLite's busy timeout when the store's URI sets none: pysqlite's default (5 s), not the driver's 3 s.
DEFAULT_BUSY_TIMEOUT_SECONDS = 5.0


def missing_jars(folder: Path) -> list[str]:
    """The names of ``ICEBERG_JARS`` that ``folder`` lacks (all of them if it does not exist)."""
    return [name for name in ICEBERG_JARS if not (folder / name).is_file()]


def jar_paths(folder: Path) -> list[Path]:
    """The jars Spark needs, in ``folder`` (absolute; whether they exist is the caller's check)."""
    folder = folder.expanduser().absolute()
    return [folder / name for name in ICEBERG_JARS]


def iceberg_spark_config(catalog_name: str, catalog_properties: Mapping[str, str], jars: Iterable[Path | str] = ()) -> dict[str, str]:
    """Spark settings that open the catalog ``load_catalog(catalog_name, **catalog_properties)`` opens.

    ``catalog_properties`` are the table store's (``TableStoreResource.catalog_properties``):
    ``type`` ``sql`` (a ``sqlite:///`` URI and a ``warehouse``) or ``glue`` (``glue.region`` /
    ``client.region`` / ``s3.region``, optional ``glue.endpoint`` and ``s3.endpoint``). ``jars``
    become ``spark.jars`` (none: the runtime provides Iceberg, as on Glue and EMR).
    """
    kind = catalog_properties.get("type")
    if kind == "sql":
        catalog = _jdbc_catalog(catalog_properties)
    elif kind == "glue":
        catalog = _glue_catalog(catalog_properties)
    else:
        raise ValueError(f"no Spark configuration for a catalog of type {kind!r}: only 'sql' (SQLite) and 'glue'")
    prefix = f"spark.sql.catalog.{catalog_name}"
    config = {
        # MERGE INTO / UPDATE / DELETE on Iceberg tables, Iceberg's procedures and DDL (ALTER TABLE ... WRITE ORDERED BY).
        "spark.sql.extensions": EXTENSIONS,
        prefix: SPARK_CATALOG,
        # Each read loads the table's current metadata: other processes (pyiceberg, other steps) commit
        # to the same tables, and Spark's catalog cache would keep serving the snapshot it loaded first
        # (for cache.expiration-interval-ms, 30 s by default).
        f"{prefix}.cache-enabled": "false",
        **{f"{prefix}.{key}": value for key, value in catalog.items()},
        # Timestamps: Iceberg's timestamptz is Spark's TIMESTAMP and its timestamp is TIMESTAMP_NTZ
        # (Spark 3.4+; spark.sql.iceberg.handle-timestamp-without-timezone is gone), so only the
        # session time zone matters: UTC, as the Arrow store's values and the local session are.
        "spark.sql.session.timeZone": "UTC",
    }
    jars = [str(Path(jar).expanduser().absolute()) for jar in jars]
    if jars:
        config["spark.jars"] = ",".join(jars)
    return config


def _jdbc_catalog(props: Mapping[str, str]) -> dict[str, str]:
    uri = props.get("uri", "")
    if not uri.startswith("sqlite:///"):
        raise ValueError(f"Spark opens a SQL catalog on a SQLite file only (a 'sqlite:///<path>' URI), not {uri!r}")
    path, _, query = uri[len("sqlite:///") :].partition("?")
    if not path or path == ":memory:":
        raise ValueError(f"Spark cannot share an in-memory SQLite catalog ({uri!r}): give the catalog a file")
    warehouse = props.get("warehouse")
    if not warehouse:
        raise ValueError("a SQL catalog needs a 'warehouse' property for Spark's JdbcCatalog")
    # SQLAlchemy's sqlite:///relative.db and sqlite:////absolute.db, relative to the working directory either way.
    path = str(Path(path).absolute())
    # pysqlite's "timeout" (seconds, in the URI the store passes to SQLAlchemy) is the SQLite driver's
    # busy_timeout pragma (milliseconds, a URI parameter): both wait that long for another writer's lock.
    timeout = parse_qs(query).get("timeout", [DEFAULT_BUSY_TIMEOUT_SECONDS])[0]
    busy_timeout_ms = round(float(timeout) * 1000)
    return {
        "catalog-impl": JDBC_CATALOG,
        "uri": f"jdbc:sqlite:{path}?busy_timeout={busy_timeout_ms}",
        "warehouse": warehouse,
        # The schema pyiceberg 0.12 creates and uses (iceberg_tables.iceberg_type, views apart from
        # tables); without it JdbcCatalog works in V0 and warns that views are not supported.
        "jdbc.schema-version": "V1",
        # pyiceberg creates the catalog tables (opening its SqlCatalog does); JdbcCatalog must not
        # look for them itself: Iceberg 1.10 checks with DatabaseMetaData.getTables and never closes
        # that ResultSet (JdbcCatalog.atomicCreateTable), and with SQLite an open statement keeps a
        # read lock on the file for as long as the JVM runs, so every other process's catalog commit
        # fails with "database is locked". Spark on a catalog.db without those tables fails with
        # "no such table: iceberg_tables".
        "jdbc.init-catalog-tables": "false",
    }


def _glue_catalog(props: Mapping[str, str]) -> dict[str, str]:
    config = {"catalog-impl": GLUE_CATALOG, "io-impl": S3_FILE_IO}
    # pyiceberg names one region per client (glue.region, s3.region) besides client.region; Iceberg's
    # Java clients take client.region (AwsClientProperties.CLIENT_REGION) for all of them.
    region = props.get("client.region") or props.get("glue.region") or props.get("s3.region")
    if region:
        config["client.region"] = region
    if props.get("glue.endpoint"):
        config["glue.endpoint"] = props["glue.endpoint"]  # AwsProperties.GLUE_CATALOG_ENDPOINT
    if props.get("s3.endpoint"):
        config["s3.endpoint"] = props["s3.endpoint"]  # S3FileIOProperties.ENDPOINT
        # An endpoint override (moto, MinIO, a proxy) serves buckets by path, not as <bucket>.<host>
        # names, which is how Arrow's S3 filesystem addresses it too; AWS's own endpoints keep the
        # SDK's default (virtual-hosted) addressing.
        config["s3.path-style-access"] = "true"  # S3FileIOProperties.PATH_STYLE_ACCESS
    if props.get("warehouse"):
        config["warehouse"] = props["warehouse"]  # only for tables created without a location
    return config
