"""A real PostgreSQL server on 127.0.0.1 (initdb/pg_ctl on a temp dir, a free port, TLS on as on
RDS), for the tests that need one: the deployed instance's storage (deploy/), the PostgreSQL source.

The server runs as the `postgres` user when the tests run as root (initdb refuses root); it is
stopped, and its directory removed, when the module's tests end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    host: str
    port: int
    username: str
    password: str

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.username, password=self.password, dbname=dbname, sslmode="require")

    def create_database(self, name: str) -> None:
        with contextlib.closing(self.connect()) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')

    def environment(self, dbname: str) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.yaml reads, for database ``dbname``."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_DB": dbname,
                "DAGSTER_PG_USERNAME": self.username, "DAGSTER_PG_PASSWORD": self.password}


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent  # the package's bin folder, where pg_ctl finds `postgres`
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


@pytest.fixture(scope="module")
def postgres():
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): `apt-get update && apt-get install -y postgresql`")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root needs `runuser` to start PostgreSQL as the postgres user")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    # Outside pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    data, password = root / "data", secrets.token_urlsafe(24)
    (root / "pwfile").write_text(password + "\n")
    if as_root:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(root / "pwfile", "postgres", "postgres")
    (root / "pwfile").chmod(0o600)

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=START_TIMEOUT, cwd=root)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    port = free_port()
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "dagster", f"--pwfile={root / 'pwfile'}", "--auth=scram-sha-256",
            "-E", "UTF8", "--locale=C")
        # A self-signed certificate: the instance's sslmode=require (deploy/dagster.yaml) is then used as is.
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-keyout", str(data / "server.key"), "-out", str(data / "server.crt"))
        (data / "server.key").chmod(0o600)  # PostgreSQL refuses a key others can read
        options = f"-h 127.0.0.1 -p {port} -k {root} -c ssl=on -c fsync=off -c max_connections=200"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", str(START_TIMEOUT), "-o", options, "start")
        server = Postgres("127.0.0.1", port, "dagster", password)
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # pg_ctl -w waits for the socket; wait for TCP too
            try:
                server.connect().close()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=START_TIMEOUT)
        shutil.rmtree(root, ignore_errors=True)
