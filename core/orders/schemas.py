from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.db.base import DbId


class OrderCustomerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: DbId | None = None
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)


class OrderUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    customer: OrderCustomerRef | None = None
    note: str = Field(default="", max_length=2000)


class OrderStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)


class OrderStatusChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    status: str
    note: str
    changed_at: datetime


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    status: str
    description: str
    customer_id: int | None
    created_at: datetime
    updated_at: datetime
    history: list[OrderStatusChangeRead]
