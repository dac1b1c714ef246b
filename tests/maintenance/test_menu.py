"""The panel's menu logic on its own: screens, editors, validation through the one config
path, echo, identify, reboot and factory reset with confirmation, dimming when idle."""

from __future__ import annotations

import time

import pytest

from appliance.config.loader import load_file
from appliance.maintenance.panel_menus import PanelMenu
from tests.maintenance.conftest import wait_until


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def keys(menu: PanelMenu, sequence: str) -> None:
    """u d o b = up down ok back; capitals are long presses."""
    names = {"u": "up", "d": "down", "o": "ok", "b": "back"}
    for key in sequence:
        menu.press(names[key.lower()], long=key.isupper())


def text(menu: PanelMenu) -> list[str]:
    return [line.rstrip() for line in menu.render()[0]]


@pytest.fixture
def panel(maintenance):
    def make(sections=None, cols=16, rows=2, clock=None):
        m = maintenance(sections)
        return PanelMenu(m, cols, rows, idle_seconds=60, clock=clock or Clock()), m
    return make


def test_status_pages(panel):
    menu, m = panel({"dicom": {"ae_title": "CT3EDGE", "port": 104}})
    assert text(menu) == ["CT3EDGE", "Port 104"]
    keys(menu, "d")
    assert text(menu)[0].startswith("IP ") and text(menu)[1] == "DHCP"
    keys(menu, "d")
    assert text(menu) == ["Queue", "storage disabled"]
    keys(menu, "d")
    assert text(menu) == ["Printer", "print disabled"]
    keys(menu, "d")
    assert text(menu) == ["Last error", "none"]
    m.health._component({"name": "storage", "state": "failed", "error": "disk gone"})
    assert text(menu) == ["Last error", "storage: disk go"]  # then it scrolls (see below)
    keys(menu, "b")
    assert text(menu)[0] == "CT3EDGE"


def test_20x4_shows_four_lines(panel):
    menu, _ = panel(cols=20, rows=4)
    lines = text(menu)
    assert lines[0] == "EDGEBOX" and lines[1] == "Port 11112" and lines[2].startswith("IP ")
    assert lines[3] == "OK"


def test_ae_title_edit_with_invalid_blank_title_is_refused(panel):
    menu, m = panel()
    keys(menu, "oo")
    for _ in range(7):  # blank every character: ' ' is one step down from 'A'
        current = menu.screen.chars[menu.screen.pos]
        steps = " ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.".index(current)
        keys(menu, "d" * steps + "o")
    keys(menu, "O")
    assert text(menu) == ["Not saved:", "AE title must"]
    keys(menu, "d")  # scroll the reason
    assert "empty" in " ".join(text(menu))
    assert load_file(m.config_path).dicom.ae_title == "EDGEBOX"
    assert m.runtime.reloads == 0


def test_back_at_the_first_character_cancels(panel):
    menu, m = panel()
    keys(menu, "oouu")
    assert text(menu)[0] == "GDGEBOX"
    keys(menu, "b")
    assert text(menu) == [">AE title", " Port"]
    assert m.runtime.reloads == 0


def test_port_edit_saves_and_reloads(panel):
    menu, m = panel()
    keys(menu, "odo")            # menu, Port, editor at 11112
    keys(menu, "oooo" + "u")     # last digit 2 -> 3
    keys(menu, "o")              # OK on the last digit saves
    wait_until(lambda: text(menu) == ["Port 11113 saved", "applied"])
    assert load_file(m.config_path).dicom.port == 11113
    assert m.runtime.reloads == 1


def test_static_network_from_the_panel(panel):
    menu, m = panel()
    keys(menu, "oddo")           # Network
    assert text(menu) == [">DHCP", " Static address"]
    keys(menu, "do")             # Static: address editor at 192.168.001.010
    assert text(menu)[0] == "192.168.001.010"
    keys(menu, "O")              # keep the address
    assert text(menu)[0] == "255.255.255.000"
    keys(menu, "O")              # keep the netmask
    assert text(menu)[0] == "000.000.000.000"
    keys(menu, "uooo" + "o" * 6 + "oo" + "u")  # gateway 100.000.000.001
    assert text(menu)[0] == "100.000.000.001"
    keys(menu, "o")
    assert text(menu)[0] == "Not saved:"     # 100.0.0.1 is outside 192.168.1.0/24
    assert load_file(m.config_path).network.mode == "dhcp"
    keys(menu, "bodo")           # back to the menu; Network, Static again
    keys(menu, "OO")             # keep address and netmask
    keys(menu, "uo" "do" "uuo" "uo" + "u" * 6 + "o" + "u" * 8 + "o" "o" "o" "uo" "o" "o" "u")
    assert text(menu)[0] == "192.168.001.001"
    keys(menu, "o")              # OK on the last digit saves
    wait_until(lambda: text(menu) == ["Static saved", "applied"])
    net = load_file(m.config_path).network
    assert (net.mode, net.address, net.netmask, net.gateway) == \
        ("static", "192.168.1.10", "255.255.255.0", "192.168.1.1")
    keys(menu, "boo")            # back to the menu, Network, DHCP
    wait_until(lambda: text(menu) == ["DHCP saved", "applied"])
    assert load_file(m.config_path).network.mode == "dhcp"


