"""EcsRunLauncher as deploy/dagster.yaml configures it, against ECS of a moto server on 127.0.0.1:
the instance (PostgreSQL storage, S3 compute logs, the launcher) is loaded from the file unchanged;
a run is launched as the daemon launches it, from "inside" an ECS task (a task metadata endpoint on
127.0.0.1 names the daemon's task), and the ECS task moto records is checked: the run task
definition of DAGSTER_RUN_TASK_DEFINITION (none registered by the launcher), the command
`dagster api execute_run` for this run, no secret in it, the size from the run's tags or the
defaults, the daemon's network, the tags; run monitoring sees the task, termination stops it."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import DagsterInstance

from lakehouse_tests.aws.server import AWS_TEST_ENV, AWS_UNSET, REGION, moto_server
from lakehouse_tests.deploy.conftest import DEPLOY, load_yaml

pytestmark = pytest.mark.slow  # a PostgreSQL server
RUN_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lakehouse:test"


class _Metadata(BaseHTTPRequestHandler):
    """ECS's task metadata endpoint (v4) of the daemon's task."""

    task: dict = {}

    def do_GET(self):
        body = {"Cluster": self.task["clusterArn"], "TaskARN": self.task["taskArn"]} if self.path.endswith("/task") else {"Name": "daemon"}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def ecs_world(tmp_path, monkeypatch, postgres):
    """moto's ECS with the daemon's running task and the run task definition terraform registers,
    the instance's database and compute-log bucket, and the variables of deploy/environment.json."""
    for name in AWS_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    # moto's state is the process's, shared by every moto server in it: names of this test only.
    suffix = uuid.uuid4().hex[:8]
    with moto_server() as aws:
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)  # boto3's clients in the launcher and the log manager
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        ec2, ecs = aws.client("ec2"), aws.client("ecs")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as for ECS; moto's task ENIs need it
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=f"dagster-{suffix}", Description="dagster tasks", VpcId=vpc)["GroupId"]
        cluster = ecs.create_cluster(clusterName=f"lakehouse-{suffix}")["cluster"]["clusterArn"]
        container_size = {"cpu": 512, "memory": 1024}  # moto sums the containers' sizes
        fargate = {"networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024"}
        ecs.register_task_definition(family=f"lakehouse-daemon-{suffix}", containerDefinitions=[{"name": "daemon", "image": RUN_IMAGE, **container_size}], **fargate)
        network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}
        daemon_task = ecs.run_task(cluster=cluster, taskDefinition=f"lakehouse-daemon-{suffix}", launchType="FARGATE", networkConfiguration=network)["tasks"][0]

        # The run task definition as terraform builds it from deploy/environment.json: its
        # environment and the password as a secret.
        listed = json.loads((DEPLOY / "environment.json").read_text())["variables"]
        run_vars = [v for v in listed if "run" in v["processes"]]
        password_arn = aws.client("secretsmanager").create_secret(Name=f"lakehouse/dagster-db-{suffix}", SecretString="stand-in")["ARN"]
        secrets = [{"name": v["name"], "valueFrom": password_arn} for v in run_vars if v["secret"]]
        environment = [{"name": v["name"], "value": f"value-of-{v['name'].lower()}"} for v in run_vars if not v["secret"]]
        run_definition = ecs.register_task_definition(
            family=f"lakehouse-run-{suffix}", containerDefinitions=[{"name": "run", "image": RUN_IMAGE, "environment": environment, "secrets": secrets,
                                                         **container_size}],
            **fargate,
        )["taskDefinition"]

        metadata = ThreadingHTTPServer(("127.0.0.1", 0), type("Metadata", (_Metadata,), {"task": daemon_task}))
        threading.Thread(target=metadata.serve_forever, daemon=True).start()
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{metadata.server_address[1]}/v4/daemon")

        postgres.create_database("dagster_ecs")
        for name, value in postgres.environment("dagster_ecs").items():
            monkeypatch.setenv(name, value)
        aws.create_bucket(f"lakehouse-dagster-logs-{suffix}")
        monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", f"lakehouse-dagster-logs-{suffix}")
        monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_PREFIX", "compute-logs")
        monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", f"lakehouse-run-{suffix}")
        dagster_home = tmp_path / "dagster_home_ecs"
        dagster_home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", dagster_home / "dagster.yaml")
        try:
            yield {"aws": aws, "ecs": ecs, "cluster": cluster, "subnet": subnet, "group": group, "daemon_task": daemon_task,
                   "run_definition": run_definition, "home": dagster_home, "password": postgres.password}
        finally:
            metadata.shutdown()


