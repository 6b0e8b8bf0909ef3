"""An S3-compatible server on 127.0.0.1 for the S3 attachment backend: moto's server mode, in a thread."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from core.attachments.backends import S3Backend
from core.attachments.settings import AttachmentStorageSettings, S3Settings


@contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server listening on a free loopback port until the block exits."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_settings(endpoint: str, bucket: str | None = None) -> AttachmentStorageSettings:
    return AttachmentStorageSettings(backend="s3", s3=S3Settings(
        endpoint_url=endpoint, bucket=bucket or f"sb-{uuid.uuid4().hex[:12]}", access_key_id="test",
        secret_access_key="test", region="us-east-1"))  # type: ignore[arg-type]


async def s3_backend(endpoint: str, bucket: str | None = None) -> S3Backend:
    """A connected backend on a fresh bucket (created here; the server starts empty)."""
    settings = s3_settings(endpoint, bucket)
    backend = await S3Backend.connect(settings)
    await backend.client.create_bucket(Bucket=settings.s3.bucket)
    return backend
