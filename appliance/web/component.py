"""The web page as a supervised component: uvicorn serving the FastAPI app in its own thread.

It binds its socket itself in `start()`, so a busy port is a clear failure that the supervisor
retries with backoff while the DICOM services keep running. A reload that changes the address,
port or HTTPS setting restarts the listener; anything else applies to the next request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

from appliance.config.schema import ApplianceConfig
from appliance.core.component import Component
from appliance.core.errors import ComponentFailure
from appliance.core.providers import Providers
from appliance.core.runtime import Runtime
from appliance.web import system_info
from appliance.web.context import WebContext

if TYPE_CHECKING:
    from fastapi import FastAPI

    from appliance.web.quiet_server import QuietServer

log = logging.getLogger(__name__)


class WebComponent(Component):
    name = "web"

    def __init__(self, config: ApplianceConfig, runtime: Runtime,
                 providers: Providers | None = None):
        self.config = config
        self.context = WebContext(config, runtime, providers)
        self._app: FastAPI | None = None
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._listening: tuple[str, int, bool] | None = None

    @property
    def app(self) -> FastAPI:
        """The FastAPI app, built on first use: FastAPI and the app take ~0.3 s to import,
        which `appliance run` spends after the DICOM port is open (the web page starts last)."""
        if self._app is None:
            from appliance.web.app import create_app
            self._app = create_app(self.context)
        return self._app

    def configure(self, config: ApplianceConfig) -> None:
        self.config = config
        self.context.configure(config)

    def reconfigure(self, config: ApplianceConfig) -> None:
        old = self.config.web
        self.configure(config)
        new = config.web
        if (old.bind, old.port, old.https, old.enabled) != (new.bind, new.port, new.https,
                                                            new.enabled) \
                or (new.https and old.https and
                    self.config.device.data_dir != config.device.data_dir):
            log.info("web page moves to %s", self._url(new))
            self.stop(timeout=5.0)
            self.start()

    def start(self) -> None:
        web = self.config.web
        self.context.attach()
        if not web.enabled:
            return
        family = socket.AF_INET6 if ":" in web.bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((web.bind, web.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ComponentFailure(f"cannot listen on {web.bind}:{web.port}: "
                                   f"{exc.strerror or exc}") from None
        options = {}
        if web.https:
            from appliance.web.tls import ensure_certificate  # cryptography: ~10 MB, only here

            cert, key = ensure_certificate(self.config.device.data_dir, self.config.device.name,
                                           system_info.ip_addresses())
            options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        import uvicorn

        from appliance.web.quiet_server import QuietServer
        app = self.app

        # proxy_headers off: uvicorn would take X-Forwarded-For from 127.0.0.1 by default;
        # only `[web] trusted_proxies` may name a client (security.client_address). ws off:
        # the page has no WebSocket route, and uvicorn would load a WebSocket library.
        config = uvicorn.Config(app, log_config=None, access_log=False,
                                proxy_headers=False, timeout_graceful_shutdown=3,
                                lifespan="off", ws="none", **options)
        server = QuietServer(config)
        thread = threading.Thread(target=self._serve, args=(server, sock), name="web",
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise ComponentFailure(f"web server did not start on {web.bind}:{web.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self._listening = (web.bind, sock.getsockname()[1], web.https)
        log.info("web page at %s", self._url(web))

    @staticmethod
    def _serve(server: QuietServer, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException:  # uvicorn exits with SystemExit on startup errors
            log.exception("web server stopped with an error")
        finally:
            sock.close()

    def stop(self, timeout: float) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._listening = None
        self.context.detach()
        if server is not None:
            server.request_exit()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(2.0)

    def check(self) -> None:
        if self.config.web.enabled and (self._thread is None or not self._thread.is_alive()):
            raise ComponentFailure("web server thread stopped")

    def status(self) -> str:
        if not self.config.web.enabled:
            return "disabled ([web] enabled = false)"
        return self._url(self.config.web)

    @property
    def port(self) -> int:
        return self._listening[1] if self._listening else self.config.web.port

    @staticmethod
    def _url(web) -> str:
        host = f"[{web.bind}]" if ":" in web.bind else web.bind
        return f"{'https' if web.https else 'http'}://{host}:{web.port}/"
