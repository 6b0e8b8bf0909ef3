from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Scope(enum.StrEnum):
    """What an integration key may do."""

    rest_channel = "rest_channel"  # post messages and read replies on the REST channel
    orders_write = "orders:write"  # push orders and their status changes
    contracts_write = "contracts:write"  # push and import contracts
    customers_read = "customers:read"  # read customers, their orders and contracts
    reports_read = "reports:read"  # read the KPI reports
    incidents_write = "incidents:write"  # open, read and resolve outages (e.g. the network monitoring system)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int | None = Field(description="None for the environment's REST key (it cannot be revoked here)")
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself: shown this once, only its hash is kept")
