"""Notices a source could not hand over, remembered per source so each is told once.

A rejection is ``(ref, reason)``: the notice's id (or a digest of the item when it has none)
and why it was not stored — unreadable in the source (``source.rejected``) or refused at
ingestion (``IngestReport.rejected``). The watcher records them in the source's state
(``source_states.last_counts["rejections"]``, so every replica, ``promopilot sources`` and
``/healthz`` see them); a rejection is *new* when that ref was not rejected for that reason
before. Each new one is logged once and gets one ops card; a poll with many new ones sends
``CARDS_PER_POLL`` cards and one summary card, not hundreds. Entries not seen for ``KEEP``
are forgotten (a notice fixed and broken again is news again).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.core import outbox
from storage.models_watch import SourceState

log = logging.getLogger(__name__)
KEEP = timedelta(days=7)
MAX_KEPT = 500
CARDS_PER_POLL = 5
LOG_PER_POLL = 20
SHOWN = 10  # rejections listed in health (``promopilot sources``, ``/healthz``)


def collect(source: object, ingest_rejected: list[tuple[str, str]]) -> dict[str, str]:
    """ref → reason for everything this poll did not store (the last reason per ref)."""
    found: dict[str, str] = {}
    for item in getattr(source, "rejected", None) or []:
        text = str(item)
        ref = str(getattr(item, "ref", "") or "#" + hashlib.sha1(text.encode(
            "utf-8", "replace")).hexdigest()[:12])
        found[ref[:160]] = str(getattr(item, "reason", "") or text)[:300]
    for ref, reason in ingest_rejected:
        found[str(ref)[:160]] = str(reason)[:300]
    return found


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def remember(state: SourceState, found: dict[str, str],
             now: datetime) -> tuple[dict[str, dict], int, list[dict]]:
    """(the rejections to keep, the sequence number, the new ones) after this poll."""
    counts = dict(state.last_counts or {})
    known = {str(k): dict(v) for k, v in dict(counts.get("rejections") or {}).items()
             if isinstance(v, dict)}
    seq = int(counts.get("rejection_seq") or 0)
    stamp, new = now.isoformat(), []
    for ref, reason in found.items():
        entry = known.get(ref)
        if entry is not None and entry.get("reason") == reason:
            entry["last"] = stamp
            continue
        seq += 1
        known[ref] = {"reason": reason, "n": seq, "first": stamp, "last": stamp}
        new.append({"ref": ref, **known[ref]})
    cutoff = now - KEEP
    kept = sorted(((r, e) for r, e in known.items()
                   if (_when(e.get("last")) or now) >= cutoff),
                  key=lambda item: str(item[1].get("last")), reverse=True)[:MAX_KEPT]
    return dict(kept), seq, new


def shown(rejections: dict[str, dict]) -> list[dict]:
    """The newest few, for health output: ref, reason and since when (ISO, UTC)."""
    newest = sorted(rejections.items(), key=lambda item: str(item[1].get("first")),
                    reverse=True)[:SHOWN]
    return [{"ref": ref, "reason": e.get("reason"), "since": e.get("first")}
            for ref, e in newest]


def announce(session: Session, state: SourceState, new: list[dict]) -> None:
    """Log each new rejection once and tell the ops channels (bounded per poll)."""
    for item in new[:LOG_PER_POLL]:
        log.warning("notice rejected", extra={"source": state.name, "platform": state.platform,
                                              "ref": item["ref"], "reason": item["reason"]})
    if len(new) > LOG_PER_POLL:
        log.warning("more notices rejected", extra={"source": state.name,
                                                    "more": len(new) - LOG_PER_POLL})
    bindings = outbox.bindings_for(session, state.platform or "*", "ops")
    if not bindings:
        log.error("no ops channel bound for rejected notices",
                  extra={"source": state.name, "new": len(new)})
        return
    cards = [(item["n"], {"source": state.name, "platform": state.platform,
                          "ref": item["ref"], "reason": item["reason"]})
             for item in new[:CARDS_PER_POLL]]
    rest = new[CARDS_PER_POLL:]
    if rest:
        cards.append((rest[0]["n"], {"source": state.name, "platform": state.platform,
                                     "more": len(rest), "refs": [r["ref"] for r in rest[:10]]}))
    for number, params in cards:
        card_key = f"notice_rejected:{state.name[:80]}:{number}"  # card_key ≤ 128
        for b in bindings:
            outbox.enqueue_card(session, b.chat, b.channel_id, card_key, "notice_rejected",
                                params, key=f"{card_key}:{b.chat}:{b.channel_id}"[:256])
