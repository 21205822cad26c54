"""Credentials outside the local demo: every endpoint that acts × (no credential, wrong role,
right role), login / logout / CSRF, the sandbox off unless asked for. On SQLite and
PostgreSQL (the ``db`` fixture), against the real app under uvicorn."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.core.passwords import set_password
from bot.core.settings import Settings
from bot.declarations import plugin as declarations_plugin
from bot.web.auth import SIGNED_ELSEWHERE, needs_credential
from cards.callback import CallbackData
from storage.models import ChatBinding, Task, User
from tests.conftest import LiveServer, free_port
from tests.fakes import data_pool as pool

TOKEN = "team-token-for-tests"
PASSWORD = "correct horse battery staple"
PEOPLE = ("li.na", "wang.fang", "zhao.lei", "zhou.qiang", "admin", "alex")


# -- fixtures -------------------------------------------------------------------------------------

def secure(settings: Settings, **changes) -> Settings:
    """The same test settings outside the demo: a team token, the sandbox asked for."""
    values = dict(demo=False, api_token=SecretStr(TOKEN), sandbox_enabled=True,
                  port=free_port()) | changes
    return settings.model_copy(update=values)


def start(settings: Settings) -> LiveServer:
    from bot.web.app import create_app

    return LiveServer(create_app(settings), settings).start()


@pytest.fixture
def passwords(seeded):
    with seeded.session() as s:
        for name in PEOPLE:
            set_password(s, name, PASSWORD)
    return seeded


@pytest.fixture
def server(settings, passwords) -> Iterator[LiveServer]:
    live = start(secure(settings))
    yield live
    live.stop()


def anonymous(live: LiveServer, **kw) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=30, follow_redirects=False, **kw)


@dataclass
class Person:
    """A browser-like client logged in as ``name``: its cookie jar and CSRF token."""

    client: httpx.Client
    name: str
    csrf: str

    def request(self, method: str, url: str, **kw) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)


def login_form_token(client: httpx.Client) -> str:
    page = client.get("/console/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def login(live: LiveServer, name: str, password: str = PASSWORD) -> Person:
    client = anonymous(live)
    done = client.post("/console/login", data={"username": name, "password": password,
                                                "csrf_token": login_form_token(client)})
    assert done.status_code == 303, done.text
    page = client.get("/console")
    assert page.status_code == 200
    csrf = re.search(r'"csrf": "([^"]+)"', page.text).group(1)
    return Person(client, name, csrf)


def team(live: LiveServer) -> httpx.Client:
    return anonymous(live, headers={"Authorization": f"Bearer {TOKEN}"})


# -- the table: every acting endpoint × the three cases ----------------------------------------

def in_approval(db) -> dict:
    """A drafted declaration waiting for the manager's approval (li.na claimed it)."""
    tid = pool.task(db, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                    state="claimed")
    pool.act(db, tid, "draft", "li.na")
    pool.act(db, tid, "request_approval", "li.na")
    with db.session() as s:
        task = s.get(Task, tid)
        assert task.state == "in_approval"
        return {"task": tid, "version": task.version}


def drafted(db) -> dict:
    from bot.declarations.autofill import current

    tid = pool.task(db, "jd", {"categories": ["家电数码"], "min_discount": 0.2, "min_stock": 30},
                    state="claimed")
    pool.act(db, tid, "draft", "li.na")
    with db.session() as s:
        lines = current(s, tid)[1]
    return {"task": tid, "lines": lines}


def notice(n: int) -> dict:
    return {"id": f"SBX-AUTH-{n}", "title": "测试公告", "type": "日常",
            "registration": {"start": "2026-11-20T10:00:00+08:00",
                             "end": "2027-01-05T23:59:00+08:00"},
            "requirements": {"min_discount": 0.1}}


def registration(key: str) -> dict:
    return {"campaign_id": "SBX-AUTH-0", "idempotency_key": key,
            "items": [{"sku": "MZ-001", "list_price": "129", "promo_price": "99",
                       "promo_stock": 100}]}


