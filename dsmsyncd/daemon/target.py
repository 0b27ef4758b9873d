"""The DSMAPI client for the configured target, built in one place from ``[target]``.

Separate from the daemon so that one-shot commands (``push``, ``check-config``) build
the same client without importing the daemon's sources and their S3 client.
"""

from __future__ import annotations

import logging

from dsmsyncd.config.schema import Config
from dsmsyncd.daemon.lease import Lease
from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.dsmapi.rate_limit import TokenBucket
from dsmsyncd.dsmapi.retry import OnRetry

logger = logging.getLogger("dsmsyncd.daemon.target")


def client_for(
    config: Config, *, on_retry: OnRetry | None = None, upload_rate: TokenBucket | None = None
) -> DsmapiClient:
    """The target's client; chunk bodies pay ``upload_rate`` (the daemon's one bucket,
    shared by the clients of successive ``[target]`` configurations), else a bucket of
    their own at ``[limits] max_upload_rate`` (one-shot commands)."""
    if upload_rate is None and config.limits.max_upload_rate:
        upload_rate = TokenBucket(config.limits.max_upload_rate)
    target = config.target
    credentials = Credentials(
        username=target.username.get_secret_value() if target.username else None,
        password=target.password.get_secret_value() if target.password else None,
        token=target.token.get_secret_value() if target.token else None,
        app_token=target.app_token.get_secret_value() if target.app_token else None,
    )
    ca = str(target.ca_bundle) if target.ca_bundle else None
    client = DsmapiClient(
        target.url,
        credentials,
        ca_bundle=ca,
        timeout_s=target.request_timeout,
        on_retry=on_retry,
    )
    if upload_rate is not None:
        client.upload_pace = upload_rate.take
    return client


async def opened_client_for_reload(
    new: Config, *, on_retry: OnRetry | None, upload_rate: TokenBucket | None
) -> DsmapiClient | None:
    """An opened client for a reload's changed ``[target]``, or None (logged) when it
    cannot be built: the reload is then refused and the running configuration kept."""
    try:
        return await client_for(new, on_retry=on_retry, upload_rate=upload_rate).__aenter__()
    except (OSError, ValueError) as exc:
        logger.error(
            "reload refused, keeping the running configuration: cannot build "
            "a client for [target] %s: %s",
            new.target.url,
            exc,
        )
        return None


class ClientLease(Lease[DsmapiClient]):
    """The target's client, leased by the jobs that run with it (see ``Lease``).

    A SIGHUP that changes ``[target]`` builds a new client for the jobs that start
    from then on; jobs already running keep the client they started with (a job's
    revision lives on the target it was opened on) and ``retire`` closes the old
    client once the last of them is done.
    """

    def __init__(self, client: DsmapiClient) -> None:
        super().__init__(client, client.aclose)
