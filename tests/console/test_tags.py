"""Tags in the console over HTTP: an agent tags a ticket from its page (existing names suggested) and untags it, the
inbox shows the tags and filters by one or several (with the other filters), supervisors tag in bulk and keep the
list on the admin page; agents cannot; bad names come back with the reason."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.tags.models import Tag
from tests.console.conftest import People, csrf_of, login, post_form
from tests.console.test_working_day import signed_in, write


def inbox_numbers(html: str) -> list[str]:
    return re.findall(r'<tr data-ticket="(T-\d+)"', html)


def flash_of(html: str) -> str:
    """The error flash a refused form left on the page it went back to ("" when none)."""
    found = re.search(r'<div class="flash flash-error" role="alert">(.*?)</div>', html, re.S)
    return found.group(1) if found else ""


async def test_agents_tag_tickets_and_the_inbox_filters_by_tags(
        client: httpx.AsyncClient, console_app: FastAPI, people: People,
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    a, b, c = [await write(client, f"tg-{i}", "My TV is black", sender=f"tg-{i}") for i in range(3)]
    await login(client, "agent@test.example")
    page = (await client.get(f"/console/tickets/{a}")).text
    assert 'id="tag-form"' in page and 'list="tag-suggestions"' in page

    async def tag(number: str, name: str) -> httpx.Response:
        return await post_form(client, f"/console/tickets/{number}", f"/console/tickets/{number}/tags", {"name": name})

    r = await tag(a, "Возврат денег")
    assert r.status_code == 303 and r.headers["location"].endswith("#tags-h")
    await tag(a, "urgent-callback")
    await tag(b, "возврат ДЕНЕГ")
    page = (await client.get(f"/console/tickets/{b}")).text
    assert "Tag Возврат денег added." in page
    # The other tags are suggested; the ticket's own is a chip linking to the filtered inbox, with a named remove.
    assert '<option value="urgent-callback">' in page
    assert 'data-tag-name="Возврат денег"' in page and 'aria-label="Remove tag Возврат денег"' in page
    assert "tag added" in page  # the history

    inbox = (await client.get("/console/inbox?view=all")).text
    assert inbox.count('data-tag-name="Возврат денег"') == 2 and 'id="filter-tags"' in inbox
    assert inbox_numbers((await client.get("/console/inbox?view=all&tag=" + quote("возврат денег"))).text) == [a, b]
    both = await client.get("/console/inbox", params={"view": "all", "tag": ["Возврат денег", "urgent-callback"]})
    assert inbox_numbers(both.text) == [a]
    assert 'selected>urgent-callback' in both.text  # the filter form shows what is picked
    joined = await client.get("/console/inbox", params={"view": "all", "tag": "urgent-callback,Возврат денег"})
    assert inbox_numbers(joined.text) == [a]
    # Picked as the filter folds names (case, ё, spaces, a space after the comma): re-submitting keeps the filter.
    folded = (await client.get("/console/inbox", params={"view": "all", "tag": "URGENT-callback,  возврат  денег"})
              ).text
    assert inbox_numbers(folded) == [a]
    assert 'selected>urgent-callback' in folded and 'selected>Возврат денег' in folded
    # With the other filters and the search box.
    assert inbox_numbers((await client.get("/console/inbox", params={
        "view": "all", "tag": "Возврат денег", "q": "black", "assignee": "unassigned"})).text) in ([a, b], [b, a])
    assert inbox_numbers((await client.get("/console/inbox", params={
        "view": "done", "tag": "Возврат денег"})).text) == []
    assert inbox_numbers((await client.get("/console/inbox/rows", params={
        "view": "all", "tag": "urgent-callback"})).text) == [a]
    assert c not in inbox_numbers((await client.get("/console/inbox?view=all&tag=" + quote("Возврат денег"))).text)

    # A bad name comes back with the reason; nothing is stored.
    for bad in ("<img src=x>", "", "q" * 51):
        r = await tag(c, bad)
        assert r.status_code in (303, 422)
        assert "tag name" in (await client.get(f"/console/tickets/{c}")).text
    async with sessionmaker() as s:
        assert sorted((await s.scalars(select(Tag.name))).all()) == ["urgent-callback", "Возврат денег"]
        refund = await s.scalar(select(Tag).where(Tag.name == "Возврат денег"))
    assert refund is not None
    r = await post_form(client, f"/console/tickets/{b}", f"/console/tickets/{b}/tags/{refund.id}/remove", {})
    assert r.status_code == 303
    assert "Tag Возврат денег removed." in (await client.get(f"/console/tickets/{b}")).text
    assert inbox_numbers((await client.get("/console/inbox?view=all&tag=" + quote("Возврат денег"))).text) == [a]

    # Agents do not keep the list; supervisors do.
    assert (await client.get("/console/admin/tags")).status_code == 403
    async with signed_in(console_app, "super@test.example") as sup:
        admin = (await sup.get("/console/admin/tags")).text
        assert 'href="/console/admin/tags" aria-current="page"' in admin and "Возврат денег" in admin
        r = await post_form(sup, "/console/admin/tags", f"/console/admin/tags/{refund.id}",
                            {"name": "Refund", "colour": "red"})
        assert r.status_code == 303
        assert 'class="tag tag-red" data-tag-name="Refund"' in (await sup.get("/console/admin/tags")).text
        r = await post_form(sup, "/console/admin/tags", f"/console/admin/tags/{refund.id}", {"colour": "neon"})
        assert r.status_code == 303
        assert "colour: String should match pattern" in flash_of((await sup.get("/console/admin/tags")).text)
        async with sessionmaker() as s:
            unchanged = await s.get(Tag, refund.id)
            assert unchanged is not None and unchanged.colour == "red"
        r = await post_form(sup, "/console/admin/tags", "/console/admin/tags", {"name": "refund"})
        assert "already exists" in (await sup.get("/console/admin/tags")).text
        assert 'data-tag-name="Refund"' in (await client.get(f"/console/tickets/{a}")).text

        # Bulk: tag and untag the ticked tickets; an unknown tag to remove is named.
        inbox = (await sup.get("/console/inbox?view=all")).text
        assert 'value="tag_add"' in inbox and 'value="tag_remove"' in inbox
        token = csrf_of(inbox)

        async def bulk(**fields: object) -> httpx.Response:
            return await sup.post("/console/tickets/bulk", data={"csrf_token": token, **fields},
                                  headers={"Referer": "http://testserver/console/inbox"})

        # The tag is looked up (and made) once for the lot, not again for each ticket.
        tag_reads: list[str] = []

        def read_of_tags(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            if re.search(r"\bFROM tags\b", statement):
                tag_reads.append(statement)

        engine = console_app.state.switchboard.db_engine.sync_engine
        event.listen(engine, "before_cursor_execute", read_of_tags)
        try:
            assert (await bulk(ticket=[a, b, c], action="tag_add", tag="Escalated")).status_code == 303
        finally:
            event.remove(engine, "before_cursor_execute", read_of_tags)
        assert len(tag_reads) == 1, tag_reads
        assert "3 tickets updated" in (await sup.get("/console/inbox")).text
        assert inbox_numbers((await sup.get("/console/inbox?view=all&tag=escalated")).text) == [a, b, c]
        await bulk(ticket=[a, c], action="tag_remove", tag="escalated")
        assert inbox_numbers((await sup.get("/console/inbox?view=all&tag=escalated")).text) == [b]
        await bulk(ticket=[a], action="tag_remove", tag="never-made")
        assert "never-made" in (await sup.get("/console/inbox")).text
        await bulk(ticket=[a], action="tag_add", tag="<script>")
        assert "tag name" in (await sup.get("/console/inbox")).text
        await bulk(ticket=[a], action="tag_remove", tag="  ")  # no name is a bad name, not an unknown tag
        assert flash_of((await sup.get("/console/inbox")).text) == "tag name is empty"

        r = await post_form(sup, "/console/admin/tags", f"/console/admin/tags/{refund.id}/delete", {})
        assert "Tag deleted." in (await sup.get("/console/admin/tags")).text
    assert 'data-tag-name="Refund"' not in (await client.get(f"/console/tickets/{a}")).text
    async with sessionmaker() as s:
        actions = set((await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("%tag%")))).all())
    assert actions == {"tag.create", "tag.update", "tag.delete", "ticket.tag_add", "ticket.tag_remove"}
