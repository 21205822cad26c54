"""Excel hand-off: the platform's bulk-registration file, delivered to the claimant in chat.

Used where a platform takes a spreadsheet upload in its back office. The file is the very
one the ``excel`` export gives for the same declaration version (one writer,
``bot.declarations.exporters.write_workbook``, with the platform's column map
``columns/<platform>.yaml``); the person uploads it and presses "done, uploaded", giving the
platform's reference.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pydantic import BaseModel
from sqlmodel import select

from adapters.platforms.submitters.base import NotConfigured, waiting
from bot.core.ports import SubmissionItem, SubmitReceipt
from bot.declarations import exporters
from storage.db import Database
from storage.models_approval import SubmissionRun

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ExcelConfig(BaseModel):
    directory: str = "var/handoff"
    upload_url: str = ""  # the back-office page where the file is uploaded
    # No longer read: the layout is the platform's column map (columns/<platform>.yaml), the
    # same as the export's. Kept so an older policies/submission.yaml still loads; a warning
    # says so.
    sheet: str | None = None
    columns: dict[str, str] | None = None


class ExcelHandoff:
    capability = "assisted_submit"
    channel = "excel"

    def __init__(self, config: ExcelConfig, platform: str, db: Database | None = None) -> None:
        self.config = config
        self.platform = platform
        self.db = db
        if config.sheet is not None or config.columns is not None:
            log.warning("excel hand-off: 'sheet' and 'columns' are ignored; the file follows "
                        "columns/%s.yaml, like the excel export", platform)

    def path_for(self, idempotency_key: str) -> Path:
        directory = Path(self.config.directory)
        directory = directory if directory.is_absolute() else ROOT / directory
        return directory / f"{SAFE.sub('_', self.platform)}-" \
                                             f"{SAFE.sub('_', idempotency_key)}.xlsx"

    def workbook(self, idempotency_key: str) -> bytes:
        """The declaration version this submission is for, written by the export's writer."""
        if self.db is None:
            raise NotConfigured("the excel hand-off needs the database to write the file")
        with self.db.session() as session:
            run = session.exec(select(SubmissionRun).where(
                SubmissionRun.idempotency_key == idempotency_key)).first()
            if run is None:
                raise NotConfigured(f"no submission run for {idempotency_key!r}")
            _, data = exporters.workbook_bytes(session, run.task_id, "zh-CN",
                                               version=run.declaration_version)
        return data

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        path = self.path_for(idempotency_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.workbook(idempotency_key))
        return waiting(f"excel:{idempotency_key}", file=str(path), filename=path.name,
                       upload_url=self.config.upload_url, rows=len(items))

    def status(self, reference: str):  # a person reports the outcome
        raise NotImplementedError("an Excel hand-off has no status API")
