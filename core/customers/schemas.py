from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

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


class CustomerMergeRead(BaseModel):
    """One merge and what it moved (ids of identities, tickets, orders, contracts; the target's filled fields)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    source_id: int
    target_id: int
    actor_user_id: int | None
    reason: str
    moved: dict[str, list[int]]
    filled: dict[str, str]
    merged_at: datetime
    unmerged_at: datetime | None
    unmerged_by_id: int | None


class DuplicateGroupRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    key: str
    customers: list[CustomerRead]


class DuplicatePage(BaseModel):
    items: list[DuplicateGroupRead]
    next_cursor: str | None = Field(default=None, description="Pass as `after` for the next page.")


class DuplicateDismiss(BaseModel):
    """Two customers a supervisor says are different people."""

    model_config = ConfigDict(extra="forbid")
    customer_ids: list[DbId] = Field(min_length=2, max_length=2)
