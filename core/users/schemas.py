from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

from core.users.models import AssignmentMode, Role


def _distinct(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(codes))


LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="An ISO 639 code: ru, en")]
Languages = Annotated[list[LanguageCode], Field(max_length=20), AfterValidator(_distinct)]
"""The languages an agent answers in; empty: any ticket's language."""


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105  (the OAuth2 token type, not a secret)
    expires_in: int


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    name: str
    display_name: str | None  # as set; null: customers see `shown_name` (the first word of the name)
    shown_name: str
    role: Role
    language: str
    team_id: int | None
    capacity: int
    is_active: bool
    created_at: datetime
    languages: list[str] = Field(default_factory=list)
    away: bool = False
    last_seen_at: datetime | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=100)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = Role.agent
    language: str = Field(default="en", pattern="^(en|ru)$")
    queue: str | None = None
    capacity: StrictInt = Field(default=10, ge=0, le=1000)
    languages: Languages = Field(default_factory=list)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str | None) -> str | None:
        return clean_display_name(value)


class UserUpdate(BaseModel):
    """Fields left out, or null, stay as they are."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    # "" (or spaces) clears it: customers then see the first word of the name.
    display_name: str | None = Field(default=None, max_length=100)
    role: Role | None = None
    language: str | None = Field(default=None, pattern="^(en|ru)$")
    queue: str | None = None  # a queue's slug; "" takes the user out of every queue (as in UserCreate)
    capacity: StrictInt | None = Field(default=None, ge=0, le=1000)
    languages: Languages | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str | None) -> str | None:
        return trimmed_name(value)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str | None) -> str | None:
        # Kept as "" when cleared, so that "clear it" is told apart from "not given" (None).
        return None if value is None else (clean_display_name(value) or "")


def trimmed_name(value: str | None) -> str | None:
    """A person's or queue's name as stored: trimmed (both front ends store it so); one of spaces only would show
    as an empty cell, so it is refused."""
    if value is not None and not value.strip():
        raise ValueError("a name is 1 to 200 characters, not only spaces")
    return value.strip() if value is not None else None


def clean_display_name(value: str | None) -> str | None:
    """A display name as stored: trimmed, one line, None when empty (the first word of the name is shown)."""
    if value is None:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        # It goes into e-mail headers and chat bubbles: a line break there is a header injection.
        raise ValueError("a display name is one line without control characters")
    return value.strip() or None


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    name: str
    calendar_id: int | None = None  # hand-over settings (core/handover): business hours, null = always open
    bot_answers_while_waiting: bool = False
    default_wait_minutes: int = 15
    assignment_mode: AssignmentMode = AssignmentMode.manual
    return_after_minutes: int = 15
    csat_enabled: bool = False  # satisfaction surveys (core/csat)
    csat_delay_minutes: int = 60


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
