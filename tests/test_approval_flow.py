"""Approvals end to end through the REST API and the web console (a chat adapter): multi-step,
reject with reason, request changes, self-approval, wrong role, second decision, SLA escalation
under controlled time, and the human gate that submits after final approval."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlmodel import select

from bot.approvals import policy
from bot.approvals import service as approvals
from bot.declarations.autofill import current
from storage.models import AuditEvent, Campaign, ChatMessage, OutboxMessage, Task, User
from storage.models_approval import ApprovalEscalation, ApprovalRound
from storage.types import utcnow


@pytest.fixture
def live(live):
    """The shared live app; its connection pool is closed afterwards (PostgreSQL is shared)."""
    yield live
    live.container.db.dispose()


def act(client: httpx.Client, tid: int, action: str, actor: str, **kw) -> httpx.Response:
    return client.post(f"/api/tasks/{tid}/actions", json={"action": action, "actor": actor, **kw})


def task_on(live, platform: str) -> int:
    with live.container.db.session() as s:
        return s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == platform).order_by(Task.id)).first()


def drafted(live, client, platform="tmall", discount: str | None = None) -> int:
    tid = task_on(live, platform)
    assert act(client, tid, "claim", "li.na").status_code == 200
    assert act(client, tid, "draft", "li.na").status_code == 200
    if discount:
        with live.container.db.session() as s:
            _, lines = current(s, tid)
            for line in lines:
                line.promo_price = (line.list_price * (1 - Decimal(discount))).quantize(
                    Decimal("0.01"))
                s.add(line)
    return tid


def approval_card(live, tid: int) -> ChatMessage:
    live.drain()
    with live.container.db.session() as s:
        rows = s.exec(select(ChatMessage).where(ChatMessage.card_key.like(f"approval:{tid}:%"),
                                                ChatMessage.channel_id == "approvals")
                      .order_by(ChatMessage.id.desc())).all()
    assert rows, "an approval card is posted in the approvals channel"
    return rows[0]


def click(client, card: ChatMessage, action: str, user: str, comment=None) -> httpx.Response:
    value = next(b["value"] for b in card.card["buttons"] if b["action"] == action)
    return client.post("/console/api/click", json={"channel": "approvals", "user": user,
                                                   "value": value, "comment": comment})


def fields(card: ChatMessage) -> str:
    return " | ".join(f"{f['label']}: {f['value']}" for f in card.card["fields"])


def test_multi_step_approval_by_card_buttons_and_rest(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    tid = drafted(live, client, discount="0.35")  # deeper than 30% → manager, then finance
    assert act(client, tid, "request_approval", "li.na").json()["state"] == "in_approval"
    card = approval_card(live, tid)
    body = card.card
    assert body["kind"] == "approval" and not body["locked"]
    assert body["table_header"] == ["SKU", "标价→活动价", "折扣", "毛利", "活动库存/库存"]
    assert body["table"][0]["cells"][2] == "35%" and "→" in body["table"][0]["cells"][1]
    assert "李娜" in fields(card) and "35%" in fields(card)  # who asked, why
    assert "预检结果" in fields(card)  # the compliance pre-check, shown to the approver
    assert "zhou.qiang" in body["mentions"] and "zhao.lei" not in body["mentions"]

    early = act(client, tid, "approve", "zhao.lei")  # finance, but step 1 is the manager's
    assert early.status_code == 409 and "第 1 步" in early.json()["detail"]["message"]

    assert click(client, card, "approve", "zhou.qiang").json()["ok"] is True
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_approval"
    card = approval_card(live, tid)
    assert "zhao.lei" in card.card["mentions"] and "周强" in fields(card)

    again = click(client, card, "approve", "zhou.qiang")  # the manager's step is decided
    assert again.json()["ok"] is False and "已由 周强(经理)" in again.json()["text"]

    assert act(client, tid, "approve", "zhao.lei").json()["state"] == "approved"
    card = approval_card(live, tid)
    assert card.card["locked"] and card.card["buttons"] == []
    assert "赵磊" in card.card["footer"] and card.card["color"] == "green"
    late = act(client, tid, "reject", "zhou.qiang", comment="too late")
    assert late.status_code == 409 and "已结束" in late.json()["detail"]["message"]
    history = [h["action"] for h in client.get(f"/api/tasks/{tid}").json()["history"]]
    assert history[-2:] == ["approve_step", "approve"]


def test_reject_needs_a_reason_and_goes_back_to_drafting(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    tid = drafted(live, client)
    act(client, tid, "request_approval", "li.na")
    card = approval_card(live, tid)
    button = next(b for b in card.card["buttons"] if b["action"] == "reject")
    assert button["needs_input"] is True  # the console/chat asks for the reason first
    no_reason = click(client, card, "reject", "zhou.qiang")
    assert no_reason.json()["ok"] is False and "原因" in no_reason.json()["text"]
    assert click(client, card, "reject", "zhou.qiang", comment="折扣太深,毛利不够").json()["ok"]
    detail = client.get(f"/api/tasks/{tid}").json()
    assert detail["state"] == "drafting"
    assert detail["history"][-1]["detail"]["comment"] == "折扣太深,毛利不够"
    card = approval_card(live, tid)
    assert card.card["locked"] and card.card["color"] == "red"
    assert "折扣太深" in fields(card) and "已驳回" in card.card["footer"]


def test_request_changes_then_old_card_is_stale_on_the_new_round(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    tid = drafted(live, client)
    act(client, tid, "request_approval", "li.na")
    old = approval_card(live, tid)
    assert act(client, tid, "request_changes", "zhou.qiang",
               comment="SKU MZ-002 库存写少了").json()["state"] == "drafting"
    assert act(client, tid, "request_approval", "li.na").json()["state"] == "in_approval"
    new = approval_card(live, tid)
    assert new.card_key != old.card_key and not new.card["locked"]
    stale = click(client, old, "approve", "zhou.qiang")  # a button from the first round
    assert stale.json()["ok"] is False and "过期" in stale.json()["text"]
    assert click(client, new, "approve", "zhou.qiang").json()["ok"]
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "approved"


def test_self_approval_and_wrong_role_are_refused(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    with live.container.db.session() as s:
        s.exec(select(User).where(User.name == "alex")).one().roles = ["ops", "manager"]
    tid = task_on(live, "tmall")
    for action in ("claim", "draft", "request_approval"):
        assert act(client, tid, action, "alex").status_code == 200
    own = act(client, tid, "approve", "alex")
    assert own.status_code == 403 and "own request" in own.json()["detail"]["message"]
    wrong = act(client, tid, "approve", "wang.fang")  # market
    assert wrong.status_code == 403 and "经理" in wrong.json()["detail"]["message"]
    assert "周强" in wrong.json()["detail"]["message"]  # the refusal names who can decide
    legal = act(client, tid, "approve", "sun.li")  # an approver role, but not this step's
    assert legal.status_code == 403
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_approval"


def test_timeout_escalates_to_the_managers_manager_never_decides(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    db = live.container.db
    with db.session() as s:  # the manager reports to the admin (general manager)
        admin = s.exec(select(User).where(User.name == "admin")).one()
        s.exec(select(User).where(User.name == "zhou.qiang")).one().manager_id = admin.id
    tid = drafted(live, client)
    act(client, tid, "request_approval", "li.na")
    assert approvals.escalate_overdue(db) == 0  # not due yet
    later = utcnow() + timedelta(hours=4, minutes=1)
    assert approvals.escalate_overdue(db, now=later) == 1
    assert approvals.escalate_overdue(db, now=later) == 0  # once per level
    with db.session() as s:
        esc = s.exec(select(ApprovalEscalation)).one()
        assert esc.escalated_to == [admin.id] and esc.level == 1
        assert s.get(Task, tid).state == "in_approval"  # the timeout decided nothing
        private = s.exec(select(OutboxMessage).where(
            OutboxMessage.key.like(f"approval-escalated:{esc.step_id}:1:{admin.id}%"))).all()
        assert private and "超时" in private[0].payload["text"]
        events = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.task_id == tid))]
        assert "approval_escalated" in events and "approve" not in events
    card = approval_card(live, tid)
    assert "升级给 管理员 Admin" in fields(card) and "admin" in card.card["mentions"]
    assert click(client, card, "approve", "admin").json()["ok"]  # the escalation may decide
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "approved"


def test_second_level_escalation_and_nobody_above(live):
    db = live.container.db
    client = httpx.Client(base_url=live.url, timeout=30)
    tid = drafted(live, client)
    act(client, tid, "request_approval", "li.na")
    t0 = utcnow()
    approvals.escalate_overdue(db, now=t0 + timedelta(hours=5))  # zhou.qiang has no manager
    approvals.escalate_overdue(db, now=t0 + timedelta(hours=10))
    with db.session() as s:
        rows = s.exec(select(ApprovalEscalation).order_by(ApprovalEscalation.level)).all()
        admin = s.exec(select(User).where(User.name == "admin")).one()
        assert [r.level for r in rows] == [1, 2]
        assert rows[0].escalated_to == [admin.id]  # nobody above: the admins
        assert s.get(Task, tid).state == "in_approval"


def test_gate_auto_submits_after_final_approval_and_says_why(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    auto = policy.load().model_copy(deep=True)
    auto.gates = {"default": {"*": {"submit": "person"}, "jd": {"submit": "auto"}}}
    with policy.use(auto):
        jd = drafted(live, client, platform="jd")
        act(client, jd, "request_approval", "li.na")
        assert act(client, jd, "approve", "zhou.qiang").json()["state"] == "submitting"
        tm = drafted(live, client, platform="tmall")
        act(client, tm, "request_approval", "li.na")
        assert act(client, tm, "approve", "zhou.qiang").json()["state"] == "approved"
    detail = client.get(f"/api/tasks/{jd}").json()
    submit = [h for h in detail["history"] if h["action"] == "submit"][0]
    assert submit["actor"] == "gates" and submit["detail"]["reason"] == \
        "gates.default.jd.submit=auto"
    card = approval_card(live, jd)
    assert "自动提交" in fields(card) and "gates.default.jd.submit=auto" in fields(card)
    with live.container.db.session() as s:
        rnd = s.exec(select(ApprovalRound).where(ApprovalRound.task_id == jd)).one()
        assert rnd.auto[0]["done"] is True


def test_gate_auto_submit_blocked_by_a_submit_check(live):
    from bot.core import actions
    from bot.core.errors import Invalid

    def blocker(session, task, req):
        raise Invalid("err.usage", usage="pre-check failed: price above 30-day low")

    client = httpx.Client(base_url=live.url, timeout=30)
    auto = policy.load().model_copy(deep=True)
    auto.gates = {"default": {"jd": {"submit": "auto"}}}
    actions.guard("submit")(blocker)
    try:
        with policy.use(auto):
            jd = drafted(live, client, platform="jd")
            act(client, jd, "request_approval", "li.na")
            assert act(client, jd, "approve", "zhou.qiang").json()["state"] == "approved"
    finally:
        actions.before_action["submit"].remove(blocker)
    card = approval_card(live, jd)
    assert "未自动提交" in fields(card) and "30-day low" in fields(card)


def test_sla_reminder_then_escalation_under_controlled_time(live):
    """#7's sweep sends 催办 at 50 % of the step's SLA; at the SLA it escalates (not decides)."""
    from bot.watch import reminders
    from bot.watch.settings import WatchSettings
    from storage.models import ApprovalStep

    db = live.container.db
    client = httpx.Client(base_url=live.url, timeout=30)
    tid = drafted(live, client)
    act(client, tid, "request_approval", "li.na")
    with db.session() as s:
        step = s.exec(select(ApprovalStep).where(ApprovalStep.task_id == tid)).one()
        manager = s.exec(select(User).where(User.name == "zhou.qiang")).one()
    start = step.created_at
    watch = WatchSettings(_env_file=None)
    assert reminders.nag_approvals(db, watch, start + timedelta(hours=1)) == 0
    assert reminders.nag_approvals(db, watch, start + timedelta(hours=2, minutes=5)) == 1
    with db.session() as s:
        nags = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "private",
                                                  OutboxMessage.key.like("reminder:%"))).all()
        assert [n.payload["user_id"] for n in nags] == [manager.id]
    assert approvals.escalate_overdue(db, now=start + timedelta(hours=3)) == 0
    assert approvals.escalate_overdue(db, now=start + timedelta(hours=4, minutes=1)) == 1
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_approval"
    card = approval_card(live, tid)
    assert "升级给" in fields(card)


