"""The layers of the code, enforced: which unit may import which (`ALLOWED`), and no import
cycle between modules.

Every import counts, wherever it is written: at the top, inside a function, or under
`if TYPE_CHECKING:`. A unit is a package of `appliance/` (or `hal`), or one of the few modules
that are their own unit because they sit lower than the package holding them (`UNITS`); a
module belongs to the longest unit that names it or a package holding it. A unit may always
import itself. A package whose `__init__` imports something counts as imported by every module
inside it (Python runs that `__init__` first).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

#: Each component's config section, declared next to its code from `appliance.config.base` and
#: composed into `ApplianceConfig` by `appliance.config.schema`: below the packages that hold them.
SECTIONS = (
    "appliance.commitment.config", "appliance.dicom.config", "appliance.dicom.peer_config",
    "appliance.forward.coercion_config", "appliance.forward.config",
    "appliance.maintenance.config", "appliance.mpps.config", "appliance.print.config",
    "appliance.query.config", "appliance.dicom.storage_config", "appliance.system.config",
    "appliance.web.config", "appliance.worklist.config",
)

#: Modules that are their own unit (the rest of their package sits higher).
UNITS = {
    "appliance": "appliance",                       # the package itself: the version
    "appliance.core.errors": "appliance.core.errors",  # the exception root
    "appliance.worklist.keys": "appliance.worklist.keys",  # the worklist attributes (data)
    "appliance.dicom.values": "appliance.dicom.values",  # the one check of a value by VR
    "appliance.config.base": "appliance.config.base",  # Section, shared validators, units
    **{module: "config sections" for module in SECTIONS},
    "appliance.cli": "composition roots",
    "appliance.component_list": "composition roots",
    "appliance.__main__": "composition roots",
}

#: Units every service may import: the foundations, the configuration and the supervisor.
FOUNDATIONS = {"appliance", "appliance.core.errors", "appliance.system", "appliance.config.base",
               "config sections", "appliance.worklist.keys", "appliance.dicom.values"}
BELOW_SERVICES = FOUNDATIONS | {"appliance.config", "appliance.core", "appliance.store"}

#: unit -> the units it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "hal": set(),  # knows nothing of DICOM nor of appliance/
    "appliance": set(),
    "appliance.core.errors": set(),
    "appliance.worklist.keys": set(),
    "appliance.dicom.values": set(),
    "appliance.system": {"appliance.core.errors"},
    "appliance.config.base": {"appliance.core.errors"},
    "config sections": {"appliance.core.errors", "appliance.config.base",
                        "appliance.worklist.keys", "appliance.dicom.values"},
    "appliance.config": FOUNDATIONS,
    "appliance.core": FOUNDATIONS | {"appliance.config"},
    "appliance.store": FOUNDATIONS | {"appliance.config", "appliance.core"},
    # The services: dicom (the engine and what every SCU and SCP shares) under the others.
    "appliance.dicom": BELOW_SERVICES,
    "appliance.query": BELOW_SERVICES | {"appliance.dicom"},
    "appliance.forward": BELOW_SERVICES | {"appliance.dicom"},
    "appliance.worklist": BELOW_SERVICES | {"appliance.dicom"},
    "appliance.commitment": BELOW_SERVICES | {"appliance.dicom"},
    "appliance.mpps": BELOW_SERVICES | {"appliance.dicom", "appliance.worklist"},
    "appliance.print": BELOW_SERVICES | {"appliance.dicom", "appliance.worklist", "hal"},
    "appliance.dicomweb": BELOW_SERVICES | {"appliance.dicom", "appliance.query"},
    "appliance.update": BELOW_SERVICES,
    # On top: the faces of the box. They see the services through core's provider interfaces
    # or call them directly; no service imports them.
    "appliance.maintenance": BELOW_SERVICES | {"appliance.dicom", "hal"},
    "appliance.web": BELOW_SERVICES | {"appliance.dicom", "appliance.dicomweb",
                                       "appliance.forward", "appliance.print",
                                       "appliance.update"},
    # Where everything is put together: they may import anything.
    "composition roots": {"*"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for pkg in ("appliance", "hal")
           for p in sorted((REPO / pkg).rglob("*.py"))}


def unit_of(module: str) -> str:
    """The longest unit (a module of `UNITS`, or a package with a row in `ALLOWED`) that is
    `module` or holds it."""
    candidate = module
    while True:
        if candidate in UNITS:
            return UNITS[candidate]
        if candidate in ALLOWED and candidate != "appliance":
            return candidate
        if "." not in candidate:
            return candidate
        candidate = candidate.rsplit(".", 1)[0]


def imports_of(module: str) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in `module`'s file, wherever it is."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from package import module` imports that module.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES
                       else source for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module:
                found.append((target, node.lineno))
    return found


def with_packages(graph: dict[str, list[tuple[str, int]]]) -> dict[str, list[tuple[str, int]]]:
    """Importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` first: a package whose
    `__init__` imports something of the project counts as imported by each module inside it
    (line 0)."""
    full = {}
    for module, edges in graph.items():
        parents = []
        package = module.rpartition(".")[0]
        while package:
            if graph.get(package) and package not in {t for t, _ in edges}:
                parents.append((package, 0))
            package = package.rpartition(".")[0]
        full[module] = edges + parents
    return full


DIRECT = {module: imports_of(module) for module in MODULES}
GRAPH = with_packages(DIRECT)


def test_every_unit_has_a_row():
    units = {unit_of(module) for module in MODULES}
    assert units <= set(ALLOWED), f"units without a row in ALLOWED: {sorted(units - set(ALLOWED))}"
    for unit, allowed in ALLOWED.items():
        assert allowed <= set(ALLOWED) | {"*"}, f"{unit} names unknown units"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    unit = unit_of(module)
    allowed = ALLOWED.get(unit, set())
    wrong = []
    for target, line in GRAPH[module]:
        target_unit = unit_of(target)
        if target_unit == unit or "*" in allowed or target_unit in allowed:
            continue
        rule = ", ".join(sorted(allowed)) or "nothing of the project"
        wrong.append(f"{MODULES[module].relative_to(REPO)}:{line} imports {target}: "
                     f"{unit} may import only {rule} (not {target_unit})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    """No cycle of the imports written in the files. Depth-first search for a back edge; the
    failure shows the whole cycle with its lines."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[tuple[str, int]] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        for target, line in DIRECT[module]:
            path.append((module, line))
            if state.get(target) == 1:
                start = next(i for i, (m, _) in enumerate(path) if m == target)
                return [f"{MODULES[m].relative_to(REPO)}:{ln} imports "
                        f"{path[i + 1][0] if i + 1 < len(path) else target}"
                        for i, (m, ln) in enumerate(path) if i >= start]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
            path.pop()
        state[module] = 2
        return None

    for module in sorted(MODULES):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import cycle:\n" + "\n".join(cycle)


def strongly_connected(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target, _ in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_through_a_package_init():
    """With the package `__init__`s that Python runs first, the only loops allowed are a
    package's `__init__` gathering its own modules (which import the package back): a loop that
    leaves the package can meet a half-initialised module, depending on what is imported first."""
    for component in strongly_connected(GRAPH):
        inits = [m for m in component if MODULES[m].name == "__init__.py"]
        gathering = any(all(m == p or m.startswith(p + ".") for m in component) for p in inits)
        assert gathering, (f"import cycle through the __init__ of {', '.join(inits) or '-'}: "
                           f"{', '.join(component)}")
