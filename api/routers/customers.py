from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import Admin, Agent, DbSession, IdPath, Offset, State, Supervisor
from api.keys import CustomersReader
from api.openapi import CONFLICT, NOT_FOUND
from core.consent import service as consent
from core.consent.schemas import ConsentChangeRead, PreferencesRead, PreferencesUpdate
from core.contracts.schemas import ContractRead
from core.customers import service
from core.customers.schemas import (
    CustomerMerge,
    CustomerMergeRead,
    CustomerRead,
    DuplicateDismiss,
    DuplicateGroupRead,
    DuplicatePage,
)
from core.errors import ValidationFailedError
from core.orders.schemas import OrderRead
from core.privacy import service as privacy
from core.tickets.schemas import MessageRead

router = APIRouter(prefix="/customers", tags=["customers"], responses=CONFLICT)


@router.get("", response_model=list[CustomerRead])
async def search(session: DbSession, _user: Agent, q: Annotated[str | None, Query(max_length=200)] = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50,
                 offset: Offset = 0) -> list[CustomerRead]:
    return [CustomerRead.model_validate(c) for c in await service.search(session, q, limit, offset)]


def _cursor(after: str | None) -> tuple[str, str] | None:
    if not after:
        return None
    kind, sep, key = after.partition(":")
    if not sep or kind not in ("email", "phone") or not key:
        raise ValidationFailedError("after must be a next_cursor of this list (email:<key> or phone:<key>)")
    return kind, key


@router.get("/duplicates", response_model=DuplicatePage)
async def duplicates(session: DbSession, _user: Supervisor, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     after: Annotated[str | None, Query(max_length=400)] = None) -> DuplicatePage:
    """Suggested duplicates: live customers sharing one email or phone (normalised) that no channel vouched for as
    one person, grouped; pairs dismissed or un-merged before are left out."""
    groups, cursor = await service.duplicates(session, limit=limit, after=_cursor(after))
    return DuplicatePage(items=[DuplicateGroupRead.model_validate(g) for g in groups],
                         next_cursor=f"{cursor[0]}:{cursor[1]}" if cursor else None)


@router.post("/duplicates/dismiss", status_code=204, responses={**NOT_FOUND})  # an unknown customer
async def dismiss_duplicate(body: DuplicateDismiss, session: DbSession, user: Supervisor) -> Response:
    """The two customers are different people: never suggested again, never linked automatically."""
    await service.dismiss_duplicate(session, body.customer_ids[0], body.customer_ids[1], user)
    return Response(status_code=204)


@router.post("/merges/{merge_id}/unmerge", response_model=CustomerMergeRead)
async def unmerge(merge_id: IdPath, session: DbSession, user: Supervisor) -> CustomerMergeRead:
    """Undo a merge: what it moved goes back to the source customer (409 when undone already)."""
    return CustomerMergeRead.model_validate(await service.unmerge(session, merge_id, user))


@router.get("/{customer_id}", response_model=CustomerRead)
async def get_customer(customer_id: IdPath, session: DbSession, caller: CustomersReader) -> CustomerRead:
    """The customer's full profile (every read is audited: `customer.view`)."""
    customer = CustomerRead.model_validate(await service.get(session, customer_id))
    await privacy.view_profile(session, customer_id, caller.user, where="api", api_key=caller.key_name)
    return customer


@router.get("/{customer_id}/history", response_model=list[MessageRead])
async def history(customer_id: IdPath, session: DbSession, user: Agent,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                  offset: Offset = 0) -> list[MessageRead]:
    """Every message of the customer, across all tickets and channels, oldest first (audited as a view of the
    full profile: `customer.view`, where `api:history`)."""
    messages = [MessageRead.model_validate(m) for m in await service.history(session, customer_id, limit, offset)]
    await privacy.view_profile(session, customer_id, user, where="api:history")
    return messages


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


@router.get("/{customer_id}/merges", response_model=list[CustomerMergeRead])
async def merges(customer_id: IdPath, session: DbSession, _user: Agent) -> list[CustomerMergeRead]:
    """The merges into and out of this customer, newest first, with what each moved."""
    return [CustomerMergeRead.model_validate(m) for m in await service.merges(session, customer_id)]


@router.post("/{customer_id}/unmerge", response_model=CustomerMergeRead)
async def unmerge_customer(customer_id: IdPath, session: DbSession, user: Supervisor) -> CustomerMergeRead:
    """Undo the merge of this customer into another (409 `not_merged` when it is not merged)."""
    return CustomerMergeRead.model_validate(await service.unmerge_customer(session, customer_id, user))


@router.get("/{customer_id}/export")
async def export(customer_id: IdPath, session: DbSession, user: Admin) -> dict[str, Any]:
    """Personal-data export (access request) as JSON, without the files; audited."""
    return await privacy.export(session, customer_id, user)


@router.get("/{customer_id}/export.zip", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "customer.json and the files"}})
async def export_archive(customer_id: IdPath, session: DbSession, state: State, user: Admin) -> StreamingResponse:
    """Personal-data export as one ZIP: `customer.json` and the files of the conversations under `attachments/`;
    audited."""
    archive = await privacy.export_archive(session, state.files, customer_id, user)
    await session.commit()  # the audit entry is written before the first byte goes out
    return archive_response(archive, customer_id)


def archive_response(archive: IO[bytes], customer_id: int) -> StreamingResponse:
    """A customer's export archive streamed in 256 KiB blocks as `customer-<id>.zip` (the API's and the console's
    download); the temporary file is closed once sent."""

    def chunks() -> Iterator[bytes]:
        with archive:
            while block := archive.read(256 * 1024):
                yield block

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="customer-{customer_id}.zip"'})


@router.post("/{customer_id}/erase", response_model=CustomerRead)
async def erase(customer_id: IdPath, session: DbSession, state: State, user: Admin) -> CustomerRead:
    """Personal-data erasure: contact data, message texts and the files of the conversations are removed."""
    erasure = await service.erase(session, customer_id, user)
    # The files go only once nothing refers to them any more: after the commit (a failed erasure keeps them).
    await session.commit()
    for key in erasure.files:
        await state.files.delete(key)
    await service.after_erasure(session)
    return CustomerRead.model_validate(await service.get(session, customer_id))
