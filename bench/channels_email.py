"""Email ingest throughput from a real Dovecot: cold-start backfill of N appended messages.

    .venv/bin/python bench/channels_email.py [--messages 1000] [--postgres URL]

For each backend (SQLite always; PostgreSQL when --postgres or SWITCHBOARD_TEST_POSTGRES_URL is set) the
messages are appended to a fresh Dovecot mailbox first; then the app starts (its real IngestService, the
email adapter from the registry, the keyword NLU engine of the tests, no outbox worker) and the clock runs
until the mailbox checkpoint covers the last UID. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench.ingest import admin_sql, private_database  # noqa: E402
from channels.config import ChannelsSettings  # noqa: E402
from channels.email.adapter import EmailChannel  # noqa: E402
from channels.email.repository import get_checkpoint  # noqa: E402
from channels.email.settings import EmailChannelSettings, ImapMailboxSettings  # noqa: E402
from core.attachments.backends import LocalBackend  # noqa: E402
from core.attachments.store import AttachmentStore  # noqa: E402
from core.config import CoreSettings  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import create_engine  # noqa: E402
from core.tickets.models import Message  # noqa: E402
from tests.channels.email.conftest import PASSWORD, Dovecot, start_dovecot, stop_dovecot  # noqa: E402
from tests.conftest import keyword_engine, responses  # noqa: E402

TEXTS = [
    "Hello, my internet is down since the morning, the router blinks red.",
    "Здравствуйте! Где мой заказ ORD-2024-{n:04d}? Жду уже неделю.",
    "Please tell me your office hours.",
    "Добрый день, пришёл счёт на 1500 рублей, а тариф стоит 700. Почему?",
    "I want to talk to an operator about my contract.",
]


def make_mail(i: int) -> bytes:
    customer = i % 250
    body = TEXTS[i % len(TEXTS)].format(n=i)
    if i % 7 == 0:
        body += "\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@support.example> wrote:\n> previous answer\n"
    raw = (f"From: Customer {customer} <customer{customer}@example.org>\nTo: support@support.example\n"
           f"Subject: Request number {i}\nDate: Thu, 26 Nov 2026 10:00:00 +0000\n"
           f"Message-ID: <bench-{i}-{random.getrandbits(32):08x}@example.org>\nMIME-Version: 1.0\n"
           f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n")
    return raw.replace("\n", "\r\n").encode()


async def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def run_backend(name: str, url: str, dovecot: Dovecot, user: str, count: int, data_dir: Path) -> dict[str, Any]:
    box = ImapMailboxSettings(name=user, host=dovecot.host, port=dovecot.port, security="none", username=user,
                              password=SecretStr(PASSWORD), address="support@support.example", first_start="all")
    email = EmailChannelSettings(enabled=True, mailboxes=[box], from_address="support@support.example")
    settings = Settings(database_url=url, data_dir=data_dir, workers_enabled=False, log_level="WARNING",
                        log_json=False, core=CoreSettings(), channels=ChannelsSettings(email=email))
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False)
    started = time.perf_counter()
    async with app.router.lifespan_context(app):
        state = app.state.switchboard
        adapter = state.channels.get("email")
        assert isinstance(adapter, EmailChannel)
        worker = adapter.workers[user]
        # Watch the worker in memory: polling the database would compete with the ingest for connections.
        while True:
            if int(worker.health.details.get("last_uid", 0)) >= count and worker.health.state == "connected":
                break
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"backfill did not finish: {worker.health.as_dict()}")
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        async with state.sessionmaker() as session:
            checkpoint = await get_checkpoint(session, user)
            if checkpoint is None or checkpoint.last_uid < count:
                raise RuntimeError("checkpoint not persisted")
            stored = await session.scalar(select(func.count()).select_from(Message).where(
                Message.channel == "email", Message.direction == "inbound"))
    return {"backend": name, "messages": count, "stored": int(stored or 0), "seconds": elapsed,
            "rate": count / elapsed, "quarantined": worker.quarantined}


async def core_ceiling(name: str, url: str, mails: list[bytes], data_dir: Path, concurrency: int) -> float:
    """The same mails, already parsed, straight into IngestService with the adapter's sender lanes: the
    rate the core allows on this machine right now, i.e. the ceiling of the email channel."""
    from channels.email.inbound import parse_to_inbound
    from core.db.base import utcnow
    from core.db.session import create_sessionmaker
    from core.events import EventBus
    from core.ingest.service import IngestService

    settings = EmailChannelSettings()
    files = AttachmentStore(data_dir / "attachments")
    inbound = [parse_to_inbound(m, settings, files=files, mailbox="x", raw_ref="r", received_at=utcnow())
               for m in mails]
    engine = create_engine(url)
    service = IngestService(create_sessionmaker(engine), keyword_engine, EventBus(), CoreSettings(),
                            responses=responses)
    lanes: dict[str, list[Any]] = {}
    for item in inbound:
        lanes.setdefault(item.sender.external_id, []).append(item)
    semaphore = asyncio.Semaphore(concurrency)

    async def lane(items: list[Any]) -> None:
        for item in items:
            async with semaphore:
                await service.ingest(item)

    started = time.perf_counter()
    await asyncio.gather(*(lane(items) for items in lanes.values()))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return len(mails) / elapsed


class NullIngest:
    """Accepts every message at once: isolates the adapter's own cost (IMAP fetch, parsing, checkpoints)."""

    async def ingest(self, inbound: Any) -> None:
        return None

    async def quarantine(self, *args: Any, **kwargs: Any) -> int:
        return 0


