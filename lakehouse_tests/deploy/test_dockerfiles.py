"""The images' Dockerfiles, checked statically (no Docker engine here): multi-stage, pinned bases,
non-root, health checks, no secrets, the instance file in DAGSTER_HOME, the three processes'
commands, the ports; and the entrypoint run with stand-in `dagster` commands. Each rule is also
shown to reject a Dockerfile that breaks it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass

import pytest

from lakehouse_tests.deploy.conftest import DEPLOY, PROJECT

MAIN, EMR = DEPLOY / "Dockerfile", DEPLOY / "emr" / "Dockerfile"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int


def parse(text: str) -> list[Instruction]:
    """Instructions in order (continuations joined, comments and parser directives dropped), each
    with the index of its stage (the FROM it follows)."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    instructions, stage = [], -1
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def exec_form(args: str) -> list[str]:
    import json

    return json.loads(args) if args.startswith("[") else shlex.split(args)


def problems(text: str, batch: bool = False) -> list[str]:
    """What breaks the image rules; ``batch`` images state HEALTHCHECK NONE instead of a check."""
    found = []
    instructions = parse(text)
    froms = [i for i in instructions if i.keyword == "FROM"]
    names = {}
    for i in froms:
        parts = i.args.split()
        image = parts[0]
        if len(parts) >= 3 and parts[1].upper() == "AS":
            names[parts[2]] = i.stage
        if "$" in image:
            found.append(f"FROM {image}: an unresolved argument hides the version")
            continue
        name, _, digest = image.partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
        if tag == "latest" or not (digest.startswith("sha256:") or re.fullmatch(r"\d+\.\d+\.\d+[\w.-]*|\d{8}[\w.-]*", tag)):
            found.append(f"FROM {image}: not pinned (a full version tag or a digest)")
    if len(froms) < 2:
        found.append("not multi-stage")
    last = len(froms) - 1
    copies_from = [re.search(r"--from=(\S+)", i.args).group(1) for i in instructions if i.keyword == "COPY" and i.stage == last and "--from=" in i.args]
    if len(froms) >= 2 and not any(names.get(src, src if src.isdigit() else None) is not None for src in copies_from):
        found.append("the final stage copies nothing from a build stage")
    final = [i for i in instructions if i.stage == last]
    users = [i.args for i in final if i.keyword == "USER"]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        found.append("the final stage does not end as a non-root USER")
    checks = [i.args for i in final if i.keyword == "HEALTHCHECK"]
    if batch:
        if checks != ["NONE"]:
            found.append("a batch image should state HEALTHCHECK NONE")
    elif not checks or checks[-1].upper() == "NONE" or "CMD" not in checks[-1]:
        found.append("no HEALTHCHECK CMD")
    for i in instructions:
        if i.keyword in {"ENV", "ARG"}:
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+)(\S*)", i.args):
                if any(word in name.upper() for word in SECRET_WORDS) and value:
                    found.append(f"{i.keyword} {name} holds a value: secrets come from the task's environment")
    return found


def env_of(text: str) -> dict[str, str]:
    env = {}
    for i in parse(text):
        if i.keyword == "ENV" and i.stage == len([j for j in parse(text) if j.keyword == "FROM"]) - 1:
            env.update(dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", i.args)))
    return env


def test_the_images_follow_the_rules():
    assert problems(MAIN.read_text()) == []
    assert problems(EMR.read_text(), batch=True) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: re.sub(r"FROM python:\S+ AS runtime", "FROM python:3.11-slim-bookworm AS runtime", t), "not pinned"),
        (lambda t: re.sub(r"FROM python:\S+ AS runtime", "FROM python:latest AS runtime", t), "not pinned"),
        (lambda t: t.replace("COPY --from=builder", "COPY"), "copies nothing"),
        (lambda t: t + "\nUSER root\n", "non-root"),
        (lambda t: re.sub(r"HEALTHCHECK[^\n]*\\\n[^\n]*\n", "", t), "HEALTHCHECK"),
        (lambda t: t.replace("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=1 DAGSTER_PG_PASSWORD=hunter2"), "holds a value"),
        (lambda t: t + "\nARG API_TOKEN=abc\n", "holds a value"),
    ],
)
def test_each_rule_rejects_a_dockerfile_that_breaks_it(change, expected):
    broken = change(MAIN.read_text())
    assert broken != MAIN.read_text()
    assert any(expected in p for p in problems(broken)), problems(broken)


def test_the_emr_image_rules_reject_a_floating_base_and_a_missing_healthcheck_statement():
    text = EMR.read_text()
    assert any("not pinned" in p for p in problems(re.sub(r"(emr-serverless/spark/emr-[\d.]+):\S+", r"\1:latest", text), batch=True))
    assert any("HEALTHCHECK NONE" in p for p in problems(text.replace("HEALTHCHECK NONE", ""), batch=True))


def test_the_instance_file_and_workspace_are_copied_into_dagster_home():
    text = MAIN.read_text()
    home = env_of(text)["DAGSTER_HOME"]
    copies = [exec_form(i.args) for i in parse(text) if i.keyword == "COPY" and "--from" not in i.args]
    targets = {src: dest for *sources, dest in copies for src in sources}
    assert targets.get("deploy/dagster.yaml") == f"{home}/dagster.yaml"
    workspace = targets.get("deploy/workspace.yaml")
    assert workspace, "deploy/workspace.yaml is not copied"
    # The entrypoint's webserver and daemon read the workspace where the image puts it.
    assert (DEPLOY / "entrypoint.sh").read_text().count(workspace) == 2


def test_the_ports_and_default_command():
    instructions = [i for i in parse(MAIN.read_text()) if i.stage == 1]
    exposed = {p for i in instructions if i.keyword == "EXPOSE" for p in i.args.split()}
    assert {"3000", "4000"} <= exposed
    entrypoint = exec_form(next(i.args for i in instructions if i.keyword == "ENTRYPOINT"))
    assert entrypoint == ["/opt/dagster/bin/entrypoint.sh"]
    assert exec_form(next(i.args for i in instructions if i.keyword == "CMD")) == ["code-server"]


def test_every_copied_file_is_in_the_build_context():
    """.dockerignore excludes everything but what the Dockerfiles copy (no .venv, no local state)."""
    rules = [line.strip() for line in (PROJECT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert rules[0] == "**"
    allowed = [r[1:] for r in rules if r.startswith("!")]
    for dockerfile in (MAIN, EMR):
        for i in parse(dockerfile.read_text()):
            if i.keyword == "COPY" and "--from" not in i.args:
                for src in exec_form(i.args)[:-1]:
                    assert any(src == a or src.startswith(a.rstrip("/") + "/") for a in allowed), f"{dockerfile.name}: {src} is ignored"
    assert not any(a in {".venv", ".jars", ".lakehouse", ".dagster_home"} for a in allowed)


def test_the_entrypoint_starts_each_process_and_passes_other_commands_through(tmp_path):
    """entrypoint.sh under sh with stand-ins for the dagster commands, which print their arguments."""
    for name in ("dagster", "dagster-webserver", "dagster-daemon"):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*"\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str) -> str:
        done = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), *args], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == run("code-server") == "dagster code-server start -h 0.0.0.0 -p 4000 -m lakehouse.definitions"
    assert run("webserver") == "dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/app/workspace.yaml"
    assert run("daemon") == "dagster-daemon run -w /opt/dagster/app/workspace.yaml"
    # The run launcher's command override.
    assert run("dagster", "api", "execute_run", "{}") == "dagster api execute_run {}"
