"""Command line: ``python -m fxiaoke_provider.testing`` serves the emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from fxiaoke_provider.testing.emulator import FxiaokeEmulator, is_loopback_host
from fxiaoke_provider.testing.settings import EmulatorSettings


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _port(text: str) -> int:
    port = _integer(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"value must be a positive integer, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"value must be between 0 and 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the command line."""
    defaults = EmulatorSettings()
    parser = argparse.ArgumentParser(
        prog="python -m fxiaoke_provider.testing",
        description="Serve a local emulator of the Fxiaoke Open API with fake demo credentials.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=_port,
        metavar="PORT",
        default=8099,
        help="TCP port to bind; 0 picks a free port (default: %(default)s)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="base URL that clients use to reach the emulator, put into signed URLs and the connection line "
        "(default: the bound address)",
    )

    parser.add_argument(
        "--no-seed",
        action="store_true",
        help="start empty, instead of with the demo files and the demo CRM records (AccountObj and "
        "Contract__c) that reference them",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="turn off the per-interface call limit")
    parser.add_argument(
        "--no-token-limits",
        action="store_true",
        help="turn off the token-call limits (calls per minute and the ban on concurrent calls)",
    )
    parser.add_argument(
        "--no-trace-id-check",
        action="store_true",
        help="accept requests without a valid, unused thirdTraceId",
    )

    parser.add_argument(
        "--max-paths-per-call",
        type=_positive_int,
        metavar="N",
        default=defaults.max_paths_per_call,
        help="maximum number of paths in one getPresignedUrl call (default: %(default)s)",
    )
    parser.add_argument(
        "--max-expire-hours",
        type=_positive_int,
        metavar="HOURS",
        default=defaults.max_expire_hours,
        help="maximum getPresignedUrl expire, in hours (default: %(default)s)",
    )
    parser.add_argument(
        "--presign-shape",
        choices=("list", "map", "nested"),
        default=defaults.presign_response_shape,
        help="shape of getPresignedUrl's data: a list of {path, url}, a {path: url} map, or a list under "
        "data.data (default: %(default)s)",
    )
    parser.add_argument(
        "--unknown-path-mode",
        choices=("error", "omit"),
        default=defaults.unknown_path_mode,
        help="for a path not in the store, fail the getPresignedUrl call with 15002 or leave the path out "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--not-file-dedicated",
        action="store_true",
        help="emulate a tenant that is not file-dedicated, so getPresignedUrl is rejected",
    )

    parser.add_argument(
        "--fault-rate",
        type=_share,
        metavar="SHARE",
        default=0.0,
        help="share of POST calls, token calls included, between 0 and 1, that fail with a random "
        "transient error code "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--random-seed",
        type=_integer,
        metavar="SEED",
        default=defaults.random_seed,
        help="seed of the generator behind --fault-rate (default: %(default)s)",
    )

    parser.add_argument(
        "--auth-style",
        choices=("header", "legacy"),
        default="header",
        help="authentication style of the printed Airflow connection (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="level of the log written to stderr; DEBUG logs every request (default: %(default)s)",
    )

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the emulator until SIGINT or SIGTERM and return the exit status.

    :param argv: command-line arguments without the program name; None reads ``sys.argv``.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = EmulatorSettings(
        enforce_rate_limit=not args.no_rate_limit,
        enforce_token_limits=not args.no_token_limits,
        require_trace_id=not args.no_trace_id_check,
        max_paths_per_call=args.max_paths_per_call,
        max_expire_hours=args.max_expire_hours,
        presign_response_shape=args.presign_shape,
        unknown_path_mode=args.unknown_path_mode,
        file_dedicated=not args.not_file_dedicated,
        random_seed=args.random_seed,
    )
    try:
        emulator = FxiaokeEmulator(
            host=args.host, port=args.port, settings=settings, public_url=args.public_url
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_loopback_host(args.host):
        print(
            f"warning: binding {args.host}, which is not a loopback address. The emulator accepts fake "
            "credentials that are printed below, so anyone who can reach this address can use it.",
            file=sys.stderr,
        )
    if not args.no_seed:
        emulator.seed_crm_objects()
    if args.fault_rate > 0:
        emulator.inject_random_faults(rate=args.fault_rate)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    print(f"Fxiaoke emulator listening on {emulator.base_url}")
    print("Airflow connection to it, with the emulator's fake demo credentials:")
    print(f"export AIRFLOW_CONN_FXIAOKE_DEFAULT={shlex.quote(emulator.connection_json(args.auth_style))}")
    print("Press Ctrl+C to stop.", flush=True)
    # Wake up now and then, so the signal handler's flag is seen even where a blocked wait is not interrupted.
    while not stop_requested.wait(timeout=0.5):
        pass
    emulator.stop()
    print("Fxiaoke emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
