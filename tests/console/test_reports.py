"""The reports page over HTTP on both databases: roles, the range picker and presets on the app's clock, every
grouping, figures worded for people in RU and EN, drill-down to exactly the tickets behind a figure (paginated),
CSV/XLSX of what is on screen, one agent's page, an empty period, and bad parameters -> 422 with the reason.
Admin -> Weekly summary: supervisors see it, admins switch it."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.customers.models import ChannelIdentity, Customer
from core.kpis.fold import KpiFold
from core.summaries import service as summaries
from core.tickets import repository as ticket_repo
from core.tickets.models import AuthorKind, Direction, Message, Ticket, TicketStatus, format_ticket_number
from core.users.models import User
from tests.conftest import keyword_engine, responses
from tests.console.conftest import People, login, post_form

# Monday 30 November 2026, 12:00 in Moscow (the reports' default time zone).
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
REPORTS = "/console/reports"


@pytest.fixture
async def client(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False,
                     clock=ManualClock(NOW), jobs_clock=ManualClock(NOW))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def text_of(page: httpx.Response) -> str:
    return html.unescape(page.text)


async def add_ticket(session: AsyncSession, created: datetime, *, channel: str = "telegram", queue: str = "billing",
                     agent: User | None = None, first_response: timedelta | None = None,
                     resolved: timedelta | None = None, by_bot: bool = False) -> int:
    customer = Customer(name="C", language="en")
    identity = ChannelIdentity(channel=channel, external_id=f"c-{created.timestamp()}-{channel}", customer=customer,
                               verified=False)
    team = await ticket_repo.get_team_by_slug(session, queue)
    row = Ticket(subject="s", channel=channel, status=TicketStatus.resolved if resolved else TicketStatus.open,
                 customer=customer, identity=identity, team_id=team.id if team else None, failed_bot_answers=0,
                 language="en", created_at=created, updated_at=created, assignee_id=agent.id if agent else None,
                 first_response_at=created + first_response if first_response else None,
                 resolved_at=created + resolved if resolved else None, resolved_by_bot=by_bot)
    session.add_all([customer, identity, row])
    await session.flush()
    # The customer's message: what the KPI fold notices a ticket by (it reads new messages and audit entries).
    session.add(Message(ticket_id=row.id, direction=Direction.inbound, author_kind=AuthorKind.customer,
                        channel=channel, text="hello", created_at=created))
    await session.flush()
    return row.id


async def fold(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Bring the KPI aggregates up to date now (the app's fold job waits on its manual clock)."""
    kpi_fold = KpiFold(sessionmaker, ManualClock(NOW), time_zone="Europe/Moscow")
    while await kpi_fold.run_once():
        pass


async def scenario(sessionmaker: async_sessionmaker[AsyncSession], people: People) -> list[int]:
    """Three tickets of the last week: a Telegram one the agent answered after 65 minutes and resolved in 2 h, a
    REST one the bot resolved, a Telegram one still open with the agent."""
    async with sessionmaker() as session, session.begin():
        ids = [
            await add_ticket(session, datetime(2026, 11, 24, 10, tzinfo=UTC), agent=people.agent,
                             first_response=timedelta(minutes=65), resolved=timedelta(hours=2)),
            await add_ticket(session, datetime(2026, 11, 25, 10, tzinfo=UTC), channel="rest", queue="technical",
                             resolved=timedelta(minutes=3), by_bot=True),
            await add_ticket(session, datetime(2026, 11, 26, 10, tzinfo=UTC), agent=people.agent),
        ]
    await fold(sessionmaker)
    return ids


def cell(page: str, key: str, field: str) -> str:
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert row, f"no row {key!r}"
    found = re.search(rf'<td class="num" data-field="{field}">(.*?)</td>', row.group(1), re.S)
    assert found, f"no {field} in row {key!r}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def drill_link(page: str, key: str, field: str) -> str:
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert row
    found = re.search(rf'<td class="num" data-field="{field}"><a href="([^"]+)">', row.group(1))
    assert found, f"{field} of {key!r} is not a link"
    return html.unescape(found.group(1))


async def test_agents_are_turned_away_and_strangers_sent_to_sign_in(client: httpx.AsyncClient,
                                                                    people: People) -> None:
    r = await client.get(REPORTS)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    await login(client, people.agent.email)
    for url in (REPORTS, f"{REPORTS}/tickets", f"{REPORTS}/export?format=csv", f"{REPORTS}/agents/1",
                "/console/admin/summary"):
        r = await client.get(url)
        assert r.status_code == 403 and 'data-status="403"' in r.text, url
    assert 'href="/console/reports"' not in (await client.get("/console/inbox")).text


