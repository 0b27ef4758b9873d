"""The pipeline harness (``harness.py``) on the local server, and a bucket source on moto."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.state import SqliteStateStore
from tests.daemon.integration.harness import Harness
from tests.daemon.support.moto_server import MotoServer, new_bucket_name

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


@pytest.fixture
async def harness(
    tmp_path: Path, client: DsmapiClient, store: SqliteStateStore, server: RunningServer
) -> Harness:
    return Harness(tmp_path / "files", client, store, server)


@pytest.fixture
async def source(moto: MotoServer, s3: S3Client) -> AsyncIterator[BucketSource]:
    """A started BucketSource over ``in/`` of a new bucket, taking objects at first sight."""
    bucket = new_bucket_name()
    await s3.create_bucket(Bucket=bucket)
    async with BucketSource(moto.source_config(bucket, "in/", min_age=0)) as started:
        yield started
