"""`appliance worklist import|export|list|delete`: the command line over `WorklistAdmin`.

These work on the database in the data directory directly, so they work with the appliance
running or stopped (SQLite WAL lets both write).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

log = logging.getLogger(__name__)

# Kept here (and checked equal by the tests) so that building the parser imports no pydicom.
STATUSES = ("SCHEDULED", "IN PROGRESS", "COMPLETED", "EXPIRED", "CANCELLED", "DISCONTINUED")
#: what `list` shows without --all: the items not yet done
ACTIVE = ("SCHEDULED", "IN PROGRESS")
FORMATS = ("json", "csv")


def build(commands, common: argparse.ArgumentParser) -> None:
    worklist = commands.add_parser("worklist", parents=[common],
                                   help="import, export, list or delete worklist items")
    actions = worklist.add_subparsers(dest="worklist_command", metavar="ACTION", required=True)
    imp = actions.add_parser("import", parents=[common],
                             help="add or replace items from a JSON (DICOM JSON) or CSV file")
    imp.add_argument("file", metavar="FILE", help="file to read ('-' for standard input)")
    imp.add_argument("--format", choices=FORMATS, help="default: from the file name")
    exp = actions.add_parser("export", parents=[common], help="write items as JSON or CSV")
    exp.add_argument("file", nargs="?", default="-", metavar="FILE",
                     help="file to write (default: standard output)")
    exp.add_argument("--format", choices=FORMATS, help="default: from the file name, else json")
    exp.add_argument("--status", action="append", choices=STATUSES,
                     help="items in this state (repeatable; default SCHEDULED)")
    lst = actions.add_parser("list", parents=[common], help="show items, one per line "
                             "(scheduled and in progress)")
    lst.add_argument("--all", action="store_true", help="also completed, expired, cancelled "
                     "and discontinued items")
    dele = actions.add_parser("delete", parents=[common], help="delete items")
    dele.add_argument("ids", nargs="*", type=int, metavar="ID", help="item IDs (from `list`)")
    dele.add_argument("--accession", help="every item with this accession number")
    dele.add_argument("--patient-id", help="every item of this patient ID")
    dele.add_argument("--all", action="store_true", help="every item")


def run(args: argparse.Namespace, config: ApplianceConfig) -> int:
    from appliance.worklist.store import WorklistStore
    from appliance.worklist.transfer import WorklistAdmin

    admin = WorklistAdmin(WorklistStore.in_data_dir(config.device.data_dir))
    try:
        return _ACTIONS[args.worklist_command](args, admin)
    except (ApplianceError, OSError) as exc:
        print(f"appliance: worklist {args.worklist_command}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _format(args: argparse.Namespace, default: str | None) -> str:
    if args.format:
        return args.format
    suffix = Path(args.file).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if default is None:
        raise _Usage(f"cannot tell the format of {args.file!r}: give --format json or csv")
    return default


class _Usage(ApplianceError, ValueError):
    pass


def _import(args, admin) -> int:
    try:
        fmt = _format(args, None)
    except _Usage as exc:
        print(f"appliance: worklist import: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.file == "-":
        result = admin.import_stream(sys.stdin, fmt)
    else:
        with open(args.file, encoding="utf-8-sig", newline="") as stream:
            result = admin.import_stream(stream, fmt)
    print(f"{args.file}: {result}")
    for line in result.details():
        print(f"{args.file}: {line}")
    return EXIT_OK


def _export(args, admin) -> int:
    text = admin.export_text(_format(args, "json"), args.status)
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"{args.file}: {len(admin.items(args.status))} items written", file=sys.stderr)
    return EXIT_OK


def _list(args, admin) -> int:
    from appliance.worklist.transfer import describe

    rows = admin.items(list(STATUSES if args.all else ACTIVE))
    for row in rows:
        print(describe(row))
    print(f"{len(rows)} items", file=sys.stderr)
    return EXIT_OK


def _delete(args, admin) -> int:
    if not (args.ids or args.accession or args.patient_id or args.all):
        print("appliance: worklist delete: say which items: ID..., --accession, --patient-id "
              "or --all", file=sys.stderr)
        return EXIT_USAGE
    count = admin.delete(args.ids, args.accession, args.patient_id, args.all)
    print(f"{count} items deleted")
    return EXIT_OK if count else EXIT_FAILED


_ACTIONS = {"import": _import, "export": _export, "list": _list, "delete": _delete}
