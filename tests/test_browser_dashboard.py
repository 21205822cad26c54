"""The dashboard as a person uses it: Debian's chromium driven by Playwright, against the real
app under uvicorn. Every page is saved as a screenshot under tests/artifacts/dashboard/
(gitignored) for people to look at; every test fails on a JavaScript error."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.declarations import plugin as declarations_plugin
from storage.models import Campaign, Task
from storage.types import utcnow
from tests import dashboard_data
from tests.conftest import LiveServer, free_port
from tests.fakes import data_pool as pool

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts" / "dashboard"
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"


@pytest.fixture
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def js_errors() -> Iterator[list[str]]:
    """Every JavaScript error and failed load the pages report; empty at the end."""
    errors: list[str] = []
    yield errors
    assert errors == [], errors


def watch(page, errors: list[str], allowed: tuple[str, ...] = ()):
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}")
            if m.type == "error" and not any(a in m.text for a in allowed) else None)
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def new_page(browser, errors, live, person: str | None = None, **context):
    ctx = browser.new_context(locale=context.pop("locale", "zh-CN"), **context)
    if person:  # the demo's "Acting as" picker remembers the person in this cookie
        ctx.add_cookies([{"name": "pp_as", "value": person, "url": live.url}])
    return watch(ctx.new_page(), errors)


def no_sideways_scroll(page) -> None:
    width = page.evaluate("window.innerWidth")
    scroll = page.evaluate("Math.max(document.documentElement.scrollWidth,"
                           " document.body.scrollWidth)")
    assert scroll <= width, f"{page.url}: {scroll}px wide in a {width}px window"


# -- calendar -----------------------------------------------------------------------------------

def test_calendar_shows_a_seeded_deadline_on_its_day(live, browser, js_errors):
    db = live.container.db
    tid = dashboard_data.task_of(db, "jd")
    local_now = utcnow().astimezone(dashboard_data.SHANGHAI).replace(tzinfo=None)
    day = (local_now + timedelta(days=3)).replace(hour=1, minute=30, second=0, microsecond=0)
    dashboard_data.deadline_at(db, tid, day)  # 01:30 in Shanghai is the day before in UTC
    # a browser in another zone still sees the team's day
    page = new_page(browser, js_errors, live, timezone_id="America/Los_Angeles")
    page.goto(f"{live.url}/dash/calendar")
    event = page.locator(f".fc-event.pp-deadline[data-task='{tid}']")
    event.wait_for(timeout=15_000)
    cell = event.evaluate("el => el.closest('td[data-date]').dataset.date")
    assert cell == day.strftime("%Y-%m-%d")
    assert "01:30" in event.inner_text()
    shot(page, "calendar-month")
    page.click(".fc-timeGridWeek-button")
    page.locator(f".fc-event.pp-deadline[data-task='{tid}']").wait_for()
    shot(page, "calendar-week")
    page.click(".fc-dayGridMonth-button")
    page.locator(f".fc-event.pp-deadline[data-task='{tid}']").click()
    page.wait_for_url(f"{live.url}/dash/tasks/{tid}")
    assert f"#{tid}" in page.locator("h1").inner_text()
    shot(page, "task")


# -- board -------------------------------------------------------------------------------------

def test_board_filter_narrows_the_list_and_actions_go_through_the_router(live, browser,
                                                                         js_errors):
    db = live.container.db
    page = new_page(browser, js_errors, live, person="li.na")
    page.goto(live.url + "/")
    page.locator(".item").first.wait_for()
    everything = page.locator(".item").count()
    assert everything == 5
    shot(page, "board")
    page.select_option("#f-platform", "jd")
    page.wait_for_function("() => [...document.querySelectorAll('.item')].every("
                           "i => i.dataset.platform === 'jd')")
    assert 0 < page.locator(".item").count() < everything
    page.wait_for_url(f"{live.url}/?platform=jd")  # the address keeps the filter
    assert "platform=jd" in page.locator("#export-csv").get_attribute("href")
    shot(page, "board-filtered")

    tid = dashboard_data.task_of(db, "jd")
    item = page.locator(f".item[data-task='{tid}']")
    item.locator("button[data-action=claim]").click()
    page.locator("#flash .flash.ok").wait_for(timeout=10_000)
    page.locator(f".column[data-column=working] .item[data-task='{tid}']").wait_for()
    with db.session() as s:
        assert s.get(Task, tid).state == "claimed"

    other = new_page(browser, js_errors, live, person="zhao.lei")  # finance may not skip
    other.goto(f"{live.url}/?platform=tmall")
    other.once("dialog", lambda d: d.accept("预算不够"))
    other.locator(".item button[data-action=skip]").first.click()
    refusal = other.locator("#flash .flash.refused")
    refusal.wait_for(timeout=10_000)
    assert "财务" in refusal.inner_text()  # the domain's refusal, as in any chat
    shot(other, "board-refused")


# -- charts ------------------------------------------------------------------------------------

def test_a_chart_renders_with_data(live, browser, js_errors):
    dashboard_data.history(live.container.db)
    dashboard_data.results(live.container.db)
    page = new_page(browser, js_errors, live, person="zhou.qiang")
    page.goto(f"{live.url}/dash/charts")
    page.locator(".charts[data-ready='1']").wait_for(timeout=15_000)
    rates = page.evaluate("echarts.getInstanceByDom(document.getElementById("
                          "'chart-acceptance')).getOption().series[0].data")
    assert 100 in rates and 0 in rates  # tmall accepted, jd rejected
    assert page.locator("#chart-acceptance canvas").count() == 1
    reasons = page.evaluate("echarts.getInstanceByDom(document.getElementById("
                            "'chart-reasons')).getOption().yAxis[0].data")
    assert set(reasons) == {"价格", "主图"}
    roi = page.evaluate("echarts.getInstanceByDom(document.getElementById('chart-roi'))"
                        ".getOption().series.map(s => [s.name, s.data])")
    assert ["天猫", [3.25, None]] in roi and ["京东", [None, 1.5]] in roi  # 大促, 秒杀
    shot(page, "charts")


# -- roles and login ------------------------------------------------------------------------------

@pytest.fixture
def secure_live(settings, seeded) -> Iterator[LiveServer]:
    from pydantic import SecretStr

    from bot.core.passwords import set_password
    from bot.web.app import create_app

    with seeded.session() as s:
        for name in ("li.na", "admin"):
            set_password(s, name, PASSWORD)
    secure = settings.model_copy(update={"demo": False, "sandbox_enabled": False,
                                         "api_token": SecretStr("t0ken"), "port": free_port()})
    server = LiveServer(create_app(secure), secure).start()
    yield server
    server.stop()


def log_in(page, live, name: str, target: str = "/") -> None:
    page.goto(live.url + target)
    assert "/console/login" in page.url  # login required outside the demo
    shot(page, "login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + target)


def test_login_required_and_a_role_without_permission_cannot_see_settings(secure_live, browser,
                                                                         js_errors):
    live = secure_live
    page = watch(browser.new_context(locale="zh-CN").new_page(), js_errors,
                 allowed=("status of 403",))  # the refused settings page itself
    log_in(page, live, "li.na")
    page.locator(".item").first.wait_for()
    assert page.locator("#me").inner_text() == "李娜(运营)"
    assert page.locator("#nav-settings").count() == 0
    assert page.locator("#nav-charts").count() == 0
    item = page.locator(".column[data-column=todo] .item").first
    tid = item.get_attribute("data-task")
    item.locator("button[data-action=claim]").click()  # htmx sends the session's CSRF token
    page.locator("#flash .flash.ok").wait_for(timeout=10_000)
    page.locator(f".column[data-column=working] .item[data-task='{tid}'] .owner",
                 has_text="李娜(运营)").wait_for()
    page.goto(f"{live.url}/dash/settings")
    assert "不能查看「设置」" in page.locator("#refusal").inner_text()
    assert page.locator("#bindings").count() == 0
    shot(page, "settings-refused")

    admin = watch(browser.new_context(locale="en-US").new_page(), js_errors)
    log_in(admin, live, "admin", "/dash/settings")
    assert admin.locator("#bindings h2").inner_text() == "Channel bindings"
    admin.fill("#add-binding input[name=channel_id]", "beauty-team")
    admin.select_option("#add-binding select[name=platform]", "tmall")
    admin.check("#add-binding input[name=roles][value=ops]")
    admin.click("#add-binding-submit")
    admin.locator("#settings-message", has_text="Binding added").wait_for()
    assert admin.locator("td", has_text="beauty-team").count() == 1
    admin.locator("#changes li", has_text="added a channel binding").wait_for()
    shot(admin, "settings-admin")


# -- the phone ----------------------------------------------------------------------------------

def test_a_390px_phone_never_scrolls_sideways(live, browser, js_errors):
    db = live.container.db
    live.drain()  # the console's channels have their cards
    tid = dashboard_data.task_of(db, "pdd")
    with db.session() as s:  # text with no place to break: a title and a 100 KB reason
        task = s.get(Task, tid)
        task.state, task.skip_reason = "skipped", "无" * 50_000 + "x" * 50_000
        task.version += 1
        s.exec(select(Campaign).where(Campaign.id == task.campaign_id)).one().title = \
            "超长活动标题" + "X" * 3000
    from bot.core import outbox

    with db.session() as s:
        outbox.enqueue_task_card(s, s.get(Task, tid))
    live.drain()
    dashboard_data.history(db)
    drafted = pool.task(db, "jd", {"categories": ["家电数码"]}, state="claimed")
    pool.act(db, drafted, "draft", "li.na")
    with db.session() as s:
        campaign_id = s.get(Task, tid).campaign_id
    form = declarations_plugin.link(drafted, "edit", live.settings).replace(
        live.settings.base_url, "")
    desktop = new_page(browser, js_errors, live, person="admin")
    for path, name, ready in [(f"/dash/campaigns/{campaign_id}", "campaign", "#tasks"),
                              (f"/dash/tasks/{drafted}", "task-drafted", "#lines table"),
                              (form, "declaration-form", "#edit-form"),
                              ("/console?channel=jd-promo", "console", ".card")]:
        desktop.goto(live.url + path)
        desktop.locator(ready).first.wait_for(timeout=15_000)
        shot(desktop, name)
    page = new_page(browser, js_errors, live, person="admin", viewport=PHONE)
    for path, name, ready in [
            (f"/dash/campaigns/{campaign_id}", "phone-campaign", "#tasks"),
            (form, "phone-declaration-form", "#edit-form"),
            ("/", "phone-board", ".item"), ("/?closed=1", "phone-board-closed", ".item"),
            ("/dash/calendar", "phone-calendar", ".fc-view"),
            (f"/dash/tasks/{tid}", "phone-task", "#history"),
            ("/dash/charts", "phone-charts", ".charts[data-ready='1']"),
            ("/dash/settings", "phone-settings", "#bindings"),
            ("/console?channel=douyin-pdd", "phone-console", f".card[data-task='{tid}'].locked")]:
        page.goto(live.url + path)
        page.locator(ready).first.wait_for(timeout=15_000)
        no_sideways_scroll(page)
        shot(page, name)
    page.locator("#channel-picker").select_option("tmall-promo")  # the channel menu
    page.locator(".card[data-kind=notice]").first.wait_for()
    no_sideways_scroll(page)


# -- console fixes --------------------------------------------------------------------------------

def test_console_keeps_messages_in_time_order_when_switching_person(live, browser, js_errors):
    live.drain()
    page = new_page(browser, js_errors, live)
    page.goto(f"{live.url}/console?channel=jd-promo")
    page.select_option("#as", "li.na")
    page.fill("#text", "我的")  # a private reply for li.na
    page.press("#text", "Enter")
    page.locator(".msg.private").first.wait_for(timeout=10_000)
    page.select_option("#as", "wang.fang")
    page.fill("#text", "列表")  # then one for wang.fang, later
    page.press("#text", "Enter")
    page.locator(".msg .bubble", has_text="按截止时间").first.wait_for(timeout=10_000)
    page.select_option("#as", "li.na")  # back: her earlier reply is where it was said
    page.locator(".msg.private").first.wait_for(timeout=10_000)
    page.wait_for_timeout(500)
    order = page.evaluate("[...document.querySelectorAll('#log .msg:not(.local)')]"
                          ".map(m => Number(m.dataset.id))")
    assert order == sorted(order), order
    page.fill("#text", "长" * 2100)  # the limit is said, not cut silently
    page.locator("#limit.over").wait_for()
    page.press("#text", "Enter")
    page.locator(".msg.local", has_text="最多 2000 字").wait_for()
    assert page.locator("#text").input_value() == "长" * 2100  # kept, to shorten
    shot(page, "console-order")
