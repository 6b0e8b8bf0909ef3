from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from core.db.base import DbId


class IdentityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    channel: str
    external_id: str
    display_name: str | None
    verified: bool


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str | None
    email: str | None
    phone: str | None
    language: str | None
    merged_into_id: int | None
    erased_at: datetime | None
    created_at: datetime
    identities: list[IdentityRead]


class CustomerMerge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_customer_id: DbId
