"""The issue's panel test: pressing the button pins of a running appliance walks the menus and
changes the AE title; DCMTK's echoscu then succeeds with the new title (and is refused with the
old one). The display is read back by decoding its pin sequences."""

from __future__ import annotations

from appliance.config.loader import load_file
from tests.conftest import echoscu
from tests.maintenance.conftest import press, wait_until

UP, DOWN, OK, BACK = 5, 6, 13, 19
LONG = 0.2


def screen(app) -> list[str]:
    return [row.rstrip() for row in app.board.display_model.text]


def test_buttons_change_the_ae_title_and_echo_succeeds_with_it(in_process_appliance):
    app = in_process_appliance({"hal": {"panel": {"long_press": LONG}}})
    board = app.board
    assert echoscu(app.port, called="EDGEBOX").returncode == 0
    wait_until(lambda: screen(app) == ["EDGEBOX", f"Port {app.port}"])

    press(board, OK)                       # status -> menu
    assert screen(app) == [">AE title", " Port"]
    press(board, OK)                       # AE title editor, cursor on the first character
    assert screen(app)[0] == "EDGEBOX"
    assert board.display_model.cursor == (0, 0)
    for _ in range(6):                     # move to the 'X'
        press(board, OK)
    assert board.display_model.cursor == (0, 6)
    press(board, UP)                       # X -> Y
    assert screen(app)[0] == "EDGEBOY"
    press(board, OK, hold=LONG + 0.25)     # long press OK: save
    wait_until(lambda: screen(app)[0] == "AE title saved")

    assert load_file(app.config_path).dicom.ae_title == "EDGEBOY"
    wait_until(lambda: echoscu(app.port, called="EDGEBOY").returncode == 0, timeout=10)
    refused = echoscu(app.port, called="EDGEBOX")
    assert refused.returncode != 0

    press(board, BACK)                     # message -> menu
    press(board, BACK, hold=LONG + 0.25)   # long back: home, showing the new title
    wait_until(lambda: screen(app)[0] == "EDGEBOY")


def test_an_invalid_port_is_refused_on_the_screen_and_nothing_is_written(in_process_appliance):
    app = in_process_appliance({"hal": {"panel": {"long_press": LONG}}})
    board = app.board
    before = app.config_path.read_text()
    press(board, OK)
    press(board, DOWN)                     # Port
    press(board, OK)
    digits = f"{app.port:05d}"
    for index, digit in enumerate(digits):  # turn every digit to 0
        for _ in range(int(digit)):
            press(board, DOWN)
        if index < 4:
            press(board, OK)
    assert screen(app)[0] == "00000"
    press(board, OK)                       # OK on the last digit saves
    wait_until(lambda: screen(app)[0] == "Not saved:")
    assert screen(app)[1].startswith("port must be")
    assert app.config_path.read_text() == before
    assert echoscu(app.port).returncode == 0


def test_a_box_without_web_password_shows_its_setup_code_first(in_process_appliance):
    from appliance.web.setup_code import setup_code_file

    app = in_process_appliance({"hal": {"panel": {"long_press": LONG}}}, web_password=False)
    code = setup_code_file(app.component("web").config.device.data_dir).read_text().strip()
    wait_until(lambda: screen(app) == ["Setup code", code])
    press(app.board, DOWN)                 # the usual status pages follow
    assert screen(app) == ["EDGEBOX", f"Port {app.port}"]
    assert f"web setup code: {code}" in app.component("console").maintenance.status_lines()
