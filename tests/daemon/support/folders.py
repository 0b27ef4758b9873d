"""One test's folders, as a mapping lays them out: files land in ``drop`` and end in
``archive`` or ``quarantine``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Folders:
    root: Path
    drop: Path = field(init=False)
    archive: Path = field(init=False)
    quarantine: Path = field(init=False)

    def __post_init__(self) -> None:
        self.drop, self.archive, self.quarantine = (
            self.root / name for name in ("drop", "archive", "quarantine")
        )


def with_default_action(options: dict[str, Any]) -> dict[str, Any]:
    """A mapping's options, with ``action = "update"`` unless told an action or a config."""
    if "import_config" not in options:
        options.setdefault("action", "update")
    return options
