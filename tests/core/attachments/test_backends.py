"""Every attachment backend keeps the same contract: local folder, database rows (SQLite and the real PostgreSQL)
and an S3-compatible server started on 127.0.0.1 (moto's server mode)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.attachments.backends import AttachmentBackend, LocalBackend, PostgresBackend
from core.attachments.migrate import migrate
from core.attachments.models import AttachmentChunk
from core.attachments.store import AttachmentStore, key_for
from core.db.session import create_engine, create_sessionmaker
from core.errors import NotFoundError, ValidationFailedError
from tests.conftest import _truncate_pg
from tests.support.s3 import s3_backend, s3_server

pytestmark = pytest.mark.slow(seconds=40)

KINDS = ["local", "rows-sqlite", pytest.param("rows-postgres", marks=pytest.mark.postgres), "s3"]
CHUNK = 64 * 1024  # small chunks for the database backend: many chunk rows even in small tests


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def places(s3_endpoint: str, sqlite_template: Path, pg_migrated: str | None) -> dict[str, object]:
    """Where the backends live (resolved outside the test's event loop: the database fixtures run their own)."""
    return {"s3": s3_endpoint, "sqlite": sqlite_template, "postgres": pg_migrated}


async def _make(kind: str, places: dict[str, object], tmp_path: Path, name: str = "") -> AsyncIterator[
        AttachmentBackend]:
    if kind == "local":
        yield LocalBackend(AttachmentStore(tmp_path / f"files{name}"))
        return
    if kind == "s3":
        backend = await s3_backend(str(places["s3"]))
        try:
            yield backend
        finally:
            await backend.close()
        return
    if kind == "rows-sqlite":
        path = tmp_path / f"rows{name}.sqlite3"
        shutil.copy(str(places["sqlite"]), path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = places["postgres"]  # type: ignore[assignment]
        if url is None:
            pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
        await _truncate_pg(url)
    engine = create_engine(url)
    try:
        yield PostgresBackend(create_sessionmaker(engine), chunk_size=CHUNK)
    finally:
        await engine.dispose()


@pytest.fixture(params=KINDS)
async def backend(request: pytest.FixtureRequest, places: dict[str, object],
                  tmp_path: Path) -> AsyncIterator[AttachmentBackend]:
    async for made in _make(request.param, places, tmp_path):
        yield made


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def test_save_read_stat_and_the_same_bytes_again(backend: AttachmentBackend) -> None:
    info = await backend.save("Договор №5.pdf", "Application/PDF; x=y", b"%PDF one", namespace="email")
    assert info.storage_key == key_for("email", "Договор №5.pdf", hashlib.sha256(b"%PDF one").hexdigest())
    assert info.content_type == "application/pdf" and info.size == 8
    assert await backend.read(info.storage_key) == b"%PDF one"
    assert (await backend.stat(info.storage_key)).size == 8
    assert await backend.verify(info.storage_key, 8) == 8
    with pytest.raises(ValidationFailedError):
        await backend.verify(info.storage_key, 9)
    again = await backend.save("Договор №5.pdf", "application/pdf", b"%PDF one", namespace="email")
    assert again.storage_key == info.storage_key
    assert [s.key async for s in backend.iter("email")] == [info.storage_key]
    assert [s async for s in backend.iter("uploads")] == []
    with pytest.raises(ValueError, match="namespace"):
        await backend.save("a.txt", None, b"x", namespace="models")


async def test_ranges_stream_only_the_bytes_asked_for(backend: AttachmentBackend) -> None:
    data = os.urandom(3 * CHUNK + 123)
    key = (await backend.save("big.bin", None, data, namespace="uploads")).storage_key
    assert key is not None
    assert await collect(backend.stream(key)) == data
    for start, end in [(0, 1), (CHUNK - 1, CHUNK + 1), (CHUNK, 2 * CHUNK), (len(data) - 5, None),
                       (5, len(data) + 100), (len(data), None)]:
        assert await collect(backend.stream(key, start, end)) == data[start:end], (start, end)
    with pytest.raises(ValueError, match="range"):
        await collect(backend.stream(key, len(data) + 1))


BAD_KEYS = ["../../etc/passwd", "/etc/passwd", "uploads/../../../x", "models/ab/" + "c" * 32 + "/model.joblib",
            "uploads/ab/" + "c" * 32 + "/..", "uploads/AB/" + "c" * 32 + "/a.txt",
            "uploads/ab/" + "c" * 32 + "/a/b.txt",
            "uploads/ab/" + "c" * 32 + "/" + "x" * 600, "", "uploads/ab/" + "c" * 32 + "/.hidden",
            "uploads/ab/" + "c" * 32 + "/a\x00.txt", "uploads%2Fab%2F" + "c" * 32 + "%2Fa.txt"]


async def test_bad_keys_reach_nothing(backend: AttachmentBackend) -> None:
    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    for bad in BAD_KEYS:
        for call in (backend.stat(bad), backend.read(bad), collect(backend.stream(bad))):
            with pytest.raises(NotFoundError):
                await call
        assert await backend.delete(bad) is False, bad
        with pytest.raises(NotFoundError):
            await backend.put(bad, nothing, size=0)


async def test_a_missing_object_is_not_found(backend: AttachmentBackend) -> None:
    missing = key_for("uploads", "gone.pdf", hashlib.sha256(b"never stored").hexdigest())
    with pytest.raises(NotFoundError):
        await backend.stat(missing)
    with pytest.raises(NotFoundError):
        await collect(backend.stream(missing))
    assert await backend.delete(missing) is False


async def test_delete_keeps_the_same_bytes_under_another_name(backend: AttachmentBackend) -> None:
    one = (await backend.save("a.pdf", None, b"%PDF shared" * 10_000, namespace="uploads")).storage_key
    two = (await backend.save("b.pdf", None, b"%PDF shared" * 10_000, namespace="uploads")).storage_key
    assert one is not None and two is not None and one != two
    assert await backend.delete(one) is True
    assert await backend.delete(one) is False
    assert await backend.read(two) == b"%PDF shared" * 10_000
    assert await backend.delete(two) is True
    if isinstance(backend, PostgresBackend):  # the last name gone: its chunks went with it
        async with backend.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AttachmentChunk)) == 0


