"""End to end through the REST API against the real app: a notice published on the sandbox
marketplace becomes a task, is claimed, drafted, approved, submitted, reviewed and accepted."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlmodel import select

from storage.models import ChatMessage


def act(client: httpx.Client, task_id: int, action: str, actor: str, **kw) -> httpx.Response:
    return client.post(f"/api/tasks/{task_id}/actions", json={"action": action, "actor": actor, **kw})


def test_published_notice_to_accepted_result(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    notice = {
        "id": "TM-E2E-1", "title": "天猫测试会场·双旦狂欢", "type": "大促",
        "registration": {"start": "2026-11-20T10:00:00+08:00", "end": "2027-01-05T23:59:00+08:00"},
        "event": {"start": "2027-01-10T00:00:00+08:00", "end": "2027-01-12T23:59:00+08:00"},
        "requirements": {"min_discount": 0.2, "min_stock": 50, "categories": ["美妆个护"]},
        "body": "测试",
    }
    assert client.post("/sandbox/tmall/notices", json=notice).status_code == 201

    report = live.container.extras["watcher"].run_once()
    assert len(report.new) == 1
    assert live.container.extras["watcher"].run_once().new == []  # same content → nothing new

    tasks = client.get("/api/tasks", params={"state": "new", "platform": "tmall",
                                             "limit": 200}).json()["items"]
    task = next(t for t in tasks if t["title"] == "天猫测试会场·双旦狂欢")
    tid = task["id"]
    live.drain()
    with live.container.db.session() as s:  # the notice card is in the bound channel
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert card.channel_id == "tmall-promo" and card.card["title"].endswith("双旦狂欢")

    assert act(client, tid, "claim", "li.na").json()["state"] == "claimed"
    refused = act(client, tid, "claim", "wang.fang")
    assert refused.status_code == 409 and "李娜" in refused.json()["detail"]["message"]
    assert act(client, tid, "draft", "li.na").json()["state"] == "drafting"
    detail = client.get(f"/api/tasks/{tid}").json()
    assert detail["lines"], "the declaration is filled from the data pool"
    assert all(line["sku"].startswith("MZ-") for line in detail["lines"])  # category rule
    assert act(client, tid, "request_approval", "li.na").json()["state"] == "in_approval"
    forbidden = act(client, tid, "approve", "wang.fang")
    assert forbidden.status_code == 403
    assert act(client, tid, "approve", "zhou.qiang").json()["state"] == "approved"
    assert act(client, tid, "submit", "li.na").json()["state"] == "submitting"

    live.container.submissions.submit_pending()
    assert client.get(f"/api/tasks/{tid}").json()["state"] == "in_review"
    live.container.submissions.poll_reviews()
    final = client.get(f"/api/tasks/{tid}").json()
    assert final["state"] == "accepted", final
    assert all(line["result"] == "accepted" for line in final["lines"])
    actions = [h["action"] for h in final["history"]]
    assert actions[:3] == ["notice_new", "claim", "draft"] and actions[-1] == "accept"

    live.drain()
    with live.container.db.session() as s:  # one card, updated in place, showing the result
        cards = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).all()
        assert len(cards) == 1
        assert cards[0].card["kind"] == "result" and cards[0].revision > 2


def test_platform_rejection_goes_back_to_drafting_with_reasons(live):
    from bot.declarations.autofill import current

    client = httpx.Client(base_url=live.url, timeout=30)
    tid = client.get("/api/tasks", params={"platform": "jd"}).json()["items"][0]["id"]
    for action, who in [("claim", "li.na"), ("draft", "li.na")]:
        act(client, tid, action, who)
    with live.container.db.session() as s:  # prices the platform will refuse
        _, lines = current(s, tid)
        lines[0].promo_price = lines[0].list_price
        for line in lines[1:]:
            line.promo_stock = 1
        s.add_all(lines)
    assert act(client, tid, "compliance_override", "zhou.qiang", comment="let the platform judge"
               ).status_code == 200  # the #9 pre-check would stop it before the platform
    for action, who in [("request_approval", "li.na"), ("approve", "zhou.qiang"),
                        ("submit", "li.na")]:
        assert act(client, tid, action, who).status_code == 200
    live.container.submissions.submit_pending()
    live.container.submissions.poll_reviews()
    final = client.get(f"/api/tasks/{tid}").json()
    assert final["state"] == "drafting"  # back to drafting, with the reasons
    assert [h["action"] for h in final["history"]][-2:] == ["platform_reject", "redraft"]
    codes = {line["reason_code"] for line in final["lines"]}
    assert codes == {"DISCOUNT_TOO_SMALL", "STOCK_BELOW_MINIMUM"}
    live.drain()
    with live.container.db.session() as s:
        card = s.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{tid}")).one()
        assert "活动价需至少低于原价" in str(card.card["table"])
        told = s.exec(select(ChatMessage).where(ChatMessage.visible_to.is_not(None))).all()
        assert any(f"任务 #{tid} 被平台驳回" in m.text for m in told)  # the claimant hears why

    with live.container.db.session() as s:  # fix the lines, ask again: a new version
        _, lines = current(s, tid)
        for line in lines:
            line.promo_price = (line.list_price * Decimal("0.7")).quantize(Decimal("0.01"))
            line.promo_stock = 60
        s.add_all(lines)
    asked = act(client, tid, "request_approval", "li.na")
    assert asked.status_code == 200, asked.text
    assert client.get(f"/api/tasks/{tid}").json()["declaration_version"] == 2
    for action, who in [("approve", "zhou.qiang"), ("submit", "li.na")]:
        assert act(client, tid, action, who).status_code == 200, action
    live.container.submissions.submit_pending()
    live.container.submissions.poll_reviews()
    again = client.get(f"/api/tasks/{tid}").json()
    assert again["state"] == "accepted", again["history"][-3:]


def test_api_token_protects_the_api(settings, seeded):
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from bot.web.app import create_app

    settings.api_token = SecretStr("s3cret")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/tasks").status_code == 401
        assert client.get("/api/tasks", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = client.get("/api/tasks", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()
        assert client.get("/healthz").json()["database"] is True


def test_a_person_changed_here_acts_with_their_new_roles_at_once(live):
    """Who acts is read once for a burst of their actions (bot.core.users.acting_actor):
    a change made in this process still counts from the next action on."""
    from storage.models import Task, User

    client = httpx.Client(base_url=live.url, timeout=30)
    with live.container.db.session() as s:
        first, second, third = s.exec(select(Task.id).where(Task.state == "new")
                                      .order_by(Task.id).limit(3)).all()
    assert act(client, first, "claim", "li.na").status_code == 200  # li.na is kept now
    with live.container.db.session() as s:  # ops taken away
        user = s.exec(select(User).where(User.name == "li.na")).one()
        roles = list(user.roles)
        user.roles = ["design"]
        s.add(user)
    refused = act(client, second, "claim", "li.na")
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "forbidden"
    with live.container.db.session() as s:  # given back, then the person deactivated
        user = s.exec(select(User).where(User.name == "li.na")).one()
        user.roles = roles
        s.add(user)
    assert act(client, second, "claim", "li.na").status_code == 200
    with live.container.db.session() as s:
        user = s.exec(select(User).where(User.name == "li.na")).one()
        user.active = False
        s.add(user)
    gone = act(client, third, "claim", "li.na")
    assert gone.status_code == 403 and gone.json()["detail"]["code"] == "auth.unknown_user"
