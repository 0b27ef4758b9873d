"""Command line: ``dsmsyncd serve`` and ``dsmsyncd demo`` (the daemon commands join later).

Exit codes are part of the interface, so scripts can tell a bad invocation from a
failure: 0 ok, 2 usage or config error, 3 startup failure, 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dsmsyncd import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_STARTUP_FAILURE = 3


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:8443), got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {value!r}")
    return seconds


def _byte_count(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes > 0, got {value!r}")
    return int(value)


def _pair(what: str) -> Callable[[str], tuple[str, str]]:
    def parse(value: str) -> tuple[str, str]:
        name, sep, secret = value.partition(":")
        if not sep or not name or not secret:
            raise argparse.ArgumentTypeError(f"expected NAME:{what}, got a value without ':'")
        return name, secret

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsmsyncd",
        description="Keep published datasets in step with dropped files, through DSMAPI revisions.",
    )
    parser.add_argument("--version", action="version", version=f"dsmsyncd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the local DSMAPI-compatible server",
        description="Run the local DSMAPI-compatible server (publishing API v1 + SODA reads).",
    )
    serve.add_argument("--listen", type=_listen, default=("127.0.0.1", 8443), metavar="HOST:PORT")
    serve.add_argument("--data-dir", type=Path, required=True, metavar="DIR")
    serve.add_argument(
        "--user",
        dest="users",
        action="append",
        default=[],
        type=_pair("PASSWORD"),
        metavar="NAME:PASSWORD",
        help="create or update a user (repeatable); API key id:secret works the same way",
    )
    serve.add_argument(
        "--token",
        dest="tokens",
        action="append",
        default=[],
        type=_pair("TOKEN"),
        metavar="NAME:TOKEN",
        help="an OAuth/Bearer token for an existing user (repeatable)",
    )
    serve.add_argument("--tls-cert", type=Path, metavar="FILE")
    serve.add_argument("--tls-key", type=Path, metavar="FILE")
    serve.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="serve HTTPS with a certificate made for this data dir (its CA path is printed)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long requests and background work may take to finish "
        "before they are cancelled (default 30); a second signal exits at once",
    )
    serve.add_argument(
        "--max-upload-bytes",
        type=_byte_count,
        default=None,
        metavar="BYTES",
        help="refuse (413) uploads larger than this many bytes (default: no limit)",
    )

    demo = commands.add_parser(
        "demo",
        help="run the main job on the embedded default and print where to read the result",
        description=(
            "Start the local server, publish a sample CSV through a revision with a "
            "transform, read the rows back and print the URL to read them."
        ),
    )
    demo.add_argument("--data-dir", type=Path, default=Path("demo-data"), metavar="DIR")
    demo.add_argument("--listen", type=_listen, default=("127.0.0.1", 0), metavar="HOST:PORT")
    demo.add_argument(
        "--keep-serving",
        action="store_true",
        help="keep the server running after the demo, until Ctrl-C",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo":
        from dsmsyncd.demo import run_demo

        return run_demo(args.data_dir, args.listen, keep_serving=args.keep_serving)
    raise AssertionError(f"unhandled command {args.command}")


def _serve(args: argparse.Namespace) -> int:
    from dsmsyncd.server.main import ServeOptions, run_server

    if (args.tls_cert is None) != (args.tls_key is None):
        print("dsmsyncd serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    host, port = args.listen
    options = ServeOptions(
        listen_host=host,
        listen_port=port,
        data_dir=args.data_dir,
        users=list(args.users),
        tokens=list(args.tokens),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_self_signed=args.tls_self_signed,
        shutdown_timeout=args.shutdown_timeout,
        max_upload_bytes=args.max_upload_bytes,
    )
    return run_server(options)


if __name__ == "__main__":
    sys.exit(main())
