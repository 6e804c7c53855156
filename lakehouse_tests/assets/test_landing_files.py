"""Landing files as wholes: one that cannot be read is quarantined whole with its reason and
recorded (never retried), one outside the layout is reported and never read, one changed after its
ingestion is reported, a landing root that does not exist is an error naming the setting; every
other file proceeds (docs/landing-contract.md, "Files that cannot be read")."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
from pathlib import Path

import dagster as dg
import pytest

from lakehouse.assets import all_assets
from lakehouse.assets.bronze import LANDING_CHECK, order_records, read_landing
from lakehouse.assets.silver.orders import parse_order_events
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS_RAW
from lakehouse.environment import resources_for
from lakehouse.io.spark_frames import arrow_to_spark
from lakehouse.settings import Settings
from lakehouse.sources.landing import LandingError, LandingZone
from lakehouse_tests.reference import expected_state

DAY, NEXT_DAY = "2026-01-01", "2026-01-02"


def event(order_id: str, lsn: int = 1) -> str:
    return json.dumps({"lsn": lsn, "op": "c", "order_id": order_id, "customer_id": "c-1", "status": "paid", "amount": "10.00",
                       "currency": "EUR", "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:00:00Z"})


def lines(prefix: str, count: int) -> bytes:
    return "".join(event(f"{prefix}-{i}", i) + "\n" for i in range(count)).encode()


def land(landing: Path, relative: str, data: bytes) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_gzip(data: bytes) -> bytes:
    whole = gzip.compress(data)
    return whole[: len(whole) // 2]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "lh")


def bronze_assets():
    keys = {ORDERS_RAW.asset_key, CUSTOMERS_RAW.asset_key}
    return [a for a in all_assets() if keys.intersection(a.keys)]


def materialize_day(settings: Settings, instance, day: str = DAY):
    return dg.materialize(bronze_assets(), partition_key=day, resources=resources_for(settings), instance=instance)


def orders_outcome(result):
    materialization = next(e for e in result.get_asset_materialization_events() if e.asset_key == ORDERS_RAW.asset_key).materialization
    check = next(c for c in result.get_asset_check_evaluations() if c.asset_key == ORDERS_RAW.asset_key and c.check_name == LANDING_CHECK)
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}, check


def bronze_rows(settings: Settings):
    return resources_for(settings)["store"].get_store().read(ORDERS_RAW).to_pylist()


# 40 lines with random-looking ids compress poorly enough that half the gzip is well short of the end.
UNREADABLE = {
    f"orders/dt={DAY}/truncated.jsonl.gz": (truncated_gzip(lines("t" + os.urandom(4).hex(), 400)), "unreadable_file:compression"),
    f"orders/dt={DAY}/not-gzip.jsonl.gz": (lines("n", 3), "unreadable_file:compression"),
    f"orders/dt={DAY}/utf16.jsonl": (lines("u", 3).decode().encode("utf-16"), "unreadable_file:encoding"),
}


def test_an_unreadable_file_is_quarantined_whole_once_and_every_other_file_proceeds(settings):
    landing = Path(settings.landing_root)
    land(landing, f"orders/dt={DAY}/good.jsonl", lines("g", 5))
    land(landing, f"orders/dt={NEXT_DAY}/next.jsonl", lines("x", 2))
    for relative, (data, _) in UNREADABLE.items():
        land(landing, relative, data)
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize_day(settings, instance)
        metadata, check = orders_outcome(first)
        assert metadata["unreadable_files"] == 3 and set(metadata["unreadable"]) == set(UNREADABLE)
        assert "Truncated compressed stream" in metadata["unreadable"][f"orders/dt={DAY}/truncated.jsonl.gz"]
        assert metadata["new_files"] == 4 and metadata["new_records"] == 5 + 3
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN and "3 unreadable" in check.description
        assert materialize_day(settings, instance, NEXT_DAY).success

        rows = bronze_rows(settings)
        quarantined = {r["_source_file"]: (r["_parse_error"], r["_line_number"], r["_raw"]) for r in rows if r["_parse_error"]}
        assert quarantined == {path: (reason, 0, "") for path, (_, reason) in UNREADABLE.items()}
        good = sorted(r["_line_number"] for r in rows if r["_source_file"].endswith(("good.jsonl", "next.jsonl")))
        assert good == [1, 1, 2, 2, 3, 4, 5]

        # Recorded as ingested: the next run of the day reads nothing and finds nothing wrong.
        again, check = orders_outcome(materialize_day(settings, instance))
        assert again["outcome"] == "no new data" and again["unreadable_files"] == 0 and check.passed
    assert len(bronze_rows(settings)) == len(rows)


def test_the_quarantined_file_gets_its_reason_in_silver_as_the_reference_says(settings, spark):
    landing = Path(settings.landing_root)
    land(landing, f"orders/dt={DAY}/good.jsonl", lines("g", 3))
    for relative, (data, _) in UNREADABLE.items():
        land(landing, relative, data)
    zone = LandingZone(str(landing))
    batch = read_landing(ORDERS_RAW, zone, zone.files("orders"), order_records, batch_id="b")
    df = arrow_to_spark(spark, batch.data, ORDERS_RAW.spark_schema)
    reasons = {(r["_source_file"], r["_line_number"], r["reason"]) for r in parse_order_events(df).collect() if r["reason"]}
    assert reasons == expected_state(landing).order_rejects
    assert reasons == {(path, 0, reason) for path, (_, reason) in UNREADABLE.items()}


def test_a_file_that_fails_for_a_reason_that_may_pass_is_left_for_a_later_run(settings):
    landing = Path(settings.landing_root)
    land(landing, f"orders/dt={DAY}/a.jsonl", lines("a", 2))
    land(landing, f"orders/dt={DAY}/b.jsonl", lines("b", 2))
    zone = LandingZone(str(landing))

    def denied_for_b(zone, file):
        if file.relative_path.endswith("b.jsonl"):
            raise PermissionError(13, "Permission denied", file.path)
        return order_records(zone, file)

    batch = read_landing(ORDERS_RAW, zone, zone.files("orders"), denied_for_b, batch_id="b")
    assert set(batch.retry) == {f"orders/dt={DAY}/b.jsonl"} and "Permission denied" in batch.retry[f"orders/dt={DAY}/b.jsonl"]
    assert batch.sources == [f"orders/dt={DAY}/a.jsonl"]  # b is not recorded: a later run reads it
    assert batch.data.num_rows == 2 and not batch.unreadable


OUTSIDE = {
    "orders/dt=2026-13-45/a.jsonl": "not named dt=YYYY-MM-DD",
    "orders/2026-01-11/b.jsonl": "not named dt=YYYY-MM-DD",
    "orders/top.jsonl": "not in a dt=YYYY-MM-DD folder",
    f"orders/dt={DAY}/x.json": "suffix is not .jsonl or .jsonl.gz",
    f"orders/dt={DAY}/X.JSONL": "suffix is not",
    f"orders/dt={DAY}/y.jsonl.GZ": "suffix is not",
    f"orders/dt={DAY}/z.txt": "suffix is not",
    f"orders/dt={DAY}/z.tsv": "suffix is not",
    f"orders/dt={DAY}/deeper/c.jsonl": "sub-folder",
    f"customers/dt={DAY}/customers.CSV": "suffix is not .csv",
}


def test_files_outside_the_layout_are_reported_every_time_and_never_read(settings, capsys):
    from lakehouse.cli import report_run

    landing = Path(settings.landing_root)
    land(landing, f"orders/dt={DAY}/good.jsonl", lines("g", 2))
    for relative in OUTSIDE:
        land(landing, relative, lines("o", 1))
    for hidden in (f"orders/dt={DAY}/.part.tmp", f"orders/dt={DAY}/_SUCCESS", "orders/_tmp/a.jsonl"):
        land(landing, hidden, b"")
    zone = LandingZone(str(landing))
    assert zone.days("orders") == [dt.date(2026, 1, 1)]
    ignored = {i.relative_path: i.reason for i in zone.ignored("orders") + zone.ignored("customers")}
    assert set(ignored) == set(OUTSIDE)
    for path, words in OUTSIDE.items():
        assert words in ignored[path], (path, ignored[path])

    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):  # nothing of them is recorded: the second run says the same
            result = materialize_day(settings, instance)
            metadata, check = orders_outcome(result)
            in_day = {p for p in OUTSIDE if p.startswith(("orders/dt=2026-13", "orders/2026", "orders/top", f"orders/dt={DAY}"))}
            assert set(metadata["ignored"]) == in_day and metadata["ignored_files"] == len(in_day)
            assert not check.passed and f"{len(in_day)} ignored" in check.description
        capsys.readouterr()
        report_run(result, instance)
    err = capsys.readouterr().err
    assert f"    warning: orders/dt={DAY}/X.JSONL: ignored (suffix is not .jsonl or .jsonl.gz (names are case-sensitive))" in err
    assert "    warning: orders/dt=2026-13-45/a.jsonl: ignored (folder 'dt=2026-13-45' is not named dt=YYYY-MM-DD with a valid date)" in err
    assert {r["_source_file"] for r in bronze_rows(settings)} == {f"orders/dt={DAY}/good.jsonl"}


def test_a_file_changed_after_its_ingestion_is_reported(settings):
    landing = Path(settings.landing_root)
    path = land(landing, f"orders/dt={DAY}/a.jsonl", lines("a", 2))
    with dg.DagsterInstance.ephemeral() as instance:
        first, check = orders_outcome(materialize_day(settings, instance))
        assert first["changed_after_ingestion_files"] == 0 and check.passed
        size = path.stat().st_size
        with path.open("ab") as f:
            f.write(lines("late", 1))
        metadata, check = orders_outcome(materialize_day(settings, instance))
    assert metadata["outcome"] == "no new data" and metadata["changed_after_ingestion_files"] == 1
    assert metadata["changed_after_ingestion"] == {f"orders/dt={DAY}/a.jsonl": f"{size} bytes when ingested, {path.stat().st_size} now"}
    assert not check.passed and "1 changed after ingestion" in check.description
    assert len(bronze_rows(settings)) == 2  # the appended line is not read: landing files are immutable


def test_a_landing_root_that_does_not_exist_is_an_error_naming_the_setting(tmp_path):
    zone = LandingZone(str(tmp_path / "landnig"))
    for call in (lambda: zone.days("orders"), lambda: zone.files("orders"), lambda: zone.ignored("orders")):
        with pytest.raises(LandingError, match=re.escape(f"landing zone '{tmp_path / 'landnig'}' does not exist") + ".*LAKEHOUSE_LANDING"):
            call()
    (tmp_path / "landnig").mkdir()
    assert zone.days("orders") == [] and zone.files("orders") == [] and zone.ignored("orders") == []


def test_refresh_with_a_landing_setting_that_names_no_folder_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("LAKEHOUSE_ENV", "PYTHONWARNINGS")}
    env.update(LAKEHOUSE_HOME=str(tmp_path / "lh"), DAGSTER_HOME=str(tmp_path / "dh"), LAKEHOUSE_LANDING=str(tmp_path / "landnig"))
    proc = subprocess.run([sys.executable, "-m", "lakehouse.cli", "refresh"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        f"lakehouse: landing zone '{tmp_path / 'landnig'}' does not exist: create it, or point LAKEHOUSE_LANDING at the folder files land in"
    ]
