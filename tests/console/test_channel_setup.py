"""Admin → Channels through the console's forms: a mailbox added in the browser reads the test Dovecot without a
restart and is switched off again; the connection test says what is wrong in words; secrets never come back."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.email.adapter import EmailChannel
from core.channel_configs.models import ChannelConfig
from core.tickets.models import Direction, Message, Ticket
from core.users.models import User
from tests.channels.email.conftest import (  # noqa: F401  (the fixtures)
    PASSWORD,
    Dovecot,
    SmtpSink,
    dovecot,
    smtp_sink,
    wait_for,
)
from tests.channels.email.test_channel import mail
from tests.channels.telegram.botapi import running_bot_api
from tests.conftest import free_port
from tests.console.conftest import People, csrf_of, login, post_form

NEW_MAILBOX = "/console/admin/channels/new?kind=email"
ONLY_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def mailbox_form(server: Dovecot, user: str, smtp_port: int = 0, **changes: str) -> dict[str, str]:
    """A mailbox as typed in; its SMTP server (required without the environment's) at `smtp_port` (else nobody)."""
    form = {"name": user, "address": f"{user}@support.example", "host": server.host, "port": str(server.port),
            "security": "none", "username": user, "password": PASSWORD, "folder": "INBOX", "use_idle": "on",
            "poll_seconds": "2", "first_start": "all", "smtp.host": "127.0.0.1",
            "smtp.port": str(smtp_port or free_port()), "smtp.security": "none", "smtp.username": "",
            "smtp.password": "", "enabled": "on"}
    form.update(changes)
    return form


async def inbound_email(sessionmaker: async_sessionmaker[AsyncSession], at_least: int = 1) -> bool:
    async with sessionmaker() as session:
        count = int(await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == Direction.inbound, Message.channel == "email")) or 0)
    return count >= at_least


