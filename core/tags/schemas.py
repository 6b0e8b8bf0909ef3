from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.tags.models import COLOURS

COLOUR_PATTERN = "^(" + "|".join(COLOURS) + ")$"
NAME_MAX = 50


class TagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    colour: str = Field(description="One of " + ", ".join(COLOURS))
    created_at: datetime


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=NAME_MAX, description="Letters, digits, spaces and - _ . / + &")
    colour: str = Field(default="grey", pattern=COLOUR_PATTERN)


class TagUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    colour: str | None = Field(default=None, pattern=COLOUR_PATTERN)


class TicketTagAdd(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=NAME_MAX, description="An existing tag's name, or a new one (created)")