def sandbox_notice(db) -> dict:
    from adapters.platforms.sandbox.server import seed

    seed(db, {"tmall": [notice(0)]})
    return {}


def is_domain_refusal(action: str) -> Callable[[httpx.Response], bool]:
    """The domain's role refusal, not the gate's: a reply with ok false (console) or a 403
    with the domain's ``forbidden`` code (REST), naming the refused action in Chinese."""
    def check(r: httpx.Response) -> bool:
        body = r.json()
        if r.status_code == 200:  # a chat reply, explained in the person's language
            return body["ok"] is False and action in body["text"]
        detail = body["detail"]
        return r.status_code == 403 and detail["code"] == "forbidden" and action in detail["message"]
    return check


@dataclass
class Acting:
    method: str
    route: str  # the app's route path (checked against the app's own route list)
    setup: Callable
    request: Callable[[dict, str], dict]  # (context, acting user) -> httpx kwargs (url, …)
    wrong: str
    right: str
    refused: Callable[[httpx.Response], bool]
    succeeded: Callable[[httpx.Response], bool]
    token_may_name: bool = True
    extra: dict = field(default_factory=dict)


def form_edit(ctx: dict, who: str) -> dict:
    lines = ctx["lines"]
    url = declarations_plugin.link(ctx["task"], "edit", ctx["settings"]).replace(
        ctx["settings"].base_url, "")
    return {"url": url, "data": {
        "user": who, "sku": [ln.sku for ln in lines],
        "price": [str(ln.promo_price) for ln in lines],
        "stock": [str(ln.promo_stock if i else 35) for i, ln in enumerate(lines)]}}


TABLE = [
    Acting("POST", "/api/tasks/{task_id}/actions", in_approval,
           lambda c, who: {"url": f"/api/tasks/{c['task']}/actions",
                           "json": {"action": "approve", "actor": who}},
           wrong="wang.fang", right="zhou.qiang", refused=is_domain_refusal("批准"),
           succeeded=lambda r: r.status_code == 200 and r.json()["state"] == "approved"),
    Acting("POST", "/console/api/say", in_approval,
           lambda c, who: {"url": "/console/api/say",
                           "json": {"channel": "approvals", "user": who,
                                    "text": f"批准 {c['task']}"}},
           # wrong role and not the requester: li.na asked, so hers is a self-approval refusal
           wrong="wang.fang", right="zhou.qiang", refused=is_domain_refusal("批准"),
           succeeded=lambda r: r.status_code == 200 and r.json()["ok"] is True),
    Acting("POST", "/console/api/click", in_approval,
           lambda c, who: {"url": "/console/api/click",
                           "json": {"channel": "approvals", "user": who,
                                    "value": CallbackData("approve", c["task"],
                                                          c["version"]).pack()}},
           wrong="wang.fang", right="zhou.qiang", refused=is_domain_refusal("批准"),
           succeeded=lambda r: r.status_code == 200 and r.json()["ok"] is True),
    Acting("POST", "/console/api/declarations/{task_id}/lines", drafted,
           lambda c, who: {"url": f"/console/api/declarations/{c['task']}/lines",
                           "json": {"user": who, "sku": c["lines"][0].sku, "stock": "33"}},
           wrong="zhao.lei", right="li.na",
           refused=lambda r: r.status_code == 403 and "李娜" in str(r.json()["detail"]),
           succeeded=lambda r: r.status_code == 200 and r.json()["lines"][0]["promo_stock"] == 33),
    Acting("POST", "/console/declarations/{task_id}/edit", drafted, form_edit,
           wrong="zhao.lei", right="li.na",
           refused=lambda r: r.status_code == 403 and "李娜" in r.text,
           succeeded=lambda r: r.status_code == 303 and "msg=" in r.headers["location"]),
    Acting("POST", "/sandbox/{platform}/notices", sandbox_notice,
           lambda c, who: {"url": "/sandbox/tmall/notices", "json": notice(len(c) + 1)},
           wrong="li.na", right="admin",
           refused=lambda r: r.status_code == 403 and "管理员" in r.json()["detail"]["message"],
           succeeded=lambda r: r.status_code == 201, token_may_name=False),
    Acting("POST", "/sandbox/{platform}/registrations", sandbox_notice,
           lambda c, who: {"url": "/sandbox/tmall/registrations",
                           "json": registration(f"k-{who}")},
           wrong="li.na", right="admin",
           refused=lambda r: r.status_code == 403 and "管理员" in r.json()["detail"]["message"],
           succeeded=lambda r: r.status_code == 200 and r.json()["duplicate"] is False,
           token_may_name=False),
]
def binding(db) -> dict:
    with db.session() as s:
        row = ChatBinding(chat="web", channel_id="to-remove", platform="jd")
        s.add(row)
        s.flush()
        return {"binding": row.id}


