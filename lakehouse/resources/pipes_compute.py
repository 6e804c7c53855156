"""Remote compute: a transformation runs as an AWS Glue job run or an EMR Serverless job run,
started and followed through Dagster Pipes (dagster-aws's PipesGlueClient and
PipesEMRServerlessClient), with the remote driver (lakehouse/remote/driver.py) as the job's script.

Both use S3 for the Pipes context and messages (the artifacts bucket): messages arrive while the job
runs, not only when it ends. A step with no new Bronze data submits no job: it is planned here, from
table metadata alone, and reported as the local compute reports it.
"""


import contextlib
import shlex
import time
from typing import Any, ClassVar

import dagster as dg
from dagster_aws.pipes import PipesEMRServerlessClient, PipesGlueClient, PipesS3ContextInjector, PipesS3MessageReader
from dagster_aws.s3 import S3Resource
from pydantic import Field

from lakehouse.contracts.transformations import Transformation
from lakehouse.io.table_write import WriteReport
from lakehouse.resources.compute import SparkCompute, step_of
from lakehouse.resources.release import Release
from lakehouse.resources.remote_protocol import MESSAGE_INTERVAL_SECONDS, PARTITIONS_EXTRA, SETTINGS_EXTRA
from lakehouse.resources.transformation_run import plan_inputs

