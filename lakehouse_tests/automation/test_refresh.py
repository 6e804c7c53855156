"""`lakehouse refresh` planning: what it starts before any run."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg

from lakehouse.automation import refresh as refresh_module
from lakehouse.resources.compute import LocalSparkCompute
from lakehouse.sources.sample import land_sample


def test_spark_is_warmed_up_only_when_files_landed(settings, monkeypatch):
    warmed, runs = [], []
    monkeypatch.setattr(LocalSparkCompute, "warm_up", lambda self: warmed.append(self))
    # The runs themselves are not the point here: record them and report failure, so refresh
    # stops after the ingest runs.
    monkeypatch.setattr(refresh_module.dg, "execute_job", lambda *a, **kw: runs.append(kw) or SimpleNamespace(success=False))

    refresh_module.refresh(settings, dg.DagsterInstance.ephemeral())
    assert runs and not warmed  # nothing landed: the no-op run needs no JVM

    land_sample(settings.home / "landing", days=1, orders_per_day=5)
    refresh_module.refresh(settings, dg.DagsterInstance.ephemeral())
    assert len(warmed) == 1
