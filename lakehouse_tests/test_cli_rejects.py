"""`lakehouse rejects` masks the personal data in quarantined records' raw text unless --unmask;
the quarantine table itself keeps the text as landed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from lakehouse.cli import shown_raw
from lakehouse.contracts.tables import CUSTOMERS_RAW, CUSTOMERS_REJECTS, ORDERS_RAW, ORDERS_REJECTS
from lakehouse.environment import resources_for
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import Settings
from lakehouse_tests.test_cli_output import cli, environment, explain, run

SPLIT = "c-1,Jane Doe,jane@example,DE,2026-01-01T00:00:00Z"  # invalid e-mail: the row splits
UNSPLIT = 'c-2,"Joe Bloggs,joe@example.com,NL'  # an unclosed quote: it does not
ORDER = '{"order_id": "o-1", "customer_id": "c-1", "amount": -1}'
CLEAR = ("Jane", "jane@example", "Joe", "Bloggs", "joe@example.com")


def _quarantine(home: Path) -> None:
    store = resources_for(Settings(home=home))["store"].get_store()
    now = dt.datetime.now(dt.UTC)
    for contract, records in ((CUSTOMERS_REJECTS, [(SPLIT, "invalid_email"), (UNSPLIT, "malformed_csv")]),
                              (ORDERS_REJECTS, [(ORDER, "negative_amount")])):
        rows = [
            {"record_id": f"f:{n}", "reason": reason, "_raw": raw, "_line_number": n, "_source_file": "f", "_ingested_at": now, "_batch_id": "t"}
            for n, (raw, reason) in enumerate(records, start=1)
        ]
        store.write(contract, pa.Table.from_pylist(rows, schema=contract.arrow_schema), CommitStamp("t", contract.asset_key.to_user_string()))


def test_rejects_masks_the_pii_fields_of_customer_records_unless_unmasked(tmp_path):
    home = tmp_path / "lh"
    _quarantine(home)
    env = environment(home, tmp_path / "dh")
    masked = run(cli("rejects"), env, tmp_path)
    assert masked.returncode == 0, explain(masked)
    lines = {line.split()[0]: line for line in masked.stdout.splitlines() if line.startswith("  ")}
    assert lines["invalid_email"].endswith("latest f:1: c-1,J*** D***,j***@example,DE,2026-01-01T00:00:00Z"), lines
    assert lines["malformed_csv"].endswith("latest f:2: c*** j***@example.com"), lines
    assert lines["negative_amount"].endswith(f"latest f:1: {ORDER[:60]}"), lines  # orders hold no pii: as landed
    for value in CLEAR:
        assert value not in masked.stdout + masked.stderr, (value, masked.stdout)

    unmasked = run(cli("rejects", "--unmask"), env, tmp_path)
    assert unmasked.returncode == 0, explain(unmasked)
    assert f"latest f:1: {SPLIT}" in unmasked.stdout and f"latest f:2: {UNSPLIT}" in unmasked.stdout, unmasked.stdout
    kept = resources_for(Settings(home=home))["store"].get_store().read(CUSTOMERS_REJECTS)
    assert sorted(kept["_raw"].to_pylist()) == sorted([SPLIT, UNSPLIT])  # the table keeps the raw text for repair


def test_a_record_of_a_source_without_pii_is_shown_as_landed():
    assert shown_raw(ORDERS_RAW, ORDER) == ORDER
    assert shown_raw(CUSTOMERS_RAW, "c-9,,,,") == "c-9,,,,"  # nothing in the tagged fields to hide
    assert "Jane" not in shown_raw(CUSTOMERS_RAW, "Jane Doe") and shown_raw(CUSTOMERS_RAW, "Jane Doe", unmask=True) == "Jane Doe"


def test_rejects_documents_unmask(tmp_path):
    proc = run(cli("rejects", "--help"), environment(tmp_path / "lh", tmp_path / "dh"), tmp_path)
    assert proc.returncode == 0 and "--unmask" in proc.stdout and "pii" in proc.stdout, explain(proc)