async def test_a_mailbox_added_in_the_browser_receives_mail_without_a_restart_and_stops_when_switched_off(
        console_app: FastAPI, client: httpx.AsyncClient, people: People, dovecot: Dovecot,  # noqa: F811 (the imported fixture)
        sessionmaker: async_sessionmaker[AsyncSession], smtp_sink: SmtpSink) -> None:  # noqa: F811
    state = console_app.state.switchboard
    assert state.channels.get("email") is None  # the environment configures no e-mail
    user = dovecot.add_user()
    await login(client, people.admin.email)
    r = await post_form(client, NEW_MAILBOX, NEW_MAILBOX, mailbox_form(dovecot, user, smtp_sink.port))
    assert r.status_code == 303, r.text[:2000]
    page_url = r.headers["location"]
    config_id = int(page_url.rsplit("/", 1)[1])

    await dovecot.append(user, mail("first@customer.example", "My internet is down since morning"))
    await wait_for(lambda: inbound_email(sessionmaker), what="the mail ingested")
    async with sessionmaker() as session:
        ticket = (await session.scalars(select(Ticket))).one()
        assert ticket.channel == "email"

    page = await client.get("/console/admin/channels")
    assert f'data-config="{config_id}"' in page.text and "connected" in page.text and PASSWORD not in page.text
    form_page = await client.get(page_url)
    assert PASSWORD not in form_page.text and 'data-secret-set="password"' in form_page.text
    r = await client.post(f"{page_url}/test", data={"csrf_token": csrf_of(form_page.text)})
    assert r.status_code == 200 and 'data-ok="yes"' in r.text and 'data-step="imap"' in r.text

    # Switched off from the list: its reader stops; switched on again, it takes what came meanwhile.
    adapter = state.channels.get("email")
    assert isinstance(adapter, EmailChannel)
    r = await client.post(f"/console/admin/channels/{config_id}/switch", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    worker = adapter.workers[user]

    def stopped() -> bool:
        job = state.jobs.get(worker.job_name)
        return state.channels.get("email") is None and adapter.health.state == "stopped" and worker.stopping \
            and job is not None and job.state == "stopped"

    await wait_for(stopped, what="the e-mail channel gone and its reader stopped")
    await dovecot.append(user, mail("second@customer.example", "Still down"))
    r = await client.post(f"/console/admin/channels/{config_id}/switch",
                          data={"csrf_token": csrf_of(page.text), "enabled": "on"})
    assert r.status_code == 303
    await wait_for(lambda: inbound_email(sessionmaker, 2), what="the mail sent while it was off")
    assert state.channels.get("email") is not adapter


@ONLY_SQLITE
async def test_the_connection_test_says_what_is_wrong_and_forms_never_echo_secrets(
        client: httpx.AsyncClient, people: People, dovecot: Dovecot, smtp_sink: SmtpSink) -> None:  # noqa: F811
    user = dovecot.add_user()
    await login(client, people.admin.email)
    # Without an SMTP server (the environment has none) its replies could go nowhere: refused, the field marked.
    refused = await post_form(client, NEW_MAILBOX, NEW_MAILBOX, mailbox_form(dovecot, user, **{"smtp.host": ""}))
    assert refused.status_code == 422 and "needs an SMTP server" in refused.text
    secret = "not-the-Password-42"
    refused = await post_form(client, NEW_MAILBOX, NEW_MAILBOX, mailbox_form(dovecot, user, port="70000",
                                                                             password=secret))
    assert refused.status_code == 422 and "port" in refused.text and secret not in refused.text
    assert 'aria-invalid="true"' in refused.text

    r = await post_form(client, NEW_MAILBOX, NEW_MAILBOX, mailbox_form(dovecot, user, password=secret,
                                                                       enabled=""))
    assert r.status_code == 303, r.text[:2000]
    page_url = r.headers["location"]
    page = await client.get(page_url)
    r = await client.post(f"{page_url}/test", data={"csrf_token": csrf_of(page.text)})
    assert 'data-reason="wrong_password"' in r.text and "wrong user name or password" in r.text
    assert secret not in r.text

    # The right password, an SMTP server nobody listens on: IMAP works, SMTP cannot be reached.
    changed = mailbox_form(dovecot, user, password=PASSWORD, enabled="")
    changed.update({"smtp.host": "127.0.0.1", "smtp.port": str(free_port())})
    r = await post_form(client, page_url, page_url, changed)
    assert r.status_code == 303
    page = await client.get(page_url)
    r = await client.post(f"{page_url}/test", data={"csrf_token": csrf_of(page.text)})
    assert 'data-step="imap" data-reason=""' in r.text and 'data-reason="unreachable"' in r.text

    # An edit leaving the password empty keeps it.
    kept = mailbox_form(dovecot, user, smtp_sink.port, password="", enabled="")
    r = await post_form(client, page_url, page_url, kept)
    assert r.status_code == 303
    page = await client.get(page_url)
    r = await client.post(f"{page_url}/test", data={"csrf_token": csrf_of(page.text)})
    assert 'data-ok="yes"' in r.text


@ONLY_SQLITE
async def test_a_telegram_bot_with_a_bad_token_shows_the_getme_error_in_russian(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == people.admin.id).values(language="ru"))
    await login(client, people.admin.email)
    new = "/console/admin/channels/new?kind=telegram"
    async with running_bot_api() as api:
        r = await post_form(client, new, new, {"name": "support_bot", "token": "1:bad", "mode": "polling",
                                              "webhook_url": "", "webhook_secret": "", "base_url": api.base_url,
                                              "base_file_url": api.base_file_url})
        assert r.status_code == 303, r.text[:2000]
        page = await client.get(r.headers["location"])
        assert "1:bad" not in page.text
        r = await client.post(f"{r.headers['location']}/test", data={"csrf_token": csrf_of(page.text)})
        assert 'data-reason="bad_token"' in r.text and "Telegram не принимает этот токен" in r.text
    client.cookies.clear()
    await login(client, people.agent.email)  # an agent may not see or change channels
    assert (await client.get("/console/admin/channels/new")).status_code == 403


@ONLY_SQLITE
async def test_a_row_of_an_unknown_kind_leads_to_its_deletion(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        row = ChannelConfig(kind="fax", name="fax", enabled=True, settings={}, version=1)
        session.add(row)
    await login(client, people.admin.email)
    listed = await client.get("/console/admin/channels")
    assert listed.status_code == 200 and "it can only be deleted" in listed.text
    page = await client.get(f"/console/admin/channels/{row.id}")
    assert page.status_code == 303 and page.headers["location"] == f"/console/admin/channels/{row.id}/delete"
    r = await client.post(f"/console/admin/channels/{row.id}/switch", data={"csrf_token": csrf_of(listed.text)},
                          headers={"Referer": "http://testserver/console/admin/channels"})
    assert r.status_code == 303 and r.headers["location"].endswith("/delete")
