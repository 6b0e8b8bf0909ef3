"""Where attachments live: one async interface, three backends chosen by settings (`attachments.backend`).

- `local`: the attachment store's own folder (core/attachments/store.py), the embedded default.
- `postgres`: rows in the application database, the bytes in content-addressed chunks (core/attachments/models.py):
  the zero-extra-service choice for several instances on one PostgreSQL (it works on SQLite too).
- `s3`: any S3-compatible object store (AWS S3, MinIO, Ceph RGW), through aiobotocore.

Every backend has the same keys (`<namespace>/<aa>/<hash>/<name>`, content-addressed), so moving files between
backends (`switchboard attachments migrate`) keeps every message's references valid. Reads are async iterators
of chunks with an optional byte range: a download of a 15 MB file never holds it whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attachments.models import AttachmentChunk, AttachmentObject
from core.attachments.policy import normalise_content_type, safe_filename
from core.attachments.settings import AttachmentStorageSettings
from core.attachments.store import (
    NAMESPACES,
    AttachmentStore,
    SavesBlocking,
    StoredFile,
    digest_of,
    is_key,
    key_for,
    open_store,
)
from core.errors import NotFoundError, ValidationFailedError
from core.ingest.schemas import AttachmentInfo

__all__ = ["AttachmentBackend", "BlockingSaver", "LocalBackend", "PostgresBackend", "S3Backend", "open_backend"]

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024  # what one step of a streamed read yields


class AttachmentBackend(Protocol):
    """The attachment store, as every part of Switchboard uses it (channels, uploads, downloads, sweep, erasure).

    Keys are the store's own (`core.attachments.store.is_key`); a key of any other form is "not found" before
    the backend is asked, so a crafted key (`../`, absolute paths, other prefixes) reaches no file or row.
    """

    kind: str
    namespaces: frozenset[str]

    def is_key(self, key: str) -> bool:
        """Whether `key` has the form the store writes (not whether it exists)."""
        ...

    async def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        """Store `data` (content-addressed: the same bytes and name again rewrite nothing, they only count as new
        for the sweep of unsent uploads) and return its metadata.

        Args:
            filename: as the sender gave it; only a safe last component is kept.
            content_type: as declared; normalised.
            data: the bytes (the callers' limits already applied).
            namespace: `email`, `telegram` or `uploads`.
        """
        ...

    async def put(self, key: str, chunks: Callable[[], AsyncIterator[bytes]], *, size: int,
                  modified: float | None = None) -> bool:
        """Store the bytes `chunks()` yields under exactly `key` (moving files between backends); False, without
        calling `chunks`, when the key is already there. The bytes must match the key's digest
        (ValidationFailedError otherwise: a corrupt source file is not copied)."""
        ...

    async def stat(self, key: str) -> StoredFile:
        """Size and modification time of `key`; NotFoundError if absent or not a key."""
        ...

    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes `[start, end)` of `key` in chunks (`end` None: to the end); NotFoundError on first use."""
        ...

    async def read(self, key: str) -> bytes:
        """All the bytes of `key` (for channels that send a file in one request)."""
        ...

    async def verify(self, key: str, size: int | None = None) -> int:
        """The stored size (NotFoundError if absent); ValidationFailedError if `size` disagrees."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove `key`; False if there was nothing to remove."""
        ...

    def iter(self, namespace: str) -> AsyncIterator[StoredFile]:
        """Every object stored under `namespace`."""
        ...

    def blocking(self) -> SavesBlocking:
        """A saver for code running in a worker thread (the e-mail parser), bound to the running event loop."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class BlockingSaver:
    """`save` for a worker thread: runs the backend's coroutine on the event loop that created this saver."""

    def __init__(self, backend: AttachmentBackend, loop: asyncio.AbstractEventLoop) -> None:
        self._backend = backend
        self._loop = loop

    def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        future = asyncio.run_coroutine_threadsafe(
            self._backend.save(filename, content_type, data, namespace=namespace), self._loop)
        return future.result()


def _not_found(key: object) -> NotFoundError:
    return NotFoundError("attachment not found", storage_key=str(key)[:512])


def _range(size: int, start: int, end: int | None) -> tuple[int, int]:
    end = size if end is None else min(end, size)
    if start < 0 or start > end:
        raise ValueError(f"bad byte range {start}-{end} of {size}")
    return start, end


class _Common:
    """What every backend does the same way: keys, names, and the reads built on `stream` and `stat`."""

    kind = ""

    def __init__(self, namespaces: Collection[str] = NAMESPACES) -> None:
        self.namespaces = frozenset(namespaces)

    def is_key(self, key: str) -> bool:
        return is_key(key, self.namespaces)

    def _check_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise ValueError(f"bad attachment namespace {namespace!r}: not one of {sorted(self.namespaces)}")

    def _prepare(self, filename: str, content_type: str | None, data: bytes,
                 namespace: str) -> tuple[str, str, str]:
        self._check_namespace(namespace)
        name = safe_filename(filename)
        return name, normalise_content_type(content_type), key_for(namespace, name, hashlib.sha256(data).hexdigest())

    def _require_key(self, key: str) -> None:
        if not self.is_key(key):
            raise _not_found(key)

    async def stat(self, key: str) -> StoredFile:
        raise NotImplementedError

    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def read(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.stream(key)])

    async def verify(self, key: str, size: int | None = None) -> int:
        actual = (await self.stat(key)).size
        if size is not None and size != actual:
            raise ValidationFailedError(f"attachment {key!r} is {actual} bytes, not {size}", storage_key=key)
        return actual

    def blocking(self) -> SavesBlocking:
        return BlockingSaver(self, asyncio.get_running_loop())  # type: ignore[arg-type]

    async def close(self) -> None:
        return None


