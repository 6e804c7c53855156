"""The deployed instance's files and a real PostgreSQL server (lakehouse_tests/postgres_server.py),
for the tests of deploy/."""

from __future__ import annotations

from pathlib import Path

import yaml

from lakehouse_tests.postgres_server import Postgres, free_port, postgres  # noqa: F401 (fixtures and helpers of these tests)

PROJECT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT / "deploy"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())
