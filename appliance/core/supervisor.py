"""The supervisor: starts, watches and restarts the components, and talks to systemd.

One loop in the main thread does everything that is not a component's own work: it checks
each component once a second (five times a second while one is starting or failed), restarts
a failed one with exponential backoff while the others keep running, re-reads the
configuration on SIGHUP and applies it live, sends READY=1 once every essential component is
up, STATUS= lines when the picture changes, and WATCHDOG=1 only while the process is healthy.
SIGTERM and SIGINT stop it gracefully.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.config.loader import load_file
from appliance.config.schema import ApplianceConfig
from appliance.core.backoff import backoff_delay
from appliance.core.component import Component, ComponentState
from appliance.core.errors import ComponentFailure, ConfigError
from appliance.core.event_topics import Topic
from appliance.core.events import EventBus
from appliance.core.running_record import ReloadOutcome, RunningRecord, file_digest
from appliance.system import logging_setup, memory
from appliance.system.systemd_notify import SystemdNotifier

log = logging.getLogger(__name__)

STARTING, RUNNING, FAILED, STOPPED = (ComponentState.STARTING, ComponentState.RUNNING,
                                      ComponentState.FAILED, ComponentState.STOPPED)
STATUS_INTERVAL = 5.0


@dataclass(frozen=True)
class Backoff:
    """Restart delays: `initial`, doubling per consecutive failure, capped at `maximum`.
    A component that has run for `stable_after` seconds has its failure count reset."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    stable_after: float = 60.0

    def delay(self, failures: int) -> float:
        return backoff_delay(failures, self.initial, self.maximum, self.factor)


@dataclass
class ComponentSlot:
    """The supervisor's record of one component."""

    component: Component
    state: ComponentState = STOPPED
    failures: int = 0
    last_error: str = ""
    since: float = 0.0
    down_since: float | None = None
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return self.component.name


@dataclass(frozen=True)
class ComponentHealth:
    """One supervised component as status screens, the web page and metrics show it."""

    name: str
    state: ComponentState
    detail: str
    failures: int
    essential: bool


