"""The AWS problems users will meet, each reported with what to do: a missing bucket or Glue database,
access denied, a wrong region, no credentials, an unreachable endpoint. Against moto over HTTP."""

from __future__ import annotations

import datetime as dt
import socket

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.automation.refresh import refresh
from lakehouse.contracts import tables as t
from lakehouse.environment import resources_for
from lakehouse.io.aws import AwsSetupError
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import SettingsError, load_settings
from lakehouse_tests.aws.server import LAKEHOUSE_VARIABLES, AwsEnvironment, MotoAws

STAMP = CommitStamp(run_id="0123456789abcdef", asset_key="test")


def _environment(moto: MotoAws, monkeypatch, **create) -> AwsEnvironment:
    for name in LAKEHOUSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = moto.create_environment(**create)
    for name, value in env.variables.items():
        monkeypatch.setenv(name, value)
    return env


def _store_error() -> str:
    with pytest.raises(AwsSetupError) as info:
        resources_for(load_settings())["store"].get_store()
    return str(info.value)


def _refresh_error() -> str:
    with pytest.raises(AwsSetupError) as info:
        refresh(load_settings(), dg.DagsterInstance.ephemeral())
    return str(info.value)


def test_missing_bucket_names_the_bucket_the_variable_and_the_fix(moto, monkeypatch):
    env = _environment(moto, monkeypatch, skip={"bucket:silver"})
    message = _refresh_error()
    assert f"S3 bucket {env.bucket('silver')!r} (silver tables, LAKEHOUSE_SILVER_BUCKET) does not exist" in message
    assert "create it (with terraform/ or by hand, one per layer) or set LAKEHOUSE_SILVER_BUCKET to an existing bucket" in message
    assert "bronze" not in message and "gold" not in message  # only what is wrong


def test_missing_glue_database_names_database_region_and_variable(moto, monkeypatch):
    env = _environment(moto, monkeypatch, skip={"database:gold"})
    message = _refresh_error()
    assert f"Glue database {env.database('gold')!r} (gold tables, LAKEHOUSE_GLUE_DATABASE_GOLD) does not exist in region eu-west-1" in message
    assert "create it" in message and "fix LAKEHOUSE_AWS_REGION" in message


def test_every_problem_of_the_store_is_reported_at_once(moto, monkeypatch):
    env = _environment(moto, monkeypatch, skip={"bucket:bronze", "database:silver"})
    message = _store_error()
    assert message.count("does not exist") == 2
    assert env.bucket("bronze") in message and env.database("silver") in message


def test_missing_landing_bucket_points_at_the_landing_setting(moto, monkeypatch):
    env = _environment(moto, monkeypatch, skip={"bucket:landing"})
    message = _refresh_error()
    assert f"S3 bucket 'lakehouse-landing-{env.name}' (the landing zone, LAKEHOUSE_LANDING) does not exist" in message
    assert "set LAKEHOUSE_LANDING to the s3://bucket/prefix where source files arrive" in message


