"""Settings from the environment, validated once: the one place that decides where the lakehouse runs."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.resources.iceberg_spark import FETCH_COMMAND, jar_paths, missing_jars
from lakehouse.setting_names import SettingsError, bucket_variable, database_variable  # noqa: F401 (their home for the settings' users)

LAYERS = ("bronze", "silver", "gold")
# S3 bucket naming rules (general purpose buckets), without the IP-address and reserved-suffix corner cases.
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Glue accepts more, but Athena and Spark SQL need lowercase letters, digits and underscores unquoted.
_DATABASE = re.compile(r"^[a-z0-9_]{1,255}$")
# At most 32 characters, so every derived bucket name ("lakehouse-artifacts-<name>") stays within 63.
_ENVIRONMENT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
_ENDPOINT = re.compile(r"^https?://[^/\s?#]+/?$")


def default_spark_jars() -> Path:
    """Where ``LAKEHOUSE_SPARK_JARS`` points by default: ``.jars`` in the source checkout the package
    runs from (the folder holding ``jars/pom.xml``, where its fetch command puts the jars), so the
    default does not depend on the working directory; else ``./.jars`` (an installed package)."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "jars" / "pom.xml").is_file():
        return checkout / ".jars"
    return Path(".jars").absolute()


class Settings(BaseSettings):
    """Where the lakehouse runs, from ``LAKEHOUSE_*`` variables.

    Everywhere: ``LAKEHOUSE_ENV`` (``local`` or ``aws``), ``LAKEHOUSE_HOME`` (default ``./.lakehouse``),
    ``LAKEHOUSE_LANDING`` (default ``$LAKEHOUSE_HOME/landing``; an ``s3://`` prefix in aws mode),
    ``LAKEHOUSE_PARTITIONS_START`` (default ``2000-01-01``), ``LAKEHOUSE_STORE`` (``arrow``, the
    default: pyiceberg and Arrow, no JVM jars; or ``spark``: Iceberg's Spark runtime, as Glue and EMR
    run it), ``LAKEHOUSE_SPARK_JARS`` (the folder of that runtime's jars, needed with ``spark``;
    default ``.jars`` in the source checkout, see ``default_spark_jars``).

    aws mode: ``LAKEHOUSE_AWS_REGION`` (required), ``LAKEHOUSE_ENVIRONMENT_NAME`` (default ``dev``),
    ``LAKEHOUSE_{BRONZE,SILVER,GOLD,ARTIFACTS}_BUCKET`` (default ``lakehouse-<layer>-<environment>``),
    ``LAKEHOUSE_GLUE_DATABASE_{BRONZE,SILVER,GOLD}`` (default ``lakehouse_<layer>_<environment>``),
    ``LAKEHOUSE_AWS_ENDPOINT_URL`` (optional, every service), ``LAKEHOUSE_S3_ENDPOINT_URL`` /
    ``LAKEHOUSE_GLUE_ENDPOINT_URL`` (optional, one service). Credentials never come from here: boto3's
    standard chain (environment, profile, container or instance role) provides them.
    """

    model_config = SettingsConfigDict(env_prefix="LAKEHOUSE_", extra="ignore")

    home: Path = Path(".lakehouse")
    landing: str | None = None
    env: Literal["local", "aws"] = "local"
    # First day of the daily partitions (landing days and report dates); data before it is refused.
    # Unset: the first day of the data when the code location loads (environment.with_partitions_start).
    partitions_start: dt.date | None = None
    # Share of a batch's records that may be rejected before the Silver write is refused (0-1).
    reject_rate_limit: float = Field(default=0.05, ge=0, le=1)
    # The table store's engine: "arrow" (pyiceberg + Arrow, embedded, no JVM jars) or "spark"
    # (Spark SQL on Iceberg's Spark runtime, the jars in spark_jars).
    store: Literal["arrow", "spark"] = "arrow"
    spark_jars: Path = Field(default_factory=default_spark_jars)
    # Where Iceberg's Spark runtime comes from: "jars" (spark_jars, started with the session) or
    # "provided" (the platform has it: Glue's --datalake-formats iceberg, EMR; the remote driver's).
    spark_runtime: Literal["jars", "provided"] = "jars"
    # Where Silver and Gold transformations run: "local" (Spark in the Dagster process), "glue"
    # (runs of one Glue job) or "emr-serverless" (job runs on one application), through Dagster Pipes.
    compute: Literal["local", "glue", "emr-serverless"] = "local"
    glue_job_name: str | None = None  # default lakehouse-transform-<environment>
    emr_application_id: str | None = None
    emr_execution_role_arn: str | None = None

    # ---- aws mode (ignored in local mode) ----
    environment_name: str = "dev"
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    s3_endpoint_url: str | None = None
    glue_endpoint_url: str | None = None
    bronze_bucket: str | None = None
    silver_bucket: str | None = None
    gold_bucket: str | None = None
    artifacts_bucket: str | None = None
    glue_database_bronze: str | None = None
    glue_database_silver: str | None = None
    glue_database_gold: str | None = None
    # dbt on Athena (aws mode): query results under this prefix (default s3://<artifacts bucket>/athena/),
    # in this workgroup.
    athena_staging_dir: str | None = None
    athena_work_group: str = "primary"
    # The dbt target of the models: "duckdb" (dbt-duckdb in the run's process, published through the
    # table store: the default locally) or "athena" (the default in aws mode).
    dbt_target: Literal["duckdb", "athena"] | None = None

    # ---- the PostgreSQL database of the database sources (payments); unset: no database sources ----
    # The password is never a setting: LAKEHOUSE_POSTGRES_PASSWORD is read by the resource at run
    # time (a Dagster EnvVar), or LAKEHOUSE_POSTGRES_PASSWORD_SECRET names a Secrets Manager secret.
    postgres_host: str | None = None
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_database: str = "postgres"
    postgres_user: str = "lakehouse"
    postgres_password_secret: str | None = None
    postgres_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    postgres_batch_rows: int = Field(default=100_000, ge=1)
    postgres_overlap_seconds: float = Field(default=300, ge=0)
    postgres_key_snapshot_hours: float | None = Field(default=24, gt=0)

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        value = value.expanduser().absolute()
        for folder in (value, *value.parents):
            if folder.exists():
                if not folder.is_dir():
                    raise ValueError(f"{folder} exists and is not a directory")
                break
        return value

    @field_validator("spark_jars")
    @classmethod
    def _spark_jars(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("environment_name")
    @classmethod
    def _environment_name(cls, value: str) -> str:
        if not _ENVIRONMENT_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a usable environment name: 1-32 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit (it goes into bucket and database names)"
            )
        return value

    @field_validator("aws_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region code such as 'eu-west-1'")
        return value

    @field_validator("aws_endpoint_url", "s3_endpoint_url", "glue_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not _ENDPOINT.match(value):
            raise ValueError(f"{value!r} is not an endpoint URL such as 'https://s3.eu-west-1.amazonaws.com' or 'http://127.0.0.1:5000'")
        return value.rstrip("/")

    @field_validator("bronze_bucket", "silver_bucket", "gold_bucket", "artifacts_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET.match(value):
            raise ValueError(f"{value!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' and '.')")
        return value

    @field_validator("glue_database_bronze", "glue_database_silver", "glue_database_gold")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is not None and not _DATABASE.match(value):
            raise ValueError(f"{value!r} is not a usable Glue database name (lowercase letters, digits and '_', as Athena requires)")
        return value

    @model_validator(mode="after")
    def _spark_jars_present(self) -> Settings:
        if self.store != "spark" or self.spark_runtime == "provided":
            return self
        missing = missing_jars(self.spark_jars)
        if missing:
            where = "does not exist" if not self.spark_jars.exists() else f"lacks {', '.join(missing)}"
            raise ValueError(
                f"LAKEHOUSE_STORE=spark needs the Iceberg Spark jars in LAKEHOUSE_SPARK_JARS={self.spark_jars}, which {where}: "
                f"fetch them with `{FETCH_COMMAND}` in the project root (it writes <project root>/.jars), "
                "or set LAKEHOUSE_SPARK_JARS to the folder that holds them; see README.md, 'Spark-native Iceberg (optional)'"
            )
        return self

    @model_validator(mode="after")
    def _aws_complete(self) -> Settings:
        if self.env != "aws":
            if self.compute != "local":
                raise ValueError(f"LAKEHOUSE_COMPUTE={self.compute} runs on AWS: it needs LAKEHOUSE_ENV=aws (the tables in S3 and Glue)")
            return self
        missing = []
        if self.aws_region is None:
            missing.append("LAKEHOUSE_AWS_REGION (for example eu-west-1)")
        if not self.landing:
            missing.append("LAKEHOUSE_LANDING (the s3://bucket/prefix files land under)")
        if missing:
            raise ValueError(f"LAKEHOUSE_ENV=aws needs {' and '.join(missing)}; see docs/aws.md")
        if self.compute == "emr-serverless" and not (self.emr_application_id and self.emr_execution_role_arn):
            raise ValueError(
                "LAKEHOUSE_COMPUTE=emr-serverless needs LAKEHOUSE_EMR_APPLICATION_ID and LAKEHOUSE_EMR_EXECUTION_ROLE_ARN "
                "(terraform output emr_application_id and emr_execution_role_arn); see docs/remote-compute.md"
            )
        if not self.landing.startswith("s3://"):
            raise ValueError(f"LAKEHOUSE_LANDING must be an s3://bucket/prefix in aws mode, not {self.landing!r}")
        landing_bucket = self.landing[len("s3://") :].split("/", 1)[0]
        if not _BUCKET.match(landing_bucket):
            raise ValueError(f"LAKEHOUSE_LANDING names {landing_bucket!r}, which is not a valid S3 bucket name")
        return self

    @property
    def landing_root(self) -> str:
        if self.landing:
            return self.landing.rstrip("/") if "://" in self.landing else str(Path(self.landing).expanduser().absolute())
        return str(self.home / "landing")

    @property
    def spark_jar_files(self) -> list[Path]:
        """The jars Spark needs for the ``spark`` store (``spark.jars``), in ``LAKEHOUSE_SPARK_JARS``."""
        return jar_paths(self.spark_jars)

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.db"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    # ---- aws mode ----
    def bucket(self, layer: str) -> str:
        """The S3 bucket of a layer (or ``artifacts``): the setting, else ``lakehouse-<layer>-<environment>``."""
        return getattr(self, f"{layer}_bucket") or f"lakehouse-{layer}-{self.environment_name}"

    def glue_database(self, layer: str) -> str:
        """The Glue database of a layer: the setting, else ``lakehouse_<layer>_<environment>``."""
        return getattr(self, f"glue_database_{layer}") or f"lakehouse_{layer}_{self.environment_name.replace('-', '_')}"

    def layer_location(self, layer: str) -> str:
        # The layer's folder inside its bucket keeps tables of different layers apart even when
        # several layers share one bucket.
        return f"s3://{self.bucket(layer)}/{layer}"

    @property
    def dbt_models_target(self) -> str:
        """The dbt target the models run on: the setting, else dbt-duckdb locally and Athena in aws mode."""
        return self.dbt_target or ("athena" if self.env == "aws" else "duckdb")

    def dbt_environment(self) -> dict[str, str]:
        """What the dbt profile and sources read in aws mode: region, Glue databases, Athena paths."""
        if self.dbt_models_target != "athena":
            return {}
        return {
            "LAKEHOUSE_AWS_REGION": self.aws_region or "",
            "LAKEHOUSE_DBT_SILVER_SCHEMA": self.glue_database("silver"),
            "LAKEHOUSE_DBT_GOLD_SCHEMA": self.glue_database("gold"),
            "LAKEHOUSE_DBT_ATHENA_STAGING_DIR": self.athena_staging_dir or f"s3://{self.bucket('artifacts')}/athena/",
            "LAKEHOUSE_DBT_ATHENA_DATA_DIR": f"{self.layer_location('gold')}/dbt/",
            "LAKEHOUSE_DBT_ATHENA_WORK_GROUP": self.athena_work_group,
        }

    @property
    def job_name(self) -> str:
        """The Glue job that runs transformations (terraform creates it)."""
        return self.glue_job_name or f"lakehouse-transform-{self.environment_name}"

    def remote_variables(self) -> dict[str, str]:
        """The LAKEHOUSE_* variables a remote job runs with: this deployment's settings, with the
        Spark-native store on the platform's Iceberg runtime and the job itself as the compute."""
        variables = {}
        for name, value in self.model_dump(exclude={"home", "spark_jars", "store", "spark_runtime", "compute"}).items():
            if value is not None:
                variables[f"LAKEHOUSE_{name.upper()}"] = str(value)
        return {**variables, "LAKEHOUSE_STORE": "spark", "LAKEHOUSE_SPARK_RUNTIME": "provided"}

    @property
    def database_sources(self) -> bool:
        """Whether the database sources (payments from PostgreSQL) are part of the code location."""
        return bool(self.postgres_host)

    @property
    def s3_endpoint(self) -> str | None:
        return self.s3_endpoint_url or self.aws_endpoint_url

    @property
    def glue_endpoint(self) -> str | None:
        return self.glue_endpoint_url or self.aws_endpoint_url


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise SettingsError(f"invalid lakehouse settings: {problems}") from None


def _problem(error) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a rule across several settings: the message names the variables
        return message
    return f"LAKEHOUSE_{'_'.join(str(p) for p in error['loc']).upper()}: {message}"
