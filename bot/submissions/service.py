"""Submitting approved declarations and recovering from failure.

Each task goes through its channel chain (API → RPA → Excel/assisted, as configured) with one
idempotency key; a channel that keeps failing falls back to the next one and the team gets a
context card: what failed, the last error, what was tried, with "retry" and "I'll take over".
The channels are a port (``SubmissionChannels``) the submitters adapter implements.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import cards.submission  # noqa: F401  (registers the "submission" card builder)
from bot.core import lifecycle
from bot.core.actors import Actor
from bot.core.ports import WAITING, SubmissionChannels, SubmissionItem
from bot.declarations.autofill import current
from bot.submissions.review import apply_review
from bot.submissions.runs import (
    API_CHANNELS,
    audit,
    enqueue_submission_card,
    idempotency_key,
    mark_sent,
    start_handoff,
)
from storage.db import Database
from storage.models import Campaign, SubmissionAttempt, Task
from storage.models_approval import SubmissionRun
from storage.types import utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)



class SubmissionService:
    def __init__(self, db: Database, channels: SubmissionChannels) -> None:
        self.db = db
        self.channels = channels

    def submit_pending(self) -> int:
        """Send every task in ``submitting``; each outcome in its own transaction."""
        with self.db.session() as session:
            ids = list(session.exec(select(Task.id).where(Task.state == "submitting")))
        done = 0
        for task_id in ids:
            done += self.submit_one(task_id)
        return done

    # -- one task through its channel chain -------------------------------------------

    def _claim_run(self, task_id: int) -> tuple | None:
        """Take the run's lease (two workers never send the same run), creating it once."""
        with self.db.session() as session:
            task = session.get(Task, task_id)
            if task is None or task.state != "submitting":
                return None
            campaign = session.get(Campaign, task.campaign_id)
            declaration, lines = current(session, task_id)
            assert campaign is not None and declaration is not None
            run = session.exec(select(SubmissionRun).where(
                SubmissionRun.task_id == task_id,
                SubmissionRun.declaration_version == declaration.version)).first()
            if run is None:
                run = SubmissionRun(
                    task_id=task_id, declaration_version=declaration.version,
                    idempotency_key=idempotency_key(task_id, declaration.version),
                    channels=self._chain(campaign.platform),
                    assignee=task.claimed_by)
                session.add(run)
                session.flush()
            now = utcnow()
            if run.status == "failed":  # submitted again after giving up: start the chain over
                run.status, run.channel_index, run.handoff = "active", 0, {}
                session.add(run)
                session.flush()
            taken = session.execute(
                update(SubmissionRun).where(
                    SubmissionRun.id == run.id,
                    or_(SubmissionRun.status == "active",
                        (SubmissionRun.status == "working") & (SubmissionRun.updated_at
                                                               < now - LEASE)))
                .values(status="working", updated_at=now)
                .execution_options(synchronize_session=False))
            if taken.rowcount != 1:
                return None
            items = [SubmissionItem(line.sku, line.list_price, line.promo_price,
                                    line.promo_stock) for line in lines]
            return (run.id, campaign.platform, campaign.external_id, items,
                    run.idempotency_key, declaration.version)

    def _chain(self, platform: str) -> list[str]:
        """The configured channels that are set up for this platform (RPA needs a URL …)."""
        wanted = self.channels.chain(platform)
        ready = [c for c in wanted if self.channels.get(c, platform) is not None]
        skipped = [c for c in wanted if c not in ready]
        if skipped:
            log.info("submission channels not set up", extra={"platform": platform,
                                                               "skipped": skipped})
        return ready or wanted  # nothing ready: try anyway, so the failure is recorded

    def submit_one(self, task_id: int) -> int:
        try:
            claimed = self._claim_run(task_id)
        except IntegrityError:  # another worker created the run at the same moment
            log.info("submission run raced", extra={"task_id": task_id})
            return 0
        if claimed is None:
            return 0
        run_id, platform, external_id, items, key, version = claimed
        while True:
            with self.db.session() as session:
                run = session.get(SubmissionRun, run_id)
                assert run is not None
                channel = run.channels[run.channel_index] if run.channel_index < len(
                    run.channels) else None
            if channel is None:
                self._give_up(run_id, task_id)
                return 1
            submitter = self.channels.get(channel, platform)
            if submitter is None:
                self._failed(run_id, task_id, version, key, channel,
                             "channel not configured for this platform")
                continue
            try:
                receipt = submitter.submit(external_id, items, key)
            except Exception as exc:  # noqa: BLE001 - recorded, shown on the card, falls back
                log.warning("submission failed", extra={"task_id": task_id, "key": key,
                                                        "channel": channel,
                                                        "error": repr(exc)[:300]})
                self._failed(run_id, task_id, version, key, channel, repr(exc))
                continue
            if receipt.status == WAITING:
                self._handoff(run_id, task_id, version, key, channel, receipt.reference,
                              receipt.raw.get("handoff", {}))
            else:
                self._sent(run_id, task_id, version, key, channel, receipt.reference,
                           receipt.raw)
            return 1

    def _attempt_no(self, session: Session, task_id: int) -> int:
        return len(list(session.exec(select(SubmissionAttempt.id).where(
            SubmissionAttempt.task_id == task_id)))) + 1

    def _failed(self, run_id: int, task_id: int, version: int, key: str, channel: str,
                error: str, record_attempt: bool = True) -> bool:
        """Record a failed channel; True when another channel is left to try."""
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            task = session.get(Task, task_id)
            assert run is not None and task is not None
            if record_attempt:
                session.add(SubmissionAttempt(
                    task_id=task_id, declaration_version=version, idempotency_key=key,
                    channel=channel, status="failed", error=error[:2000],
                    attempt_no=self._attempt_no(session, task_id)))
            audit(session, task_id, "submitter", "submission_attempt", channel=channel,
                   status="failed", error=error[:500], key=key)
            run.tried = [*run.tried, {"channel": channel, "error": error[:500],
                                      "at": utcnow().isoformat()}]
            run.last_error, run.updated_at = error[:2000], utcnow()
            run.channel_index += 1
            more = run.channel_index < len(run.channels)
            session.add(run)
            task.last_error = f"{channel}: {error}"[:500]
            session.add(task)
            session.flush()
            if more:
                enqueue_submission_card(session, task, run)  # tell people we fell back
            return more

    def _give_up(self, run_id: int, task_id: int) -> None:
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            assert run is not None
            run.status, run.updated_at = "failed", utcnow()
            session.add(run)
            lifecycle.apply(session, task_id, "submission_failed", Actor.system("submitter"),
                            detail={"error": (run.last_error or "")[:500],
                                    "key": run.idempotency_key,
                                    "tried": [x["channel"] for x in run.tried]})
            task = session.get(Task, task_id)
            assert task is not None
            enqueue_submission_card(session, task, run)
        log.error("submission gave up", extra={"task_id": task_id, "run_id": run_id})

    def _handoff(self, run_id: int, task_id: int, version: int, key: str, channel: str,
                 reference: str, handoff: dict) -> None:
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            task = session.get(Task, task_id)
            assert run is not None and task is not None
            start_handoff(session, task, run, channel, reference, handoff, version, key)

    def _sent(self, run_id: int, task_id: int, version: int, key: str, channel: str,
              reference: str, raw: dict) -> None:
        with self.db.session() as session:
            run = session.get(SubmissionRun, run_id)
            assert run is not None
            session.add(SubmissionAttempt(
                task_id=task_id, declaration_version=version, idempotency_key=key,
                channel=channel, status="sent", reference=reference,
                attempt_no=self._attempt_no(session, task_id), response=raw))
            audit(session, task_id, "submitter", "submission_attempt", channel=channel,
                   status="sent", reference=reference, key=key)
            run.status, run.updated_at = "sent", utcnow()
            session.add(run)
            mark_sent(session, task_id, Actor.system("submitter"), reference, key, channel)
            if run.tried:
                task = session.get(Task, task_id)
                assert task is not None
                enqueue_submission_card(session, task, run)

    # -- review ---------------------------------------------------------------------------

    def poll_reviews(self) -> int:
        """Ask the marketplace about every task in review; apply finished reviews."""
        with self.db.session() as session:
            rows = list(session.exec(
                select(Task.id, Campaign.platform, SubmissionAttempt.reference,
                       SubmissionAttempt.channel)
                .join(Campaign, Campaign.id == Task.campaign_id)
                .join(SubmissionAttempt, SubmissionAttempt.task_id == Task.id)
                .where(Task.state.in_(("submitted", "in_review")),
                       SubmissionAttempt.status == "sent",
                       SubmissionAttempt.channel.in_(API_CHANNELS))
            ))
        done = 0
        for task_id, platform, reference, channel in rows:
            submitter = self.channels.get(channel, platform)
            if submitter is None or reference is None:
                continue
            try:
                status = submitter.status(reference)
            except Exception as exc:  # noqa: BLE001 - polled again next round
                log.warning("review poll failed", extra={"task_id": task_id, "channel": channel,
                                                         "error": repr(exc)[:300]})
                continue
            if status.status != "reviewing":
                with self.db.session() as session:
                    apply_review(session, task_id, reference, status)
                done += 1
        return done

