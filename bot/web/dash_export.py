"""The board's current filter as a file: CSV (UTF-8 with a BOM, so Excel opens it in the
right encoding) or Excel (xlsx). Times are the team's wall clock, named in the header;
in the CSV, text that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``
first) is prefixed with ``'``, and in the xlsx it is a text cell — notice titles are the
marketplace's text, not ours.

Both are written as the rows are read (``dash_data.each_row``): the CSV streams to the
browser, the xlsx through openpyxl's write-only workbook. Holding 100,000 rows first cost
the process 50 MB that it kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from bot.core.i18n import t
from bot.core.timefmt import local, zone_name
from bot.web.dash_data import Row

COLUMNS = ("id", "platform", "title", "type", "state", "owner", "deadline", "event_start",
           "event_end", "categories", "shops", "flag", "external_id")
WIDTHS = {"id": 8, "title": 48, "deadline": 18, "event_start": 18, "event_end": 18,
          "categories": 20, "shops": 20, "external_id": 22}  # the others: their header's
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_LINES = 500  # lines sent to the browser at a time
CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def header(lang: str) -> list[str]:
    return [t(f"dash.export.col.{c}", lang, zone=zone_name()) for c in COLUMNS]


def line(r: Row, platforms: dict[str, str], lang: str) -> list[str]:
    sep = "、" if lang != "en" else ", "
    flag = ("dash.overdue" if r.overdue else "dash.at_risk" if r.at_risk else "")
    return [
        str(r.task.id), platforms.get(r.campaign.platform, r.campaign.platform),
        r.campaign.title, r.campaign.type or "", t(f"state.{r.task.state}", lang), r.owner,
        local(r.task.deadline) if r.task.deadline else "",
        local(r.campaign.event_start) if r.campaign.event_start else "",
        local(r.campaign.event_end) if r.campaign.event_end else "",
        sep.join(r.categories), sep.join(r.shops), t(flag, lang) if flag else "",
        r.campaign.external_id,
    ]


def csv_chunks(found: Iterable[Row], platforms: dict[str, str], lang: str) -> Iterator[bytes]:
    """The CSV in pieces of ``CSV_LINES`` lines, the BOM first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header(lang))
    yield buffer.getvalue().encode("utf-8-sig")
    buffer.seek(0)
    buffer.truncate()
    for n, r in enumerate(found, start=1):
        writer.writerow([_safe(c) for c in line(r, platforms, lang)])
        if n % CSV_LINES == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def xlsx_file(found: Iterable[Row], platforms: dict[str, str], lang: str) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(t("dash.export.sheet", lang)[:31])
    names = header(lang)
    for index, (column, name) in enumerate(zip(COLUMNS, names, strict=True), start=1):
        letter = sheet.column_dimensions[_letter(index)]  # widths before any row
        letter.width = min(max(8, WIDTHS.get(column, len(name) + 4)), 60)
    sheet.freeze_panes = "A2"
    sheet.append(names)
    for r in found:
        sheet.append([_text_cell(sheet, value) for value in line(r, platforms, lang)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _text_cell(sheet, value: str) -> WriteOnlyCell | str:  # noqa: ANN001
    """Text stays text: a title beginning with "=" is no formula."""
    if not value.startswith("="):
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index)
