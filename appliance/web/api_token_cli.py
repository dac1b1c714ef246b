"""`appliance api-token create NAME | list | revoke NAME`: the API tokens that give programs
read-only access to the web server (DICOMweb under /dicom-web/, GET /api/v1/...).

`create` prints the new token once, on standard output alone (for scripts); only its hash is
kept. A running appliance sees a change at its next request.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from appliance.config.schema import ApplianceConfig
from appliance.core.errors import ApplianceError
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from appliance.web.api_tokens import ApiTokens, TokenError

log = logging.getLogger(__name__)


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    tokens = commands.add_parser(
        "api-token", parents=[common], help="create, list or revoke API tokens (read-only "
        "access to DICOMweb and the JSON API)",
        description="API tokens for programs: sent as `Authorization: Bearer TOKEN`, they "
                    "allow GET requests to /dicom-web/ and /api/v1/.")
    actions = tokens.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", parents=[common],
                                help="make a new token and print it (once)")
    create.add_argument("name", metavar="NAME")
    actions.add_parser("list", parents=[common], help="the tokens' names and last use")
    revoke = actions.add_parser("revoke", parents=[common], help="delete a token")
    revoke.add_argument("name", metavar="NAME")


def _when(seconds: float | None) -> str:
    return "never" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S",
                                                          time.localtime(seconds))


def run(args: argparse.Namespace, config: ApplianceConfig) -> int:
    tokens = ApiTokens(config.device.data_dir)
    try:
        if args.token_command == "create":
            print(tokens.create(args.name))
            print(f"API token {args.name!r} created; it is shown only this once",
                  file=sys.stderr)
        elif args.token_command == "list":
            entries = tokens.entries()
            if not entries:
                print("no API tokens")
            for entry in entries:
                print(f"{entry.name}\tcreated {_when(entry.created_at)}\t"
                      f"last used {_when(entry.last_used_at)}")
        else:
            tokens.revoke(args.name)
            print(f"API token {args.name!r} revoked")
    except TokenError as exc:
        print(f"appliance: api-token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ApplianceError, OSError) as exc:
        print(f"appliance: api-token: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        tokens.close()
    return EXIT_OK
