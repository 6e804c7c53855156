"""A real PostgreSQL server for the PostgreSQL source's tests (lakehouse_tests/postgres_server.py)."""

from lakehouse_tests.postgres_server import postgres  # noqa: F401 (fixture)
