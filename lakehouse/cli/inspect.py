"""`lakehouse validate` and `lakehouse list`: the code location as Dagster loads it, checked and listed.

validate imports every module, builds the definitions for the environment's settings, and checks
the transformation registry against the asset graph (each source produced by some asset, each
target by one transformation, no cycles), the settings and the terraform export. list prints
the assets in execution order (Dagster's topological order), then jobs, schedules and sensors.
"""

from __future__ import annotations

import argparse
import graphlib
import importlib
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from lakehouse.cli.output import emit_json, printable
from lakehouse.settings import Settings, SettingsError, load_settings


@dataclass(frozen=True)
class Problem:
    check: str  # settings, import, definitions, registry, graph, terraform
    message: str

    def line(self) -> str:
        return f"{self.check}: {self.message}"


def _error(exc: BaseException) -> str:
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _import_problems() -> list[Problem]:
    """Each module that fails to import, by name: user tables one by one, then the code location."""
    from lakehouse import user_tables

    problems = []
    for name in user_tables.module_names():
        try:
            importlib.import_module(name)
        except Exception as exc:  # any error is the module's: name it and go on with the others
            problems.append(Problem("import", f"{name}: {_error(exc)}; fix the module or delete it"))
    if problems:
        return problems
    for name in ("lakehouse.contracts.tables", "lakehouse.assets", "lakehouse.definitions"):
        try:
            importlib.import_module(name)
        except Exception as exc:
            return [Problem("import", f"{name}: {_error(exc)}")]
    return []


