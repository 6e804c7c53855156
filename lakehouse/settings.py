"""Settings from the environment, validated once: the one place that decides where the lakehouse runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(ValueError):
    """An environment variable holds a value the lakehouse cannot use."""


class Settings(BaseSettings):
    """``LAKEHOUSE_HOME`` (default ``./.lakehouse``), ``LAKEHOUSE_LANDING`` (default ``$LAKEHOUSE_HOME/landing``),
    ``LAKEHOUSE_ENV`` (``local``), ``LAKEHOUSE_PARTITIONS_START`` (default ``2000-01-01``)."""

    model_config = SettingsConfigDict(env_prefix="LAKEHOUSE_", extra="ignore")

    home: Path = Path(".lakehouse")
    landing: str | None = None
    env: Literal["local"] = "local"
    # First day of the daily partitions (landing days and report dates); data before it is refused.
    partitions_start: dt.date = dt.date(2000, 1, 1)

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        value = value.expanduser().absolute()
        for folder in (value, *value.parents):
            if folder.exists():
                if not folder.is_dir():
                    raise ValueError(f"{folder} exists and is not a directory")
                break
        return value

    @property
    def landing_root(self) -> str:
        if self.landing:
            return self.landing if "://" in self.landing else str(Path(self.landing).expanduser().absolute())
        return str(self.home / "landing")

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.db"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"LAKEHOUSE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"invalid lakehouse settings: {problems}") from None
