"""The landing zone on S3: the same contract as the local folder, files streamed, sensor requests."""

from __future__ import annotations

import gzip
import json
import os

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.automation.planning import INGEST_JOB
from lakehouse.automation.sensors import landing_sensor
from lakehouse.environment import resources_for
from lakehouse.settings import load_settings
from lakehouse.sources.landing import STREAM_BUFFER_BYTES, LandingZone, UnreadableFileError
from lakehouse.sources.sample import land_sample


@pytest.fixture
def landed(aws_env, moto, tmp_path):
    """Sample files landed locally and uploaded to the environment's S3 landing prefix."""
    local = tmp_path / "landing"
    files = land_sample(local, seed=5, days=2, orders_per_day=10)
    moto.upload(local, files, aws_env.landing)
    return local, resources_for(load_settings())["landing"].zone()


def test_s3_landing_lists_the_same_files_and_lines_as_the_local_folder(landed):
    local_dir, s3 = landed
    local = LandingZone(str(local_dir))
    assert s3.root.startswith("s3://")
    for source in ("orders", "customers"):
        assert s3.days(source) == local.days(source)
        s3_files, local_files = s3.files(source), local.files(source)
        assert [f.relative_path for f in s3_files] == [f.relative_path for f in local_files]
        assert any(f.relative_path.endswith(".gz") for f in s3_files) or source == "customers"
        for a, b in zip(s3_files, local_files):
            assert list(s3.lines(a)) == list(local.lines(b))  # gzip decoded, blank lines skipped, same numbers


def test_s3_landing_enforces_the_folder_contract(aws_env, moto):
    """On S3 as on disk: a misplaced file is reported and never read; a truncated gzip is unreadable."""
    bucket, _, prefix = aws_env.landing[len("s3://") :].partition("/")
    s3 = moto.client("s3")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/orders/2026-01-01/a.jsonl", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/orders/dt=2026-01-01/b.JSONL", Body=b"{}\n")
    whole = gzip.compress(os.urandom(200_000))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/orders/dt=2026-01-01/c.jsonl.gz", Body=whole[: len(whole) // 2])
    zone = resources_for(load_settings())["landing"].zone()
    assert [f.relative_path for f in zone.files("orders")] == ["orders/dt=2026-01-01/c.jsonl.gz"]
    ignored = {i.relative_path: i.reason for i in zone.ignored("orders")}
    assert set(ignored) == {"orders/2026-01-01/a.jsonl", "orders/dt=2026-01-01/b.JSONL"}
    assert "not named dt=YYYY-MM-DD" in ignored["orders/2026-01-01/a.jsonl"]
    with pytest.raises(UnreadableFileError, match="not readable as gzip") as caught:
        list(zone.lines(zone.files("orders")[0]))
    assert caught.value.reason == "unreadable_file:compression"


def test_a_large_landing_file_is_streamed_not_read_whole(aws_env, moto):
    """A 24 MB file and a gzipped file of 48 MB of text are read in pieces of STREAM_BUFFER_BYTES: Arrow's memory
    in use stays within two buffers, far below either file's size."""
    line = json.dumps({"lsn": 1, "op": "c", "order_id": "o", "pad": "x" * 200}) + "\n"
    count = 48 * 1024 * 1024 // len(line)
    body = gzip.compress((line * count).encode(), compresslevel=1)
    raw = (line * (count // 2)).encode()  # and an uncompressed one, ~24 MB
    bucket, _, prefix = aws_env.landing[len("s3://") :].partition("/")
    s3 = moto.client("s3")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/orders/dt=2026-01-01/big.jsonl.gz", Body=body)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/orders/dt=2026-01-01/big.jsonl", Body=raw)
    zone = resources_for(load_settings())["landing"].zone()
    for file, expected in zip(zone.files("orders"), (count // 2, count)):
        baseline, peak, seen = pa.total_allocated_bytes(), 0, 0
        for number, text in zone.lines(file):  # noqa: B007 (the last line is checked after the loop)
            seen += 1
            if number % 2000 == 0:
                peak = max(peak, pa.total_allocated_bytes() - baseline)
        assert seen == expected and text == line.rstrip("\n")
        assert peak <= 2 * STREAM_BUFFER_BYTES, (file.relative_path, peak)
    assert len(raw) > 5 * STREAM_BUFFER_BYTES  # a whole file (or whole decompressed text) would not fit that bound


def test_the_landing_sensor_requests_runs_for_s3_files(landed):
    resources = resources_for(load_settings())
    context = dg.build_sensor_context(
        resources={"landing": resources["landing"], "store": resources["store"], "partitions": resources["partitions"]},
        instance=dg.DagsterInstance.ephemeral(),
    )
    result = landing_sensor(context)
    assert [r.job_name for r in result.run_requests] == [INGEST_JOB]
    (request,) = result.run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == ("2026-01-01", "2026-01-02")
    local_dir, _ = landed
    assert set(json.loads(result.cursor)["requested"]) == {p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file()}
