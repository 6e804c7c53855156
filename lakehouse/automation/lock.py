"""One `lakehouse refresh` at a time per LAKEHOUSE_HOME: an fcntl lock on $LAKEHOUSE_HOME/refresh.lock.

Two refreshes at once would both create a new Dagster instance (one dies in its migration) or both
commit the same tables (one dies on a stale commit). The lock is taken before the Dagster instance
is opened, and the kernel releases it when its process ends, however it ends.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lakehouse.settings import SettingsError

LOCK_FILE = "refresh.lock"
POLL_SECONDS = 0.5


class RefreshLocked(Exception):
    """Another refresh held the lock for longer than this one would wait."""


@contextmanager
def refresh_lock(home: Path, wait: float, on_wait: Callable[[str], object]) -> Iterator[None]:
    """Holds the refresh lock of ``home``, waiting up to ``wait`` seconds for another refresh to end;
    ``on_wait`` gets one line when waiting starts. Raises RefreshLocked when the wait is over."""
    path = home / LOCK_FILE
    try:
        home.mkdir(parents=True, exist_ok=True)
        # os.open's descriptor is not inherited, so a child that outlives the refresh (its JVM)
        # cannot keep the lock held.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SettingsError(f"LAKEHOUSE_HOME: cannot open the refresh lock {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        waiting = False
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise RefreshLocked(
                    f"gave up after {wait:g} s waiting for {_holder(path)} (lock {path}); run again when it has "
                    "finished, or wait longer with --wait SECONDS"
                )
            if not waiting:
                on_wait(f"waiting for {_holder(path)} to finish (at most {wait:g} s, see --wait; lock {path})")
                waiting = True
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    """Who holds the lock, from what it wrote into the file ("pid since"), as far as it is known."""
    try:
        pid, since = path.read_text().split()
        started = dt.datetime.fromtimestamp(int(since)).strftime("%H:%M:%S")
    except (OSError, ValueError):  # the holder has not written it yet
        return "another refresh"
    return f"the refresh running as pid {pid} since {started}"
