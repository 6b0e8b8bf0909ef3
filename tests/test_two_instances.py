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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.settings import Settings
from core.attachments.settings import AttachmentStorageSettings
from core.nlu_admin import repository as nlu_repo
from nlu.embedded import ACTIVE_FILE
from tests.conftest import SIM_BLOCK_QUESTION, make_settings, responses

pytestmark = [pytest.mark.slow(seconds=120), pytest.mark.postgres]
Auth = tuple[Any, dict[str, str]]


@pytest.fixture
def db_url(pg_migrated: str | None) -> str:  # PostgreSQL only: several instances need a shared database server
    if pg_migrated is None:
        pytest.skip("SWITCHBOARD_TEST_POSTGRES_URL is not set")
    return pg_migrated


@contextlib.asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, responses=responses, configure_logs=False)
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
