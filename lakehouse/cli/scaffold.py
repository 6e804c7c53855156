"""`lakehouse new table LAYER/NAME`: a contract, a transformation stub and a test stub that
`lakehouse validate` accepts.

The table's module goes to lakehouse/user_tables/NAME.py (imported with lakehouse.assets, so the
table is in the code location at once), its test to lakehouse_tests/user_tables/test_NAME.py.
The stub reads its source's key columns; edit the columns and the function from there.
"""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from lakehouse.cli.errors import UsageError
from lakehouse.cli.output import emit_json
from lakehouse.settings import Settings

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

MODULE = '''"""{layer}/{name}: {description}"""

from __future__ import annotations

from pyspark.sql import DataFrame

from lakehouse.contracts.model import Column, Layer, TableContract
{source_import}
from lakehouse.contracts.transformations import transformation

CONTRACT = TableContract(
    name="{name}",
    layer=Layer.{layer},
    description="{description}",
    columns=(
{columns}
    ),
    primary_key=({key},),
)


@transformation(target=CONTRACT, sources={{"{source_name}": {source_constant}}})
def {name}({source_name}: DataFrame) -> DataFrame:
    # The stub keeps the source's key: compute the table's columns here.
    return {source_name}.select({key_names})
'''

TEST = '''"""{layer}/{name}: in the code location, registered, and its stub's columns are the contract's."""

from lakehouse.contracts.transformations import registered
from lakehouse.definitions import build_definitions
from lakehouse.settings import Settings
from lakehouse.user_tables.{name} import CONTRACT, {name}


def test_{name}_is_in_the_code_location(tmp_path):
    assert registered("{layer}/{name}") is {name}
    graph = build_definitions(Settings(home=tmp_path / "lakehouse")).resolve_asset_graph()
    assert CONTRACT.asset_key in graph.get_all_asset_keys()


def test_{name}_writes_the_contract_columns(spark):
    source = spark.createDataFrame([], {name}.sources["{source_name}"].spark_schema())
    assert {name}.fn(source).columns == CONTRACT.column_names
'''


def _source(key: str):
    """The contract read by key, and how the new module imports it."""
    from lakehouse import user_tables
    from lakehouse.contracts import tables
    from lakehouse.contracts.model import TableContract

    for constant, value in vars(tables).items():
        if isinstance(value, TableContract) and value.asset_key.to_user_string() == key:
            return value, f"from lakehouse.contracts.tables import {constant}", constant
    for module in user_tables.module_names():
        contract = getattr(__import__(module, fromlist=["CONTRACT"]), "CONTRACT", None)
        if contract is not None and contract.asset_key.to_user_string() == key:
            constant = module.rsplit(".", 1)[1].upper()
            return contract, f"from {module} import CONTRACT as {constant}", constant
    raise UsageError(f"--source {key}: no such table contract; choose one `lakehouse list` shows (e.g. silver/orders)")


def scaffold(spec: str, source_key: str, description: str | None) -> dict[str, str]:
    """Write the module and the test stub; the paths written, by role."""
    import lakehouse
    import lakehouse.assets
    from lakehouse import user_tables
    from lakehouse.contracts.transformations import all_registered

    layer, _, name = spec.partition("/")
    if layer == "bronze":
        raise UsageError(f"{spec}: Bronze tables come from landing sources (lakehouse/sources), not transformations; scaffold silver/{name} or gold/{name}")
    if layer not in ("silver", "gold") or not _NAME.match(name) or keyword.iskeyword(name):
        raise UsageError(f"{spec}: give LAYER/NAME with LAYER silver or gold and NAME lowercase letters, digits and '_' (e.g. gold/order_counts)")
    taken = {t.key for t in all_registered()} | {c.asset_key.to_user_string() for c in user_tables.contracts()}
    if spec in taken:
        raise UsageError(f"{spec} exists already: choose another name")
    source, source_import, constant = _source(source_key)
    if layer == "silver" and len(source.primary_key) != 1:
        raise UsageError(f"--source {source_key}: a Silver table merges on one key column and {source_key} has {len(source.primary_key)}; choose another source")
    module = Path(user_tables.__file__).parent / f"{name}.py"
    tests = Path(lakehouse.__file__).resolve().parents[1] / "lakehouse_tests"
    test = tests / "user_tables" / f"test_{name}.py"
    for path in (module, test):
        if path.exists():
            raise UsageError(f"{path} exists: new table never overwrites a file; delete it or choose another name")
    columns = "\n".join(
        f'        Column(name="{c.name}", type="{c.type}", required=True, description="{c.description or c.name}"),'
        for c in (source.column(k) for k in source.primary_key)
    )
    values = {
        "layer": layer, "name": name, "description": description or f"TODO: what one row of {layer}/{name} is.",
        "source_import": source_import, "source_constant": constant, "source_name": source.name, "columns": columns,
        "key": ", ".join(f'"{k}"' for k in source.primary_key), "key_names": ", ".join(f'"{k}"' for k in source.primary_key),
    }
    module.write_text(MODULE.format(**values))
    written = {"module": str(module)}
    if tests.is_dir():  # a source checkout: the test stub beside the others
        test.parent.mkdir(exist_ok=True)
        (test.parent / "__init__.py").touch()
        test.write_text(TEST.format(**values))
        written["test"] = str(test)
    from lakehouse import infra

    # The stack reads every transformation: the export follows the new one.
    if infra.EXPORT_PATH.exists():
        import subprocess
        import sys

        # In a fresh process: this one has the registry as it was before the module existed.
        subprocess.run([sys.executable, "-m", "lakehouse.cli", "infra", "export"], check=True, capture_output=True)
        written["terraform"] = str(infra.EXPORT_PATH)
    return written


def cmd_new(args: argparse.Namespace, settings: Settings | None) -> int:
    written = scaffold(args.table, args.source, args.description)
    if args.json:
        emit_json({"table": args.table, "written": written})
        return 0
    for role, path in written.items():
        print(f"wrote {path}" if role != "terraform" else f"updated {path} (commit it with the table)")
    print(f"next: edit the contract and the function, then `lakehouse validate` and `lakehouse run {args.table} --upstream`")
    return 0


def register(command) -> None:
    new = command(
        "new", help="scaffold: `new table LAYER/NAME` writes a contract, a transformation stub and a test stub",
        examples="  lakehouse new table gold/order_counts\n"
        "  lakehouse new table silver/customer_keys --source silver/customers\n"
        "  lakehouse new table gold/order_counts --json",
    )
    what = new.add_subparsers(dest="new_command", required=True)
    table = what.add_parser(
        "table", help="a table of the code location: lakehouse/user_tables/NAME.py and lakehouse_tests/user_tables/test_NAME.py",
        epilog="examples:\n  lakehouse new table gold/order_counts\n  lakehouse new table silver/customer_keys --source silver/customers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    table.add_argument("table", metavar="LAYER/NAME", help="silver/NAME or gold/NAME")
    table.add_argument("--source", default="silver/orders", metavar="TABLE", help="the table it reads (default silver/orders)")
    table.add_argument("--description", help="one sentence: what one row of the table is")
    table.add_argument("--json", action="store_true", help="print {table, written: {module, test, terraform}} instead")
    # Writing files needs no settings: it works on a home whose settings are still wrong.
    table.set_defaults(run=cmd_new, own_settings=True)
