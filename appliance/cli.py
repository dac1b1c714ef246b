"""The `appliance` command line: run the supervisor, read and change the configuration,
test a DICOM peer, and the other maintenance commands (each in its own package's cli module).

Exit status: 0 success, 1 the operation failed (e.g. a peer did not answer), 2 bad usage or a
refused configuration. Errors are one line each on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from appliance import __version__
from appliance.config import editor, loader, migrations
from appliance.core.errors import ConfigError
from appliance.core.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from appliance.system import logging_setup

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the subcommand; SUPPRESS keeps a value given
    # before the subcommand from being overwritten by the subparser's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="configuration file (default: $APPLIANCE_CONFIG, then "
                             "/data/config/appliance.toml, then var/config/appliance.toml, "
                             "then built-in defaults)")

    parser = argparse.ArgumentParser(
        prog="appliance", parents=[common],
        description="DICOM Edge Appliance: run the services, manage the configuration, "
                    "test peers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("run", parents=[common], help="start the appliance (the supervisor)")

    config = commands.add_parser("config", parents=[common], help="show, check or change the "
                                 "configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION",
                                            required=True)
    config_commands.add_parser("show", parents=[common],
                               help="print the effective configuration (secrets masked)")
    check = config_commands.add_parser("check", parents=[common],
                                       help="validate a configuration file")
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="file to check (default: the configuration in use)")
    set_ = config_commands.add_parser("set", parents=[common],
                                      help="change one value, validated and written atomically")
    set_.add_argument("key", metavar="KEY", help="e.g. dicom.ae_title or peers[0].port")
    set_.add_argument("value", metavar="VALUE")

    from appliance.forward import cli as queue_cli
    queue_cli.add_parser(commands, common)

    echo = commands.add_parser(
        "echo", parents=[common], help="send a C-ECHO to a configured peer or to HOST PORT",
        description="Send a C-ECHO. Give the NAME of a configured peer, or HOST PORT.")
    echo.add_argument("target", nargs="+", metavar="NAME | HOST PORT")
    echo.add_argument("--aet", help="called AE title for HOST PORT (default: ANY-SCP)")
    echo.add_argument("--calling-aet", help="our AE title in the request (default: "
                      "[dicom] ae_title)")
    echo.add_argument("--tls", action="store_true",
                      help="over DICOM TLS with [dicom.tls] certificate, private_key and "
                      "ca_certificates (a peer with `tls = true` always is)")
    echo.add_argument("--timeout", type=float, default=10.0,
                      help="seconds to wait for each step (default: 10)")
    from appliance.worklist import cli_commands as worklist_cli
    worklist_cli.build(commands, common)
    commands.add_parser("panel", parents=[common], help="use the front panel's menus in this "
                        "terminal (keys for the buttons)")
    from appliance.web import passwd as passwd_cli
    passwd_cli.add_parser(commands, common)
    from appliance.web import api_token_cli
    api_token_cli.add_parser(commands, common)
    from appliance.update import cli as update_cli
    update_cli.add_parser(commands, common)
    from appliance.dicom import tls_cli
    tls_cli.add_parser(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "config":
            return {"show": cmd_config_show, "check": cmd_config_check,
                    "set": cmd_config_set}[args.config_command](args)
        if args.command == "echo":
            return cmd_echo(args, parser)
        if args.command == "queue":
            from appliance.forward import cli as queue_cli
            return queue_cli.run(args)
        if args.command == "passwd":
            from appliance.web import passwd as passwd_cli
            return passwd_cli.run(args, loader.load(args.config).config)
        if args.command == "api-token":
            from appliance.web import api_token_cli
            return api_token_cli.run(args, loader.load(args.config).config)
        if args.command == "panel":
            from appliance.maintenance import panel_terminal
            return panel_terminal.run(args.config)
        if args.command == "worklist":
            from appliance.worklist import cli_commands as worklist_cli
            return worklist_cli.run(args, loader.load(args.config).config)
        if args.command == "update":
            from appliance.update import cli as update_cli
            return update_cli.run(args)
        if args.command == "tls":
            from appliance.dicom import tls_cli
            return tls_cli.run(args, loader.load(args.config).config)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"appliance: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    # pydicom imports `requests` only to download its test data, which the appliance never
    # does; not loading it keeps ~5 MB out of the running process (docs/benchmarks.md).
    sys.modules.setdefault("requests", None)
    from appliance.component_list import build_components
    from appliance.core.events import EventBus
    from appliance.core.running_record import RunningRecord
    from appliance.core.runtime import Runtime
    from appliance.core.supervisor import Supervisor

    loaded = loader.load(args.config)
    logging_setup.configure(loaded.config.log.level)
    log.info("appliance %s starting with configuration from %s", __version__, loaded.source)
    bus = EventBus(strict=False)  # a broken event contract is logged, never fatal
    runtime = Runtime(bus, loaded.path)
    supervisor = Supervisor(loaded.config, build_components(loaded.config, bus, runtime),
                            config_path=loaded.path, bus=bus,
                            record=RunningRecord(loaded.config.device.data_dir, loaded.path))
    runtime.supervisor = supervisor
    supervisor.install_signal_handlers()
    return supervisor.run()


def cmd_config_show(args: argparse.Namespace) -> int:
    loaded = loader.load(args.config)
    print(f"# effective configuration, from {loaded.source}")
    for note in loaded.notes():
        print(f"# {note}")
    print(f"schema_version = {migrations.CURRENT}\n")
    print(editor.render(loaded.config), end="")
    return EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    if args.file:
        path = Path(args.file)
        inspected = loader.inspect_file(path)
        config, notes = inspected.config, inspected.notes()
    else:
        loaded = loader.load(args.config)
        path, config, notes = loaded.path, loaded.config, loaded.notes()
    check_key_material(config, path)
    for note in notes:
        print(f"{path}: {note}")
    print(f"{path or 'built-in defaults'}: OK")
    return EXIT_OK


def check_key_material(config, path: Path | None) -> None:
    """The files the configuration names for DICOM TLS, and a DICOMweb peer's
    `ca_certificates` and `token_file`, are usable now (ConfigError: the key, the file and
    the reason)."""
    check_dicomweb_files(config, path)
    tls = config.dicom.tls
    tls_peers = [peer.name for peer in config.peers if peer.tls]
    if not tls.enabled and not tls_peers:
        return
    from appliance.dicom.tls_files import TlsFileError, check_tls_files

    try:
        check_tls_files(tls.certificate, tls.private_key,
                        (tls.ca_certificates or None) if not tls_peers else tls.ca_certificates)
    except TlsFileError as exc:
        users = (["the TLS listener"] if tls.enabled else []) + \
            [f"peer {name}" for name in tls_peers]
        raise ConfigError([f"{path or 'built-in defaults'}: dicom.tls: {exc} (used by "
                           f"{', '.join(users)})"]) from None


def check_dicomweb_files(config, path: Path | None) -> None:
    """Each DICOMweb peer's `ca_certificates` and `token_file` can be read (ConfigError: the
    key, the file and the reason)."""
    peers = [(index, peer) for index, peer in enumerate(config.peers) if peer.is_dicomweb]
    if not peers:
        return
    from appliance.dicom.dicomweb_peer import peer_files

    problems = [f"{path or 'built-in defaults'}: peers[{index}].{key}: {reason}"
                for index, peer in peers for key, reason in peer_files(peer)]
    if problems:
        raise ConfigError(problems)


def cmd_config_set(args: argparse.Namespace) -> int:
    from appliance.config.schema import ApplianceConfig
    from appliance.core.running_record import reload_running

    path, _ = loader.locate(args.config)
    if path is None:
        path = loader.DEV_CONFIG
    # The running appliance is found in the data directory of the settings before the change.
    before = loader.load_file(path) if path.exists() else ApplianceConfig()
    data_dir = before.device.data_dir
    editor.set_value(path, args.key, args.value)
    outcome = reload_running(path, data_dir)
    if outcome.applied:
        print(f"{path}: {args.key} set and applied by the running appliance")
        return EXIT_OK
    # Saved with no appliance running is a normal offline change; a running appliance that
    # did not take it is a failure the caller must see.
    print(f"{path}: {args.key} saved; {outcome.describe()}",
          file=sys.stdout if outcome.none_running else sys.stderr)
    return EXIT_OK if outcome.none_running else EXIT_FAILED


def _echo_dicomweb(peer, timeout: float) -> int:
    """`appliance echo NAME` for a DICOMweb peer: one QIDO-RS query."""
    from appliance.dicom.dicomweb_peer import qido_echo

    if timeout <= 0:
        print("appliance: echo: --timeout must be more than 0", file=sys.stderr)
        return EXIT_USAGE
    result = qido_echo(peer, timeout)
    print(result, file=sys.stdout if result.ok else sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_echo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from appliance.dicom.verification import echo

    # Our own one-line message says what went wrong: keep pynetdicom's log lines off the
    # terminal (the echo code still reads them to learn why a connection failed).
    pynetdicom_log = logging.getLogger("pynetdicom")
    pynetdicom_log.propagate = False
    pynetdicom_log.addHandler(logging.NullHandler())
    config = loader.load(args.config).config
    calling = args.calling_aet or config.dicom.ae_title
    if len(args.target) == 1:
        peer = config.peer(args.target[0])
        if peer is None:
            known = ", ".join(p.name for p in config.peers) or "none configured"
            print(f"appliance: echo: no peer named {args.target[0]!r} (known: {known}); "
                  "or give HOST PORT", file=sys.stderr)
            return EXIT_USAGE
        if peer.protocol == "dicomweb":
            return _echo_dicomweb(peer, args.timeout)
        host, port, called, label = peer.host, peer.port, peer.ae_title, peer.name
        tls = config.dicom.tls if peer.tls or args.tls else None
    elif len(args.target) == 2:
        host, port_text = args.target
        try:
            port = int(port_text)
            if not 1 <= port <= 65535:
                raise ValueError
        except ValueError:
            print(f"appliance: echo: port must be a number from 1 to 65535, got {port_text!r}",
                  file=sys.stderr)
            return EXIT_USAGE
        called, label = args.aet or "ANY-SCP", None
        tls = config.dicom.tls if args.tls else None
    else:
        parser.error("echo takes NAME or HOST PORT")
    for title, what in ((called, "--aet"), (calling, "--calling-aet")):
        try:
            from appliance.config.base import check_ae_title
            check_ae_title(title)
        except ValueError as exc:
            print(f"appliance: echo: {what}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.timeout <= 0:
        print("appliance: echo: --timeout must be more than 0", file=sys.stderr)
        return EXIT_USAGE
    result = echo(host, port, called, calling, timeout=args.timeout, tls=tls)
    text = str(result) if label is None else str(result).replace("C-ECHO ", f"C-ECHO {label} ", 1)
    print(text, file=sys.stdout if result.ok else sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED
