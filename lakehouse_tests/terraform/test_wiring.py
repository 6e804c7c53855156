"""The stack's wiring, read with python-hcl2: variables declared and used, module calls complete,
IAM scoped to the stack's own resources, one ECS service per Dagster process, images from the stack's
ECR repositories, and deploy/environment.json as the one list of the processes' variables."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from lakehouse.settings import Settings
from lakehouse_tests.terraform import stack

ENVIRONMENT_JSON = stack.PROJECT / "deploy" / "environment.json"
DAGSTER_YAML = stack.PROJECT / "deploy" / "dagster.yaml"
WORKSPACE_YAML = stack.PROJECT / "deploy" / "workspace.yaml"
DAGSTER_PROCESSES = {"webserver", "daemon", "code_server"}  # the long-running ones; `run` is a task

# Actions AWS grants only on Resource "*" (no resource-level permissions), and why the stack needs each.
STAR_ACTIONS = {
    "ecr:GetAuthorizationToken": "ECS pulls images with a registry token; the action has no resource type",
    "ecs:DescribeTaskDefinition": "EcsRunLauncher reads the run task definition; no resource-level permission",
    "ec2:DescribeNetworkInterfaces": "EcsRunLauncher reads its own task's ENI (use_current_ecs_task_config)",
}
# Key policies: Resource "*" there means the key the policy is attached to.
KEY_POLICIES = {("kms", "key")}


def environment_spec() -> dict:
    return json.loads(ENVIRONMENT_JSON.read_text())


def _names(d: dict) -> set[str]:
    return set(d)


# ---- variables ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", stack.module_dirs(), ids=lambda p: p.name)
def test_every_variable_used_is_declared_and_every_declared_one_used(path):
    module = stack.load(path)
    declared, used = set(module.variables), module.used_variables
    assert used - declared == set(), f"{path.name}: used but not declared"
    assert declared - used == set(), f"{path.name}: declared but never used"


@pytest.mark.parametrize("path", stack.module_dirs(), ids=lambda p: p.name)
def test_every_variable_has_a_type_and_description(path):
    for name, body in stack.load(path).variables.items():
        assert body.get("description") and body.get("type"), f"{path.name}: variable {name}"


def _calls():
    for path in stack.module_dirs():
        for name, body in stack.load(path).module_calls.items():
            yield path, name, body


@pytest.mark.parametrize(("caller", "name", "call"), list(_calls()), ids=lambda v: v.name if hasattr(v, "name") else (v if isinstance(v, str) else ""))
def test_module_calls_pass_declared_variables_and_every_required_one(caller, name, call):
    target = (caller / call["source"]).resolve()
    assert target.is_relative_to(stack.MODULES), f"module {name}: only the stack's own modules ({call['source']})"
    variables = stack.load(target).variables
    passed = set(call) - {"source", "depends_on", "providers", "count", "for_each"}
    assert passed - set(variables) == set(), f"module {name} passes variables {target.name} does not declare"
    required = {v for v, body in variables.items() if "default" not in body}
    assert required - passed == set(), f"module {name} misses required variables of {target.name}"


def test_every_module_is_called():
    called = {(path / call["source"]).resolve() for path, _, call in _calls()}
    assert {p for p in stack.MODULES.iterdir() if p.is_dir()} == called


@pytest.mark.parametrize("tfvars", ["dev.tfvars", "prod.tfvars", "lakehouse.auto.tfvars.json"])
def test_tfvars_set_only_declared_root_variables_and_every_required_one(tfvars):
    path = stack.ROOT / tfvars
    values = json.loads(path.read_text()) if path.suffix == ".json" else stack.tfvars(path)
    declared = stack.load().variables
    assert set(values) - set(declared) == set()
    if tfvars.endswith(".tfvars"):  # with the generated file, each environment's file sets every required variable
        generated = json.loads((stack.ROOT / "lakehouse.auto.tfvars.json").read_text())
        required = {v for v, body in declared.items() if "default" not in body}
        assert required - set(values) - set(generated) == set()


def test_prod_database_is_multi_az():
    assert stack.tfvars(stack.ROOT / "prod.tfvars")["db_multi_az"] is True


# ---- IAM -------------------------------------------------------------------------------------------

def _policy_statements():
    for path in stack.module_dirs():
        for (kind, name), body in stack.load(path).named("data").items():
            if kind == "aws_iam_policy_document":
                for statement in body.get("statement", []):
                    yield path.name, name, statement


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(("module", "document", "statement"), list(_policy_statements()), ids=lambda v: v if isinstance(v, str) else v.get("sid", "assume"))
def test_iam_statements_name_only_the_stacks_resources(module, document, statement):
    resources = _as_list(statement.get("resources", []))
    if not resources:  # an assume-role policy: its principal is a service of this account
        assert statement.get("principals"), f"{module}.{document}: a statement with neither resources nor principals"
        return
    for resource in resources:
        if resource == "*":
            if (module, document) in KEY_POLICIES:
                continue
            unexplained = set(_as_list(statement["actions"])) - set(STAR_ACTIONS)
            assert not unexplained, f"{module}.{document}: Resource '*' for {unexplained}, which AWS can scope"
        else:
            # Every ARN is built from the stack's own variables, locals or resources, never typed in.
            assert "${" in resource, f"{module}.{document}: literal resource {resource!r}"
            assert not re.search(r"(^|:)\*($|/)", resource.replace("${", "").split(":")[-1]) or resource.endswith(("/*", ":*")), resource
    for principal in statement.get("principals", []):
        if "*" in _as_list(principal["identifiers"]):
            assert statement.get("effect") == "Deny", f"{module}.{document}: only a Deny may name every principal"


def test_role_policies_come_from_policy_documents():
    """No inline JSON escapes the statement test above."""
    for path in stack.module_dirs():
        for (kind, name), body in stack.load(path).named("resource").items():
            if kind in ("aws_iam_role_policy", "aws_iam_policy", "aws_s3_bucket_policy", "aws_ecr_repository_policy", "aws_kms_key"):
                if "policy" in body:
                    assert re.fullmatch(r"\$\{data\.aws_iam_policy_document\.[a-z_]+(\[[^]]+\])?\.json\}", body["policy"]), f"{path.name}: {kind}.{name}"


def test_each_process_and_platform_has_its_own_role():
    iam = stack.load(stack.MODULES / "iam")
    roles = iam.named("resource")
    assert {("aws_iam_role", "task"), ("aws_iam_role", "task_execution"), ("aws_iam_role", "glue_job"), ("aws_iam_role", "emr_execution")} <= set(roles)
    task_policies = set(re.search(r"task_policies = \{(.*?)\n  \}", iam.text, re.S).group(1).split())
    assert {"webserver", "daemon", "code_server", "run"} <= {w for w in task_policies if w.isidentifier()}


# ---- ECS -------------------------------------------------------------------------------------------

def _ecs():
    return stack.load(stack.MODULES / "ecs")


def test_one_service_per_dagster_process():
    ecs = _ecs()
    services = [body for (kind, _), body in ecs.named("resource").items() if kind == "aws_ecs_service"]
    assert len(services) == 1 and services[0]["for_each"] == "${local.services}"
    declared = re.search(r"services\s*=\s*toset\((\[.*?\])\)", ecs.text).group(1)
    assert sorted(json.loads(declared)) == sorted(DAGSTER_PROCESSES)
    assert set(environment_spec()["processes"]) == DAGSTER_PROCESSES | {"run"}


def test_task_definitions_cover_every_process_of_environment_json():
    ecs = _ecs()
    (task,) = [body for (kind, _), body in ecs.named("resource").items() if kind == "aws_ecs_task_definition"]
    assert task["for_each"] == "${toset(var.processes)}"
    root = stack.load()
    assert root.module_calls["ecs"]["processes"] == "${local.deploy_environment.processes}"
    assert root.module_calls["ecs"]["environment_variables"] == "${local.deploy_environment.variables}"
    assert 'jsondecode(file("${path.root}/../deploy/environment.json"))' in root.text
    names = re.search(r"container_names = \{(.*?)\}", ecs.text, re.S).group(1)
    assert 'run         = "run"' in names, "EcsRunLauncher's container_name (deploy/dagster.yaml) is `run`"


def test_every_container_image_comes_from_the_stacks_ecr_repositories():
    root = stack.load()
    images = {name: call[key] for name, call in root.module_calls.items() for key in ("image", "image_uri") if key in call}
    assert set(images) == {"ecs", "emr"}
    for name, image in images.items():
        assert re.fullmatch(r"\$\{module\.ecr\.repository_urls\[\"[a-z]+\"\]\}:\$\{var\.image_tag\}", image), f"{name}: {image}"
    ecs_containers = re.findall(r"\bimage\s*=\s*(\S+)", _ecs().text)
    assert ecs_containers == ["var.image"]
    emr = stack.load(stack.MODULES / "emr").named("resource")[("aws_emrserverless_application", "spark")]
    assert emr["image_configuration"][0]["image_uri"] == "${var.image_uri}"


def test_environment_values_cover_exactly_the_non_secret_names():
    spec = environment_spec()["variables"]
    values, secrets = _root_environment_maps()
    assert set(values) == {v["name"] for v in spec if not v["secret"]}
    assert set(secrets) == {v["name"] for v in spec if v["secret"]}
    assert secrets["DAGSTER_PG_PASSWORD"] == "${module.rds.master_user_secret_arn}:password::"


def _root_environment_maps() -> tuple[dict, dict]:
    root = stack.load()
    merged = {k: v for block in root.blocks["locals"] for k, v in block.items()}
    return merged["environment_values"], merged["secret_sources"]


def test_lakehouse_variables_of_environment_json_are_settings():
    fields = {f"LAKEHOUSE_{name.upper()}" for name in Settings.model_fields}
    listed = {v["name"] for v in environment_spec()["variables"] if v["name"].startswith("LAKEHOUSE_")}
    assert listed - fields == set()


def _env_names(node) -> set[str]:
    if isinstance(node, dict):
        names = {node["env"]} if isinstance(node.get("env"), str) else set()
        return names.union(*(_env_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_names(v) for v in node))
    return set()


@pytest.mark.skipif(not DAGSTER_YAML.exists(), reason="deploy/dagster.yaml not written yet")
def test_environment_json_lists_every_name_the_instance_and_workspace_read():
    spec = {v["name"]: set(v["processes"]) for v in environment_spec()["variables"]}
    instance = _env_names(yaml.safe_load(DAGSTER_YAML.read_text()))
    assert instance, "deploy/dagster.yaml reads no env: names?"
    for name in instance:  # every process loads the instance
        assert spec.get(name, set()) >= {"webserver", "daemon", "code_server", "run"}, name
    if WORKSPACE_YAML.exists():  # the webserver and the daemon load the workspace
        for name in _env_names(yaml.safe_load(WORKSPACE_YAML.read_text())):
            assert spec.get(name, set()) >= {"webserver", "daemon"}, name
