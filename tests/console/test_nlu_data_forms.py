"""Issue 18, scope 1: the imported Rasa data is editable in the console and the admin API - synonyms, regexes and
lookup values; an example's entity annotations (as Rasa markup); an intent's answer variants per language - with
the reasons for bad input, admin-only forms with CSRF, audit, and training and export using what was edited.

One app per database for the whole module (each test uses its own intents and names)."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from core.audit.models import AuditEntry
from core.db.session import create_engine, create_sessionmaker
from core.nlu_admin import service as nlu_admin
from core.nlu_admin.models import NluDataItem, NluExample
from core.users.models import Role
from nlu.data import loads
from nlu.embedded import EmbeddedEngine
from nlu.protocol import ExampleEntity, TrainingData, TrainingExample
from tests.conftest import BACKENDS, _truncate_pg, make_settings, make_user, responses
from tests.console.conftest import csrf_of, login

DATA = "/console/admin/intents-data"
INTENTS = "/console/admin/intents"
FLASH = re.compile(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>')
Sessionmaker = async_sessionmaker[AsyncSession]


class Module:
    """The module's app on one database, its sessionmaker, and clients signed in as an admin and as an agent."""

    def __init__(self, app: Any, sessionmaker: Sessionmaker, admin: httpx.AsyncClient, agent: httpx.AsyncClient,
                 api: dict[str, str], agent_api: dict[str, str]) -> None:
        self.app, self.sessionmaker, self.admin, self.agent = app, sessionmaker, admin, agent
        self.api, self.agent_api = api, agent_api


@pytest.fixture(scope="module", params=BACKENDS)
def mod_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> str:
    """The module's database: a copy of the migrated SQLite file, or the run's PostgreSQL database (emptied)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("nlu_data_db") / "db.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str | None = request.getfixturevalue("pg_migrated")
    if url is None:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture(scope="module")
async def mod(mod_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Module]:
    tmp = tmp_path_factory.mktemp("nlu_data")
    url = mod_url
    if not url.startswith("sqlite"):
        await _truncate_pg(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    _, admin_token = await make_user(sessionmaker, Role.admin, "admin@test.example")
    _, agent_token = await make_user(sessionmaker, Role.agent, "agent@test.example", "technical")
    # The real embedded engine (untrained until a test trains it): training must use the edited data.
    app = create_app(make_settings(url, data_dir=tmp), nlu_engine=EmbeddedEngine(tmp / "models", cv_folds=2),
                     responses=responses, configure_logs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as admin, \
                httpx.AsyncClient(transport=transport, base_url="http://testserver") as agent:
            await login(admin, "admin@test.example")
            await login(agent, "agent@test.example")
            yield Module(app, sessionmaker, admin, agent, {"Authorization": f"Bearer {admin_token}"},
                         {"Authorization": f"Bearer {agent_token}"})
    await engine.dispose()


async def submit(client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any]) -> tuple[str, str]:
    """Post a form from its page (CSRF token from the page) and return the flash (kind, text) after the redirect."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text[:300]
    r = await client.post(action, data={"csrf_token": csrf_of(page.text), **data},
                          headers={"Referer": f"http://testserver{page_url}"})
    assert r.status_code == 303, r.text[:300]
    after = await client.get(r.headers["location"])
    match = FLASH.search(after.text)
    assert match, after.text[:500]
    return match.group(1), html.unescape(match.group(2))


async def items(mod: Module, kind: str) -> list[tuple[str, str]]:
    async with mod.sessionmaker() as s:
        rows = (await s.scalars(select(NluDataItem).where(NluDataItem.kind == kind)
                                .order_by(NluDataItem.name, NluDataItem.position))).all()
    return [(r.name, r.value) for r in rows]


async def item_id(mod: Module, kind: str, name: str, value: str) -> int:
    async with mod.sessionmaker() as s:
        found = await s.scalar(select(NluDataItem.id).where(NluDataItem.kind == kind, NluDataItem.name == name,
                                                            NluDataItem.value == value))
    assert found is not None
    return int(found)


async def audit_actions(mod: Module, prefix: str) -> list[str]:
    async with mod.sessionmaker() as s:
        rows = (await s.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith(prefix)))).all()
    return list(rows)