async def test_put_streams_a_large_file_and_refuses_bytes_that_do_not_match_the_key(
        backend: AttachmentBackend) -> None:
    data = os.urandom(9 * 1024 * 1024 + 7)  # above S3's part size: a multipart upload there
    key = key_for("email", "scan.tiff", hashlib.sha256(data).hexdigest())

    async def pieces() -> AsyncIterator[bytes]:
        for offset in range(0, len(data), 1_000_000):
            yield data[offset:offset + 1_000_000]

    assert await backend.put(key, pieces, size=len(data), modified=1_700_000_000.0) is True
    assert await backend.put(key, pieces, size=len(data)) is False  # already there: nothing read or written
    assert hashlib.sha256(await collect(backend.stream(key))).digest() == hashlib.sha256(data).digest()
    assert (await backend.stat(key)).size == len(data)

    forged = key_for("email", "forged.bin", hashlib.sha256(b"what the key says").hexdigest())

    async def other() -> AsyncIterator[bytes]:
        yield b"something else"

    with pytest.raises(ValidationFailedError):
        await backend.put(forged, other, size=14)
    with pytest.raises(NotFoundError):
        await backend.stat(forged)


@pytest.mark.parametrize("target_kind", ["rows-sqlite", pytest.param("rows-postgres", marks=pytest.mark.postgres),
                                         "s3"])
async def test_migrate_copies_everything_resumes_and_is_safe_to_run_again(
        target_kind: str, places: dict[str, object], tmp_path: Path) -> None:
    source = LocalBackend(AttachmentStore(tmp_path / "source"))
    keys = [(await source.save(f"f{i}.pdf", None, b"%PDF " + bytes([i]) * (i * 50_000), namespace=ns)).storage_key
            for i, ns in enumerate(["email", "telegram", "uploads", "uploads"])]
    broken = keys[1]
    assert broken is not None
    original = (source.files.root / broken).read_bytes()
    (source.files.root / broken).write_bytes(b"corrupted on disk")  # an interrupted run is one that stopped early
    async for target in _make(target_kind, places, tmp_path, "-target"):
        seen: list[tuple[int, int]] = []
        first = await migrate(source, target, lambda p, seen=seen: seen.append((p.done, p.total)))
        assert (first.copied, first.skipped, first.failed, first.total) == (3, 0, 1, 4)
        assert seen[0] == (0, 4) and seen[-1] == (4, 4)
        with pytest.raises(NotFoundError):
            await target.stat(broken)
        (source.files.root / broken).write_bytes(original)
        second = await migrate(source, target)
        assert (second.copied, second.skipped, second.failed) == (1, 3, 0)
        third = await migrate(source, target)
        assert (third.copied, third.skipped, third.failed) == (0, 4, 0)
        for key in keys:
            assert key is not None and await target.read(key) == await source.read(key)
