"""`appliance passwd`: set the web page's administrator password from the box's console.

Reads the new password twice from the terminal (or once from standard input with --stdin, for
scripts), stores its scrypt hash in the data directory, and tells a running appliance nothing:
the web page reads the file at every login.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from appliance.config.schema import ApplianceConfig
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK
from appliance.web.passwords import PasswordError, PasswordStore, password_file
from appliance.web.setup_code import setup_code_file

log = logging.getLogger(__name__)


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    passwd = commands.add_parser(
        "passwd", parents=[common], help="set the web page's administrator password",
        description="Set the administrator password of the web page (stored as a scrypt "
                    "hash in the data directory).")
    passwd.add_argument("--stdin", action="store_true",
                        help="read the password from the first line of standard input")


def run(args: argparse.Namespace, config: ApplianceConfig) -> int:
    store = PasswordStore(password_file(config.device.data_dir))
    try:
        if args.stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("New administrator password: ")
            if getpass.getpass("Repeat it: ") != password:
                print("appliance: passwd: the two passwords differ; nothing changed",
                      file=sys.stderr)
                return EXIT_FAILED
        store.set(password)
        setup_code_file(config.device.data_dir).unlink(missing_ok=True)  # no longer needed
    except PasswordError as exc:
        print(f"appliance: passwd: {exc}; nothing changed", file=sys.stderr)
        return EXIT_FAILED
    except (EOFError, OSError) as exc:
        print(f"appliance: passwd: cannot set the password: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"administrator password set ({store.path})")
    return EXIT_OK
