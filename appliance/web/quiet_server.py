"""uvicorn's server with a quiet idle loop: its housekeeping runs once a second, not ten times.

uvicorn's `Server.main_loop` sleeps 0.1 s between calls of `on_tick`, which refreshes the Date
header once a second and looks at `should_exit`; on an idle box those ten wake-ups a second are
most of the web page's CPU. `QuietServer.main_loop` calls the same `on_tick` once a second
(with the counter uvicorn would have reached, so the Date header is still refreshed every
second) and is woken at once by `request_exit()` from another thread, so stopping is as quick
as before. Only the public methods `main_loop` and `on_tick` are used.
"""

from __future__ import annotations

import asyncio

import uvicorn

#: Seconds between two calls of `on_tick` (uvicorn: 0.1 s, counting ten calls a second).
TICK_SECONDS = 1.0
UVICORN_TICKS_PER_SECOND = 10


class QuietServer(uvicorn.Server):
    """A uvicorn Server whose main loop waits on an event with a one-second timeout."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.quiet_loop: asyncio.AbstractEventLoop | None = None
        self.quiet_wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self.quiet_loop, self.quiet_wake = asyncio.get_running_loop(), asyncio.Event()
        woken = asyncio.ensure_future(self.quiet_wake.wait())  # one waiter for every pass
        try:
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + UVICORN_TICKS_PER_SECOND) % 864000
                await asyncio.wait((woken,), timeout=TICK_SECONDS)
                should_exit = await self.on_tick(counter)
                if woken.done() and not should_exit:  # never spin on a spent waiter
                    self.quiet_wake.clear()
                    woken = asyncio.ensure_future(self.quiet_wake.wait())
        finally:
            woken.cancel()

    def request_exit(self) -> None:
        """Ask the server to stop (any thread): its main loop notices at once."""
        self.should_exit = True
        loop, wake = self.quiet_loop, self.quiet_wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop has already closed
                pass
