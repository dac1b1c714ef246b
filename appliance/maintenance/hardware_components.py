"""The hardware-facing components, built on one `hal.board.Board`: status LEDs, front panel,
serial console, and the network settings file. `appliance.component_list` adds them to the
supervised list.

The board (and so `[hal] backend` and `[hal] pin_factory`) is chosen once per start; every
other `[hal.*]`, `[console]` and `[network]` key is applied live on reload.
"""

from __future__ import annotations

import logging

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.events import EventBus
from appliance.core.runtime import Runtime
from appliance.maintenance.actions import Maintenance, SystemActions
from appliance.maintenance.console_component import SerialConsole
from appliance.maintenance.led_signals import StatusIndicators
from appliance.maintenance.networkd import NetworkSettings
from appliance.maintenance.panel_component import FrontPanel
from hal.board import Board, BoardSpec

log = logging.getLogger(__name__)


def build_board(config: ApplianceConfig) -> Board:
    return Board(BoardSpec(backend=config.hal.backend, pin_factory=config.hal.pin_factory))


def hardware_components(config: ApplianceConfig, bus: EventBus, runtime: Runtime,
                        board: Board | None = None,
                        actions: SystemActions | None = None) -> list[Component]:
    board = board or build_board(config)
    actions = actions or SystemActions(simulated=board.simulated)
    health = runtime.health_view  # the web page's verdict line reads the same picture
    maintenance = Maintenance(config, runtime, health, actions)
    return [
        NetworkSettings(config, actions),
        StatusIndicators(config, board, health),
        FrontPanel(config, board, maintenance),
        SerialConsole(config, board, maintenance),
    ]
