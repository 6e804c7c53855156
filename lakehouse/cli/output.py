"""What the commands print: stdout that survives a closed pipe, quiet logging, escaped text, JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import warnings


class _Stdout(io.TextIOBase):
    """sys.stdout, flushed at each line, that goes quiet once its reader has gone (`lakehouse
    rejects | head`): output nobody reads is dropped, and the command ends as it would have."""

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self._stream.write(text)
                if "\n" in text:
                    self._stream.flush()
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        # What is still buffered, and whatever else writes to the descriptor, goes nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return self._stream.encoding

    @property
    def errors(self) -> str | None:
        return self._stream.errors


def _setup_output(verbose: bool) -> None:
    """Quiet by default: Python warnings off (unless -W or PYTHONWARNINGS asks for them), Spark at
    ERROR, this package's progress lines (such as "starting Spark ...") on stderr. ``verbose``:
    warnings on, Spark at INFO, every Python logger at INFO."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # text the terminal cannot show is escaped, never an error
            stream.reconfigure(errors="backslashreplace")
    if not isinstance(sys.stdout, _Stdout):
        sys.stdout = _Stdout(sys.stdout)
    if not sys.warnoptions:
        warnings.simplefilter("default" if verbose else "ignore")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("lakehouse: %(message)s"))
    ours = logging.getLogger("lakehouse")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.INFO)
    ours.propagate = False
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from lakehouse.resources.spark import set_log_level

        set_log_level("INFO")


def printable(text: str | None) -> str:
    """``text`` safe for a terminal: control and other unprintable characters (escape sequences,
    NUL, bidirectional overrides, lone surrogates) as Python escapes (\\x1b, \\u202e)."""
    if text is None:
        return ""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)



def emit_json(value) -> None:
    """``value`` as one JSON document on stdout (dates and paths as text), for scripts."""
    print(json.dumps(value, indent=2, default=str))
