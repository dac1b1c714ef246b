"""The HL7 v2 listener: MLLP over TCP (the `hl7` package's asyncio streams), one ACK per
message, orders applied through `OrderFeeder`.

The listener runs its own asyncio loop in a thread. A bad message (unparseable, wrong type or
version, missing segments, broken framing) is answered (or skipped, when the frame itself is
broken) and logged; it never stops the listener or the connection.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import hl7.mllp

from appliance.component import Component
from appliance.config.schema import ApplianceConfig, WorklistHl7Config
from appliance.errors import ComponentFailure
from appliance.worklist.hl7_orders import OrderFeeder
from appliance.worklist.scp import WorklistService

log = logging.getLogger(__name__)

MAX_MESSAGE = 1 << 20


def decode(block: bytes) -> tuple[str, str]:
    """(text, codec): the charset named in MSH-18, else UTF-8 when valid, else Latin-1."""
    head = block[:400].split(b"\r", 1)[0]
    fields = head.split(b"|")
    named = fields[17].decode("ascii", "replace").upper() if len(fields) > 17 else ""
    if "8859/1" in named:
        codec = "latin-1"
    elif "UTF" in named or "UNICODE" in named:
        codec = "utf-8"
    else:
        try:
            return block.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            codec = "latin-1"
    return block.decode(codec, "replace"), codec


class Hl7Listener(Component):
    """MLLP server for ORM^O01 / OMI^O23 (idle when `[worklist.hl7] enabled = false`)."""

    name = "worklist-hl7"

    def __init__(self, config: ApplianceConfig, service: WorklistService):
        self.service = service
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self.received = self.accepted = 0
        self.configure(config)

    def configure(self, config: ApplianceConfig) -> None:
        self.settings: WorklistHl7Config = config.worklist.hl7

    def reconfigure(self, config: ApplianceConfig) -> None:
        old = self.settings
        self.configure(config)
        if self.settings != old:
            self.stop(timeout=5.0)
            self.start()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.settings.port
        return self._server.sockets[0].getsockname()[1]

    def start(self) -> None:
        if not self.settings.enabled:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="worklist-hl7", daemon=True)
        thread.start()
        s = self.settings
        try:
            server = asyncio.run_coroutine_threadsafe(
                hl7.mllp.start_hl7_server(self._client, s.bind, s.port, limit=MAX_MESSAGE),
                loop).result(10)
        except Exception as exc:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            raise ComponentFailure(f"cannot listen for HL7 on {s.bind}:{s.port}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from exc
        self._loop, self._server, self._thread = loop, server, thread
        self.feeder = OrderFeeder(self.service.store, s.field_map)
        log.info("HL7 MLLP listener on %s:%d", s.bind, self.port)

    def stop(self, timeout: float) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        self._loop = self._server = self._thread = None
        if loop is None:
            return
        async def close():
            server.close()
            await asyncio.wait_for(server.wait_closed(), timeout)
        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout + 1)
        except Exception as exc:
            log.debug("HL7 listener close: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()

    def check(self) -> None:
        if self.settings.enabled and (self._thread is None or not self._thread.is_alive()):
            raise ComponentFailure("HL7 listener thread stopped")

    def status(self) -> str:
        if not self.settings.enabled:
            return "disabled"
        return (f"MLLP on {self.settings.bind}:{self.port}, {self.received} messages, "
                f"{self.accepted} accepted")

    async def _client(self, reader: hl7.mllp.HL7StreamReader,
                      writer: hl7.mllp.HL7StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    block = await reader.readblock()
                except hl7.mllp.InvalidBlockError:
                    log.warning("HL7 from %s: data outside an MLLP block skipped", peer)
                    continue
                except ValueError as exc:  # over the size limit
                    log.warning("HL7 from %s: message refused: %s", peer, exc)
                    continue
                text, codec = decode(block)
                self.received += 1
                ack, outcome = await loop.run_in_executor(None, self.feeder.handle_text, text)
                if outcome.code == "AA":
                    self.accepted += 1
                    log.info("HL7 from %s: %s", peer, outcome.text)
                else:
                    log.warning("HL7 from %s answered %s: %s", peer, outcome.code, outcome.text)
                writer.writeblock(ack.encode(codec, "replace"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("HL7 connection from %s failed", peer)
        finally:
            writer.close()