async def adapter_only(dovecot: Dovecot, user: str, count: int, tmp: Path) -> float:
    from channels.base import ChannelContext
    from core.db.session import create_sessionmaker
    from core.events import EventBus

    url = f"sqlite+aiosqlite:///{tmp}/adapter-only.sqlite3"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    box = ImapMailboxSettings(name=user, host=dovecot.host, port=dovecot.port, security="none", username=user,
                              password=SecretStr(PASSWORD), first_start="all")
    ctx = ChannelContext(ingest=NullIngest(), bus=EventBus(),  # type: ignore[arg-type]
                         sessionmaker=create_sessionmaker(engine), data_dir=tmp / "adapter-only",
                         files=LocalBackend(AttachmentStore(tmp / "adapter-only" / "attachments")))
    channel = EmailChannel(EmailChannelSettings(enabled=True, mailboxes=[box]), ctx)
    started = time.perf_counter()
    await channel.start()
    worker = channel.workers[user]
    while True:
        if int(worker.health.details.get("last_uid", 0)) >= count and worker.health.state == "connected":
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    await channel.stop()
    await engine.dispose()
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    dovecot = start_dovecot()
    rows: list[dict[str, Any]] = []
    private: str | None = None  # the private PostgreSQL database, once made
    try:
        with tempfile.TemporaryDirectory(prefix="switchboard-bench-email-") as tmp:
            backends = [("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.sqlite3")]
            if args.postgres:
                # A private database on that server (dropped at the end), never the one the URL names.
                url, private = await asyncio.to_thread(private_database, args.postgres)
                backends.append(("postgresql", url))
            for name, url in backends:
                if name == "postgresql":
                    await reset_postgres(url)
                await asyncio.to_thread(upgrade, url)
                user = dovecot.add_user()
                mails = [make_mail(i) for i in range(args.messages)]
                t0 = time.perf_counter()
                await dovecot.append(user, *mails)
                append_seconds = time.perf_counter() - t0
                row = await run_backend(name, url, dovecot, user, args.messages, Path(tmp) / f"data-{name}")
                row["append_seconds"] = append_seconds
                if name == "postgresql":
                    await reset_postgres(url)
                    await asyncio.to_thread(upgrade, url)
                else:
                    url = f"sqlite+aiosqlite:///{tmp}/ceiling.sqlite3"
                    await asyncio.to_thread(upgrade, url)
                row["ceiling"] = await core_ceiling(name, url, mails, Path(tmp) / "ceiling",
                                                    EmailChannelSettings().ingest_concurrency)
                rows.append(row)
            user = dovecot.add_user()
            await dovecot.append(user, *(make_mail(i) for i in range(args.messages)))
            adapter_rate = await adapter_only(dovecot, user, args.messages, Path(tmp))
    finally:
        stop_dovecot(dovecot)
        if private is not None:
            await asyncio.to_thread(admin_sql, args.postgres, f'DROP DATABASE IF EXISTS "{private}" WITH (FORCE)')

    print()
    print("Email ingest from Dovecot, cold-start backfill (IMAP fetch -> parse -> ingest -> checkpoint)")
    print(f"{'backend':<12}{'messages':>10}{'stored':>10}{'seconds':>10}{'emails/s':>10}{'quarantined':>13}"
          f"{'core ingest/s':>15}")
    for r in rows:
        print(f"{r['backend']:<12}{r['messages']:>10}{r['stored']:>10}{r['seconds']:>10.2f}{r['rate']:>10.1f}"
              f"{r['quarantined']:>13}{r['ceiling']:>15.1f}")
    print(f"{'adapter only':<12}{args.messages:>10}{'-':>10}{args.messages / adapter_rate:>10.2f}"
          f"{adapter_rate:>10.1f}{0:>13}{'-':>15}")
    print("target: >= 200 emails/s; 'core ingest/s' = the same mails pre-parsed straight into IngestService "
          "(the ceiling);")
    print("'adapter only' = IMAP fetch + parse + checkpoints with a no-op ingest; "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    asyncio.run(main())
