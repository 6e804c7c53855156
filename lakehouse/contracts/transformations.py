"""A transformation's declaration: the table it produces, the tables it reads, its function and
code version, registered by target so any runner (this process, a Glue or EMR Serverless job) finds
it by asset key.

    @transformation(target=ORDERS, sources={"orders_raw": ORDERS_RAW})
    def orders(orders_raw: DataFrame) -> DataFrame: ...

The function sees only Spark DataFrames: where it runs and where tables live are the compute
resource's and the table store's business.
"""

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.contracts.model import TableContract

# Resource profiles a transformation may ask for: what each gets on Glue and EMR Serverless is the
# remote compute's (lakehouse.resources.pipes_compute); local Spark ignores them.
PROFILES = ("small", "medium", "large")
# Engines a transformation may pin itself to, whatever LAKEHOUSE_COMPUTE says (None: that setting).
ENGINES = ("local", "glue", "emr-serverless")


@dataclass(frozen=True)
class Transformation:
    target: TableContract
    sources: dict[str, TableContract]
    fn: Callable
    code_version: str
    # For a target partitioned by day: (source name, timestamp column) such that target partition D
    # is computed from exactly the source rows whose column falls on UTC day D.
    partition_source: tuple[str, str] | None = None
    # For a target fed from Bronze: counts the records of the new Bronze input and how many of them
    # are invalid, e.g. lambda orders_raw: {"read": ..., "rejected": ...}. Feeds record accounting.
    accounting: Callable | None = None
    # Tables whose write must publish first, in the same run: a quarantine table follows its Silver
    # table, so a blocked Silver audit publishes none of the batch anywhere (Dagster skips what
    # depends on an asset whose blocking check failed).
    after: tuple[TableContract, ...] = ()
    profile: str = "small"  # one of PROFILES: the resources it gets on remote compute
    engine: str | None = None  # one of ENGINES: where it runs whatever the configured compute (None: there)

    @property
    def compute_key(self) -> str:
        """The resource that runs it: ``compute`` (the configured one), or ``compute_<engine>``."""
        return "compute" if self.engine is None else f"compute_{self.engine.replace('-', '_')}"

    @property
    def key(self) -> str:
        return self.target.asset_key.to_user_string()


_REGISTRY: dict[str, Transformation] = {}


def transformation(
    *,
    target: TableContract,
    sources: dict[str, TableContract],
    partition_source: tuple[str, str] | None = None,
    accounting: Callable | None = None,
    after: tuple[TableContract, ...] = (),
    profile: str = "small",
    engine: str | None = None,
) -> Callable[[Callable], Transformation]:
    """Declare ``fn`` as the transformation that produces ``target`` from ``sources``.

    Bronze sources are read incrementally: only the Bronze batches the target has not applied yet.
    """

    if profile not in PROFILES:
        raise ValueError(f"transformation of {target.asset_key.to_user_string()}: unknown profile {profile!r}; one of {', '.join(PROFILES)}")

    if engine is not None and engine not in ENGINES:
        raise ValueError(f"transformation of {target.asset_key.to_user_string()}: unknown engine {engine!r}; one of {', '.join(ENGINES)}")

    def register(fn: Callable) -> Transformation:
        params = list(inspect.signature(fn).parameters)
        if sorted(params) != sorted(sources):
            raise TypeError(f"transformation {fn.__name__} takes {params} but declares sources {sorted(sources)}")
        if partition_source:
            name, column = partition_source
            if name not in sources or not target.partition_by:
                raise TypeError(f"transformation {fn.__name__}: partition_source needs a partitioned target and a declared source")
            sources[name].column(column)
        digest = _code_version(fn, target, sources)
        t = Transformation(
            target=target, sources=dict(sources), fn=fn, code_version=digest, partition_source=partition_source, accounting=accounting,
            after=tuple(after), profile=profile, engine=engine,
        )
        if t.key in _REGISTRY and _REGISTRY[t.key].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"two transformations produce {t.key}")
        _REGISTRY[t.key] = t
        return t

    return register


def _code_version(fn: Callable, target: TableContract, sources: dict[str, TableContract]) -> str:
    """Changes whenever the logic or a contract changes: hashes the function's module, the
    lakehouse modules that module uses (helpers such as validation rules) and the contracts."""
    module = inspect.getmodule(fn)
    used = {module}
    for value in vars(module).values():
        owner = inspect.getmodule(value) if not inspect.ismodule(value) else value
        if owner is not None and owner.__name__.startswith("lakehouse.") and owner.__name__ != __name__:
            used.add(owner)
    parts = [inspect.getsource(m) for m in sorted(used, key=lambda m: m.__name__)]
    parts += [c.model_dump_json() for c in (target, *sources.values())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def registered(asset_key: str) -> Transformation:
    """The transformation that produces ``asset_key`` (e.g. "silver/orders")."""
    try:
        return _REGISTRY[asset_key]
    except KeyError:
        raise KeyError(f"no transformation produces {asset_key}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_registered() -> list[Transformation]:
    """Every registered transformation, by asset key (import lakehouse.assets first to register them)."""
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]