def person(db) -> dict:
    with db.session() as s:
        return {"user": s.exec(select(User.id).where(User.name == "chen.jing")).one()}


def dashboard_refusal(r: httpx.Response) -> bool:
    """The settings' own check: admins only (the manager may look, not change)."""
    return r.status_code == 403 and r.json()["detail"]["code"] == "dash.settings.admins_only"


# The dashboard (bot/web/dashboard.py): a board click goes through the chat router like any click.
TABLE += [
    Acting("POST", "/dash/act", in_approval,
           lambda c, who: {"url": "/dash/act", "data": {
               "user": who, "value": CallbackData("approve", c["task"], c["version"]).pack()}},
           wrong="wang.fang", right="zhou.qiang",
           refused=lambda r: r.status_code == 200 and "refused" in r.text and "批准" in r.text,
           succeeded=lambda r: r.status_code == 200 and "flash ok" in r.text),
    Acting("POST", "/dash/settings/bindings", lambda db: {},
           lambda c, who: {"url": "/dash/settings/bindings", "data": {
               "user": who, "chat": "web", "channel_id": f"new-{who}", "platform": "jd"}},
           wrong="zhou.qiang", right="admin", refused=dashboard_refusal,
           succeeded=lambda r: r.status_code == 303),
    Acting("POST", "/dash/settings/bindings/{binding_id}/delete", binding,
           lambda c, who: {"url": f"/dash/settings/bindings/{c['binding']}/delete",
                           "data": {"user": who}},
           wrong="zhou.qiang", right="admin", refused=dashboard_refusal,
           succeeded=lambda r: r.status_code == 303),
    Acting("POST", "/dash/settings/users/{user_id}/roles", person,
           lambda c, who: {"url": f"/dash/settings/users/{c['user']}/roles",
                           "data": {"user": who, "roles": ["design", "market"]}},
           wrong="zhou.qiang", right="admin", refused=dashboard_refusal,
           succeeded=lambda r: r.status_code == 303),
]
# Acting routes outside the table, and why.
SEPARATE = {
    ("POST", "/console/login"): "the credential itself: test_login_*",
    ("POST", "/console/logout"): "ends your own session: test_logout_*",
    ("POST", "/submissions/rpa/callback"): "HMAC-signed by the robot (SIGNED_ELSEWHERE)",
}


def acting_routes(app) -> set[tuple[str, str]]:
    try:
        from fastapi.routing import iter_route_contexts
        routes = list(iter_route_contexts(app.routes))
    except ImportError:  # older FastAPI: included routes are flat
        routes = app.routes
    found = set()
    for route in routes:
        for method in (getattr(route, "methods", None) or ()):
            if method not in ("GET", "HEAD", "OPTIONS"):
                found.add((method, route.path))
    return found


def test_the_table_covers_every_acting_route(settings, passwords):
    from bot.web.app import create_app

    app = create_app(secure(settings))
    covered = {(a.method, a.route) for a in TABLE} | set(SEPARATE)
    assert acting_routes(app) == covered  # a new acting route must join the table
    for method, path in acting_routes(app):
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        gated = needs_credential(method, concrete)
        assert gated is ((method, path) in {(a.method, a.route) for a in TABLE}), path
    # chat webhooks (when configured) and the RPA callback check their own signatures
    assert {"/slack/events", "/feishu/events", "/submissions/rpa/callback"} == SIGNED_ELSEWHERE
    assert needs_credential("POST", "/anything/a/plugin/adds/later")  # default-deny