PIPES_PREFIX = "pipes/"  # context and message objects, under the artifacts bucket
# What each resource profile gets (Transformation.profile). Glue: worker type and count (G.1X: 4
# vCPU, 16 GB, 1 DPU; G.2X twice that). EMR Serverless: driver and executor sizes and executor count.
GLUE_PROFILES: dict[str, dict[str, Any]] = {
    "small": {"WorkerType": "G.1X", "NumberOfWorkers": 2},
    "medium": {"WorkerType": "G.1X", "NumberOfWorkers": 5},
    "large": {"WorkerType": "G.2X", "NumberOfWorkers": 10},
}
# How a job run is tagged with its Dagster run and asset, so a retried step finds it.
ASSET_ARGUMENT, RUN_ARGUMENT = "--lakehouse-asset", "--lakehouse-dagster-run"
ASSET_TAG, RUN_TAG = "dagster/asset-key", "lakehouse/dagster-run-id"
EMR_PYTHON = "/usr/bin/python3.11"
GLUE_ACTIVE = ("STARTING", "RUNNING", "STOPPING", "WAITING")
EMR_ACTIVE = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED", "CANCELLING")
GLUE_DPU_PER_WORKER = {"G.025X": 0.25, "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8}
EMR_PROFILES: dict[str, dict[str, str]] = {
    "small": {"spark.driver.cores": "1", "spark.driver.memory": "4g", "spark.executor.cores": "1", "spark.executor.memory": "4g",
              "spark.executor.instances": "2"},
    "medium": {"spark.driver.cores": "2", "spark.driver.memory": "8g", "spark.executor.cores": "2", "spark.executor.memory": "8g",
               "spark.executor.instances": "4"},
    "large": {"spark.driver.cores": "4", "spark.driver.memory": "16g", "spark.executor.cores": "4", "spark.executor.memory": "16g",
              "spark.executor.instances": "8"},
}


class RemoteCompute(SparkCompute):
    """What both remote computes share: where Pipes keeps context and messages, the AWS endpoint,
    and the LAKEHOUSE_* variables the job runs with (this deployment's, see Settings.remote_variables)."""

    region: str
    endpoint_url: str | None = Field(default=None, description="AWS endpoint override (a local emulation); None: AWS itself")
    pipes_bucket: str = Field(description="bucket for Pipes context and messages (the artifacts bucket)")
    job_variables: dict[str, str] = Field(default={}, description="LAKEHOUSE_* variables of the remote job")
    release: str = Field(description="content hash of the code jobs run (lakehouse.resources.release.release_hash)")
    message_interval: float = MESSAGE_INTERVAL_SECONDS

    poll_seconds: float = 5.0
    max_wait_seconds: float = Field(default=48 * 3600, description="longest wait for an earlier attempt's job run (Glue's default timeout)")

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> dg.MaterializeResult:
        step = step_of(context, t)
        # A retried step first looks for the job run an earlier attempt started: one still running
        # is awaited, never started twice. Then the step plans as usual, so what that run did
        # counts: a published write leaves nothing new, a refused or failed one is run again (and
        # its refusal reported again, its blocking checks failing again).
        reattached: dict[str, Any] = {}
        earlier = self.running_job_run(context.run_id, t)
        if earlier is not None:
            context.log.warning(
                f"{self.service} job run {earlier} of this run's {t.key} step, started by an earlier attempt, is still running: "
                "awaiting it instead of starting another"
            )
            reattached = {"reattached_job_run": earlier, "reattached_job_state": self.await_job_run(context, earlier)}
        store = self.writer.store.get_store()
        plan = plan_inputs(step, t, store, context.log)
        if plan.nothing_new:  # no job: reported here, as a local run reports it
            context.log.info(f"no new Bronze data for {t.key}: no {self.service} job submitted")
            report = self.writer.write(t.target, None, step.write, context.log)
            return WriteReport({"new_bronze_files": 0, **reattached, **report.metadata}, report.checks).materialize_result()
        extras = {SETTINGS_EXTRA: self.job_variables, PARTITIONS_EXTRA: list(step.write.partition_keys)}
        release = Release(self.pipes_bucket, self.release)
        release.require(self.s3())
        result = self.submit(context, t, extras, release).get_materialize_result()
        return dg.MaterializeResult(
            asset_key=result.asset_key, metadata={**(result.metadata or {}), **reattached, "lakehouse_release": release.hash},
            check_results=result.check_results,
            data_version=result.data_version, tags=result.tags,
        )

    service: ClassVar[str] = "remote"
    succeeded: ClassVar[str] = "SUCCEEDED"

    def running_job_run(self, run_id: str, t: Transformation) -> str | None:
        """The id of a job run of Dagster run ``run_id`` for ``t`` that has not ended, if any."""
        raise NotImplementedError

    def job_run_state(self, job_run_id: str) -> tuple[str, bool]:
        """(state, ended) of a job run."""
        raise NotImplementedError

    def stop_job_run(self, job_run_id: str) -> None:
        raise NotImplementedError

    def await_job_run(self, context: dg.AssetExecutionContext, job_run_id: str) -> str:
        """Wait for the job run to end; its end state. Terminating the run stops it."""
        deadline = time.monotonic() + self.max_wait_seconds
        try:
            while True:
                state, ended = self.job_run_state(job_run_id)
                if ended:
                    return state
                if time.monotonic() > deadline:  # never a second job beside one still running
                    raise RuntimeError(
                        f"{self.service} job run {job_run_id} of an earlier attempt is still {state} after {self.max_wait_seconds:.0f} s: "
                        "stop it, or wait for it, and retry the step"
                    )
                time.sleep(self.poll_seconds)
        except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):
            context.log.warning(f"[pipes] execution interrupted, stopping {self.service} job run {job_run_id}")
            self.stop_job_run(job_run_id)
            raise

    def submit(self, context: dg.AssetExecutionContext, t: Transformation, extras: dict, release: Release) -> Any:
        raise NotImplementedError

    def client(self, service: str):
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def s3(self):
        return S3Resource(region_name=self.region, endpoint_url=self.endpoint_url).get_client()

    def pipes_io(self) -> dict[str, Any]:
        s3 = self.s3()
        return {
            "context_injector": PipesS3ContextInjector(bucket=self.pipes_bucket, client=s3, key_prefix=PIPES_PREFIX),
            "message_reader": _PipesS3Messages(bucket=self.pipes_bucket, client=s3, interval=self.message_interval),
        }


class _PipesS3Messages(PipesS3MessageReader):
    """PipesS3MessageReader whose message chunks go under ``pipes/`` like the context (its own put
    them at the bucket's root, outside what the job roles may write; docs/remote-compute.md)."""

    @contextlib.contextmanager
    def get_params(self):
        with super().get_params() as params:
            yield {**params, "key_prefix": f"{PIPES_PREFIX}{params['key_prefix']}"}


