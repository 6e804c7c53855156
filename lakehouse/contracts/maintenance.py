"""Maintenance policy: how much history a table keeps and when its files are compacted.

Declared with each table contract (``TableContract.maintenance``) or taken from its layer's default
(``DEFAULT_POLICIES``); ``MaintenancePolicy(enabled=False)`` opts a table out. What the policy drives
is in ``lakehouse/io/table_maintenance.py``; the schedule and the CLI run it for every table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Iceberg's own default for remove_orphan_files: a file younger than this may belong to a write in
# flight (written, not yet committed), so it is never an orphan.
MIN_ORPHAN_AGE_DAYS = 3


class MaintenancePolicy(BaseModel):
    """One table's maintenance. Snapshots are kept while either rule keeps them (the newest
    ``keep_snapshots`` of main's history, or any younger than ``keep_snapshot_days``); branch and tag
    heads (write-audit-publish branches included) are never expired, nor is history a Gold table or
    a dbt model still has to read to know what changed."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    keep_snapshots: int = Field(default=20, ge=1)
    keep_snapshot_days: float = Field(default=7.0, ge=0)
    # Compaction: files smaller than small_file_bytes (on disk) are rewritten, together, into files
    # of target_file_bytes (Arrow in memory, as every write of the store cuts them), once a partition
    # holds at least min_small_files of them.
    target_file_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    small_file_bytes: int = Field(default=1024 * 1024, ge=1)
    min_small_files: int = Field(default=5, ge=2)
    # Manifests are rewritten into as few as their target size allows once there are this many.
    max_manifests: int = Field(default=16, ge=2)
    orphan_file_days: float = MIN_ORPHAN_AGE_DAYS

    @model_validator(mode="after")
    def _safe(self) -> MaintenancePolicy:
        if self.orphan_file_days < MIN_ORPHAN_AGE_DAYS:
            raise ValueError(
                f"maintenance policy: orphan_file_days={self.orphan_file_days} would delete files a write in flight may "
                f"still commit; use at least {MIN_ORPHAN_AGE_DAYS} (Iceberg's own default)"
            )
        return self


# Bronze holds one Parquet file per landing file, the unit its watermark and replay work in: it is
# never compacted or expired (its files are the record of what landed), so maintenance leaves it.
# Keyed by layer name (contracts/model.py's Layer values), so this module needs nothing above it.
DEFAULT_POLICIES: dict[str, MaintenancePolicy] = {
    "bronze": MaintenancePolicy(enabled=False),
    "silver": MaintenancePolicy(),
    "gold": MaintenancePolicy(),
}
