"""`lakehouse refresh`: what it starts before any run, the tags its runs carry, the settings they use."""

from __future__ import annotations

import os
from pathlib import Path
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
    assert runs == [] and not warmed  # nothing landed, Silver not behind: no run, no JVM

    land_sample(settings.home / "landing", days=1, orders_per_day=5)
    refresh_module.refresh(settings, dg.DagsterInstance.ephemeral())
    assert len(warmed) == 1


def test_runs_carry_this_process_and_dead_runs_are_reaped_first(settings, monkeypatch):
    from dagster._core.test_utils import create_run_for_test

    from lakehouse.automation.runs import HOST_TAG, PID_TAG, process_tags

    instance = dg.DagsterInstance.ephemeral()
    dead = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED, tags={**process_tags(), PID_TAG: "999999999"})
    runs, lines = [], []
    monkeypatch.setattr(refresh_module.dg, "execute_job", lambda *a, **kw: runs.append(kw) or SimpleNamespace(success=False))

    land_sample(settings.home / "landing", days=1, orders_per_day=5)
    refresh_module.refresh(settings, instance, log=lines.append)
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert len(lines) == 1 and dead.run_id in lines[0]
    assert runs and all(kw["tags"][PID_TAG] == str(os.getpid()) and kw["tags"][HOST_TAG] for kw in runs)


def test_jobs_run_with_the_settings_passed_in_not_the_environment(tmp_path, spark):
    from lakehouse.environment import resources_for
    from lakehouse.settings import Settings
    from lakehouse_tests.compare import assert_matches
    from lakehouse_tests.reference import expected_state

    from_env = Path(os.environ["LAKEHOUSE_HOME"])
    settings = Settings(home=tmp_path / "elsewhere")
    assert settings.home != from_env
    land_sample(settings.home / "landing", seed=2, days=2, orders_per_day=10)

    outcome = refresh_module.refresh(settings, dg.DagsterInstance.ephemeral(), trigger="test")
    assert outcome.success and [r.dagster_run.job_name for r in outcome.runs] == ["ingest", "publish"]
    assert_matches(resources_for(settings)["store"].get_store(), expected_state(settings.home / "landing"))
    assert not from_env.exists(), f"a run wrote under the environment's LAKEHOUSE_HOME: {sorted(from_env.rglob('*'))[:5]}"
