from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.consent.models import ConsentKind
from core.timezones import HHMM, known_zone

CHANNELS = ("email", "telegram", "webchat", "rest", "vk", "whatsapp")
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text refuses NUL


class PreferencesRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    preferred_channel: str | None
    language: str | None
    quiet_from: str | None
    quiet_until: str | None
    time_zone: str | None
    consent_notices: bool
    consent_marketing: bool


class PreferencesUpdate(BaseModel):
    """Only the fields given change; `null` clears a preference (then the defaults apply)."""

    model_config = ConfigDict(extra="forbid")
    preferred_channel: str | None = Field(default=None, description="email, telegram, webchat, rest, vk or whatsapp")
    language: str | None = Field(default=None, pattern=r"^(ru|en)$")
    quiet_from: str | None = Field(default=None, pattern=HHMM)
    quiet_until: str | None = Field(default=None, pattern=HHMM)
    time_zone: str | None = Field(default=None, max_length=64)
    consent_notices: bool | None = None
    consent_marketing: bool | None = None
    note: str = Field(default="", max_length=500, description="Kept in the consent log with a consent change")

    @field_validator("preferred_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; one of {', '.join(CHANNELS)}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return known_zone(value)


class ConsentChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: ConsentKind
    granted: bool
    source: str
    actor_user_id: int | None
    actor_label: str | None
    note: str
    changed_at: datetime


class OrderNoticeTemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    status: str
    internal: bool
    text_en: str | None
    text_ru: str | None
    updated_at: datetime


class OrderNoticeTemplateUpdate(BaseModel):
    """What customers are told when an order reaches the status. `{order}`, `{status}` and `{description}` are
    filled in; an empty or missing text uses the generic notice in that language; `internal` tells nothing."""

    model_config = ConfigDict(extra="forbid")
    internal: bool = False
    text_en: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    text_ru: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