@pytest.mark.parametrize("acting", TABLE, ids=[f"{a.method} {a.route}" for a in TABLE])
def test_acting_endpoint_needs_a_credential_and_the_right_role(acting, server, passwords):
    ctx = acting.setup(passwords) | {"settings": server.settings}

    nobody = call(acting, ctx, acting.right, anonymous(server))
    assert nobody.status_code == 401, nobody.text
    assert nobody.json()["detail"]["code"] == "auth.required"
    assert nobody.headers["www-authenticate"] == "Bearer"

    refused = call(acting, ctx, acting.wrong, login(server, acting.wrong))
    assert acting.refused(refused), (refused.status_code, refused.text[:300])

    done = call(acting, ctx, acting.right, login(server, acting.right))
    assert acting.succeeded(done), (done.status_code, done.text[:300])


def call(acting: Acting, ctx: dict, who: str, via: httpx.Client | Person) -> httpx.Response:
    """``acting``'s request for ``who``, sent by an anonymous client, the token or a login."""
    kw = acting.request(ctx, who)
    return via.request(acting.method, kw.pop("url"), **kw)


@pytest.mark.parametrize("acting", TABLE, ids=[f"{a.method} {a.route}" for a in TABLE])
def test_the_team_token_acts_and_may_name_the_user(acting, server, passwords):
    ctx = acting.setup(passwords) | {"settings": server.settings}
    refused = call(acting, ctx, acting.right, anonymous(
        server, headers={"Authorization": "Bearer nope"}))
    assert refused.status_code == 401 and refused.json()["detail"]["code"] == "auth.bad_token"
    if acting.token_may_name:  # the token names the wrong person: the domain refuses
        wrong = call(acting, ctx, acting.wrong, team(server))
        assert acting.refused(wrong), (wrong.status_code, wrong.text[:300])
    done = call(acting, ctx, acting.right, team(server))
    assert acting.succeeded(done), (done.status_code, done.text[:300])


@pytest.mark.parametrize("acting", [a for a in TABLE if a.token_may_name],
                         ids=[f"{a.method} {a.route}" for a in TABLE if a.token_may_name])
def test_a_login_cannot_act_as_someone_else(acting, server, passwords):
    ctx = acting.setup(passwords) | {"settings": server.settings}
    refused = call(acting, ctx, acting.right, login(server, "wang.fang"))  # names another
    assert refused.status_code == 403, refused.text[:300]
    assert refused.json()["detail"]["code"] == "auth.not_you"
    assert "不能代表" in refused.json()["detail"]["message"]


def test_the_console_acts_as_the_logged_in_person_when_no_user_is_named(server, passwords):
    ctx = in_approval(passwords)
    manager = login(server, "zhou.qiang")
    done = manager.request("POST", "/console/api/say",
                           json={"channel": "approvals", "text": f"批准 {ctx['task']}"})
    assert done.status_code == 200 and done.json()["ok"] is True
    with passwords.session() as s:
        assert s.get(Task, ctx["task"]).state == "approved"
    # the token must say who is acting
    unnamed = team(server).post("/console/api/say", json={"channel": "approvals", "text": "列表"})
    assert unnamed.status_code == 422 and unnamed.json()["detail"]["code"] == "auth.name_required"


# -- reads -----------------------------------------------------------------------------------------

READS = ["/api/tasks", "/api/users", "/api/campaigns", "/console/api/channels",
         "/console/api/channels/tmall-promo/messages?user=li.na", "/console/events",
         "/console/declarations/1/excel", "/sandbox/tmall/registrations/1"]


