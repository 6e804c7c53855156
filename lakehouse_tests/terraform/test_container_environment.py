"""Evaluates modules/container_environment with terraform itself (it needs no provider) on the real
deploy/environment.json and the names terraform/main.tf gives values: each process's ECS environment
and secrets are exactly what the file lists for it, and a name without a value fails the plan."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from lakehouse_tests.terraform import stack
from lakehouse_tests.terraform.test_wiring import _root_environment_maps, environment_spec

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")


def _evaluate(tmp_path, values: dict, secrets: dict) -> subprocess.CompletedProcess:
    (tmp_path / "main.tf").write_text(
        f'''
locals {{ spec = jsondecode(file({json.dumps(str(stack.PROJECT / "deploy" / "environment.json"))})) }}
module "environment" {{
  source         = {json.dumps(str(stack.MODULES / "container_environment"))}
  processes      = local.spec.processes
  variables      = local.spec.variables
  values         = jsondecode({json.dumps(json.dumps(values))})
  secret_sources = jsondecode({json.dumps(json.dumps(secrets))})
}}
output "environment" {{ value = module.environment.environment }}
output "secrets" {{ value = module.environment.secrets }}
'''
    )
    env = {"TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = lambda *args: subprocess.run([TERRAFORM, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    init = run("init", "-input=false", "-backend=false")
    assert init.returncode == 0, init.stderr
    applied = run("apply", "-auto-approve", "-input=false", "-no-color")
    if applied.returncode:
        return applied
    return run("output", "-json")


def _stack_maps() -> tuple[dict, dict]:
    values, secrets = _root_environment_maps()
    # The stack's expressions are not evaluable without AWS; their names are what counts here.
    return {name: f"value-of-{name}" for name in values}, {name: f"source-of-{name}" for name in secrets}


def test_each_process_gets_exactly_its_listed_variables(tmp_path):
    values, secrets = _stack_maps()
    result = _evaluate(tmp_path, values, secrets)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    spec = environment_spec()
    for process in spec["processes"]:
        listed = {v["name"] for v in spec["variables"] if process in v["processes"] and not v["secret"]}
        listed_secrets = {v["name"] for v in spec["variables"] if process in v["processes"] and v["secret"]}
        environment = outputs["environment"]["value"][process]
        assert {e["name"] for e in environment} == listed, process
        assert all(e["value"] == f"value-of-{e['name']}" for e in environment)
        assert {s["name"]: s["valueFrom"] for s in outputs["secrets"]["value"][process]} == {n: f"source-of-{n}" for n in listed_secrets}
    assert "DAGSTER_PG_PASSWORD" not in {e["name"] for p in spec["processes"] for e in outputs["environment"]["value"][p]}


def test_a_listed_name_without_a_value_fails(tmp_path):
    values, secrets = _stack_maps()
    values.pop("LAKEHOUSE_GLUE_JOB_NAME")
    result = _evaluate(tmp_path, values, secrets)
    assert result.returncode != 0
    assert "LAKEHOUSE_GLUE_JOB_NAME" in result.stderr
