"""The object store (MinIO or any S3): put verified bytes once, check what is there.

Works on a plain boto3 S3 client, so the same code runs with an Airflow S3Hook's
client, a client built from settings, or against AWS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

CHECKSUM_META = "sha256"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    checksum: str | None
    metadata: dict[str, str]


class ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def head(self, key: str) -> StoredObject | None:
        """The object's size and metadata, or None when it does not exist."""
        try:
            reply = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        metadata = {k.lower(): v for k, v in (reply.get("Metadata") or {}).items()}
        return StoredObject(key, int(reply["ContentLength"]), metadata.get(CHECKSUM_META), metadata)

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> str:
        """Store ``data`` in one PUT (S3 writes are atomic: no half-written object)."""
        checksum = sha256(data)
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            Metadata={**metadata, CHECKSUM_META: checksum},
        )
        return checksum

    def get(self, key: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data

    def list_keys(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys


PRESIGN_S = 3600


def s3_client(settings: Any) -> Any:
    """A boto3 S3 client for ``settings`` (endpoint, keys; path-style addressing, SigV4)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key or None,
        aws_secret_access_key=settings.s3_secret_key or None,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def presigned_get(client: Any, bucket: str, key: str, expires_s: int = PRESIGN_S) -> str:
    """A GET URL for ``bucket/key`` that opens without credentials for ``expires_s``."""
    url: str = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
    )
    return url
