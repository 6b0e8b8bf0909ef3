"""One mailbox: connect, backfill everything past the checkpoint, then IDLE (or poll); a job on the registry, which
reconnects it with the jobs' backoff and keeps it on one instance (a lease).

The checkpoint (last UID under one UIDVALIDITY) advances only after the messages up to it are committed by
the ingest pipeline; a crash before that means a redelivery, which the idempotent ingest turns into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aioimaplib
from sqlalchemy.exc import InterfaceError, OperationalError

from channels.base import ChannelContext, ChannelHealth
from channels.email import repository
from channels.email.inbound import CHANNEL, parse_to_inbound
from channels.email.parser import UnparseableEmail, clean_text
from channels.email.settings import EmailChannelSettings, ImapMailboxSettings
from core.attachments.store import SavesBlocking
from core.db.base import utcnow
from core.db.session import finish_even_if_cancelled
from core.ingest.schemas import InboundMessage
from core.jobs import Backoff, Job, JobContext, JobHealth

log = logging.getLogger(__name__)

STOP_PUSH = aioimaplib.STOP_WAIT_SERVER_PUSH
# Failures of the infrastructure (database or network down): retried forever, never counted against a mail.
TRANSIENT = (OSError, TimeoutError, OperationalError, InterfaceError, aioimaplib.AioImapException)


class ImapError(Exception):
    """The IMAP server refused a command."""


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    internaldate: datetime | None
    size: int | None
    body: bytes | None


_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_LITERAL = re.compile(rb"\{(\d+)\}$")


def parse_fetch(lines: Sequence[Any]) -> list[FetchedMail]:
    """aioimaplib's FETCH response lines -> one FetchedMail per message."""
    mails: list[FetchedMail] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not isinstance(line, bytes) or not re.match(rb"^\d+ FETCH \(", line):
            continue
        meta = line
        body: bytes | None = None
        if _LITERAL.search(line) and i < len(lines) and isinstance(lines[i], bytearray | bytes):
            body = bytes(lines[i])
            i += 1
            if i < len(lines) and isinstance(lines[i], bytes) and not re.match(rb"^\d+ FETCH \(", lines[i]):
                meta += b" " + lines[i]  # items after the literal (some servers put UID last)
                i += 1
        uid = _UID.search(meta)
        if uid is None:
            continue
        size = _SIZE.search(meta)
        date = _INTERNALDATE.search(meta)
        internaldate = None
        if date is not None:
            with contextlib.suppress(ValueError):
                internaldate = datetime.strptime(date.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)
        mails.append(FetchedMail(uid=int(uid.group(1)), internaldate=internaldate,
                                 size=int(size.group(1)) if size else None, body=body))
    return mails


def _uid_set(uids: Sequence[int]) -> str:
    """Compact UID set: 1,2,3,7 -> 1:3,7."""
    ranges: list[str] = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


