"""`appliance tls create-csr`: the command line over tls_request.py. It only reads the options,
finds the default paths in the data directory and prints what was written and what to do next.

Exit status as everywhere: 0 written, 1 nothing written (a key already there, a directory that
cannot be written), 2 bad usage (the option and the value named).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from appliance.config.schema import ApplianceConfig
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from appliance.dicom.tls_files import KEY_TYPES, request_csr_path, request_key_path

log = logging.getLogger(__name__)


def add_parser(commands, common: argparse.ArgumentParser) -> None:
    tls = commands.add_parser("tls", parents=[common], help="DICOM TLS key material: a key "
                              "and a certificate request for the hospital's CA")
    actions = tls.add_subparsers(dest="tls_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create-csr", parents=[common],
        help="write a new private key and a certificate signing request (CSR)",
        description="Write a new private key (mode 0600) and a certificate signing request "
                    "signed with SHA-256, to send to the hospital's CA. Nothing is replaced "
                    "without --force.")
    create.add_argument("--key", metavar="PATH", help="the private key to write (default: "
                        "DATA_DIR/dicom/tls/request-key.pem)")
    create.add_argument("--csr", metavar="PATH", help="the request to write (default: "
                        "DATA_DIR/dicom/tls/request.csr)")
    create.add_argument("--common-name", metavar="NAME", help="the subject's CN (default: "
                        "this machine's host name); also a subjectAltName when it is a host "
                        "name or an IP address")
    create.add_argument("--organization", metavar="NAME", help="the subject's O")
    create.add_argument("--organizational-unit", metavar="NAME", help="the subject's OU")
    create.add_argument("--country", metavar="CC", help="the subject's C (two letters)")
    create.add_argument("--dns", metavar="NAME", action="append", default=[],
                        help="a DNS name for subjectAltName (repeatable)")
    create.add_argument("--ip", metavar="ADDRESS", action="append", default=[],
                        help="an IP address for subjectAltName (repeatable)")
    create.add_argument("--key-type", choices=list(KEY_TYPES), default="rsa",
                        help="rsa (2048 bits, the default) or ec (P-256)")
    create.add_argument("--force", action="store_true",
                        help="replace an existing key and request (the old key is lost)")


def run(args: argparse.Namespace, config: ApplianceConfig) -> int:
    # cryptography (~2 MB) only for this command, not in every `appliance run` (issue 14)
    from appliance.dicom.tls_request import (
        RequestInputError,
        RequestWriteError,
        create_request,
        request_details,
    )

    log.parent.addHandler(logging.NullHandler())  # our own lines say what happened
    data_dir = config.device.data_dir
    key_path = args.key or request_key_path(data_dir)
    csr_path = args.csr or request_csr_path(data_dir)
    common_name = args.common_name if args.common_name is not None else socket.gethostname()
    try:
        details = request_details(common_name, args.organization, args.organizational_unit,
                                  args.country, args.dns, args.ip)
        written = create_request(key_path, csr_path, details, args.key_type, args.force)
    except RequestInputError as exc:
        hint = " (give --common-name)" if exc.option == "--common-name" and \
            args.common_name is None else ""
        print(f"appliance: tls create-csr: {exc}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except RequestWriteError as exc:
        print(f"appliance: tls create-csr: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"private key: {written.key_path} ({KEY_TYPES[written.key_type]}, mode 0600, "
          "keep it on the box)")
    print(f"request:     {written.csr_path} (SHA-256)")
    print(f"subject:     {written.details.subject().rfc4514_string()}")
    print(f"alt names:   {written.details.describe_alt_names()}")
    print(f"next: send {written.csr_path.name} to the hospital's CA; then upload the "
          "certificate it issues on the web page, or set [dicom.tls] certificate to its file "
          f"and private_key = \"{written.key_path}\"")
    return EXIT_OK
