"""The dashboard's HTTP side on SQLite and PostgreSQL: filters (422 on unknown values), the
board export, settings edits (validated, audited, admins only), the one error-body shape,
languages, the calendar and chart feeds, and board actions through the chat router."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pydantic import SecretStr
from sqlmodel import select

from bot.core.i18n import t
from bot.core.passwords import set_password
from cards.callback import CallbackData
from storage.models import AuditEvent, Campaign, ChatBinding, ChatMessage, Task, User
from storage.types import utcnow
from tests import dashboard_data

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture
def client(settings, seeded) -> Iterator[TestClient]:
    from bot.web.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def ids(page: str) -> set[int]:
    import re

    return {int(n) for n in re.findall(r'class="item[^"]*" data-task="(\d+)"', page)}


def task_ids(db, **where) -> set[int]:
    with db.session() as s:
        query = select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
        for name, value in where.items():
            query = query.where(getattr(Campaign, name) == value)
        return set(s.exec(query))


# -- filters ---------------------------------------------------------------------------------

def test_unknown_filter_values_are_refused_with_422_and_the_known_values(client):
    for url in ("/dash/board/items?state=bogus", "/?platform=bogus", "/?owner=nobody",
                "/?shop=nowhere", "/?category=nothing", "/dash/board/export?platform=x",
                "/?closed=maybe", "/dash/api/calendar?start=2026-01-01&end=2026-02-01&state=x"):
        r = client.get(url, headers=JSON)
        assert r.status_code == 422, url
        assert r.json()["detail"]["code"] == "dash.bad_filter", url
    r = client.get("/?platform=bogus", headers=JSON)
    assert "「bogus」无效" in r.json()["detail"]["message"]
    assert "tmall" in r.json()["detail"]["message"]  # says what is known
    en = client.get("/dash/board/items?state=bogus", headers={**JSON, "Accept-Language": "en"})
    assert en.json()["detail"]["message"].startswith("Filter State: bogus is not a known value")
    page = client.get("/?state=bogus", headers=HTML)  # a browser gets the page, with why
    assert page.status_code == 422 and "「bogus」无效" in page.text and 'id="refusal"' in page.text
    too_long = client.get("/?q=" + "词" * 201, headers=JSON)
    assert too_long.status_code == 422 and "200" in too_long.json()["detail"]["message"]


def test_rest_api_filters_refuse_unknown_values(client):
    r = client.get("/api/tasks?state=bogus")
    assert r.status_code == 422 and r.json()["detail"]["code"] == "dash.bad_filter"
    assert "claimed" in r.json()["detail"]["message"]
    assert client.get("/api/tasks?state=new,bogus").status_code == 422
    assert client.get("/api/tasks?platform=amazon").status_code == 422
    assert client.get("/api/campaigns?platform=amazon").status_code == 422
    new = client.get("/api/tasks?state=new&platform=tmall,jd")
    assert new.status_code == 200 and {t["platform"] for t in new.json()["items"]} == {
        "tmall", "jd"}
    assert client.get("/api/campaigns?platform=jd").json()["items"][0]["platform"] == "jd"


def test_board_filters_and_search_narrow_the_list(client, seeded):
    everything = ids(client.get("/").text)
    assert everything == task_ids(seeded)
    assert ids(client.get("/?platform=jd").text) == task_ids(seeded, platform="jd")
    assert ids(client.get("/dash/board/items?platform=tmall").text) == \
        task_ids(seeded, platform="tmall")
    assert ids(client.get("/?category=食品").text) == {dashboard_data.task_of(seeded, "tmall", 1)}
    assert ids(client.get("/?q=年货").text) == {dashboard_data.task_of(seeded, "tmall", 1)}
    jd = dashboard_data.task_of(seeded, "jd")
    assert ids(client.get(f"/?q=%23{jd}").text) == {jd}  # "#3"
    assert ids(client.get("/?owner=none").text) == everything  # nobody claimed yet
    items = client.get("/dash/board/items?platform=jd")
    assert items.headers["hx-replace-url"] == "/?platform=jd"  # the address follows the filter


def test_overdue_and_at_risk_are_marked(client, seeded):
    soon, late = dashboard_data.task_of(seeded, "jd"), dashboard_data.task_of(seeded, "pdd")
    with seeded.session() as s:
        s.get(Task, soon).deadline = utcnow() + timedelta(hours=5)
        s.get(Task, late).deadline = utcnow() - timedelta(hours=1)
    page = client.get("/").text
    assert f'class="item at-risk" data-task="{soon}"' in page
    assert f'class="item overdue" data-task="{late}"' in page
    assert "逾期 1 个、临近截止 1 个" in page


def test_a_large_board_shows_the_first_hundred_of_a_column_and_counts_every_task(
        client, seeded):
    """A peak's board: counted by the database, each column showing its soonest 100 (the
    board once loaded every matching task: 100,000 open ones took 7 s and 400 MB)."""
    from bot.core.ports import Notice
    from bot.watch.ingest import ingest

    now = utcnow()
    ingest(seeded, [Notice(platform="tmall", external_id=f"BIG-{i}", title=f"大促 {i}",
                           registration_end=now + timedelta(days=2, minutes=i),
                           requirements={"categories": ["美妆"]} if i % 4 else {})
                    for i in range(160)])
    with seeded.session() as s:
        big = s.exec(select(Task).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.external_id.startswith("BIG-"))
                     .order_by(Task.deadline)).all()
        for task in big[:3]:
            task.deadline = now - timedelta(hours=1)  # overdue
        for task in big[3:5]:
            task.deadline = now + timedelta(hours=2)  # at risk
        tasks = s.exec(select(Task)).all()
        new = sorted((t for t in tasks if t.state == "new"),
                     key=lambda t: (t.deadline is None, t.deadline, t.id))
        overdue = sum(t.deadline is not None and t.deadline <= now for t in tasks)
        at_risk = sum(t.deadline is not None and now < t.deadline <= now + timedelta(
            hours=24) for t in tasks)
    page = client.get("/").text
    assert t("dash.board.summary", "zh-CN", n=len(tasks), overdue=overdue,
             risk=at_risk) in page
    todo = page.split('data-column="todo"')[1].split('data-column="working"')[0]
    shown = [int(n) for n in __import__("re").findall(r'data-task="(\d+)"', todo)]
    assert shown == [t.id for t in new[:100]]  # soonest deadline first
    assert f'<span class="count">{len(new)}</span>' in todo
    assert t("dash.col.more", "zh-CN", n=len(new) - 100) in todo
    beauty = client.get("/?category=美妆").text
    assert t("dash.board.summary", "zh-CN", n=120, overdue=2, risk=1) in beauty
    assert t("dash.col.more", "zh-CN", n=20) in beauty and len(ids(beauty)) == 100


# -- export ----------------------------------------------------------------------------------

def test_export_follows_the_filter_as_csv_and_xlsx(client, seeded, monkeypatch):
    from bot.web import dash_export

    monkeypatch.setattr(dash_export, "CSV_LINES", 2)  # streamed in pieces: none lost
    with seeded.session() as s:  # a title a spreadsheet would run as a formula
        campaign = s.exec(select(Campaign).where(Campaign.platform == "jd")).first()
        campaign.title = "=HYPERLINK(\"http://evil\")"
    r = client.get("/dash/board/export?format=csv&platform=jd,tmall")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel opens UTF-8 as UTF-8
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["任务号", "平台", "活动"] and "Asia/Shanghai" in rows[0][6]
    assert {int(row[0]) for row in rows[1:]} == task_ids(seeded, platform="jd") | \
        task_ids(seeded, platform="tmall")
    assert {row[1] for row in rows[1:]} == {"京东", "天猫"}
    assert "'=HYPERLINK" in r.text  # not a formula
    x = client.get("/dash/board/export?format=xlsx&platform=jd",
                   headers={"Accept-Language": "en"})
    assert x.status_code == 200
    sheet = load_workbook(io.BytesIO(x.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:2] == ["Task", "Platform"] and len(values) == 2
    assert values[1][1] == "JD" and values[1][2] == "=HYPERLINK(\"http://evil\")"
    assert sheet.cell(2, 3).data_type == "s"  # text, not a formula
    bad = client.get("/dash/board/export?format=pdf")
    assert bad.status_code == 422 and bad.json()["detail"]["code"] == "dash.bad_format"


# -- settings ----------------------------------------------------------------------------------

def audited(db, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))


def test_settings_edits_are_validated_audited_and_for_admins_only(client, seeded):
    new = {"chat": "web", "channel_id": "beauty-team", "channel_name": "美妆组",
           "platform": "tmall", "purpose": "notices", "category": "美妆个护",
           "roles": ["market", "ops"], "user": "admin"}
    manager = client.post("/dash/settings/bindings", data={**new, "user": "zhou.qiang"})
    assert manager.status_code == 403
    assert manager.json()["detail"]["code"] == "dash.settings.admins_only"
    done = client.post("/dash/settings/bindings", data=new, follow_redirects=False)
    assert done.status_code == 303 and "done=settings_bind" in done.headers["location"]
    with seeded.session() as s:
        row = s.exec(select(ChatBinding).where(ChatBinding.channel_id == "beauty-team")).one()
        assert (row.platform, row.category, row.shop, row.roles) == \
            ("tmall", "美妆个护", "*", ["market", "ops"])
    [event] = audited(seeded, "settings_bind")
    assert event.actor == "admin" and event.task_id is None
    assert event.detail["after"]["channel_id"] == "beauty-team"
    again = client.post("/dash/settings/bindings", data=new)
    assert again.status_code == 409 and "beauty-team" in again.json()["detail"]["message"]
    for bad, code in [({"chat": "wechat"}, "dash.settings.bad_value"),
                      ({"channel_id": "has space"}, "dash.settings.bad_value"),
                      ({"channel_id": ""}, "dash.settings.required"),
                      ({"channel_id": "x" * 129}, "dash.settings.too_long"),
                      ({"platform": "amazon"}, "dash.bad_filter"),
                      ({"purpose": "gossip"}, "dash.settings.bad_value"),
                      ({"roles": ["boss"]}, "dash.settings.bad_role")]:
        r = client.post("/dash/settings/bindings", data={**new, "channel_id": "other", **bad})
        assert r.status_code == 422 and r.json()["detail"]["code"] == code, bad
    assert len(audited(seeded, "settings_bind")) == 1  # refused edits change nothing
    page = client.post("/dash/settings/bindings", data={**new, "chat": "wechat"}, headers=HTML)
    assert page.status_code == 422 and "「wechat」无效" in page.text  # a browser: the page

    removed = client.post(f"/dash/settings/bindings/{row.id}/delete", data={"user": "admin"},
                          follow_redirects=False)
    assert removed.status_code == 303
    assert audited(seeded, "settings_unbind")[0].detail["before"]["channel_id"] == "beauty-team"
    gone = client.post(f"/dash/settings/bindings/{row.id}/delete", data={"user": "admin"})
    assert gone.status_code == 404


def test_role_edits_are_audited_and_never_remove_the_last_admin(client, seeded):
    with seeded.session() as s:
        people = {u.name: u.id for u in s.exec(select(User))}
    done = client.post(f"/dash/settings/users/{people['chen.jing']}/roles",
                       data={"roles": ["design", "market"], "user": "admin"},
                       follow_redirects=False)
    assert done.status_code == 303
    with seeded.session() as s:
        assert s.get(User, people["chen.jing"]).roles == ["market", "design"]
    [event] = audited(seeded, "settings_roles")
    assert event.detail == {"user": "chen.jing", "before": ["design"],
                            "after": ["market", "design"]}
    last = client.post(f"/dash/settings/users/{people['admin']}/roles",
                       data={"roles": ["ops"], "user": "admin"})
    assert last.status_code == 409 and "最后一位管理员" in last.json()["detail"]["message"]
    empty = client.post(f"/dash/settings/users/{people['li.na']}/roles", data={"user": "admin"})
    assert empty.status_code == 422 and empty.json()["detail"]["code"] == "dash.settings.no_roles"
    unknown = client.post("/dash/settings/users/999/roles", data={"roles": ["ops"],
                                                                  "user": "admin"})
    assert unknown.status_code == 404
    ops = client.post(f"/dash/settings/users/{people['li.na']}/roles",
                      data={"roles": ["admin"], "user": "li.na"})  # nobody makes themselves admin
    assert ops.status_code == 403
    assert len(audited(seeded, "settings_roles")) == 1


def test_settings_page_by_role(settings, seeded):
    """Outside the demo: ops and market see no settings (not even the link), a manager sees
    them without the forms, an admin edits."""
    from bot.web.app import create_app

    with seeded.session() as s:
        for name in ("li.na", "zhou.qiang", "admin"):
            set_password(s, name, "correct horse battery")
    secure = settings.model_copy(update={"demo": False, "api_token": SecretStr("t0ken")})
    with TestClient(create_app(secure), raise_server_exceptions=False) as c:
        assert c.get("/", headers=HTML, follow_redirects=False).headers["location"] == \
            "/console/login?next=%2F"  # login required

        def login(name: str) -> None:
            import re

            c.cookies.clear()
            form = c.get("/console/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            r = c.post("/console/login", data={"username": name, "password":
                                               "correct horse battery", "csrf_token": token,
                                               "next": "/"}, follow_redirects=False)
            assert r.headers["location"] == "/"

        login("li.na")
        board = c.get("/", headers=HTML)
        assert board.status_code == 200 and 'id="nav-settings"' not in board.text
        assert 'id="nav-charts"' not in board.text
        refused = c.get("/dash/settings", headers=HTML)
        assert refused.status_code == 403 and "不能查看「设置」" in refused.text
        assert c.get("/dash/api/charts").status_code == 403
        login("zhou.qiang")
        page = c.get("/dash/settings", headers=HTML)
        assert page.status_code == 200 and 'id="read-only"' in page.text
        assert 'action="/dash/settings/bindings"' not in page.text
        login("admin")
        page = c.get("/dash/settings", headers=HTML)
        assert 'action="/dash/settings/bindings"' in page.text and 'id="read-only"' not in page.text
        assert 'name="user"' not in page.text  # a login acts as itself: no name to send


# -- one error shape ---------------------------------------------------------------------------

def test_every_error_has_the_same_body_shape(client, seeded):
    tid = dashboard_data.task_of(seeded, "jd")
    answers = [
        client.get("/no/such/page"),  # 404 from routing
        client.put("/api/tasks"),  # 405
        client.post(f"/api/tasks/{tid}/actions", json={"actor": "li.na"}),  # 422 validation
        client.get("/api/tasks/999999"),  # 404 from a route
        client.post(f"/api/tasks/{tid}/actions", json={"action": "claim", "actor": "ghost"}),
        client.post(f"/api/tasks/{tid}/actions", json={"action": "reject", "actor": "zhou.qiang"}),
        client.post("/sandbox/jd/notices", json={"title": ""}),  # a plain-string refusal
        client.get("/dash/api/calendar?start=nope&end=2026-01-01"),
        client.post("/console/api/say", json={"channel": "nope", "user": "li.na", "text": "x"}),
    ]
    for r in answers:
        assert r.status_code >= 400, r.request.url
        detail = r.json()["detail"]
        assert set(detail) >= {"code", "message"}, (r.request.url, detail)
        assert isinstance(detail["code"], str) and detail["message"].strip(), r.request.url
    assert answers[0].json()["detail"]["code"] == "weberr.404"
    assert answers[2].json()["detail"]["code"] == "weberr.invalid_request"
    assert "action" in answers[2].json()["detail"]["message"]
    assert answers[3].json()["detail"]["code"] == "err.not_found"
    assert "999999" in answers[3].json()["detail"]["message"]


def test_the_login_gate_uses_the_same_shape(settings, seeded):
    from bot.web.app import create_app

    secure = settings.model_copy(update={"demo": False, "api_token": SecretStr("t0ken")})
    with TestClient(create_app(secure)) as c:
        for url in ("/api/tasks", "/dash/api/charts", "/dash/board/items"):
            r = c.get(url)
            assert r.status_code == 401 and r.json()["detail"]["code"] == "auth.required", url


# -- console fixes -------------------------------------------------------------------------------

def test_console_refuses_an_unknown_channel_and_says_the_length_limit(client, seeded):
    def count() -> int:
        with seeded.session() as s:
            return len(s.exec(select(ChatMessage.id)).all())

    before = count()
    r = client.post("/console/api/say", json={"channel": "no-such", "user": "li.na",
                                              "text": "列表"})
    assert r.status_code == 404 and "no-such" in r.json()["detail"]["message"]
    r = client.post("/console/api/click", json={"channel": "no-such", "user": "li.na",
                                                "value": "pp1|claim|1|1"})
    assert r.status_code == 404
    long = client.post("/console/api/say", json={"channel": "tmall-promo", "user": "li.na",
                                                 "text": "字" * 2001})
    assert long.status_code == 422 and "2000" in long.json()["detail"]["message"] \
        and "2001" in long.json()["detail"]["message"]
    reason = client.post("/console/api/click", json={
        "channel": "tmall-promo", "user": "li.na", "value": "pp1|skip|1|1",
        "comment": "x" * 100_000})
    assert reason.status_code == 422 and "100000" in reason.json()["detail"]["message"]
    assert count() == before  # nothing stored, no channel made
    empty = client.post("/console/api/say", json={"channel": "tmall-promo", "user": "li.na",
                                                  "text": "  "})
    assert empty.status_code == 422 and empty.json()["detail"]["code"] == "console.empty"
    assert client.get("/favicon.ico").status_code == 200
    assert client.get("/static/favicon.svg").status_code == 200


# -- languages -----------------------------------------------------------------------------------

def test_language_from_the_browser_with_a_toggle_cookie(client):
    assert "任务看板" in client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    en = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"}).text
    assert '<html lang="en">' in en and ">Board<" in en
    weighted = client.get("/", headers={"Accept-Language": "fr;q=1,zh;q=0.4,en;q=0.8"}).text
    assert '<html lang="en">' in weighted
    toggle = client.get("/lang?to=zh-CN&next=/dash/calendar", follow_redirects=False)
    assert toggle.status_code == 303 and toggle.headers["location"] == "/dash/calendar"
    assert "pp_lang=zh-CN" in toggle.headers["set-cookie"]
    client.cookies.set("pp_lang", "zh-CN")
    assert "任务看板" in client.get("/", headers={"Accept-Language": "en"}).text
    away = client.get("/lang?to=en&next=//evil.example", follow_redirects=False)
    assert away.headers["location"] == "/console"  # only back to this site
    console = client.get("/console", headers={"Accept-Language": "en"})
    assert "任务看板" in console.text  # the console follows the same cookie
    client.cookies.set("pp_lang", "en")
    console = client.get("/console")
    assert ">Send<" in console.text and "发送" not in console.text
    login = client.get("/console/login?next=/dash/charts")  # the login page follows it too
    assert "Log in to the console" in login.text
    assert 'href="/lang?to=zh-CN&amp;next=/console/login%3Fnext%3D/dash/charts"' in login.text


# -- calendar and charts ---------------------------------------------------------------------------

def test_calendar_feed_puts_a_deadline_on_the_teams_day(client, seeded):
    tid = dashboard_data.task_of(seeded, "jd")
    now = utcnow().astimezone(dashboard_data.SHANGHAI)
    day = (now + timedelta(days=3)).replace(tzinfo=None)
    dashboard_data.deadline_at(seeded, tid, day.replace(hour=1, minute=30))  # UTC: the day before
    start = (day - timedelta(days=10)).strftime("%Y-%m-%dT00:00:00Z")
    end = (day + timedelta(days=10)).strftime("%Y-%m-%dT00:00:00Z")
    events = client.get(f"/dash/api/calendar?start={start}&end={end}").json()
    mine = next(e for e in events if e["id"] == f"deadline-{tid}")
    assert mine["start"] == day.strftime("%Y-%m-%dT01:30")
    assert mine["url"] == f"/dash/tasks/{tid}" and "01:30" in mine["title"]
    assert any(e["id"].startswith("event-") for e in events)
    only_tmall = client.get(f"/dash/api/calendar?start={start}&end={end}&platform=tmall").json()
    assert all(e["extendedProps"]["platform"] == "tmall" for e in only_tmall)
    assert client.get("/dash/api/calendar?start=2026-01-01&end=2027-01-01").status_code == 422


def test_charts_feed_has_the_metrics_and_says_what_fills_roi(client, seeded):
    dashboard_data.history(seeded)
    client.cookies.set("pp_as", "zhou.qiang")  # a manager (the demo's picker)
    data = client.get("/dash/api/charts?since=30d", headers={"Accept-Language": "en"}).json()
    per = {p["platform"]: p for p in data["platforms"]}
    assert per["tmall"]["acceptance_rate"] == 100.0 and per["tmall"]["avg_hours"] == 6.0
    assert per["jd"]["acceptance_rate"] == 0.0
    assert per["tmall"]["missed"] == 1
    [jd] = data["reasons"]
    assert jd["platform"] == "jd" and {r["reason"] for r in jd["reasons"]} == {
        t("learn.cat.price", "en"), t("learn.cat.image", "en")}
    assert data["roi"] is None and "promopilot import results" in data["roi_empty"]
    assert client.get("/dash/api/charts?since=7y").status_code == 422

    dashboard_data.results(seeded)
    data = client.get("/dash/api/charts").json()
    assert data["roi_empty"] is None
    by_platform = {row["platform"]: row["values"] for row in data["roi"]["series"]}
    assert by_platform["tmall"][data["roi"]["types"].index("大促")] == 3.25
    assert by_platform["jd"][data["roi"]["types"].index("秒杀")] == 1.5


# -- actions from the board -------------------------------------------------------------------------

def test_board_actions_go_through_the_chat_router_and_are_refused_the_same_way(client, seeded):
    from commands import Inbound
    from commands import router as chat

    tid = dashboard_data.task_of(seeded, "jd")
    with seeded.session() as s:
        version = s.get(Task, tid).version
    claim = CallbackData("claim", tid, version).pack()
    refused = client.post("/dash/act", data={"value": claim, "user": "zhao.lei"})
    in_chat = chat.handle_click(seeded, Inbound("web", "jd-promo", "zhao.lei"), claim)
    assert refused.status_code == 200 and not in_chat.ok
    assert in_chat.text in refused.text and "refused" in refused.text  # the chat's words
    done = client.post("/dash/act", data={"value": claim, "user": "li.na"})
    assert done.status_code == 200 and "flash ok" in done.text
    assert done.headers["hx-trigger"] == "pp-refresh"  # the board reloads
    with seeded.session() as s:
        assert s.get(Task, tid).state == "claimed"
    stale = client.post("/dash/act", data={"value": claim, "user": "wang.fang"})
    assert "已被 李娜(运营) 认领" in stale.text
    skip = CallbackData("skip", tid, version + 1).pack()
    long = client.post("/dash/act", data={"value": skip, "user": "li.na", "comment": "y" * 2001})
    assert long.status_code == 422 and "2000" in long.json()["detail"]["message"]
    mine = client.get("/?owner=li.na").text
    assert ids(mine) == {tid}


def test_task_page_shows_history_lines_and_private_messages_only_to_their_reader(client, seeded):
    tid = dashboard_data.task_of(seeded, "jd")
    with seeded.session() as s:
        li_na = s.exec(select(User).where(User.name == "li.na")).one()
        s.add(ChatMessage(chat="web", channel_id="jd-promo", task_id=tid, text="给李娜的私信",
                          visible_to=li_na.id))
    client.post("/dash/act", data={"value": CallbackData("claim", tid, 1).pack(),
                                   "user": "li.na"})
    as_li_na = client.get(f"/dash/tasks/{tid}", cookies={"pp_as": "li.na"}).text
    assert "认领" in as_li_na and "李娜(运营)" in as_li_na and "给李娜的私信" in as_li_na
    as_wang = client.get(f"/dash/tasks/{tid}", cookies={"pp_as": "wang.fang"}).text
    assert "给李娜的私信" not in as_wang
    missing = client.get("/dash/tasks/424242", headers=HTML)
    assert missing.status_code == 404 and "#424242" in missing.text
    assert client.get(f"/dash/campaigns/{1}", headers=HTML).status_code == 200


def test_every_text_the_templates_name_is_in_both_catalogs():
    """The pages' words come from the catalogs too (tests/test_i18n_catalogs.py reads the
    Python code; this reads the dashboard's and the console's templates)."""
    import re
    from pathlib import Path

    from bot.core.i18n import load_catalog

    zh, en = load_catalog("zh-CN"), load_catalog("en")
    root = Path(__file__).resolve().parents[1] / "bot" / "web" / "templates"
    found, families = set(), set()
    for page in [*root.glob("dashboard/*.html"), root / "console.html"]:
        text = page.read_text(encoding="utf-8")
        found |= set(re.findall(r"""\bt\(["']([a-z_]+(?:\.[a-z0-9_]+)+)["']\s*[,)]""", text))
        families |= set(re.findall(r"""\bt\(["']([a-z_.]+\.)["']\s*~""", text))
    assert len(found) > 100
    missing = sorted(k for k in found if k not in zh or k not in en)
    assert not missing, missing
    assert all(any(k.startswith(f) for k in en) for f in families), families


def test_the_declaration_form_acts_as_the_logged_in_person_with_its_csrf_token(settings, seeded):
    """修改申报单 outside the demo: the form names the logged-in person (no picker), carries
    the session's CSRF token, is styled like the dashboard, and says the pack is a .zip."""
    import re

    from bot.declarations import plugin as declarations_plugin
    from bot.web.app import create_app
    from tests.fakes import data_pool as pool

    tid = pool.task(seeded, "jd", {"categories": ["家电数码"], "min_discount": 0.2,
                                   "min_stock": 30}, state="claimed")
    pool.act(seeded, tid, "draft", "li.na")
    with seeded.session() as s:
        set_password(s, "li.na", "correct horse battery")
    secure = settings.model_copy(update={"demo": False, "api_token": SecretStr("t0ken")})
    with TestClient(create_app(secure), raise_server_exceptions=False) as c:
        form = c.get("/console/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        c.post("/console/login", data={"username": "li.na", "password": "correct horse battery",
                                       "csrf_token": token})
        url = declarations_plugin.link(tid, "edit", secure).replace(secure.base_url, "")
        page = c.get(url).text
        assert 'id="me"' in page and "李娜(运营)" in page and '<select name="user"' not in page
        assert '/static/pp.css' in page
        assert "压缩包" in page and "只下载报名 Excel 表格" in page  # the .zip says so
        fields = dict(re.findall(r'<input type="hidden" name="(csrf_token|user)" value="([^"]*)"',
                                 page))
        assert fields["user"] == "li.na" and fields["csrf_token"]
        skus = re.findall(r'name="sku" value="([^"]+)"', page)
        prices = re.findall(r'name="price" value="([^"]*)"', page)
        stocks = re.findall(r'name="stock" value="([^"]*)"', page)
        saved = c.post(url, data={**fields, "sku": skus, "price": prices,
                                  "stock": ["77", *stocks[1:]]}, follow_redirects=False)
        assert saved.status_code == 303, saved.text[:300]
        assert "已保存 1 处修改" in c.get(saved.headers["location"]).text
        forged = c.post(url, data={"user": "li.na", "sku": skus, "price": prices,
                                   "stock": stocks})
        assert forged.status_code == 403  # no CSRF token: refused by the gate
    with seeded.session() as s:
        edit = s.exec(select(AuditEvent).where(AuditEvent.task_id == tid,
                                               AuditEvent.action == "edit_declaration")).one()
        assert edit.actor == "li.na"


def test_the_demo_form_preselects_the_person_picked_in_the_console(client, seeded):
    from bot.declarations import plugin as declarations_plugin
    from tests.fakes import data_pool as pool

    tid = pool.task(seeded, "jd", {"categories": ["家电数码"]}, state="claimed")
    pool.act(seeded, tid, "draft", "li.na")
    url = declarations_plugin.link(tid, "edit").replace("http://127.0.0.1:8000", "")
    page = client.get(url.split("?")[0], cookies={"pp_as": "li.na"}).text
    assert '<option value="li.na" selected>' in page
