"""The exit codes of every ``dsmsyncd`` command, in one place: part of the interface, so
that scripts and service managers can tell a bad invocation from a failure (README,
"Commands").
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # anything else: an unexpected error (Python's own exit code for one)
    USAGE = 2  # a bad invocation or configuration: fix it, trying again will not help
    STARTUP_FAILURE = 3  # `run` could not start (state store, admin port, sources)
    REJECTED = 4  # the input was refused: quarantined, or a dry run over the threshold
    RETRYABLE = 5  # the target or network failed: try again later
