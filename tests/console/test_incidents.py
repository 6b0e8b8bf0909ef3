"""Console → Incidents (RU/EN): supervisors list, open (area or customer ids), read with the linked appeals, and
resolve; a bad form comes back with the reason; agents cannot see the page."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.incidents.models import Incident
from core.users.models import User
from tests.console.conftest import People, login, post_form
from tests.console.test_problems import raise_alert, settings  # noqa: F401 - the app without the rising job


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def test_open_read_and_resolve_an_incident_in_both_languages(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.supervisor.email)
    page = await client.get("/console/incidents")
    assert page.status_code == 200 and "No open incidents." in page.text
    r = await post_form(client, "/console/incidents", "/console/incidents", {
        "title": "Fibre cut", "intents": "no_internet", "area": "MSK/North", "customers": "",
        "message_ru": "Нет интернета на севере.", "message_en": "No internet in the north.", "notify": "on"})
    assert r.status_code == 303, r.text
    async with sessionmaker() as s:
        incident = (await s.scalars(select(Incident))).one()
    assert r.headers["location"] == f"/console/incidents/{incident.id}" and incident.area == "msk/north"
    shown = text_of((await client.get(f"/console/incidents/{incident.id}")).text)
    assert "Fibre cut" in shown and "msk/north" in shown and "No appeals linked yet." in shown
    async with sessionmaker() as s, s.begin():
        await s.execute(update(User).where(User.id == people.supervisor.id).values(language="ru"))
    shown = text_of((await client.get("/console/incidents")).text)
    assert "Инциденты" in shown and "Fibre cut" in shown and "открыт" in shown
    r = await post_form(client, f"/console/incidents/{incident.id}", f"/console/incidents/{incident.id}/resolve",
                        {"resolution_ru": "Починили.", "resolution_en": ""})
    assert r.status_code == 303
    shown = text_of((await client.get(f"/console/incidents/{incident.id}")).text)
    assert "устранён" in shown and "Отметить устранённым" not in shown
    async with sessionmaker() as s:
        actions = (await s.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "incident")
                                   .order_by(AuditEntry.id))).all()
        row = await s.get(Incident, incident.id)
    assert list(actions) == ["incident.open", "incident.resolve"]
    assert row is not None and row.resolution_ru == "Починили." and row.resolution_en is None


async def test_a_bad_form_comes_back_with_the_reason_and_agents_are_refused(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.supervisor.email)
    for data, reason in (({"area": "", "customers": ""}, "name an area or a list of customers"),
                         ({"area": "msk", "customers": "12,abc"}, "customer ids are numbers"),
                         ({"area": "msk//x", "customers": ""}, "bad region"),
                         ({"area": "", "customers": "999999"}, "unknown or erased")):
        r = await post_form(client, "/console/incidents", "/console/incidents", {
            "title": "T", "intents": "no_internet", "message_ru": "м", "message_en": "m", **data})
        assert r.status_code == 303 and r.headers["location"] == "/console/incidents"
        assert reason in text_of((await client.get("/console/incidents")).text), reason
    async with sessionmaker() as s:
        assert (await s.scalars(select(Incident))).all() == []
    client.cookies.clear()
    await login(client, people.agent.email)
    assert (await client.get("/console/incidents")).status_code == 403


async def test_an_incident_opened_from_a_rising_problem_alert(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await raise_alert(sessionmaker)
    await login(client, people.supervisor.email)
    problems = await client.get("/console/problems")
    link = re.search(r'data-open-incident="(\d+)" href="([^"]+)"', problems.text)
    assert link is not None
    page_url = link.group(2).replace("&amp;", "&").split("#")[0]
    page = await client.get(page_url)
    assert 'value="internet_down"' in page.text and f'data-from-alert="{link.group(1)}"' in page.text
    r = await post_form(client, page_url, "/console/incidents", {
        "title": "Rising", "intents": "internet_down", "area": "msk", "message_ru": "м", "message_en": "m",
        "alert_id": link.group(1)})
    assert r.status_code == 303
    async with sessionmaker() as s:
        incident = (await s.scalars(select(Incident))).one()
    assert incident.alert_id == int(link.group(1)) and incident.notify_affected is False
