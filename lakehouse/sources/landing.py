"""The landing zone: where source files arrive, local folder or s3:// prefix, and how to read them.

Layout: ``<root>/<source>/dt=YYYY-MM-DD/<file>``; ``dt`` is the day the file arrived.
"""


import csv
import datetime as dt
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

    def lines(self, file: LandingFile) -> Iterator[tuple[int, str | bytes]]:
        """Non-blank lines of a file with their 1-based line numbers, streamed (gzip decoded).

        A line ends at LF only; a CR right before the LF (CRLF) is not part of the line, and no other
        character (a lone CR, U+2028, U+0085, ...) ends one. A UTF-8 byte order mark starting the file
        is not part of its first line. A line is given as text when it is valid UTF-8 and as its
        bytes, untouched, when it is not (docs/landing-contract.md: ``not_utf8``).
        """
        # compression="detect" decodes .gz by its suffix; the buffered stream reads the file in
        # STREAM_BUFFER_BYTES pieces, so a large file never sits in memory whole. Lines are split as
        # bytes (a UTF-8 sequence never holds the LF byte) so each is decoded, or not, on its own.
        with self._errors(), self.fs.open_input_stream(file.path, compression="detect", buffer_size=STREAM_BUFFER_BYTES) as stream:
            number, pending = 0, []  # pending: the pieces of a line not ended yet
            while chunk := stream.read(STREAM_BUFFER_BYTES):
                parts = chunk.split(b"\n")
                if len(parts) == 1:
                    pending.append(chunk)
                    continue
                pending.append(parts[0])
                ended = [b"".join(pending), *parts[1:-1]]
                pending = [parts[-1]]
                for raw in ended:
                    number += 1
                    line = _line(raw, first=number == 1)
                    if line is not None:
                        yield number, line
            rest = b"".join(pending)
            if rest:
                number += 1
                line = _line(rest, first=number == 1)
                if line is not None:
                    yield number, line


_BOM = b"\xef\xbb\xbf"


def _line(raw: bytes, first: bool) -> str | bytes | None:
    """One physical line without its LF: the text of a non-blank line, its bytes if it is not UTF-8,
    or None for a blank line."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if first and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return text if text.strip() else None


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
