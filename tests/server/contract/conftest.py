"""The server the SDK flows talk to: one ``dsmsyncd serve`` over HTTPS for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.contract.https_server import ServedHttps, serve_https


@pytest.fixture(scope="session")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedHttps]:
    with serve_https(tmp_path_factory.mktemp("sdk-server")) as served:
        yield served
