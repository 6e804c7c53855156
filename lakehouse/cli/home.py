"""The Dagster instance the commands record their runs in: DAGSTER_HOME, else $LAKEHOUSE_HOME/dagster."""

from __future__ import annotations

import os
from pathlib import Path

from lakehouse.settings import Settings, SettingsError


def dagster_home(settings: Settings) -> Path:
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SettingsError(f"DAGSTER_HOME: {home} is not a directory") from None
    config = home / "dagster.yaml"
    if not config.exists():  # a new instance: the project's instance settings (run queue limits)
        config.write_text((Path(__file__).parents[1] / "dagster_instance.yaml").read_text())
    os.environ["DAGSTER_HOME"] = str(home.absolute())
    return home

