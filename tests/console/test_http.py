"""The console over HTTP: sessions, CSRF, roles, escaping, and every page rendering."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.canned.models import CannedResponse
from core.nlu_admin import service as nlu_admin
from core.nlu_admin.models import NluSuggestion
from core.tickets.models import Message, Ticket
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import People, csrf_of, login, post_form


async def test_anonymous_is_sent_to_login(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/console/inbox"
    r = await client.get("/console/inbox")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=")
    r = await client.get("/console/inbox/rows", headers={"X-Requested-With": "fetch"})
    assert r.status_code == 401


async def test_login_sets_httponly_lax_cookie_and_logout_revokes(client: httpx.AsyncClient, people: People) -> None:
    r = await login(client, "agent@test.example")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "sb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    token = client.cookies["sb_session"]
    r = await client.get("/console/inbox")
    assert r.status_code == 200
    assert "Content-Security-Policy" in r.headers
    r = await client.post("/console/logout", data={"csrf_token": csrf_of(r.text)})
    assert r.status_code == 303
    # The token is revoked server-side, not only forgotten by the browser.
    client.cookies.set("sb_session", token)
    assert (await client.get("/console/inbox")).status_code == 303


async def test_wrong_password_and_login_without_csrf(client: httpx.AsyncClient, people: People) -> None:
    r = await login(client, "agent@test.example", "wrong-password")
    assert r.status_code == 401
    assert "Invalid email or password" in r.text
    r = await client.post("/console/login", data={"email": "agent@test.example", "password": "password-123"})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert "sb_session" not in client.cookies


async def test_post_without_csrf_is_refused(client: httpx.AsyncClient, people: People) -> None:
    await login(client, "agent@test.example")
    r = await client.post("/console/language", data={"language": "ru"})
    assert r.status_code == 403
    r = await client.post("/console/language", data={"language": "ru", "csrf_token": "forged"})
    assert r.status_code == 403
    r = await post_form(client, "/console/inbox", "/console/language", {"language": "ru"})
    assert r.status_code == 303
    page = await client.get("/console/inbox")
    assert "Входящие" in page.text and 'lang="ru"' in page.text


async def test_roles(client: httpx.AsyncClient, people: People) -> None:
    await login(client, "agent@test.example")
    for url in ("/console/admin/users", "/console/admin/canned", "/console/admin/audit", "/console/board"):
        r = await client.get(url)
        assert r.status_code == 403, url
        assert 'data-status="403"' in r.text
    client.cookies.clear()
    await login(client, "super@test.example")
    assert (await client.get("/console/board")).status_code == 200
    assert (await client.get("/console/admin/users")).status_code == 403
    client.cookies.clear()
    await login(client, "admin@test.example")
    for url in ("/console/admin/users", "/console/admin/queues", "/console/admin/canned", "/console/admin/routing",
                "/console/admin/channels", "/console/admin/audit", "/console/admin/intents", "/console/board"):
        r = await client.get(url)
        assert r.status_code == 200, (url, r.text[:300])


async def test_ticket_workflow_and_escaping(client: httpx.AsyncClient, people: People,
                                            sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("x-1", f"My TV is black {payload}", sender="c-9"))
    number = r.json()["ticket_number"]
    await login(client, "agent@test.example")
    inbox = await client.get("/console/inbox")
    assert number in inbox.text
    page = await client.get(f"/console/tickets/{number}")
    assert page.status_code == 200
    assert "<script>window.pwned" not in page.text and "&lt;script&gt;" in page.text
    assert "<img src=x" not in page.text

    ticket_url = f"/console/tickets/{number}"
    r = await post_form(client, ticket_url, f"{ticket_url}/take", {})
    assert r.status_code == 303
    r = await post_form(client, ticket_url, f"{ticket_url}/reply", {"text": "Перезагрузите приставку"})
    assert r.status_code == 303
    r = await post_form(client, ticket_url, f"{ticket_url}/note", {"text": "called twice"})
    r = await post_form(client, ticket_url, f"{ticket_url}/priority", {"priority": "high"})
    page = await client.get(ticket_url)
    assert "Перезагрузите приставку" in page.text and "called twice" in page.text
    assert 'class="badge prio-high"' in page.text

    # An illegal transition comes back as a readable message, and nothing changes.
    r = await post_form(client, ticket_url, f"{ticket_url}/status", {"status": "new"})
    assert r.status_code == 303 and r.headers["location"] == ticket_url
    page = await client.get(ticket_url)
    assert "cannot move ticket" in page.text

    # Correct the bot's intent of the customer's message: it becomes a suggested training example.
    async with sessionmaker() as session, session.begin():
        await nlu_admin.create_intent(session, "tv_not_working", "", None)
        msg = (await session.scalars(select(Message).where(Message.external_message_id == "x-1"))).one()
    r = await post_form(client, ticket_url, f"{ticket_url}/messages/{msg.id}/intent", {"intent": "tv_not_working"})
    assert r.status_code == 303
    async with sessionmaker() as session:
        suggestion = (await session.scalars(select(NluSuggestion))).one()
    assert (suggestion.message_id, suggestion.intent, suggestion.status) == (msg.id, "tv_not_working", "pending")
    assert 'data-suggestion="pending"' in (await client.get(ticket_url)).text


async def test_canned_crud_and_safe_variables(client: httpx.AsyncClient, people: People,
                                              sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await login(client, "admin@test.example")
    r = await post_form(client, "/console/admin/canned", "/console/admin/canned", {
        "title": "Greeting", "shortcut": "hi", "language": "", "queue": "",
        "body": "Hello {{customer_name}}, about {{ ticket_number }}: {{unknown_thing}}"})
    assert r.status_code == 303
    page = await client.get("/console/admin/canned")
    assert "unknown variables: unknown_thing" in page.text
    r = await post_form(client, "/console/admin/canned", "/console/admin/canned", {
        "title": "Greeting", "shortcut": "hi", "language": "", "queue": "",
        "body": "Hello {{customer_name}}, about {{ ticket_number }}."})
    async with sessionmaker() as session:
        canned = (await session.scalars(select(CannedResponse))).one()

    evil = "<b onmouseover=alert(1)>Eve</b> {{ticket_number}}"
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json={
        "external_message_id": "c-1", "sender": {"external_id": "eve", "name": evil}, "text": "help"})
    number = r.json()["ticket_number"]
    client.cookies.clear()
    await login(client, "agent@test.example")
    page = await client.get(f"/console/tickets/{number}")
    # The customer's name is inserted verbatim (not re-expanded) and escaped in the attribute.
    assert f"Hello &lt;b onmouseover=alert(1)&gt;Eve&lt;/b&gt; {{{{ticket_number}}}}, about {number}." in page.text
    r = await post_form(client, f"/console/tickets/{number}", f"/console/tickets/{number}/reply",
                        {"text": "", "canned_id": str(canned.id)})
    assert r.status_code == 303
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, int(number[2:]))
        assert ticket is not None
        sent = (await session.scalars(select(Message).where(Message.ticket_id == ticket.id,
                                                            Message.author_kind == "agent"))).one()
    assert sent.text == f"Hello {evil}, about {number}."


@pytest.mark.parametrize("url", ["/console/tickets/T-999999", "/console/tickets/nonsense",
                                 "/console/tickets/%C2%B9", "/console/tickets/T-%C2%B9%C2%B2"])
async def test_unknown_ticket_is_a_friendly_404(client: httpx.AsyncClient, people: People, url: str) -> None:
    await login(client, "agent@test.example")
    r = await client.get(url)
    assert r.status_code == 404
    assert "<html" in r.text


async def test_admin_creates_user_queue_and_route(client: httpx.AsyncClient, people: People) -> None:
    await login(client, "admin@test.example")
    r = await post_form(client, "/console/admin/queues", "/console/admin/queues",
                        {"slug": "vip", "name": "VIP-клиенты"})
    assert r.status_code == 303
    r = await post_form(client, "/console/admin/users", "/console/admin/users", {
        "email": "new@test.example", "name": "Новый Оператор", "password": "long-password", "role": "agent",
        "language": "ru", "queue": "vip", "capacity": "3"})
    assert r.status_code == 303
    page = await client.get("/console/admin/users")
    assert "new@test.example" in page.text and "Saved." in page.text
    r = await post_form(client, "/console/admin/routing", "/console/admin/routing",
                        {"intent": "roaming", "queue": "vip"})
    page = await client.get("/console/admin/routing")
    assert 'data-intent="roaming"' in page.text
    audit = await client.get("/console/admin/audit")
    assert "routing.set" in audit.text and "user.create" in audit.text
    r = await post_form(client, "/console/admin/users", "/console/admin/users", {
        "email": "bad", "name": "", "password": "x"})
    page = await client.get("/console/admin/users")
    assert "flash-error" in page.text


async def test_hostile_form_values_are_clear_answers(client: httpx.AsyncClient, people: People) -> None:
    """Issue 9: superscript digits (`"¹".isdigit()` is true, `int("¹")` raises) and non-ASCII CSRF tokens
    (`hmac.compare_digest` raises on them) were 500s."""
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS, json=rest_message("x-1", "hello"))
    ticket_url = f"/console/tickets/{r.json()['ticket_number']}"
    await login(client, "super@test.example")
    r = await client.post("/console/language", data={"language": "ru", "csrf_token": "подделка"})
    assert r.status_code == 403
    for action, data in ((f"{ticket_url}/assign", {"user_id": "¹"}),
                         (f"{ticket_url}/reply", {"text": "", "canned_id": "²"}),
                         ("/console/board/reassign", {"ticket_id": str(2**63), "user_id": "¹"})):
        r = await post_form(client, ticket_url, action, data)
        assert r.status_code in (303, 400, 404, 422), (action, r.status_code)
    assert (await client.get("/console/admin/audit", params={"actor": "¹"})).status_code in (200, 403)


async def test_channels_page_says_when_in_words(client: httpx.AsyncClient, people: People,
                                                console_app: FastAPI) -> None:
    # A channel's health holds UTC datetimes (ISO 8601 in /health); the page says them as people do.
    state = console_app.state.switchboard
    rest = state.channels.get("rest")
    assert rest is not None
    rest.health.received()
    rest.health.error("webhook answered 502")
    await login(client, "admin@test.example")
    page = (await client.get("/console/admin/channels")).text
    start = page.index('<tr data-channel="rest"')
    row = page[start:page.index("</tr>", start)]
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page) is None
    assert "webhook answered 502" in row
    assert row.count("today ") == 2  # the last message and the last error
