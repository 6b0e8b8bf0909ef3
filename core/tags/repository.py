"""All tag queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import UTCDateTime, utcnow
from core.tags.models import Tag, TicketTag


async def get(session: AsyncSession, tag_id: int) -> Tag | None:
    return await session.get(Tag, tag_id)


async def by_key(session: AsyncSession, key: str) -> Tag | None:
    return (await session.scalars(select(Tag).where(Tag.key == key))).first()


async def ids_of(session: AsyncSession, keys: Sequence[str]) -> list[int]:
    """The ids of the tags with these keys (those that exist)."""
    return list((await session.scalars(select(Tag.id).where(Tag.key.in_(list(keys))))).all()) if keys else []


async def list_all(session: AsyncSession, prefix: str | None = None, limit: int | None = None) -> Sequence[Tag]:
    """Tags by name; with `prefix`, those whose folded name starts with it (the unique index on key)."""
    stmt = select(Tag)
    if prefix:
        stmt = stmt.where(Tag.key.startswith(prefix, autoescape=True))
    stmt = stmt.order_by(Tag.key)
    return (await session.scalars(stmt.limit(limit) if limit else stmt)).all()


async def tags_of(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, list[Tag]]:
    """The tags of each of these tickets (one page), by name, in one query on the primary key."""
    if not ticket_ids:
        return {}
    rows = await session.execute(select(TicketTag.ticket_id, Tag).join(Tag, Tag.id == TicketTag.tag_id)
                                 .where(TicketTag.ticket_id.in_(list(ticket_ids))).order_by(Tag.key))
    found: dict[int, list[Tag]] = {}
    for ticket_id, tag in rows:
        found.setdefault(ticket_id, []).append(tag)
    return found


async def has(session: AsyncSession, ticket_id: int, tag_id: int) -> bool:
    return await session.get(TicketTag, (ticket_id, tag_id)) is not None


async def link(session: AsyncSession, ticket_id: int, tag_id: int) -> None:
    await session.execute(insert(TicketTag).values(ticket_id=ticket_id, tag_id=tag_id, created_at=utcnow()))


async def unlink(session: AsyncSession, ticket_id: int, tag_id: int) -> bool:
    result = await session.execute(delete(TicketTag).where(TicketTag.ticket_id == ticket_id,
                                                           TicketTag.tag_id == tag_id))
    return bool(getattr(result, "rowcount", 0))


async def copy_links(session: AsyncSession, source_id: int, target_id: int) -> None:
    """Put the source ticket's tags on the target too (a merge), those it lacks, in one statement."""
    missing = select(literal(target_id), TicketTag.tag_id, literal(utcnow(), UTCDateTime())).where(
        TicketTag.ticket_id == source_id,
        TicketTag.tag_id.not_in(select(TicketTag.tag_id).where(TicketTag.ticket_id == target_id)))
    await session.execute(insert(TicketTag).from_select(["ticket_id", "tag_id", "created_at"], missing))


async def delete_tag(session: AsyncSession, tag: Tag) -> None:
    await session.delete(tag)  # its links go with it (ON DELETE CASCADE)
    await session.flush()
