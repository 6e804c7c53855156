"""Compute resources: local Spark, and where else transformations can run."""
