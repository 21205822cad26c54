"""The console as a person uses it: Debian's chromium, driven by Playwright."""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


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


def test_claim_in_console_updates_card_in_place_for_everyone(live, browser, tmp_path):
    live.drain()  # the demo notice cards are posted
    li_na = browser.new_page()
    li_na.goto(f"{live.url}/console?channel=tmall-promo")
    li_na.select_option("#as", "li.na")
    card = li_na.locator(".card[data-kind=notice]").first
    card.wait_for()
    task_id = card.get_attribute("data-task")

    watcher = browser.new_page()  # a second person with the console open
    watcher.goto(f"{live.url}/console?channel=tmall-promo")
    watcher.select_option("#as", "wang.fang")
    watcher.locator(f".card[data-task='{task_id}']").wait_for()
    before = li_na.locator(".msg").count()

    card.locator("button[data-action=claim]").click()
    claimed = li_na.locator(f".card[data-task='{task_id}']")
    claimed.locator(".badge", has_text="已认领").wait_for(timeout=10_000)
    assert "李娜(运营)" in claimed.inner_text()
    assert li_na.locator(".msg").count() == before  # updated in place, no new message
    # the other console sees the change without reloading
    watcher.locator(f".card[data-task='{task_id}'] .badge", has_text="已认领").wait_for(
        timeout=10_000)
    li_na.screenshot(path=str(tmp_path / "console.png"), full_page=True)

    # a refused click is explained to the clicker only
    watcher.reload()
    watcher.select_option("#as", "wang.fang")
    watcher.fill("#text", f"认领 {task_id}")
    watcher.press("#text", "Enter")
    watcher.locator(".msg.private", has_text="已被 李娜(运营) 认领").wait_for(timeout=10_000)
    li_na.reload()
    li_na.locator(".card").first.wait_for()
    assert li_na.locator(".msg.private", has_text="已被").count() == 0


def test_typed_command_gets_an_answer(live, browser):
    page = browser.new_page()
    page.goto(f"{live.url}/console?channel=jd-promo")
    page.select_option("#as", "alex")
    page.fill("#text", "list")
    page.press("#text", "Enter")
    page.locator(".msg .bubble", has_text="Open campaigns by deadline").wait_for(timeout=10_000)
    page.fill("#text", "what?")
    page.press("#text", "Enter")
    page.locator(".msg .bubble", has_text="I don't know 'what?'").wait_for(timeout=10_000)


def test_login_then_act_as_yourself_then_log_out(settings, seeded, browser):
    """Outside the demo: the console sends you to the login, acts as you (no picker; the
    JS sends the CSRF token), and logging out ends it."""
    from pydantic import SecretStr

    from bot.core.passwords import set_password
    from bot.web.app import create_app
    from tests.conftest import LiveServer, free_port

    with seeded.session() as s:
        set_password(s, "li.na", "correct horse battery")
    secure = settings.model_copy(update={"demo": False, "sandbox_enabled": False,
                                         "api_token": SecretStr("t0ken"), "port": free_port()})
    live = LiveServer(create_app(secure), secure).start()
    try:
        live.drain()
        page = browser.new_page(locale="zh-CN")  # the login page speaks the browser's language
        page.goto(f"{live.url}/console?channel=tmall-promo")
        assert "/console/login" in page.url
        page.fill("#username", "li.na")
        page.fill("#password", "wrong password")
        page.click("button[type=submit]")
        page.locator(".error", has_text="用户名或密码不正确").wait_for()
        page.fill("#password", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.url}/console?channel=tmall-promo")
        assert page.locator("#as").count() == 0  # no "Acting as" picker
        assert "李娜(运营)" in page.locator("#me").inner_text()
        card = page.locator(".card[data-kind=notice]").first
        card.wait_for()
        task_id = card.get_attribute("data-task")
        card.locator("button[data-action=claim]").click()
        page.locator(f".card[data-task='{task_id}'] .badge", has_text="已认领").wait_for(
            timeout=10_000)
        page.fill("#text", "我的")  # typed as li.na: her task is listed
        page.press("#text", "Enter")
        page.locator(".msg .bubble", has_text="我负责的任务").wait_for(timeout=10_000)
        assert f"#{task_id}" in page.locator(".msg .bubble", has_text="我负责的任务").inner_text()
        page.click("#logout")
        page.locator(".info", has_text="你已退出登录").wait_for()
        page.goto(f"{live.url}/console")
        assert "/console/login" in page.url
    finally:
        live.stop()
