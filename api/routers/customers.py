from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Admin, Agent, DbSession, IdPath, Offset, State, Supervisor
from api.keys import CustomersReader
from api.openapi import CONFLICT
from core.consent import service as consent
from core.consent.schemas import ConsentChangeRead, PreferencesRead, PreferencesUpdate
from core.contracts.schemas import ContractRead
from core.customers import service
from core.customers.schemas import CustomerMerge, CustomerRead
from core.orders.schemas import OrderRead
from core.tickets.schemas import MessageRead

router = APIRouter(prefix="/customers", tags=["customers"], responses=CONFLICT)


@router.get("", response_model=list[CustomerRead])
async def search(session: DbSession, _user: Agent, q: Annotated[str | None, Query(max_length=200)] = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50,
                 offset: Offset = 0) -> list[CustomerRead]:
    return [CustomerRead.model_validate(c) for c in await service.search(session, q, limit, offset)]


@router.get("/{customer_id}", response_model=CustomerRead)
async def get_customer(customer_id: IdPath, session: DbSession, _caller: CustomersReader) -> CustomerRead:
    return CustomerRead.model_validate(await service.get(session, customer_id))


@router.get("/{customer_id}/history", response_model=list[MessageRead])
async def history(customer_id: IdPath, session: DbSession, _user: Agent,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                  offset: Offset = 0) -> list[MessageRead]:
    """Every message of the customer, across all tickets and channels, oldest first."""
    return [MessageRead.model_validate(m) for m in await service.history(session, customer_id, limit, offset)]


@router.get("/{customer_id}/orders", response_model=list[OrderRead])
async def customer_orders(customer_id: IdPath, session: DbSession, _caller: CustomersReader) -> list[OrderRead]:
    return [OrderRead.model_validate(o) for o in await service.orders(session, customer_id)]


@router.get("/{customer_id}/contracts", response_model=list[ContractRead])
async def customer_contracts(customer_id: IdPath, session: DbSession, _caller: CustomersReader) -> list[ContractRead]:
    """The customer's contracts, the latest ending first."""
    return [ContractRead.model_validate(c) for c in await service.contracts(session, customer_id)]


@router.get("/{customer_id}/preferences", response_model=PreferencesRead)
async def preferences(customer_id: IdPath, session: DbSession, _caller: CustomersReader) -> PreferencesRead:
    return await consent.preferences(session, customer_id)


@router.patch("/{customer_id}/preferences", response_model=PreferencesRead)
async def update_preferences(customer_id: IdPath, body: PreferencesUpdate, session: DbSession, state: State,
                             user: Agent) -> PreferencesRead:
    """Change preferred channel, language, quiet hours or consents (a consent change is logged with who and when;
    source `api`)."""
    return await consent.update(session, customer_id, body, source="api", actor=user, now=state.clock.now())


@router.get("/{customer_id}/consent-log", response_model=list[ConsentChangeRead])
async def consent_log(customer_id: IdPath, session: DbSession, _caller: CustomersReader) -> list[ConsentChangeRead]:
    """Every grant and withdrawal of the customer's consents, newest first."""
    return [ConsentChangeRead.model_validate(c) for c in await consent.consent_log(session, customer_id)]


@router.post("/{customer_id}/merge", response_model=CustomerRead)
async def merge(customer_id: IdPath, body: CustomerMerge, session: DbSession, user: Supervisor) -> CustomerRead:
    """Merge `source_customer_id` into this customer."""
    return CustomerRead.model_validate(await service.merge(session, body.source_customer_id, customer_id, user))


@router.get("/{customer_id}/export")
async def export(customer_id: IdPath, session: DbSession, user: Admin) -> dict[str, Any]:
    """Personal-data export (access request)."""
    return await service.export(session, customer_id, user)


@router.post("/{customer_id}/erase", response_model=CustomerRead)
async def erase(customer_id: IdPath, session: DbSession, state: State, user: Admin) -> CustomerRead:
    """Personal-data erasure: contact data, message texts and the files of the conversations are removed."""
    erasure = await service.erase(session, customer_id, user)
    # The files go only once nothing refers to them any more: after the commit (a failed erasure keeps them).
    await session.commit()
    for key in erasure.files:
        await state.files.delete(key)
    return CustomerRead.model_validate(await service.get(session, customer_id))
