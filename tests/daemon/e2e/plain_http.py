"""Plain HTTP reads of the local server: SODA rows and open revisions.

End-to-end tests check what the daemon did with these, not with the daemon's own
client, so that one cannot hide the other's mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.local_server import API


@dataclass
class Http:
    """Plain HTTP reads of the server: SODA rows and open revisions."""

    url: str
    session: aiohttp.ClientSession

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        async with self.session.get(self.url + path, params=params) as response:
            assert response.status == 200, (path, response.status, await response.text())
            return await response.json()

    async def rows(self, fourfour: str, **params: str) -> list[dict[str, Any]]:
        rows = await self.get(f"/resource/{fourfour}.json", params)
        assert isinstance(rows, list)
        return rows

    async def count(self, fourfour: str) -> int:
        rows = await self.rows(fourfour, **{"$select": "count(*)"})
        return int(rows[0]["count"])

    async def open_revisions(self, fourfour: str) -> list[Any]:
        body = await self.get(f"{API}/revision/{fourfour}", {"open": "true"})
        assert isinstance(body, list)
        return body
