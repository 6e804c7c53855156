"""Tables added with `lakehouse new table LAYER/NAME`: one module per table, each declaring its
contract (``CONTRACT``) and the transformation that produces it.

lakehouse.assets imports every module here, so each table is in the code location, the
transformation registry and the terraform export without being listed anywhere else. A module
whose name starts with "_" is not imported.
"""

from __future__ import annotations

import importlib
import pkgutil

from lakehouse.contracts.model import TableContract
from lakehouse.contracts.transformations import Transformation


def module_names() -> list[str]:
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def transformations() -> list[Transformation]:
    """The transformations the modules declare, each once (a module may import another's)."""
    found: dict[str, Transformation] = {}
    for name in module_names():
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, Transformation):
                found.setdefault(value.key, value)
    return list(found.values())


def contracts() -> list[TableContract]:
    return [c for c in (getattr(importlib.import_module(n), "CONTRACT", None) for n in module_names()) if isinstance(c, TableContract)]
