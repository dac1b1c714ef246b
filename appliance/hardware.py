"""The hardware-facing components, built on one `hal.board.Board`: status LEDs, front panel,
serial console, and the network settings file. `appliance.components` adds them to the
supervised list.

The board (and so `[hal] backend` and `[hal] pin_factory`) is chosen once per start; every
other `[hal.*]`, `[console]` and `[network]` key is applied live on reload.
"""

from __future__ import annotations

import logging

from appliance.component import Component
from appliance.config.schema import ApplianceConfig
from appliance.console_service import SerialConsole
from appliance.events import EventBus
from appliance.front_panel import FrontPanel
from appliance.indicators import StatusIndicators
from appliance.maintenance import Maintenance, SystemActions
from appliance.network import NetworkSettings
from appliance.runtime import Runtime
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
