"""A loopback port nothing listens on, for servers the tests start (and URLs that must fail)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick for port 0).

    Another process may take it before the caller binds it; callers that start a server
    on it retry on a new port when the bind fails.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
