"""Two instances on one PostgreSQL with different data directories and no shared files (issue 21): an upload on
one downloads from the other, a model trained on one answers on the other, a rollback on either reaches both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.attachments.settings import AttachmentStorageSettings
from core.nlu_admin import repository as nlu_repo
from nlu.embedded import ACTIVE_FILE
from tests.channels.email.conftest import dovecot, email_settings, fixture_bytes  # noqa: F401 (the fixture)
from tests.channels.email.test_channel import channel_of, inbound_count, mail
from tests.conftest import SIM_BLOCK_QUESTION, keyword_engine, make_settings, responses
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow(seconds=120), pytest.mark.postgres]
Auth = tuple[Any, dict[str, str]]


@pytest.fixture
def db_url(pg_migrated: str | None) -> str:  # PostgreSQL only: several instances need a shared database server
    if pg_migrated is None:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    return pg_migrated


@contextlib.asynccontextmanager
async def instance(settings: Settings, nlu_engine: Any = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, nlu_engine=nlu_engine, responses=responses, configure_logs=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def nlu_of(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/health")).json()["nlu"]
    return body


async def until_version(client: httpx.AsyncClient, version: str) -> None:
    async with asyncio.timeout(60):
        while (await nlu_of(client))["version"] != version:
            await asyncio.sleep(0.05)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_two_instances_share_nothing_but_the_database(
        db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        trained_model_dir: Path, admin: Auth, agent: Auth) -> None:
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    shutil.copytree(trained_model_dir, one_dir / "models")  # the first instance has a model; the second nothing
    common: dict[str, Any] = {"attachments": AttachmentStorageSettings(backend="postgres"),
                              "model_sync_seconds": 0.1, "seed_nlu_data": True}
    first = (one_dir / "models" / ACTIVE_FILE).read_text().strip()

    async with instance(make_settings(db_url, data_dir=one_dir, **common)) as one:
        assert (await nlu_of(one))["version"] == first
        async with instance(make_settings(db_url, data_dir=two_dir, **common)) as two:
            # The second instance fetched the active version from the database instead of training its own.
            assert (await nlu_of(two))["version"] == first
            assert (two_dir / "models" / first / "model.joblib").is_file()
            assert (two_dir / "models" / ACTIVE_FILE).read_text().strip() == first

            # An agent's upload on one is downloadable on the other; neither wrote it to its disk.
            data = os.urandom(300_000)
            info = (await one.post("/attachments", headers=agent[1],
                                   files={"file": ("скан.pdf", b"%PDF-1.4" + data, "application/pdf")})).json()
            got = await two.get(f"/attachments/{info['storage_key']}", headers=agent[1])
            assert got.status_code == 200 and got.content == b"%PDF-1.4" + data
            part = await two.get(f"/attachments/{info['storage_key']}", headers={**agent[1], "Range": "bytes=8-15"})
            assert part.status_code == 206 and part.content == data[:8]
            assert files_under(one_dir / "attachments") == files_under(two_dir / "attachments") == []

            # A model trained on one answers on the other.
            job = (await one.post("/admin/nlu/train", headers=admin[1], json={"activate": True})).json()
            async with asyncio.timeout(300):
                while job["state"] not in ("succeeded", "failed"):
                    await asyncio.sleep(0.2)
                    job = (await one.get(f"/admin/nlu/jobs/{job['id']}", headers=admin[1])).json()
            assert job["state"] == "succeeded", job["error"]
            trained = job["version"]
            await until_version(two, trained)
            assert not (one_dir / "models" / trained).samefile(two_dir / "models" / trained)
            holders = [c.app.state.switchboard.nlu for c in (one, two)]  # type: ignore[attr-defined]
            answers = [await h.current.parse(SIM_BLOCK_QUESTION) for h in holders]
            assert answers[0].intent == answers[1].intent and answers[1].intent is not None
            listed = {v["version"] for v in (await two.get("/admin/nlu/versions", headers=admin[1])).json()}
            assert {first, trained} <= listed

            # A rollback on the other instance goes back to the version before, on both.
            r = await two.post("/admin/nlu/versions/rollback", headers=admin[1])
            assert r.status_code == 200, r.text
            async with sessionmaker() as session:
                assert await nlu_repo.active_version(session) == first
            await until_version(one, first)
            await until_version(two, first)


async def test_a_mailbox_read_by_one_continues_on_the_other_and_its_attachments_download_anywhere(
        db_url: str, db_engine: Any, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path,
        dovecot: Any, agent: Auth) -> None:  # noqa: F811 (the imported fixture)
    from channels.config import ChannelsSettings, RestChannelSettings
    from core.tickets.models import Direction
    from core.tickets.models import Message as DbMessage
    from tests.conftest import REST_KEY

    user = dovecot.add_user()
    box = dovecot.mailbox_settings(user, poll_seconds=0.3, use_idle=False)
    channels = ChannelsSettings(rest=RestChannelSettings(api_key=REST_KEY),  # type: ignore[arg-type]
                                email=email_settings(dovecot, None, box, standby_seconds=0.2))
    common: dict[str, Any] = {"attachments": AttachmentStorageSettings(backend="postgres"), "channels": channels}
    one_ctx = instance(make_settings(db_url, data_dir=tmp_path / "one", **common), keyword_engine())
    one = await one_ctx.__aenter__()
    running = True
    try:
        reader = channel_of(one.app).workers[user]  # type: ignore[attr-defined]
        await wait_for(lambda: reader.health.state == "connected", "the first instance reads the mailbox")
        async with instance(make_settings(db_url, data_dir=tmp_path / "two", **common), keyword_engine()) as two:
            standby = channel_of(two.app).workers[user]  # type: ignore[attr-defined]
            await wait_for(lambda: standby.health.state == "standby", "the second instance stands by")
            await dovecot.append(user, fixture_bytes("attachments.eml"))
            await wait_for(lambda: inbound_count(sessionmaker), "the first instance ingests the mail")
            async with sessionmaker() as session:
                message = (await session.scalars(select(DbMessage).where(
                    DbMessage.direction == Direction.inbound))).one()
            for item in message.attachments:  # stored by the first instance's mail parser, served by the second
                got = await two.get(f"/attachments/{item['storage_key']}", headers=agent[1])
                assert got.status_code == 200 and len(got.content) == item["size"]

            running = False
            await one_ctx.__aexit__(None, None, None)  # the reader stops: the other reads on from the cursor
            await wait_for(lambda: standby.health.state == "connected", "the second instance takes over")
            await dovecot.append(user, mail("after-1@example.org", "Hello again"))
            await wait_for(lambda: _at_least(inbound_count(sessionmaker), 2), "the next mail, on the second")
            assert standby.ingested == 1 and reader.ingested == 1  # nothing read twice
            assert files_under(tmp_path / "one" / "attachments") == files_under(tmp_path / "two" / "attachments") == []
    finally:
        if running:
            await one_ctx.__aexit__(None, None, None)


async def _at_least(value: Any, n: int) -> bool:
    return bool(await value >= n)
