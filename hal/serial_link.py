"""The serial maintenance link: a pyserial port opened from a URL, that survives unplugging.

`SerialLink` opens `/dev/ttyUSB0`, `/dev/ttyAMA0`, a pty path, `loop://` or `socket://HOST:PORT`
(anything `serial.serial_for_url` takes) at 115200 8N1. When the adapter disappears, reads
and writes raise `SerialLinkError`; `reopen()` tries again, so the console carries on once
the cable is plugged back in.

`LineReader` is the small line discipline a terminal expects from the far end: typed
characters are echoed (or masked, for a PIN), backspace works, CR or LF ends the line.
"""

from __future__ import annotations

import logging
import termios
import threading

import serial

from hal.errors import SerialLinkError

log = logging.getLogger(__name__)

#: What a vanished adapter raises (termios.error comes from tcdrain on a hung-up tty).
GONE = (serial.SerialException, OSError, termios.error)


class SerialLink:
    """One serial port, opened by URL."""

    def __init__(self, url: str, baudrate: int = 115200, read_timeout: float = 0.2):
        self.url = url
        self.baudrate = baudrate
        self.read_timeout = read_timeout
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        """Open the port; raise SerialLinkError saying why it cannot be."""
        self.close()
        try:
            self._port = serial.serial_for_url(
                self.url, baudrate=self.baudrate, bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_ONE,
                timeout=self.read_timeout, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialLinkError(f"cannot open serial port {self.url}: {exc}") from exc

    def reopen(self) -> bool:
        """Try to open again; True when the port is back."""
        try:
            self.open()
        except SerialLinkError:
            return False
        return True

    def read(self, size: int = 256) -> bytes:
        """Bytes received (maybe none, after the read timeout)."""
        port = self._require()
        try:
            waiting = port.in_waiting
            return port.read(max(1, min(size, waiting or 1)))
        except GONE as exc:
            self.close()
            raise SerialLinkError(f"serial port {self.url} went away: {exc}") from exc

    def write(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace")
        port = self._require()
        try:
            with self._write_lock:
                port.write(data)
                port.flush()
        except GONE as exc:
            self.close()
            raise SerialLinkError(f"serial port {self.url} went away: {exc}") from exc

    def _require(self) -> serial.SerialBase:
        port = self._port
        if port is None:
            raise SerialLinkError(f"serial port {self.url} is not open")
        return port

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                log.debug("closing %s failed", self.url, exc_info=True)


class LineReader:
    """Collects typed bytes into lines. `feed(data)` returns (echo bytes, finished lines)."""

    MAX_LINE = 512

    def __init__(self) -> None:
        self.mask = False
        self._buffer = bytearray()
        self._last_cr = False

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        echo = bytearray()
        lines: list[str] = []
        for byte in data:
            if byte == 0x0A and self._last_cr:  # CR LF counts once
                self._last_cr = False
                continue
            self._last_cr = byte == 0x0D
            if byte in (0x0D, 0x0A):
                lines.append(self._buffer.decode("utf-8", "replace"))
                self._buffer.clear()
                echo += b"\r\n"
            elif byte in (0x08, 0x7F):
                if self._buffer:
                    self._buffer.pop()
                    echo += b"\b \b"
            elif byte == 0x15:  # Ctrl-U: forget the line
                echo += b"\b \b" * len(self._buffer)
                self._buffer.clear()
            elif 0x20 <= byte < 0x7F and len(self._buffer) < self.MAX_LINE:
                self._buffer.append(byte)
                echo += b"*" if self.mask else bytes([byte])
        return bytes(echo), lines

    def reset(self) -> None:
        self._buffer.clear()
        self._last_cr = False
