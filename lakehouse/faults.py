"""Fault injection for crash and race tests: ``LAKEHOUSE_FAULT`` names points where the process
kills itself or pauses. Off (a dictionary lookup) unless the variable is set.

    LAKEHOUSE_FAULT=kill:silver.before_publish@silver/orders
    LAKEHOUSE_FAULT=pause:silver.start_audit@silver/orders,pause:silver.before_publish@silver/orders

``kill`` sends SIGKILL to the process at that point, as a crash or ``kill -9`` would. ``pause``
writes ``<point>@<asset>.reached`` (``/`` in the asset key written as ``__``) to
``LAKEHOUSE_FAULT_DIR`` and waits until a file of the same name ending ``.release`` appears there
(at most ``LAKEHOUSE_FAULT_TIMEOUT`` seconds, default 120), so a test can force an interleaving of
two processes deterministically. Each pause happens once per process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

FAULT_VARIABLE = "LAKEHOUSE_FAULT"
FAULT_DIR_VARIABLE = "LAKEHOUSE_FAULT_DIR"
FAULT_TIMEOUT_VARIABLE = "LAKEHOUSE_FAULT_TIMEOUT"

# Every point the code offers, so a typo in a test's variable fails loudly instead of never firing.
POINTS = (
    "bronze.before_register",  # Bronze files written under temporary names, nothing registered
    "bronze.before_claim",  # registered for Silver, not yet visible under their names
    "extract.before_claim",  # a database extract read, its Bronze file not yet visible
    "extract.before_register",  # its Bronze file visible, not registered (the watermark not moved)
    "silver.start_audit",  # the audit branch exists, nothing written to it yet
    "silver.before_publish",  # the audited snapshot is on the branch, main not moved
    "silver.after_publish",  # main moved, Dagster has not recorded the materialization
    "gold.before_publish",  # Gold's audited snapshot is on its branch, main not moved
    "gold.after_publish",
    "maintenance.before_commit",  # compaction's files are written, its commit not yet made
)

_paused: set[str] = set()


def marker(point: str, asset: str | None) -> str:
    """The file name stem a pause at ``point`` for ``asset`` writes and waits on."""
    return f"{point}@{(asset or '').replace('/', '__')}"


def _wanted(spec: str, point: str, asset: str | None) -> list[str]:
    actions = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        action, _, target = item.partition(":")
        name, _, only = target.partition("@")
        if action not in ("kill", "pause") or name not in POINTS:
            raise ValueError(f"{FAULT_VARIABLE}: {item!r} is not <kill|pause>:<point>[@<asset>] with a point of {', '.join(POINTS)}")
        if name == point and (not only or only == asset):
            actions.append(action)
    return actions


def point(name: str, asset: str | None = None) -> None:
    """A place where a crash or a pause can be injected (see the module docstring)."""
    spec = os.environ.get(FAULT_VARIABLE)
    if not spec:
        return
    for action in _wanted(spec, name, asset):
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        key = marker(name, asset)
        if key in _paused:
            continue
        _paused.add(key)
        folder = Path(os.environ[FAULT_DIR_VARIABLE])
        (folder / f"{key}.reached").write_text(str(os.getpid()))
        deadline = time.monotonic() + float(os.environ.get(FAULT_TIMEOUT_VARIABLE, "120"))
        while not (folder / f"{key}.release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{FAULT_VARIABLE}: pause at {key} was never released")
            time.sleep(0.05)
