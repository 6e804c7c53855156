"""deploy/dagster.yaml is a valid Dagster instance configuration, each configurable class's part
valid for that class, and every variable it and deploy/workspace.yaml read is in
deploy/environment.json for the processes that read it. No network."""

from __future__ import annotations

import json
import shutil

import pytest
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import WORKSPACE_CONFIG_SCHEMA
from dagster._serdes.config_class import class_from_code_pointer

from lakehouse_tests.deploy.conftest import DEPLOY, PROJECT, load_yaml

DAGSTER_PROCESSES = {"webserver", "daemon", "code_server", "run"}  # each loads the instance
WORKSPACE_PROCESSES = {"webserver", "daemon"}


def env_names(value) -> set[str]:
    """Every name in an ``{env: NAME}`` of a loaded YAML document."""
    if isinstance(value, dict):
        if set(value) == {"env"} and isinstance(value["env"], str):
            return {value["env"]}
        return set().union(*(env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_names(v) for v in value)) if value else set()
    return set()


def environment() -> dict[str, dict]:
    listed = json.loads((DEPLOY / "environment.json").read_text())
    assert set(listed["processes"]) == DAGSTER_PROCESSES
    return {v["name"]: v for v in listed["variables"]}


@pytest.fixture
def listed_env(monkeypatch):
    """Every listed variable set (to a stand-in): StringSource values are read when validated."""
    for name in environment():
        monkeypatch.setenv(name, "5432" if name.endswith("_PORT") else f"stand-in-{name.lower()}")


def test_the_instance_file_is_a_valid_dagster_instance_config(tmp_path, listed_env):
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on a key or value the schema refuses
    for key in ("run_launcher", "run_coordinator", "compute_logs"):
        part = config[key]
        module = part["module"].replace("dagster.core.", "dagster._core.")  # the alias the instance resolves
        cls = class_from_code_pointer(module, part["class"])
        result = process_config(cls.config_type(), part.get("config") or {})
        assert result.success, f"{key} ({part['class']}): {[e.message for e in result.errors]}"
    assert config["storage"]["postgres"]["postgres_db"]["params"]["sslmode"] == "require"
    assert config["telemetry"] == {"enabled": False}
    assert config["run_retries"]["enabled"] and config["run_retries"]["max_retries"] > 0
    assert config["sensors"]["use_threads"] and config["schedules"]["use_threads"]


def test_an_unknown_key_is_refused(tmp_path, listed_env):
    """The check above can fail: a misspelt launcher option is caught by the class's schema."""
    config = load_yaml(DEPLOY / "dagster.yaml")
    config["run_launcher"]["config"]["include_sidecar"] = False
    from dagster_aws.ecs import EcsRunLauncher

    assert not process_config(EcsRunLauncher.config_type(), config["run_launcher"]["config"]).success
    config["run_monitoring"]["max_resume_attempts"] = 1
    (tmp_path / "dagster.yaml").write_text(json.dumps(config))
    with pytest.raises(Exception, match="max_resume_attempts"):
        dagster_instance_config(str(tmp_path))


def test_the_production_instance_has_the_local_run_queue_limits():
    local = load_yaml(PROJECT / "lakehouse" / "dagster_instance.yaml")["run_coordinator"]
    deployed = load_yaml(DEPLOY / "dagster.yaml")["run_coordinator"]
    assert (deployed["class"], deployed["config"]["tag_concurrency_limits"]) == (local["class"], local["config"]["tag_concurrency_limits"])


def test_run_monitoring_resumes_with_a_launcher_that_can():
    config = load_yaml(DEPLOY / "dagster.yaml")
    from dagster_aws.ecs import EcsRunLauncher

    assert config["run_monitoring"]["enabled"]
    assert config["run_monitoring"]["max_resume_run_attempts"] > 0
    assert EcsRunLauncher.supports_resume_run.fget(None) and EcsRunLauncher.supports_check_run_worker_health.fget(None)


def test_every_variable_the_instance_and_workspace_read_is_listed_for_their_processes():
    listed = environment()
    for path, processes in ((DEPLOY / "dagster.yaml", DAGSTER_PROCESSES), (DEPLOY / "workspace.yaml", WORKSPACE_PROCESSES)):
        names = env_names(load_yaml(path))
        assert names, f"{path.name} reads no variables?"
        missing = sorted(names - set(listed))
        assert not missing, f"{path.name} reads {missing}, which deploy/environment.json does not list"
        short = {n: sorted(processes - set(listed[n]["processes"])) for n in names if processes - set(listed[n]["processes"])}
        assert not short, f"{path.name}: variables not given to every process that reads them: {short}"
    # The password is injected by ECS from Secrets Manager, never a plain environment entry.
    assert listed["DAGSTER_PG_PASSWORD"]["secret"] is True
    assert all(v["secret"] for n, v in listed.items() if "PASSWORD" in n or "SECRET" in n)


def test_the_workspace_names_the_grpc_server_from_the_environment(listed_env):
    workspace = load_yaml(DEPLOY / "workspace.yaml")
    assert process_config(WORKSPACE_CONFIG_SCHEMA, workspace).success
    (entry,) = workspace["load_from"]
    assert entry["grpc_server"]["port"] == 4000 and entry["grpc_server"]["location_name"] == "lakehouse"
    assert entry["grpc_server"]["host"] == {"env": "DAGSTER_CODE_SERVER_HOST"}


def test_env_names_finds_nested_references():
    assert env_names({"a": [{"b": {"env": "X"}}, {"env": "Y"}], "c": {"env": 3}}) == {"X", "Y"}
