"""The `lakehouse` command in aws mode: sample data lands in the S3 landing zone; tables name Glue."""

from __future__ import annotations

from lakehouse import cli


def test_land_sample_uploads_to_the_s3_landing_zone_once(aws_env, moto, capsys):
    assert cli.main(["land-sample", "--days", "2", "--orders-per-day", "20"]) == 0
    keys = moto.keys(aws_env.landing)
    assert any(k.startswith("orders/dt=2026-01-01/") and k.endswith(".jsonl") for k in keys)
    assert any(k.startswith("customers/dt=2026-01-02/") for k in keys)
    assert f"landed {len(keys)} new file(s) under {aws_env.landing}" in capsys.readouterr().out
    assert cli.main(["land-sample", "--days", "2", "--orders-per-day", "20"]) == 0  # immutable: nothing new
    assert "landed 0 new file(s)" in capsys.readouterr().out
    assert moto.keys(aws_env.landing) == keys


def test_tables_names_the_glue_table(aws_env, capsys):
    assert cli.main(["tables"]) == 0
    out = capsys.readouterr().out
    assert f"glue://{aws_env.database('silver')}/orders" in out and f"s3://{aws_env.bucket('silver')}/silver/orders" in out
