"""Task and campaign pages: the notice and its requirements, the declaration lines with
margin, the pre-check, approvals, submission attempts, the audit history and the chat
messages the task produced (a private reply only for the person it was for)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import or_
from sqlmodel import Session, select

from bot.core.i18n import t
from bot.web import dash_data as data
from bot.web.dash_board import MAX_REASON
from bot.web.dash_common import Pages, Refused, Viewer
from cards.approval import step_reason
from cards.builders import BUTTONS_BY_STATE, SYSTEM_ACTORS, button, discount, requirements_text
from cards.declaration import margin
from storage.models import (
    ApprovalStep,
    AuditEvent,
    Campaign,
    ChatMessage,
    Product,
    SubmissionAttempt,
    Task,
    User,
)
from storage.models_approval import ApprovalRound, SubmissionRun
from storage.models_watch import NoticeBody
from storage.types import utcnow

log = logging.getLogger(__name__)
MAX_MESSAGES = 100
TITLE_SHOWN = 200


def _names(session: Session) -> tuple[dict[int, str], dict[str, str]]:
    users = session.exec(select(User)).all()
    return ({u.id or 0: u.display_name for u in users},
            {u.name: u.display_name for u in users})


def _pct(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def _short(title: str, limit: int = TITLE_SHOWN) -> str:
    """A page heading; the notice section below has the whole title."""
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _step_state(state: str, lang: str) -> str:
    if state == "pending":
        return t("dash.step.pending", lang)
    shown = t(f"card.decision.{state}", lang)
    return state if shown.startswith("card.decision.") else shown


def _precheck(session: Session, task: Task, declaration, lang: str) -> tuple[list, str]:
    from bot.declarations import compliance

    try:
        found = compliance.check(session, task, declaration)
    except Exception:  # noqa: BLE001 - the page still shows everything else
        log.exception("pre-check failed on the task page", extra={"task_id": task.id})
        return [], t("dash.task.precheck_failed", lang)
    return [{"severity": v.severity, "text": v.describe(lang)} for v in found], ""


def task_context(session: Session, task: Task, viewer: Viewer, lang: str) -> dict:
    from bot.declarations.autofill import current

    campaign = session.get(Campaign, task.campaign_id)
    by_id, by_name = _names(session)
    now = utcnow()
    waiting = task.state in data.UNSUBMITTED and task.deadline is not None
    overdue = waiting and task.deadline <= now
    at_risk = waiting and not overdue and task.deadline - now <= data.AT_RISK
    body = session.get(NoticeBody, task.campaign_id)
    declaration, lines = current(session, task.id or 0)
    costs = {p.sku: p.cost for p in session.exec(select(Product).where(
        Product.sku.in_([ln.sku for ln in lines])))} if lines else {}
    shown_lines = [{
        "sku": ln.sku, "list": ln.list_price, "promo": ln.promo_price, "stock": ln.promo_stock,
        "discount": discount(ln.list_price, ln.promo_price), "cost": costs.get(ln.sku),
        "margin": _pct(margin(ln.promo_price, costs.get(ln.sku))),
        "negative": (margin(ln.promo_price, costs.get(ln.sku)) or 0) < 0,
        "result": t(f"card.result.{ln.result}", lang) if ln.result else "",
        "reason": ln.reason_text or ln.reason_code or ""} for ln in lines]
    checks, check_note = _precheck(session, task, declaration, lang) if declaration \
        else ([], "")
    rounds = []
    for rnd in session.exec(select(ApprovalRound).where(ApprovalRound.task_id == task.id)
                            .order_by(ApprovalRound.id)):
        steps = session.exec(select(ApprovalStep).where(ApprovalStep.id.in_(
            rnd.step_ids or [0])).order_by(ApprovalStep.seq, ApprovalStep.id)).all()
        rounds.append({"round": rnd, "steps": [{
            "step": s, "role": t(f"role.{s.role}", lang), "reason": step_reason(s.reason, lang),
            "decided_by": by_id.get(s.decided_by or 0, ""),
            "state": _step_state(s.state, lang)} for s in steps]})
    attempts = session.exec(select(SubmissionAttempt).where(
        SubmissionAttempt.task_id == task.id).order_by(SubmissionAttempt.id)).all()
    runs = session.exec(select(SubmissionRun).where(SubmissionRun.task_id == task.id)
                        .order_by(SubmissionRun.id)).all()
    history = []
    for e in session.exec(select(AuditEvent).where(AuditEvent.task_id == task.id)
                          .order_by(AuditEvent.id)):
        who = by_name.get(e.actor) or ("PromoPilot" if e.actor in SYSTEM_ACTORS else e.actor)
        what = t(f"action.{e.action}", lang)
        history.append({"event": e, "who": who,
                        "what": e.action if what == f"action.{e.action}" else what,
                        "from": t(f"state.{e.from_state}", lang) if e.from_state else "",
                        "to": t(f"state.{e.to_state}", lang) if e.to_state else "",
                        "comment": str((e.detail or {}).get("comment") or "")})
    visible = or_(ChatMessage.visible_to.is_(None), ChatMessage.visible_to == (viewer.user_id
                                                                               or -1))
    messages = []
    for m in session.exec(select(ChatMessage).where(ChatMessage.task_id == task.id, visible)
                          .order_by(ChatMessage.id).limit(MAX_MESSAGES)):
        card = m.card or {}
        messages.append({"message": m, "what": str(card.get("title") or m.text or "")[:300],
                         "kind": str(card.get("kind") or ("text" if m.text else "")),
                         "posted": bool(m.message_ref) or m.chat == "web"})
    console = next((m["message"].channel_id for m in messages
                    if m["message"].chat == "web" and m["message"].card_key), None)
    return {
        "task": task, "campaign": campaign, "overdue": overdue, "at_risk": at_risk,
        "console_url": f"/console?channel={quote(console, safe='')}&task={task.id}" if console
        else f"/console?task={task.id}",
        "owner": by_id.get(task.claimed_by or 0, ""),
        "platform": data.platform_names(session, lang).get(campaign.platform, campaign.platform)
        if campaign else "",
        "requirements": requirements_text(campaign.requirements or {}, lang) if campaign else "",
        "notice_text": body.text if body else "", "declaration": declaration,
        "lines": shown_lines, "checks": checks, "check_note": check_note, "rounds": rounds,
        "attempts": attempts, "runs": runs, "history": history, "messages": messages,
        "buttons": [button(a, task, lang, style) for a, style in
                    BUTTONS_BY_STATE.get(task.state, [])],
        "acting": viewer.acting_fields(), "limit": MAX_REASON,
        "source_url": campaign.source_url if campaign and campaign.source_url.startswith(
            ("https://", "http://")) else "",
        "shops": data.shops_of(campaign) if campaign else [],
        "categories": data.categories_of(campaign) if campaign else [],
    }


def build_router(container, pages: Pages) -> APIRouter:
    db = container.db
    router = APIRouter(include_in_schema=False)

    def load(task_id: int, lang: str) -> Task:
        with db.session() as session:
            task = session.get(Task, task_id) if 0 < task_id < 2**31 else None
        if task is None:
            raise Refused(404, "dash.task.not_found", lang, task_id=task_id)
        return task

    @router.get("/dash/tasks/{task_id}", response_class=HTMLResponse)
    def task_page(task_id: int, request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "task")
        load(task_id, lang)
        with db.session() as session:
            context = task_context(session, session.get(Task, task_id), viewer, lang)
        title = _short(f"#{task_id} {context['campaign'].title if context['campaign'] else ''}")
        return pages.render(request, "dashboard/task.html", viewer, lang, page="task",
                            title=title, **context)

    @router.get("/dash/tasks/{task_id}/body", response_class=HTMLResponse)
    def task_body(task_id: int, request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "task")
        load(task_id, lang)
        with db.session() as session:
            context = task_context(session, session.get(Task, task_id), viewer, lang)
        return HTMLResponse(pages.partial("dashboard/task_body.html", lang, **context))

    @router.get("/dash/campaigns/{campaign_id}", response_class=HTMLResponse)
    def campaign_page(campaign_id: int, request: Request) -> HTMLResponse:
        viewer, lang = pages.viewer(request, "task")
        with db.session() as session:
            campaign = session.get(Campaign, campaign_id) if 0 < campaign_id < 2**31 else None
            if campaign is None:
                raise Refused(404, "dash.campaign.not_found", lang, campaign_id=campaign_id)
            tasks = session.exec(select(Task).where(Task.campaign_id == campaign_id)
                                 .order_by(Task.id)).all()
            body = session.get(NoticeBody, campaign_id)
            context = {"campaign": campaign, "tasks": tasks,
                       "notice_text": body.text if body else "",
                       "requirements": requirements_text(campaign.requirements or {}, lang),
                       "platform": data.platform_names(session, lang).get(
                           campaign.platform, campaign.platform),
                       "source_url": campaign.source_url if campaign.source_url.startswith(
                           ("https://", "http://")) else ""}
        return pages.render(request, "dashboard/campaign.html", viewer, lang, page="task",
                            title=_short(campaign.title), **context)

    return router
