"""Admin → SLA and Admin → Calendars over HTTP: create, edit, delete through the forms; every refused input shows
the service's reason with the input kept (and changes nothing); supervisors read, agents are turned away."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.calendars import repository as calendar_repo
from core.calendars import service as calendars
from core.calendars.models import Calendar
from core.clock import ManualClock
from core.sla import service as sla
from core.sla.models import SlaPolicy
from core.sla.schemas import SlaPolicyCreate
from core.users.models import Team
from tests.conftest import keyword_engine, responses
from tests.console.conftest import People, csrf_of, login, post_form
from tests.console.test_intents import flash_after

SLA = "/console/admin/sla"
CALENDARS = "/console/admin/calendars"


def text_of(page: httpx.Response) -> str:
    return html.unescape(page.text)


def found(pattern: str, page: str) -> str:
    match = re.search(pattern, page, re.S)
    assert match, pattern
    return html.unescape(match.group(1))


def policy_form(calendar: int, **changes: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "name": "VIP technical", "position": "20", "enabled": "on", "calendar_id": str(calendar),
        "queues": ["technical"], "priorities": ["high", "urgent"], "channels": ["telegram"], "intents": [],
        "first_response_minutes": "15", "next_response_minutes": "30", "resolution_minutes": "480",
        "warning_percent": "75", "on_warning.raise_priority": "on", "on_warning.move_to_queue": "",
        "on_breach.move_to_queue": "billing", "on_breach.unassign": "on"}
    form.update(changes)
    return form


async def policy_named(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> SlaPolicy | None:
    async with sessionmaker() as s:
        return (await s.scalars(select(SlaPolicy).where(SlaPolicy.name == name))).first()


async def calendar_id(sessionmaker: async_sessionmaker[AsyncSession], name: str) -> int:
    async with sessionmaker() as s:
        return (await calendars.get_by_name(s, name)).id


async def test_admin_creates_edits_and_deletes_a_policy(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    always = await calendar_id(sessionmaker, "24/7")
    new = await client.get(f"{SLA}/new")
    assert new.status_code == 200 and 'name="warning_percent" inputmode="decimal" value="80"' in new.text
    assert 'value="telegram"' in new.text and 'value="technical"' in new.text and ">24/7 (UTC)<" in new.text

    r = await post_form(client, f"{SLA}/new", SLA, policy_form(always))
    assert await flash_after(client, r) == ("info", "SLA policy “VIP technical” saved.")
    policy = await policy_named(sessionmaker, "VIP technical")
    assert policy is not None
    async with sessionmaker() as s:
        read = (await sla.policies_read(s, [policy]))[0]
    assert (read.position, read.enabled, read.queues, [p.value for p in read.priorities], read.channels) == (
        20, True, ["technical"], ["high", "urgent"], ["telegram"])
    assert (read.first_response_minutes, read.next_response_minutes, read.resolution_minutes) == (15, 30, 480)
    assert read.warning_share == pytest.approx(0.75) and read.calendar_id == always
    assert read.on_warning.model_dump() == {"raise_priority": True, "move_to_queue": None, "unassign": False}
    assert read.on_breach.model_dump() == {"raise_priority": False, "move_to_queue": "billing", "unassign": True}
    listing = await client.get(SLA)
    assert 'data-policy="VIP technical"' in listing.text and f'href="{SLA}/{policy.id}"' in listing.text

    edit = await client.get(f"{SLA}/{policy.id}")
    assert edit.status_code == 200
    assert 'name="queues" value="technical" checked' in edit.text and 'value="75"' in edit.text
    assert '<option value="billing" selected>' in edit.text
    # Reordered, disabled, the next-response target removed, any channel, warning at 50 %.
    r = await post_form(client, f"{SLA}/{policy.id}", f"{SLA}/{policy.id}", policy_form(
        always, name="VIP", position="5", enabled="", channels=[], next_response_minutes="",
        warning_percent="50"))
    assert await flash_after(client, r) == ("info", "SLA policy “VIP” saved.")
    async with sessionmaker() as s:
        changed = await sla.get_policy(s, policy.id)
    assert (changed.name, changed.position, changed.enabled, changed.channels) == ("VIP", 5, False, [])
    assert changed.next_response_minutes is None and changed.warning_share == pytest.approx(0.5)

    r = await post_form(client, f"{SLA}/{policy.id}", f"{SLA}/{policy.id}", policy_form(always, name="VIP",
                                                                                      position=""))
    assert r.status_code == 303
    async with sessionmaker() as s:
        assert (await sla.get_policy(s, policy.id)).position == 5  # an empty order keeps the policy's

    confirm = await client.get(f"{SLA}/{policy.id}/delete")
    assert confirm.status_code == 200 and "Delete the SLA policy “VIP”?" in confirm.text
    r = await post_form(client, f"{SLA}/{policy.id}/delete", f"{SLA}/{policy.id}/delete", {})
    assert await flash_after(client, r) == ("info", "SLA policy “VIP” deleted.")
    assert await policy_named(sessionmaker, "VIP") is None
    assert (await client.get(f"{SLA}/{policy.id}")).status_code == 404
    r = await client.post(f"{SLA}/{policy.id}", data={"csrf_token": csrf_of(confirm.text), **policy_form(always)})
    assert await flash_after(client, r) == ("error", f"SLA policy {policy.id} not found")
    assert await policy_named(sessionmaker, "VIP technical") is None
    assert (await client.get(f"{CALENDARS}/999999")).status_code == 404


@pytest.mark.parametrize(("changes", "status", "reason", "kept"), [
    ({"first_response_minutes": "-5"}, 422, "first_response_minutes must be a positive number of minutes",
     'name="first_response_minutes" inputmode="numeric" value="-5" aria-invalid="true"'),
    ({"warning_percent": "150"}, 422, "warning_share must be strictly between 0 and 1",
     'name="warning_percent" inputmode="decimal" value="150" aria-invalid="true"'),
    ({"warning_percent": "0"}, 422, "The warning share is a percentage strictly between 0 and 100",
     'value="0" aria-invalid="true"'),
    ({"calendar_id": "99999"}, 422, "calendar 99999 does not exist", '<option value="99999" selected>99999</option>'),
    ({"resolution_minutes": "soon"}, 422, "resolution_minutes: Input should be a valid integer", 'value="soon"'),
    ({"first_response_minutes": "", "next_response_minutes": "", "resolution_minutes": ""}, 422,
     "an SLA policy needs at least one target", 'value="VIP technical"'),
    ({"name": "Taken"}, 409, "an SLA policy named 'Taken' already exists", 'value="Taken"'),
    ({"on_warning.move_to_queue": "nowhere"}, 422, "unknown queue(s) in on_warning.move_to_queue: nowhere",
     'name="resolution_minutes" inputmode="numeric" value="480"'),
])
async def test_a_refused_policy_shows_the_reason_and_keeps_the_input(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        changes: dict[str, str], status: int, reason: str, kept: str) -> None:
    always = await calendar_id(sessionmaker, "24/7")
    async with sessionmaker() as s, s.begin():
        taken = await sla.create_policy(s, SlaPolicyCreate(name="Taken", calendar_id=always, position=1,
                                                           resolution_minutes=60), actor=None)
    await login(client, people.admin.email)
    for action, page in ((SLA, f"{SLA}/new"), (f"{SLA}/{taken.id}", f"{SLA}/{taken.id}")):
        form = policy_form(always, **changes)
        if action != SLA and "name" in changes:  # renaming a policy to its own name is no conflict
            continue
        r = await post_form(client, page, action, form)
        assert r.status_code == status, r.text[:500]
        text = text_of(r)
        assert "Not saved: " in text and reason in text, text[:3000]
        assert html.unescape(kept) in text and 'name="queues" value="technical" checked' in r.text
        assert 'name="on_breach.unassign" checked' in r.text
    assert await policy_named(sessionmaker, "VIP technical") is None
    async with sessionmaker() as s:  # the refused edit changed nothing (its unit of work was rolled back)
        unchanged = await sla.get_policy(s, taken.id)
    assert (unchanged.position, unchanged.resolution_minutes, unchanged.queue_ids) == (1, 60, [])


def calendar_form(**changes: str) -> dict[str, str]:
    form = {"name": "Billing office", "time_zone": "Asia/Yekaterinburg", "weekly.mon": "09:00-13:00, 14:00-18:00",
            "weekly.tue": "9:00-18:00", "weekly.wed": "09:00-18:00", "weekly.thu": "09:00-18:00",
            "weekly.fri": "09:00-17:00", "weekly.sat": "", "weekly.sun": "",
            "exceptions": "2026-01-01 closed New Year\n\n2026-12-31 09:00-14:00 shortened day\n2026-11-07 10:00-15:00"}
    form.update(changes)
    return form


async def test_admin_creates_edits_and_deletes_a_calendar_and_one_in_use_is_kept(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    new = await client.get(f"{CALENDARS}/new")
    assert new.status_code == 200 and '<option value="Europe/Moscow">' in new.text
    r = await post_form(client, f"{CALENDARS}/new", CALENDARS, calendar_form())
    assert r.status_code == 303
    location = r.headers["location"]
    assert await flash_after(client, r) == ("info", "Calendar “Billing office” saved.")
    async with sessionmaker() as s:
        made = await calendars.get_by_name(s, "Billing office")
        body = calendars.read(made)
    assert location == f"{CALENDARS}/{made.id}"
    assert (body.time_zone, body.weekly.mon, body.weekly.tue, body.weekly.sat) == (
        "Asia/Yekaterinburg", ["09:00-13:00", "14:00-18:00"], ["09:00-18:00"], [])
    assert [(e.day.isoformat(), e.hours, e.note) for e in body.exceptions] == [
        ("2026-01-01", [], "New Year"), ("2026-11-07", ["10:00-15:00"], None),
        ("2026-12-31", ["09:00-14:00"], "shortened day")]
    page = await client.get(location)
    assert "2026-01-01 closed New Year\n2026-11-07 10:00-15:00\n2026-12-31 09:00-14:00 shortened day" in text_of(page)
    assert 'name="weekly.mon" value="09:00-13:00, 14:00-18:00"' in page.text

    r = await post_form(client, location, location, calendar_form(
        name="Billing", time_zone="Europe/Moscow", exceptions="2027-01-07 Christmas", **{"weekly.sat": "10:00-14:00"}))
    assert await flash_after(client, r) == ("info", "Calendar “Billing” saved.")
    async with sessionmaker() as s:
        body = calendars.read(await calendars.get(s, made.id))
    assert (body.name, body.time_zone, body.weekly.sat) == ("Billing", "Europe/Moscow", ["10:00-14:00"])
    assert [(e.day.isoformat(), e.hours, e.note) for e in body.exceptions] == [("2027-01-07", [], "Christmas")]

    # In use by a queue and a policy: the 409 names them, and the calendar stays.
    async with sessionmaker() as s, s.begin():
        (await s.scalars(select(Team).where(Team.slug == "billing"))).one().calendar_id = made.id
        await sla.create_policy(s, SlaPolicyCreate(name="Billing day", calendar_id=made.id,
                                                   resolution_minutes=60), actor=None)
    listing = await client.get(CALENDARS)
    assert 'data-calendar="Billing"' in listing.text and "queue billing, SLA policy Billing day" in listing.text
    confirm = await client.get(f"{location}/delete")
    assert "It cannot be deleted while it is in use by queue billing, SLA policy Billing day" in text_of(confirm)
    r = await post_form(client, f"{location}/delete", f"{location}/delete", {})
    assert r.status_code == 409
    assert "calendar 'Billing' is in use by queue billing, SLA policy Billing day" in text_of(r)
    assert (await client.get(location)).status_code == 200

    r = await post_form(client, f"{CALENDARS}/new", CALENDARS, calendar_form(name="Spare"))
    spare = r.headers["location"]
    assert (await client.get(f"{spare}/delete")).status_code == 200
    r = await post_form(client, f"{spare}/delete", f"{spare}/delete", {})
    assert await flash_after(client, r) == ("info", "Calendar “Spare” deleted.")
    assert (await client.get(spare)).status_code == 404


# What the calendar form's text says wrong is found while parsing it, before the database is asked anything: these
# run on SQLite only (the refusal's page and "nothing changed" read the same on both). A taken name is the
# database's answer and runs on both.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("changes", "reason", "kept"), [
    ({"weekly.mon": "09:00-13:00, 12:00-18:00"}, "weekly.mon: intervals 09:00-13:00 and 12:00-18:00 overlap",
     'name="weekly.mon" value="09:00-13:00, 12:00-18:00" placeholder="closed" aria-invalid="true"'),
    ({"weekly.wed": "18:00-09:00"}, "weekly.wed: interval 18:00-09:00 ends before it starts", 'value="18:00-09:00"'),
    ({"weekly.thu": "9-18"}, "Thu: “9-18” is not hours like 09:00-18:00", 'value="9-18"'),
    ({"exceptions": "2026-01-01 closed\n2026-02-30 closed"},
     "holidays and changed days, line 2: “2026-02-30” is not a date (YYYY-MM-DD)", "2026-02-30 closed</textarea>"),
    ({"exceptions": "2026-03-09\n2026-03-09 10:00-12:00"}, "exceptions: 2026-03-09 is listed twice",
     "2026-03-09 10:00-12:00</textarea>"),
    ({"exceptions": "2026-12-31 09:00-14:00, 13:00-16:00"},
     "exceptions.2026-12-31: intervals 09:00-14:00 and 13:00-16:00 overlap", "13:00-16:00</textarea>"),
    ({"exceptions": "2026-12-31 09:00-25:00"}, "line 1: “09:00-25:00” is not hours", "09:00-25:00</textarea>"),
    ({"time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'", 'value="Mars/Olympus"'),
    ({**{f"weekly.{d}": "" for d in ("mon", "tue", "wed", "thu", "fri")}},
     "weekly hours are empty: the calendar would never open", 'value="Billing office"'),
])
async def test_a_refused_calendar_shows_the_reason_and_keeps_the_input(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession],
        changes: dict[str, str], reason: str, kept: str) -> None:
    await refused_calendar(client, people, sessionmaker, changes, reason, kept)


async def test_a_calendar_named_as_another_is_refused(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await refused_calendar(client, people, sessionmaker, {"name": "24/7"}, "a calendar named '24/7' already exists",
                           'value="24/7"')


async def refused_calendar(client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession],
                           changes: dict[str, str], reason: str, kept: str) -> None:
    await login(client, people.admin.email)
    office = await calendar_id(sessionmaker, "Russia, office hours (Moscow)")
    for action, page in ((CALENDARS, f"{CALENDARS}/new"), (f"{CALENDARS}/{office}", f"{CALENDARS}/{office}")):
        r = await post_form(client, page, action, calendar_form(**changes))
        assert r.status_code == (409 if "already exists" in reason else 422), r.text[:500]
        text = text_of(r)
        assert "Not saved: " in text and reason in text, text[:3000]
        assert html.unescape(kept) in text
    async with sessionmaker() as s:
        assert await calendar_repo.get_by_name(s, "Billing office") is None
        unchanged = calendars.read(await calendars.get(s, office))
    assert unchanged.name == "Russia, office hours (Moscow)" and unchanged.time_zone == "Europe/Moscow"
    assert len(unchanged.exceptions) > 20  # the refused edit did not replace the production calendar


@pytest.fixture
async def saturday_client(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The console on a clock stopped at Saturday 2026-12-05 12:00 UTC (15:00 in Moscow)."""
    clock = ManualClock(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False, clock=clock)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def test_a_calendar_says_whether_it_is_open_now_and_when_it_opens_next(
        saturday_client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(saturday_client, people.admin.email)
    listing = await saturday_client.get(CALENDARS)
    rows = {name: row for name, row in re.findall(r'<tr data-calendar="([^"]+)">(.*?)</tr>', text_of(listing), re.S)}
    assert 'data-open="yes"' in rows["24/7"] and "Open now" in rows["24/7"]
    office = rows["Russia, office hours (Moscow)"]
    # Saturday: closed; Monday 7 December at 09:00 Moscow time.
    assert 'data-open="no"' in office and "opens 2026-12-07 09:00 (local time)" in office
    r = await post_form(saturday_client, f"{CALENDARS}/new", CALENDARS, calendar_form(
        name="Saturday shift", time_zone="Asia/Vladivostok", exceptions="2026-12-05 20:00-23:00 extra shift"))
    page = await saturday_client.get(r.headers["location"])  # 22:00 in Vladivostok, inside the extra shift
    assert 'data-open="yes"' in page.text and "Open now" in page.text
    r = await post_form(saturday_client, r.headers["location"], r.headers["location"], calendar_form(
        name="Saturday shift", time_zone="Asia/Vladivostok", exceptions="2026-12-07 closed"))
    page = await saturday_client.get(r.headers["location"])  # Monday is a holiday now: Tuesday 09:00
    assert 'data-open="no"' in page.text and "opens 2026-12-08 09:00 (local time)" in page.text


async def test_supervisors_read_and_agents_are_turned_away(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    always = await calendar_id(sessionmaker, "24/7")
    async with sessionmaker() as s, s.begin():
        policy = await sla.create_policy(s, SlaPolicyCreate(name="Night", calendar_id=always,
                                                            resolution_minutes=60), actor=None)
    await login(client, people.supervisor.email)
    home = await client.get("/console/inbox")
    assert 'href="/console/admin/sla"' in home.text
    for url in (SLA, f"{SLA}/{policy.id}", CALENDARS, f"{CALENDARS}/{always}"):
        page = await client.get(url)
        assert page.status_code == 200, url
        assert "/console/admin/users" not in page.text and "/new" not in page.text and "/delete" not in page.text
    form = await client.get(f"{SLA}/{policy.id}")
    assert "<fieldset disabled>" in form.text and '<button type="submit">' not in form.text
    assert "Read only: only administrators change SLA policies and calendars." in form.text
    for url in (f"{SLA}/new", f"{SLA}/{policy.id}/delete", f"{CALENDARS}/new", f"{CALENDARS}/{always}/delete"):
        assert (await client.get(url)).status_code == 403, url
    token = csrf_of(form.text)
    for action in (SLA, f"{SLA}/{policy.id}", f"{SLA}/{policy.id}/delete", CALENDARS, f"{CALENDARS}/{always}",
                   f"{CALENDARS}/{always}/delete"):
        r = await client.post(action, data={"csrf_token": token, "name": "x"})
        assert r.status_code == 403, action
    async with sessionmaker() as s:
        assert (await sla.get_policy(s, policy.id)).name == "Night"
        assert await s.get(Calendar, always) is not None

    await client.post("/console/logout", data={"csrf_token": token})
    client.cookies.clear()
    await login(client, people.agent.email)
    for url in (SLA, f"{SLA}/{policy.id}", CALENDARS, f"{CALENDARS}/{always}"):
        assert (await client.get(url)).status_code == 403, url


async def test_the_forms_and_their_reasons_in_russian(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    await post_form(client, SLA, "/console/language", {"language": "ru"})
    form = text_of(await client.get(f"{SLA}/new"))
    assert "Новая политика" in form and "При нарушении" in form and "Перевести в очередь" in form
    r = await post_form(client, f"{SLA}/new", SLA, policy_form(await calendar_id(sessionmaker, "24/7"),
                                                               warning_percent="100"))
    assert r.status_code == 422
    assert "Не сохранено: " in text_of(r) and "Доля для предупреждения — процент строго больше 0" in text_of(r)
    listing = text_of(await client.get(CALENDARS))
    assert "Календари" in listing and "Часовой пояс" in listing and "Используют" in listing
    r = await post_form(client, f"{CALENDARS}/new", CALENDARS, calendar_form(exceptions="2026-13-01 выходной"))
    assert r.status_code == 422
    assert "праздники и изменённые дни, строка 1: «2026-13-01» — не дата (ГГГГ-ММ-ДД)" in text_of(r)
    r = await post_form(client, f"{CALENDARS}/new", CALENDARS, calendar_form(
        name="Праздники", exceptions="2026-01-01 выходной Новый год"))
    assert await flash_after(client, r) == ("info", "Календарь «Праздники» сохранён.")
    async with sessionmaker() as s:
        made = calendars.read(await calendars.get_by_name(s, "Праздники"))
    assert [(e.hours, e.note) for e in made.exceptions] == [([], "Новый год")]


async def test_the_shipped_production_calendar_saves_back_unchanged_and_notes_may_start_with_a_number(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.admin.email)
    office = await calendar_id(sessionmaker, "Russia, office hours (Moscow)")
    async with sessionmaker() as s:
        before = calendars.read(await calendars.get(s, office))
    page = await client.get(f"{CALENDARS}/{office}")
    exceptions = found(r'<textarea name="exceptions"[^>]*>(.*?)</textarea>', page.text)
    weekly = {f"weekly.{d}": found(rf'name="weekly.{d}" value="([^"]*)"', page.text)
              for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    form = {"name": before.name, "time_zone": before.time_zone, "exceptions": exceptions, **weekly}
    r = await post_form(client, f"{CALENDARS}/{office}", f"{CALENDARS}/{office}", form)
    assert r.status_code == 303, text_of(r)[:2000]
    async with sessionmaker() as s:
        after = calendars.read(await calendars.get(s, office))
    assert after.weekly == before.weekly and after.exceptions == before.exceptions

    r = await post_form(client, f"{CALENDARS}/{office}", f"{CALENDARS}/{office}", {
        **form, "exceptions": "2026-05-09 closed 9 May, Victory Day\n2026-05-08 09:00-17:00 8 May, shortened"})
    assert r.status_code == 303, text_of(r)[:2000]
    async with sessionmaker() as s:
        after = calendars.read(await calendars.get(s, office))
    assert [(e.day.isoformat(), e.hours, e.note) for e in after.exceptions] == [
        ("2026-05-08", ["09:00-17:00"], "8 May, shortened"), ("2026-05-09", [], "9 May, Victory Day")]
