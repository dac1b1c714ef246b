"""`appliance queue`: the forward queues per destination (counts, oldest pending, last error),
the undelivered instances that have their own error (failed, sent alone, or waiting to retry),
and the operator's actions: hold, release, retry now."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from appliance.config import loader
from appliance.forward.service import QueueService, UnknownDestination, age

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    """The `queue` subcommand's parser (called from appliance.cli.build_parser)."""
    queue = commands.add_parser(
        "queue", parents=[common], help="show the forward queues; hold, release or retry a "
        "destination", description="Show the forward queue of every destination (counts, "
        "oldest pending, last error, undelivered instances with their own error), or hold, "
        "release or retry one destination.")
    queue.add_argument("--json", action="store_true", help="print the queues as JSON")
    actions = queue.add_subparsers(dest="queue_action", metavar="ACTION")
    actions.add_parser("show", parents=[common], help="show every destination (default)")
    for name, text in (("hold", "stop sending to a destination (its queue keeps filling)"),
                       ("release", "resume sending to a held destination"),
                       ("retry", "send failed instances again and skip the backoff wait")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("destination", metavar="NAME", help="peer name of the destination")


def run(args: argparse.Namespace) -> int:
    config = loader.load(args.config).config
    service = QueueService(config)
    try:
        action = args.queue_action or "show"
        if action == "show":
            return show(service, as_json=args.json)
        try:
            if action == "hold":
                service.hold(args.destination)
                print(f"{args.destination}: held (nothing is sent until `appliance queue "
                      f"release {args.destination}`)")
            elif action == "release":
                service.release(args.destination)
                print(f"{args.destination}: released")
            elif action == "retry":
                count = service.retry(args.destination)
                print(f"{args.destination}: retrying now ({count} failed instances queued "
                      "again)")
        except UnknownDestination as exc:
            print(f"appliance: queue {action}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    finally:
        service.close()


def show(service: QueueService, as_json: bool = False) -> int:
    statuses = service.destinations()
    if as_json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
        return EXIT_OK
    if not statuses:
        print("no destinations configured ([[destinations]]) and nothing queued")
        return EXIT_OK
    now = time.time()
    header = ("DESTINATION", "TARGET", "STATE", "PENDING", "FAILED", "DONE", "OLDEST PENDING",
              "LAST ERROR")
    rows = [header]
    for s in statuses:
        if s.held:
            state = "held"
        elif s.next_attempt > now:
            state = f"retry in {age(now, s.next_attempt)}"
        else:
            state = "active" if s.configured else "not configured"
        error = s.last_error or "-"
        if s.last_error_at:
            error = f"{error} ({age(s.last_error_at, now)} ago)"
        rows.append((s.name, s.target, state, str(s.pending), str(s.failed), str(s.done),
                     age(s.oldest_pending_at, now), error))
    _print_table(rows)
    errors = [s for s in statuses if s.instance_errors]
    if errors:
        print()
        print("Undelivered instances with their own error (\"sent alone\": the destination "
              "aborted or timed out on it; it no longer holds up the others):")
        rows = [("DESTINATION", "SOP INSTANCE UID", "STATE", "ATTEMPTS", "NEXT TRY", "ERROR")]
        for s in errors:
            for e in s.instance_errors:
                state = e.state + (", sent alone" if e.isolated else "")
                next_try = ("-" if e.state != "pending" else
                            f"in {age(now, e.next_attempt)}" if e.next_attempt > now else "now")
                rows.append((s.name, e.sop_instance_uid, state, str(e.attempts), next_try,
                             e.error))
            if s.instance_errors_total > len(s.instance_errors):
                rows.append((s.name, f"... and {s.instance_errors_total - len(s.instance_errors)}"
                             " more", "", "", "", ""))
        _print_table(rows)
    return EXIT_OK


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; the last one (free text) is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
               + "  " + row[-1]).rstrip())
