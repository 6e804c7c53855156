"""The landing zone: where source files arrive, local folder or s3:// prefix, and how to read them.

Layout: ``<root>/<source>/dt=YYYY-MM-DD/<file>``; ``dt`` is the day the file arrived.
"""


import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow.fs as pafs
from dagster import ConfigurableResource

from lakehouse.io.aws import AwsConfig, landing_requirements, s3_errors, verify

_DT_FOLDER = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")

SOURCE_SUFFIXES = {"orders": (".jsonl", ".jsonl.gz"), "customers": (".csv",)}
CUSTOMER_HEADER = ["customer_id", "name", "email", "country", "updated_at"]


class LandingError(ValueError):
    """The landing zone holds something that breaks its contract."""


class UnreadableFileError(OSError):
    """A landing file whose bytes cannot be read as its kind promises (corrupt or truncated gzip, a
    UTF-16/UTF-32 text): it is quarantined whole, as ``reason``; retrying cannot help."""

    def __init__(self, path: str, reason: str, detail: str):
        super().__init__(f"{path}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, order=True)
class LandingFile:
    relative_path: str  # e.g. "orders/dt=2026-01-01/orders-0001.jsonl": the file's identity
    dt: dt.date
    path: str  # filesystem path to open
    size: int | None = field(default=None, compare=False)  # bytes as listed (compressed for .gz)


@dataclass(frozen=True)
class IgnoredFile:
    """Something in a source's folder that is not a landing file by the contract: never read,
    reported on every listing until it is moved or renamed."""

    relative_path: str
    reason: str


# Read size for landing files: each read from S3 is one ranged GET, so reads are large, while a
# file of any size holds only this much in memory at a time.
STREAM_BUFFER_BYTES = 4 * 1024 * 1024


class LandingZone:
    """Lists and streams landing files through a pyarrow filesystem (local or S3)."""

    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None, aws: AwsConfig | None = None, must_exist: bool = True):
        """``must_exist``: a local root that does not exist is an error (else an empty zone)."""
        self.root = root.rstrip("/")
        self.must_exist = must_exist
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

    def check_root(self) -> None:
        """A local landing root that does not exist is a wrong setting, not an empty zone (an S3
        prefix has no existence of its own: its bucket is checked instead, see ``verify``)."""
        if self.must_exist and isinstance(self.fs, pafs.LocalFileSystem) and self.fs.get_file_info(self.base).type != pafs.FileType.Directory:
            raise LandingError(
                f"landing zone {self.root!r} does not exist: create it, or point LAKEHOUSE_LANDING at the folder files land in"
            )

    def days(self, source: str) -> list[dt.date]:
        """Landing days that have a folder for ``source`` (misnamed folders: see ``ignored``)."""
        with self._errors():
            self.check_root()
            return [day for day, _ in self._day_folders(source)[0]]

    def _day_folders(self, source: str) -> tuple[list[tuple[dt.date, str]], list[pafs.FileInfo]]:
        """(day, folder path) of each ``dt=YYYY-MM-DD`` folder of ``source``, and the other entries."""
        folder = f"{self.base}/{source}"
        if self.fs.get_file_info(folder).type != pafs.FileType.Directory:
            return [], []
        days, others = [], []
        for entry in self.fs.get_file_info(pafs.FileSelector(folder)):
            day = _folder_day(entry.base_name) if entry.type == pafs.FileType.Directory else None
            if day is not None:
                days.append((day, entry.path))
            elif not entry.base_name.startswith((".", "_")):
                others.append(entry)
        return sorted(days), others

    def files(self, source: str, days: set[dt.date] | None = None) -> list[LandingFile]:
        """Landing files of ``source`` (optionally only of some days), oldest day first."""
        suffixes = SOURCE_SUFFIXES[source]
        found = []
        with self._errors():
            self.check_root()
            for day in sorted(days) if days is not None else [d for d, _ in self._day_folders(source)[0]]:
                folder = f"{self.base}/{source}/dt={day.isoformat()}"
                for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
                    if info.type == pafs.FileType.File and info.base_name.endswith(suffixes) and not info.base_name.startswith((".", "_")):
                        found.append(LandingFile(f"{source}/dt={day.isoformat()}/{info.base_name}", day, info.path, info.size))
        return sorted(found, key=lambda f: (f.dt, f.relative_path))

    def ignored(self, source: str, days: set[dt.date] | None = None) -> list[IgnoredFile]:
        """What ``files`` leaves out of ``source``'s folder although it is no hidden or temporary
        (``.``/``_``) file: files outside a ``dt=YYYY-MM-DD`` folder (a misnamed folder such as
        ``dt=2026-13-45`` or ``2026-01-11``, or a file at the top) and files of another suffix in
        the day folders (of ``days`` only, if given). Nothing of it is ever read."""
        suffixes = SOURCE_SUFFIXES[source]
        found = []

        def relative(path: str) -> str:
            return path[len(self.base) + 1 :]

        with self._errors():
            self.check_root()
            day_folders, others = self._day_folders(source)
            for entry in others:
                if entry.type == pafs.FileType.File:
                    found.append(IgnoredFile(relative(entry.path), f"not in a dt=YYYY-MM-DD folder under {source}/"))
                    continue
                reason = f"folder {entry.base_name!r} is not named dt=YYYY-MM-DD with a valid date"
                for info in self.fs.get_file_info(pafs.FileSelector(entry.path, recursive=True)):
                    if info.type == pafs.FileType.File and not info.base_name.startswith((".", "_")):
                        found.append(IgnoredFile(relative(info.path), reason))
            for day, folder in day_folders:
                if days is not None and day not in days:
                    continue
                for info in self.fs.get_file_info(pafs.FileSelector(folder, recursive=True)):
                    if info.type != pafs.FileType.File or info.base_name.startswith((".", "_")):
                        continue
                    if info.path.count("/") > folder.count("/") + 1:
                        found.append(IgnoredFile(relative(info.path), "in a sub-folder of a day folder"))
                    elif not info.base_name.endswith(suffixes):
                        found.append(IgnoredFile(relative(info.path), f"suffix is not {' or '.join(suffixes)} (names are case-sensitive)"))
        return sorted(found, key=lambda f: f.relative_path)

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
            while chunk := _read(stream, file):
                if number == 0 and not pending and chunk.startswith(_OTHER_ENCODINGS):
                    raise UnreadableFileError(file.relative_path, "unreadable_file:encoding",
                                              "starts with a UTF-16 or UTF-32 byte order mark; landing files are UTF-8")
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
# UTF-32 first: its little-endian mark starts with UTF-16's.
_OTHER_ENCODINGS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")
# What Arrow's gzip decoder says about bytes that are not (whole) gzip: the file is at fault, not
# the storage, so reading it again cannot help (any other OSError may be transient: it is raised).
_BAD_COMPRESSION = re.compile(r"zlib|gzip|compressed stream|inflate|decompress", re.IGNORECASE)


def _read(stream, file: LandingFile) -> bytes:
    try:
        return stream.read(STREAM_BUFFER_BYTES)
    except OSError as exc:
        if _BAD_COMPRESSION.search(str(exc)):
            raise UnreadableFileError(file.relative_path, "unreadable_file:compression", f"not readable as gzip ({exc})") from exc
        raise


def _folder_day(name: str) -> dt.date | None:
    m = _DT_FOLDER.match(name)
    if not m:
        return None
    try:
        return dt.date.fromisoformat(m[1])
    except ValueError:
        return None


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
    must_exist: bool = True  # a local root that does not exist is a wrong setting

    def zone(self) -> LandingZone:
        if not self.root.startswith("s3://") or (self.region is None and self.endpoint_url is None):
            return LandingZone(self.root, must_exist=self.must_exist)
        config = AwsConfig(self.region, s3_endpoint=self.endpoint_url)
        verify(config, landing_requirements(self.root))
        return LandingZone(self.root, aws=config)
