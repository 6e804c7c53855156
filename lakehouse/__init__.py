"""A Bronze/Silver/Gold lakehouse on Apache Iceberg, as a Dagster code location."""
