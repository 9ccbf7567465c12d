"""A local S3-compatible server for the tests (moto's server mode) and helpers to look at a bucket."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from consumer.config import S3Root, S3Settings
from consumer.storage.s3 import S3Storage

REGION = "us-east-1"
# Fake credentials for the local server; the archiver reads them like real ones, from the environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "archiver-test-key",
    "AWS_SECRET_ACCESS_KEY": "archiver-test-secret",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata probes on a test machine
}
PREFIX = "archive"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """Run `python -m moto.server` on a free loopback port; yield its host:port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"127.0.0.1:{port}"
    try:
        _wait_until_answering(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_answering(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            client(endpoint).list_buckets()
        except Exception:  # not answering yet
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        else:
            return


def client(endpoint: str) -> Any:
    """A boto3 client of the test's own, to prepare and inspect buckets."""
    config = botocore.config.Config(region_name=REGION, retries={"mode": "standard", "total_max_attempts": 3})
    return boto3.client(
        "s3",
        endpoint_url=f"http://{endpoint}",
        config=config,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def s3_settings(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """The [output.s3] table for the local server: plain HTTP, short timeouts, the smallest parts."""
    return {
        "endpoint_override": endpoint,
        "scheme": "http",
        "region": REGION,
        "connect_timeout_s": 2.0,
        "request_timeout_s": 5.0,
        "retry_max_attempts": 6,
        "part_size_bytes": 5 * 1024 * 1024,
        "parts_in_flight": 2,
        **overrides,
    }


def s3_output(endpoint: str, bucket: str, **overrides: Any) -> dict[str, Any]:
    """The [output] section of an archive in the bucket under PREFIX."""
    return {"root": f"s3://{bucket}/{PREFIX}", "s3": s3_settings(endpoint, **overrides)}


def open_s3_storage(endpoint: str, bucket: str, **overrides: Any) -> S3Storage:
    return S3Storage(S3Root(bucket, PREFIX), S3Settings(**s3_settings(endpoint, **overrides)))


def object_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    pages = client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))


def incomplete_uploads(endpoint: str, bucket: str) -> list[str]:
    """Keys of the multipart uploads started and neither completed nor aborted."""
    answer = client(endpoint).list_multipart_uploads(Bucket=bucket)
    return sorted(upload["Key"] for upload in answer.get("Uploads", []))


def download(endpoint: str, bucket: str, destination: Path, prefix: str = PREFIX) -> Path:
    """Copy every object under prefix into destination (DuckDB reads the copy); return destination."""
    s3 = client(endpoint)
    for key in object_keys(endpoint, bucket, f"{prefix}/"):
        target = destination / key.removeprefix(f"{prefix}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    return destination


def sizes(endpoint: str, bucket: str, prefix: str = PREFIX) -> Mapping[str, int]:
    pages = client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    return {entry["Key"]: entry["Size"] for page in pages for entry in page.get("Contents", [])}
