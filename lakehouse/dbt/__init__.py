"""The lakehouse's dbt project (SQL models of Gold tables) and its dbt-duckdb source plugin."""
