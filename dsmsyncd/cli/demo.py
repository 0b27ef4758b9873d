"""``dsmsyncd demo``: the main job on the embedded default, on a machine with no account.

It starts the local DSMAPI server over HTTPS (a certificate made for the demo's data
dir), creates a dataset and an import config whose transform joins ``street_number``
and ``street_name`` into ``address``, writes a daemon configuration, starts the
daemon on a drop folder and drops the bundled sample CSV into it, the way a user or
a system would (written as ``.part``, then renamed). When the daemon has published
it, the demo reads the rows back over SODA and prints where to read them. Everything
goes over real HTTP, through the same code the daemon runs in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from dsmsyncd.cli.exit_codes import ExitCode
from dsmsyncd.config.load import load_config
from dsmsyncd.dsmapi import Credentials, DsmapiClient, DsmapiError
from dsmsyncd.state import Job

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
CONFIG_NAME = "demo-permits"
PUBLISH_TIMEOUT_S = 120.0

# The import config: each output column is a transform over the CSV's input columns.
DEMO_COLUMNS = [
    ("permit_id", "Permit", "`permit_id`", True),
    ("address", "Address", "`street_number` || ' ' || `street_name`", False),
    ("issued", "Issued", "to_floating_timestamp(`issued`)", False),
    ("fee", "Fee", "to_number(`fee`)", False),
    ("residential", "Residential", "to_boolean(`residential`)", False),
]

DAEMON_CONFIG = """\
# Written by `dsmsyncd demo`: the daemon against the local server it started.
[target]
url = "{url}"
username = "{user}"
password_file = "secrets/dsm_password"
ca_bundle = "{ca}"

[state]
url = "sqlite:///{root}/state.db"

[admin]
listen = "127.0.0.1:0"

[limits]
max_concurrent_jobs = 2
drain_timeout = "10s"

[[source]]
name = "drop"
url = "file://{root}/drop"
min_age = "300ms"
poll_interval = "5s"

