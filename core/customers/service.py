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
from core.customers.models import ChannelIdentity, Customer
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.ingest.schemas import SenderInfo
from core.orders import repository as order_repo
from core.orders import service as order_service
from core.orders.models import Order
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
        customer.name = customer.name or sender.name
        customer.email = customer.email or sender.email
        customer.phone = customer.phone or sender.phone
        if sender.verified and not identity.verified:
            identity.verified = True
        if sender.verified and (sender.email or sender.phone):
            # A verified contact that another customer already has: the same person on two channels.
            known = await repository.find_verified_customer(session, sender.email, sender.phone,
                                                            exclude_id=customer.id)
            if known is not None:
                merged = await merge(session, customer.id, known.id, None)
                identity.customer_id = merged.id
                identity.customer = merged
        return identity

    known = await repository.find_verified_customer(session, sender.email, sender.phone) if sender.verified else None
    if known is None:
        known = Customer(name=sender.name, email=sender.email, phone=sender.phone, created_at=utcnow(),
                         updated_at=utcnow())
        session.add(known)
    # Not flushed: inserted with the ticket; a concurrent first contact of the same sender fails there on
    # the unique (channel, external_id) key and the caller retries.
    identity = ChannelIdentity(channel=channel, external_id=sender.external_id, display_name=sender.name,
                               verified=sender.verified, created_at=utcnow())
    identity.customer = known
    session.add(identity)
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


async def contracts(session: AsyncSession, customer_id: int) -> Sequence[Contract]:
    """The customer's contracts, the latest ending first (404 for an unknown customer)."""
    await get(session, customer_id)
    return await contract_repo.for_customer(session, customer_id)


async def orders(session: AsyncSession, customer_id: int) -> Sequence[Order]:
    """The customer's orders with their status history, newest first (404 for an unknown customer)."""
    await get(session, customer_id)
    return await order_service.for_customer(session, customer_id)


async def merge(session: AsyncSession, source_id: int, target_id: int, actor: User | None) -> Customer:
    """Move identities, tickets, orders and contracts of `source` to `target`; `source` stays as a pointer."""
    if source_id == target_id:
        raise ConflictError("cannot merge a customer into itself")
    source = await get(session, source_id)
    target = await get(session, target_id)
    if source.merged_into_id is not None or target.merged_into_id is not None:
        raise ConflictError("one of the customers is already merged into another")
    await repository.move_identities(session, source.id, target.id)
    await repository.move_tickets_and_orders(session, source.id, target.id)
    await contract_repo.move_to_customer(session, source.id, target.id)
    target.name = target.name or source.name
    target.email = target.email or source.email
    target.phone = target.phone or source.phone
    source.merged_into_id = target.id
    audit.record(session, actor, "customer.merge", "customer", target.id, source_id=source.id)
    await session.flush()
    session.expire(target, ["identities"])
    return await get(session, target.id)


async def export(session: AsyncSession, customer_id: int, actor: User | None) -> dict[str, Any]:
    """Everything stored about one customer (personal-data access request)."""
    customer = await get(session, customer_id)
    tickets = await repository.tickets_of(session, customer.id)
    messages = await repository.history(session, customer.id, limit=1_000_000, offset=0)
    orders = await repository.orders_of(session, customer.id)
    audit.record(session, actor, "customer.export", "customer", customer.id)
    return {
        "customer": {"id": customer.id, "name": customer.name, "email": customer.email, "phone": customer.phone,
                     "language": customer.language, "created_at": customer.created_at.isoformat()},
        "identities": [{"channel": i.channel, "external_id": i.external_id, "verified": i.verified}
                       for i in customer.identities],
        "tickets": [{"number": t.number, "subject": t.subject, "status": t.status.value,
                     "created_at": t.created_at.isoformat()} for t in tickets],
        "messages": [{"ticket_id": m.ticket_id, "direction": m.direction.value, "author": m.author_kind.value,
                      "channel": m.channel, "text": m.text, "created_at": m.created_at.isoformat()}
                     for m in messages],
        "orders": [{"number": o.number, "status": o.status} for o in orders],
    }


@dataclass(frozen=True)
class Erasure:
    customer: Customer
    files: list[str]  # storage keys no message refers to any more: delete them once the erasure is committed


async def erase(session: AsyncSession, customer_id: int, actor: User | None) -> Erasure:
    """Erase personal data: contact fields, identities' names, message texts and attachments; tickets stay for
    statistics.

    Returns:
        The customer and the files to delete from the attachment store after the commit (a file another customer's
        message also refers to - the same bytes under the same name - stays).
    """
    customer = await get(session, customer_id)
    keys = await repository.attachment_keys(session, customer.id)
    customer.name = None
    customer.email = None
    customer.phone = None
    customer.erased_at = utcnow()
    for identity in customer.identities:
        identity.display_name = None
        identity.external_id = f"erased:{identity.id}"
    await repository.blank_messages(session, customer.id)
    audit.record(session, actor, "customer.erase", "customer", customer.id)
    await session.flush()
    still_used = await repository.referenced_keys(session, keys) if keys else set()
    return Erasure(customer, sorted(keys - still_used))
