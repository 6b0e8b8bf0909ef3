"""Bulk contract import from CSV: every row checked first, then all written in one transaction, or nothing.

The file's header names the columns (any order): number, customer, start_date, end_date are required; tariff,
services (separated by ";"), auto_renewal (true/false, yes/no, 1/0, да/нет), status (active, terminating,
terminated, expired; active when empty) and region (where the service is delivered, e.g. msk/zelenograd: the areas
of outages, core/incidents) are optional; any other column is an error. `customer` is a customer id, an e-mail
address or a phone number. Dates are YYYY-MM-DD or DD.MM.YYYY.

Any error - a wrong column, a bad date, a number twice, an unknown or erased customer - is reported with its line
(the header is line 1) and nothing is written: "nothing half-imported". Otherwise every row is upserted by number
(so importing the same file twice changes nothing the second time) and the reminders are armed, all in the one
transaction: the rows are staged in a temporary table (COPY on PostgreSQL, one executemany on SQLite), then one
INSERT ... SELECT ... ON CONFLICT writes the contracts and one more arms their reminders (`progress(done, total)` is
called as the steps finish).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.config import CoreSettings
from core.contracts import repository
from core.contracts.models import ContractStatus
from core.contracts.schemas import NUMBER_PATTERN, ImportError_, ImportResult, normalise_region
from core.contracts.service import reminder_due
from core.db.base import MAX_ID
from core.users.models import User

REQUIRED = ("number", "customer", "start_date", "end_date")
OPTIONAL = ("tariff", "services", "auto_renewal", "status", "region")
MAX_ERRORS_SHOWN = 100
_STATUSES = tuple(s.value for s in ContractStatus)
_TRUE = {"true", "yes", "1", "y", "да", "t"}
_FALSE = {"false", "no", "0", "n", "нет", "f", ""}

Progress = Callable[[int, int], None]


class CsvImportError(Exception):
    pass


def _date(value: str) -> date | None:
    value = value.strip()
    try:
        if len(value) == 10 and value[4] == "-":
            return date.fromisoformat(value)
        if len(value) == 10 and value[2] == "." and value[5] == ".":
            return date(int(value[6:]), int(value[3:5]), int(value[:2]))
    except ValueError:
        return None
    return None


@dataclass
class _Parsed:
    rows: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)  # (line, values, customer ref)
    errors: list[ImportError_] = field(default_factory=list)
    error_count: int = 0

    def error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(ImportError_(line=line, error=message))


def _parse(text: str) -> _Parsed:
    import re

    number_ok = re.compile(NUMBER_PATTERN).fullmatch
    out = _Parsed()
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        out.error(1, "the file is empty: a header line is expected")
        return out
    columns = [h.strip().lower().lstrip("\ufeff") for h in header]
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    missing = [c for c in REQUIRED if c not in columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if unknown or missing or repeated:
        parts = ([f"unknown columns: {', '.join(unknown)}"] if unknown else []) + \
                ([f"missing columns: {', '.join(missing)}"] if missing else []) + \
                ([f"repeated columns: {', '.join(repeated)}"] if repeated else [])
        out.error(1, "; ".join(parts) + f" (expected {', '.join(REQUIRED + OPTIONAL)})")
        return out
    index = {c: i for i, c in enumerate(columns)}
    seen: dict[str, int] = {}
    width = len(columns)
    for cells in reader:
        line = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if len(cells) != width:
            out.error(line, f"{len(cells)} fields where the header has {width}")
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = index.get(name)
            return cells[i].strip() if i is not None else ""

        number = cell("number")
        problems = []
        if not number or len(number) > 64 or not number_ok(number):
            problems.append(f"bad contract number {number!r}")
        elif number in seen:
            problems.append(f"contract {number} repeats line {seen[number]}")
        else:
            seen[number] = line
        start, end = _date(cell("start_date")), _date(cell("end_date"))
        if start is None:
            problems.append(f"bad start_date {cell('start_date')!r} (YYYY-MM-DD or DD.MM.YYYY)")
        if end is None:
            problems.append(f"bad end_date {cell('end_date')!r} (YYYY-MM-DD or DD.MM.YYYY)")
        if start is not None and end is not None and end < start:
            problems.append("end_date is before start_date")
        renewal = cell("auto_renewal").lower()
        if renewal not in _TRUE | _FALSE:
            problems.append(f"bad auto_renewal {cell('auto_renewal')!r} (true or false)")
        status = cell("status").lower() or ContractStatus.active.value
        if status not in _STATUSES:
            problems.append(f"bad status {cell('status')!r} ({', '.join(_STATUSES)})")
        tariff = cell("tariff")
        if len(tariff) > 200:
            problems.append("tariff is longer than 200 characters")
        services = [s.strip() for s in cell("services").split(";") if s.strip()]
        region: str | None = None
        if cell("region"):
            try:
                region = normalise_region(cell("region"))
            except ValueError as exc:
                problems.append(str(exc))
        customer = cell("customer")
        if not customer:
            problems.append("no customer")
        if problems:
            out.error(line, "; ".join(problems))
            continue
        out.rows.append((line, {"number": number, "tariff": tariff, "services": services, "start_date": start,
                                "end_date": end, "auto_renewal": renewal in _TRUE, "status": status, "region": region},
                         customer))
    return out


def _customer_kind(ref: str) -> str:
    if "@" in ref:
        return "email"
    if ref.isascii() and ref.isdigit() and len(ref) <= 10 and 0 < int(ref) <= MAX_ID:
        return "id"
    return "phone"


async def _resolve_customers(session: AsyncSession, parsed: _Parsed) -> dict[str, int]:
    """Customer ref -> customer id; unknown and erased customers become line errors."""
    refs = {ref for _, _, ref in parsed.rows}
    by_kind: dict[str, set[str]] = {"id": set(), "email": set(), "phone": set()}
    for ref in refs:
        by_kind[_customer_kind(ref)].add(ref)
    found = await repository.customers_by(session, ids=[int(r) for r in by_kind["id"]],
                                          emails=[r.lower() for r in by_kind["email"]], phones=by_kind["phone"])
    resolved: dict[str, tuple[int, bool]] = {}
    for cid, email, phone, merged_into, erased in found:
        target = merged_into or cid
        for known in (str(cid), email, phone):
            if known is not None and known not in resolved:  # the oldest customer wins (ordered by id)
                resolved[known] = (target, erased)
    out: dict[str, int] = {}
    kept = []
    for line, values, ref in parsed.rows:
        key = ref.lower() if "@" in ref else ref
        hit = resolved.get(key)
        if hit is None:
            parsed.error(line, f"unknown customer {ref!r}")
        elif hit[1]:
            parsed.error(line, f"customer {ref!r} is erased")
        else:
            out[ref] = hit[0]
            kept.append((line, values, ref))
    parsed.rows = kept
    return out


async def import_csv(session: AsyncSession, text: str, *, settings: CoreSettings, now: datetime,
                     actor: User | None, via_key: str | None = None, progress: Progress | None = None
                     ) -> ImportResult:
    """Check the whole file, then write all of it (never commits: the caller's one transaction)."""
    parsed = _parse(text)
    customers = await _resolve_customers(session, parsed) if parsed.rows else {}
    if parsed.error_count:
        parsed.errors.sort(key=lambda e: e.line)
        return ImportResult(imported=0, created=0, updated=0, errors=parsed.errors, error_count=parsed.error_count)
    total = len(parsed.rows)
    rows = []
    for _, v, ref in parsed.rows:
        rows.append((v["number"], customers[ref], v["tariff"], json.dumps(v["services"], ensure_ascii=False),
                     v["start_date"], v["end_date"], v["auto_renewal"], v["status"], v["region"]))
    offsets = settings.contract_reminder_days
    ends = sorted({v["end_date"] for _, v, _ in parsed.rows})
    dues = [(end, days, reminder_due(end, days, settings), end.isoformat()) for end in ends for days in offsets]
    # Staged (COPY on PostgreSQL), then three statements for the whole file: no round trip per row or chunk.
    await repository.stage(session, rows, dues)
    if progress is not None:
        progress(total // 2, total)
    updated = await repository.staged_existing(session)
    await repository.upsert_staged(session, now)
    await repository.sync_staged_reminders(session, offsets, now)
    await repository.drop_staged(session)
    if progress is not None:
        progress(total, total)
    audit.record(session, actor, "contract.import", "contract", "import", rows=total, created=total - updated,
                 updated=updated, **({"api_key": via_key} if via_key else {}))
    return ImportResult(imported=total, created=total - updated, updated=updated, errors=[], error_count=0)


def decode(raw: bytes) -> str:
    """The file's text: UTF-8 (with or without a BOM), else a clear error."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvImportError(f"the file is not UTF-8 text (byte {exc.start})") from None
