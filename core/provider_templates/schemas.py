from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TemplateReplyCreate(BaseModel):
    """An agent's reply as an approved template: its name and language as the provider lists them, and the body's
    parameters {{1}}..{{n}} in order."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=1, max_length=16)
    params: list[str] = Field(default_factory=list, max_length=100)


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    language: str
    category: str | None
    body: str
    param_count: int
    fetched_at: datetime


class TemplateRefreshed(BaseModel):
    templates: int
