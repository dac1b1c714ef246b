"""The HL7 v2 listener: MLLP over TCP (the `hl7` package's asyncio streams), one ACK per
message, orders applied through `OrderFeeder`.

The listener runs its own asyncio loop in a thread. A bad message (unparseable, wrong type or
version, missing segments) is answered and logged; bytes outside an MLLP block are skipped;
neither stops the listener or the connection. Its resources are bounded by `[worklist.hl7]`:
`allowed_hosts`, `max_connections` and `max_connections_per_host` (a refused connection is
closed at once, see `hl7_gate`), `idle_timeout` (a connection without a complete message, or
not reading its ACK, for that long is closed) and `max_message_kb` (a longer message gets an
AR and the connection is closed; at most twice that is ever buffered per connection).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import hl7.mllp

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.worklist.config import WorklistHl7Config
from appliance.worklist.hl7_acks import acknowledgement
from appliance.worklist.hl7_gate import ConnectionGate
from appliance.worklist.hl7_orders import OrderFeeder
from appliance.worklist.scp import WorklistService

log = logging.getLogger(__name__)

BLOCK_START = b"\x0b"
BLOCK_END = b"\x1c\r"
HEAD_BYTES = 4096  # of an oversized message: enough for its MSH, to answer it
CLOSE_GRACE = 5.0  # seconds a closing connection may take to send its last ACK


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
        self._connections: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self.gate = ConnectionGate([], 1, 1)
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
        # one worker applies every message in arrival order: one store connection, one thread
        loop.set_default_executor(ThreadPoolExecutor(1, thread_name_prefix="worklist-hl7-apply"))
        thread = threading.Thread(target=loop.run_forever, name="worklist-hl7", daemon=True)
        thread.start()
        s = self.settings
        self.feeder = OrderFeeder(self.service.store, s.field_map)
        self.gate = ConnectionGate(s.allowed_hosts, s.max_connections, s.max_connections_per_host)
        try:
            server = asyncio.run_coroutine_threadsafe(
                hl7.mllp.start_hl7_server(self._client, s.bind, s.port,
                                          limit=s.max_message_kb * 1024),
                loop).result(10)
        except Exception as exc:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            raise ComponentFailure(f"cannot listen for HL7 on {s.bind}:{s.port}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from exc
        self._loop, self._server, self._thread = loop, server, thread
        log.info("HL7 MLLP listener on %s:%d", s.bind, self.port)

    def stop(self, timeout: float) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        self._loop = self._server = self._thread = None
        if loop is None:
            return
        async def close():
            server.close()
            tasks = list(self._connections.values())
            for writer in list(self._connections):
                writer.transport.abort()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)
            await asyncio.wait_for(server.wait_closed(), timeout)
        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout + 1)
        except Exception as exc:
            log.debug("HL7 listener close: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def check(self) -> None:
        if self.settings.enabled and (self._thread is None or not self._thread.is_alive()):
            raise ComponentFailure("HL7 listener thread stopped")

    def status(self) -> str:
        if not self.settings.enabled:
            return "disabled"
        return (f"MLLP on {self.settings.bind}:{self.port}, {self.received} messages, "
                f"{self.accepted} accepted, {self.gate.total} connections open, "
                f"{self.gate.refused} refused")

    async def _client(self, reader: hl7.mllp.HL7StreamReader,
                      writer: hl7.mllp.HL7StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        gate = self.gate
        if gate.admit(host) is not None:
            writer.transport.abort()  # at once: a flood must not hold descriptors
            return
        self._connections[writer] = asyncio.current_task()
        try:
            await self._converse(reader, writer, peer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("HL7 connection from %s failed", peer)
        finally:
            self._connections.pop(writer, None)
            gate.release(host)
            await _close(writer)

    async def _converse(self, reader: hl7.mllp.HL7StreamReader,
                        writer: hl7.mllp.HL7StreamWriter, peer) -> None:
        """Answer each message until the peer closes, goes idle or sends too much."""
        loop = asyncio.get_running_loop()
        idle = self.settings.idle_timeout
        while True:
            try:
                data = await asyncio.wait_for(reader.readuntil(BLOCK_END), idle)
            except TimeoutError:
                log.info("HL7 from %s: closed after %g s without a complete message", peer, idle)
                return
            except asyncio.LimitOverrunError:
                await self._refuse_oversized(reader, writer, peer)
                return
            start = data.find(BLOCK_START)
            if start != 0:
                log.warning("HL7 from %s: %d bytes outside an MLLP block skipped", peer,
                            len(data) if start < 0 else start)
                if start < 0:
                    continue
            text, codec = decode(data[start + 1:-len(BLOCK_END)])
            self.received += 1
            ack, outcome = await loop.run_in_executor(None, self.feeder.handle_text, text)
            if outcome.code == "AA":
                self.accepted += 1
                log.info("HL7 from %s: %s", peer, outcome.text)
            else:
                log.warning("HL7 from %s answered %s: %s", peer, outcome.code, outcome.text)
            await self._send(writer, ack.encode(codec, "replace"))

    async def _refuse_oversized(self, reader: hl7.mllp.HL7StreamReader,
                                writer: hl7.mllp.HL7StreamWriter, peer) -> None:
        """AR for a message over `max_message_kb`, answered from its first bytes; the caller
        closes the connection (the rest of the message is never read)."""
        head = await reader.read(HEAD_BYTES)  # already buffered
        start = head.find(BLOCK_START)
        text, codec = decode(head[start + 1:] if start >= 0 else head)
        self.received += 1
        reason = (f"message over the size limit of {self.settings.max_message_kb} KiB "
                  "([worklist.hl7] max_message_kb); connection closed")
        log.warning("HL7 from %s answered AR: %s", peer, reason)
        ack = acknowledgement(text, "AR", reason)
        await self._send(writer, ack.encode(codec, "replace"))

    async def _send(self, writer: hl7.mllp.HL7StreamWriter, data: bytes) -> None:
        writer.writeblock(data)
        # a peer that does not read its ACKs is idle too
        await asyncio.wait_for(writer.drain(), self.settings.idle_timeout)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE)
    except Exception:  # unsent data to a peer that does not read, or a reset: drop it
        writer.transport.abort()