async def _checked(key: str, chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Pass the chunks on, then refuse (ValidationFailedError) if they do not hash to the key's digest or size."""
    sha, seen = hashlib.sha256(), 0
    async for chunk in chunks:
        sha.update(chunk)
        seen += len(chunk)
        yield chunk
    if sha.hexdigest()[:34] != digest_of(key) or seen != size:
        raise ValidationFailedError(f"the bytes of {key!r} do not match its key (corrupt source?)", storage_key=key)


async def _rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The same bytes in pieces of exactly `size` (the last one shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(data), size):
        yield bytes(view[offset:offset + size])


# --- local directory -------------------------------------------------------------------------------------------


class LocalBackend(_Common):
    """The attachment store's folder (`<data_dir>/attachments/`): every file operation runs in a worker thread."""

    kind = "local"

    def __init__(self, files: AttachmentStore) -> None:
        super().__init__(files.namespaces)
        self.files = files

    async def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        return await asyncio.to_thread(self.files.save, filename, content_type, data, namespace=namespace)

    def blocking(self) -> SavesBlocking:
        return self.files  # already blocking: a worker thread calls it directly

    async def put(self, key: str, chunks: Callable[[], AsyncIterator[bytes]], *, size: int,
                  modified: float | None = None) -> bool:
        self._require_key(key)
        path = self.files.root / key
        if await asyncio.to_thread(path.is_file):
            return False
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        fd, tmp = await asyncio.to_thread(tempfile.mkstemp, dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in _checked(key, chunks(), size):
                    await asyncio.to_thread(fh.write, chunk)
                await asyncio.to_thread(os.fsync, fh.fileno())
            if modified is not None:
                await asyncio.to_thread(os.utime, tmp, (modified, modified))
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            await asyncio.to_thread(Path(tmp).unlink, missing_ok=True)
            raise
        return True

    async def stat(self, key: str) -> StoredFile:
        path = await asyncio.to_thread(self.files.open, key)
        stat = await asyncio.to_thread(path.stat)
        return StoredFile(key, stat.st_size, stat.st_mtime)

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = await asyncio.to_thread(self.files.open, key)
        fh = await asyncio.to_thread(path.open, "rb")
        try:
            size = (await asyncio.to_thread(os.fstat, fh.fileno())).st_size
            position, stop = _range(size, start, end)
            await asyncio.to_thread(fh.seek, position)
            while position < stop:
                chunk = await asyncio.to_thread(fh.read, min(READ_CHUNK, stop - position))
                if not chunk:  # truncated under us: stop rather than loop
                    break
                position += len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self.files.delete, key)

    async def iter(self, namespace: str) -> AsyncIterator[StoredFile]:
        for stored in await asyncio.to_thread(lambda: list(self.files.iter(namespace))):
            yield stored


# --- the application database ---------------------------------------------------------------------------------


class PostgresBackend(_Common):
    """Attachments as rows: `attachment_objects` (key -> digest, size) and `attachment_chunks` (digest, seq).

    A save writes the chunks and the object row in one transaction; the same bytes under another name add one
    object row and no chunk. Deleting the last object of a digest deletes its chunks in the same transaction. On
    PostgreSQL both take a transaction-scoped advisory lock on the digest, so a save of bytes that a delete is
    removing at the same moment never ends up with an object whose chunks are gone (SQLite serialises writers).
    """

    kind = "postgres"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, chunk_size: int = 256 * 1024,
                 namespaces: Collection[str] = NAMESPACES, owns_engine: bool = False) -> None:
        super().__init__(namespaces)
        self.sessionmaker = sessionmaker
        self.chunk_size = chunk_size
        self._owns_engine = owns_engine

    @classmethod
    def connect(cls, database_url: str, settings: AttachmentStorageSettings) -> PostgresBackend:
        """A backend with its own small pool: a request's session holds one connection of the app's pool while
        the upload it handles is stored, and a slow download must not hold the pool the requests need (on
        SQLite, whose pool is one connection, sharing it would deadlock)."""
        from core.db.session import create_engine, create_sessionmaker

        engine = create_engine(database_url, pool_size=5)
        return cls(create_sessionmaker(engine), chunk_size=settings.chunk_bytes, owns_engine=True)

    async def close(self) -> None:
        if self._owns_engine:
            bind = self.sessionmaker.kw["bind"]
            await bind.dispose()

    @staticmethod
    async def _lock(session: AsyncSession, digest: str) -> None:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("attachment:" + digest,
                                                                                           0))))

    async def _store(self, key: str, size: int, chunks: Callable[[], AsyncIterator[bytes]],
                     modified: datetime | None, *, touch: bool) -> bool:
        digest = digest_of(key)
        now = modified or datetime.now(UTC)
        async with self.sessionmaker.begin() as session:
            await self._lock(session, digest)
            if await session.get(AttachmentObject, key) is not None:
                if touch:  # stored again: new for the sweep of unsent uploads
                    await session.execute(update(AttachmentObject).where(AttachmentObject.key == key)
                                          .values(modified_at=now))
                return False
            shared = await session.scalar(select(AttachmentObject.chunk_size)
                                          .where(AttachmentObject.digest == digest).limit(1))
            if shared is None:
                seq = 0
                async for piece in _rechunk(chunks(), self.chunk_size):
                    session.add(AttachmentChunk(digest=digest, seq=seq, data=piece))
                    await session.flush()  # one chunk in memory at a time
                    session.expunge_all()
                    seq += 1
            session.add(AttachmentObject(key=key, digest=digest, size=size,
                                         chunk_size=self.chunk_size if shared is None else shared, modified_at=now))
        return True

    async def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        name, ctype, key = self._prepare(filename, content_type, data, namespace)
        await self._store(key, len(data), lambda: _pieces(data, self.chunk_size), None, touch=True)
        return AttachmentInfo(filename=name, content_type=ctype, size=len(data), storage_key=key)

    async def put(self, key: str, chunks: Callable[[], AsyncIterator[bytes]], *, size: int,
                  modified: float | None = None) -> bool:
        self._require_key(key)
        when = datetime.fromtimestamp(modified, UTC) if modified is not None else None
        return await self._store(key, size, lambda: _checked(key, chunks(), size), when, touch=False)

    async def _object(self, key: str) -> AttachmentObject:
        self._require_key(key)
        async with self.sessionmaker() as session:
            found = await session.get(AttachmentObject, key)
        if found is None:
            raise _not_found(key)
        return found

    async def stat(self, key: str) -> StoredFile:
        found = await self._object(key)
        return StoredFile(key, found.size, found.modified_at.timestamp())

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        found = await self._object(key)
        position, stop = _range(found.size, start, end)
        step = found.chunk_size
        while position < stop:
            seq, offset = divmod(position, step)
            # One chunk per short session: a slow client holds no connection or transaction between chunks.
            async with self.sessionmaker() as session:
                data = await session.scalar(select(AttachmentChunk.data).where(
                    AttachmentChunk.digest == found.digest, AttachmentChunk.seq == seq))
            if data is None:  # deleted while being read
                raise _not_found(key)
            piece = data[offset:offset + (stop - position)]
            if not piece:
                break
            position += len(piece)
            yield bytes(piece)

    async def delete(self, key: str) -> bool:
        if not self.is_key(key):
            return False
        digest = digest_of(key)
        async with self.sessionmaker.begin() as session:
            await self._lock(session, digest)
            gone = await session.execute(delete(AttachmentObject).where(AttachmentObject.key == key))
            if not gone.rowcount:  # type: ignore[attr-defined]
                return False
            others = await session.scalar(select(func.count()).select_from(AttachmentObject)
                                          .where(AttachmentObject.digest == digest))
            if not others:
                await session.execute(delete(AttachmentChunk).where(AttachmentChunk.digest == digest))
        return True

    async def iter(self, namespace: str) -> AsyncIterator[StoredFile]:
        if namespace not in self.namespaces:
            return
        after = ""
        prefix = namespace + "/"
        while True:  # keyset pages: the table can be large, and no transaction stays open between pages
            async with self.sessionmaker() as session:
                rows = (await session.execute(
                    select(AttachmentObject.key, AttachmentObject.size, AttachmentObject.modified_at)
                    .where(AttachmentObject.key.startswith(prefix, autoescape=True), AttachmentObject.key > after)
                    .order_by(AttachmentObject.key).limit(1000))).all()
            if not rows:
                return
            for key, size, modified in rows:
                if self.is_key(key):
                    yield StoredFile(key, size, modified.timestamp())
            after = rows[-1][0]


