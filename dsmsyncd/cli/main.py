"""Command line: argparse and dispatch of every ``dsmsyncd`` command.

The daemon's commands live in ``daemon_commands.py`` and ``push.py``, ``serve`` starts
the local server, ``demo`` both; every command's exit codes are ``exit_codes.py``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dsmsyncd import __version__
from dsmsyncd.cli.exit_codes import ExitCode
from dsmsyncd.config.schema import ACTIONS


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


def _positive_seconds(value: str) -> float:
    seconds = _seconds(value)
    if seconds == 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {value!r}")
    return seconds


def _finite_seconds(value: str) -> float:
    seconds = _seconds(value)
    if seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {value!r}")
    return seconds


_MEMORY_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _memory_size(value: str) -> str:
    if not _MEMORY_SIZE.fullmatch(value.strip()):
        raise argparse.ArgumentTypeError(f"expected a size like 512MB or 2GB, got {value!r}")
    return value.strip()


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
    _credential_args(
        serve,
        "user",
        "PASSWORD",
        help="create or update a user (repeatable); API key id:secret works the same way. "
        "Other local users can read it in ps and /proc: prefer --users-file or "
        "$DSMSYNCD_SERVE_USERS",
        file_help="users to create or update, one NAME:PASSWORD per line ('#' comments); "
        "keep it chmod 600. $DSMSYNCD_SERVE_USERS takes the same lines",
    )
    _credential_args(
        serve,
        "token",
        "TOKEN",
        help="an OAuth/Bearer token for an existing user (repeatable); visible in ps like "
        "--user: prefer --tokens-file or $DSMSYNCD_SERVE_TOKENS",
        file_help="tokens, one NAME:TOKEN per line ('#' comments); "
        "$DSMSYNCD_SERVE_TOKENS takes the same lines",
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
    serve.add_argument(
        "--query-timeout",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="time budget of one read (SODA query, rows page, export): past it the query "
        "is interrupted and answers 503 query_timeout (default 30)",
    )
    serve.add_argument(
        "--memory-limit",
        type=_memory_size,
        default="256MB",
        metavar="SIZE",
        help="DuckDB's memory limit, for all queries together (e.g. 512MB, 2GB); a read "
        "that needs more answers 413 query_out_of_memory (default 256MB)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=_positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="close a connection idle this long, before a request or between requests, "
        "or still sending its request headers (default 60)",
    )
    serve.add_argument(
        "--url-fetch-max-bytes",
        type=_byte_count,
        default=1024 * 1024 * 1024,
        metavar="BYTES",
        help="a url source whose file is larger fails with url_too_large (default 1 GiB)",
    )
    serve.add_argument(
        "--url-fetch-timeout",
        type=_positive_seconds,
        default=600.0,
        metavar="SECONDS",
        help="a url source not fetched whole within this time fails with url_fetch_timeout "
        "(default 600)",
    )
    serve.add_argument(
        "--keep-discarded",
        type=_finite_seconds,
        default=7 * 24 * 3600.0,
        metavar="SECONDS",
        help="how long a discarded revision's files are kept so it can be restored "
        "(default 604800, 7 days; 0 removes them at once)",
    )
    serve.add_argument(
        "--answer-wait",
        type=_finite_seconds,
        default=None,
        metavar="SECONDS",
        help="how long a commit or an apply waits for its work before answering it in "
        "progress (default 0.2; 0 answers at once, as a hosted site does)",
    )
    _log_level_arg(serve)

    run = commands.add_parser(
        "run",
        help="run the sync daemon",
        description="Watch the configured sources and publish every stable file to its dataset.",
    )
    _config_arg(run)
    _log_level_arg(run)

    check = commands.add_parser(
        "check-config",
        help="validate a configuration (and, unless --offline, the target and folders)",
    )
    _config_arg(check)
    check.add_argument("--offline", action="store_true", help="only validate the file itself")

    status = commands.add_parser("status", help="recent jobs per dataset, from the state store")
    _config_arg(status)
    status.add_argument("--limit", type=int, default=50)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--cluster",
        action="store_true",
        help="only the replicas and the dataset lanes they hold, with their leases",
    )

    push = commands.add_parser(
        "push",
        help="publish one file now, through the daemon's pipeline",
        description=(
            "Publish one file to a dataset through the same pipeline as the daemon, with a "
            "progress bar and a summary. Exit codes: 0 published, 4 rejected input, "
            "5 retryable failure, 2 configuration error."
        ),
    )
    push.add_argument("file", type=Path, metavar="FILE")
    push.add_argument("--dataset", required=True, metavar="ID")
    how = push.add_mutually_exclusive_group()
    how.add_argument("--import-config", metavar="NAME")
    how.add_argument("--action", choices=ACTIONS)
    push.add_argument("--max-error-rows", type=int, default=0)
    push.add_argument(
        "--dry-run",
        action="store_true",
        help="upload and transform, report the error count and sample errors, then discard",
    )
    push.add_argument("--no-progress", action="store_true", help="no progress bar")
    _config_arg(push)

    for verb, does in (
        ("apply", "publish a staged revision: the same guards, wait and finalize as the daemon"),
        ("discard", "throw a staged revision away and quarantine its file with a report"),
    ):
        staged = commands.add_parser(
            verb,
            help=does,
            description=f'{does[0].upper()}{does[1:]} (mappings with publish = "stage"). '
            "Works while the daemon runs. Exit codes: 0 done, 2 nothing staged or no such "
            "revision, 4 refused by the guards, 5 the target failed: try again later.",
        )
        _config_arg(staged)
        staged.add_argument(
            "target",
            metavar="DATASET[/REVISION]",
            help="the dataset (its one staged revision) or one revision of it",
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


def _credential_args(
    parser: argparse.ArgumentParser, name: str, secret: str, *, help: str, file_help: str
) -> None:
    """A repeatable ``--NAME NAME:SECRET`` and its ``--NAMEs-file`` of the same lines."""
    parser.add_argument(
        f"--{name}",
        dest=f"{name}s",
        action="append",
        default=[],
        type=_pair(secret),
        metavar=f"NAME:{secret}",
        help=help,
    )
    parser.add_argument(f"--{name}s-file", type=Path, metavar="FILE", help=file_help)


def _log_level_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", type=Path, required=True, metavar="FILE", help="the TOML configuration"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command in ("run", "check-config", "status", "push"):
        return _daemon_command(args)
    if args.command in ("apply", "discard"):
        from dsmsyncd.cli.staged import staged_command

        return staged_command(args.config, args.command, args.target)
    if args.command == "demo":
        from dsmsyncd.cli.demo import run_demo

        return run_demo(args.data_dir, args.listen, keep_serving=args.keep_serving)
    raise AssertionError(f"unhandled command {args.command}")


def _daemon_command(args: argparse.Namespace) -> int:
    from dsmsyncd.cli import daemon_commands as cli_daemon

    if args.command == "run":
        return cli_daemon.run_command(args.config, args.log_level)
    if args.command == "check-config":
        return cli_daemon.check_config_command(args.config, offline=args.offline)
    if args.command == "status":
        return cli_daemon.status_command(
            args.config, limit=args.limit, as_json=args.json, cluster=args.cluster
        )
    from dsmsyncd.cli.push import PushRequest, push_command

    request = PushRequest(
        file=args.file,
        dataset=args.dataset,
        import_config=args.import_config,
        action=args.action,
        max_error_rows=args.max_error_rows,
        dry_run=args.dry_run,
        progress=not args.no_progress,
    )
    return push_command(args.config, request)


def _serve(args: argparse.Namespace) -> int:
    from dsmsyncd.observe.logging import configure_logging
    from dsmsyncd.server.credentials import CredentialsError, serve_credentials
    from dsmsyncd.server.main import ServeOptions, run_server

    if (args.tls_cert is None) != (args.tls_key is None):
        print("dsmsyncd serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return ExitCode.USAGE
    try:
        users, tokens = serve_credentials(
            args.users, args.users_file, args.tokens, args.tokens_file
        )
    except CredentialsError as exc:
        print(f"dsmsyncd serve: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    host, port = args.listen
    options = ServeOptions(
        listen_host=host,
        listen_port=port,
        data_dir=args.data_dir,
        users=users,
        tokens=tokens,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_self_signed=args.tls_self_signed,
        shutdown_timeout=args.shutdown_timeout,
        max_upload_bytes=args.max_upload_bytes,
        query_timeout=args.query_timeout,
        memory_limit=args.memory_limit,
        idle_timeout=args.idle_timeout,
        url_fetch_max_bytes=args.url_fetch_max_bytes,
        url_fetch_timeout=args.url_fetch_timeout,
        keep_discarded_seconds=args.keep_discarded,
    )
    if args.answer_wait is not None:
        options.answer_wait_s = args.answer_wait
    # The server's log lines take the daemon's format: JSON off a terminal, console on one.
    configure_logging(level=args.log_level)
    return run_server(options)


if __name__ == "__main__":
    sys.exit(main())