[[mapping]]
source = "drop"
match = "permits/*.csv"
dataset = "{fourfour}"
import_config = "{config}"
max_error_rows = 0
on_success = "archive"
archive_dir = "{root}/archive"
quarantine_dir = "{root}/quarantine"
"""


def sample_csv() -> Path:
    return Path(str(resources.files("dsmsyncd") / "samples" / "permits.csv"))


def run_demo(data_dir: Path, listen: tuple[str, int], *, keep_serving: bool = False) -> int:
    try:
        return asyncio.run(_demo(data_dir.resolve(), listen, keep_serving))
    except KeyboardInterrupt:
        return ExitCode.OK


async def _demo(root: Path, listen: tuple[str, int], keep_serving: bool) -> int:
    from dsmsyncd.server.credentials import serve_credentials
    from dsmsyncd.server.main import ServeOptions, start_server

    users_file = _write_secrets(root)
    users, _tokens = serve_credentials([], users_file, [], None, env={})
    server = await start_server(
        ServeOptions(
            listen_host=listen[0],
            listen_port=listen[1],
            data_dir=root / "server",
            users=users,
            tokens=[],
            tls_cert=None,
            tls_key=None,
            tls_self_signed=True,
        )
    )
    try:
        print(f"local DSMAPI server: {server.url} (CA certificate: {server.ca_path})")
        print(f"server users: {users_file} (the same as `dsmsyncd serve --users-file`)")
        ca = str(server.ca_path)
        fourfour = await _prepare_dataset(server.url, ca)
        if fourfour is None:
            return ExitCode.FAILURE
        config_path = _write_daemon_config(root, server.url, ca, fourfour)
        print(f"daemon configuration: {config_path}")
        return await _run_daemon(root, config_path, server.url, ca, fourfour, keep_serving)
    finally:
        await server.stop()


async def _prepare_dataset(url: str, ca: str) -> str | None:
    """A new, empty dataset and the import config its files will be published with."""
    async with DsmapiClient(
        url, Credentials(username=DEMO_USER, password=DEMO_PASSWORD), ca_bundle=ca
    ) as client:
        try:
            revision = await client.create_dataset(
                {"name": "Building permits (dsmsyncd demo)", "description": "Sample data"}
            )
            await client.wait_for_task_set(revision, await client.apply(revision, None))
            try:
                await client.get_config(CONFIG_NAME)
            except DsmapiError:
                await client.create_config(
                    {
                        "name": CONFIG_NAME,
                        "data_action": "update",
                        "parse_options": {"header_count": 1, "column_header": 1},
                        "columns": [
                            {
                                "field_name": field,
                                "display_name": display,
                                "transform_expr": expr,
                                "is_primary_key": key,
                            }
                            for field, display, expr, key in DEMO_COLUMNS
                        ],
                    }
                )
        except DsmapiError as exc:
            print(f"demo failed preparing the dataset: {exc}", file=sys.stderr)
            return None
    print(f"created dataset {revision.fourfour} and import config {CONFIG_NAME!r}")
    return revision.fourfour


def _write_secrets(root: Path) -> Path:
    """The demo's secrets, each in a file only its owner reads (never on a command line).

    ``server-users`` is what ``dsmsyncd serve --users-file`` reads, ``dsm_password``
    what the daemon's ``password_file`` reads, ``netrc`` what ``curl --netrc-file``
    reads; returns the users file.
    """
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    files = {
        "server-users": f"# NAME:PASSWORD, one per line\n{DEMO_USER}:{DEMO_PASSWORD}\n",
        "dsm_password": DEMO_PASSWORD + "\n",
        "netrc": f"default login {DEMO_USER} password {DEMO_PASSWORD}\n",
    }
    for name, text in files.items():
        path = secrets_dir / name
        path.touch(mode=0o600)
        os.chmod(path, 0o600)
        path.write_text(text, encoding="utf-8")
    return secrets_dir / "server-users"


def _write_daemon_config(root: Path, url: str, ca: str, fourfour: str) -> Path:
    for folder in ("drop/permits", "archive", "quarantine"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    path = root / "dsmsyncd.toml"
    path.write_text(
        DAEMON_CONFIG.format(
            url=url, user=DEMO_USER, ca=ca, root=root, fourfour=fourfour, config=CONFIG_NAME
        ),
        encoding="utf-8",
    )
    return path


async def _run_daemon(
    root: Path, config_path: Path, url: str, ca: str, fourfour: str, keep_serving: bool
) -> int:
    from dsmsyncd.daemon.lifecycle import Daemon

    daemon = Daemon(config_path, load_config(config_path))
    finished: asyncio.Queue[Job] = asyncio.Queue()
    daemon.add_listener(finished.put_nowait)
    runner = asyncio.create_task(daemon.run())
    try:
        await daemon.started.wait()
        print(f"daemon admin: {daemon.admin_url}/status")
        dropped = _drop(sample_csv(), root / "drop" / "permits")
        print(f"dropped {dropped.relative_to(root)}; waiting for the daemon to publish it ...")
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            job = await finished.get()
        print(f"job #{job.id}: {job.state.value}" + (f" ({job.error})" if job.error else ""))
        if job.state.value != "published":
            return ExitCode.FAILURE
        await _show(url, ca, fourfour, root / "secrets" / "netrc")
        if keep_serving:
            print(f"serving until Ctrl-C; drop more files into {root / 'drop' / 'permits'}")
            await asyncio.Event().wait()
        else:
            print(
                "the server and daemon stop now; `.venv/bin/dsmsyncd demo --keep-serving` "
                "keeps them up so that the URL above answers"
            )
        return ExitCode.OK
    finally:
        daemon.stop.set()
        await runner


def _drop(sample: Path, folder: Path) -> Path:
    """Write as ``.part`` and rename: a drop that is never seen half-written."""
    target = folder / sample.name
    partial = folder / (sample.name + ".part")
    shutil.copyfile(sample, partial)
    os.replace(partial, target)
    return target


async def _show(url: str, ca: str, fourfour: str, netrc: Path) -> None:
    creds = Credentials(username=DEMO_USER, password=DEMO_PASSWORD)
    async with DsmapiClient(url, creds, ca_bundle=ca) as client:
        rows = await client.read_rows(fourfour, {"$order": "permit_id"})
    print(f"published {len(rows)} rows; read back over SODA:")
    for row in rows:
        print("  " + json.dumps(row, sort_keys=True))
    where = f"{url}/resource/{fourfour}.json"
    print(f"read them yourself: curl --cacert {ca} --netrc-file {netrc} {where}")
