"""`switchboard attachments migrate`, run as an operator runs it: progress, resumable, safe to run again."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from core.attachments.backends import PostgresBackend
from core.attachments.store import AttachmentStore
from core.db.session import create_engine, create_sessionmaker
from tests.api.test_cli import run

pytestmark = pytest.mark.slow(seconds=60)  # four CLI processes


def test_migrate_to_the_database_with_progress_and_again(tmp_path: Path) -> None:
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    files = AttachmentStore(tmp_path / "attachments")
    keys = [str(files.save(f"file-{i}.pdf", "application/pdf", b"%PDF" + bytes([i]) * 70_000,
                           namespace="uploads").storage_key) for i in range(3)]

    first = run(["attachments", "migrate", "--to", "postgres"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3/3 files: 3 copied" in first.stdout and "0 failed" in first.stdout
    again = run(["attachments", "migrate", "--to", "postgres"], tmp_path)
    assert again.returncode == 0 and "3/3 files: 0 copied (0.0 MB), 3 already there" in again.stdout

    async def stored() -> list[str]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3")
        try:
            backend = PostgresBackend(create_sessionmaker(engine))
            return [hashlib.sha256(await backend.read(key)).hexdigest() for key in keys]
        finally:
            await engine.dispose()

    assert asyncio.run(stored()) == [hashlib.sha256(files.read(key)).hexdigest() for key in keys]
    assert all((files.root / key).is_file() for key in keys)  # the source is left as it was

    refused = run(["attachments", "migrate", "--to", "local"], tmp_path)
    assert refused.returncode == 2 and "two different ones" in refused.stderr
