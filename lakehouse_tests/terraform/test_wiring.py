"""The stack's wiring, read with python-hcl2: variables declared and used, module calls complete,
IAM scoped to the stack's own resources, one ECS service per Dagster process, images from the stack's
ECR repositories, and deploy/environment.json as the one list of the processes' variables."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from lakehouse.settings import Settings
from lakehouse.sources.postgres import PASSWORD_VARIABLE
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

def _dynamic_statements(body: dict) -> list[dict]:
    return [s for block in body.get("dynamic", []) for s in block.get("statement", {}).get("content", [])]


def _policy_statements():
    for path in stack.module_dirs():
        for (kind, name), body in stack.load(path).named("data").items():
            if kind == "aws_iam_policy_document":
                for statement in [*body.get("statement", []), *_dynamic_statements(body)]:
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
    """The stack's own maps give every required name; the optional ones (the source database's) come
    from modules/source_database, merged into what the ecs module gets."""
    spec = environment_spec()["variables"]
    values, secrets = _root_environment_maps()
    assert set(values) == {v["name"] for v in spec if not v["secret"] and not v.get("optional")}
    assert set(secrets) == {v["name"] for v in spec if v["secret"] and not v.get("optional")}
    assert secrets["DAGSTER_PG_PASSWORD"] == "${module.rds.master_user_secret_arn}:password::"
    ecs = stack.load().module_calls["ecs"]
    assert ecs["environment_values"] == "${merge(local.environment_values, module.source_database.environment_values)}"
    assert ecs["secret_sources"] == "${merge(local.secret_sources, module.source_database.secret_sources)}"
    optional = {v["name"] for v in spec if v.get("optional")}
    assert optional == {*SOURCE_DATABASE_VALUES, "LAKEHOUSE_POSTGRES_PASSWORD"}
    assert set(_module_output_keys("source_database", "environment_values")) == set(SOURCE_DATABASE_VALUES)
    assert set(_module_output_keys("source_database", "secret_sources")) == {"LAKEHOUSE_POSTGRES_PASSWORD"}


SOURCE_DATABASE_VALUES = ("LAKEHOUSE_POSTGRES_HOST", "LAKEHOUSE_POSTGRES_PORT", "LAKEHOUSE_POSTGRES_DATABASE", "LAKEHOUSE_POSTGRES_USER", "LAKEHOUSE_POSTGRES_SSLMODE")


def _module_output_keys(module: str, output: str) -> list[str]:
    """The names a module's map output builds (``NAME = ...`` inside its value)."""
    text = stack.load(stack.MODULES / module).text
    body = re.search(rf'output "{output}" \{{(.*?)\n\}}', text, re.S).group(1)
    return re.findall(r"\b([A-Z][A-Z0-9_]+)\s*=", body)


def _root_environment_maps() -> tuple[dict, dict]:
    root = stack.load()
    merged = {k: v for block in root.blocks["locals"] for k, v in block.items()}
    return merged["environment_values"], merged["secret_sources"]


def test_lakehouse_variables_of_environment_json_are_settings():
    """Or a name the code reads itself: the source database's password, never a setting."""
    fields = {f"LAKEHOUSE_{name.upper()}" for name in Settings.model_fields}
    listed = {v["name"] for v in environment_spec()["variables"] if v["name"].startswith("LAKEHOUSE_")}
    assert listed - fields == {PASSWORD_VARIABLE}


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


# ---- dbt on Athena ---------------------------------------------------------------------------------

ATHENA_RESULTS = '${local.artifacts}/${var.athena_results_prefix}/*'
S3_WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:PutObjectAcl", "s3:RestoreObject", "s3:*"}
_DOCUMENT_REF = re.compile(r"\$\{data\.aws_iam_policy_document\.([a-z_]+)\.json\}")


def _iam_documents() -> dict[str, dict]:
    return {name: body for (kind, name), body in stack.load(stack.MODULES / "iam").named("data").items() if kind == "aws_iam_policy_document"}


def _statements_of(document: str) -> list[dict]:
    """A policy document's statements with those of its source documents, as the role gets them."""
    body = _iam_documents()[document]
    sources = [_DOCUMENT_REF.fullmatch(ref).group(1) for ref in body.get("source_policy_documents", [])]
    return [s for source in sources for s in _statements_of(source)] + list(body.get("statement", []))


def _task_statements() -> dict[str, list[dict]]:
    iam = stack.load(stack.MODULES / "iam")
    merged = {k: v for block in iam.blocks["locals"] for k, v in block.items()}
    return {
        process: [s for ref in refs for s in _statements_of(_DOCUMENT_REF.fullmatch(ref).group(1))]
        for process, refs in merged["task_policies"].items()
    }


def _athena_module():
    module = stack.load(stack.MODULES / "athena")
    (workgroup,) = [body for (kind, _), body in module.named("resource").items() if kind == "aws_athena_workgroup"]
    locals_ = {k: v for block in module.blocks.get("locals", []) for k, v in block.items()}
    outputs = {name: body["value"] for block in module.blocks["output"] for name, body in block.items()}
    return workgroup, locals_, outputs


