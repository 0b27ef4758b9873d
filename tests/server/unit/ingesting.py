"""Parse a file on disk into the row store's input table ``in1``, and read its cells back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsmsyncd.server.storage.ingest import ParsedInput, ParseOptions
from dsmsyncd.server.storage.rowstore import RowStore


async def ingest(
    store: RowStore, path: Path, *, content_type: str | None = None, **options: Any
) -> ParsedInput:
    """``path`` parsed with the parse ``options`` (JSON names) into table ``in1``."""
    opts = ParseOptions.from_json(options)
    [parsed] = await store.ingest_upload(
        path, "in1", opts, content_type=content_type, filename=path.name
    )
    return parsed


async def ingest_bytes(
    store: RowStore,
    tmp_path: Path,
    data: bytes,
    *,
    name: str = "f.csv",
    content_type: str | None = None,
    **options: Any,
) -> ParsedInput:
    """``data`` written to a file ``name`` under ``tmp_path``, and parsed."""
    path = tmp_path / name
    path.write_bytes(data)
    return await ingest(store, path, content_type=content_type, **options)


async def cells(store: RowStore, width: int) -> list[tuple[Any, ...]]:
    """Every row of ``in1`` as (offset, c0 … c{width-1}), in file order."""

    def read(cur: Any) -> list[tuple[Any, ...]]:
        cols = ", ".join(f"c{i}" for i in range(width))
        rows: list[tuple[Any, ...]] = cur.execute(
            f"SELECT __offset, {cols} FROM in1 ORDER BY __offset"
        ).fetchall()
        return rows

    return await store._run(read)