# --- S3-compatible object storage ------------------------------------------------------------------------------


class S3Backend(_Common):
    """Objects in one bucket under an optional prefix, one per key; uploads over the part size go in parts.

    S3 has no "touch": storing the same bytes again copies the object onto itself, which renews its
    LastModified (the sweep of unsent uploads goes by it).
    """

    kind = "s3"
    PART = 8 * 1024 * 1024

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", stack: contextlib.AsyncExitStack | None = None,
                 namespaces: Collection[str] = NAMESPACES) -> None:
        super().__init__(namespaces)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._stack = stack

    @classmethod
    async def connect(cls, settings: AttachmentStorageSettings) -> S3Backend:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        s3 = settings.s3
        stack = contextlib.AsyncExitStack()
        config = AioConfig(connect_timeout=s3.timeout_seconds, read_timeout=s3.timeout_seconds,
                           retries={"max_attempts": 3, "mode": "standard"},
                           s3={"addressing_style": s3.addressing_style})
        client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=s3.endpoint_url, region_name=s3.region, config=config,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None))
        return cls(client, s3.bucket, prefix=s3.prefix, stack=stack)

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    def _name(self, key: str) -> str:
        return self.prefix + key

    async def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = await self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return head

    async def save(self, filename: str, content_type: str | None, data: bytes, *, namespace: str) -> AttachmentInfo:
        name, ctype, key = self._prepare(filename, content_type, data, namespace)
        if await self._head(key) is not None:
            await self.client.copy_object(Bucket=self.bucket, Key=self._name(key), MetadataDirective="REPLACE",
                                          CopySource={"Bucket": self.bucket, "Key": self._name(key)},
                                          ContentType=ctype)
        else:
            await self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=ctype)
        return AttachmentInfo(filename=name, content_type=ctype, size=len(data), storage_key=key)

    async def put(self, key: str, chunks: Callable[[], AsyncIterator[bytes]], *, size: int,
                  modified: float | None = None) -> bool:
        self._require_key(key)
        if await self._head(key) is not None:
            return False
        parts = _rechunk(_checked(key, chunks(), size), self.PART)
        if size <= self.PART:
            # Checked before the single PUT: a corrupt source never becomes an object.
            body = b"".join([piece async for piece in parts])
            await self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=body)
            return True
        upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=self._name(key))
        upload_id = upload["UploadId"]
        try:
            done = []
            number = 1
            async for piece in parts:
                part = await self.client.upload_part(Bucket=self.bucket, Key=self._name(key), UploadId=upload_id,
                                                     PartNumber=number, Body=piece)
                done.append({"ETag": part["ETag"], "PartNumber": number})
                number += 1
            await self.client.complete_multipart_upload(Bucket=self.bucket, Key=self._name(key), UploadId=upload_id,
                                                        MultipartUpload={"Parts": done})
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._name(key),
                                                         UploadId=upload_id)
            raise
        return True

    async def stat(self, key: str) -> StoredFile:
        self._require_key(key)
        head = await self._head(key)
        if head is None:
            raise _not_found(key)
        return StoredFile(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    async def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        size = (await self.stat(key)).size
        start, end = _range(size, start, end)
        if start == end:
            return
        response = await self.client.get_object(Bucket=self.bucket, Key=self._name(key),
                                                Range=f"bytes={start}-{end - 1}")
        async with response["Body"] as body:
            while True:
                chunk = await body.read(READ_CHUNK)
                if not chunk:
                    break
                yield chunk

    async def delete(self, key: str) -> bool:
        if not self.is_key(key) or await self._head(key) is None:
            return False
        await self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        return True

    async def iter(self, namespace: str) -> AsyncIterator[StoredFile]:
        if namespace not in self.namespaces:
            return
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._name(namespace + "/")):
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(self.prefix):]
                if self.is_key(key):
                    yield StoredFile(key, int(item["Size"]), item["LastModified"].timestamp())


async def open_backend(settings: AttachmentStorageSettings, *, root: Path, legacy_root: Path | None = None,
                       database_url: str | None = None, kind: str | None = None) -> AttachmentBackend:
    """The backend the settings choose (`kind` overrides them: the migrate command's target)."""
    kind = kind or settings.backend
    if kind == "local":
        return LocalBackend(await asyncio.to_thread(open_store, root, legacy_root))
    if kind == "postgres":
        if database_url is None:
            raise ValueError("the postgres attachment backend needs the database")
        return PostgresBackend.connect(database_url, settings)
    if kind == "s3":
        return await S3Backend.connect(settings)
    raise ValueError(f"unknown attachment backend {kind!r}")
