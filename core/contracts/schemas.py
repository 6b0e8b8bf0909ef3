from __future__ import annotations

import re
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.contracts.models import ContractStatus
from core.orders.schemas import OrderCustomerRef

NUMBER_PATTERN = r"^[A-Za-z0-9._/-]+$"
REGION_MAX = 200
_REGION_PART = re.compile(r"[\w.-]+")


def normalise_region(value: str) -> str:
    """"MSK / Zelenograd/ K-1420" -> "msk/zelenograd/k-1420": a path of codes from wide to narrow, lower case.

    Raises:
        ValueError: an empty part, a part with other than letters, digits, ".", "_", "-", or too long.
    """
    parts = [p.strip().lower() for p in value.strip().strip("/").split("/")]
    if not parts or any(not _REGION_PART.fullmatch(p) for p in parts):
        raise ValueError(f"bad region {value!r}: codes of letters, digits, '.', '_', '-' separated by '/'")
    region = "/".join(parts)
    if len(region) > REGION_MAX:
        raise ValueError(f"a region is at most {REGION_MAX} characters")
    return region


class ContractUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: OrderCustomerRef = Field(description="The customer by id, or by email/phone")
    tariff: str = Field(default="", max_length=200)
    services: list[str] = Field(default_factory=list, max_length=100)
    start_date: date
    end_date: date
    auto_renewal: bool = False
    status: ContractStatus = ContractStatus.active
    region: str | None = Field(default=None, max_length=REGION_MAX,
                               description="Where the service is delivered: codes from wide to narrow, e.g. "
                                           "msk/zelenograd/k-1420 (an outage's area is such a prefix)")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return normalise_region(value) if value is not None and value.strip() else None

    @model_validator(mode="after")
    def _dates(self) -> ContractUpsert:
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if any(len(s) > 200 for s in self.services):
            raise ValueError("a service name is at most 200 characters")
        return self


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    number: str
    customer_id: int
    tariff: str
    services: list[str]
    start_date: date
    end_date: date
    auto_renewal: bool
    status: ContractStatus
    region: str | None
    created_at: datetime
    updated_at: datetime


class ImportError_(BaseModel):
    line: int = Field(description="The line of the file (the header is line 1)")
    error: str


class ImportResult(BaseModel):
    imported: int = Field(description="Rows written (created or updated); 0 when the file had errors")
    created: int
    updated: int
    errors: list[ImportError_] = Field(description="The first errors by line; nothing is written when any")
    error_count: int
