"""The e-mail survey's signed links and public page: the link asks, its button records the score once (a mail
scanner's GET records nothing), a comment after it; used twice, expired, tampered, unknown, a comment too long or a
strange `lang` -> a clear page (RU/EN), never a 500, a JSON error or a second score."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from core.clock import ManualClock
from core.config import CoreSettings
from core.csat import links
from core.csat.models import CsatSurvey
from core.csat.service import CsatSurveys
from core.db.base import utcnow
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.tickets import service as tickets
from core.tickets.models import Message, TicketStatus
from core.users.models import Role, Team, User
from tests.core.sla.helpers import ticket

LINK = re.compile(r"(\d) — [^:]+: http://sb\.example(/csat/[^\s?]+)\?lang=(\w+)")


async def emailed_survey(sessionmaker: async_sessionmaker[AsyncSession], secret: str, language: str) -> tuple[
        int, dict[int, str]]:
    """An e-mail ticket resolved by an agent, its survey sent: (ticket id, score -> link path)."""
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Team).values(csat_enabled=True, csat_delay_minutes=5))
        agent = User(email=f"a-{language}@csat.example", name="A", password_hash="x", role=Role.agent,
                     language="en", capacity=5, is_active=True)
        s.add(agent)
        row = await ticket(s, status=TicketStatus.open, channel="email", language=language)
        await tickets.change_status(s, row, TicketStatus.resolved, agent)
        ticket_id = row.id
    handlers = TaskHandlers()
    CsatSurveys(CoreSettings(csat_quiet_from="00:00", csat_quiet_until="00:00",
                             csat_public_url="http://sb.example/"), link_secret=secret).register(handlers)
    runner = DueTaskRunner(sessionmaker, handlers, clock=ManualClock(utcnow() + timedelta(minutes=6)), runner_id="t")
    assert await runner.run_once() == 1
    async with sessionmaker() as s:
        text = await s.scalar(select(Message.text).where(Message.ticket_id == ticket_id))
    assert text is not None
    found = {int(n): path for n, path, lang in LINK.findall(text) if lang == language}
    assert sorted(found) == [1, 2, 3, 4, 5], text
    return ticket_id, found


async def survey_row(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> CsatSurvey:
    async with sessionmaker() as s:
        return (await s.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))).one()


async def test_one_click_then_a_comment_and_the_link_works_once(
        app_client: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    secret = settings.secret_key.get_secret_value()
    ticket_id, paths = await emailed_survey(sessionmaker, secret, "en")

    # What a mail scanner does to every link of the mail: a GET records nothing, it asks to confirm.
    for path in paths.values():
        asked = await app_client.get(path, params={"lang": "en"})
        assert asked.status_code == 200 and 'method="post"' in asked.text
    assert "Your rating: 2 of 5." in (await app_client.get(paths[2], params={"lang": "en"})).text
    assert (await survey_row(sessionmaker, ticket_id)).score is None

    page = await app_client.post(paths[2], params={"lang": "en"})
    assert page.status_code == 200 and 'data-score="2"' in page.text
    assert "Your rating 2 of 5 is saved." in page.text and '<textarea id="comment"' in page.text
    row = await survey_row(sessionmaker, ticket_id)
    assert (row.score, row.answer_channel, row.flagged, row.comment) == (2, "email", True, None)

    # The same link again, and another score's link, asked or confirmed: "already rated", the score stays.
    for path in (paths[2], paths[5]):
        for again in (await app_client.get(path, params={"lang": "en"}),
                      await app_client.post(path, params={"lang": "en"})):
            assert again.status_code == 409 and 'data-reason="already_rated"' in again.text
            assert "already been rated" in again.text
    assert (await survey_row(sessionmaker, ticket_id)).score == 2

    empty = await app_client.post(f"{paths[2]}/comment", params={"lang": "en"}, data={"comment": "   "})
    assert empty.status_code == 422 and "The comment is empty." in empty.text
    # Over the limit, a little or a lot: the same page says so (never "empty", never a JSON error).
    for size in (2001, 5000):
        long = await app_client.post(f"{paths[2]}/comment", params={"lang": "ru"}, data={"comment": "x" * size})
        assert long.status_code == 422 and 'data-reason="too_long"' in long.text
        assert "не больше 2000 символов" in long.text and long.headers["content-type"].startswith("text/html")
    # A `lang` we do not speak, however long, is the default language.
    odd = await app_client.post(f"{paths[2]}/comment", params={"lang": "x" * 300}, data={"comment": ""})
    assert odd.status_code == 422 and "The comment is empty." in odd.text
    done = await app_client.post(f"{paths[2]}/comment", params={"lang": "en"},
                                 data={"comment": "Nobody called <b>back</b>"})
    assert done.status_code == 200 and "your comment is saved" in done.text
    twice = await app_client.post(f"{paths[2]}/comment", params={"lang": "en"}, data={"comment": "more"})
    assert twice.status_code == 409 and 'data-reason="already_commented"' in twice.text
    assert (await survey_row(sessionmaker, ticket_id)).comment == "Nobody called <b>back</b>"


async def test_expired_tampered_and_unknown_links_get_a_clear_page_in_russian(
        app_client: httpx.AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    secret = settings.secret_key.get_secret_value()
    ticket_id, paths = await emailed_survey(sessionmaker, secret, "ru")

    expired = links.sign(secret, ticket_id, 5, utcnow() - timedelta(seconds=1))
    page = await app_client.get(f"/csat/{expired}", params={"lang": "ru"})
    assert page.status_code == 400 and 'data-reason="expired"' in page.text and "Срок действия" in page.text

    token = paths[4].removeprefix("/csat/")
    ticket_part, score, expires, mac = token.split(".")
    for bad in (f"{ticket_part}.5.{expires}.{mac}",  # another score under the same signature
                f"{ticket_part}.{score}.{int(expires) + 86400}.{mac}",  # a later expiry
                links.sign("another-key", ticket_id, 4, utcnow() + timedelta(days=1)),
                "garbage", "1.2.3", "１.２.３.x"):
        page = await app_client.get(f"/csat/{bad}", params={"lang": "ru"})
        assert page.status_code == 400 and 'data-reason="tampered"' in page.text, bad
        assert "Ссылка повреждена" in page.text
    forged_rating = await app_client.post(f"/csat/{ticket_part}.5.{expires}.{mac}", params={"lang": "ru"})
    assert forged_rating.status_code == 400 and 'data-reason="tampered"' in forged_rating.text
    assert (await app_client.post(f"/csat/{expired}")).status_code == 400
    forged_comment = await app_client.post(f"/csat/{ticket_part}.5.{expires}.{mac}/comment", data={"comment": "x"})
    assert forged_comment.status_code == 400
    early_comment = await app_client.post(f"{paths[4]}/comment", data={"comment": "x"})
    assert early_comment.status_code == 409 and 'data-reason="not_rated"' in early_comment.text

    unknown = links.sign(secret, 10**9, 3, utcnow() + timedelta(days=1))
    for page in (await app_client.get(f"/csat/{unknown}", params={"lang": "en"}),
                 await app_client.post(f"/csat/{unknown}", params={"lang": "en"})):
        assert page.status_code == 404 and "The request was not found." in page.text
    assert (await survey_row(sessionmaker, ticket_id)).score is None  # nothing above scored

    page = await app_client.get(paths[4], params={"lang": "ru"})
    assert page.status_code == 200 and "Ваша оценка: 4 из 5." in page.text
    page = await app_client.post(paths[4], params={"lang": "ru"})
    assert page.status_code == 200 and "Ваша оценка 4 из 5 сохранена." in page.text
    row = await survey_row(sessionmaker, ticket_id)
    assert (row.score, row.flagged) == (4, False)
