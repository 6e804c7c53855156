"""moto in server mode on 127.0.0.1: a real HTTP endpoint for S3, Glue and STS, like the cloud's.

Test code reaches it through boto3 and pyarrow exactly as production code reaches AWS, only with
an endpoint URL and dummy credentials. The server's lifetime is bounded by the context manager
that starts it (and, at the latest, by the test process: its thread is a daemon).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lakehouse.settings import LAYERS

REGION = "eu-west-1"
# Dummy credentials for moto, and no way to reach a developer's real profile or an instance role.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
AWS_UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE", "AWS_REGION", "AWS_DEFAULT_REGION")
LAKEHOUSE_VARIABLES = (
    "LAKEHOUSE_ENV", "LAKEHOUSE_LANDING", "LAKEHOUSE_ENVIRONMENT_NAME", "LAKEHOUSE_AWS_REGION", "LAKEHOUSE_AWS_ENDPOINT_URL",
    "LAKEHOUSE_S3_ENDPOINT_URL", "LAKEHOUSE_GLUE_ENDPOINT_URL", "LAKEHOUSE_COMPUTE", "LAKEHOUSE_GLUE_JOB_NAME", "LAKEHOUSE_EMR_APPLICATION_ID",
    "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN", "LAKEHOUSE_SPARK_RUNTIME", "LAKEHOUSE_DBT_TARGET",
    *(f"LAKEHOUSE_{layer.upper()}_BUCKET" for layer in (*LAYERS, "artifacts")),
    *(f"LAKEHOUSE_GLUE_DATABASE_{layer.upper()}" for layer in LAYERS),
)


def aws_test_env(mp: pytest.MonkeyPatch) -> None:
    for name in AWS_UNSET:
        mp.delenv(name, raising=False)
    for name, value in AWS_TEST_ENV.items():
        mp.setenv(name, value)


@dataclass
class AwsEnvironment:
    """One lakehouse environment's buckets and databases on the moto server, and its LAKEHOUSE_* variables."""

    name: str
    region: str
    endpoint: str
    landing: str  # s3:// prefix

    @property
    def variables(self) -> dict[str, str]:
        return {
            "LAKEHOUSE_ENV": "aws",
            "LAKEHOUSE_ENVIRONMENT_NAME": self.name,
            "LAKEHOUSE_AWS_REGION": self.region,
            "LAKEHOUSE_AWS_ENDPOINT_URL": self.endpoint,
            "LAKEHOUSE_LANDING": self.landing,
            # No Athena on the local endpoint: the dbt models run on dbt-duckdb over the Glue catalog.
            "LAKEHOUSE_DBT_TARGET": "duckdb",
        }

    def bucket(self, layer: str) -> str:
        return f"lakehouse-{layer}-{self.name}"

    def database(self, layer: str) -> str:
        return f"lakehouse_{layer}_{self.name.replace('-', '_')}"


@dataclass
class MotoAws:
    endpoint: str
    _clients: dict = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str = REGION):
        """An administrator's client (the dummy credentials), kept: creating one loads the service model."""
        import boto3

        if (service, region) not in self._clients:
            session = boto3.session.Session(aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"])
            self._clients[(service, region)] = session.client(service, region_name=region, endpoint_url=self.endpoint)
        return self._clients[(service, region)]

    def create_bucket(self, name: str, region: str = REGION) -> None:
        self.client("s3", region).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})

    def create_environment(self, *, region: str = REGION, skip: Iterable[str] = ()) -> AwsEnvironment:
        """Buckets (layers, artifacts, landing) and Glue databases (layers) of a new environment with
        the default names; ``skip`` leaves some out (e.g. ``"bucket:silver"``, ``"database:gold"``)."""
        env = AwsEnvironment(f"t{uuid.uuid4().hex[:8]}", region, self.endpoint, "")
        env.landing = f"s3://lakehouse-landing-{env.name}/incoming"
        skip = set(skip)
        for layer in (*LAYERS, "artifacts", "landing"):
            if f"bucket:{layer}" not in skip:
                self.create_bucket(env.bucket(layer), region)
        glue = self.client("glue", region)
        for layer in LAYERS:
            if f"database:{layer}" not in skip:
                glue.create_database(DatabaseInput={"Name": env.database(layer)})
        return env

    def upload(self, local_root: Path, files: Iterable[Path], s3_prefix: str) -> None:
        """Copy landing files to S3 under the same relative paths, as a producer would drop them."""
        bucket, _, prefix = s3_prefix[len("s3://") :].partition("/")
        s3 = self.client("s3")
        for path in files:
            key = "/".join(p for p in (prefix.rstrip("/"), path.relative_to(local_root).as_posix()) if p)
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    @contextlib.contextmanager
    def iam_enforced(self) -> Iterator[None]:
        """Requests are checked against IAM policies while inside (moto allows everything otherwise)."""
        previous = self._reset_auth("0")
        try:
            yield
        finally:
            self._reset_auth(previous)

    def _reset_auth(self, count: str) -> str:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=count.encode(), method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]

    def user_with_policy(self, name: str, statements: list[dict]) -> dict[str, str]:
        """An IAM user allowed only ``statements``; returns its AWS_* credential variables."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def keys(self, s3_uri: str) -> list[str]:
        """Keys under an s3:// prefix, relative to it."""
        bucket, _, prefix = s3_uri[len("s3://") :].partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"][len(prefix) :] for page in pages for o in page.get("Contents", []))


@contextlib.contextmanager
def moto_server() -> Iterator[MotoAws]:
    """A moto server on a free port of 127.0.0.1, stopped on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield MotoAws(f"http://{host}:{port}")
    finally:
        server.stop()