def test_ip_octet_over_255_is_refused(panel):
    menu, m = panel()
    keys(menu, "oddodo")
    keys(menu, "uuuuuuu")        # 1 -> 8: 892.168.001.010
    keys(menu, "O")
    assert text(menu)[0] == "Not saved:"
    assert "892.168.001.010" in " ".join(menu.wrap(menu.screen.text))


def test_echo_a_peer_from_the_menu(panel, storescp):
    port = storescp("DCMTKSCP")
    menu, _ = panel({"peers": [{"name": "pacs", "ae_title": "DCMTKSCP", "host": "127.0.0.1",
                                "port": port}]})
    keys(menu, "odddo")
    assert text(menu) == [">pacs", ""]
    keys(menu, "o")
    wait_until(lambda: text(menu)[0] != "Echo pacs...")
    assert text(menu)[0] == "Echo pacs OK"
    assert text(menu)[1].endswith(" ms")


def test_echo_failure_is_shown(panel):
    from tests.conftest import free_port
    menu, _ = panel({"peers": [{"name": "gone", "ae_title": "X", "host": "127.0.0.1",
                                "port": free_port()}]})
    keys(menu, "odddoo")
    wait_until(lambda: text(menu)[0] != "Echo gone...")
    assert text(menu)[0] == "Echo gone FAILED"
    assert "refused" in " ".join(menu.wrap(menu.screen.text))


def test_identify(panel):
    menu, m = panel({"hal": {"leds": {"identify_seconds": 12.0}}})
    seen = []
    m.runtime.bus.subscribe(lambda e: seen.append(e.data), "identify")
    keys(menu, "o" + "d" * 4 + "o")
    assert text(menu) == ["Identifying", "for 12 s"]
    assert seen == [{"seconds": 12.0}]


def test_reboot_needs_confirmation_and_is_only_recorded_in_sim(panel):
    menu, m = panel()
    keys(menu, "o" + "d" * 5 + "o")
    assert text(menu) == ["Reboot?", "OK=yes BACK=no"]
    keys(menu, "b")
    assert m.actions.recorded == []
    keys(menu, "oo")
    assert text(menu)[0] == "Rebooting"
    assert m.actions.recorded == ["reboot"]


def test_factory_reset_needs_confirmation(panel):
    menu, m = panel({"dicom": {"ae_title": "CUSTOM"}})
    keys(menu, "o" + "d" * 6 + "o")
    assert text(menu) == ["Factory reset?", "OK=yes BACK=no"]
    keys(menu, "b")
    assert load_file(m.config_path).dicom.ae_title == "CUSTOM"
    keys(menu, "oo")
    assert text(menu)[0] == "Factory reset"
    assert load_file(m.config_path).dicom.ae_title == "EDGEBOX"
    assert m.actions.recorded == ["reboot"]


def test_idle_returns_to_status_and_dims_and_first_press_only_wakes(panel):
    clock = Clock()
    menu, _ = panel(clock=clock)
    keys(menu, "oo")
    clock.now += 59
    menu.tick()
    assert menu.lit and text(menu)[0] == "EDGEBOX"  # still in the editor (shows the title)
    assert menu.render()[1] == (0, 0)
    clock.now += 2
    menu.tick()
    assert not menu.lit and menu.render()[1] is None
    assert text(menu) == ["EDGEBOX", "Port 11112"]
    keys(menu, "o")
    assert menu.lit and text(menu) == ["EDGEBOX", "Port 11112"]
    keys(menu, "o")
    assert text(menu)[0] == ">AE title"


