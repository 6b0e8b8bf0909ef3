"""Unsent uploads are swept after the retention; files a message refers to, fresh ones and customers' stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attachments.backends import LocalBackend
from core.attachments.service import save_upload
from core.attachments.store import AttachmentStore
from core.attachments.sweep import sweep_unsent_uploads
from core.db.base import utcnow
from core.ingest.schemas import InboundMessage, SenderInfo
from core.tickets.models import AuthorKind, Direction, Message
from tests.core.ingest.test_threading import svc

WEEK = timedelta(days=7)


def age(root: Path, key: str, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(Path(root) / key, (then, then))


async def test_only_old_unreferenced_uploads_go(sessionmaker: async_sessionmaker[AsyncSession],
                                                tmp_path: Path) -> None:
    files = LocalBackend(AttachmentStore(tmp_path))
    sent = await save_upload(files, "invoice.pdf", "application/pdf", b"%PDF-1.4 sent", max_bytes=10_000)
    abandoned = await save_upload(files, "draft.pdf", "application/pdf", b"%PDF-1.4 draft", max_bytes=10_000)
    fresh = await save_upload(files, "new.pdf", "application/pdf", b"%PDF-1.4 new", max_bytes=10_000)
    again = await save_upload(files, "again.pdf", "application/pdf", b"%PDF-1.4 again", max_bytes=10_000)
    customers = await files.save("photo.jpg", "image/jpeg", b"\xff\xd8 photo", namespace="telegram")
    for info in (sent, abandoned, again, customers):
        assert info.storage_key is not None
        age(tmp_path, info.storage_key, days=8)
    # The same bytes uploaded again today: a new upload as far as the sweep is concerned.
    assert (await save_upload(files, "again.pdf", "application/pdf", b"%PDF-1.4 again",
                              max_bytes=10_000)).storage_key == again.storage_key

    result = await svc(sessionmaker).ingest(InboundMessage(
        channel="rest", external_message_id="m-1", sender=SenderInfo(external_id="c-1"), text="my tv is broken"))
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(Message).values(
            ticket_id=result.ticket_id, direction=Direction.outbound, author_kind=AuthorKind.agent, channel="rest",
            text="Your invoice", attachments=[sent.model_dump(exclude_none=True)], created_at=utcnow()))

    assert await sweep_unsent_uploads(sessionmaker, files, WEEK) == 1
    assert not (tmp_path / str(abandoned.storage_key)).exists()
    assert not (tmp_path / str(abandoned.storage_key)).parent.exists()  # its digest folder went with it
    for kept in (sent, fresh, again, customers):
        assert (tmp_path / str(kept.storage_key)).is_file()
    assert await sweep_unsent_uploads(sessionmaker, files, WEEK) == 0  # nothing left to do


async def test_the_sweep_goes_by_the_clock_it_is_given(sessionmaker: async_sessionmaker[AsyncSession],
                                                        tmp_path: Path) -> None:
    files = LocalBackend(AttachmentStore(tmp_path))
    draft = await save_upload(files, "draft.pdf", "application/pdf", b"%PDF-1.4 draft", max_bytes=10_000)
    assert await sweep_unsent_uploads(sessionmaker, files, WEEK, now=utcnow() + timedelta(days=6)) == 0
    assert await sweep_unsent_uploads(sessionmaker, files, WEEK, now=utcnow() + timedelta(days=8)) == 1
    assert not (tmp_path / str(draft.storage_key)).exists()


async def test_nothing_uploaded_is_nothing_to_do(sessionmaker: async_sessionmaker[AsyncSession],
                                                 tmp_path: Path) -> None:
    files = LocalBackend(AttachmentStore(tmp_path))
    assert await sweep_unsent_uploads(sessionmaker, files, WEEK) == 0


async def test_the_sweep_job_runs_a_minute_after_start_then_every_interval(
        sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    from core.attachments.sweep import sweep_job
    from core.clock import ManualClock
    from core.jobs import JobRegistry
    from tests.support.waiting import until

    files = LocalBackend(AttachmentStore(tmp_path))
    clock = ManualClock()
    engine = sessionmaker.kw["bind"]
    registry = JobRegistry(clock, engine=engine)
    registry.start(sweep_job(sessionmaker, files, WEEK, timedelta(hours=6)))
    try:
        await until(lambda: clock.pending_sleeps() == [60.0], "the job waits a minute before its first sweep")
        abandoned = await save_upload(files, "draft.pdf", "application/pdf", b"%PDF-1.4 draft", max_bytes=10_000)
        assert abandoned.storage_key is not None
        age(tmp_path, abandoned.storage_key, days=8)
        clock.advance(60)
        await until(lambda: not (tmp_path / str(abandoned.storage_key)).exists(), "the first sweep")
        await until(lambda: clock.pending_sleeps() == [6 * 3600.0], "the next sweep is six hours later")
        health = registry.health()["uploads-sweep"]
        assert health["runs"] == 1 and health["failures"] == 0 and health["lease"] == "attachments:sweep-uploads"
        later = await save_upload(files, "draft2.pdf", "application/pdf", b"%PDF-1.4 draft", max_bytes=10_000)
        assert later.storage_key is not None
        age(tmp_path, later.storage_key, days=8)
        clock.advance(6 * 3600)
        await until(lambda: not (tmp_path / str(later.storage_key)).exists(), "the second sweep")
    finally:
        await registry.stop()


async def test_the_sweep_goes_by_the_database_rows_with_the_postgres_backend(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """With attachments in the database, the sweep's marks (when an upload was last stored) are rows too: any
    instance sweeps what any other uploaded."""
    from sqlalchemy import update

    from core.attachments.backends import PostgresBackend
    from core.attachments.models import AttachmentObject

    files = PostgresBackend(sessionmaker)
    old = await save_upload(files, "draft.pdf", "application/pdf", b"%PDF-1.4 draft", max_bytes=10_000)
    fresh = await save_upload(files, "new.pdf", "application/pdf", b"%PDF-1.4 new", max_bytes=10_000)
    async with sessionmaker.begin() as session:
        await session.execute(update(AttachmentObject).where(AttachmentObject.key == old.storage_key)
                              .values(modified_at=utcnow() - timedelta(days=8)))
    assert await sweep_unsent_uploads(sessionmaker, files, WEEK) == 1
    assert [f.key async for f in files.iter("uploads")] == [fresh.storage_key]