def _launch(instance, workspace, tags: dict[str, str]):
    """Create a run of the ingest job and launch it, as the daemon's run queue does."""
    from lakehouse.definitions import build_definitions

    (name,) = workspace.code_location_names
    assert workspace.get_code_location_error(name) is None, workspace.get_code_location_error(name)
    location = workspace.get_code_location(name)
    (repository,) = location.get_repositories().values()
    remote_job = repository.get_full_job("ingest")
    run = instance.create_run_for_job(
        job_def=build_definitions().resolve_job_def("ingest"), remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(), tags=tags,
    )
    instance.launch_run(run.run_id, workspace)
    return instance.get_run_by_id(run.run_id)


def test_runs_are_launched_as_ecs_tasks_of_the_run_task_definition(ecs_world):
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._serdes import deserialize_value
    from dagster_aws.ecs import EcsRunLauncher

    ecs, cluster = ecs_world["ecs"], ecs_world["cluster"]
    instance = DagsterInstance.from_config(str(ecs_world["home"]))
    try:
        assert isinstance(instance.run_launcher, EcsRunLauncher)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        with in_process_test_workspace(instance, LoadableTargetOrigin(module_name="lakehouse.definitions"), container_image=RUN_IMAGE) as workspace:
            sized = _launch(instance, workspace, {"lakehouse/pipeline": "ingest", "ecs/cpu": "4096", "ecs/memory": "16384"})
            default = _launch(instance, workspace, {"lakehouse/pipeline": "ingest"})

        configured = load_yaml(DEPLOY / "dagster.yaml")["run_launcher"]["config"]["run_resources"]
        families = ecs.list_task_definition_families()["families"]
        # The launcher's own task definitions would be families "run_..." (task_definition_prefix).
        assert not [f for f in families if f.startswith("run")], f"the launcher registered a task definition of its own: {families}"
        for run, (cpu, memory) in ((sized, ("4096", "16384")), (default, (configured["cpu"], configured["memory"]))):
            arn = run.tags["ecs/task_arn"]
            assert run.tags["ecs/cluster"] == cluster
            (task,) = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"]
            assert task["taskDefinitionArn"] == ecs_world["run_definition"]["taskDefinitionArn"]
            overrides = task["overrides"]
            (container,) = overrides["containerOverrides"]
            assert container["name"] == "run"
            assert container["command"][:3] == ["dagster", "api", "execute_run"]
            args = deserialize_value(container["command"][3])
            assert args.run_id == run.run_id and args.job_origin.job_name == "ingest"
            # The instance reaches the run task as its configuration (names of variables), not as values.
            storage = args.instance_ref.run_storage_data
            assert storage.class_name == "PostgresRunStorage" and "DAGSTER_PG_PASSWORD" in storage.config_yaml
            assert ecs_world["password"] not in json.dumps(overrides)
            assert (overrides["cpu"], overrides["memory"]) == (cpu, memory)
            assert (container["cpu"], container["memory"]) == (int(cpu), int(memory))
            # The daemon's network (use_current_ecs_task_config): its subnet, launch type.
            assert task["launchType"] == "FARGATE"
            subnets = {d["value"] for a in task["attachments"] for d in a["details"] if d["name"] == "subnetId"}
            assert subnets == {ecs_world["subnet"]}
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            assert tags["dagster/run_id"] == run.run_id and tags["lakehouse/pipeline"] == "ingest"

        # Run monitoring asks ECS about the run's task; termination stops it.
        assert instance.run_launcher.check_run_worker_health(sized).status.value == "RUNNING"
        assert instance.run_launcher.terminate(sized.run_id)
        (stopped,) = ecs.describe_tasks(cluster=cluster, tasks=[sized.tags["ecs/task_arn"]])["tasks"]
        assert stopped["lastStatus"] == "STOPPED" or stopped["desiredStatus"] == "STOPPED"
        # The runs and their launch events are in PostgreSQL.
        assert {r.run_id for r in instance.get_runs()} == {sized.run_id, default.run_id}
        assert any("Launching run in ECS task" in (e.message or "") for e in instance.all_logs(default.run_id))
    finally:
        instance.dispose()
