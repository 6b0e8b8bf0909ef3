"""Personal data done right (issue 15 item 6): the export archive of everything stored about a customer, and the
retention policy that anonymises closed tickets older than a configurable age. Erasure is
`core.customers.service.erase`; both use the statements of `core.privacy.repository`."""

from __future__ import annotations

import json
import logging
import re
import tempfile
import zipfile
from datetime import datetime, timedelta
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attachments.backends import AttachmentBackend
from core.audit import service as audit
from core.clock import Clock
from core.consent import repository as consent_repo
from core.contracts import repository as contract_repo
from core.customers import repository as customer_repo
from core.customers import service as customers
from core.errors import NotFoundError
from core.jobs.backoff import Backoff
from core.jobs.job import Job, JobContext
from core.jobs.schedule import Every
from core.orders import repository as order_repo
from core.privacy import repository
from core.tags import repository as tag_repo
from core.users.models import User

log = logging.getLogger(__name__)

MAX_ARCHIVE_NAME = 120


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def export_data(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    """Everything stored about one customer (and the customers merged into it), as JSON-ready data."""
    customer = await customers.get(session, customer_id)
    family = await repository.merged_family(session, customer.id)
    ids = sorted(c.id for c in family)
    tickets = [t for cid in ids for t in await customer_repo.tickets_of(session, cid)]
    messages = await customer_repo.history(session, customer.id, limit=1_000_000, offset=0)
    orders = await order_repo.for_customer(session, customer.id, limit=10_000, with_history=True)
    contracts = await contract_repo.for_customer(session, customer.id, limit=10_000)
    consents = await consent_repo.log_of(session, customer.id, limit=100_000)
    merges = await customer_repo.merges_of(session, customer.id)
    tags = await tag_repo.tags_of(session, [t.id for t in tickets])
    return {
        "customer": {
            "id": customer.id, "name": customer.name, "email": customer.email, "phone": customer.phone,
            "language": customer.language, "preferred_channel": customer.preferred_channel,
            "quiet_from": customer.quiet_from, "quiet_until": customer.quiet_until, "time_zone": customer.time_zone,
            "consent_notices": customer.consent_notices, "consent_marketing": customer.consent_marketing,
            "created_at": _iso(customer.created_at), "erased_at": _iso(customer.erased_at)},
        "merged_customers": [{"id": c.id, "name": c.name, "email": c.email, "phone": c.phone}
                             for c in family if c.id != customer.id],
        "identities": [{"channel": i.channel, "external_id": i.external_id, "display_name": i.display_name,
                        "verified": i.verified, "origin": i.origin, "created_at": _iso(i.created_at)}
                       for c in family for i in c.identities],
        "tickets": [{"number": t.number, "subject": t.subject, "status": t.status.value, "channel": t.channel,
                     "created_at": _iso(t.created_at), "closed_at": _iso(t.closed_at),
                     "tags": [tag.name for tag in tags.get(t.id, [])]} for t in tickets],
        "messages": [{"ticket_id": m.ticket_id, "direction": m.direction.value, "author": m.author_kind.value,
                      "channel": m.channel, "text": m.text, "html": m.html, "created_at": _iso(m.created_at),
                      "attachments": [{"filename": a.get("filename"), "content_type": a.get("content_type"),
                                       "size": a.get("size"), "file": _archive_name(a)}
                                      for a in (m.attachments or []) if isinstance(a, dict)]}
                     for m in messages],
        "orders": [{"number": o.number, "status": o.status, "description": o.description,
                    "history": [{"status": h.status, "note": h.note, "changed_at": _iso(h.changed_at)}
                                for h in o.history]} for o in orders],
        "contracts": [{"number": k.number, "tariff": k.tariff, "services": k.services,
                       "start_date": _iso(k.start_date), "end_date": _iso(k.end_date), "status": k.status.value,
                       "auto_renewal": k.auto_renewal} for k in contracts],
        "consent_log": [{"kind": c.kind.value, "granted": c.granted, "source": c.source, "note": c.note,
                         "changed_at": _iso(c.changed_at)} for c in consents],
        "merges": [{"source_id": m.source_id, "target_id": m.target_id, "reason": m.reason,
                    "merged_at": _iso(m.merged_at), "unmerged_at": _iso(m.unmerged_at)} for m in merges],
    }


def _archive_name(attachment: dict[str, Any]) -> str | None:
    """`attachments/<digest>-<safe name>`: unique per stored file, safe on any unzip (no folders, no dots first)."""
    key = attachment.get("storage_key")
    if not isinstance(key, str) or key.count("/") < 3:
        return None
    digest, name = key.split("/")[2], key.split("/")[-1]
    safe = re.sub(r"[^\w.\-]+", "_", name).lstrip(".")[:MAX_ARCHIVE_NAME] or "file"
    return f"attachments/{digest}-{safe}"


async def export(session: AsyncSession, customer_id: int, actor: User | None, *, api_key: str | None = None
                 ) -> dict[str, Any]:
    """The export as JSON (audited `customer.export`, format json)."""
    data = await export_data(session, customer_id)
    audit.record(session, actor, "customer.export", "customer", customer_id, format="json",
                 **({"api_key": api_key} if api_key else {}))
    return data


async def export_archive(session: AsyncSession, files: AttachmentBackend, customer_id: int, actor: User | None
                         ) -> IO[bytes]:
    """One ZIP: `customer.json` (the export) and the files of the customer's conversations under `attachments/`.
    Written to a temporary file (spilled to disk past 8 MiB), returned at its start; audited `customer.export`
    with format zip. A file missing from the store is listed in `missing_files` of the JSON, not fatal."""
    data = await export_data(session, customer_id)
    keys = {}
    for message in await customer_repo.history(session, customer_id, limit=1_000_000, offset=0):
        for a in message.attachments or []:
            if isinstance(a, dict) and (name := _archive_name(a)):
                keys[name] = str(a["storage_key"])
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    missing = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, key in sorted(keys.items()):
            try:
                archive.writestr(name, await files.read(key))
            except NotFoundError:
                missing.append(name)
        data["missing_files"] = missing
        archive.writestr("customer.json", json.dumps(data, ensure_ascii=False, indent=2))
    audit.record(session, actor, "customer.export", "customer", customer_id, format="zip",
                 files=len(keys) - len(missing))
    out.seek(0)
    return out


async def view_profile(session: AsyncSession, customer_id: int, actor: User | None, *, where: str,
                       api_key: str | None = None) -> None:
    """Record that someone opened a customer's full profile (`customer.view`, where: api | console)."""
    audit.record(session, actor, "customer.view", "customer", customer_id, where=where,
                 **({"api_key": api_key} if api_key else {}))


async def anonymise_old_tickets(session: AsyncSession, files: AttachmentBackend | None, *, now: datetime,
                                older_than: timedelta, batch: int = 500) -> tuple[int, list[str]]:
    """One batch of the retention policy: closed tickets closed more than `older_than` ago lose what people wrote
    (as in an erasure; the customer stays). Returns how many tickets were anonymised and the files no message
    refers to any more (delete them after the commit)."""
    ticket_ids = await repository.due_for_retention(session, now - older_than, batch)
    if not ticket_ids:
        return 0, []
    keys = await repository.attachment_keys(session, ticket_ids)
    secure_before = await repository.secure_delete(session, True)
    await repository.blank_tickets(session, ticket_ids)
    await repository.mark_anonymised(session, ticket_ids, now)
    audit.record(session, None, "ticket.retention", "ticket", ticket_ids[0], tickets=len(ticket_ids),
                 files=len(keys), older_than_days=older_than.days)
    await session.flush()
    await repository.purge_search_index(session)
    await repository.secure_delete(session, secure_before)
    still_used = await customer_repo.referenced_keys(session, keys) if keys else set()
    return len(ticket_ids), sorted(keys - still_used)


def retention_job(sessionmaker: async_sessionmaker[AsyncSession], files: AttachmentBackend, clock: Clock, *,
                  older_than: timedelta, interval_seconds: float, batch: int = 500) -> Job:
    """The retention policy as a job on one instance at a time (a lease): a batch per tick, at once again while
    batches come back full, else every `interval_seconds`."""

    async def tick(ctx: JobContext) -> bool:
        async with sessionmaker.begin() as session:
            count, stale = await anonymise_old_tickets(session, files, now=clock.now(), older_than=older_than,
                                                       batch=batch)
        for key in stale:  # after the commit: a failed batch keeps its files
            await files.delete(key)
        if count:
            log.info("retention anonymised tickets", extra={"tickets": count, "files": len(stale)})
        return count >= batch

    return Job(name="retention", tick=tick, schedule=Every(interval_seconds, first_delay=min(60.0, interval_seconds)),
               lease="privacy:retention", backoff=Backoff(initial=min(60.0, interval_seconds),
                                                          maximum=interval_seconds))
