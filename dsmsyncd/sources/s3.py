"""The S3 client of a bucket source, object identities, and the one place S3 errors become ours.

Every S3-compatible store (AWS, MinIO, Ceph, R2) is reached through one aiobotocore
client per source, so credentials come from ``[[source]]`` or from the standard chain
(environment, shared credentials file, Kubernetes web-identity token, instance
metadata) exactly as the AWS tools find them.

Errors are translated here and nowhere else (style guide, practice 9)::

    listing, probing    -> SourceError(what, where, fix)   logged; retried next poll
    reading an object   -> BlobChanged   412 / ETag or size differs: a new identity
                        -> BlobVanished  404 NoSuchKey
                        -> S3Error       anything else (an OSError: the job retries)
    copying, deleting   -> S3Error       (the finalizer's caller leaves the object)
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore import exceptions as botocore_exceptions  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)

from dsmsyncd.blob import BlobChanged, BlobVanished
from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources.base import SourceError

if TYPE_CHECKING:  # the stubs are a development dependency only
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import HeadObjectOutputTypeDef

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
# botocore's "standard" retry mode: throttling and 5xx are retried with backoff.
MAX_ATTEMPTS = 3

_CREDENTIAL_FIX = (
    "set access_key_id_file and secret_access_key_file in [[source]], or provide "
    "credentials through the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
    "AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) or a shared credentials file"
)
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "RequestExpired"}
_CHANGED = {"PreconditionFailed", "412"}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "503"}


class S3Error(OSError):
    """Reading or moving an object failed in a way that may heal (network, permissions).

    An ``OSError``, so the pipeline treats it as it treats a local I/O failure: a read
    retries the job later, a finalize leaves the object in place and says so.
    """


def endpoint_of(config: SourceConfig) -> str:
    """Where requests go, for messages: the configured endpoint, or AWS by region."""
    return config.endpoint_url or f"AWS S3 ({config.region or 'default region'})"


def create_client(config: SourceConfig) -> contextlib.AbstractAsyncContextManager[S3Client]:
    """An unopened client for ``config``; entering it opens the connection pool.

    Explicit keys win; without them aiobotocore's default session walks the standard
    credential chain. Nothing is sent until the first request.
    """
    options: dict[str, Any] = {
        "endpoint_url": config.endpoint_url,
        "region_name": config.region,
        "config": AioConfig(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": config.addressing_style},
        ),
    }
    if config.access_key_id is not None and config.secret_access_key is not None:
        options["aws_access_key_id"] = config.access_key_id.get_secret_value()
        options["aws_secret_access_key"] = config.secret_access_key.get_secret_value()
        if config.session_token is not None:
            options["aws_session_token"] = config.session_token.get_secret_value()
    return cast(
        "contextlib.AbstractAsyncContextManager[S3Client]",
        get_session().create_client("s3", **options),
    )


# -- identities ---------------------------------------------------------------------------


def object_identity(bucket: str, key: str, etag: str, size: int) -> str:
    """``s3://bucket/key#etag:size``: an overwrite with other content is a new identity."""
    return f"s3://{bucket}/{key}#{unquote_etag(etag)}:{size}"


def parse_identity(identity: str) -> tuple[str, str, str, int]:
    """(bucket, key, etag, size) of an ``object_identity``; ValueError if it is not one.

    Keys may contain ``#`` and ``:``; ETags contain neither, so both splits go from the
    right.
    """
    if not identity.startswith("s3://"):
        raise ValueError(f"not an object identity: {identity!r}")
    location, sep, version = identity.removeprefix("s3://").rpartition("#")
    etag, colon, size = version.rpartition(":")
    bucket, slash, key = location.partition("/")
    if not (sep and colon and slash and bucket and key and etag and size.isdigit()):
        raise ValueError(f"not an object identity: {identity!r}")
    return bucket, key, etag, int(size)


def unquote_etag(etag: str) -> str:
    return etag.strip().removeprefix("W/").strip('"')


def relative_key(key: str, prefix: str) -> str | None:
    """The key minus the source prefix (what mappings match); None if it must be refused.

    Refused: keys outside the prefix, "directory" markers (ending in ``/``), and keys
    whose normalised relative path leaves the prefix (``in/../secret.csv``) or is
    empty. Leading slashes are dropped (``in//a.csv`` is ``a.csv``); the exact key is
    kept in the identity, so nothing is lost by it.
    """
    if not key.startswith(prefix) or key.endswith("/"):
        return None
    relative = key[len(prefix) :].lstrip("/")
    normalised = posixpath.normpath(relative) if relative else ""
    if normalised in ("", ".", "..") or normalised.startswith("../"):
        return None
    return relative


# -- errors -------------------------------------------------------------------------------


