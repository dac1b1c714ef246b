"""The runtime handle components use: health snapshot and live reload through the supervisor."""

from __future__ import annotations

from appliance.config import editor
from appliance.config.schema import ApplianceConfig
from appliance.core.events import EventBus
from appliance.core.runtime import Runtime
from appliance.core.supervisor import Supervisor
from tests.core.test_supervisor import Fake, RecordingNotifier


def test_health_lists_every_component_with_state_and_detail():
    bus = EventBus()
    runtime = Runtime(bus)
    sup = Supervisor(ApplianceConfig(), [Fake("a"), Fake("b", essential=True)],
                     notifier=RecordingNotifier(), bus=bus)
    runtime.supervisor = sup
    for slot in sup.slots:
        sup._start(slot, 0.0)
    health = runtime.health()
    assert [(h.name, h.state, h.essential) for h in health] == [
        ("a", "running", False), ("b", "running", True)]
    assert runtime.healthy


def test_a_setting_written_through_the_runtime_is_applied_on_reload(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("")
    bus = EventBus()
    runtime = Runtime(bus, path)
    comp = Fake("c")
    sup = Supervisor(ApplianceConfig(), [comp], config_path=path, notifier=RecordingNotifier(),
                     bus=bus)
    runtime.supervisor = sup
    sup._start(sup.slots[0], 0.0)
    editor.set_value(runtime.config_path_for_writes(), "dicom.ae_title", "PANELSET")
    runtime.request_reload()
    sup.step()
    assert comp.config.dicom.ae_title == "PANELSET"
    assert sup.config.dicom.ae_title == "PANELSET"


def test_components_are_the_supervised_ones_in_start_order_and_none_before_start():
    runtime = Runtime(EventBus())
    assert runtime.components() == () and runtime.health() == []
    first, second = Fake("a"), Fake("b")
    runtime.supervisor = Supervisor(ApplianceConfig(), [first, second],
                                    notifier=RecordingNotifier(), bus=runtime.bus)
    assert runtime.components() == (first, second)
    assert [(h.name, h.state) for h in runtime.health()] == [("a", "stopped"), ("b", "stopped")]
