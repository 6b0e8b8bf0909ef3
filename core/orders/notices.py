"""Order status notices: a status change pushed by the order system tells the customer, in their channel and
language, through the outbox (core/consent/notices.py decides whether, where and when).

The change arms an `order.notice` due task in the same transaction as the change (named by the history row, so one
change is one notice, fired once across restarts and instances); the handler renders the status's template (admins
edit them per status, RU/EN; none: the catalog's generic text) and sends it, unless the status is marked internal,
the customer withdrew consent or was erased (skipped, the reason in the audit log), or it is their quiet hours
(moved to their end).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.config import CoreSettings
from core.consent import repository as consent_repo
from core.consent.models import OrderNoticeTemplate
from core.consent.notices import deliver_due
from core.decision import texts
from core.errors import ValidationFailedError
from core.i18n import translator
from core.jobs import service as tasks
from core.jobs.tasks import DueTask, TaskHandlers
from core.orders import repository as order_repo
from core.orders.models import Order
from core.users.models import User

log = logging.getLogger(__name__)
ORDER_NOTICE = "order.notice"
PLACEHOLDERS = ("order", "status", "description")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def task_key(order_id: int, change_id: int) -> str:
    return f"order:{order_id}:change:{change_id}"


async def arm(session: AsyncSession, order: Order, change_id: int, status: str, now: datetime) -> None:
    """A status change of an order with a customer: its notice, due now."""
    if order.customer_id is None:
        return
    await tasks.schedule(session, ORDER_NOTICE, task_key(order.id, change_id), now,
                         {"order_id": order.id, "status": status, "change_id": change_id})


def render(template: str, values: dict[str, str]) -> str:
    """`{order}`, `{status}`, `{description}` filled in; any other brace text is left as written (an admin's
    template is never a format string)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def text_for(order: Order, status: str, template: OrderNoticeTemplate | None, language: str) -> str:
    values = {"order": order.number, "status": texts.order_status(status, language),
              "description": order.description}
    own = (template.text_ru if language == "ru" else template.text_en) if template is not None else None
    if own:
        return render(own, values)
    return translator(language)("order.notice", order=order.number, status=values["status"])


@dataclass
class OrderNotices:
    """The `order.notice` handler; `register` adds it to the app's task handlers."""

    settings: CoreSettings
    clock: Clock = field(default=SYSTEM_CLOCK)

    def register(self, handlers: TaskHandlers) -> None:
        handlers.register(ORDER_NOTICE, self.notify)

    async def notify(self, session: AsyncSession, task: DueTask) -> None:
        order_id, status = task.payload.get("order_id"), task.payload.get("status")
        if not isinstance(order_id, int) or not isinstance(status, str):
            log.warning("order.notice task without an order dropped", extra={"key": task.key})
            return
        order = await session.get(Order, order_id)
        if order is None or order.customer_id is None:
            return
        template = await consent_repo.template_of(session, status)
        if template is not None and template.internal:
            audit.record(session, None, "order.notice_skipped", "order", order.number, status=status,
                         reason="internal")
            return
        # A notice that comes due after the order has moved on (changes pushed together, a notice held back by the
        # customer's quiet hours or an outage) would tell an outdated status, and out of order: only the newest
        # status is told.
        change_id = task.payload.get("change_id")
        if isinstance(change_id, int) and await order_repo.superseded(session, order.id, change_id):
            audit.record(session, None, "order.notice_skipped", "order", order.number, status=status,
                         reason="superseded")
            return
        await deliver_due(session, task, order.customer_id, lambda lang: text_for(order, status, template, lang),
                          settings=self.settings, now=self.clock.now(), action="order.notice", entity="order",
                          entity_id=order.number, status=status)


# -- templates (admins) ------------------------------------------------------------------------------------------


async def list_templates(session: AsyncSession) -> Sequence[OrderNoticeTemplate]:
    return await consent_repo.templates(session)


def _check_placeholders(text: str | None) -> None:
    if not text:
        return
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        raise ValidationFailedError(f"unknown placeholders: {', '.join('{' + u + '}' for u in unknown)}; "
                                    f"use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}", reason="placeholders")


async def put_template(session: AsyncSession, status: str, *, internal: bool, text_en: str | None,
                       text_ru: str | None, actor: User | None, now: datetime) -> OrderNoticeTemplate:
    status = status.strip()
    if not status or len(status) > 64:
        raise ValidationFailedError("a status is 1 to 64 characters")
    for text in (text_en, text_ru):
        _check_placeholders(text)
    row = await consent_repo.template_of(session, status)
    if row is None:
        row = OrderNoticeTemplate(status=status)
        session.add(row)
    row.internal, row.text_en, row.text_ru, row.updated_at = internal, text_en or None, text_ru or None, now
    audit.record(session, actor, "order.notice_template", "order_status", status, internal=internal)
    await session.flush()
    return row
