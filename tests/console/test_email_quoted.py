"""Issue 17: the quoted history of a customer's mail is folded on the ticket page and shown on demand."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.tickets.models import Message, Ticket
from tests.conftest import REST_HEADERS, rest_message
from tests.console.conftest import People, login, post_form

QUOTED = "-----Исходное сообщение-----\nОт: Поддержка\nТема: Счёт\n\n<b>Счёт</b> отправлен."


async def test_quoted_history_is_folded_on_the_ticket_page(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    r = await client.post("/channels/rest/messages", headers=REST_HEADERS,
                          json=rest_message("m-quoted", "Счёт так и не пришёл", sender="c-17"))
    number = r.json()["ticket_number"]
    async with sessionmaker() as session, session.begin():
        # what the email channel stores: the customer's words as the text, the history in extra["quoted"]
        await session.execute(update(Message).where(Message.external_message_id == "m-quoted")
                              .values(extra={"quoted": QUOTED}))
        other = (await session.scalars(select(Message).where(Message.external_message_id == "m-quoted"))).one()
    assert other.text == "Счёт так и не пришёл"

    await login(client, "agent@test.example")
    page = (await client.get(f"/console/tickets/{number}")).text
    start = page.index('<details class="email-quoted">')
    block = page[start:page.index("</details>", start)]
    assert "<details class=\"email-quoted\">" in page and "<details class=\"email-quoted\" open" not in page
    assert "Quoted earlier messages" in block
    assert "-----Исходное сообщение-----" in block and "&lt;b&gt;Счёт&lt;/b&gt;" in block  # text, never markup
    assert page.count('class="email-quoted"') == 1  # only the message that has a history

    await post_form(client, f"/console/tickets/{number}", "/console/language", {"language": "ru"})
    page = (await client.get(f"/console/tickets/{number}")).text
    assert "Цитата предыдущих писем" in page


async def test_erasure_removes_the_quoted_history(
        client: httpx.AsyncClient, people: People, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    from core.customers import service as customers

    await client.post("/channels/rest/messages", headers=REST_HEADERS,
                      json=rest_message("m-erase", "my words", sender="c-18"))
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Message).where(Message.external_message_id == "m-erase")
                              .values(extra={"quoted": QUOTED, "action": "escalate"}))
        message = (await session.scalars(select(Message).where(Message.external_message_id == "m-erase"))).one()
        customer_id = (await session.get_one(Ticket, message.ticket_id)).customer_id
    async with sessionmaker() as session, session.begin():
        await customers.erase(session, customer_id, None)
    async with sessionmaker() as session:
        # The external id goes too (an e-mail's Message-ID can hold the sender's address).
        message = await session.get_one(Message, message.id)
    assert (message.text, message.extra, message.external_message_id) == ("", {"action": "escalate"}, None)
