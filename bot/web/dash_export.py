"""The board's current filter as a file: CSV (UTF-8 with a BOM, so Excel opens it in the
right encoding) or Excel (xlsx). Times are the team's wall clock, named in the header;
in the CSV, text that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``
first) is prefixed with ``'``, and in the xlsx it is a text cell — notice titles are the
marketplace's text, not ours."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from bot.core.i18n import t
from bot.core.timefmt import local, zone_name
from bot.web.dash_data import Row

COLUMNS = ("id", "platform", "title", "type", "state", "owner", "deadline", "event_start",
           "event_end", "categories", "shops", "flag", "external_id")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def table(found: list[Row], platforms: dict[str, str], lang: str) -> list[list[str]]:
    sep = "、" if lang != "en" else ", "
    header = [t(f"dash.export.col.{c}", lang, zone=zone_name()) for c in COLUMNS]
    out = [header]
    for r in found:
        flag = ("dash.overdue" if r.overdue else "dash.at_risk" if r.at_risk else "")
        out.append([
            str(r.task.id), platforms.get(r.campaign.platform, r.campaign.platform),
            r.campaign.title, r.campaign.type or "", t(f"state.{r.task.state}", lang), r.owner,
            local(r.task.deadline) if r.task.deadline else "",
            local(r.campaign.event_start) if r.campaign.event_start else "",
            local(r.campaign.event_end) if r.campaign.event_end else "",
            sep.join(r.categories), sep.join(r.shops), t(flag, lang) if flag else "",
            r.campaign.external_id,
        ])
    return out


def export_file(fmt: str, found: list[Row], platforms: dict[str, str],
                lang: str) -> tuple[bytes, str]:
    rows = table(found, platforms, lang)
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows([[_safe(c) for c in row] for row in rows])
        return buffer.getvalue().encode("utf-8-sig"), "text/csv; charset=utf-8"
    book = Workbook()
    sheet = book.active
    sheet.title = t("dash.export.sheet", lang)[:31]
    for row in rows:
        sheet.append(row)
    for cells in sheet.iter_rows():
        for cell in cells:  # text stays text: a title beginning with "=" is no formula
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    for cells in sheet.columns:  # readable widths, capped
        width = max(len(str(c.value or "")) for c in cells)
        sheet.column_dimensions[cells[0].column_letter].width = min(max(8, width + 2), 60)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
