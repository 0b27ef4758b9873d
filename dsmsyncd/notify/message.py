"""The words of a notification: one ``Message`` per notice, the same for every channel.

A webhook receives ``fields`` as its JSON body: the event, the dataset, the file and
the reason by name, and a ``text`` line that Slack and Teams incoming webhooks show as
is. A mail has ``subject`` and ``text``, then the same fields one per line. Every text
taken from a job (its error, the server's message) is scrubbed of the configuration's
secrets and masked by the one redaction rule first (invariant 5).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from dsmsyncd.config.redact import REDACTED, redact_text
from dsmsyncd.config.secrets import SCRUB_MIN_CHARS
from dsmsyncd.notify.events import Notice

APP = "dsmsyncd"


@dataclass(frozen=True)
class Message:
    event: str
    subject: str
    text: str
    fields: dict[str, Any]


class Scrubber:
    """Text fit to send: without the configuration's secrets, then masked by rule."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= SCRUB_MIN_CHARS}, key=len)[::-1]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return redact_text(text)


def message_of(notice: Notice, scrub: Scrubber) -> Message:
    detail = scrub(notice.message) if notice.message else None
    if detail and notice.reason:  # a refusal reads "reason: message"; the reason has a field
        detail = detail.removeprefix(f"{notice.reason}: ")
    headline = _headline(notice)
    text = f"{APP}: {headline}" + (f": {detail}" if detail else "")
    fields: dict[str, Any] = {
        "event": notice.event,
        "dataset": notice.dataset,
        "file": notice.file,
        "source": notice.source,
        "reason": notice.reason,
        "message": detail,
        "state": notice.state,
        "attempts": notice.attempts,
        "job_id": notice.job_id,
        "at": notice.at.isoformat(),
        "text": chat_text(text),
    }
    if notice.failing_for_s is not None:
        fields["failing_for_seconds"] = round(notice.failing_for_s, 3)
    subject = f"[{APP}] {notice.event}: {notice.file} ({notice.dataset})"
    return Message(notice.event, subject, text, fields)


def summary_of(suppressed: Counter[str], max_per_hour: int) -> Message:
    """The one message that stands for the events the rate limit held back."""
    total = sum(suppressed.values())
    kinds = ", ".join(f"{count} {event}" for event, count in sorted(suppressed.items()))
    text = (
        f"{APP}: {total} more events suppressed in the last hour by the rate limit "
        f"(max_per_hour = {max_per_hour}): {kinds}. See /status and the logs for each."
    )
    fields: dict[str, Any] = {
        "event": "suppressed",
        "count": total,
        "events": dict(sorted(suppressed.items())),
        "text": text,
    }
    return Message("suppressed", f"[{APP}] {total} more events suppressed", text, fields)


def chat_text(text: str) -> str:
    """``text`` as Slack asks for it: ``&``, ``<`` and ``>`` escaped, so that a file named
    ``<!channel>.csv`` shows as such and pings nobody (Teams renders the entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mail_body(message: Message) -> str:
    lines = [message.text, ""]
    lines += [f"{key}: {value}" for key, value in message.fields.items() if key != "text"]
    return "\n".join(lines) + "\n"


def _headline(notice: Notice) -> str:
    where = f"{notice.file} (dataset {notice.dataset})"
    match notice.event:
        case "published":
            return f"{where} was published"
        case "recovered":
            return f"{where} was published again after earlier failures ({notice.reason})"
        case "quarantined":
            return f"{where} was quarantined ({notice.reason or 'rejected'})"
        case "staged":
            return f"{where} is staged: its revision waits to be applied"
        case "failed":
            return f"{where} failed ({notice.reason or 'error'}) and will be retried"
        case "retrying":
            minutes = (notice.failing_for_s or 0.0) / 60
            return (
                f"{where} has been failing for {minutes:.0f} min over {notice.attempts} "
                f"attempt(s) and is still being retried"
            )
