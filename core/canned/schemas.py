from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

LANGUAGE_PATTERN = "^(en|ru)$"


class CannedResponseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=20_000)
    shortcut: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)
    queue: str | None = Field(default=None, max_length=64)


class CannedResponseUpdate(CannedResponseCreate):
    pass


class CannedResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    shortcut: str | None
    body: str
    language: str | None
    team_id: int | None
    created_at: datetime
    updated_at: datetime


class CannedResponseRendered(CannedResponseRead):
    """A response as it would go on one ticket: `text` is the body with the ticket's and agent's values (None when
    no ticket was given)."""

    text: str | None