class RemoteJobFailed(RuntimeError):
    """A remote job run ended without success: its error text and where to look."""


class _GlueClient(PipesGlueClient):
    """PipesGlueClient whose run metadata adds the cost (DPU-seconds) and where the logs are, and
    whose failures say the job's error and where its logs and console page are."""

    def _wait_for_job_run_completion(self, job_name, run_id):
        response = super()._wait_for_job_run_completion(job_name, run_id)
        run = response["JobRun"]
        if run["JobRunState"] != "SUCCEEDED":
            region = self._client.meta.region_name
            raise RemoteJobFailed(
                f"Glue job {job_name} run {run_id} ended {run['JobRunState']}: {run.get('ErrorMessage') or 'no error message'}; "
                f"logs: CloudWatch {run.get('LogGroupName', '/aws-glue/jobs')}/output and /error, stream {run_id}; "
                f"console: https://{region}.console.aws.amazon.com/gluestudio/home?region={region}#/job/{job_name}/run/{run_id}"
            )
        return response

    def _extract_dagster_metadata(self, response):
        metadata = dict(super()._extract_dagster_metadata(response))
        run = response["JobRun"]
        seconds = run.get("ExecutionTime")
        if run.get("NumberOfWorkers") and run.get("WorkerType") in GLUE_DPU_PER_WORKER:
            capacity = run["NumberOfWorkers"] * GLUE_DPU_PER_WORKER[run["WorkerType"]]
        else:
            capacity = run.get("MaxCapacity")
        if seconds is not None and capacity:
            metadata["glue_dpu_seconds"] = float(seconds * capacity)
            metadata["glue_execution_seconds"] = int(seconds)
        if run.get("LogGroupName"):
            metadata["glue_log_group"] = f"{run['LogGroupName']}/output"
            metadata["glue_log_stream"] = run["Id"]
        return metadata


class GlueCompute(RemoteCompute):
    """Runs each transformation as a run of one generic Glue 5.1 job (terraform creates it, with the
    remote driver as its script, ``--datalake-formats iceberg`` and the project wheel): one job, not
    one per transformation, because every transformation runs the same driver with other arguments."""

    job_name: str
    service: ClassVar[str] = "Glue"

    def running_job_run(self, run_id: str, t: Transformation) -> str | None:
        pages = self.client("glue").get_paginator("get_job_runs").paginate(JobName=self.job_name, PaginationConfig={"MaxItems": 200})
        for page in pages:
            for run in page["JobRuns"]:
                arguments = run.get("Arguments") or {}
                if (arguments.get(RUN_ARGUMENT), arguments.get(ASSET_ARGUMENT)) == (run_id, t.key) and run["JobRunState"] in GLUE_ACTIVE:
                    return run["Id"]
        return None

    def job_run_state(self, job_run_id: str) -> tuple[str, bool]:
        state = self.client("glue").get_job_run(JobName=self.job_name, RunId=job_run_id)["JobRun"]["JobRunState"]
        return state, state not in GLUE_ACTIVE

    def stop_job_run(self, job_run_id: str) -> None:
        self.client("glue").batch_stop_job_run(JobName=self.job_name, JobRunIds=[job_run_id])

    def submit(self, context: dg.AssetExecutionContext, t: Transformation, extras: dict, release: Release) -> Any:
        client = _GlueClient(client=self.client("glue"), forward_termination=True, **self.pipes_io())
        params = {
            "JobName": self.job_name,
            "Arguments": {
                "--datalake-formats": "iceberg", "--additional-python-modules": release.wheel_uri,
                # Tag the run (Glue job runs have no tags): a retried step finds it (running_job_run).
                ASSET_ARGUMENT: t.key, RUN_ARGUMENT: context.run_id,
            },
            **GLUE_PROFILES[t.profile],
        }
        return client.run(context=context, start_job_run_params=params, extras=extras)


