"""A drop folder of campaign calendars (CSV or Excel) that platform managers send by file.

Headers may be Chinese or English (``活动名称`` / ``title`` …); a row whose date cells are
prose (``11月5日 23:59``) keeps them in the notice text so the extractor reads them. CSVs in
GBK or UTF-8 (with or without BOM) both work. Unchanged files (same size and mtime) are not
read again; a broken file is reported and the rest of the folder still goes in.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.platforms.http_json import MalformedNotice, Rejection, clean_text, parse_time
from adapters.platforms.rss import stable_id
from adapters.platforms.textenc import decode
from bot.core.platforms import PLATFORM_NAMES as PLATFORMS
from bot.core.ports import MAX_TITLE, Notice
from bot.watch.validate import Unreadable, sane_time

log = logging.getLogger(__name__)
MAX_BYTES = 20 * 1024 * 1024
COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("活动id", "活动编号", "编号", "id", "external_id", "campaign id"),
    "title": ("活动名称", "活动标题", "名称", "标题", "title", "name", "campaign"),
    "platform": ("平台", "platform"),
    "type": ("活动类型", "类型", "type"),
    "registration_start": ("报名开始", "报名开始时间", "registration start"),
    "registration_end": ("报名截止", "报名截止时间", "报名结束", "报名结束时间", "截止时间",
                         "deadline", "registration end", "registration deadline"),
    "event_start": ("活动开始", "活动开始时间", "event start"),
    "event_end": ("活动结束", "活动结束时间", "event end"),
    "source_url": ("链接", "活动链接", "url", "link"),
    "text": ("说明", "备注", "活动说明", "报名时间", "活动时间", "notes", "description"),
}
PLATFORM_CODES = {**{name: code for code, name in PLATFORMS.items()},
                  **{code: code for code in PLATFORMS}, "淘宝": "tmall", "多多": "pdd"}


class UnreadableFile(ValueError):
    pass


@dataclass
class FileDropSource:
    name: str
    platform: str
    folder: str
    columns: dict[str, str] = field(default_factory=dict)  # field → header override
    timezone: str = "Asia/Shanghai"
    interval: float = 300.0
    alert_after: int = 3
    channel: str | None = None
    validators: dict = field(default_factory=dict)  # file name → "size:mtime" last read
    rejected: list[str] = field(default_factory=list)
    kind: str = "file_drop"

    def fetch(self) -> list[Notice]:
        folder = Path(self.folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{self.name}: drop folder {self.folder} does not exist")
        self.rejected = []
        notices: list[Notice] = []
        seen: dict[str, str] = {}
        for path in sorted(folder.iterdir()):
            if path.name.startswith((".", "~$")) or path.suffix.lower() not in (
                    ".csv", ".xlsx", ".xlsm"):
                continue
            stat = path.stat()
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
            seen[path.name] = signature
            if self.validators.get(path.name) == signature:
                continue
            try:
                if stat.st_size > MAX_BYTES:
                    raise UnreadableFile(f"larger than {MAX_BYTES // 1024 // 1024} MB")
                rows = _read(path)
                notices += self._notices(path.name, rows)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the folder
                seen.pop(path.name)
                self.rejected.append(Rejection(f"{self.name}: {path.name}: {exc}", path.name,
                                               f"unreadable file: {exc}"))
                # read again next poll; the watcher logs and announces it once
                log.debug("drop file rejected", extra={"source": self.name,
                                                       "file": path.name, "error": str(exc)[:200]})
        self.validators = seen
        return notices

    def _notices(self, file_name: str, rows: list[dict[str, Any]]) -> list[Notice]:
        notices = []
        for number, row in enumerate(rows, start=2):
            if not any(v not in (None, "") for v in row.values()):
                continue
            try:
                notices.append(self._notice(row))
            except Exception as exc:  # noqa: BLE001 - one unreadable row never stops the file
                reason = str(exc) if isinstance(exc, MalformedNotice) else \
                    f"unreadable row ({type(exc).__name__}: {exc})"
                self.rejected.append(Rejection(f"{self.name}: {file_name} row {number}: {reason}",
                                               f"{file_name} row {number}", reason))
        return notices

    def _cell(self, row: dict[str, Any], name: str) -> Any:
        wanted = [self.columns[name].lower()] if name in self.columns else list(COLUMNS[name])
        for header, value in row.items():
            if str(header or "").strip().lower() in wanted and value not in (None, ""):
                return value
        return None

    def _notice(self, row: dict[str, Any]) -> Notice:
        title = clean_text(self._cell(row, "title"), MAX_TITLE)
        if not title:
            raise MalformedNotice("row without a title")
        raw_platform = clean_text(self._cell(row, "platform"), 32)
        platform = PLATFORM_CODES.get(raw_platform.lower(), PLATFORM_CODES.get(raw_platform)) \
            if raw_platform else self.platform
        if platform is None:
            raise MalformedNotice(f"unknown platform {raw_platform!r}")
        texts = [clean_text(self._cell(row, "text"), 10_000)]
        times: dict[str, datetime | None] = {}
        for name, label in (("registration_start", "报名开始"), ("registration_end", "报名截止"),
                            ("event_start", "活动开始"), ("event_end", "活动结束")):
            value = self._cell(row, name)
            try:
                times[name] = self._time(value)
            except MalformedNotice:
                times[name] = None
                texts.append(f"{label}:{clean_text(value, 100)}")
        external = clean_text(self._cell(row, "external_id"), 128) or stable_id(platform, title)
        return Notice(platform=platform, external_id=external, title=title,
                      type=clean_text(self._cell(row, "type"), 64),
                      source_url=clean_text(self._cell(row, "source_url"), 2000),
                      text=clean_text("\n".join(t for t in texts if t), 20_000), **times)

    def _time(self, value: Any) -> datetime | None:
        """A cell as a time; ``MalformedNotice`` (→ kept as text) when unreadable or outside
        2000–2100."""
        if isinstance(value, datetime | date):
            if isinstance(value, datetime):
                found = value if value.tzinfo else value.replace(tzinfo=ZoneInfo(self.timezone))
            else:
                found = datetime(value.year, value.month, value.day, 23, 59,
                                 tzinfo=ZoneInfo(self.timezone))
            try:
                return sane_time(found)
            except Unreadable as exc:
                raise MalformedNotice(str(exc)) from exc
        if isinstance(value, int | float):
            raise MalformedNotice("a number is not a time")
        text = clean_text(value, 100).replace("/", "-")
        return parse_time(text, self.timezone) if text else None


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        text = decode(path.read_bytes())
        sample = text[:4096]
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample else csv.excel
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        if not reader.fieldnames:
            raise UnreadableFile("no header row")
        return list(reader)
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for broken files
        raise UnreadableFile(f"not a readable Excel file ({type(exc).__name__})") from exc
    try:
        rows = book.active.iter_rows(values_only=True) if book.active else iter(())
        header = next(rows, None)
        if not header:
            raise UnreadableFile("empty sheet")
        names = [str(h or "").strip() for h in header]
        return [dict(zip(names, row, strict=False)) for row in rows]
    finally:
        book.close()
