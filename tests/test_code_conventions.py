"""House rules that keep the code readable: a docstring on every module, module loggers only,
no logging configuration in library code, `hal` independent of `appliance` and of DICOM, small
files."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

MODULES = sorted(p for pkg in ("appliance", "hal") for p in (REPO / pkg).rglob("*.py"))
# Entry points may configure logging; libraries may not.
ENTRY_POINTS = {"appliance/cli.py", "appliance/system/logging_setup.py", "appliance/__main__.py"}


def rel(path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_module_has_a_docstring(path):
    assert ast.get_docstring(ast.parse(path.read_text())), f"{rel(path)} needs a docstring"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_module_logs_only_through_its_own_logger(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "logging":
                if node.func.attr == "getLogger" and node.args:
                    arg = node.args[0]
                    named = isinstance(arg, ast.Name) and arg.id == "__name__"
                    # Reading a dependency's own logger (to quieten or listen to it) is fine.
                    library = isinstance(arg, ast.Constant) and str(arg.value).startswith(
                        "pynetdicom")
                    assert named or library or rel(path) in ENTRY_POINTS, \
                        f"{rel(path)}:{node.lineno}: use logging.getLogger(__name__)"
                if node.func.attr in ("basicConfig", "root"):
                    assert rel(path) in ENTRY_POINTS, \
                        f"{rel(path)}:{node.lineno}: libraries never configure logging"


#: hal/ is hardware only: the DICOM printer drivers live in the print service.
NOT_IN_HAL = ("appliance", "pydicom", "pynetdicom")


@pytest.mark.parametrize("path", sorted((REPO / "hal").rglob("*.py")), ids=rel)
def test_hal_never_imports_appliance(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(n.split(".")[0] in NOT_IN_HAL for n in names), f"{rel(path)}: {names}"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_module_stays_small(path):
    assert len(path.read_text().splitlines()) <= 600, f"{rel(path)} is over 600 lines: split it"
