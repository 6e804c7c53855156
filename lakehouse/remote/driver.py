"""The remote driver: runs one lakehouse transformation in a Glue or EMR Serverless Spark job.

The job's script is this file (shipped in the wheel; ``lakehouse package`` uploads it). Dagster's
compute resource starts the job through Dagster Pipes; here the driver

- opens dagster-pipes: context from S3 and messages to S3 (both services), its parameters from
  the CLI arguments Glue passes (``--dagster-pipes-context``) or from the environment (EMR
  Serverless passes them as ``spark.emr-serverless.driverEnv.*``);
- takes the settings of the Dagster deployment from the Pipes extras (the same buckets, databases,
  endpoints and rules as the code location), with the Spark-native store on the platform's Iceberg;
- finds the transformation by asset key, and runs exactly what a local run runs
  (``lakehouse.resources.transformation_run.run_transformation``): plan the inputs from the
  target's watermarks and the partition's days, read them with Spark, call the function, write it
  with write-audit-publish, evaluate the contract's checks;
- reports the materialization's metadata and the check results back through Pipes.

No table data passes through the Dagster process: only the context and these messages do.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lakehouse.resources.remote_protocol import MESSAGE_INTERVAL_SECONDS, PARTITIONS_EXTRA, SETTINGS_EXTRA


class CodeVersionMismatch(RuntimeError):
    """The job runs other code than the Dagster deployment that started it."""


def main() -> None:
    import boto3
    from dagster_pipes import (
        DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT,
        PipesCliArgsParamsLoader,
        PipesEnvVarParamsLoader,
        PipesS3ContextLoader,
        PipesS3MessageWriter,
        open_dagster_pipes,
    )

    # boto3 finds the region and credentials as on any AWS compute (the job's role), and an
    # endpoint override (the local emulation) in AWS_ENDPOINT_URL.
    s3 = boto3.client("s3")
    params = PipesCliArgsParamsLoader() if DAGSTER_PIPES_CONTEXT_CLI_ARGUMENT in sys.argv else PipesEnvVarParamsLoader()
    if not params.is_dagster_pipes_process():
        raise SystemExit(
            "lakehouse remote driver: no Dagster Pipes context (--dagster-pipes-context argument or DAGSTER_PIPES_CONTEXT "
            "variable); it runs as a job started by the Dagster deployment (LAKEHOUSE_COMPUTE=glue or emr-serverless), not by hand"
        )
    with open_dagster_pipes(
        context_loader=PipesS3ContextLoader(s3),
        message_writer=PipesS3MessageWriter(s3, interval=MESSAGE_INTERVAL_SECONDS),
        params_loader=params,
    ) as pipes:
        run(pipes)


def run(pipes: Any) -> None:
    """Run the transformation of ``pipes.asset_key`` and report it through ``pipes``."""
    os.environ.update(pipes.extras.get(SETTINGS_EXTRA, {}))

    import lakehouse.assets  # noqa: F401 (registers every transformation)
    from lakehouse.automation.partitions import daily_partitions
    from lakehouse.contracts.transformations import registered
    from lakehouse.environment import remote_spark_session, table_store, table_writer, with_partitions_start
    from lakehouse.io.table_write import WriteStep
    from lakehouse.remote.pipes_metadata import to_pipes
    from lakehouse.resources.transformation_run import TransformationStep, run_transformation
    from lakehouse.settings import load_settings

    settings = load_settings()
    t = registered(pipes.asset_key)
    if pipes.code_version is not None and pipes.code_version != t.code_version:
        raise CodeVersionMismatch(
            f"{t.key}: this job runs code version {t.code_version}, the Dagster deployment has {pipes.code_version}: "
            "upload the deployment's package (`lakehouse package --upload`) and point the compute at it"
        )
    partitions = daily_partitions(with_partitions_start(settings).partitions_start)
    step = TransformationStep(
        write=WriteStep(run_id=pipes.run_id, asset_key=t.key, partition_keys=tuple(pipes.extras.get(PARTITIONS_EXTRA, ())), code_version=t.code_version),
        buildable=lambda day: partitions.has_partition_key(day.isoformat()),
    )
    store = table_store(settings)
    report = run_transformation(t, step, table_writer(settings, store), lambda: remote_spark_session(store), pipes.log)
    pipes.report_asset_materialization(metadata=to_pipes(report.metadata))
    for outcome in report.checks:
        pipes.report_asset_check(
            check_name=outcome.name,
            passed=outcome.passed,
            severity="ERROR" if outcome.severity.value == "error" else "WARN",
            # Pipes carries no check description: it travels as metadata.
            metadata=to_pipes({"description": outcome.description, **outcome.metadata}),
        )


if __name__ == "__main__":
    main()
