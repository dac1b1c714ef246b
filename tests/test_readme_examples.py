"""The README's shell examples and the files in docs/examples/, run as written against a real
appliance, so that what a new user copies works.

Convention for README.md (stated there too):

- Every fenced ```sh block is run by `test_readme_examples_work_as_written`, in README order,
  against one `appliance run` started with the development settings the README assumes
  (`make run`: AE title EDGEBOX, DICOM on 127.0.0.1 port 11112).
- A block that cannot run in a test (it builds the project, needs a remote peer, flashes a card,
  calls systemctl...) is excluded by the line just before its fence:
  `<!-- not run by tests/test_readme_examples.py: REASON -->`. Nothing is skipped silently: an
  unmarked block with a command that does not talk to the box fails the test.
- Commands that talk to the box start (after `VAR=value` prefixes) with `echoscu`, `storescu`,
  `findscu`, `appliance` or `.venv/bin/appliance`. The test rewrites `127.0.0.1 11112` and
  `localhost 11112` to 127.0.0.1 and the appliance's free port, runs `appliance` as this
  Python's `-m appliance` with `APPLIANCE_CONFIG` naming the test's configuration, and runs
  each command with bash from a directory that looks like a clone (its `docs/` is this
  repository's), with a timeout. Each must exit 0; a `findscu -W` must print at least one
  answer, and only patients of docs/examples/worklist.json.
- A command naming an IPv4 address outside 127.0.0.0/8 is refused before it runs.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DCMTK_ENV, REPO, free_port

README = REPO / "README.md"
EXAMPLES = REPO / "docs" / "examples"
NOT_RUN = re.compile(r"<!-- not run by tests/test_readme_examples\.py: (\S.*?) -->")
BOX_PROGRAMS = ("echoscu", "storescu", "findscu", "appliance", ".venv/bin/appliance")
README_HOST_PORT = re.compile(r"\b(?:127\.0\.0\.1|localhost)\s+11112\b")
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
ENV_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
COMMAND_TIMEOUT = 60


@dataclass
class ShellBlock:
    line: int                 # line of the opening fence in README.md
    commands: list[str]       # logical command lines (continuations joined)
    not_run_reason: str | None


def shell_blocks(text: str) -> list[ShellBlock]:
    """Every ```sh block of a Markdown text, with its exclusion marker if any."""
    lines = text.splitlines()
    blocks, index = [], 0
    while index < len(lines):
        if lines[index].strip() != "```sh":
            index += 1
            continue
        start = index
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = NOT_RUN.search(previous)
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        blocks.append(ShellBlock(start + 1, logical_commands(body),
                                 marker.group(1) if marker else None))
        index += 1
    return blocks


def logical_commands(body: list[str]) -> list[str]:
    commands, pending = [], ""
    for raw in body:
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        command = (pending + raw).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def program(command: str) -> str:
    words = command.split()
    while words and ENV_PREFIX.fullmatch(words[0]):
        words.pop(0)
    return words[0] if words else ""


def problems_of(block: ShellBlock) -> list[str]:
    """Why an unmarked block cannot be run by this test (empty: it can)."""
    problems = []
    for command in block.commands:
        if program(command) not in BOX_PROGRAMS:
            problems.append(f"README.md line {block.line}: {command!r} does not talk to the box "
                            f"({', '.join(BOX_PROGRAMS)}): mark the block with "
                            "<!-- not run by tests/test_readme_examples.py: REASON -->")
        for address in IPV4.findall(command):
            if not address.startswith("127."):
                problems.append(f"README.md line {block.line}: {command!r} names {address}, "
                                "outside 127.0.0.0/8: mark the block as not run")
    return problems


def rewritten(command: str, port: int) -> str:
    """The command as the test runs it: our port, our Python's appliance."""
    command = README_HOST_PORT.sub(f"127.0.0.1 {port}", command)
    if program(command) not in ("appliance", ".venv/bin/appliance"):
        return command
    appliance = f"{sys.executable} -m appliance"
    return re.sub(r"(^|\s)(?:\.venv/bin/)?appliance(?=\s)", lambda m: m.group(1) + appliance,
                  command, count=1)


def example_patient_ids() -> set[str]:
    items = json.loads((EXAMPLES / "worklist.json").read_text())
    return {item["00100020"]["Value"][0] for item in items}


def found_patient_ids(output: str) -> list[str]:
    return re.findall(r"\(0010,0020\) LO \[([^\]]*)\]", output)


def answers(output: str) -> int:
    return len(re.findall(r"Find Response: \d+ \(Pending\)", output))


def run_command(command: str, cwd: Path, config: Path) -> subprocess.CompletedProcess:
    env = {**DCMTK_ENV, "APPLIANCE_CONFIG": str(config)}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT)


def clone_dir(tmp_path: Path) -> Path:
    """A working directory with this repository's docs/, so files the README names are found
    and anything a command writes stays out of the repository."""
    cwd = tmp_path / "clone"
    cwd.mkdir()
    (cwd / "docs").symlink_to(REPO / "docs")
    return cwd


def test_every_readme_shell_block_is_run_or_marked_with_a_reason():
    blocks = shell_blocks(README.read_text())
    assert blocks, "README.md has no ```sh block"
    problems = [p for block in blocks if block.not_run_reason is None for p in problems_of(block)]
    assert not problems, "\n".join(problems)
    assert any(block.not_run_reason is None for block in blocks)


