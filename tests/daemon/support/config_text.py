"""The head of a daemon config written inline: the local server as target, as ``robot``."""

from __future__ import annotations

from pathlib import Path

from tests.support.local_server import ROBOT


def target_state_admin(server_url: str, root: Path) -> str:
    """``[target]`` (password inline), ``[state]`` under ``root``, ``[admin]`` on a free port."""
    return (
        f'[target]\nurl = "{server_url}"\nusername = "{ROBOT[0]}"\npassword = "{ROBOT[1]}"\n\n'
        f'[state]\nurl = "sqlite:///{root}/state.db"\n\n'
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
    )
