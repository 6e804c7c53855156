"""`lakehouse infra export`: the committed terraform/lakehouse.auto.tfvars.json is what the code exports."""

from __future__ import annotations

import json

from lakehouse import infra
from lakehouse.cli import main
from lakehouse.contracts.transformations import all_registered
from lakehouse.settings import Settings
from lakehouse_tests.terraform import stack


def test_committed_export_is_current(tmp_path):
    fresh = tmp_path / "lakehouse.auto.tfvars.json"
    assert main(["infra", "export", "--output", str(fresh)]) == 0
    assert fresh.read_text() == infra.EXPORT_PATH.read_text(), "stale: run `lakehouse infra export` and commit terraform/lakehouse.auto.tfvars.json"


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    path = tmp_path / "export.json"
    assert main(["infra", "export", "--check", "--output", str(path)]) == 1  # missing
    assert main(["infra", "export", "--output", str(path)]) == 0
    assert main(["infra", "export", "--check", "--output", str(path)]) == 0
    data = json.loads(path.read_text())
    data["lakehouse"]["transformations"].pop(next(iter(data["lakehouse"]["transformations"])))
    path.write_text(json.dumps(data))
    assert main(["infra", "export", "--check", "--output", str(path)]) == 1
    assert "stale" in capsys.readouterr().err


def test_export_names_follow_the_settings_defaults(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_BRONZE_BUCKET", "someone-elses-bucket")  # must not leak into the file
    exported = infra.export()["lakehouse"]
    monkeypatch.delenv("LAKEHOUSE_BRONZE_BUCKET")
    settings = Settings(environment_name="qa-2")
    for layer in exported["layers"]:
        bucket = exported["bucket_name"].replace("{layer}", layer).replace("{environment}", "qa-2")
        database = exported["database_name"].replace("{layer}", layer).replace("{environment_underscored}", "qa_2")
        assert bucket == settings.bucket(layer)
        assert database == settings.glue_database(layer)
    assert exported["glue_job_name"].replace("{environment}", "qa-2") == settings.job_name
    assert set(exported["bucket_layers"]) == {*exported["layers"], "artifacts"}


def test_export_lists_every_transformation_with_engine_and_profile():
    exported = infra.export()["lakehouse"]["transformations"]
    assert set(exported) == {t.key for t in all_registered()} and exported
    for t in all_registered():
        assert exported[t.key] == {"layer": t.target.layer.value, "engine": t.engine, "profile": t.profile}


def test_the_stack_reads_the_export_as_its_lakehouse_variable():
    assert "lakehouse" in stack.load().variables
    root = stack.load().text
    for use in ("var.lakehouse.bucket_name", "var.lakehouse.database_name", "var.lakehouse.glue_job_name", "var.lakehouse.transformations", "var.lakehouse.profiles"):
        assert use in root, use
