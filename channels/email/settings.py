"""Settings of the email channel: the IMAP mailboxes it reads and the SMTP server it sends through."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from core.attachments.policy import BLOCKED_EXTENSIONS

DEFAULT_ALLOWED_TYPES = [
    "text/plain", "text/csv", "text/calendar", "application/pdf", "image/*", "audio/*", "video/*",
    "application/zip", "application/x-zip-compressed", "application/gzip", "application/x-7z-compressed",
    "application/x-rar-compressed", "application/vnd.rar",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*", "application/vnd.oasis.opendocument.*",
    "application/rtf", "text/rtf", "application/xml", "text/xml", "application/json",
    "message/rfc822", "application/octet-stream", "application/pkcs7-signature",
]


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    ca_file: str | None = Field(
        default=None, description="PEM file of the certificate authorities to trust instead of the system's.")
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)


class ImapMailboxSettings(BaseModel):
    """One mailbox the channel reads; its UID checkpoint is kept under `name`."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    host: str = "127.0.0.1"
    port: int = Field(default=993, gt=0, lt=65536)
    security: Literal["ssl", "starttls", "none"] = Field(
        default="ssl", description="ssl: TLS from the start (993); starttls: upgrade a plain connection (143).")
    ca_file: str | None = Field(
        default=None, description="PEM file of the certificate authorities to trust instead of the system's "
        "(a mail server with an internal CA); the server's name is verified either way.")
    username: str
    password: SecretStr
    folder: str = "INBOX"
    address: str | None = Field(default=None, description="From address of replies to mail of this mailbox.")
    use_idle: bool = Field(default=True, description="IMAP IDLE when the server offers it, else polling.")
    poll_seconds: float = Field(default=60.0, gt=0, description="Polling interval; also the IDLE refresh.")
    first_start: Literal["unseen", "all", "none"] = Field(
        default="unseen",
        description="What the very first start ingests: unseen mail, all of the folder, or only new mail.",
    )
    smtp: SmtpSettings | None = Field(
        default=None, description="Replies to mail of this mailbox go out through this SMTP server; else the "
        "channel's `smtp` (a mailbox set up in the console brings its own).")


class StaffMailSettings(BaseModel):
    """Mail to the team itself (the weekly summary to supervisors), not to customers: its own sender, and its own
    SMTP server when set (else the channel's `smtp`). Sent whether or not the e-mail channel is enabled."""

    from_address: str | None = Field(
        default=None, description="From of mail to staff; else the channel's from_address / first mailbox's.")
    from_name: str = "Switchboard"
    smtp: SmtpSettings | None = Field(default=None, description="Another SMTP server for mail to staff.")
    message_id_domain: str | None = Field(default=None, description="Right side of its Message-IDs.")


class EmailChannelSettings(BaseModel):
    """The email channel; disabled until mailboxes (inbound) and SMTP (outbound) are configured."""

    enabled: bool = False
    mailboxes: list[ImapMailboxSettings] = Field(default_factory=list)
    smtp: SmtpSettings = SmtpSettings()
    from_address: str | None = Field(default=None, description="Default From; else the first mailbox's address.")
    from_name: str = "Support"
    message_id_domain: str | None = Field(default=None, description="Right side of outbound Message-IDs.")
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    fetch_batch: int = Field(default=100, ge=1, le=1000)
    reconnect_initial_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=300.0, gt=0)
    standby_seconds: float = Field(
        default=10.0, gt=0,
        description="How often a mailbox read by another instance checks whether it should take over.")
    max_message_bytes: int = Field(default=30 * 1024 * 1024, gt=0)
    max_attachment_bytes: int = Field(default=15 * 1024 * 1024, gt=0)
    allowed_attachment_types: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TYPES))
    blocked_extensions: list[str] = Field(
        default_factory=lambda: sorted(BLOCKED_EXTENSIONS),
        description="Extensions refused (default: the attachment policy's list, the same for every channel).")
    ingest_concurrency: int = Field(
        default=32, ge=1, le=64,
        description="Mails of different senders ingested at once (one lane each); they share ingest transactions.",
    )
    trust_sender_address: bool = Field(
        default=True, description="The sender address vouches for the customer: a customer known by the same "
        "verified e-mail on another channel is the same person (turn off where mail is not SPF/DKIM-checked).")
    ingest_attempts: int = Field(default=3, ge=1, description="Failed ingests of one mail before quarantine.")
    staff: StaffMailSettings = StaffMailSettings()

    @model_validator(mode="after")
    def _unique_names(self) -> EmailChannelSettings:
        names = [m.name for m in self.mailboxes]
        if len(names) != len(set(names)):
            raise ValueError("mailbox names must be unique")
        return self

    def sender_address(self) -> str | None:
        if self.from_address:
            return self.from_address
        for mailbox in self.mailboxes:
            if mailbox.address:
                return mailbox.address
        return None
