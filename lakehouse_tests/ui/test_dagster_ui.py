"""The Dagster UI over a refreshed lakehouse, in headless Chromium: the asset graph's layers and
lineage, what silver/orders shows of its writes and checks (a failed blocking check with its
sample among them), the plots of its numeric metadata, a run's steps, the daemons (whose landing
sensor's catch-up run is refused by the same check).

The webserver and the daemon run on 127.0.0.1 for at most the module's lifetime and are always
killed; every wait is bounded. Screenshots go to LAKEHOUSE_TEST_ARTIFACTS (default
.test-artifacts/ui). The browser is the system's Chromium (Debian's `chromium` package), driven by
Playwright: Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from lakehouse_tests.processes import Process, environment, explain, finish, prepare_dagster_home, run, start

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STEP_TIMEOUT = 420  # a refresh takes 40-90 s here (JVM start); a hang must not stall the suite
SERVER_TIMEOUT = 120  # until the webserver answers
DAEMON_TIMEOUT = 240  # until the daemon's first sensor run has ended
UI_TIMEOUT = 30_000  # ms, for any one thing to appear on a page
VIEWPORT = {"width": 1600, "height": 1100}
ORDERS = "/assets/silver/orders"

VALID = {"lsn": 1, "op": "c", "order_id": "o-1", "customer_id": "c-7-0001", "status": "placed", "amount": 10.5,
         "currency": "EUR", "created_at": "2026-01-03T10:00:00Z", "updated_at": "2026-01-03T10:00:00Z"}
BAD_FILE = "orders/dt=2026-01-03/bad-orders.jsonl"


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("no system Chromium: `apt-get install -y chromium` (Debian) for the UI tests")
    return found


def _artifacts() -> Path:
    folder = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS") or ROOT / ".test-artifacts" / "ui")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lakehouse(*args: str) -> list[str]:
    return [str(BIN / "lakehouse"), *args]


def _runs(stdout: str) -> dict[str, str]:
    """job -> run id, from a refresh's summary lines (``run <id> (<job>) succeeded|FAILED ...``)."""
    return {m[2]: m[1] for m in re.finditer(r"^run (\S+) \((\w+)\) ", stdout, re.MULTILINE)}


def _bad_batch() -> str:
    """A landing file whose records are mostly invalid (negative amounts): over a 5% reject-rate limit."""
    lines = [json.dumps({**VALID, "order_id": f"late-{i}", "lsn": 8_000_000 + i}) for i in range(4)]
    lines += [json.dumps({**VALID, "order_id": f"bad-{i}", "lsn": 8_000_100 + i, "amount": -1}) for i in range(6)]
    return "\n".join(lines) + "\n"


@dataclass
class Lakehouse:
    base: str  # the webserver's URL
    dagster_home: Path
    published: dict[str, str]  # job -> run id of the refresh that published
    refused: dict[str, str]  # job -> run id of the refresh a blocking check stopped