def _registry_problems(defs, database_sources: bool) -> list[Problem]:
    from lakehouse.assets import DATABASE_TRANSFORMATIONS
    from lakehouse.contracts.transformations import all_registered

    graph = defs.resolve_asset_graph()
    produced = {key.to_user_string() for key in graph.get_all_asset_keys()}
    problems = []
    skipped = set() if database_sources else {t.key for t in DATABASE_TRANSFORMATIONS}
    for t in all_registered():
        if t.key in skipped:
            continue
        if t.key not in produced:
            problems.append(Problem("registry", f"{t.key}: its transformation is registered but no asset runs it; declare it in lakehouse/user_tables/ or lakehouse.assets.TRANSFORMATIONS"))
        for name, source in t.sources.items():
            if source.asset_key.to_user_string() not in produced:
                problems.append(Problem(
                    "registry", f"{t.key}: source {name!r} is {source.asset_key.to_user_string()}, which no asset produces; declare its contract and transformation, or read a table that exists",
                ))
    # Every dependency of every asset is an asset of the code location (Dagster would accept an
    # undeclared key as an external asset that nothing ever materializes).
    for key in graph.get_all_asset_keys():
        for parent in graph.get(key).parent_keys:
            if parent.to_user_string() not in produced:
                problems.append(Problem("graph", f"{key.to_user_string()} depends on {parent.to_user_string()}, which no asset produces; declare it or drop the dependency"))
    sorter = graphlib.TopologicalSorter({k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        problems.append(Problem("graph", f"a cycle: {' -> '.join(exc.args[1])}; one of these transformations must not read the other"))
    return problems


def validate() -> tuple[list[Problem], dict]:
    """Every problem found, and what was checked (counts) for the summary."""
    from lakehouse import infra

    problems: list[Problem] = []
    summary: dict = {}
    try:
        settings = load_settings()
    except SettingsError as exc:
        problems.append(Problem("settings", str(exc)))
        # The defaults (of a local home, as validated settings have it): the code is still checked.
        settings = Settings.model_construct(home=Path(".lakehouse").absolute())
    problems += _import_problems()
    if any(p.check == "import" for p in problems):
        return problems, summary
    from lakehouse.definitions import build_definitions

    try:
        defs = build_definitions(settings)
        import dagster as dg

        dg.Definitions.validate_loadable(defs)
    except Exception as exc:  # what Dagster refuses to load, as one line
        problems.append(Problem("definitions", _error(exc)))
        return problems, summary
    problems += _registry_problems(defs, settings.database_sources)
    try:
        if not infra.is_current():
            problems.append(Problem("terraform", f"{infra.EXPORT_PATH} is stale: run `lakehouse infra export` and commit it"))
    except OSError as exc:
        problems.append(Problem("terraform", f"{infra.EXPORT_PATH}: {exc.strerror}; run `lakehouse infra export`"))
    from lakehouse.contracts.transformations import all_registered

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    summary = {
        "environment": settings.env, "compute": settings.compute, "store": settings.store,
        "assets": len(keys), "transformations": sum(t.key in keys for t in all_registered()),
        "jobs": len(defs.jobs or ()), "schedules": len(defs.schedules or ()), "sensors": len(defs.sensors or ()),
    }
    return problems, summary


def cmd_validate(args: argparse.Namespace, settings: Settings | None) -> int:
    problems, summary = validate()
    if args.json:
        emit_json({"ok": not problems, "problems": [asdict(p) for p in problems], "checked": summary})
    else:
        for problem in problems:
            print(f"lakehouse: {printable(problem.line())}", file=sys.stderr)
        if not problems:
            counts = ", ".join(f"{v} {k}" for k, v in summary.items() if isinstance(v, int))
            print(f"ok: {counts}; settings ({summary['environment']}, compute {summary['compute']}) and the terraform export current")
    return 1 if problems else 0


# ---- list ------------------------------------------------------------------------------------


def _kind(spec) -> str:
    from lakehouse.assets.maintenance import MAINTENANCE_GROUP

    if spec.group_name == MAINTENANCE_GROUP:
        return "maintenance"
    if "dbt" in spec.kinds:
        return "dbt model"
    return "table"


def _partitioning(spec) -> str:
    import dagster as dg

    p = spec.partitions_def
    if p is None:
        return "whole table"
    if isinstance(p, dg.TimeWindowPartitionsDefinition):
        column = spec.metadata.get("partitioned_by")
        return f"daily from {p.start.date()}" + (f" ({getattr(column, 'value', column)})" if column else "")
    return type(p).__name__


def inventory(settings: Settings) -> dict:
    """The code location: assets in execution order, jobs, schedules, sensors (plain values)."""
    from lakehouse.definitions import build_definitions

    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    jobs = {j.name: j for j in (defs.jobs or ())}
    job_assets = {name: {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys} for name in jobs}
    assets = []
    for key in graph.toposorted_asset_keys:
        spec = specs[key]
        name = key.to_user_string()
        mode = spec.metadata.get("write_mode")
        assets.append({
            "asset": name, "kind": _kind(spec), "layer": spec.group_name, "write_mode": getattr(mode, "value", mode),
            "partitioning": _partitioning(spec), "upstream": sorted(p.to_user_string() for p in graph.get(key).parent_keys),
            "jobs": sorted(j for j, keys in job_assets.items() if name in keys),
        })
    from lakehouse.contracts.transformations import all_registered

    produced = {a["asset"] for a in assets}
    return {
        "assets": assets,
        "transformations": [
            {"target": t.key, "sources": {n: s.asset_key.to_user_string() for n, s in t.sources.items()}, "profile": t.profile,
             "engine": t.engine or settings.compute, "code_version": t.code_version}
            for t in all_registered() if t.key in produced
        ],
        "sources": sorted({s.asset_key.to_user_string() for t in all_registered() if t.key in produced for s in t.sources.values()}),
        "jobs": [{"job": j.name, "description": j.description, "assets": len(job_assets[j.name])} for j in jobs.values()],
        "schedules": [{"schedule": s.name, "cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name} for s in defs.schedules or ()],
        "sensors": [{"sensor": s.name, "jobs": sorted(t.job_name for t in s.targets) if s.targets else []} for s in defs.sensors or ()],
    }


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    found = inventory(settings)
    if args.json:
        emit_json(found)
        return 0
    print("assets, in execution order:")
    _table([("asset", "kind", "layer", "mode", "partitioning", "jobs", "upstream")] + [
        (a["asset"], a["kind"], a["layer"] or "-", a["write_mode"] or "-", a["partitioning"], ",".join(a["jobs"]) or "-", ", ".join(a["upstream"]) or "-")
        for a in found["assets"]
    ])
    print("\ntransformations:")
    _table([("target", "sources", "profile", "engine")] + [
        (t["target"], ", ".join(t["sources"].values()), t["profile"], t["engine"]) for t in found["transformations"]
    ])
    print("\njobs:")
    _table([("job", "assets", "description")] + [(j["job"], str(j["assets"]), j["description"] or "") for j in found["jobs"]])
    print("\nschedules:")
    _table([("schedule", "cron", "timezone", "job")] + [(s["schedule"], s["cron"], s["timezone"] or "UTC", s["job"]) for s in found["schedules"]])
    print("\nsensors:")
    _table([("sensor", "jobs")] + [(s["sensor"], ", ".join(s["jobs"]) or "-") for s in found["sensors"]])
    return 0


def register(command) -> None:
    validate_ = command(
        "validate", help="check contracts, the transformation registry and DAG, the settings and the terraform export",
        examples="  lakehouse validate                         one line per problem, exit 1 if any\n"
        "  LAKEHOUSE_ENV=aws ... lakehouse validate   the settings of that environment\n"
        "  lakehouse validate --json | jq .problems",
    )
    validate_.add_argument("--json", action="store_true", help="print {ok, problems: [{check, message}], checked} instead")
    # Settings errors are problems it reports, not the end of the command.
    validate_.set_defaults(run=cmd_validate, own_settings=True)
    list_ = command(
        "list", help="assets in execution order (kind, layer, write mode, partitioning, upstream), transformations, jobs, schedules, sensors",
        examples="  lakehouse list\n  lakehouse list --json | jq -r '.assets[].asset'",
    )
    list_.add_argument("--json", action="store_true", help="print {assets, transformations, sources, jobs, schedules, sensors} instead")
    list_.set_defaults(run=cmd_list)
