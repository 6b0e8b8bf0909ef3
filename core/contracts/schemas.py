from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.contracts.models import ContractStatus
from core.orders.schemas import OrderCustomerRef

NUMBER_PATTERN = r"^[A-Za-z0-9._/-]+$"


class ContractUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: OrderCustomerRef = Field(description="The customer by id, or by email/phone")
    tariff: str = Field(default="", max_length=200)
    services: list[str] = Field(default_factory=list, max_length=100)
    start_date: date
    end_date: date
    auto_renewal: bool = False
    status: ContractStatus = ContractStatus.active

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
