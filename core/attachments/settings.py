"""Where attachments are kept (SWITCHBOARD_ATTACHMENTS__BACKEND=local|postgres|s3, and the S3 connection)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class S3Settings(BaseModel):
    """An S3-compatible object store (AWS S3, MinIO, Ceph RGW): SWITCHBOARD_ATTACHMENTS__S3__<NAME>."""

    endpoint_url: str | None = Field(default=None, description="http(s)://host:port for MinIO/Ceph; None: AWS.")
    bucket: str = Field(default="switchboard-attachments", min_length=3, max_length=63)
    prefix: str = Field(default="", description="Key prefix inside the bucket (several deployments, one bucket).")
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="path", description="path works with every S3-compatible server; AWS also takes virtual.")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)


class AttachmentStorageSettings(BaseModel):
    """The attachment backend: `local` (the data dir; one machine), `postgres` (the application database; several
    instances, no extra service) or `s3`."""

    backend: Literal["local", "postgres", "s3"] = "local"
    chunk_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=8 * 1024 * 1024,
                             description="postgres backend: the size of one chunk row.")
    s3: S3Settings = S3Settings()
