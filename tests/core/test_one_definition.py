"""Ideas written once: the command line's exit codes (core/exit_codes.py), the backoff
formula (core/backoff.py) and the DIMSE status categories (dicom/dimse_status.py) — each
defined in one module and used by the others, never written again."""

from __future__ import annotations

import ast

import pytest

from appliance.core.backoff import backoff_delay
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from appliance.core.supervisor import Backoff
from appliance.dicom.dimse_status import is_pending, is_success_or_warning, is_warning
from tests.conftest import REPO

MODULES = sorted(p for pkg in ("appliance", "hal") for p in (REPO / pkg).rglob("*.py"))


def test_exit_codes_are_assigned_only_in_their_module():
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE) == (0, 1, 2)
    elsewhere = []
    for path in MODULES:
        if path == REPO / "appliance/core/exit_codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            if any(name.startswith("EXIT_") for name in names):
                elsewhere.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert elsewhere == []


def test_one_backoff_for_the_supervisor_and_the_queues():
    assert [backoff_delay(n, 5, 60) for n in range(0, 7)] == [5, 5, 10, 20, 40, 60, 60]
    backoff = Backoff(initial=0.5, factor=3.0, maximum=10.0)
    assert [backoff.delay(n) for n in range(1, 5)] == [0.5, 1.5, 4.5, 10.0]


@pytest.mark.parametrize(("code", "pending", "warning", "done"), [
    (0x0000, False, False, True),
    (0xFF00, True, False, False),
    (0xFF01, True, False, False),
    (0x0001, False, True, True),
    (0x0107, False, True, True),
    (0x0116, False, True, True),
    (0xB000, False, True, True),
    (0xB60A, False, True, True),
    (0x0110, False, False, False),
    (0xA700, False, False, False),
    (0xC000, False, False, False),
    (0xFE00, False, False, False),
])
def test_dimse_status_categories(code, pending, warning, done):
    assert (is_pending(code), is_warning(code), is_success_or_warning(code)) == \
        (pending, warning, done)
