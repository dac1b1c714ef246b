"""The built wheel carries everything `appliance run` needs: the code and the web page's
templates and static files (an editable install hides a missing data file; the image does not)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO


@pytest.mark.timeout(300)
def test_wheel_contains_code_templates_and_static_files(tmp_path):
    # Build from a copy: a stale build/ or egg-info in the work tree would hide a missing file.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "*.egg-info", "__pycache__", ".bench-quick"))
    out = tmp_path / "dist"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "-q", "-w", str(out), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    wheel = next(out.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected_files = [p.relative_to(REPO).as_posix()
                      for folder in ("appliance/web/templates", "appliance/web/static")
                      for p in (REPO / folder).iterdir() if p.is_file()]
    assert expected_files
    missing = [f for f in expected_files if f not in names]
    assert not missing, f"not in the wheel: {missing}"
    for module in ("appliance/cli.py", "appliance/dicom/engine_server.py", "hal/board.py"):
        assert module in names
