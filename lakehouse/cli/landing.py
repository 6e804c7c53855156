"""`lakehouse land-sample`: deterministic sample files into the landing zone."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from lakehouse.cli.arguments import date, positive
from lakehouse.cli.errors import UsageError
from lakehouse.settings import Settings


def cmd_land_sample(args: argparse.Namespace, settings: Settings) -> int:
    from lakehouse.sources.sample import land_sample

    def sample(folder: Path) -> list[Path]:
        try:
            return land_sample(folder, seed=args.seed, days=args.days, orders_per_day=args.orders_per_day, start=args.start)
        except FileExistsError as exc:
            raise UsageError(f"{exc.filename}: {exc.strerror}; land-sample never changes a landed file") from exc
        except ValueError as exc:
            if "orders_per_day" not in str(exc):
                raise
            # the sample's own limits
            raise UsageError(f"--orders-per-day {args.orders_per_day}: {str(exc).replace('orders_per_day', 'it')}") from exc

    if "://" not in settings.landing_root:
        landing = Path(settings.landing_root)
        written = sample(landing)
        print(f"landed {len(written)} new file(s) under {landing}")
        return 0
    # An object-store landing zone: generate locally, then upload the files it does not have yet.
    import tempfile

    import pyarrow.fs as pafs

    from lakehouse.environment import resources_for

    zone = resources_for(settings)["landing"].zone()
    uploaded = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sample(Path(tmp)):
            target = f"{zone.base}/{path.relative_to(tmp).as_posix()}"
            if zone.fs.get_file_info(target).type == pafs.FileType.NotFound:
                pafs.copy_files(str(path), target, destination_filesystem=zone.fs)
                uploaded += 1
    print(f"landed {uploaded} new file(s) under {settings.landing_root}")
    return 0


def register(command) -> None:
    land = command(
        "land-sample", help="land deterministic sample files into the landing zone",
        examples="  lakehouse land-sample                                 3 days of 500 orders from 2026-01-01\n"
        "  lakehouse land-sample --days 1 --orders-per-day 5     a tiny sample",
    )
    land.add_argument("--seed", type=int, default=7)
    land.add_argument("--days", type=positive, default=3)
    land.add_argument("--orders-per-day", type=int, default=500)
    land.add_argument("--start", type=date, default=dt.date(2026, 1, 1), help="first landing day (YYYY-MM-DD)")
    land.set_defaults(run=cmd_land_sample)