def test_long_back_goes_home_from_anywhere(panel):
    menu, _ = panel()
    keys(menu, "odo")
    keys(menu, "B")
    assert text(menu) == ["EDGEBOX", "Port 11112"]


def test_factory_reset_uses_the_factory_file_when_there_is_one(panel):
    menu, m = panel({"dicom": {"ae_title": "CUSTOM"}})
    m.config_path.with_name("appliance.factory.toml").write_text(
        '[dicom]\nae_title = "FACTORY"\n')
    keys(menu, "o" + "d" * 6 + "oo")
    assert load_file(m.config_path).dicom.ae_title == "FACTORY"
    assert m.runtime.reloads == 1


def covers(frames: list[str], text: str, cols: int = 16) -> bool:
    """Every character of `text` was on the display in its place, and nothing else was."""
    seen = [False] * len(text)
    for frame in frames:
        start = text.find(frame)
        if start < 0:
            return False
        for i in range(start, start + len(frame)):
            seen[i] = True
    return all(seen)


def test_a_long_status_line_scrolls_so_the_whole_text_can_be_read(panel):
    clock = Clock()
    menu, m = panel(clock=clock)
    drawn = []
    menu.on_change = lambda: drawn.append(menu.render()[0][1])
    keys(menu, "dddd")                              # the Last error page
    error = "forward: PACS refused the association"
    m.health._component({"name": "forward", "state": "failed",
                         "error": "PACS refused the association"})
    drawn.clear()
    frames = []
    for _ in range(60):                             # 30 s at 0.5 s a step: more than a round
        frames.append(text(menu)[1])
        clock.now += 0.5
        menu.tick()
    assert frames[0] == error[:16]                   # it starts still, at the beginning
    assert error[-16:] in frames                     # and reaches the end
    assert covers(frames, error)
    assert frames.count(error[:16]) >= 3 * 2         # a pause at the start of each round
    assert drawn and covers(drawn, error)            # tick() redraws when it moves
    keys(menu, "d")                                  # a short page does not redraw
    drawn.clear()
    for _ in range(5):
        clock.now += 0.5
        menu.tick()
    assert drawn == []


def test_known_long_texts_are_shown_in_a_readable_short_form(panel):
    menu, _ = panel()
    keys(menu, "dd")
    assert text(menu) == ["Queue", "storage disabled"]
    keys(menu, "d")
    assert text(menu) == ["Printer", "print disabled"]
    menu20, _ = panel(cols=20, rows=4)
    keys(menu20, "dd")
    assert text(menu20)[:2] == ["Queue", "storage disabled"]


def test_the_real_display_scrolls_a_long_line(board, maintenance):
    from appliance.maintenance.panel_component import FrontPanel
    m = maintenance()
    component = FrontPanel(m.config, board, m)
    component.start()
    try:
        component.menu.scroll_seconds = 0.25          # the panel ticks every 0.25 s
        error = "storage: data partition is not mounted"
        m.health._component({"name": "storage", "state": "failed",
                             "error": "data partition is not mounted"})
        for _ in range(4):
            component.menu.press("down")              # the Last error page
        frames: list[str] = []

        def read_all() -> bool:
            # the driver writes a row one character at a time: a frame counts once it holds
            # still for 30 ms (the panel moves it every 0.25 s), not a half-written one
            line = board.display_model.text[1]
            time.sleep(0.03)
            if board.display_model.text[1] != line:
                return False
            if not frames or frames[-1] != line:
                frames.append(line)
            return covers(frames, error)
        wait_until(read_all, timeout=30, interval=0.02)
        assert board.display_model.text[0].rstrip() == "Last error"
    finally:
        component.stop(5.0)


def test_the_panel_loop_sleeps_until_something_is_due(panel):
    """due_in() tells the panel's thread how long it may sleep: until dimming while lit, until
    the next scroll step while a long line is shown, and for ever once dark and still."""
    clock = Clock()
    menu, m = panel(clock=clock)
    text(menu)
    assert menu.due_in() == 60.0                     # lit: dims after idle_seconds
    clock.now += 61
    menu.tick()
    text(menu)
    assert not menu.lit and menu.due_in() == float("inf")
    keys(menu, "ddddd")                              # wake, then the Last error page
    m.health._component({"name": "forward", "state": "failed",
                         "error": "PACS refused the association"})
    text(menu)
    clock.now += 0.2
    assert abs(menu.due_in() - 0.3) < 1e-9           # the long line's next step