async def test_only_admins_with_the_csrf_token_change_the_data(mod: Module) -> None:
    async with mod.sessionmaker() as s, s.begin():
        await nlu_admin.create_intent(s, "guarded", "", None)
        await nlu_admin.add_example(s, "guarded", "hello there", None)
        await nlu_admin.set_responses(s, "guarded", {"en": "Hi"}, None)
    forms = [(DATA + "/items", {"kind": "lookup", "name": "city", "value": "Omsk"}),
             (DATA + "/items/1", {"name": "city", "value": "Tomsk"}), (DATA + "/items/1/delete", {}),
             (f"{INTENTS}/guarded/examples/1/markup", {"markup": "[hello](greet) there"}),
             (f"{INTENTS}/guarded/variants/en", {"text": "Hello"}),
             (f"{INTENTS}/guarded/variants/en/0", {"op": "delete"})]
    assert (await mod.agent.get(DATA)).status_code == 403
    token = csrf_of((await mod.agent.get("/console/inbox")).text)
    for action, data in forms:
        assert (await mod.agent.post(action, data={"csrf_token": token, **data})).status_code == 403, action
        assert (await mod.admin.post(action, data=data)).status_code == 403, action
        assert (await mod.admin.post(action, data={"csrf_token": "forged", **data})).status_code == 403, action
    assert await items(mod, "lookup") == []
    async with mod.sessionmaker() as s, s.begin():
        s.add(NluDataItem(kind="lookup", name="city", value="Omsk", position=0))
    city = await item_id(mod, "lookup", "city", "Omsk")
    example = (await mod.admin.get("/admin/nlu/intents/guarded", headers=mod.api)).json()["examples"][0]["id"]
    api_calls = [("POST", "/admin/nlu/data-items", {"kind": "lookup", "name": "city", "value": "Tomsk"}),
                 ("PATCH", f"/admin/nlu/data-items/{city}", {"value": "Tomsk"}),
                 ("DELETE", f"/admin/nlu/data-items/{city}", None),
                 ("PUT", "/admin/nlu/intents/guarded/responses/en", {"variants": ["x"]}),
                 ("PUT", f"/admin/nlu/examples/{example}/annotations", {"markup": "[hello](greet) there"})]
    for method, url, body in api_calls:  # a signed-in agent: the admin-only check refuses, not the sign-in
        r = await mod.agent.request(method, url, headers=mod.agent_api, json=body)
        assert r.status_code == 403, (method, url, r.text)
    assert await items(mod, "lookup") == [("city", "Omsk")]
    async with mod.sessionmaker() as s, s.begin():
        await s.execute(delete(NluDataItem).where(NluDataItem.id == city))
    async with mod.sessionmaker() as s:
        intent = await nlu_admin.get_intent(s, "guarded")
        assert [r.text for r in intent.responses] == ["Hi"] and intent.examples[0].entities is None