def test_run_task_role_queries_in_exactly_the_dbt_workgroup():
    root = stack.load()
    _, _, outputs = _athena_module()
    assert root.module_calls["iam"]["athena_work_group_arn"] == "${module.athena.work_group_arn}"
    assert outputs["work_group_arn"] == "${aws_athena_workgroup.dbt.arn}"
    tasks = _task_statements()
    athena = [s for s in tasks["run"] if any(a.startswith("athena:") for a in _as_list(s["actions"]))]
    assert athena, "the run task role runs no Athena queries"
    actions = {a for s in athena for a in _as_list(s["actions"])}
    assert {"athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution", "athena:GetWorkGroup"} <= actions
    assert not any(a.endswith("*") for a in actions), actions
    for statement in athena:
        assert _as_list(statement["resources"]) == ["${var.athena_work_group_arn}"], statement.get("sid")
        assert statement.get("effect", "Allow") == "Allow"
    # Only the run task (where dbt builds the models) queries Athena.
    for process, statements in tasks.items():
        if process != "run":
            assert not any(a.startswith("athena:") for s in statements for a in _as_list(s["actions"])), process
    for path in stack.module_dirs():  # and no other role of the stack
        for document, body in (stack.load(path).named("data") or {}).items():
            if document[0] == "aws_iam_policy_document" and document[1] != "dbt_athena":
                assert not any(a.startswith("athena:") for s in body.get("statement", []) for a in _as_list(s.get("actions", []))), document


def test_run_task_role_writes_only_the_athena_prefix_for_dbt():
    root = stack.load()
    iam_call, athena_call = root.module_calls["iam"], root.module_calls["athena"]
    assert iam_call["athena_results_prefix"] == athena_call["results_prefix"] == "${local.athena_results_prefix}"
    assert athena_call["results_bucket_name"] == '${local.bucket_names["artifacts"]}'
    assert iam_call["bucket_arns"] == "${module.storage.bucket_arns}"
    iam_locals = {k: v for block in stack.load(stack.MODULES / "iam").blocks["locals"] for k, v in block.items()}
    assert iam_locals["artifacts"] == '${var.bucket_arns["artifacts"]}'
    dbt = _iam_documents()["dbt_athena"]["statement"]
    writes = [s for s in dbt if S3_WRITES & set(_as_list(s["actions"]))]
    assert writes, "dbt_athena lets Athena write no query results"
    for statement in writes:
        assert _as_list(statement["resources"]) == [ATHENA_RESULTS], statement.get("sid")
    # The run task role's writes to the artifacts bucket as a whole: compute logs, Pipes, query results.
    artifacts_writes = {
        resource
        for s in _task_statements()["run"]
        if S3_WRITES & set(_as_list(s["actions"]))
        for resource in _as_list(s["resources"])
        if resource.startswith("${local.artifacts}")
    }
    assert artifacts_writes == {ATHENA_RESULTS, "${local.artifacts}/pipes/*", "${local.artifacts}/${var.compute_logs_prefix}/*"}


def test_run_task_role_may_drop_only_gold_tables():
    assert stack.load().module_calls["iam"]["gold_database_name"] == '${local.database_names["gold"]}'
    for statement in _task_statements()["run"]:
        actions = set(_as_list(statement["actions"]))
        if actions & {"glue:DeleteTable", "glue:BatchDeleteTable", "glue:DeleteDatabase"}:
            assert actions == {"glue:DeleteTable"}, statement.get("sid")
            tables = [r for r in _as_list(statement["resources"]) if ":table/" in r]
            assert tables == ["${local.glue_prefix}:table/${var.gold_database_name}/*"], statement.get("sid")


def test_dbt_workgroup_results_location_and_encryption():
    workgroup, locals_, outputs = _athena_module()
    (configuration,) = workgroup["configuration"]
    assert configuration["enforce_workgroup_configuration"] is True
    assert configuration["publish_cloudwatch_metrics_enabled"] is True
    assert configuration["engine_version"] == [{"selected_engine_version": "Athena engine version 3"}]
    (results,) = configuration["result_configuration"]
    assert results["output_location"] == "${local.output_location}" == outputs["output_location"]
    assert locals_["output_location"] == "s3://${var.results_bucket_name}/${var.results_prefix}/"
    assert results["encryption_configuration"] == [{"encryption_option": "SSE_KMS", "kms_key_arn": "${var.kms_key_arn}"}]
    root = stack.load()
    assert root.module_calls["athena"]["kms_key_arn"] == "${module.kms.key_arn}"
    root_locals = {k: v for block in root.blocks["locals"] for k, v in block.items()}
    assert root_locals["athena_results_prefix"] == "athena"
    # The location is the one the settings default to (LAKEHOUSE_ATHENA_STAGING_DIR unset).
    bucket = "lakehouse-artifacts-example"
    rendered = locals_["output_location"].replace("${var.results_bucket_name}", bucket).replace("${var.results_prefix}", root_locals["athena_results_prefix"])
    settings = Settings(env="aws", aws_region="eu-west-1", artifacts_bucket=bucket, landing="s3://lakehouse-landing-example/landing", athena_staging_dir=None)
    assert settings.dbt_environment()["LAKEHOUSE_DBT_ATHENA_STAGING_DIR"] == rendered


