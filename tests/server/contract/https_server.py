"""A real `dsmsyncd serve` process over HTTPS, for the official SDK (which only speaks HTTPS).

The server is started as the user would start it (the console script, a TLS
certificate, a users file) on a free loopback port. Readiness is the server's own
"listening on" line, printed only after the socket is bound: no sleeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.server.support.serve_process import write_users

USER = "sdk-user"
PASSWORD = "sdk-password"


@dataclass(frozen=True)
class ServedHttps:
    url: str
    domain: str  # host:port, as socrata-py's Authorization wants it
    ca_path: Path


@contextmanager
def serve_https(root: Path) -> Iterator[ServedHttps]:
    """``dsmsyncd serve`` with a fresh CA's certificate, under ``root``; stopped on exit."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_path = root / "ca.pem"
    cert_path = root / "cert.pem"
    key_path = root / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    users_file = write_users(root / "users", (USER, PASSWORD))  # never --user: ps shows it
    command = [
        sys.executable,
        "-m",
        "dsmsyncd.cli.main",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        str(root / "data"),
        "--users-file",
        str(users_file),
        "--tls-cert",
        str(cert_path),
        "--tls-key",
        str(key_path),
    ]
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            log.flush()
            text = (root / "server.log").read_text(errors="replace")
            pytest.fail(f"dsmsyncd serve did not start: {line!r}\n{text}")
        url = line.rsplit(" ", 1)[-1].strip()
        yield ServedHttps(url=url, domain=url.removeprefix("https://"), ca_path=ca_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log.close()
