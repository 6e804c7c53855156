"""terraform fmt and checkov over terraform/: formatted, and no failed check (every skip is
justified inline in its resource)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from lakehouse_tests.terraform import stack

CHECKOV_VENV = stack.PROJECT / ".tools" / "checkov" / "bin" / "checkov"
INSTALL = "python3 -m venv .tools/checkov && .tools/checkov/bin/pip install -q checkov==3.3.30"


def _checkov() -> str | None:
    return str(CHECKOV_VENV) if CHECKOV_VENV.exists() else shutil.which("checkov")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_terraform_is_formatted():
    result = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-no-color", str(stack.ROOT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"not formatted (run terraform fmt -recursive terraform/): {result.stdout}"


def test_checkov_finds_no_failed_check():
    checkov = _checkov()
    if checkov is None:
        pytest.skip(f"checkov is not installed: {INSTALL} (its own venv: it downgrades boto3 in .venv)")
    result = subprocess.run(
        [checkov, "-d", str(stack.ROOT), "--framework", "terraform", "--compact", "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=300,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for r in reports for c in r["results"].get("failed_checks", [])]
    assert failed == []
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0 and summary["resource_count"] > 0
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert len(skipped) == summary["skipped"]
    for c in skipped:
        assert (c["check_result"].get("suppress_comment") or "").strip(), f"{c['check_id']} {c['resource']}: skip without a reason"
