"""Customer identity resolution, merging, export and erasure (eTOM Customer Interface Management)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.contracts import repository as contract_repo
from core.contracts.models import Contract
from core.customers import repository
from core.customers.models import ChannelIdentity, Customer, CustomerMerge, email_key, phone_key
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.ingest.schemas import SenderInfo
from core.orders import repository as order_repo
from core.orders import service as order_service
from core.orders.models import Order
from core.privacy import repository as privacy_repo
from core.tickets import repository as ticket_repo
from core.tickets.models import Message, Ticket
from core.users.models import User


@dataclass
class CustomerPanel:
    """The customer beside a ticket: who they are, their latest orders and their other tickets."""

    customer: Customer
    orders: Sequence[Order]
    previous: Sequence[Ticket]
    contracts: Sequence[Contract] = ()


LOOKUP: Any = object()
"""`resolve_identity(prefetched=LOOKUP)`: the caller has not looked the identity up; query it."""


async def resolve_identity(session: AsyncSession, channel: str, sender: SenderInfo, *,
                           prefetched: ChannelIdentity | None = LOOKUP) -> ChannelIdentity:
    """The identity behind (channel, external id), creating the customer on first contact.

    A verified email or phone that matches a customer already known through another verified identity links
    the new identity to that customer, so one person has one history across channels. `prefetched` is the result
    of a lookup the caller already made (a batch prefetches every sender's identity in one query).
    """
    identity = await repository.get_identity(session, channel, sender.external_id) \
        if prefetched is LOOKUP else prefetched
    if identity is not None:
        customer = identity.customer
        if customer.merged_into_id is not None:
            # Follow a merge so new messages land on the surviving customer.
            target = await repository.get_customer(session, customer.merged_into_id)
            if target is not None:
                identity.customer_id = target.id
                identity.customer = target
                customer = target
        # Already vouched for with the contacts the customer holds: that contact was matched when this identity was
        # verified, and a customer who gets it later is matched at their own first contact. Skipping the lookup
        # saves a query per message on channels that vouch for every message (WhatsApp's phone).
        settled = identity.verified and email_key(sender.email) in (None, email_key(customer.email)) \
            and phone_key(sender.phone) in (None, phone_key(customer.phone))
        customer.name = customer.name or sender.name
        customer.email = customer.email or sender.email
        customer.phone = customer.phone or sender.phone
        if sender.verified and not identity.verified:
            identity.verified = True
        if sender.verified and (sender.email or sender.phone) and not settled:
            # A verified contact that another customer already has: the same person on two channels.
            known = await repository.find_verified_customer(session, sender.email, sender.phone,
                                                            exclude_id=customer.id)
            if known is not None and customer.id is not None and customer.erased_at is None \
                    and not await repository.said_distinct(session, customer.id, known.id):
                merged = await merge(session, customer.id, known.id, None, reason="verified_contact")
                identity.customer_id = merged.id
                identity.customer = merged
        return identity

    known = await repository.find_verified_customer(session, sender.email, sender.phone) if sender.verified else None
    customer = Customer(name=sender.name, email=sender.email, phone=sender.phone, time_zone=sender.time_zone,
                        created_at=utcnow(), updated_at=utcnow())
    session.add(customer)
    # Not flushed: inserted with the ticket; a concurrent first contact of the same sender fails there on
    # the unique (channel, external_id) key and the caller retries.
    identity = ChannelIdentity(channel=channel, external_id=sender.external_id, display_name=sender.name,
                               verified=sender.verified, origin=sender.origin, created_at=utcnow())
    identity.customer = customer
    session.add(identity)
    if known is not None:
        # A contact the channel vouches for that a customer already has: the same person. Linked as a recorded
        # merge of a customer of its own, so a supervisor can undo a wrong link like any merge.
        await session.flush()
        merged = await merge(session, customer.id, known.id, None, reason="verified_contact")
        identity.customer_id = merged.id
        identity.customer = merged
    return identity


async def get(session: AsyncSession, customer_id: int) -> Customer:
    customer = await repository.get_customer(session, customer_id)
    if customer is None:
        raise NotFoundError(f"customer {customer_id} not found")
    return customer


async def search(session: AsyncSession, query: str | None, limit: int, offset: int) -> Sequence[Customer]:
    """Unmerged customers whose name, email or phone contains `query`, newest first."""
    return await repository.search(session, query, limit, offset)


async def history(session: AsyncSession, customer_id: int, limit: int, offset: int) -> Sequence[Message]:
    """Every message of the customer across tickets and channels, oldest first (404 for an unknown customer)."""
    await get(session, customer_id)
    return await repository.history(session, customer_id, limit, offset)


async def panel(session: AsyncSession, ticket: Ticket, *, limit: int = 20) -> CustomerPanel:
    """The ticket's customer with identities, their `limit` latest orders and other tickets."""
    customer = await get(session, ticket.customer_id)
    orders = await order_repo.for_customer(session, customer.id, limit=limit, with_history=False)
    previous = await ticket_repo.others_of_customer(session, customer.id, ticket.id, limit)
    contracts = await contract_repo.for_customer(session, customer.id, limit=limit)
    return CustomerPanel(customer=customer, orders=orders, previous=previous, contracts=contracts)


async def tickets(session: AsyncSession, customer_id: int, *, limit: int = 50) -> Sequence[Ticket]:
    """The customer's tickets (those of every merged identity: a merge moves them), newest first."""
    return await ticket_repo.others_of_customer(session, customer_id, 0, limit)


async def contracts(session: AsyncSession, customer_id: int) -> Sequence[Contract]:
    """The customer's contracts, the latest ending first (404 for an unknown customer)."""
    await get(session, customer_id)
    return await contract_repo.for_customer(session, customer_id)


async def orders(session: AsyncSession, customer_id: int) -> Sequence[Order]:
    """The customer's orders with their status history, newest first (404 for an unknown customer)."""
    await get(session, customer_id)
    return await order_service.for_customer(session, customer_id)


async def merge(session: AsyncSession, source_id: int, target_id: int, actor: User | None, *,
                reason: str = "manual") -> Customer:
    """Move identities, tickets, orders and contracts of `source` to `target`; `source` stays as a pointer.

    What moved (and which empty contact fields of the target took the source's values) is recorded in a
    `customer_merges` row, which `unmerge` undoes.

    Raises:
        ConflictError: the same customer twice, an erased customer, or one already merged into another.
        NotFoundError: either customer is unknown.
    """
    if source_id == target_id:
        raise ConflictError("cannot merge a customer into itself", reason="same_customer")
    source = await get(session, source_id)
    target = await get(session, target_id)
    if source.erased_at is not None or target.erased_at is not None:
        raise ConflictError("cannot merge an erased customer", reason="erased")
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise ConflictError("one of the customers is already merged into another", reason="already_merged")
    moved = await repository.ids_of(session, source.id)
    await repository.move_owned(session, moved, source.id, target.id)
    filled = {}
    for field in ("name", "email", "phone"):
        if getattr(target, field) is None and getattr(source, field) is not None:
            filled[field] = getattr(source, field)
            setattr(target, field, getattr(source, field))
    source.merged_into_id = target.id
    record = CustomerMerge(source_id=source.id, target_id=target.id, actor_user_id=actor.id if actor else None,
                           reason=reason, moved=moved, filled=filled, merged_at=utcnow())
    session.add(record)
    await session.flush()
    audit.record(session, actor, "customer.merge", "customer", target.id, source_id=source.id, merge_id=record.id,
                 reason=reason, **{name: len(ids) for name, ids in moved.items()})
    await session.flush()
    session.expire(target, ["identities"])
    return await get(session, target.id)


async def unmerge(session: AsyncSession, merge_id: int, actor: User | None) -> CustomerMerge:
    """Undo one merge: the source customer comes back with what the merge moved (and the tickets that reached the
    target since through the identities that moved), and the target's fields the merge filled are emptied again.

    The two customers are then known as different people: a verified contact never links them automatically again.

    Raises:
        NotFoundError: no such merge.
        ConflictError: undone already, a customer erased since, or the target merged on into another customer
            (undo that merge first).
    """
    record = await repository.get_merge(session, merge_id)
    if record is None:
        raise NotFoundError(f"merge {merge_id} not found")
    if record.unmerged_at is not None:
        raise ConflictError("this merge was undone already", reason="not_merged")
    source = await get(session, record.source_id)
    target = await get(session, record.target_id)
    if source.erased_at is not None or target.erased_at is not None:
        raise ConflictError("cannot un-merge an erased customer", reason="erased")
    if target.merged_into_id is not None:
        raise ConflictError("the customer was merged into another since: undo that merge first",
                            reason="merged_on", merged_into_id=target.merged_into_id)
    moved = {name: list(ids) for name, ids in record.moved.items()}
    later = await repository.tickets_from_identities_since(session, target.id, moved.get("identities", []),
                                                           record.merged_at)
    moved["tickets"] = sorted(set(moved.get("tickets", [])) | set(later))
    await repository.move_owned(session, moved, target.id, source.id)
    for field, value in record.filled.items():
        if getattr(target, field) == value:
            setattr(target, field, None)
    source.merged_into_id = None
    record.unmerged_at = utcnow()
    record.unmerged_by_id = actor.id if actor else None
    audit.record(session, actor, "customer.unmerge", "customer", target.id, source_id=source.id,
                 merge_id=record.id, **{name: len(ids) for name, ids in moved.items()})
    await session.flush()
    session.expire(target, ["identities"])
    session.expire(source, ["identities"])
    return record


async def unmerge_customer(session: AsyncSession, source_id: int, actor: User | None) -> CustomerMerge:
    """Undo the merge that made `source_id` a pointer (409 `not_merged` when it is not merged)."""
    await get(session, source_id)
    record = await repository.active_merge_of_source(session, source_id)
    if record is None:
        raise ConflictError("this customer is not merged into another", reason="not_merged")
    return await unmerge(session, record.id, actor)


async def merges(session: AsyncSession, customer_id: int) -> Sequence[CustomerMerge]:
    """The merges into and out of a customer, newest first (404 for an unknown customer)."""
    await get(session, customer_id)
    return await repository.merges_of(session, customer_id)


@dataclass
class DuplicateGroup:
    """Live customers sharing one email or phone, that no channel vouched for as the same person."""

    kind: str  # "email" | "phone"
    key: str
    customers: list[Customer]


async def duplicates(session: AsyncSession, *, limit: int = 50, after: tuple[str, str] | None = None
                     ) -> tuple[list[DuplicateGroup], tuple[str, str] | None]:
    """Suggested duplicates for a supervisor to review (merge or dismiss), and the cursor of the next page.

    Pairs said to be different people (dismissed, or un-merged) are left out; a group left with one customer is
    not shown."""
    rows = await repository.duplicate_groups(session, limit=limit, after=after)
    more = len(rows) > limit
    rows = rows[:limit]
    distinct = await repository.distinct_pairs_among(session, {c.id for _k, _v, cs in rows for c in cs})
    groups = []
    for kind, key, members in rows:
        kept = [c for c in members
                if any((min(c.id, o.id), max(c.id, o.id)) not in distinct for o in members if o.id != c.id)]
        if len(kept) > 1:
            groups.append(DuplicateGroup(kind, key, kept))
    return groups, ((rows[-1][0], rows[-1][1]) if more and rows else None)


async def dismiss_duplicate(session: AsyncSession, a: int, b: int, actor: User | None) -> None:
    """Two customers are different people: never suggested as duplicates, never linked automatically."""
    if a == b:
        raise ConflictError("a customer is not a duplicate of itself", reason="same_customer")
    await get(session, a)
    await get(session, b)
    if await repository.add_distinct_pair(session, a, b, actor.id if actor else None):
        audit.record(session, actor, "customer.duplicate_dismissed", "customer", min(a, b), other_id=max(a, b))
        await session.flush()


@dataclass(frozen=True)
class Erasure:
    customer: Customer
    files: list[str]  # storage keys no message refers to any more: delete them once the erasure is committed


async def after_erasure(session: AsyncSession) -> None:
    """Once the erasure is committed: SQLite's write-ahead log emptied (its frames hold the rows as they were)."""
    await privacy_repo.checkpoint(session)


async def erase(session: AsyncSession, customer_id: int, actor: User | None) -> Erasure:
    """Erase the personal data of a person: the customer, every customer merged into it, and (for a customer that
    was merged away) the one it was merged into with its whole family, since their histories are one.

    Gone: contact fields, preferences, identities' names and external ids; subjects, thread keys, message texts,
    markup, entities, attachments, external ids and personal `extra` keys; notes; outbox recipients and payloads;
    survey comments; NLU suggestions from their words; consent-log notes; order descriptions and notes; the values
    merges recorded; quarantined payloads naming them; the words in the search indexes. Tickets, messages and
    their times, channels, intents and statuses stay, with no one's words in them: the statistics.

    Returns:
        The customer and the files to delete from the attachment store after the commit (a file another customer's
        message also refers to - the same bytes under the same name - stays).
    """
    customer = await get(session, customer_id)
    root = customer
    seen = {root.id}
    while root.merged_into_id is not None and root.merged_into_id not in seen:
        root = await get(session, root.merged_into_id)
        seen.add(root.id)
    family = await privacy_repo.merged_family(session, root.id)
    ids = [c.id for c in family]
    ticket_ids = await privacy_repo.ticket_ids_of(session, ids)
    keys = await privacy_repo.attachment_keys(session, ticket_ids)
    needles = {value for c in family for value in (c.name, c.email, c.phone) if value}
    needles |= {i.external_id for c in family for i in c.identities if not i.external_id.startswith("erased:")}
    secure_before = await privacy_repo.secure_delete(session, True)
    now = utcnow()
    for member in family:
        for field in ("name", "email", "phone", "language", "preferred_channel", "quiet_from", "quiet_until",
                      "time_zone"):
            setattr(member, field, None)
        member.consent_notices = False
        member.consent_marketing = False
        member.erased_at = member.erased_at or now
        for identity in member.identities:
            identity.display_name = None
            identity.origin = None
            identity.external_id = f"erased:{identity.id}"
    await session.flush()
    await privacy_repo.blank_tickets(session, ticket_ids)
    await privacy_repo.blank_customer_rows(session, ids)
    dropped = await privacy_repo.drop_quarantined(session, needles)
    await privacy_repo.mark_anonymised(session, ticket_ids, now)
    audit.record(session, actor, "customer.erase", "customer", root.id, customers=len(ids), tickets=len(ticket_ids),
                 files=len(keys), quarantined=dropped)
    await session.flush()
    await privacy_repo.purge_search_index(session)
    await privacy_repo.secure_delete(session, secure_before)
    still_used = await repository.referenced_keys(session, keys) if keys else set()
    for member in family:
        session.expire(member)
    return Erasure(await get(session, customer_id), sorted(keys - still_used))
