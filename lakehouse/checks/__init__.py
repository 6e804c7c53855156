"""Data quality: expectations from table contracts, evaluated on each write as Dagster asset checks."""
