"""[hal] (with [hal.leds] and [hal.panel]), [console] and [network]: the hardware backend and
its pins, the serial maintenance console, and the box's address.

Declared beside the maintenance face that drives the hardware (hal/ itself imports nothing of
appliance/); `appliance/config/schema.py` composes it into `ApplianceConfig`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from appliance.config.base import (
    SECONDS,
    Section,
    check_between,
    check_name,
    positive_seconds,
)


def check_gpio_pin(value: int) -> int:
    if not 2 <= value <= 27:
        raise ValueError(f"must be a BCM GPIO number from 2 to 27, got {value}")
    return value


def check_optional_gpio_pin(value: int) -> int:
    return value if value == 0 else check_gpio_pin(value)


GpioPin = Annotated[int, AfterValidator(check_gpio_pin)]


class LedsConfig(Section):
    """[hal.leds]: the status LEDs (BCM GPIO numbers); patterns are in the README."""

    enabled: bool = Field(True, title="Status LEDs", description="Drive the status LEDs")
    power: GpioPin = Field(17, title="Power LED pin", description="Power/ready LED (GPIO)")
    activity: GpioPin = Field(27, title="Activity LED pin",
                              description="DICOM activity LED (GPIO)")
    fault: GpioPin = Field(22, title="Fault LED pin", description="Warning/fault LED (GPIO)")
    active_high: bool = Field(True, title="Active high",
                              description="LED lit when the pin is high")
    identify_seconds: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        30.0, title="Identify blink time", json_schema_extra=SECONDS,
        description="How long 'identify' blinks the LEDs")


class PanelConfig(Section):
    """[hal.panel]: the front panel's four buttons and its HD44780 character display."""

    enabled: bool = Field(True, title="Front panel", description="Run the front panel")
    button_up: GpioPin = Field(5, title="Up button pin", description="GPIO of the Up button")
    button_down: GpioPin = Field(6, title="Down button pin",
                                 description="GPIO of the Down button")
    button_ok: GpioPin = Field(13, title="OK button pin", description="GPIO of the OK button")
    button_back: GpioPin = Field(19, title="Back button pin",
                                 description="GPIO of the Back button")
    debounce: Annotated[float, AfterValidator(positive_seconds(1))] = Field(
        0.05, title="Debounce time", json_schema_extra=SECONDS,
        description="Contact bounce shorter than this is ignored")
    long_press: Annotated[float, AfterValidator(positive_seconds(10))] = Field(
        1.0, title="Long press", json_schema_extra=SECONDS,
        description="Held this long, a press is a long press (OK: save)")
    display: Literal["hd44780-gpio", "hd44780-i2c", "none"] = Field(
        "hd44780-gpio", title="Display", description="How the character display is wired")
    size: Literal["16x2", "20x4"] = Field("16x2", title="Display size",
                                          description="Characters x rows of the display")
    lcd_rs: GpioPin = Field(26, title="Display RS pin", description="GPIO of the display's RS")
    lcd_e: GpioPin = Field(21, title="Display E pin", description="GPIO of the display's E")
    lcd_d4: GpioPin = Field(20, title="Display D4 pin", description="GPIO of the display's D4")
    lcd_d5: GpioPin = Field(16, title="Display D5 pin", description="GPIO of the display's D5")
    lcd_d6: GpioPin = Field(12, title="Display D6 pin", description="GPIO of the display's D6")
    lcd_d7: GpioPin = Field(25, title="Display D7 pin", description="GPIO of the display's D7")
    lcd_backlight: Annotated[int, AfterValidator(check_optional_gpio_pin)] = Field(
        24, title="Backlight pin", description="Backlight switch pin; 0 = not wired (always "
        "lit)")
    i2c_bus: Annotated[int, AfterValidator(check_between(0, 15))] = Field(
        1, title="I2C bus", description="I2C bus number of an hd44780-i2c display")
    i2c_address: Annotated[int, AfterValidator(check_between(0x20, 0x3F))] = Field(
        0x27, title="I2C address", description="I2C address of an hd44780-i2c display "
        "(0x20 to 0x3F, written in decimal: 39 = 0x27)")
    idle_seconds: Annotated[float, AfterValidator(positive_seconds(3600))] = Field(
        60.0, title="Dim after", json_schema_extra=SECONDS,
        description="Dim and return to the status screen after this long untouched")

    def pins(self) -> dict[str, int]:
        """Every GPIO the panel uses, by key."""
        keys = ["button_up", "button_down", "button_ok", "button_back"]
        if self.display == "hd44780-gpio":
            keys += ["lcd_rs", "lcd_e", "lcd_d4", "lcd_d5", "lcd_d6", "lcd_d7", "lcd_backlight"]
        return {k: getattr(self, k) for k in keys if getattr(self, k)}


