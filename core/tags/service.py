"""Tags: agents put them on tickets (a new name creates the tag), supervisors and admins keep the list (rename,
colour, delete). Every change by a person is audited; a ticket's tag change is a ticket change for live pages.

A tag is the team's classification of a ticket, not anything the customer wrote: a customer's erasure keeps the
links, like the intent and the status (the statistics), and the export lists the tags of each ticket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.events import TicketChanged, Topic, emit
from core.tags import repository
from core.tags.models import Tag
from core.tags.schemas import NAME_MAX, TagCreate, TagUpdate
from core.tickets.models import Ticket
from core.users.models import User

MAX_FILTER_TAGS = 10  # tags one filter combines (each is one more condition on the list's query)
_NAME = re.compile(r"[\w][\w .\-/+&]*", re.UNICODE)
_SPACES = re.compile(r"\s+")


def clean_name(raw: str) -> str:
    """A tag name as stored: spaces collapsed; ValidationFailedError for an empty, long or odd one (commas separate
    tags in the console's filter links, angle brackets and quotes have no business in a label)."""
    name = _SPACES.sub(" ", raw).strip()
    if not name:
        raise ValidationFailedError("tag name is empty")
    if len(name) > NAME_MAX:
        raise ValidationFailedError(f"tag name is longer than {NAME_MAX} characters", length=len(name))
    if not _NAME.fullmatch(name):
        raise ValidationFailedError("tag name: letters, digits, spaces and - _ . / + & only", name=name[:NAME_MAX])
    return name


def key_of(name: str) -> str:
    """What makes two names one tag: case and runs of spaces do not (ё is е, as in search)."""
    return _SPACES.sub(" ", name).strip().casefold().replace("ё", "е")


def filter_keys(names: Sequence[str]) -> tuple[str, ...]:
    """The tags a filter names (repeated, or comma-separated), folded; more than MAX_FILTER_TAGS: 422."""
    keys = tuple(dict.fromkeys(k for raw in names for part in raw.split(",") if (k := key_of(part))))
    if len(keys) > MAX_FILTER_TAGS:
        raise ValidationFailedError(f"tag: at most {MAX_FILTER_TAGS} tags in one filter", given=len(keys))
    if any(len(k) > NAME_MAX for k in keys):
        raise ValidationFailedError(f"tag: a name is at most {NAME_MAX} characters")
    return keys


async def get(session: AsyncSession, tag_id: int) -> Tag:
    tag = await repository.get(session, tag_id)
    if tag is None:
        raise NotFoundError(f"tag {tag_id} not found")
    return tag


async def list_tags(session: AsyncSession, prefix: str | None = None, limit: int | None = None) -> Sequence[Tag]:
    return await repository.list_all(session, key_of(prefix) if prefix else None, limit)


async def tags_of(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, list[Tag]]:
    return await repository.tags_of(session, ticket_ids)


async def tags_of_ticket(session: AsyncSession, ticket_id: int) -> list[Tag]:
    """One ticket's tags, by name."""
    return (await repository.tags_of(session, [ticket_id])).get(ticket_id, [])


async def _unique(session: AsyncSession, name: str, tag: Tag | None = None) -> None:
    other = await repository.by_key(session, key_of(name))
    if other is not None and (tag is None or other.id != tag.id):
        raise ConflictError(f"a tag named {other.name!r} already exists", tag_id=other.id)


async def create(session: AsyncSession, body: TagCreate, actor: User) -> Tag:
    name = clean_name(body.name)
    await _unique(session, name)
    return await _insert(session, name, body.colour, actor)


async def _insert(session: AsyncSession, name: str, colour: str, actor: User) -> Tag:
    """A new tag of a clean name; a name taken meanwhile: IntegrityError (the unique key)."""
    tag = Tag(name=name, key=key_of(name), colour=colour)
    session.add(tag)
    await session.flush()
    audit.record(session, actor, "tag.create", "tag", tag.id, name=name, colour=tag.colour)
    return tag


async def update(session: AsyncSession, tag_id: int, body: TagUpdate, actor: User) -> Tag:
    tag = await get(session, tag_id)
    changes: dict[str, object] = {}
    if body.name is not None and (name := clean_name(body.name)) != tag.name:
        await _unique(session, name, tag)
        changes["name"] = {"old": tag.name, "new": name}
        tag.name, tag.key = name, key_of(name)
    if body.colour is not None and body.colour != tag.colour:
        changes["colour"] = {"old": tag.colour, "new": body.colour}
        tag.colour = body.colour
    if changes:
        await session.flush()
        audit.record(session, actor, "tag.update", "tag", tag.id, **changes)
    return tag


async def delete(session: AsyncSession, tag_id: int, actor: User) -> None:
    tag = await get(session, tag_id)
    await repository.delete_tag(session, tag)
    audit.record(session, actor, "tag.delete", "tag", tag_id, name=tag.name)


async def ensure_tag(session: AsyncSession, name: str, actor: User) -> Tag:
    """The tag named `name`, created when nobody has used the name yet (agents tag as they work; supervisors tidy
    the list). A bad name: ValidationFailedError with the reason."""
    clean = clean_name(name)
    tag = await repository.by_key(session, key_of(clean))
    if tag is None:
        try:
            async with session.begin_nested():
                tag = await _insert(session, clean, "grey", actor)  # looked up just now: no second look
        except IntegrityError:  # someone created it at the same moment: theirs is the tag
            tag = await by_name(session, clean)
    return tag


async def add_to_ticket(session: AsyncSession, ticket: Ticket, tag: Tag, actor: User) -> bool:
    """Put the tag on the ticket; False when it was already there (nothing changes)."""
    if await repository.has(session, ticket.id, tag.id):
        return False
    await repository.link(session, ticket.id, tag.id)
    audit.record(session, actor, "ticket.tag_add", "ticket", ticket.id, tag=tag.name, tag_id=tag.id)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "tagged"))
    return True


async def remove_from_ticket(session: AsyncSession, ticket: Ticket, tag: Tag, actor: User) -> bool:
    """Take the tag off the ticket; False when it was not on it."""
    if not await repository.unlink(session, ticket.id, tag.id):
        return False
    audit.record(session, actor, "ticket.tag_remove", "ticket", ticket.id, tag=tag.name, tag_id=tag.id)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "tagged"))
    return True


async def by_name(session: AsyncSession, name: str) -> Tag:
    tag = await repository.by_key(session, key_of(name))
    if tag is None:
        raise NotFoundError(f"tag {name[:NAME_MAX]!r} not found")
    return tag


async def carry_over_merge(session: AsyncSession, source: Ticket, target: Ticket) -> None:
    """A merged ticket's tags go with its conversation to the ticket it joined."""
    await repository.copy_links(session, source.id, target.id)
