"""Health check of the lakehouse image's processes (deploy/Dockerfile): exit 0 when healthy.

`healthcheck.py [webserver|daemon|code-server|run] [--port N]`; without a name it finds the
process running in the container (the image's HEALTHCHECK, which cannot know the command ECS
gave). Each check is Dagster's own: the webserver's /server_info, `dagster-daemon liveness-check`
(recent heartbeats in the instance's storage), `dagster api grpc-health-check`. A run task is a
batch job whose exit status is what counts, so it is always healthy here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import urllib.request
from pathlib import Path

PORTS = {"webserver": 3000, "code-server": 4000}
TIMEOUT = 10
# What each process's command line holds (entrypoint.sh execs these).
MARKERS = (("webserver", "dagster-webserver"), ("daemon", "dagster-daemon"), ("code-server", "code-server"), ("code-server", "grpc"))


def running_process() -> str:
    """The image process found in /proc, or ``run`` (a run task, or nothing recognised)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in args)
        if "healthcheck.py" in text or "liveness-check" in text or "grpc-health-check" in text:
            continue
        for name, marker in MARKERS:
            if marker in text and "execute_run" not in text:
                return name
    return "run"


def check(process: str, port: int | None) -> bool:
    scripts = Path(sys.executable).parent
    if process == "webserver":
        url = f"http://127.0.0.1:{port or PORTS['webserver']}/server_info"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                return response.status == 200
        except OSError:
            return False
    if process == "daemon":
        command = [str(scripts / "dagster-daemon"), "liveness-check"]
    elif process == "code-server":
        command = [str(scripts / "dagster"), "api", "grpc-health-check", "-p", str(port or PORTS["code-server"])]
    else:
        return True
    try:
        return subprocess.run(command, capture_output=True, timeout=TIMEOUT * 3).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("process", nargs="?", choices=["webserver", "daemon", "code-server", "run"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    return 0 if check(args.process or running_process(), args.port) else 1


if __name__ == "__main__":
    sys.exit(main())
