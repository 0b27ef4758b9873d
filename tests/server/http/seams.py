"""A seam in a running server: its parses held open until the test lets them go on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from dsmsyncd.server.main import RunningServer


@dataclass
class HeldParse:
    """``started`` is set once a parse of an upload runs; it goes on when ``release`` is."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def hold_parses(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> HeldParse:
    """Every parse of ``server`` waits, once started, for the test to release it."""
    held = HeldParse()
    original = server.state.rows.ingest_upload

    async def gated(*args: Any, **kwargs: Any) -> Any:
        held.started.set()
        await held.release.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(server.state.rows, "ingest_upload", gated)
    return held
