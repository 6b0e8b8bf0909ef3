"""When the weekly summary goes out and where its link points (deployment settings; the on/off switch is in the
database, set by an admin in the console)."""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, Field, field_validator

from core.timezones import HHMM, known_zone

DEFAULT_ZONE = "Europe/Moscow"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SummarySettings(BaseModel):
    """The weekly summary e-mail's schedule (`SWITCHBOARD_SUMMARY__...`)."""

    weekday: str = Field(default="mon", pattern=r"^(mon|tue|wed|thu|fri|sat|sun)$",
                         description="The day the summary of the week before goes out...")
    at: str = Field(default="08:00", pattern=HHMM, description="...at this local time...")
    time_zone: str | None = Field(
        default=None,
        description="...in this time zone (default: the KPI reports' SWITCHBOARD_CORE__KPI_TIME_ZONE, so the mail "
                    "and the reports page count the same days); a week runs Monday 00:00 to Sunday 24:00 there.")
    console_url: str = Field(
        default="http://localhost:8000", pattern=r"^https?://[^\s]+$",
        description="Where supervisors reach the console: the mail's link to the reports page starts with it.")
    max_attempts: int = Field(default=8, ge=1, le=50, description="Sends of one mail before it is marked failed.")
    retry_seconds: float = Field(default=60.0, gt=0, description="The first wait after a failed send; doubles "
                                                                 "each time up to an hour.")
    poll_seconds: float = Field(default=30.0, gt=0, description="How often queued summary mails are looked for.")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return known_zone(value)

    @property
    def zone(self) -> str:
        return self.time_zone or DEFAULT_ZONE

    def with_zone(self, reports_zone: str) -> SummarySettings:
        """These settings with the reports' time zone filled in when none is set for the summary."""
        return self if self.time_zone else self.model_copy(update={"time_zone": reports_zone})

    @property
    def weekday_index(self) -> int:
        return WEEKDAYS.index(self.weekday)

    @property
    def send_time(self) -> time:
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))
