"""`appliance queue`: the forward queues per destination (counts, oldest pending, last error),
the undelivered instances that have their own error (failed, sent alone, or waiting to retry),
and the operator's actions: hold, release, retry now; per destination (`appliance queue NAME`)
its stuck instances (`--instances`) and retry or skip of one (`--retry-instance UID`,
`--skip-instance UID`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from appliance.config import loader
from appliance.core.exit_codes import EXIT_OK, EXIT_USAGE
from appliance.forward.service import QueueService, UnknownDestination, UnknownInstance, age

log = logging.getLogger(__name__)


ACTIONS = ("show", "hold", "release", "retry")


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    """The `queue` subcommand's parser (called from appliance.cli.build_parser)."""
    queue = commands.add_parser(
        "queue", parents=[common], help="show the forward queues; hold, release or retry a "
        "destination; list, retry or skip its stuck instances",
        usage="appliance queue [show | hold NAME | release NAME | retry NAME] [--json]\n"
              "       appliance queue NAME [--instances | --retry-instance UID | "
              "--skip-instance UID] [--json]",
        description="Show the forward queue of every destination (counts, oldest pending, "
        "last error, undelivered instances with their own error); hold, release or retry one "
        "destination (hold NAME, release NAME, retry NAME: stop sending, resume, send failed "
        "instances again and skip the backoff wait); or, with a destination NAME, list its "
        "stuck instances (--instances: tried and still waiting, or failed, with patient, "
        "study, attempts and each one's own error), send one again now (--retry-instance) or "
        "give one up for that destination (--skip-instance).")
    queue.add_argument("words", nargs="*", metavar="ACTION|NAME",
                       help="show (default), hold NAME, release NAME, retry NAME, or a "
                            "destination NAME")
    queue.add_argument("--json", action="store_true", help="print the queues as JSON")
    one = queue.add_mutually_exclusive_group()
    one.add_argument("--instances", action="store_true",
                     help="list the destination's stuck instances (the oldest 100)")
    one.add_argument("--retry-instance", metavar="UID",
                     help="send this SOP Instance UID to the destination again now")
    one.add_argument("--skip-instance", metavar="UID",
                     help="give this SOP Instance UID up for the destination (marked failed, "
                          "not sent; `retry NAME` brings it back)")


def run(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words and words[0] in ACTIONS:
        action, names = words[0], words[1:]
    elif words:
        action, names = "instances", words
    else:
        action, names = "show", []
    wanted = 0 if action == "show" else 1
    if len(names) != wanted:
        usage = "appliance queue show" if not wanted else (
            f"appliance queue {action} NAME" if action != "instances" else
            "appliance queue NAME [--instances | --retry-instance UID | --skip-instance UID]")
        print(f"appliance: queue: usage: {usage}", file=sys.stderr)
        return EXIT_USAGE
    per_instance = args.instances or args.retry_instance or args.skip_instance
    if per_instance and action != "instances":
        print("appliance: queue: --instances, --retry-instance and --skip-instance go with a "
              "destination NAME alone (appliance queue NAME --instances)", file=sys.stderr)
        return EXIT_USAGE
    config = loader.load(args.config).config
    service = QueueService(config)
    try:
        if action == "show":
            return show(service, as_json=args.json)
        name = names[0]
        try:
            if action == "hold":
                service.hold(name)
                print(f"{name}: held (nothing is sent until `appliance queue release {name}`)")
            elif action == "release":
                service.release(name)
                print(f"{name}: released")
            elif action == "retry":
                count = service.retry(name)
                print(f"{name}: retrying now ({count} failed instances queued again)")
            elif args.retry_instance:
                service.retry_instance(name, args.retry_instance)
                print(f"{name}: {args.retry_instance} is sent again now")
            elif args.skip_instance:
                service.skip_instance(name, args.skip_instance)
                print(f"{name}: {args.skip_instance} skipped (marked failed, not sent; "
                      f"`appliance queue retry {name}` brings it back)")
            else:
                return show_instances(service, name, as_json=args.json)
        except (UnknownDestination, UnknownInstance) as exc:
            print(f"appliance: queue: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    finally:
        service.close()


def show_instances(service: QueueService, name: str, as_json: bool = False) -> int:
    rows, total = service.instances(name)
    if as_json:
        print(json.dumps({"destination": name, "total": total,
                          "instances": [r.as_dict() for r in rows]}, indent=2))
        return EXIT_OK
    if not rows:
        print(f"{name}: no stuck instances (nothing tried and still waiting, nothing failed)")
        return EXIT_OK
    now = time.time()
    table = [("PATIENT", "STUDY", "SOP INSTANCE UID", "STATE", "ATTEMPTS", "NEXT TRY", "ERROR")]
    for r in rows:
        patient = " ".join(p for p in (r.patient_name, f"({r.patient_id})" if r.patient_id
                                       else "") if p) or "-"
        state = r.state + (", sent alone" if r.isolated else "")
        next_try = ("-" if r.state != "pending" else
                    f"in {age(now, r.next_attempt)}" if r.next_attempt > now else "now")
        table.append((patient, r.study or "-", r.sop_instance_uid, state, str(r.attempts),
                      next_try, r.error or "-"))
    _print_table(table)
    if total > len(rows):
        print(f"... and {total - len(rows)} more (the oldest {len(rows)} shown)")
    return EXIT_OK


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
