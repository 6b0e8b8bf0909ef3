"""Contracts pushed by the operator's systems, and their expiry reminders.

Each active contract has one due task per reminder offset (CoreSettings.contract_reminder_days, 30/7/1 days by
default), named by (contract, offset) and due at `contract_reminder_time` local time that many days before the end
date. The task is armed when the contract is written and fires once (core/jobs); writing the same contract again
leaves a fired reminder fired, a moved end date re-arms it for the new date, and a contract under termination (or
ended) has its pending reminders dropped - they come back if it turns active again. The handler checks the
contract once more when it fires, so a reminder that races a status change is skipped, not sent.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.config import CoreSettings
from core.consent.notices import deliver_due
from core.contracts import repository
from core.contracts.models import Contract, ContractStatus
from core.contracts.repository import REMINDER, reminder_key
from core.contracts.schemas import ContractUpsert
from core.csat.schedule import parse_hhmm
from core.errors import ConflictError, NotFoundError
from core.i18n import translator
from core.jobs.models import TaskState
from core.jobs.tasks import DueTask, TaskHandlers
from core.orders import service as orders
from core.users.models import User

log = logging.getLogger(__name__)


def reminder_due(end: date, days: int, settings: CoreSettings) -> datetime:
    return _due(end - timedelta(days=days), settings.contract_reminder_time, settings.notice_time_zone)


@functools.lru_cache(maxsize=4096)
def _due(day: date, at: str, zone: str) -> datetime:
    """Cached: a 100,000-row import asks for a few hundred distinct days, 300,000 times."""
    return datetime.combine(day, parse_hhmm(at), tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def sync_reminders(session: AsyncSession, contracts: Sequence[tuple[int, date, str]], settings: CoreSettings,
                         now: datetime) -> None:
    """Bring the reminder tasks of these (id, end date, status) contracts in step with them (see the module)."""
    offsets = settings.contract_reminder_days
    keys = [reminder_key(cid, d) for cid, _, _ in contracts for d in offsets]
    states = await repository.reminder_states(session, keys)
    add: list[dict[str, Any]] = []
    move: list[dict[str, Any]] = []
    drop: list[str] = []
    for cid, end, status in contracts:
        for days in offsets:
            key = reminder_key(cid, days)
            existing = states.get(key)
            if status != ContractStatus.active:
                if existing is not None and existing[0] == TaskState.pending:
                    drop.append(key)
                continue
            if existing is not None and existing[1] == end.isoformat():
                continue  # armed (or fired) for this end date already: once is once
            due = reminder_due(end, days, settings)
            payload = {"contract_id": cid, "days": days, "end_date": end.isoformat()}
            if due <= now:
                if existing is not None and existing[0] == TaskState.pending:
                    drop.append(key)  # armed for an older end date, and the new one's is past
                continue
            (add if existing is None else move).append({"key": key, "due_at": due, "payload": payload})
    await repository.drop_pending_reminders(session, drop)
    await repository.rearm_reminders(session, move)
    await repository.insert_reminders(session, add, now)


async def get_by_number(session: AsyncSession, number: str) -> Contract:
    contract = await repository.get_by_number(session, number)
    if contract is None:
        raise NotFoundError(f"contract {number} not found")
    return contract


async def for_customer(session: AsyncSession, customer_id: int) -> Sequence[Contract]:
    return await repository.for_customer(session, customer_id)


async def put(session: AsyncSession, number: str, body: ContractUpsert, *, actor: User | None,
              via_key: str | None, settings: CoreSettings, now: datetime) -> tuple[Contract, bool]:
    """The operator's PUT: create or update the contract by number (idempotent), its reminders in step.

    Raises:
        NotFoundError: the customer named by id does not exist (404).
        ConflictError: no customer has that email/phone, or the customer is erased (409).
    """
    ref = body.customer
    customer_id = await orders.find_customer(session, customer_id=ref.id, email=ref.email, phone=ref.phone)
    if customer_id is None:
        raise ConflictError("no customer with this email or phone", reason="unknown_customer")
    rows = await repository.customers_by(session, ids=[customer_id])
    if rows and rows[0][4]:
        raise ConflictError(f"customer {customer_id} is erased", reason="erased_customer")
    existed = await repository.get_by_number(session, number) is not None
    values = {"number": number, "customer_id": customer_id, "tariff": body.tariff, "services": body.services,
              "start_date": body.start_date, "end_date": body.end_date, "auto_renewal": body.auto_renewal,
              "status": body.status.value, "region": body.region, "created_at": now, "updated_at": now}
    written = await repository.upsert_many(session, [values])
    await sync_reminders(session, written, settings, now)
    audit.record(session, actor, "contract.upsert", "contract", number, status=body.status.value, created=not existed,
                 **({"api_key": via_key} if via_key else {}))
    contract = await get_by_number(session, number)
    await session.refresh(contract)  # the upsert wrote around the identity map
    return contract, not existed


# -- reminders -----------------------------------------------------------------------------------------------


def reminder_text(contract: Contract, days: int, language: str) -> str:
    _ = translator(language)
    key = "contract.reminder_renews" if contract.auto_renewal else "contract.reminder"
    return _(key, number=contract.number, end=contract.end_date.strftime("%d.%m.%Y"), tariff=contract.tariff,
             days=_.ngettext("contract.days", days))


@dataclass
class ContractReminders:
    """The `contract.reminder` handler; `register` adds it to the app's task handlers."""

    settings: CoreSettings
    clock: Clock = field(default=SYSTEM_CLOCK)

    def register(self, handlers: TaskHandlers) -> None:
        handlers.register(REMINDER, self.remind)

    async def remind(self, session: AsyncSession, task: DueTask) -> None:
        contract_id, days, end = (task.payload.get(k) for k in ("contract_id", "days", "end_date"))
        if not isinstance(contract_id, int) or not isinstance(days, int):
            log.warning("contract.reminder task without a contract dropped", extra={"key": task.key})
            return
        contract = await repository.get(session, contract_id)
        if contract is None or contract.end_date.isoformat() != end:
            return  # deleted, or its end moved (the task was re-armed for the new date)
        if contract.status != ContractStatus.active:
            audit.record(session, None, "contract.reminder_skipped", "contract", contract.number, days=days,
                         reason=f"status_{contract.status.value}")
            return
        await deliver_due(session, task, contract.customer_id,
                          lambda language: reminder_text(contract, days, language), settings=self.settings,
                          now=self.clock.now(), action="contract.reminder", entity="contract",
                          entity_id=contract.number, days=days)
