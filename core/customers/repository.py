from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import String, and_, bindparam, cast, func, or_, select, tuple_, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from core.contracts.models import Contract
from core.customers.models import ChannelIdentity, Customer, CustomerMerge, DuplicateDismissal, email_key, phone_key
from core.db.lists import IdListQuery, padded
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


# The ingest's per-batch lookups are built once: building a statement costs more CPU than running it
# (core/db/lists.py).
_IDENTITIES_BY_KEYS = (
    select(ChannelIdentity)
    .where(tuple_(ChannelIdentity.channel, ChannelIdentity.external_id).in_(bindparam("keys", expanding=True)))
    .options(joinedload(ChannelIdentity.customer))
)
_LOCK_CUSTOMERS = IdListQuery.build(lambda match: select(Customer.id).where(match(Customer.id))
                                    .order_by(Customer.id).with_for_update())


async def identities_by_keys(session: AsyncSession, keys: Collection[tuple[str, str]]) -> Sequence[ChannelIdentity]:
    """The identities (with their customers) of many (channel, external id) pairs, in one query."""
    if not keys:
        return []
    return (await session.scalars(_IDENTITIES_BY_KEYS, {"keys": padded(keys)})).unique().all()


async def lock_customers(session: AsyncSession, customer_ids: Sequence[int]) -> None:
    """Serialise concurrent work on these customers: PostgreSQL row locks, taken in id order so two transactions
    never wait on each other in a circle (SQLite has a single writer anyway)."""
    if customer_ids and session.get_bind().dialect.name == "postgresql":
        await session.execute(*_LOCK_CUSTOMERS.bound(session, sorted(customer_ids)))


LIVE = (Customer.merged_into_id.is_(None), Customer.erased_at.is_(None))


