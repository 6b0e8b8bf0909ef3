"""CSAT on Telegram through the local Bot API stand-in: the survey arrives as one row of buttons 1-5, a press
stores the ticket's score (the ticket stays resolved) and thanks the customer; a second press changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.config import CoreSettings
from core.csat.models import CsatSurvey
from core.csat.service import CsatSurveys
from core.db.base import utcnow
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.tickets import service as tickets
from core.tickets.models import Ticket, TicketStatus
from core.users.models import Role, Team
from tests.channels.telegram.botapi import FakeBotAPI, fixture
from tests.channels.telegram.test_telegram import CHAT, bot_api, running, telegram_app, webhook_post
from tests.conftest import make_user
from tests.support.waiting import wait_for

__all__ = ["bot_api"]  # the fixture, imported to be used here


async def test_survey_buttons_store_one_score_and_thank_the_customer(
        db_url: str, db_engine: Any, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession],
        bot_api: FakeBotAPI) -> None:
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Team).values(csat_enabled=True, csat_delay_minutes=10))
    agent, _ = await make_user(sessionmaker, Role.agent, "agent@tg.example")
    async with running(telegram_app(db_url, tmp_path, bot_api, "webhook")) as (_adapter, client):
        r = await webhook_post(client, fixture("text_message", 1, text="my internet is down"))
        assert r.status_code == 200
        async with sessionmaker() as s, s.begin():
            ticket_id = await s.scalar(select(Ticket.id).where(Ticket.channel == "telegram"))
            assert ticket_id is not None
            ticket = await tickets.get(s, ticket_id, lock=True)
            await tickets.change_status(s, ticket, TicketStatus.resolved, await s.merge(agent))
        handlers = TaskHandlers()
        CsatSurveys(CoreSettings(csat_quiet_from="00:00", csat_quiet_until="00:00")).register(handlers)
        clock = ManualClock(utcnow() + timedelta(minutes=11))
        assert await DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id="t").run_once() == 1

        def survey_message() -> dict[str, Any] | None:
            for params in bot_api.called("sendMessage"):
                if "Rate it" in str(params["text"]):
                    return params
            return None

        sent = await wait_for(survey_message, "the survey is sent with its buttons")
        markup = sent["reply_markup"]
        keyboard = (json.loads(markup) if isinstance(markup, str) else markup)["inline_keyboard"]
        assert [[b["callback_data"] for b in row] for row in keyboard] == [[f"/csat {n}" for n in range(1, 6)]]

        for update_id, data in ((2, "/csat 2"), (3, "/csat 5")):
            press = fixture("callback_query", update_id)
            press["callback_query"].update(id=f"cbq-{update_id}", data=data)
            assert (await webhook_post(client, press)).status_code == 200
        await wait_for(lambda: any(t.startswith("Thank you for your rating!") for t in bot_api.sent_texts(CHAT)),
                       "thanks sent")
        # The next text within the window is the comment (not a new appeal: the ticket stays resolved).
        r = await webhook_post(client, fixture("text_message", 4, message_id=11, text="Waited two days"))
        assert r.status_code == 200
        await wait_for(lambda: "Thank you, your comment is saved." in bot_api.sent_texts(CHAT), "comment thanked")
        await wait_for(lambda: "You have already rated this request. Thank you!" in bot_api.sent_texts(CHAT),
                       "the second press is answered")

    async with sessionmaker() as s:
        survey = (await s.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))).one()
        assert (survey.score, survey.answer_channel, survey.flagged) == (2, "telegram", True)
        assert survey.comment == "Waited two days"
        row = await s.get(Ticket, ticket_id)
        assert row is not None and row.status == TicketStatus.resolved  # a score never reopens the ticket
        scored = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_id == str(ticket_id), AuditEntry.action.like("ticket.csat%"),
            AuditEntry.action != "ticket.csat_sent"))).all()
    assert sorted(scored) == ["ticket.csat", "ticket.csat_comment", "ticket.csat_low"]
