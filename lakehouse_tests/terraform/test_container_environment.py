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


def _evaluate(tmp_path, values: dict, secrets: dict, source_database: dict | None = None) -> subprocess.CompletedProcess:
    """The chain terraform/main.tf builds: modules/source_database's maps merged into the stack's,
    then modules/container_environment on the real environment.json."""
    (tmp_path / "main.tf").write_text(
        f'''
locals {{ spec = jsondecode(file({json.dumps(str(stack.PROJECT / "deploy" / "environment.json"))})) }}
module "source_database" {{
  source   = {json.dumps(str(stack.MODULES / "source_database"))}
  database = jsondecode({json.dumps(json.dumps(source_database))})
}}
module "environment" {{
  source         = {json.dumps(str(stack.MODULES / "container_environment"))}
  processes      = local.spec.processes
  variables      = local.spec.variables
  values         = merge(jsondecode({json.dumps(json.dumps(values))}), module.source_database.environment_values)
  secret_sources = merge(jsondecode({json.dumps(json.dumps(secrets))}), module.source_database.secret_sources)
}}
output "environment" {{ value = module.environment.environment }}
output "secrets" {{ value = module.environment.secrets }}
output "source_database" {{ value = module.source_database }}
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
    """Without a source database: every required variable, none of the optional ones."""
    values, secrets = _stack_maps()
    result = _evaluate(tmp_path, values, secrets)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    spec = environment_spec()
    for process in spec["processes"]:
        required = [v for v in spec["variables"] if process in v["processes"] and not v.get("optional")]
        listed = {v["name"] for v in required if not v["secret"]}
        listed_secrets = {v["name"] for v in required if v["secret"]}
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


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/lakehouse-AbCdEf"
SOURCE = {"host": "shop.cluster-abc.eu-west-1.rds.amazonaws.com", "database": "shop", "username": "lakehouse",
          "password_secret_arn": SECRET_ARN, "security_group_id": "sg-0123456789abcdef0"}
POSTGRES_VALUES = {
    "LAKEHOUSE_POSTGRES_HOST": SOURCE["host"], "LAKEHOUSE_POSTGRES_PORT": "5432", "LAKEHOUSE_POSTGRES_DATABASE": "shop",
    "LAKEHOUSE_POSTGRES_USER": "lakehouse", "LAKEHOUSE_POSTGRES_SSLMODE": "require",
}


def _postgres(entries: list[dict], key: str) -> dict:
    return {e["name"]: e[key] for e in entries if e["name"].startswith("LAKEHOUSE_POSTGRES_")}


def test_without_a_source_database_no_process_gets_its_variables(tmp_path):
    result = _evaluate(tmp_path, *_stack_maps())
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    for process, entries in outputs["environment"]["value"].items():
        assert _postgres(entries, "value") == {} and _postgres(outputs["secrets"]["value"][process], "valueFrom") == {}, process
    assert outputs["source_database"]["value"] == {"environment_values": {}, "secret_sources": {}, "secret_arns": [], "kms_key_arns": [], "egress": {}}


def test_with_a_source_database_the_run_task_gets_its_variables_and_password_secret(tmp_path):
    result = _evaluate(tmp_path, *_stack_maps(), source_database=SOURCE)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    environment, secrets = outputs["environment"]["value"], outputs["secrets"]["value"]
    # The run task connects: the settings and the password (JSON key password of an RDS-style secret).
    assert _postgres(environment["run"], "value") == POSTGRES_VALUES
    assert _postgres(secrets["run"], "valueFrom") == {"LAKEHOUSE_POSTGRES_PASSWORD": f"{SECRET_ARN}:password::"}
    # The code server builds the definitions (the assets, job and schedule): the settings, no password.
    assert _postgres(environment["code_server"], "value") == POSTGRES_VALUES
    assert _postgres(secrets["code_server"], "valueFrom") == {}
    for process in ("webserver", "daemon"):
        assert _postgres(environment[process], "value") == {} and _postgres(secrets[process], "valueFrom") == {}, process
    assert all(not e["name"].endswith("PASSWORD") for p in environment.values() for e in p), "a password as a plain environment entry"
    # The stack's own variables are still there.
    assert {s["name"] for s in secrets["run"]} == {"DAGSTER_PG_PASSWORD", "LAKEHOUSE_POSTGRES_PASSWORD"}
    source = outputs["source_database"]["value"]
    assert source["secret_arns"] == [SECRET_ARN] and source["kms_key_arns"] == []
    assert source["egress"] == {"sg-0123456789abcdef0": {"port": 5432, "security_group_id": "sg-0123456789abcdef0", "cidr_ipv4": None}}


def test_a_plain_secret_a_customer_key_and_cidr_blocks(tmp_path):
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    source = {**SOURCE, "port": 6432, "password_secret_key": "", "password_kms_key_arn": key, "sslmode": "verify-full",
              "security_group_id": None, "cidr_blocks": ["10.20.0.0/16", "192.168.4.0/24"]}
    result = _evaluate(tmp_path, *_stack_maps(), source_database=source)
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    run = outputs["environment"]["value"]["run"]
    assert _postgres(run, "value") == {**POSTGRES_VALUES, "LAKEHOUSE_POSTGRES_PORT": "6432", "LAKEHOUSE_POSTGRES_SSLMODE": "verify-full"}
    assert _postgres(outputs["secrets"]["value"]["run"], "valueFrom") == {"LAKEHOUSE_POSTGRES_PASSWORD": SECRET_ARN}  # the whole string
    source_out = outputs["source_database"]["value"]
    assert source_out["kms_key_arns"] == [key]
    assert source_out["egress"] == {c: {"port": 6432, "security_group_id": None, "cidr_ipv4": c} for c in source["cidr_blocks"]}


@pytest.mark.parametrize(("change", "message"), [
    ({"password_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/lakehouse"}, "full ARN"),  # no suffix: IAM would grant nothing
    ({"password_secret_arn": "shop/lakehouse"}, "full ARN"),
    ({"sslmode": "prefer"}, "sslmode"),
    ({"security_group_id": None}, "security group"),
    ({"cidr_blocks": ["10.0.0.0/33"]}, "security group"),
    ({"host": "postgresql://shop:5432"}, "host"),
    ({"port": 0}, "port"),
], ids=["partial-arn", "name-not-arn", "sslmode", "no-network", "bad-cidr", "url-host", "port"])
def test_a_source_database_the_stack_cannot_use_is_refused(tmp_path, change, message):
    result = _evaluate(tmp_path, *_stack_maps(), source_database={**SOURCE, **change})
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split()), result.stderr