def test_any_of_step_needs_one_of_its_roles(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    tid = drafted(live, client, platform="pdd", discount="0.25")
    act(client, tid, "request_approval", "li.na")
    assert act(client, tid, "approve", "zhou.qiang").json()["state"] == "in_approval"
    card = approval_card(live, tid)
    assert "任一人批准即可" in fields(card)
    assert {"zhao.lei", "sun.li"} <= set(card.card["mentions"])
    assert act(client, tid, "approve", "sun.li").json()["state"] == "approved"  # legal suffices
    card = approval_card(live, tid)
    assert "无需审批" in fields(card) and card.card["locked"]


def test_team_policy_names_who_holds_a_role(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    with live.container.db.session() as s:
        from bot.core.users import add_user

        add_user(s, "qian.wu", ["manager"], display_name="钱伍(经理)", chat="web",
                 external_id="qian.wu")
    named = policy.load().model_copy(deep=True)
    named.teams["default"].people = {"manager": ["qian.wu"]}
    with policy.use(named):
        tid = drafted(live, client)
        act(client, tid, "request_approval", "li.na")
        card = approval_card(live, tid)
        assert card.card["mentions"] == ["qian.wu"]
        assert act(client, tid, "approve", "zhou.qiang").status_code == 403  # not named
        assert act(client, tid, "approve", "qian.wu").json()["state"] == "approved"
