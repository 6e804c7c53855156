"""validate, list, run, logs and new table as processes on temp homes: one success and one failure
each, --json that parses, --help with examples. `new table` scaffolds into a copy of the package
(never into this checkout), where validate must accept the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lakehouse_tests.test_cli_output import cli, environment, explain, run

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-01-01"


@pytest.fixture
def env(tmp_path):
    return environment(tmp_path / "lh", tmp_path / "dh")


def test_every_new_command_has_examples_in_its_help(tmp_path):
    for command in (("validate",), ("list",), ("run",), ("logs",), ("new", "table")):
        proc = run(cli(*command, "--help"), environment(tmp_path / "lh", tmp_path / "dh"), tmp_path)
        assert proc.returncode == 0 and "examples:" in proc.stdout, explain(proc)


def test_validate_accepts_the_code_location(tmp_path, env):
    proc = run(cli("validate", "--json"), env, tmp_path)
    assert proc.returncode == 0, explain(proc)
    found = json.loads(proc.stdout)
    assert found["ok"] and found["problems"] == [] and found["checked"]["assets"] > 0


def test_validate_reports_wrong_settings_as_one_line_and_exit_1(tmp_path, env):
    proc = run(cli("validate"), {**env, "LAKEHOUSE_ENV": "aws"}, tmp_path)
    assert proc.returncode == 1, explain(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakehouse: settings:") and "LAKEHOUSE_AWS_REGION" in lines[0], explain(proc)


def test_list_is_in_execution_order(tmp_path, env):
    proc = run(cli("list", "--json"), env, tmp_path)
    assert proc.returncode == 0, explain(proc)
    found = json.loads(proc.stdout)
    order = [a["asset"] for a in found["assets"]]
    for asset in found["assets"]:
        assert all(order.index(up) < order.index(asset["asset"]) for up in asset["upstream"]), asset
    assert {"ingest", "publish"} <= {j["job"] for j in found["jobs"]}
    assert all(s["cron"] for s in found["schedules"]) and found["sensors"]
    text = run(cli("list"), env, tmp_path)
    assert text.returncode == 0 and "silver/orders" in text.stdout and "schedules:" in text.stdout, explain(text)


def test_list_with_wrong_settings_is_one_line_and_exit_2(tmp_path, env):
    proc = run(cli("list"), {**env, "LAKEHOUSE_ENV": "aws"}, tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, explain(proc)


def test_run_bronze_then_logs(tmp_path, env):
    assert run(cli("land-sample", "--days", "1", "--orders-per-day", "5"), env, tmp_path).returncode == 0
    proc = run(cli("run", "bronze/orders_raw", "--partition", DAY, "--json"), env, tmp_path)
    assert proc.returncode == 0, explain(proc)
    result = json.loads(proc.stdout)
    assert result["success"] and result["assets"] == ["bronze/orders_raw"] and result["tags"] == {"dagster/partition": DAY}
    assert [m["asset"] for m in result["materializations"]] == ["bronze/orders_raw"]

    logs = run(cli("logs", "--json"), env, tmp_path)  # the latest run: this one
    assert logs.returncode == 0, explain(logs)
    found = json.loads(logs.stdout)
    assert found["run_id"] == result["run_id"] and found["status"] == "SUCCESS"
    kinds = [e["event"] for e in found["events"]]
    assert "STEP_START" in kinds and "STEP_SUCCESS" in kinds and "ASSET_MATERIALIZATION" in kinds
    assert any(e.get("compute_logs") for e in found["events"])
    text = run(cli("logs", result["run_id"][:8]), env, tmp_path)
    assert text.returncode == 0 and "ASSET_MATERIALIZATION" in text.stdout, explain(text)


def test_run_an_unknown_asset_names_close_matches(tmp_path, env):
    proc = run(cli("run", "bronze/order_raw"), env, tmp_path)
    assert proc.returncode == 2 and "bronze/orders_raw" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, explain(proc)


def test_run_a_partition_before_the_range_says_the_setting(tmp_path, env):
    proc = run(cli("run", "bronze/orders_raw", "--partition", "1990-01-01"), {**env, "LAKEHOUSE_PARTITIONS_START": DAY}, tmp_path)
    assert proc.returncode == 2 and "LAKEHOUSE_PARTITIONS_START" in proc.stderr, explain(proc)


def test_logs_of_an_unknown_run_is_one_line(tmp_path, env):
    proc = run(cli("logs", "no-such-run"), env, tmp_path)
    assert proc.returncode == 2 and "no-such-run" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, explain(proc)


@pytest.mark.slow
def test_run_silver_with_its_upstream(tmp_path, env):
    # The quarantine with its table: record accounting (read = merged + rejected) needs both.
    assert run(cli("land-sample", "--days", "1", "--orders-per-day", "5"), env, tmp_path).returncode == 0
    proc = run(cli("run", "silver/orders_rejects", "--upstream", "--partition", DAY, "--json"), env, tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    result = json.loads(proc.stdout)
    assert result["success"] and {"bronze/orders_raw", "silver/orders", "silver/orders_rejects"} <= set(result["assets"])


# ---- new table, in a copy of the package ------------------------------------------------------


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The package, its terraform export and an empty test folder, copied: what `new table` writes
    goes there, and PYTHONPATH makes the copy the one imported."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "lakehouse", copy / "lakehouse", ignore=shutil.ignore_patterns("__pycache__", "target", "dbt_packages", "logs"))
    (copy / "terraform").mkdir()
    shutil.copy(ROOT / "terraform" / "lakehouse.auto.tfvars.json", copy / "terraform")
    (copy / "lakehouse_tests").mkdir()
    return copy


def test_new_table_is_accepted_by_validate(tmp_path, env, checkout):
    env = {**env, "PYTHONPATH": str(checkout)}
    proc = run(cli("new", "table", "gold/order_counts", "--json"), env, checkout)
    assert proc.returncode == 0, explain(proc)
    written = json.loads(proc.stdout)["written"]
    assert Path(written["module"]) == checkout / "lakehouse" / "user_tables" / "order_counts.py"
    assert Path(written["test"]).is_file() and str(checkout) in written["terraform"]
    assert not (ROOT / "lakehouse" / "user_tables" / "order_counts.py").exists()

    check = run(cli("validate"), env, checkout)
    assert check.returncode == 0, explain(check)
    listed = json.loads(run(cli("list", "--json"), env, checkout).stdout)
    assert "gold/order_counts" in [a["asset"] for a in listed["assets"]]

    again = run(cli("new", "table", "gold/order_counts"), env, checkout)
    assert again.returncode == 2 and "exists" in again.stderr, explain(again)


def test_new_table_refuses_bronze_and_a_broken_module_fails_validate(tmp_path, env, checkout):
    env = {**env, "PYTHONPATH": str(checkout)}
    proc = run(cli("new", "table", "bronze/things"), env, checkout)
    assert proc.returncode == 2 and "landing sources" in proc.stderr, explain(proc)
    (checkout / "lakehouse" / "user_tables" / "broken.py").write_text("this is not python\n")
    check = run(cli("validate", "--json"), env, checkout)
    assert check.returncode == 1, explain(check)
    problems = json.loads(check.stdout)["problems"]
    assert [p["check"] for p in problems] == ["import"] and "lakehouse.user_tables.broken" in problems[0]["message"]
