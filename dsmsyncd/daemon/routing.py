"""Stable files that no ``[[mapping]]`` takes: left in place, and said once each.

Routing itself (which mapping takes a file) is ``pipeline/routing.py``: the pipeline
needs it too, for jobs recorded before jobs kept their routing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from dsmsyncd.sources.base import Candidate

logger = logging.getLogger("dsmsyncd.daemon.routing")

UNMATCHED_REMEMBERED = 10_000


class UnmatchedLog:
    """Logs a stable file that no mapping takes, once per identity, with the fix.

    The file is left in place; remembering identities (bounded, least recently seen
    dropped first) keeps a restarted discovery from repeating the same line.
    """

    def __init__(self, capacity: int = UNMATCHED_REMEMBERED) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, candidate: Candidate) -> bool:
        """True (and one log line) the first time this identity is reported."""
        if candidate.identity in self._seen:
            self._seen.move_to_end(candidate.identity)
            return False
        self._seen[candidate.identity] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        logger.warning(
            "source %s: %s matches no mapping; left in place (add a [[mapping]] with "
            'source = "%s" and a match glob for it, or move it out)',
            candidate.source,
            candidate.relative_path,
            candidate.source,
        )
        return True

    def __len__(self) -> int:
        return len(self._seen)
