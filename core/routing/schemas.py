from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RouteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str = Field(min_length=1, max_length=64)