def test_tasks_get_the_dbt_workgroup_and_its_results_location():
    values, _ = _root_environment_maps()
    _, _, outputs = _athena_module()
    assert values["LAKEHOUSE_ATHENA_WORK_GROUP"] == "${module.athena.work_group_name}"
    assert outputs["work_group_name"] == "${aws_athena_workgroup.dbt.name}"
    assert values["LAKEHOUSE_ATHENA_STAGING_DIR"] == "${module.athena.output_location}"
    spec = {v["name"]: v for v in environment_spec()["variables"]}
    for name in ("LAKEHOUSE_ATHENA_WORK_GROUP", "LAKEHOUSE_ATHENA_STAGING_DIR"):
        assert set(spec[name]["processes"]) == {"code_server", "run"} and not spec[name]["secret"] and spec[name]["description"], name


# ---- the source database (var.source_database) ------------------------------------------------------

def test_only_the_task_execution_role_reads_the_source_database_secret_and_only_when_set():
    root = stack.load()
    assert root.module_calls["source_database"]["database"] == "${var.source_database}"
    assert root.variables["source_database"]["default"] is None
    iam_call = root.module_calls["iam"]
    assert iam_call["source_secret_arns"] == "${module.source_database.secret_arns}"
    assert iam_call["source_kms_key_arns"] == "${module.source_database.kms_key_arns}"
    execution = _iam_documents()["task_execution"]
    dynamic = {block["statement"]["content"][0]["sid"]: block["statement"] for block in execution["dynamic"]}
    assert set(dynamic) == {"SourceDatabaseSecret", "DecryptSourceDatabaseSecret"}
    secret, key = dynamic["SourceDatabaseSecret"], dynamic["DecryptSourceDatabaseSecret"]
    # No statement at all without a secret (an empty Resource would be refused), exactly the secret with one.
    assert secret["for_each"] == "${length(var.source_secret_arns) > 0 ? [var.source_secret_arns] : []}"
    assert secret["content"][0]["actions"] == ["secretsmanager:GetSecretValue"] and secret["content"][0]["resources"] == "${statement.value}"
    assert key["for_each"] == "${length(var.source_kms_key_arns) > 0 ? [var.source_kms_key_arns] : []}"
    assert key["content"][0]["actions"] == ["kms:Decrypt"] and key["content"][0]["resources"] == "${statement.value}"
    assert key["content"][0]["condition"] == [{"test": "StringEquals", "variable": "kms:ViaService", "values": ["secretsmanager.${var.region}.amazonaws.com"]}]
    # The stack's own statement still names only the Dagster database's secret.
    (static,) = [s for s in execution["statement"] if "secretsmanager:GetSecretValue" in _as_list(s["actions"])]
    assert static["resources"] == ["${var.database_secret_arn}"]
    # No task role reads secrets: the password reaches the run task as an ECS secret only.
    for process, statements in _task_statements().items():
        assert not any(a.startswith("secretsmanager:") for s in statements for a in _as_list(s["actions"])), process
    text = stack.load(stack.MODULES / "source_database").text
    assert re.search(r'output "secret_arns" \{.*?value\s*=\s*\[for d in local\.database : d\.password_secret_arn\]', text, re.S)
    assert re.search(r"\bdatabase = var\.database == null \? \[\] : \[var\.database\]", text)


def test_run_tasks_reach_the_source_database_only_when_set():
    root = stack.load()
    assert root.module_calls["network"]["source_database_egress"] == "${module.source_database.egress}"
    network = stack.load(stack.MODULES / "network")
    rule = network.named("resource")[("aws_vpc_security_group_egress_rule", "source_database")]
    assert rule["for_each"] == "${var.source_database_egress}"  # empty without a database: no rule
    # From the run tasks' group, which is the daemon's (EcsRunLauncher: use_current_ecs_task_config).
    assert rule["security_group_id"] == '${aws_security_group.this["daemon"].id}'
    assert "run = aws_security_group.this[\"daemon\"].id" in network.text
    assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == ("${each.value.port}", "${each.value.port}", "tcp")
    assert rule["referenced_security_group_id"] == "${each.value.security_group_id}" and rule["cidr_ipv4"] == "${each.value.cidr_ipv4}"
    # No ingress on the database's group: it is not the stack's.
    assert not [n for (kind, n) in network.named("resource") if kind == "aws_vpc_security_group_ingress_rule" and "source" in n]


def test_the_root_variable_and_the_module_declare_the_same_source_database():
    root = stack.load().variables["source_database"]
    module = stack.load(stack.MODULES / "source_database").variables["database"]
    assert root["type"] == module["type"]
    assert module["validation"], "the module checks the database (ARN, sslmode, network) before any plan"
