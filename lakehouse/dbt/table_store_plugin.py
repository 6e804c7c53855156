"""dbt-duckdb plugin: the Silver sources, read through the lakehouse's table store.

dbt-duckdb's own iceberg plugin scans a pyiceberg table as it is; this one reads it the way every
lakehouse reader does (``TableStore.read``: the table's current main snapshot, with the contract's
schema), from the catalog the Dagster run uses. The Dagster resource passes that catalog as
``LAKEHOUSE_DBT_STORE`` (a TableStoreResource as JSON); without it (dbt run by hand in this folder)
the store comes from the ``LAKEHOUSE_*`` settings, as for the ``lakehouse`` CLI.
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import SourceConfig

STORE_VARIABLE = "LAKEHOUSE_DBT_STORE"


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self._store = None

    def _table_store(self):
        if self._store is None:
            from lakehouse.io.store_resource import TableStoreResource

            raw = os.environ.get(STORE_VARIABLE)
            if raw:
                resource = TableStoreResource.model_validate_json(raw)
            else:
                from lakehouse.environment import table_store
                from lakehouse.settings import load_settings

                resource = table_store(load_settings())
            self._store = resource.get_store()
        return self._store

    def load(self, source_config: SourceConfig):
        from lakehouse.contracts.tables import contract_for

        layer = source_config.schema  # the source's schema is its layer (sources.yml: silver)
        try:
            contract = contract_for(layer, source_config.identifier)
        except KeyError as exc:
            raise ValueError(
                f"dbt source {layer}.{source_config.identifier}: {exc.args[0]}; a source of this project must be a lakehouse table"
            ) from None
        return self._table_store().read(contract)
