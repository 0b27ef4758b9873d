"""BucketSource against moto's standalone S3 server: listing, stability, keys, errors.

Time is driven by a fake clock and explicit ``scan()`` calls; the async discovery test
waits on the next candidate (bounded by ``asyncio.timeout``), never on a sleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from dsmsyncd.blob import BlobChanged
from dsmsyncd.config.paths import bucket_location
from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources.base import SourceError
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.sources.s3 import object_identity, parse_identity, relative_key
from tests.daemon.support.fake_clock import FakeClock
from tests.daemon.support.moto_server import MotoServer, new_bucket_name
from tests.support.ports import free_port

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


@pytest.fixture
async def bucket(s3: S3Client) -> str:
    name = new_bucket_name()
    await s3.create_bucket(Bucket=name)
    return name


OpenSource = Callable[..., Awaitable[BucketSource]]


@pytest.fixture
async def open_source(moto: MotoServer, clock: FakeClock) -> AsyncIterator[OpenSource]:
    """Start a BucketSource on ``bucket`` of moto (by the fake clock); closed at the end."""
    opened: list[BucketSource] = []

    async def open_one(bucket: str, prefix: str = "in/", **kw: Any) -> BucketSource:
        exclude = kw.pop("exclude_dirs", ())
        config = moto.source_config(bucket, prefix, **kw)
        source = BucketSource(config, exclude_dirs=exclude, clock=clock)
        opened.append(source)
        await source.start()
        return source

    yield open_one
    for source in opened:
        await source.aclose()


async def _put(s3: S3Client, bucket: str, key: str, body: bytes = b"a,b\n1,2\n") -> str:
    return (await s3.put_object(Bucket=bucket, Key=key, Body=body))["ETag"].strip('"')


async def _settled(source: BucketSource, clock: FakeClock) -> list[str]:
    """Scan, let min_age pass, scan again: the relative paths that became candidates."""
    await source.scan()
    clock.advance(source.config.min_age)
    return [c.relative_path for c in await source.scan()]


async def test_bucket_scan_waits_for_min_age(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    source = await open_source(bucket, min_age=5)
    etag = await _put(s3, bucket, "in/a.csv")
    assert await source.scan() == []
    clock.advance(4.9)
    assert await source.scan() == []
    clock.advance(0.1)
    (found,) = await source.scan()
    assert found.relative_path == "a.csv"
    assert found.identity == f"s3://{bucket}/in/a.csv#{etag}:8"
    assert found.size == 8
    assert found.mtime_ns > 0
    assert await source.scan() == []  # once per identity


async def test_bucket_scan_changed_object_resets_the_wait(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    source = await open_source(bucket, min_age=5)
    await _put(s3, bucket, "in/a.csv", b"a\n1\n")
    await source.scan()
    clock.advance(4)
    await _put(s3, bucket, "in/a.csv", b"a\n1\n2\n")
    assert await source.scan() == []
    clock.advance(4)
    assert await source.scan() == []
    clock.advance(1)
    assert [c.size for c in await source.scan()] == [6]


async def test_bucket_scan_overwrite_is_a_new_identity(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    source = await open_source(bucket, min_age=0)
    await _put(s3, bucket, "in/a.csv", b"a\n1\n")
    (first,) = await source.scan()
    await _put(s3, bucket, "in/a.csv", b"a\n1\n")  # same bytes: same identity
    assert await source.scan() == []
    await _put(s3, bucket, "in/a.csv", b"a\n9\n")
    (second,) = await source.scan()
    assert second.relative_path == first.relative_path
    assert second.identity != first.identity


async def test_bucket_scan_paginates_past_one_thousand_keys(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    semaphore = asyncio.Semaphore(32)

    async def put(n: int) -> None:
        async with semaphore:
            await _put(s3, bucket, f"in/f{n:05d}.csv", b"x\n")

    await asyncio.gather(*(put(n) for n in range(1005)))
    source = await open_source(bucket, min_age=0, list_page_size=200)
    found = await source.scan()
    assert len(found) == 1005
    assert len({c.identity for c in found}) == 1005
    assert await source.scan() == []  # a second poll yields nothing new
    assert len(source._gate) == 1005


async def test_bucket_scan_skips_ignore_patterns_and_other_prefixes(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    for key in ("in/keep.csv", "in/up.csv.part", "in/.hidden", "in/sub/x.tmp", "out/b.csv"):
        await _put(s3, bucket, key)
    await _put(s3, bucket, "in/skipme/y.csv")
    source = await open_source(bucket, ignore=["*.part", "*.tmp", ".*", "skipme/*"])
    assert await _settled(source, clock) == ["keep.csv"]


async def test_bucket_scan_handles_odd_keys_and_refuses_escaping_ones(
    s3: S3Client,
    bucket: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    open_source: OpenSource,
) -> None:
    odd = ["in/with space.csv", "in/ünïcødé ✓.csv", "in//leading.csv", "in/a/../b.csv"]
    for key in [*odd, "in/../escape.csv", "in/a/../../escape2.csv", "in/dir/"]:
        await _put(s3, bucket, key)
    source = await open_source(bucket)
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.sources.bucket"):
        found = sorted(await _settled(source, clock))
    assert found == sorted(["with space.csv", "ünïcødé ✓.csv", "leading.csv", "a/../b.csv"])
    assert "in/../escape.csv" in caplog.text
    assert "in/a/../../escape2.csv" in caplog.text
    # The exact key travels in the identity: reads go to the object that was listed.
    (leading,) = [c for c in await _all(source, clock) if c.relative_path == "leading.csv"]
    blob = source.open_blob(leading.relative_path, leading.identity)
    assert blob.key == "in//leading.csv"
    assert await blob.read_range(0, 3) == b"a,b"


async def _all(source: BucketSource, clock: FakeClock) -> list[Any]:
    """Every candidate of a fresh source over the same bucket (nothing remembered)."""
    fresh = BucketSource(source.config, clock=clock)
    await fresh.start()
    try:
        await fresh.scan()
        clock.advance(source.config.min_age)
        return await fresh.scan()
    finally:
        await fresh.aclose()


async def test_bucket_scan_skips_archive_and_quarantine_prefixes(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    for key in ("in/a.csv", "in/archive/2025/a.csv", "in/quarantine/b.csv"):
        await _put(s3, bucket, key)
    source = await open_source(
        bucket,
        exclude_dirs=["in/archive", f"s3://{bucket}/in/quarantine/", "s3://other/in/a.csv"],
    )
    assert await _settled(source, clock) == ["a.csv"]


async def test_bucket_recheck_pending_takes_settled_objects_by_head(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    source = await open_source(bucket, min_age=5)
    await _put(s3, bucket, "in/a.csv")
    await _put(s3, bucket, "in/gone.csv")
    await source.scan()
    await s3.delete_object(Bucket=bucket, Key="in/gone.csv")
    clock.advance(5)
    assert [c.relative_path for c in await source.recheck_pending()] == ["a.csv"]
    assert "in/gone.csv" not in source._gate


async def test_bucket_candidates_yields_objects_put_after_start(
    moto: MotoServer, s3: S3Client, bucket: str, aws_env: None
) -> None:
    # Credentials from the environment (the standard chain), not from the config.
    config = moto.source_config(
        bucket, "in/", min_age=0, poll_interval=0.05, access_key_id=None, secret_access_key=None
    )
    stop = asyncio.Event()
    async with BucketSource(config) as source:
        candidates = source.candidates(stop)
        await _put(s3, bucket, "in/late.csv")
        async with asyncio.timeout(10):
            found = await anext(candidates)
        assert found.relative_path == "late.csv"
        stop.set()
        await candidates.aclose()


async def test_bucket_open_blob_by_identity_reads_that_version_only(
    s3: S3Client, bucket: str, clock: FakeClock, open_source: OpenSource
) -> None:
    source = await open_source(bucket, min_age=0)
    await _put(s3, bucket, "in/a.csv", b"a\n1\n")
    (found,) = await source.scan()
    await _put(s3, bucket, "in/a.csv", b"a\n2\n")
    with pytest.raises(BlobChanged):
        await source.open_blob(found.relative_path, found.identity).read_range(0, 2)
    with pytest.raises(SourceError, match="outside"):
        source.open_blob("x", object_identity("other-bucket", "in/a.csv", "e", 1))


async def test_bucket_check_healthy_bucket_has_no_problems(
    bucket: str, open_source: OpenSource
) -> None:
    source = await open_source(bucket)
    assert await source.check() == []


async def test_bucket_check_missing_bucket_says_create_it(
    moto: MotoServer, open_source: OpenSource
) -> None:
    source = await open_source("no-such-bucket-here")
    (problem,) = await source.check()
    assert "bucket no-such-bucket-here does not exist" in problem
    assert moto.url in problem
    assert "create the bucket" in problem
    assert "source bucket" in problem


async def test_bucket_check_wrong_endpoint_says_cannot_connect(clock: FakeClock) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = SourceConfig(
        name="b",
        url="s3://some-bucket/in/",
        endpoint_url=url,
        access_key_id=SecretStr("k"),
        secret_access_key=SecretStr("s"),
        region="us-east-1",
    )
    async with BucketSource(config, clock=clock) as source:
        (problem,) = await source.check()
    assert f"cannot connect to {url}" in problem
    assert "endpoint_url" in problem
    assert "secret" not in problem.replace("secret_access_key", "")


async def test_bucket_poll_failure_is_logged_once_and_kept_as_problem(
    caplog: pytest.LogCaptureFixture, open_source: OpenSource
) -> None:
    source = await open_source("missing-bucket-2", poll_interval=0.01)
    scan = source.scan
    polls = 0
    third_poll = asyncio.Event()

    async def counted_scan() -> list[Any]:
        nonlocal polls
        polls += 1
        if polls == 3:
            third_poll.set()
        return await scan()

    source.scan = counted_scan  # type: ignore[method-assign]
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="dsmsyncd.sources.bucket"):
        candidates = source.candidates(stop)
        pending = asyncio.ensure_future(anext(candidates))
        async with asyncio.timeout(10):
            await third_poll.wait()
        stop.set()
        with pytest.raises(StopAsyncIteration):
            await pending
    assert source.problem is not None
    assert "bucket missing-bucket-2 does not exist" in source.problem
    assert caplog.text.count("does not exist") == 1
    assert await source.check() == [source.problem]


def test_bucket_relative_key_refuses_escapes() -> None:
    assert relative_key("in/a.csv", "in/") == "a.csv"
    assert relative_key("in//a.csv", "in/") == "a.csv"
    assert relative_key("in/x/../a.csv", "in/") == "x/../a.csv"
    assert relative_key("in/../a.csv", "in/") is None
    assert relative_key("in/..", "in/") is None
    assert relative_key("in/dir/", "in/") is None
    assert relative_key("other/a.csv", "in/") is None
    assert relative_key("/abs.csv", "") == "abs.csv"


def test_bucket_identity_round_trips_keys_with_hash_and_colon() -> None:
    identity = object_identity("b", "in/a#1:2.csv", '"abc-2"', 10)
    assert identity == "s3://b/in/a#1:2.csv#abc-2:10"
    assert parse_identity(identity) == ("b", "in/a#1:2.csv", "abc-2", 10)
    with pytest.raises(ValueError, match="not an object identity"):
        parse_identity("file:a.csv:1:2")


def test_bucket_location_reads_urls_and_plain_prefixes() -> None:
    from pathlib import Path

    assert bucket_location(Path("s3://arch/done"), "src") == ("arch", "done/")
    assert bucket_location("s3://arch/", "src") == ("arch", "")
    assert bucket_location(Path("archive"), "src") == ("src", "archive/")
    assert bucket_location("/q/bad/", "src") == ("src", "q/bad/")
    with pytest.raises(ValueError, match="expected"):
        bucket_location("a/../b", "src")