def test_reads_need_a_credential_and_pages_send_you_to_the_login(server, passwords):
    client = anonymous(server)
    for url in READS:
        assert client.get(url).status_code == 401, url
    page = client.get("/console?channel=jd-promo", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%3Fchannel%3Djd-promo"
    form = client.get("/console/declarations/1/edit", headers={"Accept": "text/html"})
    assert form.status_code == 303 and form.headers["location"].startswith("/console/login")
    # public: health, API docs, the sandbox's notice feed (the watcher reads it)
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/sandbox/tmall/notices").status_code == 200


def test_messages_show_the_logged_in_persons_view_only(server, passwords):
    li_na = login(server, "li.na")
    own = li_na.client.get("/console/api/channels/tmall-promo/messages")
    assert own.status_code == 200
    other = li_na.client.get("/console/api/channels/tmall-promo/messages?user=zhou.qiang")
    assert other.status_code == 403 and other.json()["detail"]["code"] == "auth.not_you"


# -- login, logout, CSRF -----------------------------------------------------------------------------

def test_login_page_and_console_without_the_picker(server, passwords):
    client = anonymous(server)
    assert "登录控制台" in client.get("/console/login").text
    assert "Log in to the console" in client.get("/console/login?lang=en").text
    person = login(server, "li.na")
    page = person.client.get("/console").text
    assert 'id="as"' not in page  # no "Acting as" picker outside the demo
    assert "李娜(运营)" in page and 'action="/console/logout"' in page
    assert "周强" not in page  # nobody else is listed


def test_login_refuses_a_wrong_password_in_the_readers_language(server, passwords):
    client = anonymous(server)
    token = login_form_token(client)
    zh = client.post("/console/login", data={"username": "li.na", "password": "nope nope nope",
                                             "csrf_token": token})
    assert zh.status_code == 401 and "用户名或密码不正确" in zh.text
    en = client.post("/console/login", headers={"Accept-Language": "en-US,en;q=0.9"},
                     data={"username": "nobody", "password": "x", "csrf_token": token})
    assert en.status_code == 401 and "Wrong user name or password" in en.text
    assert "promopilot_session" not in str(en.headers.get("set-cookie", "")) or \
        client.get("/console/api/channels").status_code == 401


def test_login_needs_the_forms_csrf_token(server, passwords):
    client = anonymous(server)
    forged = client.post("/console/login", data={"username": "li.na", "password": PASSWORD})
    assert forged.status_code == 403 and "页面已过期" in forged.text
    assert client.get("/console/api/channels").status_code == 401


def test_login_is_throttled_after_repeated_failures(server, passwords):
    client = anonymous(server)
    token = login_form_token(client)
    for _ in range(5):
        client.post("/console/login", data={"username": "zhou.qiang", "password": "guess guess",
                                            "csrf_token": token})
    blocked = client.post("/console/login", data={"username": "zhou.qiang", "password": PASSWORD,
                                                  "csrf_token": token})
    assert blocked.status_code == 429 and "登录失败次数过多" in blocked.text
    assert login(server, "li.na")  # someone else is not blocked


def test_session_cookie_is_signed_httponly_samesite_lax(server, passwords):
    client = anonymous(server)
    done = client.post("/console/login", data={"username": "li.na", "password": PASSWORD,
                                               "csrf_token": login_form_token(client)})
    cookie = done.headers["set-cookie"].lower()
    assert cookie.startswith("promopilot_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http here; an https PROMOPILOT_PUBLIC_URL adds it
    forged = anonymous(server)
    forged.cookies.set("promopilot_session", client.cookies["promopilot_session"][:-3] + "AAA")
    assert forged.get("/console/api/channels").status_code == 401
    assert done.headers["location"] == "/console"


def test_login_goes_back_only_to_a_page_of_this_site(server, passwords):
    client = anonymous(server)
    token = login_form_token(client)
    for target, expected in [("/console?channel=jd-promo", "/console?channel=jd-promo"),
                             ("//evil.example/x", "/console"),
                             ("https://evil.example/", "/console")]:
        client.cookies.clear()
        token = login_form_token(client)
        done = client.post("/console/login", data={"username": "li.na", "password": PASSWORD,
                                                   "csrf_token": token, "next": target})
        assert done.headers["location"] == expected


def test_state_changing_console_requests_need_the_csrf_token(server, passwords):
    person = login(server, "li.na")
    body = {"channel": "tmall-promo", "text": "列表"}
    missing = person.client.post("/console/api/say", json=body)
    assert missing.status_code == 403 and missing.json()["detail"]["code"] == "auth.csrf"
    wrong = person.client.post("/console/api/say", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    assert person.request("POST", "/console/api/say", json=body).json()["ok"] is True
    # an HTML form may send it as a field instead of the header
    ctx = drafted(passwords)
    kw = form_edit(ctx | {"settings": server.settings}, "li.na")
    kw["data"]["csrf_token"] = person.csrf
    saved = person.client.post(kw["url"], data=kw["data"])
    assert saved.status_code == 303


def test_logout_ends_the_session(server, passwords):
    person = login(server, "li.na")
    refused = person.client.post("/console/logout")
    assert refused.status_code == 403  # no CSRF token: a cross-site logout is refused
    done = person.client.post("/console/logout", data={"csrf_token": person.csrf})
    assert done.status_code == 303 and done.headers["location"].startswith("/console/login")
    assert "你已退出登录" in person.client.get(done.headers["location"]).text
    assert person.request("POST", "/console/api/say",
                          json={"channel": "tmall-promo", "text": "列表"}).status_code == 401


def test_a_new_password_or_deactivation_ends_open_sessions(server, passwords):
    person = login(server, "li.na")
    with passwords.session() as s:
        set_password(s, "li.na", "another long password")
    assert person.client.get("/console/api/channels").status_code == 401
    manager = login(server, "zhou.qiang")
    with passwords.session() as s:
        user = s.exec(select(User).where(User.name == "zhou.qiang")).one()
        user.active = False
        s.add(user)
    assert manager.client.get("/console/api/channels").status_code == 401


def test_a_wrong_token_is_refused_even_with_a_session(server, passwords):
    person = login(server, "li.na")
    r = person.client.get("/console/api/channels", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["detail"]["code"] == "auth.bad_token"


def test_refusals_speak_english_to_an_english_reader(server, passwords):
    client = anonymous(server, headers={"Accept-Language": "en"})
    r = client.post("/console/api/say", json={"channel": "x", "user": "alex", "text": "list"})
    assert r.json()["detail"]["message"].startswith("Log in to the console first")
    alex = login(server, "alex")  # a person's own language once logged in
    r = alex.client.post("/console/api/say", json={"channel": "x", "text": "list"})
    assert "This page has expired" in r.json()["detail"]["message"]


def test_no_secret_reaches_the_logs(server, passwords, caplog):
    caplog.set_level(logging.DEBUG)
    client = anonymous(server)
    client.post("/console/login", data={"username": "li.na", "password": "wrong secret pw",
                                        "csrf_token": login_form_token(client)})
    person = login(server, "li.na")
    team(server).get("/api/tasks")
    anonymous(server, headers={"Authorization": "Bearer not-the-token"}).get("/api/tasks")
    person.request("POST", "/console/api/say", json={"channel": "x", "text": "列表"})
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))  # the test's own client
    assert "login failed" in text
    for secret in (PASSWORD, "wrong secret pw", TOKEN, "not-the-token", person.csrf,
                   person.client.cookies["promopilot_session"]):
        assert secret not in text


# -- the sandbox and the demo ---------------------------------------------------------------------

def test_the_sandbox_is_off_outside_the_demo_unless_asked_for(settings, passwords, monkeypatch):
    from bot import wiring

    monkeypatch.delenv("PROMOPILOT_SANDBOX_ENABLED", raising=False)
    plain = Settings(database_url=settings.database_url, _env_file=None)
    assert plain.demo is False and plain.sandbox_enabled is False
    assert Settings(_env_file=None, demo=True).sandbox_enabled is True
    monkeypatch.setenv("PROMOPILOT_SANDBOX_ENABLED", "true")
    assert Settings(_env_file=None).sandbox_enabled is True

    live = start(secure(settings, sandbox_enabled=False))
    try:
        client = team(live)
        assert anonymous(live).get("/sandbox/tmall/notices").status_code == 404
        assert client.get("/sandbox/tmall/notices").status_code == 404
        assert client.post("/sandbox/tmall/notices", json=notice(9)).status_code == 404
        assert anonymous(live).post("/sandbox/tmall/notices", json=notice(9)).status_code == 401
        assert not [s for s in live.container.sources if s.name.startswith("sandbox-")]
        assert not live.container.submitters
    finally:
        live.stop()
    assert wiring.build(secure(settings)).submitters  # asked for: served and submitted to


def test_the_sandbox_submitter_registers_with_the_team_token(server, passwords):
    sandbox_notice(passwords)
    submitter = server.container.submitters["tmall"]
    from bot.core.ports import SubmissionItem

    receipt = submitter.submit("SBX-AUTH-0", [SubmissionItem(
        sku="MZ-001", list_price=Decimal("129"), promo_price=Decimal("99"), promo_stock=100)],
        "auth-key-1")
    assert receipt.status == "reviewing"
    assert submitter.status(receipt.reference).status == "accepted"


def test_the_demo_is_open_with_the_picker(settings, seeded):
    live = start(settings.model_copy(update={"port": free_port()}))  # the fixture: demo mode
    try:
        client = anonymous(live)
        page = client.get("/console", headers={"Accept": "text/html"})
        assert page.status_code == 200 and 'id="as"' in page.text and "周强(经理)" in page.text
        said = client.post("/console/api/say", json={"channel": "tmall-promo", "user": "alex",
                                                     "text": "list"})
        assert said.status_code == 200 and said.json()["ok"] is True
        assert client.post("/sandbox/tmall/notices", json=notice(7)).status_code == 201
        assert client.get("/api/tasks").status_code == 200
    finally:
        live.stop()


def test_the_demo_keeps_the_api_token_when_one_is_set(settings, seeded):
    demo = settings.model_copy(update={"port": free_port(), "api_token": SecretStr(TOKEN)})
    live = start(demo)
    try:
        assert anonymous(live).get("/api/tasks").status_code == 401
        assert team(live).get("/api/tasks").status_code == 200
        assert anonymous(live).get("/console/api/channels").status_code == 200
    finally:
        live.stop()


# -- the session secret and the command line -----------------------------------------------------

def test_session_secret_is_generated_once_and_private(tmp_path):
    from bot.web.auth import session_secret

    plain = Settings(_env_file=None)
    first = session_secret(plain, tmp_path)
    assert len(first) >= 40 and session_secret(plain, tmp_path) == first
    assert (tmp_path / "session_secret").stat().st_mode & 0o777 == 0o600
    given = Settings(_env_file=None, session_secret="from-the-environment")
    assert session_secret(given, tmp_path) == "from-the-environment"


def test_user_passwd_command_sets_a_password(settings, seeded, monkeypatch):
    from typer.testing import CliRunner

    from bot.cli.main import app
    from bot.core.passwords import check
    from bot.core.settings import get_settings

    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        done = runner.invoke(app, ["user", "passwd", "li.na", "--password-stdin"],
                             input="a long new password\n")
        assert done.exit_code == 0, done.output
        assert "李娜(运营)" in done.output and "a long new password" not in done.output
        short = runner.invoke(app, ["user", "passwd", "li.na", "--password-stdin"], input="short\n")
        assert short.exit_code == 1 and "至少需要 10 个字符" in short.output
        unknown = runner.invoke(app, ["user", "passwd", "nobody", "--password-stdin"],
                                input="a long new password\n")
        assert unknown.exit_code == 1 and "nobody" in unknown.output
        prompted = runner.invoke(app, ["user", "passwd", "alex"],
                                 input="prompted password\nprompted password\n")
        assert prompted.exit_code == 0, prompted.output
    finally:
        get_settings.cache_clear()
    with seeded.session() as s:
        assert check(s, "li.na", "a long new password") is not None
        assert check(s, "li.na", "short") is None
        assert check(s, "alex", "prompted password") is not None
