"""The landing zone: where source files arrive, local folder or s3:// prefix, and how to read them.

Layout: ``<root>/<source>/dt=YYYY-MM-DD/<file>``; ``dt`` is the day the file arrived.
"""


import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs
from dagster import ConfigurableResource

from lakehouse.io.aws import AwsConfig, landing_requirements, s3_errors, verify

_DT_FOLDER = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")

SOURCE_SUFFIXES = {"orders": (".jsonl", ".jsonl.gz"), "customers": (".csv",)}
CUSTOMER_HEADER = ["customer_id", "name", "email", "country", "updated_at"]


class LandingError(ValueError):
    """The landing zone holds something that breaks its contract."""


@dataclass(frozen=True, order=True)
class LandingFile:
    relative_path: str  # e.g. "orders/dt=2026-01-01/orders-0001.jsonl": the file's identity
    dt: dt.date
    path: str  # filesystem path to open


# Read size for landing files: each read from S3 is one ranged GET, so reads are large, while a
# file of any size holds only this much in memory at a time.
STREAM_BUFFER_BYTES = 4 * 1024 * 1024


class LandingZone:
    """Lists and streams landing files through a pyarrow filesystem (local or S3)."""

    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None, aws: AwsConfig | None = None):
        self.root = root.rstrip("/")
        if filesystem is None and aws is not None and self.root.startswith("s3://"):
            filesystem = aws.s3_filesystem()
        if filesystem is None:
            filesystem, path = pafs.FileSystem.from_uri(self.root) if "://" in self.root else (pafs.LocalFileSystem(), self.root)
        else:
            path = self.root.split("://", 1)[-1]
        self.fs = filesystem
        self.base = path.rstrip("/")
        self.aws = aws

    def _errors(self):
        """S3 errors on the landing bucket (missing, access denied, ...) as messages that say what to do."""
        return s3_errors(self.root, "the landing zone", "LAKEHOUSE_LANDING", self.aws)

    def days(self, source: str) -> list[dt.date]:
        """Landing days that have a folder for ``source``."""
        with self._errors():
            return self._days(source)

    def _days(self, source: str) -> list[dt.date]:
        folder = f"{self.base}/{source}"
        if self.fs.get_file_info(folder).type != pafs.FileType.Directory:
            return []
        found = []
        for day_dir in self.fs.get_file_info(pafs.FileSelector(folder)):
            if day_dir.type != pafs.FileType.Directory:
                continue
            m = _DT_FOLDER.match(day_dir.base_name)
            if not m:
                raise LandingError(f"landing folder {day_dir.path!r} is not named dt=YYYY-MM-DD")
            try:
                found.append(dt.date.fromisoformat(m[1]))
            except ValueError as exc:
                raise LandingError(f"landing folder {day_dir.path!r} names an invalid day: {exc}") from exc
        return sorted(found)

    def files(self, source: str, days: set[dt.date] | None = None) -> list[LandingFile]:
        """Landing files of ``source`` (optionally only of some days), oldest day first."""
        suffixes = SOURCE_SUFFIXES[source]
        found = []
        with self._errors():
            for day in sorted(days) if days is not None else self._days(source):
                folder = f"{self.base}/{source}/dt={day.isoformat()}"
                for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
                    if info.type == pafs.FileType.File and info.base_name.endswith(suffixes) and not info.base_name.startswith((".", "_")):
                        found.append(LandingFile(f"{source}/dt={day.isoformat()}/{info.base_name}", day, info.path))
        return sorted(found, key=lambda f: (f.dt, f.relative_path))

    def lines(self, file: LandingFile) -> Iterator[tuple[int, str]]:
        """Non-blank lines of a file with their 1-based line numbers, streamed (gzip decoded)."""
        # compression="detect" decodes .gz by its suffix; the buffered stream reads the file in
        # STREAM_BUFFER_BYTES pieces, so a large file never sits in memory whole.
        with self._errors(), self.fs.open_input_stream(file.path, compression="detect", buffer_size=STREAM_BUFFER_BYTES) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
            for number, line in enumerate(text, start=1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield number, line


def split_customer_row(line: str) -> tuple[list[str | None] | None, str | None]:
    """Split one CSV line into the five customer fields (empty -> None), or give the reason it can't be."""
    try:
        fields = next(csv.reader([line], strict=True), [])
    except csv.Error:
        return None, "malformed_csv"
    if len(fields) != len(CUSTOMER_HEADER):
        return None, "malformed_csv"
    return [f if f != "" else None for f in fields], None


class LandingZoneResource(ConfigurableResource):
    """Where files land: a local folder or an ``s3://bucket/prefix``.

    For S3, ``region`` and ``endpoint_url`` (optional) say where the bucket is reached, and the
    bucket is checked once per process before first use; credentials come from the standard chain.
    """

    root: str
    region: str | None = None
    endpoint_url: str | None = None

    def zone(self) -> LandingZone:
        if not self.root.startswith("s3://") or (self.region is None and self.endpoint_url is None):
            return LandingZone(self.root)
        config = AwsConfig(self.region, s3_endpoint=self.endpoint_url)
        verify(config, landing_requirements(self.root))
        return LandingZone(self.root, aws=config)
