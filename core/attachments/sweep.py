"""Agents' uploads that never went out: an agent uploads a file for a reply and then sends none (or another one).

Such files are deleted once they are older than the retention and no message refers to them. Files that a message
refers to stay for as long as the message does; what customers sent (email/, telegram/, ...) is never touched.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attachments.backends import AttachmentBackend
from core.attachments.service import UPLOADS
from core.clock import SYSTEM_CLOCK
from core.jobs import Backoff, Every, Job, JobContext
from core.tickets import repository as ticket_repo

log = logging.getLogger(__name__)


async def _old_uploads(files: AttachmentBackend, retention: timedelta, now: datetime) -> list[str]:
    """Storage keys of the files under uploads/ last written (or uploaded again) before the retention."""
    cutoff = (now - retention).timestamp()
    return [stored.key async for stored in files.iter(UPLOADS) if stored.modified < cutoff]


async def _referenced(session: AsyncSession) -> set[str]:
    """Every upload a message refers to (streamed: the table can be large). Uploads are attached by agents, but
    any message not from a customer is looked at: a file is only deleted when nothing could refer to it."""
    keys: set[str] = set()
    prefix = UPLOADS + "/"
    async for items in ticket_repo.stream_attachment_lists_not_from_customers(session):
        for item in items or []:
            key = item.get("storage_key") if isinstance(item, dict) else None
            if isinstance(key, str) and key.startswith(prefix):
                keys.add(key)
    return keys


async def _remove(files: AttachmentBackend, keys: list[str]) -> int:
    return sum([await files.delete(key) for key in keys])


async def sweep_unsent_uploads(sessionmaker: async_sessionmaker[AsyncSession], files: AttachmentBackend,
                               retention: timedelta, *, now: datetime | None = None) -> int:
    """Delete the uploads older than `retention` (at `now`, by default the system clock's) that no message
    refers to; returns how many went."""
    candidates = await _old_uploads(files, retention, now or SYSTEM_CLOCK.now())
    if not candidates:
        return 0
    async with sessionmaker() as session:
        referenced = await _referenced(session)
    doomed = [key for key in candidates if key not in referenced]
    removed = await _remove(files, doomed)
    if removed:
        log.info("unsent uploads deleted",
                 extra={"count": removed, "retention_hours": retention.total_seconds() / 3600})
    return removed


def sweep_job(sessionmaker: async_sessionmaker[AsyncSession], files: AttachmentBackend, retention: timedelta,
              interval: timedelta) -> Job:
    """The sweep as a job: a minute after start (or `interval`, if shorter), then every `interval`, on one
    instance at a time (a lease); a failed sweep is tried again after the jobs' backoff."""

    async def sweep(ctx: JobContext) -> None:
        await sweep_unsent_uploads(sessionmaker, files, retention, now=ctx.clock.now())

    seconds = interval.total_seconds()
    return Job(name="uploads-sweep", tick=sweep, schedule=Every(seconds, first_delay=min(60.0, seconds)),
               lease="attachments:sweep-uploads", backoff=Backoff(initial=min(60.0, seconds), maximum=seconds))
