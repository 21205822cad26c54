"""Attaching qualification documents to a declaration: the fix the pre-check suggests
("attach document #1"), by command (``attach <task> <document id>`` / ``附上 <编号> <资质编号>``)
or with the declaration card's button, which attaches every document the pre-check names."""

from __future__ import annotations

from sqlmodel import Session

from bot.core.actions import ActionRequest, handles
from bot.core.errors import Conflict, Invalid, NotFound
from bot.core.lifecycle import Outcome
from bot.declarations import autofill, compliance
from storage.models import AuditEvent, Campaign, QualificationDocument, Task


def attach(session: Session, task: Task, actor, doc_ids: list[int],
           event_id: str | None = None) -> list[QualificationDocument]:
    """Attach documents from the pool to the current declaration; audited, cards refresh."""
    autofill.may_edit(session, task, actor)
    declaration, _ = autofill.current(session, task.id or 0)
    if declaration is None:
        raise Invalid("err.no_declaration", task_id=task.id)
    campaign = session.get(Campaign, task.campaign_id)
    assert campaign is not None
    until = compliance.needed_until(campaign)
    attached = [int(d) for d in declaration.documents or [] if str(d).isdigit()]
    added: list[QualificationDocument] = []
    for doc_id in dict.fromkeys(doc_ids):
        doc = session.get(QualificationDocument, doc_id)
        if doc is None:
            raise NotFound("decl.no_document", doc=doc_id)
        if doc.valid_until is not None and doc.valid_until <= until:
            raise Invalid("decl.doc_expires", doc=doc_id, title=doc.title, until=doc.valid_until,
                          end=until)
        if doc_id in attached:
            if len(doc_ids) == 1:
                raise Conflict("decl.doc_already", doc=doc_id, title=doc.title, task_id=task.id)
            continue
        attached.append(doc_id)
        added.append(doc)
    if not added:
        return []
    declaration.documents = list(attached)  # a new list: the JSON column sees the change
    session.add(declaration)
    session.add(AuditEvent(task_id=task.id, actor=actor.name, action="attach_document",
                           event_id=event_id, detail={"declaration": declaration.version,
                                                      "documents": [d.id for d in added]}))
    session.flush()
    autofill.refresh_cards(session, task)
    return added


def suggested(session: Session, task: Task) -> list[int]:
    """The pool documents the pre-check names as the fix for missing or expiring ones."""
    declaration, _ = autofill.current(session, task.id or 0)
    if declaration is None:
        raise Invalid("err.no_declaration", task_id=task.id)
    return suggested_in(compliance.errors(compliance.check(session, task, declaration)))


def suggested_in(found: list[compliance.Violation]) -> list[int]:
    """Document ids named by the document violations' fix ("attach document #1")."""
    ids = [v.params.get("doc") for v in found if v.kind == "documents" and v.params.get("doc")]
    return sorted({int(i) for i in ids if str(i).isdigit()})


@handles("attach_document")
def attach_handler(session: Session, task: Task, req: ActionRequest) -> Outcome:
    """The card's button: attach what the pre-check suggests (a stale card is refused)."""
    if req.version is not None and req.version != task.version:
        raise Conflict("err.stale_card", task_id=task.id)
    ids = [int(i) for i in req.payload.get("documents") or [] if str(i).isdigit()]
    ids = ids or suggested(session, task)
    if not ids:
        raise Invalid("decl.nothing_to_attach", task_id=task.id)
    attach(session, task, req.actor, ids, req.event_id)
    task = session.get(Task, task.id, populate_existing=True) or task
    return Outcome(task.id or 0, req.action, task.state, task.state, task.version, changed=True)