class Supervisor:
    """Runs a list of components until asked to stop."""

    def __init__(
        self,
        config: ApplianceConfig,
        components: list[Component],
        config_path: Path | None = None,
        notifier: SystemdNotifier | None = None,
        bus: EventBus | None = None,
        backoff: Backoff = Backoff(),
        essential_down_limit: float = 30.0,
        tick: float = 0.2,
        idle_tick: float | None = None,
        stop_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        record: RunningRecord | None = None,
    ):
        self.config = config
        self.config_path = config_path
        self.slots = [ComponentSlot(c) for c in components]
        self.notifier = notifier or SystemdNotifier()
        self.bus = bus or EventBus()
        self.backoff = backoff
        self.essential_down_limit = essential_down_limit
        self.tick = tick
        #: The wait between checks while every component runs (restarts, reloads and stop
        #: wake the loop at once; a pending restart is timed with `tick`).
        self.idle_tick = 5 * tick if idle_tick is None else idle_tick
        self.stop_timeout = stop_timeout
        self.clock = clock
        self.ready = False
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        # Reload tickets for threads that wait for their change to be applied (not signals).
        self._reload_done = threading.Condition()
        self._reload_asked = 0
        self._reload_served = 0
        self.last_reload = ReloadOutcome(True)
        self.record = record
        self._last_status = ""
        self._last_status_at = 0.0
        self._last_states: list[str] = []
        self._next_watchdog = 0.0

    # -- requests (safe from signal handlers and other threads) -----------------------------

    def request_stop(self) -> None:
        self._stop_requested = True
        self._wake.set()

    def request_reload(self) -> int:
        """Ask for a reload from another thread; returns a ticket for `wait_reload`."""
        with self._reload_done:
            self._reload_asked += 1
            ticket = self._reload_asked
        self._on_sighup()
        return ticket

    def _on_sighup(self) -> None:
        # Signal handlers run in the main thread, which may hold the lock: no lock here.
        self._reload_requested = True
        self._wake.set()

    def wait_reload(self, ticket: int, timeout: float,
                    cancelled: Callable[[], bool] = lambda: False) -> ReloadOutcome | None:
        """Wait until the reload that serves `ticket` is done; its outcome, or None when
        `timeout` passed or `cancelled()` became true first."""
        deadline = time.monotonic() + timeout
        with self._reload_done:
            while self._reload_served < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or cancelled() or self._stop_requested:
                    return None
                self._reload_done.wait(min(remaining, 0.1))
            return self.last_reload

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        signal.signal(signal.SIGHUP, lambda *_: self._on_sighup())

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; return the process exit status."""
        log.info("supervisor starting with %d components", len(self.slots))
        now = self.clock()
        for slot in self.slots:
            self._start(slot, now)
        if self.record is not None:
            self.record.started()
        try:
            while not self._stop_requested:
                self.step()
                self._wake.wait(self._next_wait())
                self._wake.clear()
        finally:
            self._shutdown()
            if self.record is not None:
                self.record.stopped()
        return 0

    def _next_wait(self) -> float:
        """`idle_tick` once ready with every component running, else `tick`; never past
        the next WATCHDOG=1."""
        wait = self.tick
        if self.ready and all(slot.state == RUNNING for slot in self.slots):
            wait = self.idle_tick
        if self.notifier.watchdog_interval:
            wait = min(wait, max(self._next_watchdog - self.clock(), 0.0))
        return wait

    def step(self) -> None:
        """One pass of the loop: reload if asked, supervise, report."""
        if self._reload_requested:
            self._reload_requested = False
            with self._reload_done:
                serving = self._reload_asked
            self.reload()
            with self._reload_done:
                self._reload_served = max(self._reload_served, serving)
                self._reload_done.notify_all()
        now = self.clock()
        for slot in self.slots:
            self._supervise(slot, now)
        self._report(now)

    def _supervise(self, slot: ComponentSlot, now: float) -> None:
        if slot.state == RUNNING:
            try:
                slot.component.check()
            except Exception as exc:
                self._fail(slot, exc, now)
                return
            if slot.failures and now - slot.since >= self.backoff.stable_after:
                slot.failures = 0
        elif slot.state == FAILED and slot.restart_at is not None and now >= slot.restart_at:
            log.info("restarting %s (attempt %d)", slot.name, slot.failures + 1)
            self._start(slot, now)

    def _start(self, slot: ComponentSlot, now: float) -> None:
        self._set_state(slot, STARTING, now)
        try:
            slot.component.start()
        except Exception as exc:
            self._fail(slot, exc, now)
            return
        slot.restart_at = None
        slot.down_since = None
        self._set_state(slot, RUNNING, now)
        log.info("%s running: %s", slot.name, slot.component.status())

    def _fail(self, slot: ComponentSlot, exc: BaseException, now: float) -> None:
        slot.failures += 1
        slot.last_error = str(exc) or type(exc).__name__
        delay = self.backoff.delay(slot.failures)
        slot.restart_at = now + delay
        if slot.down_since is None:
            slot.down_since = now
        if isinstance(exc, ComponentFailure):
            log.error("%s failed: %s; restarting in %.1fs", slot.name, slot.last_error, delay)
        else:
            log.error("%s failed: %s; restarting in %.1fs", slot.name, slot.last_error, delay,
                      exc_info=exc)
        try:
            slot.component.stop(timeout=min(self.stop_timeout, 5.0))
        except Exception:
            log.exception("%s: error while stopping after failure", slot.name)
        self._set_state(slot, FAILED, now)

    def _set_state(self, slot: ComponentSlot, state: ComponentState, now: float) -> None:
        slot.state = state
        slot.since = now
        self.bus.publish(Topic.COMPONENT, name=slot.name, state=state, error=slot.last_error,
                         failures=slot.failures)

    # -- health and systemd -----------------------------------------------------------------

    def healthy(self, now: float | None = None) -> bool:
        """False once an essential component has been down longer than the allowed limit."""
        now = self.clock() if now is None else now
        for slot in self.slots:
            if slot.component.essential and slot.state != RUNNING:
                down = slot.down_since
                if down is not None and now - down > self.essential_down_limit:
                    return False
        return True

    def components(self) -> tuple[Component, ...]:
        """The supervised components, in start order (a read-only view of the slots)."""
        return tuple(slot.component for slot in self.slots)

    def health(self) -> list[ComponentHealth]:
        """Every component's state; the detail is its status while running, else its last
        error."""
        return [ComponentHealth(
            name=slot.name, state=slot.state,
            detail=slot.component.status() if slot.state == RUNNING else slot.last_error,
            failures=slot.failures, essential=slot.component.essential)
            for slot in self.slots]

    def status_line(self) -> str:
        parts = []
        for slot in self.slots:
            if slot.state == RUNNING:
                parts.append(f"{slot.name}: {slot.component.status()}")
            elif slot.state == FAILED:
                parts.append(f"{slot.name}: failed ({slot.last_error})")
            else:
                parts.append(f"{slot.name}: {slot.state}")
        degraded = any(slot.state != RUNNING for slot in self.slots)
        return ("degraded; " if degraded else "") + "; ".join(parts)

    def _report(self, now: float) -> None:
        essentials_up = all(s.state == RUNNING for s in self.slots if s.component.essential)
        states = [s.state for s in self.slots]
        if not self.ready and essentials_up:
            status = self.status_line()
            self.ready = True
            log.info("ready: %s", status)
            self.notifier.ready(status)
            memory.release_free_heap()  # what start-up freed, once
            self._last_status = status
            self._last_status_at = now
        elif states != self._last_states or now - self._last_status_at >= STATUS_INTERVAL:
            # A change of state goes out at once; details (free space, counts: some are
            # database queries) are looked at every STATUS_INTERVAL seconds, so a busy box
            # does not flood systemd and an idle one does not count its tables every tick.
            status = self.status_line()
            self._last_status_at = now
            if status != self._last_status:
                self.notifier.status(status)
                self._last_status = status
        self._last_states = states
        interval = self.notifier.watchdog_interval
        if interval and now >= self._next_watchdog:
            if self.healthy(now):
                self.notifier.watchdog()
                self._next_watchdog = now + interval
            else:
                log.error("unhealthy: an essential component is down; "
                          "not feeding the watchdog")
                self._next_watchdog = now + interval

    # -- reload and stop --------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration file and apply it; keep the old one if it is bad.
        The outcome is kept in `last_reload` (and in the running record, for other processes)."""
        text_digest = file_digest(self.config_path)
        outcome = self._reload()
        self.last_reload = outcome
        if self.record is not None:
            self.record.reloaded(outcome, text_digest, self.config_path,
                                 self.config.device.data_dir)
        return outcome.applied

    def _reload(self) -> ReloadOutcome:
        if self.config_path is None:
            log.warning("reload requested, but running on built-in defaults: nothing to re-read")
            return ReloadOutcome(False, "the appliance runs on built-in defaults: no file "
                                        "to re-read")
        self.notifier.reloading()
        try:
            new = load_file(self.config_path)
        except ConfigError as exc:
            for line in exc.problems:
                log.error("reload refused, keeping the running configuration: %s", line)
            self.notifier.reloaded(f"reload refused: {exc.problems[0]}; {self.status_line()}")
            return ReloadOutcome(False, f"reload refused: {exc.problems[0]}")
        self.config = new
        logging_setup.set_level(new.log.level)
        now = self.clock()
        failed = []
        for slot in self.slots:
            if slot.state == RUNNING:
                try:
                    slot.component.reconfigure(new)
                except Exception as exc:
                    self._fail(slot, exc, now)
                    failed.append(f"{slot.name} failed: {slot.last_error}")
            else:
                slot.component.configure(new)
        log.info("configuration reloaded from %s", self.config_path)
        self.notifier.reloaded(self.status_line())
        self._last_status = self.status_line()
        if failed:
            return ReloadOutcome(False, "; ".join(failed))
        return ReloadOutcome(True)

    def _shutdown(self) -> None:
        log.info("stopping")
        self.notifier.stopping()
        now = self.clock()
        for slot in reversed(self.slots):
            if slot.state in (RUNNING, STARTING):
                try:
                    slot.component.stop(timeout=self.stop_timeout)
                except Exception:
                    log.exception("%s: error while stopping", slot.name)
            self._set_state(slot, STOPPED, now)
        log.info("stopped")
