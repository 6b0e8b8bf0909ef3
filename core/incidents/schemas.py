from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.contracts.schemas import REGION_MAX, normalise_region
from core.db.base import DbId
from core.incidents.models import IncidentStatus

MAX_LISTED = 10_000
MAX_TEXT = 2000
INTENT_PATTERN = r"^[a-z0-9_]{1,64}$"


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    message_en: str = Field(min_length=1, max_length=MAX_TEXT, description="What the bot answers and broadcasts")
    message_ru: str = Field(min_length=1, max_length=MAX_TEXT)
    intents: list[str] = Field(min_length=1, max_length=20,
                               description="The appeals it answers: these intents from an affected customer")
    area: str | None = Field(default=None, max_length=REGION_MAX,
                             description="A region prefix (msk/zelenograd): customers with a contract there")
    customers: list[DbId] = Field(default_factory=list, max_length=MAX_LISTED, description="Customer ids")
    notify_affected: bool = Field(default=True, description="Broadcast the message to the affected customers who "
                                                            "consented to notices (rate-limited)")
    alert_id: DbId | None = Field(default=None, description="The rising-problem alert it was opened from")

    @field_validator("title", "message_en", "message_ru")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("intents")
    @classmethod
    def _intents(cls, value: list[str]) -> list[str]:
        import re

        bad = [v for v in value if not re.fullmatch(INTENT_PATTERN, v)]
        if bad:
            raise ValueError(f"bad intent names: {', '.join(repr(b) for b in bad[:5])} (a-z, 0-9, _)")
        return sorted(set(value))

    @field_validator("area")
    @classmethod
    def _area(cls, value: str | None) -> str | None:
        return normalise_region(value) if value is not None and value.strip() else None

    @model_validator(mode="after")
    def _whom(self) -> IncidentCreate:
        if self.area is None and not self.customers:
            raise ValueError("name an area or a list of customers (or both)")
        return self


class IncidentResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution_en: str | None = Field(default=None, max_length=MAX_TEXT,
                                      description="Told to the customers; empty: the standard text")
    resolution_ru: str | None = Field(default=None, max_length=MAX_TEXT)


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    message_en: str
    message_ru: str
    intents: list[str]
    area: str | None
    status: IncidentStatus
    notify_affected: bool
    alert_id: int | None
    opened_at: datetime
    resolved_at: datetime | None
    resolution_en: str | None
    resolution_ru: str | None
    affected_count: int = Field(description="Customers affected when it opened (area and list)")


class LinkedTicket(BaseModel):
    ticket_id: int
    number: str
    status: str
    customer_id: int
    linked_at: datetime


class IncidentDetail(IncidentRead):
    linked_count: int
    tickets: list[LinkedTicket] = Field(description="The newest linked appeals (up to 200)")


class IncidentPage(BaseModel):
    items: list[IncidentRead]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page")
