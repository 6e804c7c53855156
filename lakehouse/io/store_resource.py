"""The table store as a Dagster resource: where tables live is configuration, not code."""

import functools

from dagster import ConfigurableResource
from pydantic import Field
from pyiceberg.catalog import load_catalog

from lakehouse.contracts.model import Layer
from lakehouse.io import aws
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.glue import GlueParquetTables


class TableStoreResource(ConfigurableResource):
    """Configures the pyiceberg/Arrow table store.

    ``catalog_properties`` go to ``pyiceberg.catalog.load_catalog`` unchanged (for example
    ``{"type": "sql", "uri": "sqlite:///...", "warehouse": "file:///..."}`` or ``{"type": "glue", ...}``).
    With a Glue catalog the same properties (``s3.region``, ``s3.endpoint``) configure Bronze's S3
    access, Bronze tables are registered in Glue too, and the buckets and databases are checked once
    per process before first use.
    """

    catalog_name: str = "lakehouse"
    catalog_properties: dict[str, str]
    locations: dict[str, str] = Field(description="layer -> root URI its tables live under")
    namespaces: dict[str, str] = Field(description="layer -> catalog namespace (Glue database)")

    @property
    def is_glue(self) -> bool:
        return self.catalog_properties.get("type") == "glue"

    def get_store(self) -> ArrowTableStore:
        locations = {Layer(k): v for k, v in self.locations.items()}
        namespaces = {Layer(k): v for k, v in self.namespaces.items()}
        if not self.is_glue:
            catalog = _catalog(self.catalog_name, tuple(sorted(self.catalog_properties.items())))
            return ArrowTableStore(catalog, locations=locations, namespaces=namespaces)
        config = aws.AwsConfig.from_catalog_properties(self.catalog_properties)
        aws.verify(config, aws.store_requirements(self.locations, self.namespaces))
        catalog, filesystem = _glue_catalog(self.catalog_name, tuple(sorted(self.catalog_properties.items())))
        return ArrowTableStore(
            catalog,
            locations=locations,
            namespaces=namespaces,
            filesystem=filesystem,
            bronze_catalog=GlueParquetTables(catalog.glue),
            # The databases are infrastructure (terraform/): creating a missing one here would
            # hide a wrong name or region, and needs a permission the pipeline should not have.
            create_namespaces=False,
            aws=config,
        )


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
