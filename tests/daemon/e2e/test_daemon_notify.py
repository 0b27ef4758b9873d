"""Notifications from a real daemon run: a webhook receiver and an SMTP server on loopback
(``tests/daemon/support/receivers.py``) get exactly the events their ``[[notify]]``
tables ask for, with the documented fields and no secret, within the rate limit; and
receivers that refuse or never answer do not hold publishing back.

Every wait is on an event: a job's run ending (the daemon's listener), a body arriving,
the notifier counting an outcome. Nothing is timed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.notify.progress import Progress
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import Job, JobState
from tests.daemon.e2e.inprocess import RunningDaemon, admin_get, running_daemon
from tests.daemon.e2e.processes import run_cli
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.receivers import smtp_receiver, webhook_receiver
from tests.support.local_server import ROBOT
from tests.support.ports import free_port

SEED = b"id,name\n1,ann\n2,bob\n"
GOOD = b"id,name\n3,cy\n4,di\n"
# The path of a Slack-style webhook URL is its credential; so is the SMTP password.
HOOK_PATH = "/services/T0001/B0002/hook-secret-3f9a"
SMTP_LOGIN = ("mailer", "smtp-secret-77c1")


def secret_file(site: Site, name: str, value: str) -> str:
    path = site.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    return str(path)


async def notifier_progress(daemon: RunningDaemon) -> Progress:
    notifier = daemon.daemon.notifications.notifier
    assert notifier is not None
    return notifier.progress


async def test_webhook_and_mail_receive_exactly_their_events_without_secrets(
    site: Site, client: DsmapiClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    async with webhook_receiver() as hook, smtp_receiver(tmp_path, SMTP_LOGIN) as smtp:
        site.notify = [
            {
                "name": "chat",
                "webhook_url_file": secret_file(site, "hook.url", hook.url + HOOK_PATH),
                "events": ["published", "quarantined"],
            },
            {
                "name": "ops-mail",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "starttls",
                "ca_bundle": str(smtp.ca_path),
                "smtp_username": SMTP_LOGIN[0],
                "smtp_password_file": secret_file(site, "smtp.pw", SMTP_LOGIN[1]),
                "mail_from": "dsmsyncd@example.gov",
                "mail_to": ["ops@example.gov", "data@example.gov"],
                "events": ["quarantined"],
            },
        ]
        async with running_daemon(site) as daemon:
            site.drop_file("good.csv", GOOD)
            (good,) = await daemon.finished_jobs(1)
            site.drop_file("bad.csv", b"")
            (bad,) = await daemon.finished_jobs(1)
            progress = await notifier_progress(daemon)
            await progress.until(lambda p: p.pending == 0)
            metrics = await admin_get(daemon, "/metrics")
            status = json.loads(await admin_get(daemon, "/status"))
            page = await admin_get(daemon, "/status?format=html")

    assert (good.state, bad.state) == (JobState.PUBLISHED, JobState.QUARANTINED)
    assert [b["event"] for b in hook.bodies] == ["published", "quarantined"]
    assert bad.finished_at is not None
    assert bad.error is not None
    said = bad.error.removeprefix("empty_file: ")
    assert hook.bodies[1] == {
        "event": "quarantined",
        "dataset": ff,
        "file": "bad.csv",
        "source": "drop",
        "reason": "empty_file",
        "message": said,
        "state": "quarantined",
        "attempts": 0,
        "job_id": bad.id,
        "at": bad.finished_at.isoformat(),
        "text": f"dsmsyncd: bad.csv (dataset {ff}) was quarantined (empty_file): {said}",
    }
    assert hook.bodies[0]["text"] == f"dsmsyncd: good.csv (dataset {ff}) was published"
    assert (hook.bodies[0]["file"], hook.bodies[0]["reason"]) == ("good.csv", None)

    assert smtp.logins == [SMTP_LOGIN]
    assert smtp.envelopes == [("dsmsyncd@example.gov", ["ops@example.gov", "data@example.gov"])]
    (mail,) = smtp.mails
    assert mail["Subject"] == f"[dsmsyncd] quarantined: bad.csv ({ff})"
    assert mail["To"] == "ops@example.gov, data@example.gov"
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode().replace("\r\n", "\n")
    assert body.startswith(hook.bodies[1]["text"] + "\n\n")
    assert f"dataset: {ff}\nfile: bad.csv\nsource: drop\nreason: empty_file\n" in body

    shown_anywhere = [*hook.arrivals.raw, *smtp.arrivals.raw]
    shown_anywhere += [t.encode() for t in (metrics, json.dumps(status), page, caplog.text)]
    for text in shown_anywhere:
        for secret in (HOOK_PATH, "hook-secret", SMTP_LOGIN[1], ROBOT[1]):
            assert secret.encode() not in text
    assert "<h2>Notifications</h2>" in page
    assert "notify chat: quarantined sent by webhook" in caplog.text
    assert 'dsmsyncd_notifications_total{channel="webhook",outcome="sent"} 2.0' in metrics
    assert 'dsmsyncd_notifications_total{channel="email",outcome="sent"} 1.0' in metrics
    shown = {target["name"]: target for target in status["notify"]}
    assert (shown["chat"]["sent"], shown["chat"]["channels"]) == (2, ["webhook"])
    assert (shown["ops-mail"]["sent"], shown["ops-mail"]["failed"]) == (1, 0)


async def test_rate_limit_sends_max_per_hour_and_counts_the_rest(
    site: Site, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    async with webhook_receiver() as hook:
        site.notify = [
            {"name": "chat", "webhook_url": hook.url + "/hook", "events": ["quarantined"]}
        ]
        site.notify[0]["max_per_hour"] = 2
        async with running_daemon(site) as daemon:
            for n in range(5):
                site.drop_file(f"broken-{n}.csv", b"")
                (job,) = await daemon.finished_jobs(1)
                assert job.state is JobState.QUARANTINED
            progress = await notifier_progress(daemon)
            await progress.until(lambda p: p.pending == 0)
            metrics = await admin_get(daemon, "/metrics")
            status = json.loads(await admin_get(daemon, "/status"))

    assert [b["file"] for b in hook.bodies] == ["broken-0.csv", "broken-1.csv"]
    assert 'dsmsyncd_notifications_total{channel="webhook",outcome="suppressed"} 3.0' in metrics
    (chat,) = status["notify"]
    assert (chat["sent"], chat["suppressed"], chat["held_back"]) == (2, 3, 3)


async def test_unreachable_receivers_do_not_delay_publishing(
    site: Site, client: DsmapiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    closed_port = free_port()
    closed = f"http://127.0.0.1:{closed_port}{HOOK_PATH}"
    async with webhook_receiver(hang=True) as hanging:
        retry: dict[str, Any] = {"attempts": 2, "retry_delay": "50ms", "events": ["published"]}
        site.notify = [
            {"name": "closed", "webhook_url": closed, **retry},
            {"name": "hanging", "webhook_url": hanging.url + "/hook", "timeout": "5m", **retry},
        ]
        async with running_daemon(site) as daemon:
            site.drop_file("first.csv", GOOD)
            (first,) = await daemon.finished_jobs(1)
            await hanging.arrivals.until(lambda raw: len(raw) == 1)
            # The hanging receiver holds the first notification unanswered: a second
            # file is published all the same.
            site.drop_file("second.csv", b"id,name\n5,ed\n")
            (second,) = await daemon.finished_jobs(1)
            assert hanging.answered == 0
            progress = await notifier_progress(daemon)
            assert progress.total("sent", "hanging") == 0
            await progress.until(lambda p: p.total("failed", "closed") == 2)
            metrics = await admin_get(daemon, "/metrics")
            status = json.loads(await admin_get(daemon, "/status"))
            hanging.release.set()
            await progress.until(lambda p: p.total("sent", "hanging") == 2)

    assert (first.state, second.state) == (JobState.PUBLISHED, JobState.PUBLISHED)
    assert 'dsmsyncd_notifications_total{channel="webhook",outcome="failed"} 2.0' in metrics
    assert 'dsmsyncd_notifications_total{channel="webhook",outcome="retried"} 2.0' in metrics
    shown = {target["name"]: target for target in status["notify"]}
    last_error = shown["closed"]["last_error"]
    assert last_error.startswith(f"webhook 127.0.0.1:{closed_port}: ClientConnectorError")
    assert "hook-secret" not in json.dumps(status) + caplog.text
    assert (
        f"notify closed: published notification not delivered by webhook after 2 attempt(s): "
        f"{last_error}"
    ) in caplog.text
    assert [b["file"] for b in hanging.bodies] == ["first.csv", "second.csv"]


async def test_a_failing_job_notifies_failed_then_recovered_instead_of_published(
    server: RunningServer, client: DsmapiClient, tmp_path: Path
) -> None:
    ff = await publish_dataset(client, SEED)
    # The daemon starts with a target nobody answers at: its job fails and is retried.
    site = Site(tmp_path / "site", f"http://127.0.0.1:{free_port()}")
    site.map(ff)
    site.limits = {"retry_delay": "100ms", "retry_max_delay": "200ms"}
    async with webhook_receiver() as hook:
        wants = ["failed", "retrying", "recovered", "published"]
        site.notify = [{"webhook_url": hook.url + "/hook", "events": wants}]
        async with running_daemon(site) as daemon:
            site.drop_file("late.csv", GOOD)
            await daemon.until(lambda runs: len(failed_runs(runs)) >= 1)
            site.server_url = server.url  # the operator fixes [target] and reloads
            await daemon.daemon.apply_config(load_config(site.write_config()))
            await daemon.until(lambda runs: runs[-1].state is JobState.PUBLISHED)
            progress = await notifier_progress(daemon)
            await progress.until(lambda p: p.pending == 0)

    published = daemon.runs[-1]
    assert [(b["event"], b["file"]) for b in hook.bodies] == [
        ("failed", "late.csv"),
        ("recovered", "late.csv"),
    ]
    failed, recovered = hook.bodies
    assert (failed["reason"], failed["state"], failed["attempts"]) == (
        "transport",
        "failed_retryable",
        1,
    )
    assert failed["text"].startswith(
        f"dsmsyncd: late.csv (dataset {ff}) failed (transport) and will be retried: "
    )
    assert (recovered["reason"], recovered["attempts"]) == ("failed_attempts", published.attempts)
    assert recovered["text"] == (
        f"dsmsyncd: late.csv (dataset {ff}) was published again after earlier failures "
        "(failed_attempts)"
    )


def failed_runs(runs: list[Job]) -> list[Job]:
    return [job for job in runs if job.state is JobState.FAILED_RETRYABLE]


async def test_a_reload_that_changes_notify_moves_the_next_events_to_the_new_targets(
    site: Site, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    async with webhook_receiver() as old, webhook_receiver() as new:
        site.notify = [{"name": "old", "webhook_url": old.url + "/h", "events": ["published"]}]
        async with running_daemon(site) as daemon:
            site.drop_file("one.csv", GOOD)
            await daemon.finished_jobs(1)
            await old.arrivals.until(lambda raw: len(raw) == 1)
            site.notify = [{"name": "new", "webhook_url": new.url + "/h", "events": ["published"]}]
            await daemon.daemon.apply_config(load_config(site.write_config()))
            site.drop_file("two.csv", b"id,name\n5,ed\n")
            await daemon.finished_jobs(1)
            progress = await notifier_progress(daemon)
            await progress.until(lambda p: p.pending == 0)
            status = json.loads(await admin_get(daemon, "/status"))

    assert [b["file"] for b in old.bodies] == ["one.csv"]
    assert [b["file"] for b in new.bodies] == ["two.csv"]
    assert [(t["name"], t["sent"]) for t in status["notify"]] == [("new", 1)]


async def test_check_config_logs_in_to_the_mail_server_and_names_a_refusal(
    site: Site, client: DsmapiClient, tmp_path: Path
) -> None:
    site.map(await publish_dataset(client, SEED))
    async with smtp_receiver(tmp_path, SMTP_LOGIN) as smtp, webhook_receiver() as hook:

        def mail_with(password: str) -> dict[str, Any]:
            return {
                "name": "mail",
                "webhook_url": hook.url + HOOK_PATH,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "ca_bundle": str(smtp.ca_path),
                "smtp_username": SMTP_LOGIN[0],
                "smtp_password_file": secret_file(site, "smtp.pw", password),
                "mail_from": "dsmsyncd@example.gov",
                "mail_to": ["ops@example.gov"],
                "events": ["failed"],
            }

        site.notify = [mail_with(SMTP_LOGIN[1])]
        accepted = await run_cli("check-config", "-c", str(site.write_config()))
        site.notify = [mail_with("wrong-password-5e1d")]
        refused = await run_cli("check-config", "-c", str(site.write_config()))

    assert accepted.code == 0, accepted
    assert f"ok   notify mail: smtp 127.0.0.1:{smtp.port} accepts STARTTLS and login" in (
        accepted.out
    )
    assert "ok   notify mail: webhook 127.0.0.1:" in accepted.out
    assert refused.code == 2, refused
    assert f"FAIL notify mail: smtp 127.0.0.1:{smtp.port}: SMTPAuthenticationError" in refused.out
    assert smtp.mails == []  # a check sends nothing
    assert hook.arrivals.raw == []
    for result in (accepted, refused):
        for secret in ("hook-secret", SMTP_LOGIN[1], "wrong-password-5e1d"):
            assert secret not in result.out + result.err
