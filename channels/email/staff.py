"""Mail to the team (the weekly summary): straight through SMTP, not the customer outbox (no ticket behind it)."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from channels.email.compose import set_body
from channels.email.settings import EmailChannelSettings, SmtpSettings
from core.db.base import utcnow
from core.summaries.schemas import PermanentMailError, StaffMail

_ADDRESS = re.compile(r"^(?!.*=\?)[^@\s<>,;]{1,200}@[^@\s<>,;]{1,255}$")
_CONFIG_CODES = {530, 534, 535, 538}  # our own setup (authentication, TLS): fixable, so retried


class SmtpStaffMailer:
    """`core.summaries.schemas.MailSender` over the e-mail channel's SMTP settings (or the staff mail's own)."""

    def __init__(self, settings: EmailChannelSettings) -> None:
        self.settings = settings

    @property
    def smtp(self) -> SmtpSettings:
        return self.settings.staff.smtp or self.settings.smtp

    @property
    def from_address(self) -> str | None:
        return self.settings.staff.from_address or self.settings.sender_address()

    def describe(self) -> str | None:
        if not self.from_address:
            return None
        return f"{self.smtp.host}:{self.smtp.port} ({self.smtp.security}) as {self.from_address}"

    def compose(self, mail: StaffMail) -> EmailMessage:
        sender = self.from_address
        if not sender:
            raise PermanentMailError("no From address for staff mail (channels.email.staff.from_address)")
        msg = EmailMessage()
        msg["From"] = Address(display_name=self.settings.staff.from_name, addr_spec=sender)
        msg["To"] = mail.to
        msg["Subject"] = re.sub(r"\s+", " ", mail.subject)
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = f"<{mail.message_id}>"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: a report, not a person; nobody should auto-reply
        msg["X-Auto-Response-Suppress"] = "All"
        set_body(msg, mail.text, mail.html, mail.language)
        return msg

    async def send(self, mail: StaffMail) -> None:
        if not _ADDRESS.match(mail.to):
            raise PermanentMailError(f"not an email address: {mail.to!r}")
        message = self.compose(mail)
        smtp = self.smtp
        try:
            await aiosmtplib.send(
                message, sender=self.from_address, recipients=[mail.to], hostname=smtp.host, port=smtp.port,
                username=smtp.username, password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.security == "ssl", start_tls=smtp.security == "starttls", cert_bundle=smtp.ca_file,
                timeout=smtp.timeout_seconds)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if exc.recipients and all(500 <= r.code < 600 for r in exc.recipients):
                raise PermanentMailError("; ".join(f"{r.code} {r.message}" for r in exc.recipients)[:300]) from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and exc.code not in _CONFIG_CODES:
                raise PermanentMailError(f"{exc.code} {exc.message}"[:300]) from exc
            raise

    def message_id_domain(self) -> str:
        sender = self.from_address or "switchboard.invalid"
        return self.settings.staff.message_id_domain or self.settings.message_id_domain or sender.rsplit("@", 1)[-1]
