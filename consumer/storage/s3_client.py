"""The two S3 clients, built from the settings: botocore for writes and listings, pyarrow for reads.

pyarrow's S3FileSystem reads Parquet files with ranged GETs, so verify and recovery read footers
and columns through it. It cannot write the archive: its output stream has no abort() in Python
and completes the multipart upload when it is dropped unclosed (a partial object would appear),
its part size is fixed (10 MiB) and its background parts are not bounded. Writes therefore use
botocore's multipart calls, wrapped here in the few the archive needs.

Both clients take credentials from the standard AWS chain (environment, profile and shared files,
container or instance metadata) and retry transient failures (timeouts, 5xx, throttling) up to
`retry_max_attempts` attempts with backoff. What still fails becomes a StorageError here, the one
boundary; messages name the object, never a credential.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

import boto3
import botocore.config
import botocore.exceptions
from pyarrow import fs as pafs

from consumer import __version__
from consumer.config import S3Settings
from consumer.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CompleteMultipartUploadRequestTypeDef,
        PutObjectRequestTypeDef,
    )

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
NO_SUCH_UPLOAD = "NoSuchUpload"
PRECONDITION_FAILED = "PreconditionFailed"
CHECKSUM_FIELDS = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256")


def build_client(settings: S3Settings) -> S3Client:
    """A botocore S3 client with the configured endpoint, addressing, timeouts and retries."""
    endpoint = f"{settings.scheme}://{settings.endpoint_override}" if settings.endpoint_override else None
    config = botocore.config.Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.request_timeout_s,
        retries={"mode": "standard", "total_max_attempts": settings.retry_max_attempts},
        s3={"addressing_style": _addressing_style(settings)},
        max_pool_connections=settings.parts_in_flight + 2,  # the upload threads, the loop, the writer
        user_agent_extra=f"kafka-parquet-archiver/{__version__}",
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint, use_ssl=settings.scheme == "https", config=config)


def _addressing_style(settings: S3Settings) -> Literal["auto", "virtual", "path"]:
    """pyarrow's rule: path style with an endpoint override, unless virtual addressing is forced."""
    if settings.force_virtual_addressing:
        return "virtual"
    return "path" if settings.endpoint_override else "auto"


def build_filesystem(settings: S3Settings) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for reads, configured like the botocore client."""
    return pafs.S3FileSystem(
        region=settings.region,
        endpoint_override=settings.endpoint_override,
        scheme=settings.scheme,
        force_virtual_addressing=settings.force_virtual_addressing,
        connect_timeout=settings.connect_timeout_s,
        request_timeout=settings.request_timeout_s,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=settings.retry_max_attempts),
    )


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """A part the server accepted: what CompleteMultipartUpload must list for it."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)

    def as_request(self) -> CompletedPartTypeDef:
        part: CompletedPartTypeDef = {"PartNumber": self.number, "ETag": self.etag}
        part.update(self.checksums)  # type: ignore[typeddict-item]  # keys from CHECKSUM_FIELDS only
        return part


def _bytes(body: bytes | bytearray) -> bytes:
    """botocore sends any bytes-like body; the stubs say bytes. A cast, not a copy of the part."""
    return cast(bytes, body)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{_code(exc)} (HTTP {status}): {message}"
    return str(exc)


class ObjectClient:
    """The S3 calls the archive makes on one bucket; failures past the retries raise StorageError."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise StorageError(f"cannot {action} {self.uri(key)}: {_reason(exc)}") from exc

    def put(
        self, key: str, body: bytes | bytearray, metadata: Mapping[str, str], if_none_match: bool
    ) -> bool:
        """Write a whole object at once; False if if_none_match found an object there already."""
        request: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": _bytes(body),
            "Metadata": dict(metadata),
        }
        if if_none_match:
            request["IfNoneMatch"] = "*"
        with self._errors("write", key):
            try:
                self._client.put_object(**request)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != PRECONDITION_FAILED:
                    raise
                return False
        return True

    def get(self, key: str) -> bytes | None:
        """A whole (small) object, or None if there is no such object."""
        with self._errors("read", key):
            try:
                return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in NOT_FOUND:
                    raise
                return None

    def metadata(self, key: str) -> dict[str, str] | None:
        """The user metadata of an object, or None if there is no such object."""
        with self._errors("look up", key):
            try:
                return dict(self._client.head_object(Bucket=self.bucket, Key=key)["Metadata"])
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in NOT_FOUND:
                    raise
                return None

    def create_upload(self, key: str, metadata: Mapping[str, str]) -> str:
        """Start a multipart upload; nothing is visible until it is completed."""
        with self._errors("start uploading", key):
            answer = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=dict(metadata)
            )
            return answer["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> UploadedPart:
        with self._errors(f"upload part {number} of", key):
            answer = self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=_bytes(body)
            )
        checksums = {name: str(answer[name]) for name in CHECKSUM_FIELDS if name in answer}  # type: ignore[literal-required]
        return UploadedPart(number, answer["ETag"], checksums)

    def complete(self, key: str, upload_id: str, parts: list[UploadedPart], if_none_match: bool) -> bool:
        """Publish the upload as the object; False if the object exists or the upload is gone."""
        request: CompleteMultipartUploadRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": [part.as_request() for part in parts]},
        }
        if if_none_match:
            request["IfNoneMatch"] = "*"
        with self._errors("complete the upload of", key):
            try:
                self._client.complete_multipart_upload(**request)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in {PRECONDITION_FAILED, NO_SUCH_UPLOAD}:
                    raise
                return False
        return True

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload and free its parts; one that is already gone is fine."""
        with self._errors("abort the upload of", key):
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != NO_SUCH_UPLOAD:
                    raise

    def keys(self, prefix: str) -> Iterator[str]:
        """Every object key starting with prefix."""
        with self._errors("list", prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                yield from (entry["Key"] for entry in page.get("Contents", []))

    def uploads(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, upload id) of every incomplete multipart upload whose key starts with prefix."""
        with self._errors("list the uploads of", prefix):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from ((upload["Key"], upload["UploadId"]) for upload in page.get("Uploads", []))

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=key)