def test_the_cli_prints_the_problem_and_exits_2(moto, monkeypatch, capsys):
    from lakehouse.cli import main

    env = _environment(moto, monkeypatch, skip={"bucket:gold"})
    assert main(["refresh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lakehouse: AWS setup problem(s): ") and env.bucket("gold") in err and "LAKEHOUSE_GOLD_BUCKET" in err


def test_wrong_region_says_where_the_bucket_is(moto, monkeypatch):
    env = _environment(moto, monkeypatch)  # created in eu-west-1
    monkeypatch.setenv("LAKEHOUSE_AWS_REGION", "us-east-1")
    message = _refresh_error()  # the landing zone is checked first
    assert f"S3 bucket 'lakehouse-landing-{env.name}' (the landing zone, LAKEHOUSE_LANDING) is in region eu-west-1, but LAKEHOUSE_AWS_REGION is us-east-1" in message
    message = _store_error()
    assert f"S3 bucket {env.bucket('silver')!r} (silver tables, LAKEHOUSE_SILVER_BUCKET) is in region eu-west-1, but LAKEHOUSE_AWS_REGION is us-east-1" in message
    assert "set LAKEHOUSE_AWS_REGION=eu-west-1" in message
    # Glue databases are regional: from us-east-1 they are not there, and the message says why that may be.
    assert f"Glue database {env.database('silver')!r}" in message and "if it exists in another region, fix LAKEHOUSE_AWS_REGION" in message


def test_access_denied_names_the_identity_and_the_permissions_to_grant(moto, monkeypatch):
    env = _environment(moto, monkeypatch)
    allowed = [f"arn:aws:s3:::{env.bucket(b)}" for b in ("bronze", "gold", "artifacts", "landing")]
    credentials = moto.user_with_policy(
        f"pipeline-{env.name}",
        [
            {"Effect": "Allow", "Action": "s3:*", "Resource": allowed + [f"{a}/*" for a in allowed]},
            {"Effect": "Allow", "Action": ["glue:*", "sts:GetCallerIdentity"], "Resource": "*"},
        ],
    )
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    with moto.iam_enforced():
        message = _refresh_error()
    bucket = env.bucket("silver")
    assert f"access denied to S3 bucket {bucket!r} (silver tables, LAKEHOUSE_SILVER_BUCKET)" in message
    assert f"for arn:aws:iam::123456789012:user/pipeline-{env.name}" in message
    assert f"grant s3:ListBucket on arn:aws:s3:::{bucket} and s3:GetObject, s3:PutObject, s3:DeleteObject on arn:aws:s3:::{bucket}/*" in message
    assert env.bucket("bronze") not in message  # allowed buckets pass


def test_no_credentials_says_where_credentials_come_from(moto, monkeypatch):
    _environment(moto, monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    message = _refresh_error()
    assert "no AWS credentials found: set AWS_PROFILE" in message and "task role" in message


def test_unreachable_endpoint_names_the_setting(moto, monkeypatch):
    _environment(moto, monkeypatch)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("LAKEHOUSE_AWS_ENDPOINT_URL", closed)
    message = _refresh_error()
    assert f"cannot reach {closed} (LAKEHOUSE_AWS_ENDPOINT_URL" in message


def test_setup_errors_are_settings_errors():
    # The CLI reports SettingsError as a configuration problem (exit 2), not as a crash.
    assert issubclass(AwsSetupError, SettingsError)


# ---- problems that appear after the check (a bucket or database removed while running) --------
@pytest.fixture
def checked_store(moto, monkeypatch):
    env = _environment(moto, monkeypatch)
    store = resources_for(load_settings())["store"].get_store()  # buckets and databases checked here
    return env, store


def test_bucket_removed_after_the_check_is_still_explained(moto, checked_store):
    env, store = checked_store
    moto.client("s3").delete_bucket(Bucket=env.bucket("bronze"))
    batch = pa.table(
        {"_raw": ["{}"], "_line_number": [1], "_parse_error": [None], "_source_file": ["orders/dt=2026-01-01/a.jsonl"],
         "_ingested_at": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)], "_batch_id": ["b"], "dt": [dt.date(2026, 1, 1)]}
    )
    message = rf"S3 bucket '{env.bucket('bronze')}' \(bronze tables, LAKEHOUSE_BRONZE_BUCKET\) does not exist.*while accessing s3://"
    with pytest.raises(AwsSetupError, match=message):
        store.write(t.ORDERS_RAW, batch, STAMP)


def test_database_removed_after_the_check_is_still_explained(moto, checked_store):
    env, store = checked_store
    moto.client("glue").delete_database(Name=env.database("silver"))
    with pytest.raises(AwsSetupError, match=rf"Glue database '{env.database('silver')}' \(silver tables, LAKEHOUSE_GLUE_DATABASE_SILVER\) does not exist"):
        store.write(t.ORDERS, t.ORDERS.arrow_schema.empty_table(), STAMP)
    # Nothing was created in its place: the databases belong to the infrastructure.
    assert env.database("silver") not in {d["Name"] for d in moto.client("glue").get_databases()["DatabaseList"]}