class _EmrServerlessClient(PipesEMRServerlessClient):
    """PipesEMRServerlessClient whose run metadata adds the cost (billedResourceUtilization), whose
    messages come from S3 while the job runs (it reads CloudWatch only with its own reader), and
    whose failures say the job's error and where its logs are (its own say only "job failed")."""

    def _wait_for_completion(self, context, start_response):
        try:
            return super()._wait_for_completion(context, start_response)
        except RuntimeError as error:
            application, run_id = start_response["applicationId"], start_response["jobRunId"]
            run = self.client.get_job_run(applicationId=application, jobRunId=run_id)["jobRun"]
            raise RemoteJobFailed(
                f"EMR Serverless job run {run_id} of application {application} ended {run['state']}: "
                f"{run.get('stateDetails') or 'no details'}; logs: CloudWatch /aws/emr-serverless, "
                f"stream /applications/{application}/jobs/{run_id}/SPARK_DRIVER/stderr"
            ) from error

    def _extract_dagster_metadata(self, response):
        metadata = dict(super()._extract_dagster_metadata(response))
        run = response["jobRun"]
        for name, value in (run.get("billedResourceUtilization") or {}).items():
            metadata[f"emr_billed_{name}"] = float(value)
        if run.get("totalExecutionDurationSeconds") is not None:
            metadata["emr_execution_seconds"] = int(run["totalExecutionDurationSeconds"])
        return metadata

    def _read_messages(self, context, session, response):
        # The S3 message reader has read them already; the base class would warn that it cannot.
        if not isinstance(self.message_reader, PipesS3MessageReader):
            super()._read_messages(context, session, response)


class EmrServerlessCompute(RemoteCompute):
    """Runs each transformation as a job run on one EMR Serverless application (emr-7.x, Spark 3.5,
    which has Iceberg's runtime): the release's driver as its entry point, its wheel on the Python
    path (spark.submit.pyFiles), the project's dependencies in the application's image."""

    application_id: str
    execution_role_arn: str
    service: ClassVar[str] = "EMR Serverless"
    succeeded: ClassVar[str] = "SUCCESS"

    def running_job_run(self, run_id: str, t: Transformation) -> str | None:
        emr = self.client("emr-serverless")
        for page in emr.get_paginator("list_job_runs").paginate(applicationId=self.application_id, states=list(EMR_ACTIVE)):
            for run in page["jobRuns"]:
                tags = emr.get_job_run(applicationId=self.application_id, jobRunId=run["id"])["jobRun"].get("tags") or {}
                if (tags.get(RUN_TAG), tags.get(ASSET_TAG)) == (run_id, t.key):
                    return run["id"]
        return None

    def stop_job_run(self, job_run_id: str) -> None:
        self.client("emr-serverless").cancel_job_run(applicationId=self.application_id, jobRunId=job_run_id)

    def job_run_state(self, job_run_id: str) -> tuple[str, bool]:
        state = self.client("emr-serverless").get_job_run(applicationId=self.application_id, jobRunId=job_run_id)["jobRun"]["state"]
        return state, state not in EMR_ACTIVE

    def submit(self, context: dg.AssetExecutionContext, t: Transformation, extras: dict, release: Release) -> Any:
        client = _EmrServerlessClient(client=self.client("emr-serverless"), forward_termination=True, **self.pipes_io())
        conf = {
            **EMR_PROFILES[t.profile],
            "spark.submit.pyFiles": release.wheel_uri,
            # The application's image has the project's dependencies for this Python (deploy/emr/Dockerfile).
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": EMR_PYTHON, "spark.executorEnv.PYSPARK_PYTHON": EMR_PYTHON,
        }
        params = {
            "applicationId": self.application_id,
            "executionRoleArn": self.execution_role_arn,
            "name": f"{t.key} {context.run_id[:8]}",
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": release.driver_uri,
                    "entryPointArguments": ["--lakehouse-asset", t.key],
                    "sparkSubmitParameters": " ".join(f"--conf {shlex.quote(f'{k}={v}')}" for k, v in conf.items()),
                }
            },
            "tags": {ASSET_TAG: t.key, RUN_TAG: context.run_id},
        }
        return client.run(context=context, start_job_run_params=params, extras=extras)
