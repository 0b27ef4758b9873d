"""A bucket prefix on any S3-compatible store, discovered by listing it every ``poll_interval``.

Buckets send no events, so each poll lists the prefix (paginated ``ListObjectsV2``)
and compares it in one pass with what the stability gate remembers: key → (size,
ETag, first seen). Only objects that have just become stable are yielded, so the
daemon touches its state store for new or changed objects only, never for the
100 000 it has seen before. Objects still settling are re-checked with a HEAD each
when they are due (cheaper than a full listing while they are few).

An object is identified by ``s3://bucket/key#etag:size``: an overwrite with new
content is a new file and a new job. The exact key lives in that identity; the
``relative_path`` (key minus prefix, what mappings match) is refused when, once
normalised, it leaves the prefix (``in/../x.csv``).

The source owns one aiobotocore client, opened by ``start`` and closed by ``aclose``
(or ``async with``); its blobs and the ``BucketFinalizer`` borrow it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from enum import Enum
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING

from dsmsyncd.config import ignore
from dsmsyncd.config.paths import bucket_location
from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources.base import Batch, Candidate, SourceError, wait_for_next_look
from dsmsyncd.sources.s3 import (
    S3ObjectBlob,
    create_client,
    head_object,
    object_identity,
    parse_identity,
    relative_key,
    source_errors,
    unquote_etag,
)
from dsmsyncd.sources.stability import Clock, StabilityGate

if TYPE_CHECKING:  # the stubs are a development dependency only
    from types_aiobotocore_s3 import S3Client

logger = logging.getLogger("dsmsyncd.sources.bucket")

# Settling objects are re-checked by HEAD when due while at most this many; past it,
# a full listing (1 000 keys a request) is the cheaper way to look at them again.
RECHECK_MAX_KEYS = 50


class ClientState(Enum):
    # Built from the config; no client yet (construction never fails on the network).
    UNOPENED = "unopened"
    # The client is open: listing, reading and finalizing work.
    OPENED = "opened"
    # Closed at shutdown; a closed source is not reopened (build a new one).
    CLOSED = "closed"


def _etag_number(etag: str) -> int:
    """A stable 64-bit stand-in for an ETag in the gate's (size, mtime) pair."""
    return int.from_bytes(hashlib.blake2b(etag.encode(), digest_size=8).digest(), "big")


