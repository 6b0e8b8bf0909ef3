"""What the weekly summary is made of and what sends it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from core.summaries.models import MailStatus


@dataclass(frozen=True, slots=True)
class StaffMail:
    """A mail to a member of the team (not through the customer outbox: no ticket, no message row)."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str  # the same on every attempt: a resend after a crash is recognised by mail clients
    language: str


class PermanentMailError(Exception):
    """The server refused the mail for good (an unknown recipient): not retried."""


class MailSender(Protocol):
    """Sends one staff mail; raises PermanentMailError when retrying cannot help, anything else to retry."""

    async def send(self, mail: StaffMail) -> None: ...

    def describe(self) -> str | None:
        """Where mail goes ("smtp.example:587 as reports@example"), or None when sending is not configured."""


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int
    name: str
    email: str
    language: str
    role: str


@dataclass(frozen=True, slots=True)
class MailRow:
    """A queued or sent summary mail as the admin page lists it."""

    id: int
    week_start: date
    address: str
    language: str
    status: MailStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class SummaryOverview:
    """The admin page: the switch, who gets it, when next, where from, and the recent mails."""

    enabled: bool
    updated_at: datetime | None
    recipients: list[Recipient]
    next_run: datetime | None
    sender: str | None
    mails: list[MailRow]