def test_readme_examples_work_as_written(appliance, tmp_path):
    _, port, config = appliance({"dicom": {"ae_title": "EDGEBOX"}})
    cwd = clone_dir(tmp_path)
    ran = 0
    for block in shell_blocks(README.read_text()):
        if block.not_run_reason is not None:
            continue
        assert not problems_of(block), problems_of(block)
        for command in block.commands:
            result = run_command(rewritten(command, port), cwd, config)
            output = result.stdout + result.stderr
            where = f"README.md line {block.line}: {command}\n{output}"
            assert result.returncode == 0, where
            if program(command) == "findscu" and " -W" in f" {command}":
                assert answers(output) >= 1, f"findscu printed no worklist item: {where}"
                assert set(found_patient_ids(output)) <= example_patient_ids(), where
            ran += 1
    assert ran >= 3


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_example_configuration_passes_config_check(path, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "appliance", "config", "check", str(path)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK" in result.stdout


def test_the_examples_named_by_the_issue_are_shipped():
    for name in ("worklist.json", "worklist.csv", "ct-room.toml", "printer-bridge.toml"):
        assert (EXAMPLES / name).is_file(), name


def test_example_worklist_csv_and_json_hold_the_same_items():
    from appliance.worklist.transfer import parse_csv, parse_json

    csv_text = (EXAMPLES / "worklist.csv").read_text()
    columns = next(csv.reader([csv_text.splitlines()[0]]))
    from_csv = parse_csv(csv_text)
    from_json = parse_json((EXAMPLES / "worklist.json").read_text())
    assert len(from_csv) == len(from_json) == 3
    for a, b in zip(from_csv, from_json, strict=True):
        assert a.key == b.key
        assert {k: a.value(k) for k in columns} == {k: b.value(k) for k in columns}


def example_sections(name: str, tmp_path: Path) -> dict:
    """docs/examples/NAME made safe for a test: 127.0.0.1 and free ports everywhere, simulated
    hardware, a temporary data directory. Nothing else is changed."""
    sections = tomllib.loads((EXAMPLES / name).read_text())
    sections["dicom"].update(port=free_port(), bind="127.0.0.1")
    sections["device"]["data_dir"] = str(tmp_path / "data")
    sections["hal"]["backend"] = "sim"
    sections["web"] = {"bind": "127.0.0.1", "port": free_port()}
    if "hl7" in sections.get("worklist", {}):
        sections["worklist"]["hl7"].update(bind="127.0.0.1", port=free_port())
    for peer in sections.get("peers", []):
        peer.update(host="127.0.0.1", port=free_port())  # nothing listens there
    return sections


def test_ct_room_example_serves_its_scanner_only(appliance, tmp_path):
    _, port, config = appliance(example_sections("ct-room.toml", tmp_path))
    cwd = clone_dir(tmp_path)
    imported = run_command(f"{sys.executable} -m appliance worklist import "
                           "docs/examples/worklist.csv", cwd, config)
    assert imported.returncode == 0, imported.stderr
    assert "3 created" in imported.stdout

    query = ("findscu -W -v -aet {aet} -aec CT3EDGE -k PatientID -k "
             '"ScheduledProcedureStepSequence[0].ScheduledStationAETitle" 127.0.0.1 ' + str(port))
    scanner = run_command(query.format(aet="CT3"), cwd, config)
    assert scanner.returncode == 0, scanner.stderr
    output = scanner.stdout + scanner.stderr
    assert sorted(found_patient_ids(output)) == ["100234", "100567"], output  # not MR1's item

    stranger = run_command(query.format(aet="MR1"), cwd, config)
    assert stranger.returncode != 0
    assert "Association Rejected" in stranger.stdout + stranger.stderr


def test_the_marker_rule_reports_unmarked_blocks_and_honours_marked_ones():
    text = ("```sh\nmake run\n```\n\n"
            "<!-- not run by tests/test_readme_examples.py: starts a whole setup -->\n"
            "```sh\nmake test\n```\n\n"
            "```sh\nTCP_NODELAY=1 findscu -W -v -aec EDGEBOX \\\n  -k PatientID localhost 11112\n"
            "appliance echo 10.1.2.3 104\n```\n")
    first, second, third = shell_blocks(text)
    assert "does not talk to the box" in problems_of(first)[0]
    assert second.not_run_reason == "starts a whole setup"
    assert third.commands[0].endswith("-k PatientID localhost 11112")
    assert rewritten(third.commands[0], 4242).endswith("-k PatientID 127.0.0.1 4242")
    assert ["10.1.2.3" in p for p in problems_of(third)] == [True]
    assert rewritten(third.commands[1], 4242).startswith(f"{sys.executable} -m appliance echo")


def test_printer_bridge_example_answers_its_modality_on_each_printer_title(appliance, tmp_path):
    _, port, _ = appliance(example_sections("printer-bridge.toml", tmp_path))
    for called in ("USPRINT", "USFILM", "USPAPER"):
        result = subprocess.run(["echoscu", "-aet", "US1", "-aec", called, "127.0.0.1",
                                 str(port)], capture_output=True, text=True, env=DCMTK_ENV,
                                timeout=30)
        assert result.returncode == 0, (called, result.stderr)
    stranger = subprocess.run(["echoscu", "-aet", "CT3", "-aec", "USPRINT", "127.0.0.1",
                               str(port)], capture_output=True, text=True, env=DCMTK_ENV,
                              timeout=30)
    assert stranger.returncode != 0