class MailboxWorker:
    """Reads one mailbox for as long as the channel runs; its failures stay its own."""

    def __init__(self, mailbox: ImapMailboxSettings, settings: EmailChannelSettings, ctx: ChannelContext,
                 on_change: Callable[[], None]) -> None:
        self.mailbox = mailbox
        self.settings = settings
        self.ctx = ctx
        self.health = ChannelHealth()
        self._on_change = on_change
        self._client: aioimaplib.IMAP4 | None = None
        self._lost = False
        self._lost_event = asyncio.Event()  # the same, for waits that must end when the connection goes
        self.stopping = False  # set by the channel before it cancels this worker
        self._failures: dict[tuple[int, int], int] = {}
        self.ingested = 0
        self.quarantined = 0
        self.idle_wakeups = 0
        self._synced = False

    # --- health -------------------------------------------------------------------------------------------

    def _set(self, state: str, error: str | None = None, **details: Any) -> None:
        if error is not None:
            self.health.error(error)
        else:
            self.health.state = state
        self.health.details.update(details)
        self._on_change()

    # --- the loop -----------------------------------------------------------------------------------------

    @property
    def job_name(self) -> str:
        return f"email:{self.mailbox.name}"

    def job(self) -> Job:
        """The reader as a job: one reader per mailbox across workers and instances (the others stand by and take
        over when the reader's lease ends: it stops, crashes or loses its database connection); every failure is
        reported in health and retried after the jobs' backoff."""
        return Job(self.job_name, body=self._read, lease=self.lease_name, standby_seconds=self.settings.standby_seconds,
                   backoff=Backoff(initial=self.settings.reconnect_initial_seconds,
                                   maximum=max(self.settings.reconnect_initial_seconds,
                                               self.settings.reconnect_max_seconds)),
                   on_change=self._job_changed)

    def _job_changed(self, job: JobHealth) -> None:
        if job.state == "backing_off" and job.last_error:
            self._set("error", error=job.last_error[:300], reconnect_attempt=job.failures)  # the registry logs it
        elif job.state == "standby":
            if self.health.state != "standby":
                log.info("mailbox read by another instance; standing by", extra={"mailbox": self.mailbox.name})
            self._set("standby")

    async def _read(self, ctx: JobContext) -> None:
        """One connection's life: connect, backfill, then IDLE (or poll) until it fails or the channel stops."""
        if self.health.state not in ("error", "standby"):
            self._set("starting")
        self._synced = False
        try:
            await self._session(ctx)
        finally:
            await self._disconnect()

    async def _connect(self) -> aioimaplib.IMAP4:
        self._lost = False
        self._lost_event.clear()
        box = self.mailbox
        timeout = self.settings.imap_timeout_seconds
        # IMAP4 with a TLS context, not IMAP4_SSL: that class takes no connection-lost callback.
        client = aioimaplib.IMAP4(box.host, box.port, timeout=timeout, conn_lost_cb=self._connection_lost,
                                  ssl_context=self._tls() if box.security == "ssl" else None)
        self._client = client
        await client.wait_hello_from_server()
        if box.security == "starttls":
            await self._starttls(client)
        response = await client.login(box.username, box.password.get_secret_value())
        if response.result != "OK":
            raise ImapError(f"login refused: {_lines(response)}")
        return client

    async def try_login(self) -> None:
        """Connect, log in and log out once (the console's connection test); raises what connecting raises."""
        try:
            await self._connect()
        finally:
            await self._disconnect()

    def _tls(self) -> ssl.SSLContext:
        """Certificate and host name verified, against the system's authorities or the mailbox's `ca_file`."""
        return ssl.create_default_context(cafile=self.mailbox.ca_file)

    async def _starttls(self, client: aioimaplib.IMAP4) -> None:
        """Upgrade the plain connection to TLS before anything secret is sent (RFC 3501 STARTTLS)."""
        protocol = client.protocol
        if not client.has_capability("STARTTLS"):
            raise ImapError("the server does not offer STARTTLS; use security 'ssl' (port 993) or fix the server")
        async with asyncio.timeout(self.settings.imap_timeout_seconds):
            response = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
            if response.result != "OK":
                raise ImapError(f"STARTTLS refused: {_lines(response)}")
            protocol.transport = await asyncio.get_running_loop().start_tls(
                protocol.transport, protocol, self._tls(), server_hostname=self.mailbox.host)
            # What the server offered before TLS is forgotten (RFC 3501 6.2.1): ask again.
            await protocol.capability()

    def _connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._lost_event.set()
        client = self._client
        if client is not None and client.protocol is not None:
            # Wake an IDLE wait: the loop sees `_lost` and reconnects.
            client.protocol.idle_queue.put_nowait(STOP_PUSH)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if client.has_pending_idle():
                client.idle_done()
            if not self._lost:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives as the inner call ends, and the worker would not stop.
                async with asyncio.timeout(2):
                    await client.logout()
        with contextlib.suppress(Exception):
            transport = client.protocol.transport
            if transport is not None:
                transport.close()
        for pending in list(client.tasks):  # what aioimaplib still waits for, e.g. an IDLE start never answered
            pending.cancel()

    @property
    def lease_name(self) -> str:
        """The mailbox itself, not its name in the settings: two instances may call one mailbox differently."""
        box = self.mailbox
        return f"email:imap:{box.username}@{box.host}:{box.port}/{box.folder}"

    async def _session(self, ctx: JobContext) -> None:
        client = await self._connect()
        uidvalidity, uidnext = await self._select(client)
        await self.sync(client, uidvalidity, uidnext)
        self._synced = True
        ctx.succeeded()  # it works: a fresh outage starts again with a short wait
        idle = self.mailbox.use_idle and client.has_capability("IDLE")
        self._set("connected", mode="idle" if idle else "poll", reconnect_attempt=0)
        while not self.stopping:
            if idle:
                await self._idle(client)
            else:
                await asyncio.sleep(self.mailbox.poll_seconds)
            if self._lost:
                raise ConnectionError("connection to the IMAP server lost")
            if not idle:
                # NOOP lets the server report new mail and proves the connection is alive.
                await client.noop()
            await ctx.check_lease()  # raises LeaseLost: reconnect, which takes the lease again or stands by
            uidvalidity, uidnext = await self._select(client)
            await self.sync(client, uidvalidity, uidnext)
            ctx.beat()
            if self.health.state != "connected":
                self._set("connected")

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait until the server reports new mail or the poll interval passes (a safety net for lost pushes)."""
        # aioimaplib's IDLE start waits for the server's "+ idling" with no timeout: a connection lost before it
        # arrives would hold the worker forever. The wait ends when the connection goes too.
        starting = asyncio.ensure_future(client.idle_start(timeout=self.mailbox.poll_seconds))
        lost = asyncio.ensure_future(self._lost_event.wait())
        try:
            await asyncio.wait({starting, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not starting.done():
                starting.cancel()
        if starting.cancelled():
            return  # the session sees `_lost` and reconnects
        task = starting.result()
        try:
            while True:
                push = await client.wait_server_push(timeout=self.mailbox.poll_seconds + 10)
                if push == STOP_PUSH or self._lost:
                    break
                if any(isinstance(line, bytes) and line.endswith(b"EXISTS") for line in push):
                    self.idle_wakeups += 1
                    break
        finally:
            if not self._lost and client.has_pending_idle():
                client.idle_done()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.imap_timeout_seconds):
                        await task

    async def _select(self, client: aioimaplib.IMAP4) -> tuple[int, int | None]:
        response = await client.select(self.mailbox.folder)
        if response.result != "OK":
            raise ImapError(f"cannot select {self.mailbox.folder!r}: {_lines(response)}")
        text = b"\n".join(line for line in response.lines if isinstance(line, bytes))
        validity = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
        uidnext = re.search(rb"\[UIDNEXT (\d+)\]", text)
        if validity is None:
            raise ImapError("server reported no UIDVALIDITY")
        return int(validity.group(1)), int(uidnext.group(1)) if uidnext else None

    async def _search(self, client: aioimaplib.IMAP4, criteria: str) -> list[int]:
        response = await client.uid_search(criteria, charset=None)
        if response.result != "OK":
            raise ImapError(f"UID SEARCH {criteria} failed: {_lines(response)}")
        uids: list[int] = []
        for line in response.lines[:-1]:
            if isinstance(line, bytes):
                uids.extend(int(t) for t in line.replace(b"SEARCH", b"").split() if t.isdigit())
        return sorted(set(uids))

    # --- backfill -------------------------------------------------------------------------------------------

    async def sync(self, client: aioimaplib.IMAP4, uidvalidity: int, uidnext: int | None) -> None:
        """Ingest everything past the checkpoint, in UID order, advancing the checkpoint as commits land."""
        name = self.mailbox.name
        async with self.ctx.sessionmaker() as session:
            checkpoint = await repository.get_checkpoint(session, name)
        if checkpoint is None or checkpoint.uidvalidity != uidvalidity:
            # Where a fresh checkpoint starts: past everything already in the folder.
            floor = (uidnext - 1) if uidnext else max(await self._search(client, "ALL"), default=0)
        if checkpoint is None:
            policy = self.mailbox.first_start
            if policy == "none":
                uids = []
            else:
                uids = await self._search(client, "ALL" if policy == "all" else "UNSEEN")
            last_uid = 0
        elif checkpoint.uidvalidity != uidvalidity:
            # UIDs were renumbered: re-read what may be new since the last sync (a day of margin, as SEARCH
            # SINCE has a day's resolution); the Message-ID idempotency drops what was ingested before.
            since = (checkpoint.updated_at - timedelta(days=1)).strftime("%d-%b-%Y")
            log.warning("UIDVALIDITY changed; rescanning", extra={"mailbox": name, "old": checkpoint.uidvalidity,
                                                                  "new": uidvalidity, "since": since})
            uids = await self._search(client, f"SINCE {since}")
            last_uid = 0
        else:
            last_uid = checkpoint.last_uid
            uids = [u for u in await self._search(client, f"UID {last_uid + 1}:*") if u > last_uid]
        self.health.details.update(uidvalidity=uidvalidity, last_uid=last_uid, backlog=len(uids))
        done = last_uid
        try:
            for start in range(0, len(uids), self.settings.fetch_batch):
                chunk = uids[start:start + self.settings.fetch_batch]
                done = await self._process_chunk(client, uidvalidity, chunk, done)
                await self._save(uidvalidity, done)
                self.health.details.update(last_uid=done, backlog=max(0, len(uids) - start - len(chunk)))
        except BaseException:
            with contextlib.suppress(Exception):
                await self._save(uidvalidity, done)
            raise
        if checkpoint is None or checkpoint.uidvalidity != uidvalidity:
            done = max(done, floor)
            await self._save(uidvalidity, done)
            self.health.details.update(last_uid=done)

    async def _save(self, uidvalidity: int, last_uid: int) -> None:
        async def save() -> None:
            async with self.ctx.sessionmaker() as session, session.begin():
                await repository.save_checkpoint(session, self.mailbox.name, uidvalidity, last_uid)

        # A stop (the job is cancelled) waits for the checkpoint's transaction instead of abandoning it.
        await finish_even_if_cancelled(save())

    async def _process_chunk(self, client: aioimaplib.IMAP4, uidvalidity: int, chunk: list[int], done: int) -> int:
        """Ingest one fetched batch; returns the highest UID up to which every mail is committed or quarantined."""
        sizes = await self._fetch(client, chunk, "(UID RFC822.SIZE)")
        limit = self.settings.max_message_bytes
        small = [m.uid for m in sizes if m.size is None or m.size <= limit]
        large = {m.uid: m.size for m in sizes if m.size is not None and m.size > limit}
        fetched = await self._fetch(client, small, "(UID INTERNALDATE BODY.PEEK[])") if small else []
        mails = [m for m in fetched if m.body is not None]
        prepared = await asyncio.to_thread(self._prepare, uidvalidity, mails, self.ctx.files.blocking())
        completed: set[int] = {uid for uid in chunk if uid not in large and uid not in prepared}  # expunged
        for uid in chunk:
            if uid in large:
                headers = await self._fetch(client, [uid], "(UID BODY.PEEK[HEADER])")
                await self._quarantine(f"message too large: {large[uid]} bytes (limit {limit})",
                                       headers[0].body if headers and headers[0].body else b"")
                completed.add(uid)
        # One lane per sender: a customer's mails are ingested in order (a reply threads onto its parent),
        # different customers in parallel.
        lanes: dict[str, list[int]] = {}
        for uid in sorted(prepared):
            outcome = prepared[uid]
            key = outcome.sender.external_id if isinstance(outcome, InboundMessage) else f"quarantine:{uid}"
            lanes.setdefault(key, []).append(uid)
        semaphore = asyncio.Semaphore(self.settings.ingest_concurrency)
        bodies = {m.uid: m.body or b"" for m in mails}

        async def run_lane(uids: list[int]) -> None:
            for uid in uids:
                async with semaphore:
                    await self._handle(uidvalidity, uid, prepared[uid], bodies[uid])
                completed.add(uid)

        results = await asyncio.gather(*(run_lane(uids) for uids in lanes.values()), return_exceptions=True)
        for uid in chunk:  # the checkpoint never passes a mail that is not committed
            if uid not in completed:
                break
            done = max(done, uid)
        for result in results:
            if isinstance(result, BaseException):
                if done:
                    with contextlib.suppress(Exception):
                        await self._save(uidvalidity, done)
                raise result
        return done

    async def _fetch(self, client: aioimaplib.IMAP4, uids: list[int], items: str) -> list[FetchedMail]:
        response = await client.uid("fetch", _uid_set(uids), items)
        if response.result != "OK":
            raise ImapError(f"UID FETCH failed: {_lines(response)}")
        return parse_fetch(response.lines)

    def _prepare(self, uidvalidity: int, mails: list[FetchedMail],
                 files: SavesBlocking) -> dict[int, InboundMessage | str]:
        """Parse a batch (blocking: runs in a worker thread): an InboundMessage, or why to quarantine the mail."""
        prepared: dict[int, InboundMessage | str] = {}
        for mail in mails:
            raw_ref = f"imap:{self.mailbox.name}/{uidvalidity}/{mail.uid}"
            try:
                prepared[mail.uid] = parse_to_inbound(
                    mail.body or b"", self.settings, files=files, mailbox=self.mailbox.name,
                    raw_ref=raw_ref, received_at=mail.internaldate or utcnow(),
                )
            except UnparseableEmail as exc:
                prepared[mail.uid] = f"unparseable email ({raw_ref}): {exc}"
            except Exception as exc:  # a parser bug must not stop the mailbox: keep the mail for a human
                log.exception("email parsing failed", extra={"mailbox": self.mailbox.name, "uid": mail.uid})
                prepared[mail.uid] = f"parsing failed ({raw_ref}): {type(exc).__name__}: {exc}"
        return prepared

    async def _handle(self, uidvalidity: int, uid: int, outcome: InboundMessage | str, body: bytes) -> None:
        if isinstance(outcome, str):
            await self._quarantine(outcome, body)
            return
        try:
            await self.ctx.ingest.ingest(outcome)
        except TRANSIENT:
            raise
        except Exception as exc:
            key = (uidvalidity, uid)
            self._failures[key] = self._failures.get(key, 0) + 1
            if self._failures[key] < self.settings.ingest_attempts:
                raise
            log.exception("ingest keeps failing; quarantining", extra={"mailbox": self.mailbox.name, "uid": uid})
            await self._quarantine(f"ingest failed {self._failures.pop(key)} times ({outcome.raw_ref}): "
                                   f"{type(exc).__name__}: {exc}", body)
            return
        self.ingested += 1
        self.health.received()

    async def _quarantine(self, reason: str, payload: bytes) -> None:
        # As text both databases store: raw 8-bit bytes escaped, and NUL too (PostgreSQL refuses it in text,
        # and a quarantine that fails would stop the mailbox on that mail for ever).
        text = payload.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
        await self.ctx.ingest.quarantine(CHANNEL, clean_text(reason), text, "message/rfc822")
        self.quarantined += 1


def _lines(response: Any) -> str:
    return " ".join(
        line.decode(errors="replace") if isinstance(line, bytes | bytearray) else str(line)
        for line in response.lines
    )[:300]

