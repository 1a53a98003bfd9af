"""The command line: `callhome-client check-in ...` (one ping or a dry run), `deactivate`, and
offline activation (`offline-request`, `offline-verify`)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence

from ._client import Client
from ._computer_id import persistent_computer_id
from ._constants import DEFAULT_TIMEOUT
from ._core import ComputerIdSource
from ._exceptions import (
    CallhomeError,
    ComputerIdUnavailable,
    ConfigurationError,
    NoTrustedVerdict,
    RequestRejected,
    UntrustedAnswer,
)
from ._offline import offline_request, read_offline_licence

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNTRUSTED_ANSWER = 3
EXIT_NO_TRUSTED_VERDICT = 4
EXIT_REQUEST_REJECTED = 5

_EXIT_CODES: list[tuple[type[CallhomeError], int]] = [
    (ConfigurationError, EXIT_USAGE),
    (ComputerIdUnavailable, EXIT_USAGE),
    (UntrustedAnswer, EXIT_UNTRUSTED_ANSWER),
    (NoTrustedVerdict, EXIT_NO_TRUSTED_VERDICT),
    (RequestRejected, EXIT_REQUEST_REJECTED),
]


def _signature(text: str) -> tuple[str, int]:
    feed, separator, version = text.partition("=")
    if not separator or not version.isdigit():
        raise argparse.ArgumentTypeError("expected FEED=VERSION, e.g. spam=41234")
    return feed, int(version)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m callhome_client")
    commands = parser.add_subparsers(dest="command", required=True)
    check_in = commands.add_parser(
        "check-in",
        help="ping the callhome server once and print its verdict as JSON",
        epilog="exit codes: 0 a trusted verdict (fresh or cached), 2 usage or configuration, "
        "3 untrusted answer, 4 server unavailable and no cached lease, 5 request rejected",
    )
    _add_identity_arguments(check_in)
    check_in.add_argument("--version", required=True)
    check_in.add_argument("--users", type=int, default=0, help="users in use (default 0)")
    check_in.add_argument("--channel", help="release channel (the server defaults to stable)")
    check_in.add_argument(
        "--signature",
        type=_signature,
        action="append",
        default=[],
        metavar="FEED=VERSION",
        help="an installed signature set (repeatable)",
    )
    check_in.add_argument("--cache", help="file that keeps the last good verdict for offline use")
    check_in.add_argument(
        "--dry-run",
        action="store_true",
        help="print exactly the JSON body that would be sent, and send nothing",
    )
    deactivate = commands.add_parser(
        "deactivate",
        help="free this machine's seat at once (hardware swap, uninstall) and print the answer",
        epilog="exit codes: 0 the seat is free (or the key is unknown: see status), 2 usage, "
        "3 untrusted answer, 4 server unavailable, 5 request rejected",
    )
    _add_identity_arguments(deactivate)
    deactivate.add_argument(
        "--cache",
        help="the verdict cache file: its verdict is dropped once the seat is free "
        "(the file stays, with the record that refuses replayed answers)",
    )
    request = commands.add_parser(
        "offline-request",
        help="print this machine's offline activation request (for a machine with no way out)",
        epilog="hand the output to staff (callhome offline issue) or upload it on the /my/ "
        "page; the licence file you get back is checked with offline-verify",
    )
    request.add_argument("--licence-key", "--licence", dest="licence", required=True)
    request.add_argument("--product", required=True)
    request.add_argument("--version", default="0", help="the product version installed (default 0)")
    _add_computer_id_argument(request)
    verify = commands.add_parser(
        "offline-verify",
        help="check an offline licence file on this machine, with no network, and print "
        "its verdict as JSON",
        epilog="exit codes: 0 the file holds for this machine now, 2 usage, 3 refused "
        "(another machine, expired, older than one accepted, a clock set back, tampered, or "
        "an unpinned key)",
    )
    verify.add_argument("--licence-file", required=True)
    verify.add_argument("--product", required=True)
    _add_public_key_argument(verify)
    _add_computer_id_argument(verify)
    verify.add_argument(
        "--cache",
        help="the trust record's file: refuses a file older than one accepted before, and a "
        "clock set back after a file ended",
    )
    return parser


def _add_public_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key",
        action="append",
        required=True,
        help="pinned Ed25519 public key, base64 of its 32 raw bytes (repeat for a rotation)",
    )


def _add_computer_id_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--computer-id-file",
        help="keep a random computer ID in this file instead of hashing hardware facts "
        "(for containers)",
    )


def _add_identity_arguments(parser: argparse.ArgumentParser) -> None:
    """What names this machine's seat to the server, for every command."""
    parser.add_argument("--server", required=True, help="base URL, e.g. https://licences.example")
    parser.add_argument("--licence", required=True, help="the licence key")
    parser.add_argument("--product", required=True)
    _add_public_key_argument(parser)
    _add_computer_id_argument(parser)
    parser.add_argument("--timeout", type=float, help="seconds to wait for the server")


def _exit_code(error: CallhomeError) -> int:
    return next((code for kind, code in _EXIT_CODES if isinstance(error, kind)), 1)


def _computer_id(args: argparse.Namespace) -> ComputerIdSource:
    if args.computer_id_file:
        return functools.partial(persistent_computer_id, args.computer_id_file)
    return None


def _client(args: argparse.Namespace, version: str) -> Client:
    computer_id = _computer_id(args)
    return Client(
        args.server,
        args.licence,
        args.product,
        version,
        args.public_key,
        computer_id=computer_id,
        cache_path=args.cache,
        timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
        # One command is no clean shutdown of a product: check-in never frees the seat.
        release_floating_seat=False,
    )


def _deactivate(args: argparse.Namespace) -> str:
    # The deactivation names no version; any valid one satisfies the client's checks.
    with _client(args, "0") as client:
        deactivation = client.deactivate()
    return json.dumps(deactivation.to_dict(), indent=2)


def _check_in(args: argparse.Namespace) -> str:
    """The text to print: the dry-run body, or the verdict as JSON."""
    with _client(args, args.version) as client:
        ping_arguments = {
            "user_count": args.users,
            "signatures": dict(args.signature),
            "channel": args.channel,
        }
        if args.dry_run:
            return client.ping_body(**ping_arguments).decode("ascii")
        verdict = client.check_in(**ping_arguments)
    return json.dumps(verdict.to_dict(), indent=2)


def _offline_request(args: argparse.Namespace) -> str:
    body = offline_request(args.licence, args.product, args.version, computer_id=_computer_id(args))
    return body.decode("ascii")


def _offline_verify(args: argparse.Namespace) -> str:
    try:
        with open(args.licence_file, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ConfigurationError(f"cannot read the licence file: {error.strerror}") from None
    licence = read_offline_licence(
        data,
        product=args.product,
        public_keys=args.public_key,
        computer_id=_computer_id(args),
        cache_path=args.cache,
    )
    return json.dumps(licence.to_dict(), indent=2)


_COMMANDS = {
    "check-in": _check_in,
    "deactivate": _deactivate,
    "offline-request": _offline_request,
    "offline-verify": _offline_verify,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        output = _COMMANDS[args.command](args)
    except CallhomeError as error:
        sys.stderr.write(f"callhome-client: {error}\n")
        return _exit_code(error)
    sys.stdout.write(output + "\n")
    return EXIT_OK


def run() -> None:
    """The `callhome-client` console script."""
    raise SystemExit(main())
