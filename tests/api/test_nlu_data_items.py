"""GET /admin/nlu/data-items a page at a time: keyset paging over a big lookup table, its filters and its 422s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import paging
from core.nlu_admin import repository
from core.nlu_admin.models import NluDataItem

Auth = tuple[Any, dict[str, str]]
URL = "/admin/nlu/data-items"
CITIES = 2500


@pytest.fixture
async def items(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """2,500 values of the lookup `city` (one of them "Tomsk"), a lookup `zone`, two synonyms and a regex."""
    rows: list[dict[str, Any]] = [{"kind": "lookup", "name": "city", "value": f"City {n:04d}", "position": n}
                                  for n in range(CITIES)]
    rows[1234]["value"] = "Tomsk"
    rows += [{"kind": "lookup", "name": "zone", "value": "100% coverage", "position": 0},
             {"kind": "synonym", "name": "Saint Petersburg", "value": "Piter", "position": 0},
             {"kind": "synonym", "name": "Saint Petersburg", "value": "SPb", "position": 1},
             {"kind": "regex", "name": "account", "value": r"\d{8}", "position": 0}]
    async with sessionmaker() as s, s.begin():
        await s.execute(insert(NluDataItem), rows)


async def db_order(sessionmaker: async_sessionmaker[AsyncSession], kind: str) -> list[int]:
    """The ids of one kind's values in the order the database sorts them (its collation orders the names)."""
    async with sessionmaker() as s:
        return [i.id for i in await repository.data_items(s, kind)]


async def walk(client: httpx.AsyncClient, h: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        r = await client.get(URL, headers=h, params=params | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "the walk does not end"


@pytest.mark.usefixtures("items")
async def test_pages_walk_every_value_once_in_order(app_client: httpx.AsyncClient, admin: Auth,
                                                    sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    h = admin[1]
    first = (await app_client.get(URL, headers=h)).json()
    assert first["limit"] == 1000 and len(first["items"]) == 1000 and first["next_cursor"]
    pages = await walk(app_client, h, kind="lookup", limit=1000)
    assert [len(p) for p in pages] == [1000, 1000, 501]
    walked = [i["id"] for p in pages for i in p]
    assert walked == await db_order(sessionmaker, "lookup")
    everything = [i["id"] for p in await walk(app_client, h, limit=1000) for i in p]
    assert everything == await db_order(sessionmaker, "lookup") + await db_order(sessionmaker, "regex") + \
        await db_order(sessionmaker, "synonym")
    assert [i["value"] for i in pages[0][:2]] == ["City 0000", "City 0001"]
    assert [(i["name"], i["value"]) for i in pages[2][-2:]] == [("city", "City 2499"), ("zone", "100% coverage")]


@pytest.mark.usefixtures("items")
async def test_values_added_between_pages(app_client: httpx.AsyncClient, admin: Auth,
                                          sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A value added ahead of the cursor is in a later page, one added behind it is in none; nothing repeats."""
    h = admin[1]
    body = (await app_client.get(URL, headers=h, params={"kind": "lookup"})).json()
    seen = [i["id"] for i in body["items"]]
    added = {}
    for name, value in (("city", "Zelenograd"), ("airport", "SVO"), ("city", "City 0000 bis")):
        r = await app_client.post(URL, headers=h, json={"kind": "lookup", "name": name, "value": value})
        assert r.status_code == 201, r.text
        added[value] = r.json()["id"]
    cursor = body["next_cursor"]
    while cursor is not None:
        body = (await app_client.get(URL, headers=h, params={"kind": "lookup", "cursor": cursor})).json()
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen))
    lookups = await db_order(sessionmaker, "lookup")
    assert seen == [i for i in lookups if i != added["SVO"]]  # `airport` sorts before the first page's end
    assert added["Zelenograd"] in seen and added["City 0000 bis"] in seen  # both at the end of `city`


@pytest.mark.usefixtures("items")
async def test_filters(app_client: httpx.AsyncClient, admin: Auth) -> None:
    h = admin[1]

    async def values(**params: Any) -> list[tuple[str, str, str]]:
        return [(i["kind"], i["name"], i["value"]) for p in await walk(app_client, h, **params) for i in p]

    assert await values(kind="synonym") == [("synonym", "Saint Petersburg", "Piter"),
                                            ("synonym", "Saint Petersburg", "SPb")]
    assert await values(kind="regex") == [("regex", "account", r"\d{8}")]
    assert await values(name="zone") == [("lookup", "zone", "100% coverage")]
    assert await values(name="Zone") == [] and await values(name="cit") == []
    assert len(await values(name="city", limit=700)) == CITIES
    assert await values(q="TOMSK") == [("lookup", "city", "Tomsk")]  # in the value, any case
    assert await values(q="petersb", kind="synonym", limit=1) == [("synonym", "Saint Petersburg", "Piter"),
                                                                  ("synonym", "Saint Petersburg", "SPb")]  # name
    assert await values(q="0%") == [("lookup", "zone", "100% coverage")]  # % is a character, not a wildcard
    assert await values(q="city 24", limit=30) == [("lookup", "city", f"City 24{n:02d}") for n in range(100)]
    assert await values(q="tomsk", kind="synonym") == []


@pytest.mark.usefixtures("items")
async def test_bad_paging_is_422_with_the_reason(app_client: httpx.AsyncClient, admin: Auth) -> None:
    h = admin[1]
    for limit in (0, 5001, "many"):
        r = await app_client.get(URL, headers=h, params={"limit": limit})
        assert r.status_code == 422 and "limit" in r.text, r.text
    assert (await app_client.get(URL, headers=h, params={"limit": 5000})).status_code == 200
    assert (await app_client.get(URL, headers=h, params={"q": "x" * 201})).status_code == 422
    good = (await app_client.get(URL, headers=h, params={"limit": 1})).json()["next_cursor"]
    tampered = [
        "!!!", good[:-3], "bm90IGpzb24",  # not base64; cut short; "not json"
        paging.encode_cursor("data-items", "lookup", "city", 5),  # one value short
        paging.encode_cursor("data-items", "lookup", "city", "5", 10),  # a position that is no number
        paging.encode_cursor("data-items", "lookup", "city", 5, 2**70),  # an id out of range
        paging.encode_cursor("data-items", "nope", "city", 5, 10),  # no such kind
        paging.encode_cursor("data-items", "lookup", None, 5, 10),
        "e30",  # {}
    ]
    for cursor in tampered:
        r = await app_client.get(URL, headers=h, params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.json()["message"] == "cursor is not one this API returned", (cursor, r.text)
    r = await app_client.get(URL, headers=h, params={"cursor": paging.encode_cursor("newest", None, 10)})
    assert r.status_code == 422 and r.json()["message"] == "cursor is not one this API returned"
    ticket_like = paging.encode_cursor("waiting", "2026-01-01T00:00:00+00:00", 10, 4, 5)
    r = await app_client.get(URL, headers=h, params={"cursor": ticket_like})
    assert r.status_code == 422 and r.json()["details"]["reason"] == "bad_cursor", r.text
    # A ticket list's cursor is refused the other way round too.
    r = await app_client.get("/tickets", headers=h, params={"cursor": good})
    assert r.status_code == 422, r.text