async def test_synonyms_regexes_and_lookups_are_added_edited_and_deleted(mod: Module) -> None:
    ok = await submit(mod.admin, DATA, DATA + "/items", {"kind": "synonym", "name": "Saint Petersburg",
                                                          "value": "  Piter "})
    assert ok == ("info", "Added Piter to Saint Petersburg.")
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "synonym", "name": "Saint Petersburg", "value": "SPb"})
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "regex", "name": "zip", "value": r"\b\d{6}\b"})
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "lookup", "name": "city", "value": "Omsk"})
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "lookup", "name": "city", "value": "Tomsk"})

    refusals = [
        ({"kind": "regex", "name": "zip2", "value": r"(\d{6}"},
         "The regex does not compile: missing ), unterminated subpattern at position 0."),
        ({"kind": "lookup", "name": "city", "value": "   "}, "The value is empty."),
        ({"kind": "lookup", "name": "", "value": "Omsk"}, "The name is empty."),
        ({"kind": "lookup", "name": "city", "value": "omsk"}, "city already has the value “omsk”."),
        ({"kind": "synonym", "name": "Moscow", "value": "piter"},
         "“piter” is already a synonym of Saint Petersburg: a variant maps to one value."),
        ({"kind": "lookup", "name": "my city", "value": "Omsk"},
         "“my city” is not an entity name: no spaces, brackets, commas, colons or quotes."),
        ({"kind": "lookup", "name": "city", "value": "x" * 1001}, "The value is longer than 1000 characters."),
        ({"kind": "regex", "name": "zip", "value": "a\nb"}, "A value is one line."),
        ({"kind": "table", "name": "city", "value": "Omsk"}, "Choose synonym, regex or lookup."),
        ({"kind": "regex", "name": "word", "value": r"(\w+\s?)+$"},
         "A repeated part of the regex repeats something of variable length inside, as in (a+)+: matching it "
         "can take forever on a long message. Write it without the nesting (a+ for (a+)+)."),
    ]
    for data, reason in refusals:
        assert await submit(mod.admin, DATA, DATA + "/items", data) == ("error", reason), data
    # The page lists every value with its own forms; hostile text is shown as text.
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "lookup", "name": "city", "value": "<b>Kazan</b>"})
    page = (await mod.admin.get(DATA)).text
    assert "&lt;b&gt;Kazan&lt;/b&gt;" in page and "<b>Kazan</b>" not in page
    assert page.count('data-lookup="city"') == 3 and 'value="\\b\\d{6}\\b"' in page

    omsk = await item_id(mod, "lookup", "city", "Omsk")
    assert await submit(mod.admin, DATA, f"{DATA}/items/{omsk}", {"name": "city", "value": "Omsk city"}) == \
        ("info", "Saved.")
    assert await submit(mod.admin, DATA, f"{DATA}/items/{omsk}", {"name": "city", "value": "Tomsk"}) == \
        ("error", "city already has the value “Tomsk”.")
    zip_id = await item_id(mod, "regex", "zip", r"\b\d{6}\b")
    assert (await submit(mod.admin, DATA, f"{DATA}/items/{zip_id}", {"name": "zip", "value": "[a-"}))[1] \
        .startswith("The regex does not compile: unterminated character set")
    kazan = await item_id(mod, "lookup", "city", "<b>Kazan</b>")
    assert await submit(mod.admin, DATA, f"{DATA}/items/{kazan}/delete", {}) == ("info", "Deleted.")
    assert await submit(mod.admin, DATA, f"{DATA}/items/{kazan}/delete", {}) == \
        ("error", "This value no longer exists (deleted meanwhile?).")
    assert await items(mod, "lookup") == [("city", "Omsk city"), ("city", "Tomsk")]
    assert await items(mod, "synonym") == [("Saint Petersburg", "Piter"), ("Saint Petersburg", "SPb")]
    assert await items(mod, "regex") == [("zip", r"\b\d{6}\b")]
    assert sorted(set(await audit_actions(mod, "nlu.data."))) == ["nlu.data.add", "nlu.data.delete",
                                                                  "nlu.data.update"]
    # The same refusals through the API, with the reason and the rule's name.
    r = await mod.admin.post("/admin/nlu/data-items", headers=mod.api,
                             json={"kind": "regex", "name": "zip", "value": "(("})
    assert r.status_code == 422 and "does not compile" in r.text and "bad_regex" in r.text
    r = await mod.admin.post("/admin/nlu/data-items", headers=mod.api,
                             json={"kind": "synonym", "name": "Saint Petersburg", "value": "spb"})
    assert r.status_code == 409 and "already has the value" in r.text