def _wait_for_server(web: Process, url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not web.alive():
            pytest.fail(f"dagster-webserver ended before answering:\n{explain(finish(web, 0))}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"dagster-webserver did not answer {url} within {SERVER_TIMEOUT} s:\n{explain(finish(web, 0))}")


def _wait_for_catch_up(daemon: Process, dagster_home: Path, deadline: float) -> None:
    """Until the landing sensor's run to bring Silver up to Bronze has ended, refused (the pages
    then hold still), and no run is queued or in progress."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        while time.monotonic() < deadline:
            if not daemon.alive():
                pytest.fail(f"dagster-daemon ended:\n{explain(finish(daemon, 0))}")
            runs = instance.get_runs(filters=RunsFilter(tags={"dagster/sensor_name": "landing_sensor"}))
            if runs and all(r.is_finished for r in instance.get_runs()):
                assert [r.status for r in runs] == [DagsterRunStatus.FAILURE], f"the catch-up run should be refused: {runs}"
                return
            time.sleep(2)
    pytest.fail(f"the landing sensor's catch-up run did not end within {DAEMON_TIMEOUT} s:\n{explain(finish(daemon, 0))}")


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    """A home refreshed twice: once published (the sample's few invalid records quarantined), then
    a batch over the reject-rate limit refused by the blocking check; the webserver and daemon on it."""
    _browser()
    pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) drives the browser")
    work = tmp_path_factory.mktemp("ui")
    home, dagster_home = work / "lakehouse", work / "dagster_home"
    prepare_dagster_home(dagster_home)  # one storage, created before two processes open it
    env = environment(home, dagster_home, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

    landed = run("land-sample", _lakehouse("land-sample", "--days", "2", "--orders-per-day", "30"), env, work, STEP_TIMEOUT)
    assert landed.returncode == 0, explain(landed)
    first = run("refresh", _lakehouse("refresh"), env, work, STEP_TIMEOUT)
    assert first.returncode == 0 and not first.timed_out, explain(first)
    assert "silver/orders: published (" in first.stdout, explain(first)

    bad = home / "landing" / BAD_FILE
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(_bad_batch())
    second = run("refresh over the limit", _lakehouse("refresh"), dict(env, LAKEHOUSE_REJECT_RATE_LIMIT="0.05"), work, STEP_TIMEOUT)
    assert second.returncode == 1 and not second.timed_out, explain(second)
    assert "silver/orders: refused: blocking check(s) reject_rate_limit failed" in second.stderr, explain(second)

    # The deployment keeps the 5% limit: the landing sensor's catch-up run (Silver is behind Bronze)
    # is refused as well, and leaves the tables as they are.
    served = dict(env, LAKEHOUSE_REJECT_RATE_LIMIT="0.05")
    port = _free_port()
    workspace = str(ROOT / "workspace.yaml")
    web = start("dagster-webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace], served, work)
    daemon = start("dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], served, work)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(web, f"{base}/server_info", time.monotonic() + SERVER_TIMEOUT)
        _wait_for_catch_up(daemon, dagster_home, time.monotonic() + DAEMON_TIMEOUT)
        yield Lakehouse(base, dagster_home, _runs(first.stdout), _runs(second.stdout))
    finally:
        for proc in (web, daemon):
            done = finish(proc, 0)  # kills its process group
            (_artifacts() / f"{proc.name}.log").write_text(done.stdout + done.stderr)


@pytest.fixture(scope="module")
def page(lakehouse):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_browser(), headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(UI_TIMEOUT)
            yield context.new_page()
        finally:
            browser.close()


def visit(page, lakehouse: Lakehouse, path: str, ready: str):
    """Open ``path`` and wait for ``ready`` (exact text) to show; the UI's first-visit newsletter
    dialog, which would cover the page, is dismissed."""
    page.goto(lakehouse.base + path)
    page.get_by_text(ready, exact=True).first.wait_for(state="visible")
    skip = page.get_by_role("button", name="Skip")
    if skip.is_visible():
        skip.click()
        skip.wait_for(state="hidden")
    return page


def shot(page, name: str) -> None:
    page.screenshot(path=str(_artifacts() / f"{name}.png"), full_page=True)


def visible(page, text: str | re.Pattern, exact: bool = True) -> None:
    page.get_by_text(text, exact=exact).first.wait_for(state="visible")


def metadata_value(page, key: str) -> str:
    """The value of ``key`` in the asset overview's table of its latest metadata."""
    row = page.locator("tr").filter(has=page.get_by_text(key, exact=True)).first
    row.wait_for(state="visible")
    return row.locator("td").last.inner_text().strip()


def latest_orders_metadata(lakehouse: Lakehouse) -> dict:
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(lakehouse.dagster_home)) as instance:
        event = instance.get_latest_materialization_event(AssetKey(["silver", "orders"]))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_the_asset_graph_shows_the_three_layers_and_their_lineage(page, lakehouse):
    visit(page, lakehouse, "/asset-groups", "Global asset lineage")
    for group in ("bronze", "silver", "gold"):
        visible(page, group)
    shot(page, "asset-graph")

    visit(page, lakehouse, f"{ORDERS}?view=lineage", "Upstream")
    for node in ("orders", "orders_raw", "daily_sales", "orders_rejects"):
        visible(page, node)
    shot(page, "silver-orders-lineage")

    # The overview names its neighbours: Bronze upstream, Gold downstream.
    visit(page, lakehouse, ORDERS, "Upstream assets")
    visible(page, "bronze / orders_raw")
    visible(page, "gold / daily_sales")


def test_silver_orders_shows_its_row_count_schema_snapshot_and_counts(page, lakehouse):
    latest = latest_orders_metadata(lakehouse)  # the refused write: main and its row count as they were
    assert latest["outcome"] == "refused"
    visit(page, lakehouse, ORDERS, "Row count")
    visible(page, "Row count")
    visible(page, f"{latest['dagster/row_count']:,}")
    # The column schema (dagster/column_schema), with the contract's descriptions.
    visible(page, "Columns")
    for column in ("order_id", "customer_id", "amount", "lsn", "_source_file"):
        visible(page, column)
    visible(page, "Log sequence number of the winning event")
    assert metadata_value(page, "snapshot_id") == str(latest["snapshot_id"])
    for key in ("rows_inserted", "rows_updated", "rows_deleted", "records_read", "records_rejected", "records_applied"):
        assert metadata_value(page, key) == f"{latest[key]:,}", key
    assert metadata_value(page, "records_read") == "10" and metadata_value(page, "records_rejected") == "6"
    assert metadata_value(page, "outcome") == "refused" and metadata_value(page, "published") == "false"
    shot(page, "silver-orders-overview")


def test_silver_orders_checks_show_their_results_and_the_failed_blocking_check_its_sample(page, lakehouse):
    visit(page, lakehouse, f"{ORDERS}?view=checks", "unique_order_id")
    statuses = {}
    for name in ("unique_order_id", "required_columns_not_null", "range_amount", "reject_rate_limit"):
        item = page.get_by_text(name, exact=True).first
        statuses[name] = item.evaluate("e => e.parentElement.parentElement.innerText").split("\n")[-1]
    assert statuses == {"unique_order_id": "Succeeded", "required_columns_not_null": "Succeeded", "range_amount": "Succeeded",
                        "reject_rate_limit": "Failed"}, statuses
    shot(page, "silver-orders-checks")

    visit(page, lakehouse, f"{ORDERS}?view=checks&checkDetail=reject_rate_limit", "This is a blocking asset check.")
    visible(page, "Failed")
    # its description names the rate, the limit, the setting and the files with the most rejects (the sample)
    sample = page.get_by_text(re.compile(r"6 of 10 records rejected \(60%\), over the limit of 5%")).first
    sample.wait_for(state="visible")
    text = sample.inner_text()
    assert "LAKEHOUSE_REJECT_RATE_LIMIT=0.05" in text and f"{BAD_FILE} (6)" in text, text
    visible(page, "limit_setting")
    shot(page, "silver-orders-reject-rate-limit")


def test_silver_orders_numeric_metadata_is_plotted(page, lakehouse):
    visit(page, lakehouse, ORDERS, "Row count")
    page.get_by_text("Plots", exact=True).first.click()
    for key in ("dagster/row_count", "rows_inserted", "rows_updated", "rows_deleted", "records_rejected", "records_read"):
        visible(page, key)
    shot(page, "silver-orders-plots")


def test_a_run_page_shows_its_steps(page, lakehouse):
    run_id = lakehouse.refused["ingest"]
    visit(page, lakehouse, f"/runs/{run_id}", "Errored (1)")
    visible(page, "Failure")
    page.get_by_text(re.compile(r"^Succeeded \(\d+\)$")).first.click()
    for step in ("silver__orders", "bronze__orders_raw", "bronze__customers_raw", "silver__customers"):
        visible(page, step)
    visible(page, re.compile(r"^Not executed \(\d+\)$"))
    shot(page, "run-refused-ingest")

    visit(page, lakehouse, f"/runs/{lakehouse.published['publish']}", "Success")
    visible(page, "Errored (0)")
    page.get_by_text(re.compile(r"^Succeeded \(\d+\)$")).first.click()
    for step in ("dbt_models", "gold__daily_sales", "gold__customer_summary"):
        visible(page, step)
    shot(page, "run-publish")


def test_the_daemons_are_running(page, lakehouse):
    visit(page, lakehouse, "/deployment/daemons", "Daemon statuses")
    for daemon in ("Sensors", "Scheduler", "Run queue"):
        row = page.locator("tr").filter(has=page.get_by_text(daemon, exact=True)).first
        row.get_by_text("Running", exact=True).wait_for(state="visible")
    shot(page, "daemons")
