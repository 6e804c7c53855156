"""Resource sets per environment: the same resource keys everywhere, only implementations differ."""

from __future__ import annotations

from typing import Any

from lakehouse.contracts.model import Layer
from lakehouse.io.io_manager import LakehouseIOManager
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.resources.compute import LocalSparkCompute
from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, LocalSparkResource
from lakehouse.settings import Settings
from lakehouse.sources.landing import LandingZoneResource


def local_store(settings: Settings) -> TableStoreResource:
    """The embedded default: a pyiceberg SQL catalog on SQLite and a warehouse folder."""
    settings.home.mkdir(parents=True, exist_ok=True)
    warehouse = settings.warehouse.as_uri()
    return TableStoreResource(
        catalog_name="lakehouse",
        catalog_properties={"type": "sql", "uri": f"sqlite:///{settings.catalog_path}", "warehouse": warehouse},
        locations={layer.value: f"{warehouse}/{layer.value}" for layer in Layer},
        namespaces={layer.value: layer.value for layer in Layer},
    )


def resources_for(settings: Settings) -> dict[str, Any]:
    store = local_store(settings)
    spark = LocalSparkResource(spark_config=LOCAL_SPARK_CONFIG)
    return {
        "store": store,
        "landing": LandingZoneResource(root=settings.landing_root),
        "spark": spark,
        "compute": LocalSparkCompute(spark=spark, store=store),
        "lakehouse_io_manager": LakehouseIOManager(store=store),
    }
