"""``check-config`` on bucket sources: the README's exit codes, through the real CLI.

A store that cannot be reached is no fault of the configuration (exit 5, "try again
later", as ``run`` would keep trying); a bucket that does not exist, or keys the store
refuses or that may not list the bucket, is one (exit 2, saying what to fix). The
target is the real local server, the store moto's standalone S3 server; the store
that refuses is a second moto server with its IAM checks turned on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session  # type: ignore[import-untyped]

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from tests.daemon.e2e.processes import CliResult, run_cli
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.moto_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    REGION,
    MotoServer,
    new_bucket_name,
    s3_client,
    start_moto_server,
)
from tests.support.local_server import ROBOT
from tests.support.ports import free_port

# moto answers this many requests before it starts checking keys and permissions:
# exactly the three that set the refusing store up (a bucket, a user, the user's keys).
UNCHECKED_REQUESTS = 3


def write_config(
    tmp_path: Path,
    target: str,
    dataset: str,
    *,
    bucket: str,
    endpoint: str,
    keys: tuple[str, str] = (FAKE_KEY_ID, FAKE_SECRET),
) -> Path:
    secret = tmp_path / "robot.password"
    secret.write_text(ROBOT[1], encoding="utf-8")
    path = tmp_path / "buckets.toml"
    lines = [
        "[target]",
        f'url = "{target}"',
        f'username = "{ROBOT[0]}"',
        f'password_file = "{secret}"',
        "[state]",
        f'url = "sqlite:///{tmp_path}/state.db"',
        "[[source]]",
        'name = "exports"',
        f'url = "s3://{bucket}/drop/"',
        f'endpoint_url = "{endpoint}"',
        f'region = "{REGION}"',
        f'access_key_id = "{keys[0]}"',
        f'secret_access_key = "{keys[1]}"',
        "[[mapping]]",
        'source = "exports"',
        'match = "*.csv"',
        f'dataset = "{dataset}"',
        'action = "update"',
        'archive_dir = "archive/"',
        'quarantine_dir = "quarantine/"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def check(path: Path) -> CliResult:
    return await run_cli("check-config", "-c", str(path))


@pytest.fixture
async def dataset(client: DsmapiClient) -> str:
    return await publish_dataset(client, b"id,name\n1,ann\n")


async def test_listable_bucket_passes(
    server: RunningServer, moto: MotoServer, dataset: str, tmp_path: Path
) -> None:
    bucket = new_bucket_name()
    async with s3_client(moto) as s3:
        await s3.create_bucket(Bucket=bucket)
    path = write_config(tmp_path, server.url, dataset, bucket=bucket, endpoint=moto.url)
    result = await check(path)
    assert result.code == 0, result
    assert f"ok   source exports: s3://{bucket}/drop/ can be listed" in result.out


async def test_unreachable_store_exits_5(
    server: RunningServer, dataset: str, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    path = write_config(tmp_path, server.url, dataset, bucket="exports", endpoint=endpoint)
    result = await check(path)
    assert result.code == 5, result
    assert (
        f"FAIL source exports: source exports (s3://exports/drop/): cannot connect to {endpoint}"
        in result.out
    )
    assert f"ok   mapping[0].dataset: {dataset} exists" in result.out
    assert result.out.splitlines()[-1] == (
        f"{path}: no problem found, but 1 check(s) could not be made "
        "(the target or the network did not answer); try again later"
    )


async def test_missing_bucket_exits_2(
    server: RunningServer, moto: MotoServer, dataset: str, tmp_path: Path
) -> None:
    bucket = new_bucket_name()  # never created
    path = write_config(tmp_path, server.url, dataset, bucket=bucket, endpoint=moto.url)
    result = await check(path)
    assert result.code == 2, result
    assert (
        f"FAIL source exports: source exports (s3://{bucket}/drop/): bucket {bucket} does "
        f"not exist on {moto.url}; create the bucket, or fix url (and endpoint_url)"
    ) in result.out
    assert result.out.splitlines()[-1] == f"{path}: 1 problem(s)"


@pytest.fixture(scope="module")
def refusing_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": str(UNCHECKED_REQUESTS)}
    server = start_moto_server(tmp_path_factory.mktemp("moto-iam"), env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def refusing_store(refusing_moto: MotoServer) -> dict[str, Any]:
    """A bucket, and the keys of a user with no right to it, on the refusing store."""
    return asyncio.run(_set_up_refusing_store(refusing_moto))


async def _set_up_refusing_store(store: MotoServer) -> dict[str, Any]:
    bucket = new_bucket_name()
    options = {
        "endpoint_url": store.url,
        "region_name": REGION,
        "aws_access_key_id": FAKE_KEY_ID,
        "aws_secret_access_key": FAKE_SECRET,
    }
    session = get_session()
    async with session.create_client("s3", **options) as s3:
        await s3.create_bucket(Bucket=bucket)
    async with session.create_client("iam", **options) as iam:
        await iam.create_user(UserName="no-rights")
        key = (await iam.create_access_key(UserName="no-rights"))["AccessKey"]
    return {"bucket": bucket, "keys": (key["AccessKeyId"], key["SecretAccessKey"])}


@pytest.mark.parametrize("who", ["user without rights", "unknown keys"])
async def test_refused_access_exits_2(
    server: RunningServer,
    refusing_moto: MotoServer,
    refusing_store: dict[str, Any],
    dataset: str,
    tmp_path: Path,
    who: str,
) -> None:
    bucket = refusing_store["bucket"]
    keys = refusing_store["keys"] if who == "user without rights" else ("AKIAUNKNOWN", "nope")
    path = write_config(
        tmp_path, server.url, dataset, bucket=bucket, endpoint=refusing_moto.url, keys=keys
    )
    result = await check(path)
    assert result.code == 2, result
    where = f"FAIL source exports: source exports (s3://{bucket}/drop/): "
    if who == "user without rights":
        assert (
            f"{where}access denied to ListObjectsV2 on bucket {bucket} (AccessDenied); grant "
            "these credentials s3:ListBucket"
        ) in result.out
    else:
        assert (
            f"{where}{refusing_moto.url} does not accept the credentials (InvalidAccessKeyId)"
        ) in result.out
    assert keys[1] not in result.out + result.err
