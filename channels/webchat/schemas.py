"""Request models of the web chat's HTTP routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TypingUpdate(BaseModel):
    ticket: str = Field(min_length=1, max_length=32, description="Ticket id or number (T-000123)")
    active: bool = True