async def test_the_intents_page_previews_large_tables_in_bounded_reads(mod: Module) -> None:
    """The intents page shows the first 100 names per kind, each with its first 50 values and how many more: a
    50,000-city lookup is not read whole on every view (the data page edits them all)."""
    async with mod.sessionmaker() as s, s.begin():
        s.add_all(NluDataItem(kind="lookup", name="cities_preview", value=f"city {n:04d}", position=n)
                  for n in range(700))
        s.add_all(NluDataItem(kind="synonym", name=f"canon {n:03d}", value=f"variant {n:03d}", position=0)
                  for n in range(130))
    try:
        page = (await mod.admin.get("/console/admin/intents")).text
    finally:  # the module's other tests count the data set's rows
        async with mod.sessionmaker() as s, s.begin():
            await s.execute(delete(NluDataItem).where(NluDataItem.name.in_(
                ["cities_preview", *(f"canon {n:03d}" for n in range(130))])))
    row = re.search(r'<tr data-lookup="cities_preview">.*?</tr>', page, re.S)
    assert row is not None and row[0].count("<code>city ") == 50 and "(+650)" in row[0]
    assert "<code>city 0049</code>" in row[0] and "city 0050" not in row[0]  # the first 50, in import order
    synonyms = len(re.findall(r'<tr data-synonym="', page))
    assert synonyms == 100  # other tests' synonyms sort before "canon ..." or after: 100 shown either way
    assert re.search(r'data-more="synonym">and \d+ more names', page)


async def test_a_big_lookup_table_shows_its_first_rows_and_a_filter_finds_the_rest(mod: Module) -> None:
    async with mod.sessionmaker() as s, s.begin():
        s.add_all(NluDataItem(kind="lookup", name="product", value=f"product {n:04d}", position=n) for n in range(600))
    page = (await mod.admin.get(DATA)).text
    assert 'data-truncated="lookup"' in page and re.search(r"Showing the first 500 of 6\d\d:", page)
    assert page.count('data-lookup="') == 500 and 'value="product 0599"' not in page  # other tests' rows too
    found = (await mod.admin.get(DATA, params={"q": "  PRODUCT 0599 "})).text
    assert found.count('data-lookup="product"') == 1 and 'value="product 0599"' in found
    assert 'data-truncated="lookup"' not in found
    assert (await mod.admin.get(DATA, params={"q": "<script>x" * 100})).status_code == 200
    # The filter and the duplicate check run in SQL, case-insensitively in Russian too (and % is no wildcard).
    r = await mod.admin.post("/admin/nlu/data-items", headers=mod.api,
                             json={"kind": "lookup", "name": "product", "value": "Тариф Ёлка 100%"})
    assert r.status_code == 201, r.text
    r = await mod.admin.post("/admin/nlu/data-items", headers=mod.api,
                             json={"kind": "lookup", "name": "product", "value": "тариф ёлка 100%"})
    assert r.status_code == 409 and r.json()["details"]["reason"] == "duplicate"
    found = (await mod.admin.get(DATA, params={"q": "ТАРИФ ЁЛКА 100%"})).text
    assert found.count('data-lookup="product"') == 1
    assert (await mod.admin.get(DATA, params={"q": "product 0%"})).text.count('data-lookup="product"') == 0
    async with mod.sessionmaker() as s, s.begin():
        await s.execute(delete(NluDataItem).where(NluDataItem.name == "product"))


