"""The web page's uvicorn server when idle: its housekeeping (Date header, should_exit) once a
second, not ten times, a fresh Date header still, and a stop that is noticed at once."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from email.utils import parsedate_to_datetime

import httpx
import uvicorn

from appliance.web.quiet_server import QuietServer


async def hello(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Counted(QuietServer):
    def __init__(self, config):
        super().__init__(config)
        self.ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


def test_idle_server_ticks_once_a_second_and_stops_when_asked():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    server = Counted(uvicorn.Config(hello, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    started_ticks = server.ticks
    time.sleep(2.5)
    ticks = server.ticks - started_ticks
    assert 1 <= ticks <= 4                           # uvicorn's own loop: about 25
    first = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    time.sleep(2.2)
    second = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert first.text == "ok"
    assert parsedate_to_datetime(second.headers["date"]) > \
        parsedate_to_datetime(first.headers["date"])  # the Date header moves on
    server.request_exit()
    thread.join(10)
    assert not thread.is_alive()
    sock.close()
