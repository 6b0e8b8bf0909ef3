"""Contracts pushed by the operator's systems: one at a time (PUT) or a CSV file at once (import)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response

from api.deps import DbSession, State
from api.keys import ContractsWriter, CustomersReader
from api.openapi import CONFLICT, NOT_FOUND, error
from core.contracts import importer, service
from core.contracts.schemas import NUMBER_PATTERN, ContractRead, ContractUpsert, ImportResult
from core.errors import ValidationFailedError

router = APIRouter(prefix="/contracts", tags=["contracts"], responses={**NOT_FOUND, **CONFLICT})
ContractNumber = Path(min_length=1, max_length=64, pattern=NUMBER_PATTERN)


@router.put("/{number}", response_model=ContractRead,
            responses={201: {"description": "A new contract was created", "model": ContractRead}})
async def upsert(body: ContractUpsert, session: DbSession, state: State, caller: ContractsWriter,
                 response: Response, number: str = ContractNumber) -> ContractRead:
    """Create or update a contract by number (idempotent); its expiry reminders follow its end date and status."""
    contract, created = await service.put(session, number, body, actor=caller.user, via_key=caller.key_name,
                                          settings=state.settings.core, now=state.clock.now())
    response.status_code = 201 if created else 200
    return ContractRead.model_validate(contract)


@router.get("/{number}", response_model=ContractRead)
async def get_contract(session: DbSession, _caller: CustomersReader, number: str = ContractNumber) -> ContractRead:
    return ContractRead.model_validate(await service.get_by_number(session, number))


@router.post("/import", response_model=ImportResult,
             responses={422: error("The file has errors (by line in `details`); nothing was written")},
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "number,customer,tariff,services,start_date,end_date,"
                                                  "auto_renewal,status (see the README)"}}}}})
async def import_csv(request: Request, session: DbSession, state: State, caller: ContractsWriter) -> ImportResult:
    """Import contracts from a CSV body: all rows or none (any error is reported by line, nothing written)."""
    try:
        text = importer.decode(await request.body())
    except importer.CsvImportError as exc:
        raise ValidationFailedError(str(exc), reason="bad_file") from None
    result = await importer.import_csv(session, text, settings=state.settings.core, now=state.clock.now(),
                                       actor=caller.user, via_key=caller.key_name)
    if result.error_count:
        raise ValidationFailedError(
            f"the file has {result.error_count} error(s); nothing was imported", reason="bad_rows",
            error_count=result.error_count, errors=[e.model_dump() for e in result.errors])
    return result