async def test_api_edits_synonyms_regexes_and_lookups(mod: Module) -> None:
    h = mod.api
    r = await mod.admin.post("/admin/nlu/data-items", headers=h, json={"kind": "lookup", "name": "fruit",
                                                                        "value": "apple"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["kind"] == "lookup" and created["position"] == 0
    r = await mod.admin.post("/admin/nlu/data-items", headers=h, json={"kind": "lookup", "name": "fruit",
                                                                        "value": "pear"})
    assert r.json()["position"] == 1
    r = await mod.admin.patch(f"/admin/nlu/data-items/{created['id']}", headers=h, json={"value": "plum"})
    assert r.status_code == 200 and r.json()["value"] == "plum"
    listed = (await mod.admin.get("/admin/nlu/data-items?kind=lookup", headers=h)).json()["items"]
    assert [(i["name"], i["value"]) for i in listed if i["name"] == "fruit"] == [("fruit", "plum"), ("fruit", "pear")]
    for body in ({"kind": "lookup", "name": "fruit"}, {"kind": "nope", "name": "a", "value": "b"},
                 {"kind": "lookup", "name": "fruit", "value": "x", "extra": 1},
                 {"kind": "lookup", "name": "fruit", "value": "x" * 6000}):
        assert (await mod.admin.post("/admin/nlu/data-items", headers=h, json=body)).status_code == 422, body
    assert (await mod.admin.get("/admin/nlu/data-items?kind=nope", headers=h)).status_code == 422
    r = await mod.admin.patch(f"/admin/nlu/data-items/{created['id']}", headers=h, json={"value": ""})
    assert r.status_code == 422
    assert r.json() == {"error": "validation_failed", "message": "the value is empty",
                        "details": {"reason": "empty_value"}}
    assert (await mod.admin.patch("/admin/nlu/data-items/999999", headers=h, json={"value": "a"})).status_code == 404
    assert (await mod.admin.delete(f"/admin/nlu/data-items/{created['id']}", headers=h)).status_code == 204
    assert (await mod.admin.delete(f"/admin/nlu/data-items/{created['id']}", headers=h)).status_code == 404


ANNOTATED = ('fly from [Moscow]{"entity": "city", "role": "from"} to '
             '[Piter]{"entity": "city", "value": "Saint Petersburg"}')


async def test_entity_annotations_are_edited_as_rasa_markup_and_exported_as_entered(mod: Module) -> None:
    async with mod.sessionmaker() as s, s.begin():
        await nlu_admin.create_intent(s, "book_flight", "", None)
        await nlu_admin.create_intent(s, "other_intent", "", None)
        example = await nlu_admin.add_example(s, "book_flight", "fly from Moscow to Piter", None)
        await nlu_admin.add_example(s, "book_flight", "fly to Omsk", None)
        foreign = await nlu_admin.add_example(s, "other_intent", "something else", None)
        example.meta = {"sentiment": "neutral"}
        example_id, foreign_id = example.id, foreign.id
    url = f"{INTENTS}/book_flight"
    action = f"{url}/examples/{example_id}/markup"
    assert await submit(mod.admin, url, action, {"markup": ANNOTATED}) == ("info", "Saved: 2 entity annotations.")
    async with mod.sessionmaker() as s:
        stored = await s.get(NluExample, example_id)
        assert stored is not None and stored.text == "fly from Moscow to Piter"
        assert stored.entities == [{"start": 9, "end": 15, "entity": "city", "role": "from"},
                                   {"start": 19, "end": 24, "entity": "city", "value": "Saint Petersburg"}]
    page = (await mod.admin.get(url)).text
    shown = re.search(rf'id="markup-text-{example_id}" name="markup" value="([^"]*)"', page)
    assert shown and html.unescape(shown.group(1)) == ANNOTATED  # the form shows the markup to edit
    assert '<mark class="entity" title="city role=from">Moscow' in page
    assert 'Rasa metadata: <code>{"sentiment": "neutral"}</code>' in page  # kept, and shown (tojson escapes <>&')
    exported = (await mod.admin.get("/console/admin/intents-data/export")).text
    again = loads(exported, "yaml")
    book = next(i for i in yaml.safe_load(exported)["nlu"] if i.get("intent") == "book_flight")
    assert book["examples"][0] == {"text": ANNOTATED, "metadata": {"sentiment": "neutral"}}  # as entered
    assert next(e for e in again.examples if e.text == "fly from Moscow to Piter").entities == (
        ExampleEntity(9, 15, "city", role="from"), ExampleEntity(19, 24, "city", value="Saint Petersburg"))

    refusals = [
        ("fly from [Moscow](city to Piter", "An annotation is not closed near “fly from [Moscow](city to Piter”: "
         "write [text](entity), or [text] followed by the JSON of the entity."),
        ('fly from [Moscow]{"entity": city}', "The annotation cannot be read: the example: entity annotation "
         "'[Moscow]{\"entity\": city}' is not valid JSON"),
        ("fly from [Moscow](a b)", "The annotation cannot be read: the example: entity annotation "
         "'[Moscow](a b)' needs an entity name (no spaces or brackets)"),
        ('[Moscow]{"entity": "city", "colour": "red"}', "The annotation cannot be read: the example: entity "
         "annotation '[Moscow]{\"entity\": \"city\", \"colour\": \"red\"}': unknown keys ['colour']"),
        ("   ", "An example needs some text."),
        ("[fly to Omsk](city)", "The intent already has this example."),
        ('fly from [Moscow]{"entity": "city", "role": [1]}', "The annotation cannot be read: the example: entity "
         "annotation '[Moscow]{\"entity\": \"city\", \"role\": [1]}': role must be a string"),
        ("x" * 1001, "An example has at most 1000 characters."),
    ]
    for markup, reason in refusals:
        assert await submit(mod.admin, url, action, {"markup": markup}) == ("error", reason), markup
    assert (await submit(mod.admin, url, f"{url}/examples/{foreign_id}/markup", {"markup": "x"}))[0] == "error"
    # Rasa 1's inline synonym `(entity:value)` is read, and kept in Rasa 3's form (what export writes).
    await submit(mod.admin, url, action, {"markup": "fly from Moscow to [Piter](city:Saint Petersburg)"})
    shown = re.search(rf'id="markup-text-{example_id}" name="markup" value="([^"]*)"', (await mod.admin.get(url)).text)
    assert shown and html.unescape(shown.group(1)) == \
        'fly from Moscow to [Piter]{"entity": "city", "value": "Saint Petersburg"}'
    # Removing the markup removes the annotations; the text may be corrected in the same form.
    assert await submit(mod.admin, url, action, {"markup": "fly from Moscow to Saint Petersburg"}) == \
        ("info", "Saved: 0 entity annotations.")
    async with mod.sessionmaker() as s:
        stored = await s.get(NluExample, example_id)
        assert stored is not None and stored.entities is None
        assert stored.text == "fly from Moscow to Saint Petersburg"
    assert "nlu.example.annotate" in await audit_actions(mod, "nlu.example.")

    h = mod.api
    r = await mod.admin.put(f"/admin/nlu/examples/{example_id}/annotations", headers=h,
                            json={"markup": "fly from [Moscow](city) to [Saint Petersburg](city)"})
    assert r.status_code == 200, r.text
    assert r.json()["markup"] == "fly from [Moscow](city) to [Saint Petersburg](city)"
    assert r.json()["entities"] == [{"start": 9, "end": 15, "entity": "city"},
                                    {"start": 19, "end": 35, "entity": "city"}]
    got = (await mod.admin.get(f"/admin/nlu/examples/{example_id}/annotations", headers=h)).json()
    assert got["markup"] == r.json()["markup"]
    r = await mod.admin.put(f"/admin/nlu/examples/{example_id}/annotations", headers=h,
                            json={"markup": "[Moscow](city"})
    assert r.status_code == 422 and "not closed" in r.text
    r = await mod.admin.put(f"/admin/nlu/examples/{example_id}/annotations", headers=h,
                            json={"markup": "[fly to Omsk](city)"})
    assert r.status_code == 409
    assert (await mod.admin.put("/admin/nlu/examples/999999/annotations", headers=h,
                                json={"markup": "a"})).status_code == 404
    assert (await mod.admin.put(f"/admin/nlu/examples/{example_id}/annotations", headers=h,
                                json={"markup": "a" * 5001})).status_code == 422


async def variants(mod: Module, name: str, lang: str) -> list[str]:
    async with mod.sessionmaker() as s:
        intent = await nlu_admin.get_intent(s, name)
    return [r.text for r in sorted(intent.responses, key=lambda r: r.position) if r.language == lang]


async def test_answer_variants_are_listed_added_edited_reordered_and_deleted(mod: Module) -> None:
    async with mod.sessionmaker() as s, s.begin():
        await nlu_admin.create_intent(s, "greet_variants", "", None)
        await nlu_admin.add_example(s, "greet_variants", "hello bot", None)
    url = f"{INTENTS}/greet_variants"
    base = f"{url}/variants/en"
    for text in ("Hello!", "Hi there!", "Good day!"):
        assert await submit(mod.admin, url, base, {"text": text}) == ("info", "Saved.")
    assert await variants(mod, "greet_variants", "en") == ["Hello!", "Hi there!", "Good day!"]
    page = (await mod.admin.get(url)).text
    assert re.findall(r'data-variant="en-(\d)"', page) == ["0", "1", "2"]
    await submit(mod.admin, url, f"{base}/2", {"op": "up", "was": "Good day!"})
    await submit(mod.admin, url, f"{base}/0", {"op": "down", "was": "Hello!"})
    assert await variants(mod, "greet_variants", "en") == ["Good day!", "Hello!", "Hi there!"]
    await submit(mod.admin, url, f"{base}/1", {"op": "save", "text": "Hello, how can I help?", "was": "Hello!"})
    await submit(mod.admin, url, f"{base}/2", {"op": "delete", "was": "Hi there!"})
    assert await variants(mod, "greet_variants", "en") == ["Good day!", "Hello, how can I help?"]
    refusals = [
        (f"{base}/0", {"op": "save", "text": "  "}, "Variant 1 is empty."),
        (f"{base}/0", {"op": "save", "text": "Hello, how can I help?"}, "Variant 2 repeats an earlier one."),
        (f"{base}/5", {"op": "delete"}, "There is no variant 6 (changed meanwhile?)."),
        (f"{base}/0", {"op": "delete", "was": "Stale text"},
         "The answer was changed meanwhile: reload the page and try again."),
        (f"{base}/0", {"op": "explode"}, "Unknown action on a variant."),
        (f"{base}/0", {"op": "save", "text": "y" * 5001}, "Variant 1 is longer than 5000 characters."),
        (f"{url}/variants/de", {"text": "Hallo"}, "Answers are in Russian or English."),
        (base, {"text": "Good day!"}, "Variant 3 repeats an earlier one."),
    ]
    for action, data, reason in refusals:
        assert await submit(mod.admin, url, action, data) == ("error", reason), data
    await submit(mod.admin, url, f"{base}/1", {"op": "delete"})
    assert await submit(mod.admin, url, f"{base}/0", {"op": "delete"}) == \
        ("error", "An answer keeps at least one variant: to remove the answer, use \"Remove the answer\".")
    assert mod.app.state.switchboard.catalog.lookup("greet_variants", "en") == "Good day!"  # reloaded
    # A new language starts with its first variant.
    await submit(mod.admin, url, f"{url}/variants/ru", {"text": "Здравствуйте!"})
    await submit(mod.admin, url, f"{url}/variants/ru", {"text": "Добрый день!"})
    await submit(mod.admin, url, f"{url}/variants/ru/1", {"op": "up"})

    h = mod.api
    r = await mod.admin.get("/admin/nlu/intents/greet_variants/responses/ru", headers=h)
    assert r.json() == {"intent": "greet_variants", "language": "ru", "variants": ["Добрый день!", "Здравствуйте!"]}
    r = await mod.admin.put("/admin/nlu/intents/greet_variants/responses/ru", headers=h,
                            json={"variants": ["Привет!", "Добрый день!", "Здравствуйте!"]})
    assert r.status_code == 200 and r.json()["variants"] == ["Привет!", "Добрый день!", "Здравствуйте!"]
    for body, status in (({"variants": []}, 422), ({"variants": ["a", ""]}, 422), ({"variants": ["a", "a"]}, 409),
                         ({"variants": "a"}, 422), ({"variants": ["a"] * 101}, 422),
                         ({"variants": [f"v{i}" for i in range(51)]}, 422)):
        r = await mod.admin.put("/admin/nlu/intents/greet_variants/responses/ru", headers=h, json=body)
        assert r.status_code == status, (body, r.text)
    assert (await mod.admin.put("/admin/nlu/intents/greet_variants/responses/de", headers=h,
                                json={"variants": ["Hallo"]})).status_code == 422
    assert (await mod.admin.get("/admin/nlu/intents/nope_intent/responses/ru", headers=h)).status_code == 404
    exported = (await mod.admin.get("/admin/nlu/export", headers=h)).text
    data = loads(exported, "yaml")
    assert data.variants("greet_variants", "ru") == ["Привет!", "Добрый день!", "Здравствуйте!"]
    assert data.variants("greet_variants", "en") == ["Good day!"]
    assert "nlu.responses.variants" in await audit_actions(mod, "nlu.responses.")


async def test_refusals_are_said_in_russian(mod: Module) -> None:
    await mod.admin.post("/console/language", data={"csrf_token": csrf_of((await mod.admin.get(DATA)).text),
                                                    "language": "ru"},
                         headers={"Referer": f"http://testserver{DATA}"})
    try:
        page = (await mod.admin.get(DATA)).text
        assert "Основное значение" in page and "Шаблон" in page
        assert await submit(mod.admin, DATA, DATA + "/items", {"kind": "regex", "name": "zip", "value": "(("}) == \
            ("error", "Регулярное выражение не компилируется: missing ), unterminated subpattern at position 1.")
        # The answers form: the service's check (one limit for the API, the forms and the variants), in words.
        async with mod.sessionmaker() as s, s.begin():
            await nlu_admin.create_intent(s, "long_answer", "", None)
        assert await submit(mod.admin, f"{INTENTS}/long_answer", f"{INTENTS}/long_answer/answers",
                            {"ru": " " + "ы" * nlu_admin.MAX_ANSWER_CHARS + " ", "en": "y" * 5001}) == \
            ("error", "Вариант 1 длиннее 5000 символов.")
    finally:
        await mod.admin.post("/console/language", data={"csrf_token": csrf_of((await mod.admin.get(DATA)).text),
                                                        "language": "en"},
                             headers={"Referer": f"http://testserver{DATA}"})


TARIFF_EXAMPLES = ["tell me about the turbo tariff", "how much is turbo per month", "what is in the mega tariff",
                   "mega tariff price", "i want the turbo plan", "is mega available", "price of turbo",
                   "compare mega and turbo"]
HOURS_EXAMPLES = ["when are you open", "what are your opening hours", "are you open on sunday",
                  "until what time do you work", "what time do you close", "opening times please",
                  "do you work at night", "what are your hours"]


async def wait_job(client: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    for _ in range(600):
        r = await client.get(f"/console/admin/training/jobs/{job_id}/status")
        if r.json()["finished"]:
            return dict(r.json())
        await asyncio.sleep(0.05)
    raise AssertionError("training did not finish")


async def test_training_uses_synonyms_and_regexes_edited_in_the_console(mod: Module) -> None:
    """A regex added in the console extracts its entity, and a synonym added there maps the value, after
    retraining from the console (the real embedded engine, trained on the database's data)."""
    async with mod.sessionmaker() as s, s.begin():
        for name, texts in (("tariff_info", TARIFF_EXAMPLES), ("office_hours", HOURS_EXAMPLES)):
            await nlu_admin.create_intent(s, name, "", None)
            for text in texts:
                await nlu_admin.add_example(s, name, text, None)
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "regex", "name": "tariff", "value": r"\b(turbo|mega)\b"})
    await submit(mod.admin, DATA, DATA + "/items", {"kind": "synonym", "name": "Turbo Max", "value": "turbo"})
    async with mod.sessionmaker() as s:
        data = await nlu_admin.training_data(s)
    assert data.regexes["tariff"] == [r"\b(turbo|mega)\b"] and data.synonyms["Turbo Max"] == ["turbo"]

    page = await mod.admin.get("/console/admin/training")
    r = await mod.admin.post("/console/admin/training", data={"csrf_token": csrf_of(page.text), "activate": "on"},
                             headers={"Referer": "http://testserver/console/admin/training"})
    assert r.status_code == 303
    job = await wait_job(mod.admin, int(r.headers["location"].rsplit("/", 1)[1]))
    assert job["state"] == "succeeded", job
    engine = mod.app.state.switchboard.nlu.current
    parsed = await engine.parse("how much does the mega tariff cost")
    assert [(e.type, e.value) for e in parsed.entities if e.type == "tariff"] == [("tariff", "mega")]
    parsed = await engine.parse("what about turbo")
    assert [(e.type, e.value) for e in parsed.entities if e.type == "tariff"] == [("tariff", "Turbo Max")]

    # The same engine trained without the edits finds neither: the edits are what made the difference.
    async with mod.sessionmaker() as s:
        data = await nlu_admin.training_data(s)
    bare = TrainingData(examples=[TrainingExample(e.text, e.intent) for e in data.examples])
    other = EmbeddedEngine(Path(mod.app.state.switchboard.settings.data_dir) / "bare", cv_folds=2)
    await other.train(bare)
    assert not [e for e in (await other.parse("what about turbo")).entities if e.type == "tariff"]
