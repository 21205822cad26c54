"""Qualification documents about to expire: one alert per document and expiry date.

A lapsed business licence or brand authorisation gets a whole campaign rejected, so the
ops channels hear about it 30 days ahead; the ``document_alerts`` row is written in the same
transaction that decides to send, so a rerun (or a second replica) never alerts twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import select

from bot.core import outbox
from bot.core.i18n import t
from bot.core.settings import get_settings
from bot.core.timefmt import local
from storage.db import Database
from storage.models import QualificationDocument
from storage.models_data import DocumentAlert
from storage.types import utcnow

log = logging.getLogger(__name__)
ALERT_DAYS = 30



def run(db: Database, days: int = ALERT_DAYS) -> int:
    """Alert every channel bound for ops about documents expiring within ``days``."""
    now = utcnow()
    lang = get_settings().language
    sent = 0
    with db.session() as session:
        due = session.exec(select(QualificationDocument).where(
            QualificationDocument.valid_until.is_not(None),
            QualificationDocument.valid_until <= now + timedelta(days=days))).all()
        bindings = outbox.bindings_for(session, "*", "ops")
        for doc in due:
            assert doc.valid_until is not None
            done = session.exec(select(DocumentAlert.id).where(
                DocumentAlert.document_id == doc.id,
                DocumentAlert.valid_until == doc.valid_until)).first()
            if done:
                continue
            session.add(DocumentAlert(document_id=doc.id or 0, valid_until=doc.valid_until))
            left = (doc.valid_until - now).days
            key = "docs.expired" if left < 0 else "docs.expiring"
            text = t(key, lang, title=doc.title, issuer=doc.issuer or "—",
                     until=local(doc.valid_until, fmt="%Y-%m-%d"), days=max(left, 0))
            for b in bindings:
                outbox.enqueue_text(session, b.chat, b.channel_id, text,
                                    key=f"doc_expiry:{doc.id}:{doc.valid_until.date()}:{b.chat}:{b.channel_id}")
            sent += 1
            log.info("document expiry alert", extra={"document_id": doc.id, "days_left": left})
    return sent
