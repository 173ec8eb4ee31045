"""The package's shape, checked: the data flows one way through the layers, rooms stay small, and each on-disk
format is named in its owner module only."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "dualanodiff"
# Lowest first: a module may import from its own layer and the layers before it, never from a later one.
LAYERS = [
    {"errors", "io", "lazy", "settings", "plugins", "weights", "devices", "progress"},
    {"data"},
    {"model"},
    {"masks", "viz"},
    {"training"},
    {"generation", "baselines"},
    {"evaluate"},
    {"stages", "report"},
    {"sweep", "demo"},
    {"cli", "__main__"},
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): path for path in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int:
    top = module.split(".")[0]
    if top == "__init__":
        return len(LAYERS)  # the package's own exports may name anything
    return next(index for index, names in enumerate(LAYERS) if top in names)


def _imports(path: Path) -> set[str]:
    """The dualanodiff modules a file imports (at any depth: lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dualanodiff"):
            found.add(node.module.removeprefix("dualanodiff").lstrip("."))
        elif isinstance(node, ast.Import):
            found |= {alias.name.removeprefix("dualanodiff.") for alias in node.names
                      if alias.name.startswith("dualanodiff.")}
    return {name for name in found if name}


def test_every_module_sits_in_a_layer():
    for module in _modules():
        _layer(module)  # StopIteration names a module that no layer holds


def test_no_import_runs_up_the_layers():
    upward = [f"{module} -> {imported}" for module, path in _modules().items() for imported in _imports(path)
              if _layer(imported) > _layer(module)]
    assert not upward


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {module: {name for name in _imports(path) if name in modules or f"{name}.__init__" in modules}
             for module, path in modules.items()}
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in graph.get(module, ()):
            imported = imported if imported in graph else f"{imported}.__init__"
            if imported.endswith("__init__") or imported == module:
                continue  # a package's lazy exports import nothing when loaded
            if state.get(imported) == "open":
                pytest.fail("import cycle: " + " -> ".join([*trail, module, imported]))
            if imported not in state:
                visit(imported, [*trail, module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


def test_modules_and_functions_stay_small():
    too_long = []
    for module, path in _modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert not too_long


@pytest.mark.parametrize(("name", "owner"), [
    ('"split.json"', "training/run.py"), ('"object_masks"', "training/run.py"), ('"backgrounds"', "training/run.py"),
    ('"loss.csv"', "training/run.py"), ('"state.pt"', "training/checkpoint.py"),
    ('"meta.json"', "generation/generated_set.py"), ('"fg"', "generation/generated_set.py"),
])
def test_each_file_name_of_an_on_disk_format_stands_in_its_owner_only(name, owner):
    """A name given a value or joined to a path (`X = "split.json"`, `root / "split.json"`) in its owner only."""
    as_path = re.compile(rf"[=/]\s*{re.escape(name)}")
    holders = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                     if as_path.search(path.read_text()))
    assert holders == [owner]
