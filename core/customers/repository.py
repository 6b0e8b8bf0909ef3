from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import String, cast, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from core.customers.models import ChannelIdentity, Customer
from core.orders.models import Order
from core.tickets.models import Message, Ticket


async def get_identity(session: AsyncSession, channel: str, external_id: str) -> ChannelIdentity | None:
    stmt = (
        select(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
        .options(joinedload(ChannelIdentity.customer))
    )
    return (await session.scalars(stmt)).first()


async def get_customer(session: AsyncSession, customer_id: int, *, lock: bool = False) -> Customer | None:
    stmt = select(Customer).where(Customer.id == customer_id).options(selectinload(Customer.identities))
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def identities_by_keys(session: AsyncSession, keys: Collection[tuple[str, str]]) -> Sequence[ChannelIdentity]:
    """The identities (with their customers) of many (channel, external id) pairs, in one query."""
    if not keys:
        return []
    stmt = (
        select(ChannelIdentity)
        .where(tuple_(ChannelIdentity.channel, ChannelIdentity.external_id).in_(list(keys)))
        .options(joinedload(ChannelIdentity.customer))
    )
    return (await session.scalars(stmt)).unique().all()


async def lock_customers(session: AsyncSession, customer_ids: Sequence[int]) -> None:
    """Serialise concurrent work on these customers: PostgreSQL row locks, taken in id order so two transactions
    never wait on each other in a circle (SQLite has a single writer anyway)."""
    if customer_ids and session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(Customer.id).where(Customer.id.in_(sorted(customer_ids))).order_by(Customer.id).with_for_update()
        )


async def find_verified_customer(session: AsyncSession, email: str | None, phone: str | None, *,
                                 exclude_id: int | None = None) -> Customer | None:
    """A customer (other than `exclude_id`) known by a verified identity with this email or phone."""
    conds = []
    if email:
        conds.append(Customer.email == email)
    if phone:
        conds.append(Customer.phone == phone)
    if not conds:
        return None
    stmt = (
        select(Customer)
        .join(ChannelIdentity, ChannelIdentity.customer_id == Customer.id)
        .where(or_(*conds), ChannelIdentity.verified.is_(True), Customer.merged_into_id.is_(None),
               Customer.id != (exclude_id or 0))
        .order_by(Customer.id)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def history(session: AsyncSession, customer_id: int, limit: int, offset: int) -> Sequence[Message]:
    stmt = (
        select(Message)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Ticket.customer_id == customer_id)
        .order_by(Message.created_at, Message.id)
        .limit(limit)
        .offset(offset)
    )
    return (await session.scalars(stmt)).all()


async def move_identities(session: AsyncSession, source_id: int, target_id: int) -> None:
    await session.execute(
        update(ChannelIdentity).where(ChannelIdentity.customer_id == source_id).values(customer_id=target_id)
    )


async def move_tickets_and_orders(session: AsyncSession, source_id: int, target_id: int) -> None:
    """Give every ticket and order of one customer to another (a customer merge)."""
    await session.execute(update(Ticket).where(Ticket.customer_id == source_id).values(customer_id=target_id))
    await session.execute(update(Order).where(Order.customer_id == source_id).values(customer_id=target_id))


async def tickets_of(session: AsyncSession, customer_id: int) -> Sequence[Ticket]:
    return (await session.scalars(select(Ticket).where(Ticket.customer_id == customer_id))).all()


async def orders_of(session: AsyncSession, customer_id: int) -> Sequence[Order]:
    return (await session.scalars(select(Order).where(Order.customer_id == customer_id))).all()


# Keys of Message.extra that hold what people wrote: the quoted history of an e-mail (its earlier messages).
PERSONAL_EXTRA_KEYS = ("quoted",)


async def blank_messages(session: AsyncSession, customer_id: int) -> None:
    """Empty the text, markup, attachments and entities of every message of the customer's tickets, and the
    written words kept in their `extra` (erasure)."""
    ticket_ids = select(Ticket.id).where(Ticket.customer_id == customer_id).scalar_subquery()
    await session.execute(
        update(Message).where(Message.ticket_id.in_(ticket_ids))
        .values(text="", html=None, attachments=[], entities=[])
    )
    # Read and rewritten in Python: removing a JSON key is spelled differently on each database, and only the
    # e-mails that carry such a key are touched.
    rows = await session.execute(select(Message.id, Message.extra).where(Message.ticket_id.in_(ticket_ids)))
    for message_id, extra in rows.all():
        if isinstance(extra, dict) and any(k in extra for k in PERSONAL_EXTRA_KEYS):
            kept = {k: v for k, v in extra.items() if k not in PERSONAL_EXTRA_KEYS}
            await session.execute(update(Message).where(Message.id == message_id).values(extra=kept))


async def search(session: AsyncSession, query: str | None, limit: int, offset: int) -> Sequence[Customer]:
    stmt = (select(Customer).where(Customer.merged_into_id.is_(None)).order_by(Customer.id.desc())
            .options(selectinload(Customer.identities)))
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(Customer.name.ilike(like), Customer.email.ilike(like), Customer.phone.ilike(like)))
    return (await session.scalars(stmt.limit(limit).offset(offset))).all()


def _keys_in(items: object) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {str(a["storage_key"]) for a in items if isinstance(a, dict) and a.get("storage_key")}


async def attachment_keys(session: AsyncSession, customer_id: int) -> set[str]:
    """The storage keys the messages of a customer's tickets refer to (what they sent and what they were sent)."""
    rows = await session.scalars(
        select(Message.attachments).join(Ticket, Ticket.id == Message.ticket_id)
        .where(Ticket.customer_id == customer_id, Message.attachments.is_not(None))
    )
    return {key for items in rows for key in _keys_in(items)}


async def referenced_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of `keys` some message still refers to. A key's digest is ASCII, unlike its name (which the JSON may
    hold escaped), so the database narrows by digest and the exact keys are compared here."""
    wanted = set(keys)
    found: set[str] = set()
    ordered = sorted(wanted)
    for start in range(0, len(ordered), 50):
        digests = {key.split("/")[2] for key in ordered[start:start + 50] if key.count("/") >= 3}
        if not digests:
            continue
        as_text = cast(Message.attachments, String)
        rows = await session.scalars(
            select(Message.attachments).where(or_(*(as_text.like(f"%{digest}%") for digest in digests)))
        )
        found |= {key for items in rows for key in _keys_in(items)} & wanted
    return found
