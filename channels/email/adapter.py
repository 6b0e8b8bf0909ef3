"""The email channel: one IMAP worker per mailbox in, SMTP out."""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path
from typing import Any, ClassVar

import aiosmtplib

from channels.base import ChannelContext, ChannelHealth, PermanentSendError
from channels.email import repository
from channels.email.compose import compose, sender_name
from channels.email.imap import MailboxWorker
from channels.email.inbound import CHANNEL
from channels.email.settings import EmailChannelSettings, ImapMailboxSettings
from core.errors import NotFoundError
from core.outbox.schemas import OutboundEnvelope

log = logging.getLogger(__name__)

# No RFC 2047 opener: EmailMessage would decode it inside the address and refuse the CR/LF it may hold.
_ADDRESS = re.compile(r"^(?!.*=\?)[^@\s<>,;]{1,200}@[^@\s<>,;]{1,255}$")
# 5xx answers that are about our own setup (authentication, TLS): fixable, so retried rather than failed.
_CONFIG_CODES = {530, 534, 535, 538}


class EmailChannel:
    """Reads every configured mailbox independently; sends replies through one SMTP server."""

    kind: ClassVar[str] = CHANNEL

    def __init__(self, settings: EmailChannelSettings, ctx: ChannelContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.health = ChannelHealth()
        self.workers = {m.name: MailboxWorker(m, settings, ctx, self._refresh_health) for m in settings.mailboxes}
        self.smtp_health = ChannelHealth(state="connected")
        self._running = False

    def _refresh_health(self) -> None:
        states = [w.health.state for w in self.workers.values()]
        if not self._running:  # stopped: a reader's late word (its connection closing) must not say "starting"
            self.health.state = "stopped"
        elif not states:
            self.health.state = "connected"
        elif all(s == "connected" for s in states):
            self.health.state = "connected"
        elif all(s in ("connected", "standby") for s in states):
            # Standby: another instance reads that mailbox (one reader per mailbox); nothing is wrong.
            self.health.state = "connected" if "connected" in states else "standby"
        elif all(s == "error" for s in states):
            self.health.state = "error"
        elif any(s == "error" for s in states):
            self.health.state = "degraded"
        else:
            self.health.state = "starting"
        errors = [(w.health.last_error_at, f"{name}: {w.health.last_error}")
                  for name, w in self.workers.items() if w.health.state == "error" and w.health.last_error_at]
        if errors:
            self.health.last_error_at, self.health.last_error = max(errors)
        received = [w.health.last_message_at for w in self.workers.values() if w.health.last_message_at]
        self.health.last_message_at = max(received) if received else self.health.last_message_at
        self.health.details["mailboxes"] = {name: w.health.as_dict() for name, w in self.workers.items()}
        self.health.details["smtp"] = self.smtp_health.as_dict()

    async def start(self) -> None:
        """Each mailbox is a job of its own on the app's registry: its failures stay its own."""
        if not self._running:
            self._running = True
            for worker in self.workers.values():
                worker.stopping = False
                self.ctx.jobs.start(worker.job())
        self._refresh_health()

    async def stop(self) -> None:
        for worker in self.workers.values():
            worker.stopping = True
        self._running = False
        await self.ctx.jobs.stop([w.job_name for w in self.workers.values()])
        for worker in self.workers.values():
            worker.health.state = "stopped"
        self._refresh_health()
        self.health.state = "stopped"

    # --- outbound -------------------------------------------------------------------------------------------

    async def _mailbox_of(self, envelope: OutboundEnvelope) -> ImapMailboxSettings | None:
        """The mailbox the customer wrote to (the reply goes out from it, so the conversation stays in one place).

        One mailbox: that one, without a query. Else the mailbox the thread's mail came in through; when that is
        not known (no In-Reply-To, a mailbox since removed), one that brings its own SMTP server, unless the
        channel has an SMTP server of its own: never the channel's default SMTP settings (127.0.0.1:587)."""
        mailboxes = self.settings.mailboxes
        if len(mailboxes) == 1:
            return mailboxes[0]
        refs = [r for r in [envelope.in_reply_to, *envelope.references] if r]
        if refs and mailboxes:
            async with self.ctx.sessionmaker() as session:
                name = await repository.mailbox_of(session, CHANNEL, refs)
            for mailbox in mailboxes:
                if mailbox.name == name:
                    return mailbox
        if "smtp" in self.settings.model_fields_set:
            return None
        return next((m for m in mailboxes if m.smtp is not None), None)

    async def _load_attachments(self, items: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
        files = []
        for item in items:
            key = item.get("storage_key")
            if not key:
                continue
            try:
                data = await self.ctx.files.read(str(key))
            except NotFoundError as exc:
                raise PermanentSendError(f"attachment {key!r} is not in the attachment store") from exc
            name = Path(str(item.get("filename") or str(key).rsplit("/", 1)[-1])).name
            ctype = str(item.get("content_type") or mimetypes.guess_type(name)[0] or "application/octet-stream")
            files.append((name, ctype, data))
        return files

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        recipient = envelope.recipient.strip()
        if not _ADDRESS.match(recipient):
            raise PermanentSendError(f"not an email address: {recipient!r}")
        mailbox = await self._mailbox_of(envelope)
        from_address = (mailbox.address if mailbox and mailbox.address else None) or self.settings.sender_address()
        if not from_address:
            raise PermanentSendError("no From address configured for the email channel")
        domain = self.settings.message_id_domain or from_address.rsplit("@", 1)[-1]
        message, message_id = compose(envelope, from_address=from_address,
                                      from_name=sender_name(envelope, self.settings.from_name), domain=domain)
        if envelope.attachments:
            for name, ctype, data in await self._load_attachments(envelope.attachments):
                maintype, _, subtype = ctype.partition("/")
                message.add_attachment(data, maintype=maintype or "application", subtype=subtype or "octet-stream",
                                       filename=name)
        smtp = mailbox.smtp if mailbox and mailbox.smtp else self.settings.smtp
        try:
            await aiosmtplib.send(
                message, sender=from_address, recipients=[recipient], hostname=smtp.host, port=smtp.port,
                username=smtp.username, password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.security == "ssl", start_tls=True if smtp.security == "starttls" else False,
                cert_bundle=smtp.ca_file, timeout=smtp.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)[:300]
            if codes and all(500 <= c < 600 for c in codes):
                raise PermanentSendError(f"recipient refused: {reason}") from exc
            self.smtp_health.error(f"recipient deferred: {reason}")
            self._refresh_health()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"{exc.code} {exc.message}"[:300]
            if 500 <= exc.code < 600 and exc.code not in _CONFIG_CODES:
                raise PermanentSendError(f"SMTP refused the message: {reason}") from exc
            self.smtp_health.error(f"SMTP answered {reason}")
            self._refresh_health()
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.smtp_health.error(f"{type(exc).__name__}: {exc}")
            self._refresh_health()
            raise
        self.smtp_health.ok()
        self._refresh_health()
        return message_id
