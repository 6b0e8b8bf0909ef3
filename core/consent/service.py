"""Customer preferences and consent: preferred channel and language, quiet hours, consent to notices and marketing.

Every consent change is a row of the consent log (when, where, by whom); preferences are plain columns of the
customer. Notices (core/consent/notices.py) read them at the moment they go out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.consent import repository
from core.consent.models import ConsentChange, ConsentKind
from core.consent.schemas import PreferencesRead, PreferencesUpdate
from core.customers import repository as customers
from core.customers.models import Customer
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.users.models import User


async def _customer(session: AsyncSession, customer_id: int, *, lock: bool = False) -> Customer:
    customer = await customers.get_customer(session, customer_id, lock=lock)
    if customer is None:
        raise NotFoundError(f"customer {customer_id} not found")
    return customer


async def preferences(session: AsyncSession, customer_id: int) -> PreferencesRead:
    return PreferencesRead.model_validate(await _customer(session, customer_id))


async def update(session: AsyncSession, customer_id: int, body: PreferencesUpdate, *, source: str,
                 actor: User | None, actor_label: str | None = None, now: datetime) -> PreferencesRead:
    """Change the given preferences; a consent that changes is logged with `source` and the actor.

    Raises:
        NotFoundError: no such customer (404).
        ConflictError: the customer is erased (409): nothing of theirs is kept, preferences included.
        ValidationFailedError: only one end of the quiet hours given (422).
    """
    customer = await _customer(session, customer_id, lock=True)
    if customer.erased_at is not None:
        raise ConflictError(f"customer {customer_id} is erased", reason="erased")
    given = body.model_fields_set
    changes = {name: getattr(body, name) for name in
               ("preferred_channel", "language", "quiet_from", "quiet_until", "time_zone") if name in given}
    quiet_from = changes.get("quiet_from", customer.quiet_from)
    quiet_until = changes.get("quiet_until", customer.quiet_until)
    if (quiet_from is None) != (quiet_until is None):
        raise ValidationFailedError("quiet hours need both quiet_from and quiet_until (or neither)")
    for name, value in changes.items():
        setattr(customer, name, value)
    for kind in ConsentKind:
        field = f"consent_{kind.value}"
        value = getattr(body, field)
        if field in given and value is not None and value != getattr(customer, field):
            setattr(customer, field, value)
            session.add(ConsentChange(customer_id=customer.id, kind=kind, granted=value, source=source,
                                      actor_user_id=actor.id if actor else None, actor_label=actor_label,
                                      note=body.note, changed_at=now))
    if changes or any(f"consent_{k.value}" in given for k in ConsentKind):
        audit.record(session, actor, "customer.preferences", "customer", customer.id,
                     fields=sorted(given - {"note"}), source=source,
                     **({"api_key": actor_label} if actor_label else {}))
    await session.flush()
    return PreferencesRead.model_validate(customer)


async def consent_log(session: AsyncSession, customer_id: int) -> Sequence[ConsentChange]:
    await _customer(session, customer_id)
    return await repository.log_of(session, customer_id)