class BucketSource:
    """Yields the stable objects under one ``s3://bucket/prefix/``, oldest first.

    Args:
        config: the ``[[source]]``.
        exclude_dirs: the ``archive_dir``/``quarantine_dir`` values of its mappings;
            keys under those in this bucket are never offered (they would loop).
        clock: the stability gate's monotonic clock (tests drive it).
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        exclude_dirs: Sequence[Path | str] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.name
        self.bucket = config.bucket
        self.prefix = config.prefix
        locations = (bucket_location(d, self.bucket) for d in exclude_dirs)
        self.exclude_prefixes = tuple(p for b, p in locations if b == self.bucket)
        self._ignore = tuple(config.ignore)
        self._poll_s = config.poll_interval
        self._gate = StabilityGate(config.min_age, clock)
        # key -> (etag, size) of the objects yielded and still listed: open_blob's lookup
        # when a caller has no identity.
        self._yielded: dict[str, tuple[str, int]] = {}
        self._refused: set[str] = set()
        self._state = ClientState.UNOPENED
        self._stack = AsyncExitStack()
        self._client: S3Client | None = None
        self._start_lock = asyncio.Lock()
        self.problem: str | None = None
        """The last failure of a poll (None once one succeeds): for status and logs."""

    def __repr__(self) -> str:
        return f"BucketSource({self.name!r}, {self.config.url!r}, {self._state.value})"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the client (idempotent); sends nothing yet, so it fails only on bad config."""
        async with self._start_lock:
            if self._state is ClientState.OPENED:
                return
            if self._state is ClientState.CLOSED:
                raise RuntimeError(f"{self!r} is closed; build a new source")
            try:
                self._client = await self._stack.enter_async_context(create_client(self.config))
            except ValueError as exc:  # botocore: malformed endpoint_url or region
                raise SourceError(
                    f"cannot create an S3 client: {exc}",
                    where=f"source {self.name} ({self.config.url})",
                    fix="fix endpoint_url and region in [[source]]",
                ) from exc
            self._state = ClientState.OPENED

    async def aclose(self) -> None:
        """Close the client; blobs and finalizers that borrowed it stop working."""
        self._state = ClientState.CLOSED
        self._client = None
        await self._stack.aclose()

    async def __aenter__(self) -> BucketSource:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def state(self) -> ClientState:
        """Where the source's client is in its life (a replaced source ends CLOSED)."""
        return self._state

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise SourceError(
                f"the S3 client is {self._state.value}",
                where=f"source {self.name}",
                fix="start the source before reading from it (BucketSource.start)",
            )
        return self._client

    # -- discovery -------------------------------------------------------------------------

    async def scan(self) -> list[Candidate]:
        """List the whole prefix once; the objects that just became stable, oldest first.

        Raises ``SourceError`` (what, where, fix) when the bucket cannot be listed.
        """
        client = self.client
        ready: list[Candidate] = []
        refused: set[str] = set()
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix,
            PaginationConfig={"PageSize": self.config.list_page_size},
        )
        with source_errors(self.config, "ListObjectsV2"):
            async for page in pages:
                for item in page.get("Contents", []):
                    key = item.get("Key", "")
                    candidate = self._observe(
                        key,
                        unquote_etag(item.get("ETag", "")),
                        item.get("Size", 0),
                        item.get("LastModified"),
                        refused,
                    )
                    if candidate is not None:
                        ready.append(candidate)
        self._gate.sweep()
        self._yielded = {k: v for k, v in self._yielded.items() if k in self._gate}
        for key in sorted(refused - self._refused):
            logger.warning(
                "source %s: key %r leaves the prefix %r once normalised: refused",
                self.name,
                key,
                self.prefix,
            )
        self._refused = refused
        return _in_arrival_order(ready)

    async def recheck_pending(self) -> list[Candidate]:
        """HEAD the objects still settling (no listing); those now stable, oldest first."""
        client = self.client
        ready: list[Candidate] = []
        for key in self._gate.pending():
            head = await head_object(client, self.config, self.bucket, key)
            if head is None:
                self._gate.forget(key)
                continue
            etag = unquote_etag(head.get("ETag", ""))
            found = self._observe(
                key, etag, head.get("ContentLength", 0), head.get("LastModified"), set()
            )
            if found is not None:
                ready.append(found)
        return _in_arrival_order(ready)

    def _observe(
        self, key: str, etag: str, size: int, modified: datetime | None, refused: set[str]
    ) -> Candidate | None:
        if any(key.startswith(prefix) for prefix in self.exclude_prefixes):
            return None
        relative = relative_key(key, self.prefix)
        if relative is None:
            if key.startswith(self.prefix) and not key.endswith("/"):
                refused.add(key)
            return None
        if ignore.matches(self._ignore, PurePosixPath(relative).name, relative):
            return None
        if not self._gate.observe(key, size, _etag_number(etag)):
            return None
        self._yielded[key] = (etag, size)
        mtime_ns = int(modified.timestamp() * 1_000_000) * 1000 if modified else 0
        identity = object_identity(self.bucket, key, etag, size)
        return Candidate(self.name, relative, size, mtime_ns, identity)

    async def candidates(self, stop: asyncio.Event) -> AsyncGenerator[Candidate, None]:
        """List at once, then every ``poll_interval`` (settling objects sooner) until ``stop``.

        A failing poll is logged (once while it lasts), kept in ``problem`` for
        ``check``/status, and tried again at the next poll.
        """
        await self.start()
        loop = asyncio.get_running_loop()
        batch = Batch()
        next_full = loop.time()
        try:
            while not stop.is_set():
                settling = sum(1 for _ in self._gate.pending())
                full = loop.time() >= next_full or settling > RECHECK_MAX_KEYS
                batch = Batch()
                try:
                    batch = Batch(await (self.scan() if full else self.recheck_pending()))
                except SourceError as exc:
                    self._failed(exc)
                else:
                    self._recovered()
                if full:
                    next_full = loop.time() + self._poll_s
                for candidate in batch.hand_over(stop):
                    yield candidate
                # While the bucket fails, settling objects wait for the next poll too.
                await wait_for_next_look(stop, next_full, self._gate, settling=self.problem is None)
        finally:
            for candidate in batch.unhanded:
                key = parse_identity(candidate.identity)[1]
                self._gate.forget(key)
                self._yielded.pop(key, None)

    def _failed(self, exc: SourceError) -> None:
        message = str(exc)
        if message != self.problem:
            logger.warning("%s (will try again in %.0fs)", message, self._poll_s)
        self.problem = message

    def _recovered(self) -> None:
        if self.problem is not None:
            logger.info("source %s: the bucket answers again", self.name)
        self.problem = None

    # -- reading and health ----------------------------------------------------------------

    def open_blob(self, relative_path: str, identity: str | None = None) -> S3ObjectBlob:
        """The bytes of the object version a job was discovered as (no request is sent).

        Pass the job's ``identity``: it names the exact key and ETag, so a read of an
        overwritten object fails with ``BlobChanged`` rather than sending the new bytes
        under the old job. Without it, the version last yielded for ``prefix +
        relative_path`` is used.
        """
        where = f"source {self.name}: {relative_path!r}"
        if identity is not None:
            try:
                bucket, key, etag, size = parse_identity(identity)
            except ValueError as exc:
                raise SourceError(
                    str(exc), where=where, fix="this job was not found by a bucket source"
                ) from None
        else:
            bucket, key = self.bucket, self.prefix + relative_path
            known = self._yielded.get(key)
            if known is None:
                raise SourceError(
                    "no version of this object is known to this run",
                    where=where,
                    fix="open it with the job's identity",
                )
            etag, size = known
        if bucket != self.bucket or relative_key(key, self.prefix) is None:
            raise SourceError(
                f"s3://{bucket}/{key} is outside s3://{self.bucket}/{self.prefix}",
                where=where,
                fix="only objects under the source's prefix are published",
            )
        return S3ObjectBlob(self.client, self.config, bucket, key, etag, size)

    async def probe(self) -> None:
        """List one key of the prefix now; ``SourceError`` (what, where, fix) if it fails."""
        await self.start()
        with source_errors(self.config, "ListObjectsV2"):
            await self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)

    async def check(self) -> list[str]:
        """Probe the bucket now; problems to fix."""
        try:
            await self.probe()
        except SourceError as exc:
            return [str(exc)]
        return []


def _in_arrival_order(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.mtime_ns, c.relative_path))