def explain(exc: BaseException, config: SourceConfig, action: str) -> tuple[str, str]:
    """(what went wrong, how to fix it) for an error of ``action`` on the bucket."""
    endpoint = endpoint_of(config)
    bucket = config.bucket
    if isinstance(exc, NoCredentialsError):
        return "no credentials found", _CREDENTIAL_FIX
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return (
            f"cannot connect to {endpoint} ({exc})",
            "check endpoint_url in [[source]] and that the store is up and reachable",
        )
    if isinstance(exc, ReadTimeoutError):
        return f"{endpoint} did not answer {action} in time", "check the store's health"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and action == "probe"):
            return (
                f"bucket {bucket} does not exist on {endpoint}",
                "create the bucket, or fix url (and endpoint_url) in [[source]]",
            )
        if code in _EXPIRED:
            return (
                f"the credentials have expired ({code})",
                "refresh them (web-identity token file, session token, rotated keys); "
                "if they are fresh, check this machine's clock",
            )
        if code == "RequestTimeTooSkewed":
            return "this machine's clock is too far off", "synchronise the clock (NTP)"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"{endpoint} does not accept the credentials ({code})", _CREDENTIAL_FIX
        if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
            return (
                f"access denied to {action} on bucket {bucket} ({code or 'HTTP 403'})",
                "grant these credentials s3:ListBucket, s3:GetObject, s3:PutObject and "
                "s3:DeleteObject on the bucket and prefix, or use other credentials",
            )
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301"):
            return (
                f"bucket {bucket} is in another region than {config.region or 'the default'}",
                "set region in [[source]] to the bucket's region",
            )
        detail = f"{code}: {message}" if message else code or "an error"
        return (
            f"{endpoint} answered {action} with {detail} (HTTP {status})",
            "check the store's documentation for this error, and url and endpoint_url",
        )
    return f"{action} failed: {exc}", "check endpoint_url in [[source]] and the network"


def is_transient(exc: BaseException) -> bool:
    """The store could not be reached or did not answer properly (connection refused or
    cut, timeout, 5xx, throttling): no fault of the configuration; try again later."""
    if isinstance(exc, botocore_exceptions.ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or _error_code(exc) in _TRANSIENT
    return False


@contextlib.contextmanager
def source_errors(config: SourceConfig, action: str) -> Iterator[None]:
    """Turn any S3 failure of ``action`` into a ``SourceError`` naming the source."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        what, fix = explain(exc, config, action)
        raise SourceError(
            what,
            where=f"source {config.name} ({config.url})",
            fix=fix,
            retryable=is_transient(exc),
        ) from exc


@contextlib.contextmanager
def request_errors(config: SourceConfig, action: str, where: str) -> Iterator[None]:
    """Turn any S3 failure of ``action`` on ``where`` (an object URL) into ``S3Error``."""
    try:
        yield
    except (BotoCoreError, ClientError, aiohttp.ClientError, TimeoutError) as exc:
        what, fix = explain(exc, config, action)
        raise S3Error(f"{where}: {what}; {fix}") from exc


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def is_precondition_failed(exc: BaseException) -> bool:
    """A conditional request (If-Match, If-None-Match) found another version."""
    return isinstance(exc, ClientError) and _error_code(exc) in _CHANGED


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and _error_code(exc) in _MISSING_KEY


async def head_object(
    client: S3Client, config: SourceConfig, bucket: str, key: str
) -> HeadObjectOutputTypeDef | None:
    """The object's metadata, or None when there is no such key; SourceError otherwise."""
    try:
        return await client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        with source_errors(config, "HeadObject"):
            raise


# -- a bucket object as a Blob ------------------------------------------------------------


@dataclass(frozen=True)
class S3ObjectBlob:
    """One version of an object (by ETag), read by ranged GETs, never whole, never to disk.

    Every read carries ``If-Match: <etag>``: once the object is overwritten the store
    answers 412 and the read raises ``BlobChanged`` instead of returning bytes of the
    new version in the middle of an upload of the old one.
    """

    client: S3Client = field(repr=False, compare=False)
    config: SourceConfig = field(repr=False, compare=False)
    bucket: str
    key: str
    etag: str
    size: int

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def identity(self) -> str:
        return object_identity(self.bucket, self.key, self.etag, self.size)

    @property
    def version_pinned(self) -> bool:
        return True  # every read carries If-Match: <etag>

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    async def read_range(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        async with self._errors():
            # The body is read inside: a read that fails half-way is a request error too.
            response = await self.client.get_object(
                Bucket=self.bucket,
                Key=self.key,
                Range=f"bytes={offset}-{offset + length - 1}",
                IfMatch=f'"{self.etag}"',
            )
            async with response["Body"] as body:
                data = cast(bytes, await body.read())
        found = unquote_etag(response.get("ETag", ""))
        if found and found != self.etag:
            raise BlobChanged(self.url, f"its ETag is now {found}, was {self.etag}")
        total = _total_size(response.get("ContentRange"))
        if total is not None and total != self.size:
            raise BlobChanged(self.url, f"its size is now {total} bytes, was {self.size}")
        if len(data) != length:
            raise BlobChanged(
                self.url, f"asked for {length} bytes at {offset}, got {len(data)}: it changed"
            )
        return data

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` from one ranged GET (the response body arrives as bytes)."""
        buffer[:] = await self.read_range(offset, len(buffer))

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except ClientError as exc:
            code = _error_code(exc)
            if code in _CHANGED:
                raise BlobChanged(self.url, f"overwritten since ETag {self.etag}") from exc
            if code in _MISSING_KEY:
                raise BlobVanished(self.url, "deleted before it was fully read") from exc
            with request_errors(self.config, "GetObject", self.url):
                raise
        except (BotoCoreError, aiohttp.ClientError, TimeoutError):
            with request_errors(self.config, "GetObject", self.url):
                raise


def _total_size(content_range: str | None) -> int | None:
    """The total of ``bytes 0-99/1234``; None when absent or unknown (``*``)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None
