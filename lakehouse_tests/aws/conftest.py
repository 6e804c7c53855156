"""Fixtures for the aws-mode tests: one moto server per module, dummy credentials, fresh environments."""

from __future__ import annotations

import pytest

from lakehouse_tests.aws.server import LAKEHOUSE_VARIABLES, AwsEnvironment, MotoAws, aws_test_env, moto_server


@pytest.fixture(scope="module")
def moto():
    with pytest.MonkeyPatch.context() as mp:
        aws_test_env(mp)
        with moto_server() as server:
            yield server


@pytest.fixture
def aws_env(moto: MotoAws, monkeypatch) -> AwsEnvironment:
    """A new environment (all buckets and databases) with its LAKEHOUSE_* variables set."""
    aws_test_env(monkeypatch)
    for name in LAKEHOUSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = moto.create_environment()
    for name, value in env.variables.items():
        monkeypatch.setenv(name, value)
    return env
