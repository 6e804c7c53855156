"""The image carries the dbt manifests: its build prepares the dbt project with dagster-dbt's own
command, on the module that defines the project for both targets."""

from __future__ import annotations

import importlib.util

from dagster_dbt import DbtProject

from lakehouse.resources.dbt import TARGETS
from lakehouse_tests.deploy.conftest import DEPLOY, PROJECT


def test_the_image_build_prepares_the_dbt_project_of_every_target():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "dagster-dbt project prepare-and-package --file dbt_models.py" in text
    assert "site-packages/lakehouse/assets/gold" in text  # the installed package, not the sources
    module_path = PROJECT / "lakehouse/assets/gold/dbt_models.py"
    spec = importlib.util.spec_from_file_location("dbt_models_for_image", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # the command prepares every DbtProject the module defines at its top level
    projects = [v for v in vars(module).values() if isinstance(v, DbtProject)]
    assert sorted(p.target for p in projects) == sorted(TARGETS)
