"""moto's standalone S3 server on loopback: a real S3 endpoint over HTTP for the tests.

The daemon talks to it with the same aiobotocore client it uses in production; only
the endpoint and the (fake) credentials differ. ``start_moto_server`` picks a free
port, starts ``python -m moto.server`` in a subprocess and waits, in a bounded loop,
until the endpoint answers; ``stop`` ends that process (and only that one).

The fixtures (``moto``, ``s3``, ``aws_env``) are in ``tests/daemon/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources.s3 import create_client
from tests.support.ports import free_port

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

FAKE_KEY_ID = "testing-key-id"
FAKE_SECRET = "testing-secret"
REGION = "us-east-1"
STARTUP_TIMEOUT_S = 30.0
# moto otherwise refuses multipart parts under 5 MiB; tests copy small objects in parts.
_SERVER_ENV = {"S3_UPLOAD_PART_MIN_SIZE": "16"}


@dataclass
class MotoServer:
    """A running moto server; ``url`` is the endpoint_url for clients."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def source_keys(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """A ``[[source]]`` table's keys for ``s3://bucket/prefix`` on this server (for
        a config file), fake keys included; ``min_age`` 0: objects are put whole."""
        return {
            "url": f"s3://{bucket}/{prefix}",
            "endpoint_url": self.url,
            "region": REGION,
            "access_key_id": FAKE_KEY_ID,
            "secret_access_key": FAKE_SECRET,
            "min_age": "0s",
        }

    def source_config(self, bucket: str, prefix: str = "", **kw: Any) -> SourceConfig:
        """A ``[[source]]`` for ``s3://bucket/prefix`` on this server, fake keys included."""
        kw.setdefault("name", "bucket")
        kw.setdefault("access_key_id", FAKE_KEY_ID)
        kw.setdefault("secret_access_key", FAKE_SECRET)
        kw.setdefault("region", REGION)
        return SourceConfig(url=f"s3://{bucket}/{prefix}", endpoint_url=self.url, **kw)


def start_moto_server(log_dir: Path, env: dict[str, str] | None = None) -> MotoServer:
    """Start moto on a free port; returns once it answers HTTP. Retries a port lost to a race.

    ``env`` adds to the server's environment (``INITIAL_NO_AUTH_ACTION_COUNT`` turns on
    moto's IAM checks, so that keys and permissions can be refused).
    """
    problems: list[str] = []
    for attempt in range(3):
        port = free_port()
        log = log_dir / f"moto-{port}.log"
        server_env = {**os.environ, **_SERVER_ENV, **(env or {})}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=server_env,
            )
        server = MotoServer(f"http://127.0.0.1:{port}", process, log)
        if _wait_ready(server):
            return server
        server.stop()
        problems.append(f"attempt {attempt + 1} on port {port}: {log.read_text()[-2000:]}")
    raise RuntimeError("moto server did not start:\n" + "\n".join(problems))


def _wait_ready(server: MotoServer) -> bool:
    """Poll the endpoint until it answers (any HTTP status) or the process dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{server.url}/moto-api/", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.05)  # readiness poll of a subprocess, not test synchronisation
    return False


def new_bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


@contextlib.asynccontextmanager
async def s3_client(server: MotoServer) -> AsyncIterator[S3Client]:
    """A client of the server for arranging tests (made as the daemon makes its own)."""
    async with create_client(server.source_config("unused")) as client:
        yield client
