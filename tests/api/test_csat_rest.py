"""CSAT on the REST channel end to end: an agent resolves, the survey is pulled as a reply of type `csat` after
the queue's delay, the integration submits the score once; bad submissions get a clear 4xx."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from core.clock import ManualClock
from core.users.models import Team
from tests.conftest import REST_HEADERS, keyword_engine, make_settings, responses, rest_message
from tests.support.waiting import wait_for

DELAY_MINUTES = 24 * 60  # far beyond the seconds the deliveries below move the clock


async def test_rest_survey_is_pulled_and_answered_once(
        db_url: str, sessionmaker: async_sessionmaker[AsyncSession], agent: tuple[Any, dict[str, str]]) -> None:
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Team).values(csat_enabled=True, csat_delay_minutes=DELAY_MINUTES))
    clock = ManualClock()
    base = make_settings(db_url)
    settings = base.model_copy(update={"due_tasks_poll_seconds": 0.05, "core": base.core.model_copy(
        update={"csat_quiet_from": "00:00", "csat_quiet_until": "00:00"})})
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False,
                     jobs_clock=clock)
    _, auth = agent
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("m-1", "My TV shows a black screen", sender="c-7"))
        assert r.status_code == 201 and r.json()["action"] == "escalate", r.text
        number = r.json()["ticket_number"]

        # Before anything was sent, the ticket has no survey to answer.
        r = await client.post("/channels/rest/csat", headers=REST_HEADERS, json={"ticket_number": number, "score": 5})
        assert r.status_code == 409 and "no satisfaction survey" in r.text

        r = await client.post(f"/tickets/{number}/reply", headers=auth,
                              json={"text": "Fixed on our side", "status": "resolved"})
        assert r.status_code == 201, r.text

        async def pulled() -> list[dict[str, Any]]:
            page = await client.get("/channels/rest/replies", headers=REST_HEADERS, params={"recipient": "c-7"})
            items: list[dict[str, Any]] = page.json()["items"]
            return items

        await wait_for(lambda: _count_ok(pulled, 2, clock), "the acknowledgement and the agent reply are delivered")
        assert all(i["type"] == "message" for i in await pulled())
        clock.advance(DELAY_MINUTES * 60 + 60)
        await wait_for(lambda: _count_ok(pulled, 3, clock), "the survey is delivered after the delay")
        survey = (await pulled())[-1]
        assert survey["type"] == "csat" and survey["author"] == "bot" and survey["ticket_number"] == number
        assert [q["payload"] for q in survey["quick_replies"]] == [f"/csat {n}" for n in range(1, 6)]

        # Bad submissions: no key, a score outside 1-5, an unknown ticket, not a ticket number.
        body = {"ticket_number": number, "score": 1, "comment": "Took three days"}
        assert (await client.post("/channels/rest/csat", json=body)).status_code == 401
        for score in (0, 6, "five"):
            r = await client.post("/channels/rest/csat", headers=REST_HEADERS, json={**body, "score": score})
            assert r.status_code == 422 and "score" in r.text
        r = await client.post("/channels/rest/csat", headers=REST_HEADERS, json={**body, "ticket_number": "T-999999"})
        assert r.status_code == 404 and "T-999999" in r.text
        r = await client.post("/channels/rest/csat", headers=REST_HEADERS, json={**body, "ticket_number": "hello"})
        assert r.status_code == 404

        r = await client.post("/channels/rest/csat", headers=REST_HEADERS, json=body)
        assert r.status_code == 201, r.text
        assert r.json()["score"] == 1 and r.json()["comment"] == "Took three days" and r.json()["flagged"] is True
        r = await client.post("/channels/rest/csat", headers=REST_HEADERS, json={**body, "score": 5})
        assert r.status_code == 409 and "already rated" in r.text

        ticket = (await client.get(f"/tickets/{number}", headers=auth)).json()
        assert ticket["csat"]["score"] == 1 and ticket["csat"]["comment"] == "Took three days"
        assert ticket["csat"]["channel"] == "rest" and ticket["csat"]["at"] and ticket["csat"]["flagged"] is True

        # Fires once: time passing further sends nothing more.
        clock.advance(DELAY_MINUTES * 60 * 3)
        r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                              json=rest_message("m-2", "hello", sender="other"))
        assert r.status_code == 201
        assert len(await pulled()) == 3


async def _count_ok(pulled: Any, expected: int, clock: ManualClock) -> bool:
    """Whether `expected` replies were delivered; each look lets a second pass (the workers run on the clock)."""
    clock.advance(1)
    return len(await pulled()) >= expected
