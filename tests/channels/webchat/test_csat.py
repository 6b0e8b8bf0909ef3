"""CSAT in the web chat over the real socket: the survey arrives as a message marked `csat` (the widget's five
stars), a star sends its score, stored once on the ticket (which stays resolved) and thanked; bad scores are
refused as bad frames."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import ManualClock
from core.config import CoreSettings
from core.csat.models import CsatSurvey
from core.csat.service import CsatSurveys
from core.db.base import utcnow
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.tickets import service as tickets
from core.tickets.models import Ticket, TicketStatus
from core.users.models import Team, User
from tests.channels.webchat.conftest import Client, Server


async def test_stars_store_one_score_and_the_ticket_stays_resolved(
        chat_server: Server, sessionmaker: async_sessionmaker[AsyncSession],
        agent: tuple[Any, dict[str, str]]) -> None:
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Team).values(csat_enabled=True, csat_delay_minutes=10))
    client, _, _ = await Client.connect(chat_server.ws_url, lang="ru")
    ack = await client.say("c1", "у меня не работает интернет")
    ticket_id = tickets.ticket_id_from_ref(ack["ticket"])
    async with sessionmaker() as s, s.begin():
        ticket = await tickets.get(s, ticket_id, lock=True)
        await tickets.change_status(s, ticket, TicketStatus.resolved, await s.get_one(User, agent[0].id))
    handlers = TaskHandlers()
    CsatSurveys(CoreSettings(csat_quiet_from="00:00", csat_quiet_until="00:00")).register(handlers)
    clock = ManualClock(utcnow() + timedelta(minutes=11))
    assert await DueTaskRunner(sessionmaker, handlers, clock=clock, runner_id="t").run_once() == 1

    survey = await client.next("message", where=lambda f: f.get("csat") is True)
    assert survey["author"] == "bot" and "Оцените" in survey["text"]
    assert [q["payload"] for q in survey["quick_replies"]] == [f"/csat {n}" for n in range(1, 6)]

    await client.send({"type": "quick_reply", "client_id": "r0", "payload": "/csat 9", "title": "9"})
    refused = await client.next("error")
    assert refused["code"] == "bad_frame" and "1 to 5" in refused["message"]

    await client.send({"type": "quick_reply", "client_id": "r1", "payload": "/csat 4", "title": "★★★★"})
    assert (await client.next("ack"))["ticket"] == ack["ticket"]
    thanks = await client.next("message", where=lambda f: f["author"] == "bot")
    assert thanks["text"].startswith("Спасибо за оценку!")
    await client.say("c2", "Связь пропадала три дня")  # the text box after the stars: the comment
    noted = await client.next("message", where=lambda f: f["author"] == "bot")
    assert noted["text"] == "Спасибо, ваш комментарий сохранён."
    await client.send({"type": "quick_reply", "client_id": "r2", "payload": "/csat 1", "title": "★"})
    again = await client.next("message", where=lambda f: f["author"] == "bot")
    assert again["text"] == "Вы уже оценили это обращение. Спасибо!"
    await client.close()

    async with sessionmaker() as s:
        row = (await s.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))).one()
        assert (row.score, row.answer_channel, row.flagged) == (4, "webchat", False)
        assert row.comment == "Связь пропадала три дня"
        assert (await s.get_one(Ticket, ticket_id)).status == TicketStatus.resolved