class HalConfig(Section):
    """[hal]: which hardware backend drives LEDs, panel, serial link and printers."""

    backend: Literal["sim", "pi"] = Field(
        "sim", title="Hardware backend",
        description="'sim' for simulated hardware, 'pi' for the real board"
    )
    pin_factory: Literal["lgpio", "rpigpio", "pigpio", "native"] = Field(
        "lgpio", title="GPIO library", description="gpiozero pin factory of the 'pi' backend")
    leds: LedsConfig = Field(default_factory=LedsConfig, title="Status LEDs")
    panel: PanelConfig = Field(default_factory=PanelConfig, title="Front panel")

    @model_validator(mode="after")
    def _pins_used_once(self) -> HalConfig:
        used: dict[int, str] = {}
        pins = {f"panel.{k}": v for k, v in self.panel.pins().items()} if self.panel.enabled \
            else {}
        if self.leds.enabled:
            pins.update({f"leds.{k}": getattr(self.leds, k)
                         for k in ("power", "activity", "fault")})
        for key, pin in pins.items():
            if pin in used:
                raise ValueError(f"GPIO {pin} is used twice ({used[pin]} and {key})")
            used[pin] = key
        return self


def check_baudrate(value: int) -> int:
    if value not in (9600, 19200, 38400, 57600, 115200):
        raise ValueError(f"must be 9600, 19200, 38400, 57600 or 115200, got {value}")
    return value


def check_pin_code(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if text and not re.fullmatch(r"[0-9]{4,12}", text):
        raise ValueError("PIN must be 4 to 12 digits")
    return value


class ConsoleConfig(Section):
    """[console]: the serial maintenance console."""

    url: str = Field("", title="Serial port",
                     description="Serial port or pyserial URL; empty = no console")
    baudrate: Annotated[int, AfterValidator(check_baudrate)] = Field(
        115200, title="Speed", json_schema_extra={"unit": "baud"},
        description="Serial speed: 9600, 19200, 38400, 57600 or 115200")
    pin: Annotated[SecretStr, AfterValidator(check_pin_code)] = Field(
        SecretStr(""), title="PIN", description="PIN asked before any command (required "
        "with url)")
    idle_logout: Annotated[float, AfterValidator(positive_seconds(86400))] = Field(
        600.0, title="Log out after", json_schema_extra=SECONDS,
        description="A console session idle this long is logged out")

    @model_validator(mode="after")
    def _pin_with_url(self) -> ConsoleConfig:
        if self.url and not self.pin.get_secret_value():
            raise ValueError("a PIN (console.pin, 4 to 12 digits) is required when "
                             "console.url is set")
        return self


def check_ipv4(value: str) -> str:
    if value:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"must be an IPv4 address such as 192.168.1.10, got {value!r}") \
                from None
    return value


IPv4 = Annotated[str, AfterValidator(check_ipv4)]


class NetworkConfig(Section):
    """[network]: the box's address, written as a systemd-networkd .network file."""

    interface: Annotated[str, AfterValidator(check_name)] = Field(
        "eth0", title="Interface", description="Network interface the settings apply to")
    mode: Literal["dhcp", "static"] = Field(
        "dhcp", title="Addressing", description="dhcp: address from the network's DHCP "
        "server; static: the address below")
    address: IPv4 = Field("", title="Address", description="Static IPv4 address")
    netmask: IPv4 = Field("", title="Netmask", description="Static netmask such as "
                          "255.255.255.0")
    gateway: IPv4 = Field("", title="Gateway", description="Default gateway (empty: none)")
    dns: list[IPv4] = Field(default_factory=list, title="DNS servers",
                            description="Name servers to use")

    @field_validator("netmask")
    @classmethod
    def _contiguous(cls, value: str) -> str:
        if value:
            try:
                ipaddress.IPv4Network(f"0.0.0.0/{value}")
            except ValueError:
                raise ValueError(f"{value} is not a netmask such as 255.255.255.0") from None
        return value

    @model_validator(mode="after")
    def _static_complete(self) -> NetworkConfig:
        if self.mode == "static":
            if not self.address or not self.netmask:
                raise ValueError('mode "static" needs network.address and network.netmask')
            net = ipaddress.IPv4Interface(f"{self.address}/{self.netmask}").network
            if self.gateway and ipaddress.IPv4Address(self.gateway) not in net:
                raise ValueError(f"gateway {self.gateway} is not in {net}")
        return self