async def find_verified_customer(session: AsyncSession, email: str | None, phone: str | None, *,
                                 exclude_id: int | None = None) -> Customer | None:
    """A customer (other than `exclude_id`) known by a verified identity with this email or phone (compared in
    their normalised forms). Each key is looked up on its own partial index and the few candidates joined to their
    identities: with `email OR phone` and the order by id in one statement, SQLite walked the customers by id."""
    candidates = []
    if key := email_key(email):
        candidates.append(select(Customer.id).where(Customer.email_key == key, *LIVE))
    if key := phone_key(phone):
        candidates.append(select(Customer.id).where(Customer.phone_key == key, *LIVE))
    if not candidates:
        return None
    ids = list(await session.scalars(candidates[0] if len(candidates) == 1 else union(*candidates)))
    ids = [i for i in ids if i != exclude_id]
    if not ids:
        return None
    stmt = (
        select(Customer)
        .where(Customer.id.in_(ids), select(ChannelIdentity.id).where(
            ChannelIdentity.customer_id == Customer.id, ChannelIdentity.verified.is_(True)).exists())
        .order_by(Customer.id)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def said_distinct(session: AsyncSession, a: int, b: int) -> bool:
    """Whether a person said these two customers are different people (dismissed as duplicates, or un-merged)."""
    low, high = sorted((a, b))
    dismissed = select(DuplicateDismissal.id).where(DuplicateDismissal.low_id == low,
                                                    DuplicateDismissal.high_id == high)
    unmerged = select(CustomerMerge.id).where(
        or_(and_(CustomerMerge.source_id == a, CustomerMerge.target_id == b),
            and_(CustomerMerge.source_id == b, CustomerMerge.target_id == a)),
        CustomerMerge.unmerged_at.is_not(None))
    return (await session.scalar(select(dismissed.exists() | unmerged.exists()))) or False


async def add_distinct_pair(session: AsyncSession, a: int, b: int, actor_id: int | None) -> bool:
    """Record that two customers are different people; False when it was recorded already."""
    low, high = sorted((a, b))
    exists = await session.scalar(select(DuplicateDismissal.id).where(DuplicateDismissal.low_id == low,
                                                                      DuplicateDismissal.high_id == high))
    if exists is not None:
        return False
    session.add(DuplicateDismissal(low_id=low, high_id=high, actor_user_id=actor_id))
    return True


async def duplicate_groups(session: AsyncSession, *, limit: int, after: tuple[str, str] | None = None
                           ) -> list[tuple[str, str, list[Customer]]]:
    """Groups of live customers sharing a normalised email or phone, by (kind, key), `limit` groups from `after`.

    Each GROUP BY reads only the partial index of its key (an index-only scan); the customers of the page's groups
    are then fetched by key, one query per kind."""
    groups: list[tuple[str, str]] = []
    for kind, column in (("email", Customer.email_key), ("phone", Customer.phone_key)):
        if after is not None and kind < after[0]:
            continue
        stmt = (select(column).where(column.is_not(None), *LIVE).group_by(column)
                .having(func.count() > 1).order_by(column).limit(limit + 1))
        if after is not None and kind == after[0]:
            stmt = stmt.where(column > after[1])
        groups += [(kind, key) for key in await session.scalars(stmt) if key is not None]
        if len(groups) > limit:
            break
    groups = groups[:limit + 1]
    members: dict[tuple[str, str], list[Customer]] = {g: [] for g in groups}
    for kind, column in (("email", Customer.email_key), ("phone", Customer.phone_key)):
        keys = [key for k, key in groups if k == kind]
        if not keys:
            continue
        rows = await session.scalars(select(Customer).where(column.in_(keys), *LIVE).order_by(Customer.id)
                                     .options(selectinload(Customer.identities)))
        for customer in rows:
            members[(kind, getattr(customer, f"{kind}_key"))].append(customer)
    return [(kind, key, members[(kind, key)]) for kind, key in groups]


async def distinct_pairs_among(session: AsyncSession, ids: Collection[int]) -> set[tuple[int, int]]:
    if not ids:
        return set()
    rows = await session.execute(select(DuplicateDismissal.low_id, DuplicateDismissal.high_id)
                                 .where(DuplicateDismissal.low_id.in_(list(ids))))
    pairs = {(low, high) for low, high in rows.all()}
    rows = await session.execute(select(CustomerMerge.source_id, CustomerMerge.target_id)
                                 .where(CustomerMerge.source_id.in_(list(ids)), CustomerMerge.unmerged_at.is_not(None)))
    pairs |= {(min(a, b), max(a, b)) for a, b in rows.all()}
    return pairs


async def merges_of(session: AsyncSession, customer_id: int) -> Sequence[CustomerMerge]:
    """The merges into or out of a customer, newest first."""
    stmt = (select(CustomerMerge)
            .where(or_(CustomerMerge.target_id == customer_id, CustomerMerge.source_id == customer_id))
            .order_by(CustomerMerge.id.desc()))
    return (await session.scalars(stmt)).all()


async def get_merge(session: AsyncSession, merge_id: int) -> CustomerMerge | None:
    return await session.get(CustomerMerge, merge_id)


async def active_merge_of_source(session: AsyncSession, source_id: int) -> CustomerMerge | None:
    stmt = (select(CustomerMerge).where(CustomerMerge.source_id == source_id, CustomerMerge.unmerged_at.is_(None))
            .order_by(CustomerMerge.id.desc()).limit(1))
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


async def ids_of(session: AsyncSession, customer_id: int) -> dict[str, list[int]]:
    """The ids of what a customer owns that a merge moves: identities, tickets, orders, contracts."""
    owned: dict[str, list[int]] = {}
    for name, model in (("identities", ChannelIdentity), ("tickets", Ticket), ("orders", Order),
                        ("contracts", Contract)):
        owned[name] = list(await session.scalars(
            select(model.id).where(model.customer_id == customer_id).order_by(model.id)))
    return owned


async def move_owned(session: AsyncSession, moved: dict[str, list[int]], from_id: int, to_id: int) -> None:
    """Give the listed identities, tickets, orders and contracts that `from_id` still has to `to_id`."""
    for name, model in (("identities", ChannelIdentity), ("tickets", Ticket), ("orders", Order),
                        ("contracts", Contract)):
        ids = moved.get(name) or []
        for start in range(0, len(ids), 500):
            await session.execute(
                update(model).where(model.id.in_(ids[start:start + 500]),
                                    model.customer_id == from_id)
                .values(customer_id=to_id))


async def tickets_from_identities_since(session: AsyncSession, customer_id: int, identity_ids: Sequence[int],
                                        since: object) -> list[int]:
    """Tickets the customer got after a merge through identities that came with it (they follow the identity
    back when the merge is undone)."""
    if not identity_ids:
        return []
    stmt = select(Ticket.id).where(Ticket.customer_id == customer_id, Ticket.identity_id.in_(list(identity_ids)),
                                   Ticket.created_at >= since)
    return list(await session.scalars(stmt))


async def tickets_of(session: AsyncSession, customer_id: int) -> Sequence[Ticket]:
    return (await session.scalars(select(Ticket).where(Ticket.customer_id == customer_id))).all()


async def orders_of(session: AsyncSession, customer_id: int) -> Sequence[Order]:
    return (await session.scalars(select(Order).where(Order.customer_id == customer_id))).all()


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
