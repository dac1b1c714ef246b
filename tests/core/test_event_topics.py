"""The event bus's declared contract (appliance/core/event_topics.py): read from the source,
every topic something reads has a publisher and every publish names declared fields; the bus
refuses events that break the declaration; README lists every topic."""

from __future__ import annotations

import ast
import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from appliance.core.component import ComponentState
from appliance.core.errors import EventContractError
from appliance.core.event_topics import PAYLOADS, DiskEvent, Topic, fields_of
from appliance.core.events import EventBus
from appliance.core.runtime import ComponentHealth

ROOT = Path(__file__).resolve().parents[2]
#: The declaration and the bus name topics without publishing or reading them.
CONTRACT = {"appliance/core/event_topics.py", "appliance/core/events.py"}


@dataclass
class Survey:
    published: dict[Topic, list[str]] = field(default_factory=lambda: defaultdict(list))
    read: dict[Topic, list[str]] = field(default_factory=lambda: defaultdict(list))
    problems: list[str] = field(default_factory=list)

    @property
    def unpublished(self) -> dict[Topic, list[str]]:
        """Topics read (subscribed to, compared with) that nothing publishes."""
        return {t: where for t, where in self.read.items() if t not in self.published}


def topic_named(node: ast.AST, where: str, survey: Survey) -> Topic | None:
    """The Topic of a `Topic.X` expression (None for any other expression)."""
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "Topic"):
        if node.attr not in Topic.__members__:
            survey.problems.append(f"{where}: Topic.{node.attr} is not declared")
            return None
        return Topic[node.attr]
    return None


def check_fields(topic: Topic, call: ast.Call, where: str, survey: Survey) -> None:
    names, required, _ = fields_of(topic)
    given = {k.arg for k in call.keywords if k.arg is not None}
    spread = any(k.arg is None for k in call.keywords)  # **data: checked when published
    survey.problems += [f"{where}: {topic} has no field {n!r}" for n in sorted(given - names)]
    if not spread:
        survey.problems += [f"{where}: {topic} without its field {n!r}"
                            for n in sorted(required - given)]


def survey_sources(sources: dict[str, str]) -> Survey:
    """Where each topic is published and read in `sources` (path -> Python source).

    A `.publish(Topic.X, ...)` call publishes X; every other `Topic.X` reads it (a
    `subscribe`, a subscriber's `event.topic == Topic.X`, HealthView's topic list). A topic
    given as anything but `Topic.X`, or a `.topic` compared with a plain string, is a problem:
    the survey could not see it."""
    survey = Survey()
    for path, text in sources.items():
        if path in CONTRACT:
            continue
        tree = ast.parse(text, path)
        publishing: set[int] = set()
        for node in ast.walk(tree):
            where = f"{path}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("publish", "subscribe"):
                if node.func.attr == "publish":
                    arg = node.args[0] if node.args else None
                else:
                    arg = node.args[1] if len(node.args) > 1 else next(
                        (k.value for k in node.keywords if k.arg == "topic"), None)
                    if arg is None:
                        continue  # every topic (web/activity.py): its comparisons are read
                topic = topic_named(arg, where, survey) if arg is not None else None
                if topic is None:
                    survey.problems.append(f"{where}: {node.func.attr} with a topic that is "
                                           f"not Topic.X: {ast.unparse(arg) if arg else ''}")
                elif node.func.attr == "publish":
                    survey.published[topic].append(where)
                    publishing.add(id(arg))
                    check_fields(topic, node, where, survey)
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(isinstance(s, ast.Attribute) and s.attr == "topic" for s in sides) and \
                        any(isinstance(s, ast.Constant) and isinstance(s.value, str)
                            for s in sides):
                    survey.problems.append(f"{where}: a topic compared with a plain string")
        for node in ast.walk(tree):
            topic = topic_named(node, path, Survey())  # its problems were noted above
            if topic is not None and id(node) not in publishing:
                survey.read[topic].append(f"{path}:{node.lineno}")
    return survey


def appliance_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text()
            for p in sorted((ROOT / "appliance").rglob("*.py"))}


