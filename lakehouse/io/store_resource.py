"""The table store as a Dagster resource: where tables live is configuration, not code."""


from dagster import ConfigurableResource
from pydantic import Field
from pyiceberg.catalog import load_catalog

from lakehouse.contracts.model import Layer
from lakehouse.io.arrow_store import ArrowTableStore


class TableStoreResource(ConfigurableResource):
    """Configures the pyiceberg/Arrow table store.

    ``catalog_properties`` go to ``pyiceberg.catalog.load_catalog`` unchanged (for example
    ``{"type": "sql", "uri": "sqlite:///...", "warehouse": "file:///..."}`` or ``{"type": "glue", ...}``).
    """

    catalog_name: str = "lakehouse"
    catalog_properties: dict[str, str]
    locations: dict[str, str] = Field(description="layer -> root URI its tables live under")
    namespaces: dict[str, str] = Field(description="layer -> catalog namespace (Glue database)")

    def get_store(self) -> ArrowTableStore:
        catalog = load_catalog(self.catalog_name, **self.catalog_properties)
        return ArrowTableStore(
            catalog,
            locations={Layer(k): v for k, v in self.locations.items()},
            namespaces={Layer(k): v for k, v in self.namespaces.items()},
        )
