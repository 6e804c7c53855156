"""`lakehouse package`, `dev-aws` and `infra export`: what deploying to AWS needs from the code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lakehouse.cli.arguments import seconds
from lakehouse.cli.errors import UsageError
from lakehouse.settings import Settings


def cmd_infra_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write (or with --check compare) the stack's view of the code."""
    from lakehouse import infra

    path = args.output or infra.EXPORT_PATH
    if args.check:
        if infra.is_current(path):
            print(f"{path} is current")
            return 0
        print(f"{path} is stale: run `lakehouse infra export` and commit it", file=sys.stderr)
        return 1
    changed = infra.write(path)
    print(f"{'wrote' if changed else 'unchanged:'} {path}")
    return 0


def cmd_package(args: argparse.Namespace, settings: Settings) -> int:
    """Say which release this code is, and with --upload put it in the artifacts bucket."""
    from lakehouse.resources.release import current_release, upload

    if not args.upload:
        release = current_release(settings.bucket("artifacts"))
        print(f"release {release.hash}: {release.wheel_uri} and {release.driver_uri}")
        return 0
    if settings.env != "aws":
        raise UsageError("lakehouse package --upload puts the release in the artifacts bucket: it needs LAKEHOUSE_ENV=aws and its settings")
    import boto3

    s3 = boto3.client("s3", region_name=settings.aws_region, endpoint_url=settings.s3_endpoint)
    release, uploaded = upload(s3, settings.bucket("artifacts"))
    what = ", ".join(uploaded) if uploaded else "nothing (it is there already)"
    print(f"release {release.hash} in s3://{release.bucket}/{release.prefix}/: uploaded {what}")
    return 0


def cmd_dev_aws(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the local AWS emulation until interrupted (or for --for seconds)."""
    import time

    from lakehouse.remote.emulator import emulated_aws, provision

    name = settings.environment_name
    with emulated_aws(port=args.port, region=args.region) as (endpoint, _runner):
        aws = Settings(
            env="aws", aws_region=args.region, aws_endpoint_url=endpoint, landing=settings.landing if (settings.landing or "").startswith("s3://")
            else f"s3://lakehouse-landing-{name}/incoming", compute="glue",
        )
        provision(aws, endpoint)
        variables = {
            "LAKEHOUSE_ENV": "aws", "LAKEHOUSE_AWS_REGION": args.region, "LAKEHOUSE_AWS_ENDPOINT_URL": endpoint,
            "LAKEHOUSE_LANDING": aws.landing_root, "LAKEHOUSE_ENVIRONMENT_NAME": name, "LAKEHOUSE_COMPUTE": "glue",
            "LAKEHOUSE_DBT_TARGET": "duckdb",  # the local endpoint has no Athena: dbt-duckdb over its Glue catalog
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        }
        print(f"local AWS (moto) on {endpoint}: S3, Glue Data Catalog, CloudWatch Logs; Glue job runs of "
              f"{aws.job_name} run the remote driver under spark-submit.")
        print(f"environment {name!r} provisioned: buckets, Glue databases, the driver and the Glue job. In another shell:")
        print("  export " + " ".join(f"{k}={v}" for k, v in variables.items()))
        print("  lakehouse land-sample  (then upload: aws --endpoint-url ... s3 sync $LAKEHOUSE_HOME/landing " + aws.landing_root + ")")
        print("  lakehouse refresh")
        print("Ctrl-C stops the server and every job run still running.", flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    return 0


def register(command) -> None:
    package = command(
        "package", help="the release (wheel and driver, by content hash) remote jobs run; --upload puts it in the artifacts bucket",
        examples="  lakehouse package                           which release this code is\n"
        "  LAKEHOUSE_ENV=aws ... lakehouse package --upload",
    )
    package.add_argument("--upload", action="store_true", help="upload it unless it is there (needs LAKEHOUSE_ENV=aws)")
    package.set_defaults(run=cmd_package)
    dev_aws = command(
        "dev-aws", help="serve a local AWS (moto) whose Glue job runs really run, to try LAKEHOUSE_COMPUTE=glue without an account",
        examples="  lakehouse dev-aws                 until Ctrl-C, on 127.0.0.1:5000\n  lakehouse dev-aws --port 0 --for 600",
    )
    dev_aws.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000; 0: any free one)")
    dev_aws.add_argument("--region", default="eu-west-1")
    dev_aws.add_argument("--for", dest="seconds", type=seconds, default=0, metavar="SECONDS", help="stop after SECONDS (default: until Ctrl-C)")
    dev_aws.set_defaults(run=cmd_dev_aws)
    infra = command(
        "infra", help="what the terraform stack reads from the code",
        examples="  lakehouse infra export            write terraform/lakehouse.auto.tfvars.json\n"
        "  lakehouse infra export --check    exit 1 if it is stale (CI)",
    )
    infra_sub = infra.add_subparsers(dest="infra_command", required=True)
    export = infra_sub.add_parser(
        "export", help="write terraform/lakehouse.auto.tfvars.json (layers, buckets, databases, transformations)",
        epilog="examples:\n  lakehouse infra export\n  lakehouse infra export --check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is not what the code exports")
    export.add_argument("--output", type=Path, default=None, help="where to write (default terraform/lakehouse.auto.tfvars.json)")
    export.set_defaults(run=cmd_infra_export)
