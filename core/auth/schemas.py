from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class LoginRestrictionRead(BaseModel):
    user_id: int
    email: str
    failures: int
    locked_until: datetime | None
    blocked_until: datetime | None


class UnlockResult(BaseModel):
    user_id: int
    unlocked: bool = Field(description="False when the account had no failures, delay or lock to clear")
