"""The terraform stack as python-hcl2 parses it, with the quoting python-hcl2 8 keeps taken off."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

PROJECT = Path(__file__).resolve().parents[2]
ROOT = PROJECT / "terraform"
MODULES = ROOT / "modules"
_COMMENT = re.compile(r"(?m)(^|\s)(#|//).*$")
VAR_USE = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def unquote(value: Any) -> Any:
    """python-hcl2 8 keeps string literals' quotes ('"x"') and marks blocks: strip both."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    return value


@dataclass
class Module:
    """One directory of .tf files: its blocks by type and the text that uses variables."""

    path: Path
    blocks: dict[str, list[dict]] = field(default_factory=dict)
    text: str = ""

    @property
    def variables(self) -> dict[str, dict]:
        return {name: body for block in self.blocks.get("variable", []) for name, body in block.items()}

    @property
    def used_variables(self) -> set[str]:
        return set(VAR_USE.findall(self.text))

    def named(self, kind: str) -> dict[tuple[str, str], dict]:
        """Resources or data sources by (type, name)."""
        return {(t, n): body for block in self.blocks.get(kind, []) for t, named in block.items() for n, body in named.items()}

    @property
    def module_calls(self) -> dict[str, dict]:
        return {name: body for block in self.blocks.get("module", []) for name, body in block.items()}


@cache
def load(path: Path = ROOT) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        text = tf.read_text()
        for kind, blocks in hcl2.loads(text).items():
            module.blocks.setdefault(kind, []).extend(unquote(blocks))
        module.text += _COMMENT.sub(r"\1", text) + "\n"
    return module


def module_dirs() -> list[Path]:
    return [ROOT, *sorted(p for p in MODULES.iterdir() if p.is_dir())]


def tfvars(path: Path) -> dict[str, Any]:
    return unquote(hcl2.loads(path.read_text()))