def test_every_topic_something_reads_has_a_publisher():
    survey = survey_sources(appliance_sources())
    assert not survey.problems, "\n".join(survey.problems)
    assert not survey.unpublished, f"subscribed but never published: {survey.unpublished}"
    # the survey sees what is there: the LEDs' topics and their publishers
    assert "appliance/core/health.py" in " ".join(survey.read[Topic.DISK])
    assert "appliance/core/data_dir.py" in " ".join(survey.published[Topic.DISK])
    assert "appliance/core/supervisor.py" in " ".join(survey.published[Topic.COMPONENT])


def test_the_survey_finds_a_subscriber_without_publisher_and_bad_calls():
    survey = survey_sources({
        "a.py": "bus.subscribe(on_disk, Topic.DISK)\n"
                "bus.subscribe(on_queue, topic=Topic.QUEUE)\n"
                "if event.topic == 'storage': pass\n",
        "b.py": "bus.publish(Topic.QUEUE, destination='x', pending=1)\n"
                "bus.publish('identify', seconds=1)\n"
                "bus.publish(Topic.DISK_FULL)\n"
                "bus.publish(Topic.IDENTIFY, seconds=1, colour='red')\n",
    })
    assert set(survey.unpublished) == {Topic.DISK}
    assert survey.problems == [
        "a.py:3: a topic compared with a plain string",
        "b.py:1: queue without its field 'backlog'",
        "b.py:2: publish with a topic that is not Topic.X: 'identify'",
        "b.py:3: Topic.DISK_FULL is not declared",
        "b.py:3: publish with a topic that is not Topic.X: Topic.DISK_FULL",
        "b.py:4: identify has no field 'colour'",
    ]


def test_every_topic_has_a_payload_declaration_and_readme_lists_it():
    assert set(PAYLOADS) == set(Topic)
    readme = (ROOT / "README.md").read_text()
    missing = [t.value for t in Topic if f"`{t.value}`" not in readme]
    assert not missing, f"README does not list the topics {missing}"


@pytest.mark.parametrize("topic, data, problem", [
    ("disk_full", {}, "unknown event topic 'disk_full'"),
    (Topic.DISK, {"state": "high"}, "disk: missing field 'free_bytes'"),
    (Topic.DISK, {"state": "high", "free_bytes": 1, "colour": "red"},
     "disk: unknown field 'colour'"),
    (Topic.DISK, {"state": "almost", "free_bytes": 1},
     "disk: state = 'almost' is not one of ok, high, full"),
    (Topic.COMPONENT, {"name": "x", "state": "sleeping", "error": "", "failures": 0},
     "component: state = 'sleeping' is not one of starting, running, failed, stopped"),
])
def test_a_strict_bus_refuses_an_event_that_breaks_the_contract(topic, data, problem):
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    with pytest.raises(EventContractError) as refused:
        bus.publish(topic, **data)
    assert problem in str(refused.value)
    assert seen == []


def test_a_strict_bus_refuses_to_subscribe_to_an_unknown_topic():
    with pytest.raises(EventContractError, match="unknown event topic 'disks'"):
        EventBus().subscribe(print, "disks")


def test_the_running_appliance_bus_logs_a_broken_contract_and_delivers(caplog):
    bus = EventBus(strict=False)
    seen = []
    bus.subscribe(seen.append, Topic.DISK)
    with caplog.at_level(logging.ERROR, logger="appliance.core.events"):
        bus.publish("disk", state="high")
    assert [e.data for e in seen] == [{"state": "high"}]
    assert "event contract broken: disk: missing field 'free_bytes'" in caplog.text


def test_an_event_gives_its_payload_as_the_declared_dataclass():
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append, "disk")  # a plain string names the same declared topic
    bus.publish(Topic.DISK, state="full", free_bytes=5)
    assert seen[0].topic is Topic.DISK and seen[0].data == {"state": "full", "free_bytes": 5}
    assert seen[0].payload == DiskEvent(state="full", free_bytes=5)


def test_component_states_read_and_serialise_as_before():
    health = ComponentHealth("dicom", ComponentState.RUNNING, "ok", 0, True)
    assert json.loads(json.dumps(asdict(health)))["state"] == "running"
    assert f"{ComponentState.FAILED}" == str(ComponentState.FAILED) == "failed"
    assert [s.value for s in ComponentState] == ["starting", "running", "failed", "stopped"]
