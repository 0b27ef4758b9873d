"""Where files come from: drop folders and bucket prefixes, behind one ``Source`` protocol.

Sources know nothing of datasets: they yield stable ``Candidate`` files and open them
as ``Blob``s; routing decides where a candidate goes.
"""

from __future__ import annotations

from dsmsyncd.sources.base import Candidate, Source, SourceError, SourceVanished
from dsmsyncd.sources.folder import FolderSource
from dsmsyncd.sources.stability import StabilityGate

__all__ = [
    "Candidate",
    "FolderSource",
    "Source",
    "SourceError",
    "SourceVanished",
    "StabilityGate",
]
