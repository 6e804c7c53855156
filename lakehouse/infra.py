"""What the terraform stack needs to know about the code: `lakehouse infra export` writes it.

terraform/lakehouse.auto.tfvars.json holds the layers, the bucket and database naming rules of
lakehouse.settings, the resource profiles of lakehouse.resources.pipes_compute and every
registered transformation with its engine and profile, so the stack (buckets, Glue databases,
the Glue job's concurrency, EMR capacity) follows the code. Only the CLI imports this module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

EXPORT_PATH = Path(__file__).resolve().parents[1] / "terraform" / "lakehouse.auto.tfvars.json"
# Placeholders terraform replaces (terraform/main.tf, locals): the naming rules stay the code's.
_ENVIRONMENT = "environment-placeholder"
_TOKENS = {_ENVIRONMENT: "{environment}", _ENVIRONMENT.replace("-", "_"): "{environment_underscored}"}
# Spark's default memory overhead per container (spark.{driver,executor}.memoryOverheadFactor),
# which EMR Serverless counts against the application's capacity.
_MEMORY_OVERHEAD = 0.1


def _template(name: str, layer: str | None = None) -> str:
    for value, token in _TOKENS.items():
        name = name.replace(value, token)
    return name.replace(layer, "{layer}", 1) if layer else name


def _emr_capacity(conf: dict[str, str]) -> tuple[int, int]:
    containers = [("driver", 1), ("executor", int(conf["spark.executor.instances"]))]
    vcpu = sum(int(conf[f"spark.{role}.cores"]) * count for role, count in containers)
    memory = sum(math.ceil(int(conf[f"spark.{role}.memory"].rstrip("g")) * (1 + _MEMORY_OVERHEAD)) * count for role, count in containers)
    return vcpu, memory


def export() -> dict[str, Any]:
    """The stack's `lakehouse` variable, from the code as it is now."""
    import lakehouse.assets  # noqa: F401 (registers every transformation)
    from lakehouse.contracts.model import Layer
    from lakehouse.contracts.transformations import PROFILES, all_registered
    from lakehouse.resources.pipes_compute import EMR_PROFILES, GLUE_PROFILES
    from lakehouse.settings import Settings

    # Defaults only: no LAKEHOUSE_* variable of this shell may leak into the committed file.
    settings = Settings.model_construct(environment_name=_ENVIRONMENT)
    layers = [layer.value for layer in Layer]
    profiles = {}
    for name in PROFILES:
        vcpu, memory = _emr_capacity(EMR_PROFILES[name])
        profiles[name] = {
            "glue_worker_type": GLUE_PROFILES[name]["WorkerType"],
            "glue_workers": GLUE_PROFILES[name]["NumberOfWorkers"],
            "emr_vcpu": vcpu,
            "emr_memory_gb": memory,
        }
    return {
        "lakehouse": {
            "layers": layers,
            "bucket_layers": [*layers, "artifacts"],
            "bucket_name": _template(settings.bucket("bronze"), "bronze"),
            "database_name": _template(settings.glue_database("bronze"), "bronze"),
            "glue_job_name": _template(settings.job_name),
            "profiles": profiles,
            "transformations": {
                t.key: {"layer": t.target.layer.value, "engine": t.engine, "profile": t.profile} for t in all_registered()
            },
        }
    }


def render() -> str:
    return json.dumps(export(), indent=2, sort_keys=True) + "\n"


def write(path: Path = EXPORT_PATH) -> bool:
    """Write the export to ``path``; True when that changed the file."""
    text = render()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def is_current(path: Path = EXPORT_PATH) -> bool:
    return path.exists() and path.read_text() == render()