async def test_supervisor_sees_the_charts_tiles_and_table_of_the_last_30_days(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await scenario(sessionmaker, people)
    await login(client, people.supervisor.email)
    assert 'href="/console/reports"' in (await client.get("/console/inbox")).text  # the nav link
    r = await client.get(REPORTS)
    assert r.status_code == 200
    page = text_of(r)
    assert 'name="from" value="2026-11-01"' in page and 'name="to" value="2026-11-30"' in page
    assert 'data-preset="30" aria-current="true"' in page
    for chart in ("volume", "frt", "resolution", "containment", "csat", "sla"):
        assert f'data-chart="{chart}"' in page
    charts = dict(re.findall(r'data-chart="(\w+)">\s*<h2[^>]*>[^<]*</h2>\s*(<svg|<p class="empty">)', page))
    assert charts == {"volume": "<svg", "frt": "<svg", "resolution": "<svg", "containment": "<svg",
                      "csat": '<p class="empty">', "sla": '<p class="empty">'}  # no answers, no SLA: said so
    assert "No satisfaction answers in this period." in page
    assert re.search(r'data-kpi="tickets">.*?tile-value">3<', page, re.S)
    assert re.search(r'data-kpi="first_response_median_s">.*?tile-value">1 h 05 min<', page, re.S)
    assert cell(page, "2026-11-24", "tickets") == "1" and cell(page, "2026-11-25", "tickets") == "1"
    assert cell(page, "2026-11-24", "first_response_median_s") == "1 h 05 min"
    assert cell(page, "2026-11-24", "resolution_median_s") == "2 h 00 min"
    assert cell(page, "2026-11-25", "containment_rate") == "100.0\u00a0%"
    assert cell(page, "2026-11-01", "tickets") == "0"  # an empty day is a row of zeros, not a gap
    assert cell(page, "totals", "backlog") == "1"
    assert r.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    assert "<script>" not in r.text


async def test_presets_and_groupings_on_the_apps_clock(client: httpx.AsyncClient, people: People,
                                                       sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await scenario(sessionmaker, people)
    await login(client, people.supervisor.email)
    expected = {"7": ("2026-11-24", "2026-11-30"), "90": ("2026-09-02", "2026-11-30"),
                "365": ("2025-12-01", "2026-11-30"), "this_month": ("2026-11-01", "2026-11-30"),
                "last_month": ("2026-10-01", "2026-10-31")}
    for preset, (start, end) in expected.items():
        page = text_of(await client.get(REPORTS, params={"preset": preset, "group_by": "month"}))
        assert f'name="from" value="{start}"' in page and f'name="to" value="{end}"' in page, preset
    last_month = text_of(await client.get(REPORTS, params={"preset": "last_month"}))
    assert 'id="report-empty"' in last_month and "No tickets in this period" in last_month

    by_channel = text_of(await client.get(REPORTS, params={"from": "2026-11-20", "to": "2026-11-30",
                                                           "group_by": "channel"}))
    assert cell(by_channel, "telegram", "tickets") == "2" and cell(by_channel, "rest", "tickets") == "1"
    assert cell(by_channel, "rest", "containment_rate") == "100.0\u00a0%"
    by_queue = text_of(await client.get(REPORTS, params={"from": "2026-11-20", "group_by": "queue"}))
    assert re.search(r'<tr data-key="billing">\s*<th scope="row">Billing', by_queue)
    by_agent = text_of(await client.get(REPORTS, params={"from": "2026-11-20", "group_by": "agent"}))
    agent_row = re.search(rf'<tr data-key="{people.agent.id}">\s*<th scope="row"><a href="([^"]+)">agent</a>',
                          by_agent)
    assert agent_row and agent_row.group(1).startswith(f"/console/reports/agents/{people.agent.id}?")
    assert cell(by_agent, str(people.agent.id), "tickets") == "2"
    by_week = text_of(await client.get(REPORTS, params={"from": "2026-11-16", "to": "2026-11-30",
                                                        "group_by": "week"}))
    assert cell(by_week, "2026-11-23", "tickets") == "3" and cell(by_week, "2026-11-16", "tickets") == "0"


async def test_russian_words_numbers_and_durations(client: httpx.AsyncClient, people: People,
                                                   sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await scenario(sessionmaker, people)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == people.supervisor.id).values(language="ru"))
    await login(client, people.supervisor.email)
    page = text_of(await client.get(REPORTS, params={"preset": "7"}))
    assert "<h1>Отчёты</h1>" in page and "По дням" in page and "Прошлый месяц" in page
    assert cell(page, "2026-11-24", "first_response_median_s") == "1 ч 05 мин"
    assert cell(page, "2026-11-25", "containment_rate") == "100,0\u00a0%"
    assert "Время первого ответа" in page and "Соблюдение SLA" in page


async def test_a_figure_opens_exactly_the_tickets_behind_it(client: httpx.AsyncClient, people: People,
                                                            sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    first, bot, still_open = await scenario(sessionmaker, people)
    await login(client, people.supervisor.email)
    page = text_of(await client.get(REPORTS, params={"from": "2026-11-20", "group_by": "channel"}))
    r = await client.get(drill_link(page, "telegram", "tickets"))
    assert r.status_code == 200
    drill = text_of(r)
    assert re.findall(r'<tr data-ticket="([^"]+)">', drill) == [format_ticket_number(first),
                                                                 format_ticket_number(still_open)]
    assert f'href="/console/tickets/{format_ticket_number(first)}"' in drill
    assert "1 h 05 min" in drill and "2 h 00 min" in drill
    resolved = text_of(await client.get(drill_link(page, "rest", "containment_rate")))
    assert re.findall(r'<tr data-ticket="([^"]+)">', resolved) == [format_ticket_number(bot)]
    no_queue = text_of(await client.get(REPORTS, params={"from": "2026-11-20", "group_by": "intent"}))
    nobody = text_of(await client.get(drill_link(no_queue, "", "tickets")))  # tickets without an intent
    assert "no intent" in nobody
    assert sorted(re.findall(r'<tr data-ticket="([^"]+)">', nobody)) == sorted(
        format_ticket_number(i) for i in (first, bot, still_open))
    backlog = text_of(await client.get(re.sub(r"&key=[^&]*", "", drill_link(page, "telegram", "backlog"))))
    assert re.findall(r'<tr data-ticket="([^"]+)">', backlog) == [format_ticket_number(still_open)]
    # The figure's counterpart is one click away.
    breached = re.search(r'id="drill-counterpart">', drill)
    assert breached is None  # "all tickets" has none
    resolved_page = text_of(await client.get(drill_link(page, "telegram", "resolved")))
    other = re.search(r'<a href="([^"]+)" id="drill-counterpart">', resolved_page)
    assert other and "metric=unresolved" in other.group(1)
    unresolved = text_of(await client.get(html.unescape(other.group(1))))
    assert re.findall(r'<tr data-ticket="([^"]+)">', unresolved) == [format_ticket_number(still_open)]


async def test_the_drill_down_pages_through_many_tickets(client: httpx.AsyncClient, people: People,
                                                         sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        ids = [await add_ticket(session, datetime(2026, 11, 27, 8, tzinfo=UTC) + timedelta(minutes=n),
                                channel="rest") for n in range(55)]
    await fold(sessionmaker)
    await login(client, people.supervisor.email)
    first = text_of(await client.get(f"{REPORTS}/tickets", params={
        "from": "2026-11-27", "to": "2026-11-27", "group_by": "day", "key": "2026-11-27", "metric": "tickets"}))
    numbers = re.findall(r'<tr data-ticket="([^"]+)">', first)
    assert numbers == [format_ticket_number(i) for i in ids[:50]]
    following = re.search(r'<a href="([^"]+)" id="drill-next"', first)
    assert following
    second = text_of(await client.get(html.unescape(following.group(1))))
    assert re.findall(r'<tr data-ticket="([^"]+)">', second) == [format_ticket_number(i) for i in ids[50:]]
    assert 'id="drill-next"' not in second and 'id="drill-first"' in second


async def test_export_is_the_report_on_screen(client: httpx.AsyncClient, people: People,
                                              sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await scenario(sessionmaker, people)
    await login(client, people.supervisor.email)
    params = {"from": "2026-11-20", "to": "2026-11-30", "group_by": "channel"}
    page = text_of(await client.get(REPORTS, params=params))
    link = re.search(r'id="export-csv" href="([^"]+)"', page)
    assert link
    r = await client.get(html.unescape(link.group(1)))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="kpi_2026-11-20_2026-11-30_channel.csv"' in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = rows[0]
    by_key = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert set(by_key) >= {"telegram", "rest"}
    tickets_col = next(h for h in header if h.lower().startswith("tickets"))
    assert by_key["telegram"][tickets_col] == "2" and by_key["rest"][tickets_col] == "1"

    xlsx = await client.get(html.unescape(re.search(r'id="export-xlsx" href="([^"]+)"', page).group(1)))  # type: ignore[union-attr]
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == header
    xlsx_rows = {row[0]: row for row in values[1:]}
    assert xlsx_rows["telegram"][header.index(tickets_col)] == 2


async def test_one_agents_page_over_time(client: httpx.AsyncClient, people: People,
                                         sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    first, _bot, still_open = await scenario(sessionmaker, people)
    await login(client, people.supervisor.email)
    url = f"{REPORTS}/agents/{people.agent.id}"
    page = text_of(await client.get(url, params={"from": "2026-11-16", "to": "2026-11-30", "group_by": "week"}))
    assert "Agent report: agent" in page
    assert cell(page, "2026-11-23", "tickets") == "2" and cell(page, "2026-11-16", "tickets") == "0"
    assert cell(page, "totals", "tickets") == "2"
    assert cell(page, "2026-11-23", "first_response_median_s") == "1 h 05 min"
    drill = text_of(await client.get(drill_link(page, "2026-11-23", "tickets")))
    assert re.findall(r'<tr data-ticket="([^"]+)">', drill) == [format_ticket_number(first),
                                                                 format_ticket_number(still_open)]
    export = await client.get(f"{REPORTS}/export", params={"agent": str(people.agent.id), "format": "csv",
                                                           "from": "2026-11-16", "to": "2026-11-30",
                                                           "group_by": "week"})
    assert export.status_code == 200 and f"_agent{people.agent.id}.csv" in export.headers["content-disposition"]
    refused = await client.get(url, params={"group_by": "channel"})
    assert refused.status_code == 422 and "grouped by day, week or month" in text_of(refused)
    # By day over a year (the engine's longest range): one report of the agent, a row per day.
    by_day = text_of(await client.get(url, params={"from": "2025-12-01", "to": "2026-11-30", "group_by": "day"}))
    assert len(re.findall(r'<tr data-key="20[0-9-]+">', by_day)) == 365
    assert cell(by_day, "2026-11-24", "tickets") == "1" and cell(by_day, "2026-11-25", "tickets") == "0"
    assert cell(by_day, "2026-11-26", "backlog") == "1" and cell(by_day, "2026-11-24", "backlog") == "0"
    assert cell(by_day, "totals", "tickets") == "2" and cell(by_day, "totals", "resolved") == "1"
    day_drill = text_of(await client.get(drill_link(by_day, "2026-11-26", "tickets")))
    assert re.findall(r'<tr data-ticket="([^"]+)">', day_drill) == [format_ticket_number(still_open)]
    backlog = text_of(await client.get(drill_link(by_day, "totals", "backlog")))
    assert re.findall(r'<tr data-ticket="([^"]+)">', backlog) == [format_ticket_number(still_open)]
    year_csv = await client.get(f"{REPORTS}/export", params={"agent": str(people.agent.id), "format": "csv",
                                                             "from": "2025-12-01", "to": "2026-11-30",
                                                             "group_by": "day"})
    assert year_csv.status_code == 200
    lines = list(csv.reader(io.StringIO(year_csv.content.decode("utf-8-sig"))))
    tickets_col = next(i for i, h in enumerate(lines[0]) if h.lower().startswith("tickets"))
    assert len(lines) == 1 + 365 + 1
    by_day_csv = {line[0]: line[tickets_col] for line in lines[1:-1]}
    # The agent's figures, not everyone's (the bot's ticket of 25.11 is not the agent's).
    assert by_day_csv["2026-11-24"] == "1" and by_day_csv["2026-11-25"] == "0" and lines[-1][tickets_col] == "2"
    too_long = await client.get(url, params={"from": "2025-01-01", "to": "2026-11-30", "group_by": "day"})
    assert too_long.status_code == 422 and "at most 366 are reported at once" in text_of(too_long)
    by_month = text_of(await client.get(url, params={"from": "2026-01-01", "to": "2026-11-30",
                                                     "group_by": "month"}))
    assert cell(by_month, "2026-11-01", "tickets") == "2" and cell(by_month, "2026-01-01", "tickets") == "0"
    assert 'id="all-agents"' in by_month
    assert (await client.get(f"{REPORTS}/agents/99999")).status_code == 404
    assert (await client.get(f"{REPORTS}/agents/abc")).status_code == 422


@pytest.mark.parametrize(("params", "reason"), [
    ({"from": "2026-13-01", "to": "2026-11-30"}, "“from” must be a date like 2026-11-30, not “2026-13-01”."),
    ({"from": "yesterday"}, "“from” must be a date like 2026-11-30, not “yesterday”."),
    ({"from": "2026-11-30", "to": "2026-11-01"}, "The start 2026-11-30 is after the end 2026-11-01."),
    ({"from": "2020-01-01", "to": "2026-11-30"}, "at most 366 are reported at once"),
    ({"group_by": "weekday"}, "Cannot group by “weekday”: choose one of day, week, month, channel, queue, agent"),
    ({"preset": "forever"}, "Unknown quick range “forever”."),
])
async def test_bad_parameters_show_the_reason_not_a_500(client: httpx.AsyncClient, people: People,
                                                        params: dict[str, str], reason: str) -> None:
    await login(client, people.supervisor.email)
    for url in (REPORTS, f"{REPORTS}/tickets", f"{REPORTS}/export"):
        r = await client.get(url, params=params)
        assert r.status_code == 422, (url, r.status_code)
        assert 'id="report-error"' in r.text and reason in text_of(r), url
        assert 'id="report-form"' in r.text or url.endswith("/tickets")


async def test_bad_drill_down_and_export_parameters(client: httpx.AsyncClient, people: People) -> None:
    await login(client, people.supervisor.email)
    r = await client.get(f"{REPORTS}/tickets", params={"metric": "happiness"})
    assert r.status_code == 422 and "Unknown figure “happiness”." in text_of(r)
    r = await client.get(f"{REPORTS}/tickets", params={"metric": "tickets", "after": "x1"})
    assert r.status_code == 422 and "“x1” is not a page position." in text_of(r)
    r = await client.get(f"{REPORTS}/tickets", params={"group_by": "day", "key": "monday", "metric": "tickets"})
    assert r.status_code == 422 and "monday" in text_of(r)
    r = await client.get(f"{REPORTS}/export", params={"format": "pdf"})
    assert r.status_code == 422 and "Unknown export format “pdf”: csv or xlsx." in text_of(r)


async def test_weekly_summary_page_supervisors_read_admins_switch(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, people.supervisor.email)
    page = text_of(await client.get("/console/admin/summary"))
    assert 'data-summary-state="off"' in page and 'id="summary-switch"' not in page
    assert 'data-recipient="super@test.example"' in page and 'data-recipient="admin@test.example"' in page
    assert 'data-recipient="agent@test.example"' not in page
    assert 'data-summary-sender="missing"' in page  # no From address configured in the tests' settings
    assert "Mon at 08:00 (Europe/Moscow)" in page
    r = await client.post("/console/admin/summary", data={"enabled": "on"})
    assert r.status_code == 403

    client.cookies.clear()
    await login(client, people.admin.email)
    r = await post_form(client, "/console/admin/summary", "/console/admin/summary", {"enabled": "on"})
    assert r.status_code == 303
    page = text_of(await client.get("/console/admin/summary"))
    assert "The weekly summary is on." in page and 'data-summary-state="on"' in page
    assert "7 Dec 08:00" in page  # the next Monday 08:00 in Moscow (the console says dates in its time zone)
    async with sessionmaker() as session:
        assert await summaries.is_enabled(session) is True
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "summary"))).all()
    assert list(actions) == ["summary.enabled"]
    await post_form(client, "/console/admin/summary", "/console/admin/summary", {})
    async with sessionmaker() as session:
        assert await summaries.is_enabled(session) is False


def test_keys_made_from_data_are_in_both_languages() -> None:
    from api.console.reports import FIELD_METRIC, PRESETS
    from core.i18n import LANGUAGES, translator
    from core.kpis.schemas import KPI_FIELDS, GroupBy, Metric
    from core.summaries.models import MailStatus
    from core.summaries.service import FIGURES

    dynamic = ([f"reports.kpi.{f}" for f in (*KPI_FIELDS, *FIELD_METRIC)]
               + [f"reports.help.{f}" for f in KPI_FIELDS] + [f"metric.{m.value}" for m in Metric]
               + [f"reports.{kind}.{g.value}" for g in GroupBy for kind in ("group", "col.group", "key_none")]
               + [f"reports.preset.{p}" for p in PRESETS] + [f"month.short.{n}" for n in range(1, 13)]
               + [f"reports.chart.{c}" for c in ("volume", "frt", "resolution", "containment", "csat", "sla",
                                                   "csat_distribution")]
               + [f"summary.status.{s.value}" for s in MailStatus] + [f"reports.kpi.{f.field}" for f in FIGURES]
               + ["admin.summary"])
    for language in LANGUAGES:
        _ = translator(language)
        assert [k for k in dynamic if _.get(k) is None] == [], language
    assert translator("ru")("reports.kpi.backlog") == "Не решено на конец"
