"""The DSMAPI client for the configured target, built in one place from ``[target]``.

Separate from the daemon so that one-shot commands (``push``, ``check-config``) build
the same client without importing the daemon's sources and their S3 client.
"""

from __future__ import annotations

from dsmsyncd.config.schema import Config
from dsmsyncd.daemon.lease import Lease
from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.dsmapi.retry import OnRetry


def client_for(config: Config, *, on_retry: OnRetry | None = None) -> DsmapiClient:
    target = config.target
    credentials = Credentials(
        username=target.username.get_secret_value() if target.username else None,
        password=target.password.get_secret_value() if target.password else None,
        token=target.token.get_secret_value() if target.token else None,
        app_token=target.app_token.get_secret_value() if target.app_token else None,
    )
    ca = str(target.ca_bundle) if target.ca_bundle else None
    return DsmapiClient(
        target.url,
        credentials,
        ca_bundle=ca,
        timeout_s=target.request_timeout,
        on_retry=on_retry,
    )


class ClientLease(Lease[DsmapiClient]):
    """The target's client, leased by the jobs that run with it (see ``Lease``).

    A SIGHUP that changes ``[target]`` builds a new client for the jobs that start
    from then on; jobs already running keep the client they started with (a job's
    revision lives on the target it was opened on) and ``retire`` closes the old
    client once the last of them is done.
    """

    def __init__(self, client: DsmapiClient) -> None:
        super().__init__(client, client.aclose)
