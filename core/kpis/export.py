"""The KPI report as a file: CSV (UTF-8 with a BOM, which spreadsheet programs need to read Cyrillic) or XLSX
(openpyxl), with column headers in the caller's language."""

from __future__ import annotations

import csv
import io
from typing import Any

from core.i18n import translator
from core.kpis.schemas import KPI_FIELDS, KpiReport, KpiRow

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXTRA_FIELDS = ("csat_surveys_sent", "csat_response_rate")
SCORES = ("1", "2", "3", "4", "5")


def headers(language: str | None) -> list[str]:
    _ = translator(language)
    return [_("kpi.col.key"), *(_(f"kpi.col.{name}") for name in (*KPI_FIELDS, *EXTRA_FIELDS)),
            *(_("kpi.col.csat_score", score=s) for s in SCORES)]


def _cells(row: KpiRow, key: str) -> list[Any]:
    data = row.model_dump()
    return [key, *(data[name] for name in (*KPI_FIELDS, *EXTRA_FIELDS)),
            *(row.csat_distribution.get(s, 0) for s in SCORES)]


def rows(report: KpiReport, language: str | None) -> list[list[Any]]:
    """The table: headers, one line per group, then the totals."""
    _ = translator(language)
    out = [headers(language)]
    for group in report.groups:
        out.append(_cells(group, group.label or group.key or _("kpi.none")))
    out.append(_cells(report.totals, _("kpi.total")))
    return out


def to_csv(report: KpiReport, language: str | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for line in rows(report, language):
        writer.writerow(["" if value is None else value for value in line])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(report: KpiReport, language: str | None) -> bytes:
    # Imported here: openpyxl was ~5 % of `import api.app`, which every command and server process pays.
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(translator(language)("kpi.sheet"))
    for line in rows(report, language):
        sheet.append(line)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def filename(report: KpiReport, extension: str) -> str:
    return f"kpi_{report.date_from.isoformat()}_{report.date_to.isoformat()}_{report.group_by.value}.{extension}"
