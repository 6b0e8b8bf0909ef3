"""Settings of the ticket core (business rules), part of the one settings object."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import BaseModel, Field, field_validator, model_validator

from core.timezones import HHMM, known_zone


class CoreSettings(BaseModel):
    """Business-rule settings of the ticket core."""

    reopen_window_hours: float = Field(
        default=72.0, ge=0, description="A resolved ticket reopens when the customer writes within this window."
    )
    bot_resolve_after_minutes: float = Field(
        default=30.0, gt=0,
        description="A ticket the bot answered is resolved (by the bot) when the customer writes nothing more for "
                    "this long.")
    bot_resolve_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often the quiet tickets with the bot are looked for (the most a "
                                         "resolution comes after its quiet time).")
    csat_quiet_from: str = Field(
        default="22:00", pattern=HHMM,
        description="No satisfaction survey is sent from this local time (HH:MM) ...")
    csat_quiet_until: str = Field(
        default="09:00", pattern=HHMM,
        description="... until this one: a survey due in between goes out at this time (equal times: never quiet).")
    csat_time_zone: str = Field(
        default="Europe/Moscow",
        description="Quiet hours' time zone for queues without a business-hours calendar (else the calendar's).")
    csat_low_score: int = Field(
        default=2, ge=0, le=5, description="A satisfaction score at or under this flags the ticket for the supervisor.")
    csat_public_url: str = Field(
        default="http://localhost:8000", pattern=r"^https?://[^\s]+$",
        description="Where customers reach this app: the e-mail survey's rating links start with it.")
    csat_link_days: float = Field(default=14.0, gt=0, description="An e-mail survey's rating links expire after this.")

    csat_comment_minutes: float = Field(
        default=10.0, ge=0,
        description="In chat channels (Telegram, web chat) the customer's next text message within this long after "
                    "a score is its comment (0: never).")


    contract_reminder_days: list[int] = Field(
        default=[30, 7, 1], max_length=10,
        description="Days before a contract's end date when its customer is reminded (each once).")
    contract_reminder_time: str = Field(
        default="10:00", pattern=HHMM,
        description="The local time of day a contract reminder is due (in notice_time_zone).")
    notice_time_zone: str = Field(
        default="Europe/Moscow",
        description="Time zone of notices (reminders, order notices) for customers who set none: their reminder "
                    "time and quiet hours.")
    notice_quiet_from: str = Field(
        default="22:00", pattern=HHMM,
        description="No notice goes out from this local time (HH:MM) unless the customer set their own ...")
    notice_quiet_until: str = Field(
        default="09:00", pattern=HHMM,
        description="... until this one: a notice due in between waits for it (equal times: never quiet).")

    incident_notices_per_minute: int = Field(
        default=600, ge=1, le=60_000,
        description="An incident's broadcast (opening and fix) reaches at most this many customers a minute.")
    incident_page_seconds: float = Field(
        default=10.0, gt=0, le=600,
        description="An incident broadcast sends a page of customers this often (the rate above, per page).")

    @field_validator("csat_time_zone", "notice_time_zone", "kpi_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("contract_reminder_days")
    @classmethod
    def _reminder_days(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 3650 for d in value):
            raise ValueError("reminder offsets are 0 to 3650 days")
        return sorted(set(value), reverse=True)

    retention_days: int = Field(
        default=0, ge=0, le=36500, description="Closed tickets closed longer ago than this many days are "
        "anonymised (texts, notes, files, recipients removed; counts kept). 0: never.")
    retention_sweep_seconds: float = Field(
        default=3600.0, gt=0, description="How often the retention policy looks for tickets past the age.")
    kpi_time_zone: str = Field(
        default="Europe/Moscow",
        description="KPI reports count days, weeks (Monday first) and months in this zone; after changing it run "
                    "`switchboard reports rebuild` (the rollups are kept per local day).")
    kpi_max_range_days: int = Field(default=366, ge=1, le=3660, description="The longest range one KPI report covers.")
    kpi_fold_seconds: float = Field(
        default=5.0, gt=0, description="How often the KPI job folds ticket changes into the report aggregates (the "
                                       "most a change waits to show in the reports).")

    waiting_notice_minutes: float = Field(
        default=10.0, ge=0,
        description="A customer waiting for the team who asks for a person again gets a \"still with the team\" "
                    "notice at most once per this many minutes (silence in between).")
    outbox_max_attempts: int = Field(default=8, ge=1, description="Attempts before an outbound message fails.")
    outbox_backoff_base_seconds: float = Field(default=1.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=600.0, gt=0)
    outbox_lease_seconds: float = Field(
        default=10.0, gt=0,
        description="A claim on a send that is not renewed (its process died) runs out after this and is retried.")
    outbox_heartbeat_seconds: float = Field(
        default=2.5, gt=0, description="How often a dispatcher renews the claim on the sends it has in flight.")
    outbox_send_timeout_seconds: float = Field(
        default=120.0, gt=0, description="A send still running after this counts as a failed attempt.")
    outbox_batch_size: int = Field(default=50, ge=1)
    outbox_max_unrecorded: int = Field(
        default=8, ge=1, le=1000,
        description="Most replies a dispatcher has out whose outcome is not recorded yet (on the wire, or answered "
                    "and being written): a crash of its process sends at most this many again. A send starts "
                    "only when one of these slots is free, i.e. when an earlier outcome is committed.")
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_gather_seconds: float = Field(default=0.01, ge=0, description="Wait after a wake-up to batch sends.")
    ingest_batch_size: int = Field(
        default=64, ge=1, le=1000,
        description="Most messages written in one ingest transaction (concurrent arrivals are grouped).",
    )
    ingest_batch_linger_seconds: float = Field(
        default=0.002, ge=0, le=0.1,
        description="Under load (the last ingest transaction held several messages) the next one waits this long "
                    "for more arrivals before it starts; a message after a quiet spell is written at once. "
                    "0 turns the wait off.")
    max_message_chars: int = Field(default=100_000, ge=1)
    settings_cache_seconds: float = Field(
        default=1.0, ge=0, le=60,
        description="Ingest keeps the declared intent actions and the SLA policies in memory and reads them again "
                    "at least this often (at once after a change saved through this instance): the longest a change "
                    "saved through another instance takes to apply. 0 reads them for every batch.")
    presence_offline_seconds: float = Field(
        default=90.0, ge=30, le=3600,
        description="An agent without a console heartbeat (sent every 25 s) for this long is offline: no new "
                    "tickets, and their untouched ones go back to the queue after the queue's return time.")
    @property
    def presence_offline(self) -> timedelta:
        """`presence_offline_seconds` as a duration: how long after their last heartbeat an agent is offline."""
        return timedelta(seconds=self.presence_offline_seconds)

    assignment_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often automatic queues' waiting tickets are handed out.")
    assignment_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Most tickets one queue hands out in one transaction.")

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Self:
        # Two missed heartbeats must still fit in the lease, or a slow database round trip lets a live send
        # be claimed (and sent) a second time.
        if self.outbox_heartbeat_seconds * 2 >= self.outbox_lease_seconds:
            raise ValueError("outbox_heartbeat_seconds must be less than half of outbox_lease_seconds")
        return self
