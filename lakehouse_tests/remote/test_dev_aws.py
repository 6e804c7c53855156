"""`lakehouse dev-aws`, as a user starts it: a local AWS with the environment provisioned."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import boto3
import pytest

pytestmark = pytest.mark.slow  # provisioning builds the project's wheel


def test_dev_aws_serves_a_provisioned_environment_and_stops_by_itself(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "AWS_"))}
    env.update(LAKEHOUSE_HOME=str(tmp_path / "lh"), LAKEHOUSE_ENVIRONMENT_NAME="devtest", PYTHONUNBUFFERED="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
    process = subprocess.Popen([sys.executable, "-m", "lakehouse.cli", "dev-aws", "--port", "0", "--for", "60"],
                               env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(line.startswith("  export ") for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        exports = next((line for line in lines if line.startswith("  export ")), None)
        assert exports, "".join(lines)
        variables = dict(re.findall(r"(\w+)=(\S+)", exports))
        assert variables["LAKEHOUSE_COMPUTE"] == "glue" and variables["LAKEHOUSE_AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        kw = {"endpoint_url": variables["LAKEHOUSE_AWS_ENDPOINT_URL"], "region_name": variables["LAKEHOUSE_AWS_REGION"],
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        job = boto3.client("glue", **kw).get_job(JobName="lakehouse-transform-devtest")["Job"]
        assert job["Command"]["ScriptLocation"] == "s3://lakehouse-artifacts-devtest/driver/driver.py"
        assert {d["Name"] for d in boto3.client("glue", **kw).get_databases()["DatabaseList"]} >= {"lakehouse_silver_devtest"}
        releases = boto3.client("s3", **kw).list_objects_v2(Bucket="lakehouse-artifacts-devtest", Prefix="releases/")
        assert any(o["Key"].endswith(".whl") for o in releases.get("Contents", []))
        process.send_signal(signal.SIGINT)  # Ctrl-C stops the server and any job run, and the command
        assert process.wait(timeout=60) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
