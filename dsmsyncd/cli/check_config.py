"""``dsmsyncd check-config``: will this configuration work, before anything starts?

Offline it validates the file (every mistake at once, with key paths). Online it also
asks the target: does it answer, do the credentials work, does every mapped dataset
and import config exist; and it checks that every folder is readable and writable,
and that every ``[[notify]]`` mail server takes the connection and the login.
Each finding says what is wrong, where, and how to fix it. A finding is ``retryable``
when a check could not be made (the target or a bucket's store did not answer): that
is no fault of the configuration, and ``check-config`` exits 5 for it, as ``run``
would keep trying.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dsmsyncd.config.fields import secret_texts
from dsmsyncd.config.paths import finalize_folder
from dsmsyncd.config.redact import REDACTED, redact_text
from dsmsyncd.config.schema import JOB_LOG_SOURCE, Config
from dsmsyncd.config.secrets import SCRUB_MIN_CHARS
from dsmsyncd.dsmapi import (
    API,
    CURRENT_USER,
    AuthError,
    DsmapiClient,
    DsmapiError,
    RejectedError,
    RetryableServerError,
    TransportError,
)


@dataclass(frozen=True)
class Finding:
    ok: bool
    subject: str
    message: str
    retryable: bool = False  # the check could not be made; the config may well be right


def shown(config: Config, text: str) -> str:
    """``text`` fit to print: no resolved secret of ``config``, no URL userinfo."""
    for secret in secret_texts(config):
        if len(secret) >= SCRUB_MIN_CHARS:
            text = text.replace(secret, REDACTED)
    return redact_text(text)


def check_folders(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    for source in config.source:
        if not source.url.startswith("file://"):
            continue
        spool = source.name == JOB_LOG_SOURCE  # the daemon makes the job log's spool
        findings.append(
            _folder(f"source {source.name}", source.path, need_write=True, create=spool)
        )
    folders = {s.name: s.path for s in config.source if s.url.startswith("file://")}
    for index, mapping in enumerate(config.mapping):
        if mapping.source not in folders:
            continue  # archive and quarantine are prefixes in a bucket: checked with it
        for key in ("archive_dir", "quarantine_dir"):
            configured = getattr(mapping, key)
            if configured is not None:
                path = finalize_folder(folders[mapping.source], configured)
                findings.append(
                    _folder(f"mapping[{index}].{key}", path, need_write=True, create=True)
                )
    return findings


def _folder(subject: str, path: Path, *, need_write: bool, create: bool = False) -> Finding:
    if not path.exists():
        if create and _creatable(path):
            return Finding(True, subject, f"{path} does not exist yet; it will be created")
        return Finding(False, subject, f"{path} does not exist: create it or fix the path")
    if not path.is_dir():
        return Finding(False, subject, f"{path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        return Finding(False, subject, f"{path} is not readable by this user")
    if need_write and not os.access(path, os.W_OK):
        return Finding(
            False, subject, f"{path} is not writable by this user (files are moved out of it)"
        )
    return Finding(True, subject, f"{path} is readable and writable")


def _creatable(path: Path) -> bool:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return os.access(parent, os.W_OK)


async def check_target(config: Config, client: DsmapiClient) -> list[Finding]:
    findings: list[Finding] = []
    try:
        user = await client.call("GET", CURRENT_USER, retry=False)
    except AuthError as exc:
        return [Finding(False, "credentials", f"the target refused them: {exc.server_message}")]
    except (TransportError, RetryableServerError) as exc:
        return [Finding(False, "target", f"{config.target.url} does not answer: {exc}", True)]
    except DsmapiError as exc:
        return [
            Finding(
                False,
                "target",
                f"{config.target.url} is not a working DSMAPI site: {exc}; check [target] url",
            )
        ]
    name = user.get("displayName") or user.get("id") if isinstance(user, dict) else None
    findings.append(Finding(True, "target", f"{config.target.url} answers; signed in as {name}"))
    seen_configs: set[str] = set()
    for index, mapping in enumerate(config.mapping):
        subject = f"mapping[{index}].dataset"
        try:
            view = await client.get_view(mapping.dataset)
            findings.append(
                Finding(True, subject, f"{mapping.dataset} exists ({view.get('name')!r})")
            )
        except RejectedError as exc:
            findings.append(
                Finding(False, subject, f"{mapping.dataset} not found ({exc.status}): check the id")
            )
        except DsmapiError as exc:
            findings.append(Finding(False, subject, f"{mapping.dataset}: {exc}"))
        if mapping.import_config and mapping.import_config not in seen_configs:
            seen_configs.add(mapping.import_config)
            subject = f"mapping[{index}].import_config"
            try:
                await client.call("GET", f"{API}/config/{mapping.import_config}", retry=False)
                findings.append(
                    Finding(True, subject, f"import config {mapping.import_config!r} exists")
                )
            except DsmapiError as exc:
                findings.append(
                    Finding(
                        False,
                        subject,
                        f"import config {mapping.import_config!r} is not usable: {exc}; "
                        "create it (e.g. build it from an output schema) or fix the name",
                    )
                )
    return findings


async def check_buckets(config: Config) -> list[Finding]:
    """Each bucket source answers a listing with these credentials (what, where, fix).

    A store that cannot be reached (or answers 5xx) is a check that could not be made
    (retryable: exit 5); a missing bucket or refused keys or rights is a problem of the
    configuration.
    """
    from dsmsyncd.sources.base import SourceError
    from dsmsyncd.sources.bucket import BucketSource

    findings: list[Finding] = []
    for source_config in config.source:
        if not source_config.url.startswith("s3://"):
            continue
        subject = f"source {source_config.name}"
        try:
            async with BucketSource(source_config) as source:
                await source.probe()
        except SourceError as exc:
            findings.append(Finding(False, subject, str(exc), retryable=exc.retryable))
        else:
            findings.append(Finding(True, subject, f"{source_config.url} can be listed"))
    return findings


async def check_notify(config: Config) -> list[Finding]:
    """Each ``[[notify]]`` mail server takes a connection, TLS and the login, as a
    delivery would (no mail is sent). A webhook is not contacted: any request to it
    would post a message to its channel."""
    from urllib.parse import urlsplit

    from dsmsyncd.notify.channels import DeliveryFailed, Email
    from dsmsyncd.notify.message import Scrubber

    findings: list[Finding] = []
    for index, notify in enumerate(config.notify):
        subject = f"notify {notify.label(index)}"
        if notify.webhook_url is not None:
            host = urlsplit(notify.webhook_url.get_secret_value()).netloc
            findings.append(Finding(True, subject, f"webhook {host} not contacted (it would post)"))
        if notify.smtp_host is None:
            continue
        email = Email(notify, notify.timeout, Scrubber(secret_texts(config)))
        try:
            await email.probe()
        except DeliveryFailed as exc:
            findings.append(Finding(False, subject, str(exc), retryable=exc.retryable))
        else:
            login = " and login" if notify.smtp_username is not None else ""
            how = {"starttls": "STARTTLS", "tls": "TLS", "none": "no TLS"}[notify.smtp_tls]
            findings.append(Finding(True, subject, f"smtp {email.host} accepts {how}{login}"))
    return findings
