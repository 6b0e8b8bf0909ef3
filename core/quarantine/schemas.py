from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class QuarantineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    channel: str
    reason: str
    payload: str
    content_type: str
    created_at: datetime
