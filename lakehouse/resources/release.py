"""The code a remote job runs: the project's wheel and the driver, uploaded under a content hash.

    lakehouse package --upload

A release is ``s3://<artifacts bucket>/releases/<hash>/`` holding the wheel and ``driver.py``; the
hash is of the package's own source (``release_hash``), so the code location, which computes the
same hash of the code it runs, points every job at exactly that code, and uploading unchanged code
again uploads nothing. The Glue job's script (``driver/driver.py``, the same for every release)
only calls the driver of the wheel installed for the run.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lakehouse.resources.remote_protocol import DRIVER_KEY
from lakehouse.setting_names import SettingsError

RELEASES_PREFIX = "releases"
# From this file, not `lakehouse.__file__`: a `lakehouse/` folder in the working directory (a
# LAKEHOUSE_HOME, say) shadows an editable install as a namespace package whose __file__ is None.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# The Glue job's script: the same for every release, it runs the driver of the installed wheel.
BOOTSTRAP = b"from lakehouse.remote.driver import main\n\nmain()\n"


class PackageError(RuntimeError):
    """The release cannot be built."""


class ReleaseMissing(SettingsError):
    """The code location's release is not in the artifacts bucket: no job can run it."""


@functools.cache
def release_hash() -> str:
    """A hash of the package's source files (Python modules and package data), by relative path."""
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE_ROOT.rglob("*") if p.is_file() and _is_source(p.relative_to(PACKAGE_ROOT))):
        digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# What dbt writes into its project folder while it runs (git-ignored, not in the wheel): state, not source.
DBT_GENERATED = ("dbt/target", "dbt/logs", "dbt/.user.yml")


def _is_source(relative: Path) -> bool:
    posix = relative.as_posix()
    generated = any(posix == g or posix.startswith(g + "/") for g in DBT_GENERATED)
    return not generated and "__pycache__" not in relative.parts and relative.suffix != ".pyc"


def wheel_name() -> str:
    return f"lakehouse-{metadata.version('lakehouse')}-py3-none-any.whl"


@dataclass(frozen=True)
class Release:
    bucket: str
    hash: str

    @property
    def prefix(self) -> str:
        return f"{RELEASES_PREFIX}/{self.hash}"

    @property
    def wheel_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{wheel_name()}"

    @property
    def driver_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/driver.py"

    def keys(self) -> list[str]:
        return [f"{self.prefix}/{wheel_name()}", f"{self.prefix}/driver.py"]

    def require(self, s3) -> None:
        """Fail, naming the fix, unless the release is in the bucket."""
        absent = self.missing(s3)
        if absent:
            raise ReleaseMissing(
                f"the code location runs release {self.hash}, which is not in s3://{self.bucket}/{self.prefix}/ "
                f"(missing {', '.join(k.rsplit('/', 1)[-1] for k in absent)}): upload it with `lakehouse package --upload`"
            )

    def missing(self, s3) -> list[str]:
        """The release's objects not in the bucket."""
        absent = []
        for key in self.keys():
            try:
                s3.head_object(Bucket=self.bucket, Key=key)
            except s3.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                absent.append(key)
        return absent


def current_release(bucket: str) -> Release:
    return Release(bucket, release_hash())


@functools.cache
def build_wheel() -> Path:
    """The project's wheel, built from the source checkout the package runs from (once per process)."""
    root = PACKAGE_ROOT.parent
    if not (root / "pyproject.toml").is_file():
        raise PackageError(f"no pyproject.toml next to {PACKAGE_ROOT}: build the release from a source checkout of the project")
    out = Path(tempfile.mkdtemp(prefix="lakehouse-wheel-"))
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
    source = out / "source"
    shutil.copytree(PACKAGE_ROOT, source / "lakehouse", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=600,
    )
    built = sorted(out.glob("lakehouse-*.whl"))
    if done.returncode != 0 or not built:
        raise PackageError(f"building the wheel failed: {(done.stderr or done.stdout).strip()[-500:]}")
    if built[0].name != wheel_name():
        # The release is named after the installed version (the one jobs and the code location run).
        raise PackageError(
            f"the checkout builds {built[0].name} but the installed package is {wheel_name()} (pyproject.toml's version "
            "changed since it was installed): reinstall the project (pip install -e .) and package again"
        )
    return built[0]


def upload(s3, bucket: str) -> tuple[Release, list[str]]:
    """Upload the current release to ``bucket`` unless it is there; also the Glue job's script.
    Returns the release and the keys uploaded (none when the release was there already)."""
    release = current_release(bucket)
    missing = release.missing(s3)
    uploaded = []
    if missing:
        wheel = build_wheel()
        driver = PACKAGE_ROOT / "remote" / "driver.py"
        sources = {f"{release.prefix}/{wheel_name()}": wheel.read_bytes(), f"{release.prefix}/driver.py": driver.read_bytes()}
        for key in missing:
            s3.put_object(Bucket=bucket, Key=key, Body=sources[key])
            uploaded.append(key)
    try:
        same = s3.get_object(Bucket=bucket, Key=DRIVER_KEY)["Body"].read() == BOOTSTRAP
    except s3.exceptions.NoSuchKey:
        same = False
    if not same:
        s3.put_object(Bucket=bucket, Key=DRIVER_KEY, Body=BOOTSTRAP)
        uploaded.append(DRIVER_KEY)
    return release, uploaded
