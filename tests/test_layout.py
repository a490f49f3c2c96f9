"""The package's layering (docs/ARCHITECTURE.md): every import between rooms runs down the floors.

Read from the source with ``ast`` (nothing is imported), so a new upward import fails here, naming the file.
"""
import ast
from pathlib import Path

import dinstyle

PACKAGE = Path(dinstyle.__file__).parent

# floors, ground first: a room may import rooms on lower floors only ("__init__" is the package root's face)
FLOORS = [
    {"errors", "version"},
    {"defaults"},  # the controls' torch-free rules (alpha, stroke scale), shared with lite
    {"layers", "io"},
    {"backbones", "lite"},
    {"models"},
    {"runtime", "export"},
    {"video", "eval"},
    {"api", "train", "convert"},  # convert: converters and experiment tools (Magenta's weights, widen)
    {"dataset"},  # stylizes datasets through the api's Stylizer
    {"serve", "__init__"},
    {"cli"},
    {"__main__"},
]
FLOOR = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path):
    """(line, imported dinstyle module) for every import in ``path``, relative ones resolved."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1])  # the package a relative import starts from (a module's, or an __init__'s own)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "dinstyle":
                continue
            if node.module:
                yield node.lineno, module
            else:  # from .. import name: the name is a module of that package
                yield from ((node.lineno, f"{module}.{a.name}") for a in node.names)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "dinstyle")


def _rooms():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        yield path, ("__init__" if rel == Path("__init__.py") else rel.with_suffix("").parts[0])


def test_every_room_has_a_floor():
    assert {room for _, room in _rooms()} <= set(FLOOR), "a new module or package needs a floor in FLOORS"


def test_imports_run_down():
    upward = []
    for path, room in _rooms():
        for line, module in _imports(path):
            target = _room(module)
            if target == room:
                continue
            if target not in FLOOR or FLOOR[target] >= FLOOR[room]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module} ({room} -> {target})")
    assert not upward, "imports that do not run down the floors:\n" + "\n".join(upward)
