"""The release remote jobs run: named by the hash of the package's source, uploaded once."""

from __future__ import annotations

import shutil
import uuid
import zipfile

import pytest

from lakehouse.resources import release as release_module
from lakehouse.resources.release import BOOTSTRAP, Release, ReleaseMissing, release_hash, upload, wheel_name
from lakehouse.resources.remote_protocol import DRIVER_KEY
from lakehouse_tests.aws.server import aws_test_env, moto_server

pytestmark = pytest.mark.slow  # builds the project's wheel


@pytest.fixture
def artifacts(monkeypatch):
    aws_test_env(monkeypatch)
    bucket = f"lakehouse-artifacts-{uuid.uuid4().hex[:8]}"  # moto's buckets outlive a server in this process
    with moto_server() as aws:
        aws.create_bucket(bucket)
        yield aws.client("s3"), bucket


def test_uploading_unchanged_code_again_uploads_nothing(artifacts):
    s3, bucket = artifacts
    release, uploaded = upload(s3, bucket)
    assert sorted(uploaded) == sorted([*release.keys(), DRIVER_KEY])
    modified = {key: s3.head_object(Bucket=bucket, Key=key)["LastModified"] for key in uploaded}
    again, uploaded_again = upload(s3, bucket)
    assert again == release and uploaded_again == []
    assert {key: s3.head_object(Bucket=bucket, Key=key)["LastModified"] for key in modified} == modified
    # What was uploaded: the project's wheel with the driver inside, the driver, the Glue job's script.
    wheel = s3.get_object(Bucket=bucket, Key=f"{release.prefix}/{wheel_name()}")["Body"].read()
    path = release_module.build_wheel()
    assert path.read_bytes() == wheel
    names = zipfile.ZipFile(path).namelist()
    assert "lakehouse/remote/driver.py" in names
    # the dbt project ships whole (its models, tests, macros, profiles), not its parse state
    dbt = release_module.PACKAGE_ROOT / "dbt"
    project_files = {f"lakehouse/dbt/{p.relative_to(dbt)}" for p in dbt.rglob("*") if p.is_file() and p.suffix in (".yml", ".sql", ".py")
                     and "target" not in p.relative_to(dbt).parts and p.name != ".user.yml"}
    assert "lakehouse/dbt/models/gold/customer_cohorts.sql" in project_files and project_files <= set(names)
    assert not any(n.startswith("lakehouse/dbt/target/") for n in names)
    assert not (release_module.PACKAGE_ROOT.parent / "build").exists()  # the checkout is left as it was
    assert s3.get_object(Bucket=bucket, Key=DRIVER_KEY)["Body"].read() == BOOTSTRAP


def test_the_release_hash_follows_the_source(tmp_path, monkeypatch):
    copy = tmp_path / "lakehouse"
    shutil.copytree(release_module.PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = release_hash()
    monkeypatch.setattr(release_module, "PACKAGE_ROOT", copy)
    release_hash.cache_clear()
    try:
        assert release_hash() == original  # the same source: the same release
        release_hash.cache_clear()
        (copy / "dbt" / "target").mkdir(exist_ok=True)
        (copy / "dbt" / "target" / "manifest.json").write_text("{}")  # dbt's state of a build, not source
        assert release_hash() == original
        release_hash.cache_clear()
        (copy / "assets" / "gold" / "sales.py").write_text((copy / "assets" / "gold" / "sales.py").read_text() + "\n# changed\n")
        assert release_hash() != original
    finally:
        release_hash.cache_clear()


def test_a_release_that_is_not_uploaded_is_refused_naming_the_command(artifacts):
    s3, bucket = artifacts
    with pytest.raises(ReleaseMissing, match=rf"release 0123456789abcdef, which is not in s3://{bucket}/releases/0123456789abcdef/.*lakehouse package --upload"):
        Release(bucket, "0123456789abcdef").require(s3)


def test_a_checkout_whose_version_differs_from_the_installed_one_is_refused_naming_the_fix(monkeypatch):
    installed = "lakehouse-0.0.1-py3-none-any.whl"  # as if pyproject.toml's version moved on since installing
    monkeypatch.setattr(release_module, "wheel_name", lambda: installed)
    release_module.build_wheel.cache_clear()  # built once per process: build it again here
    with pytest.raises(release_module.PackageError, match=rf"builds lakehouse-.*\.whl but the installed package is {installed}.*pip install -e \."):
        release_module.build_wheel()
