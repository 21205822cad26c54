"""Every kind of notice source against a local announcement server (and a drop folder):
new, duplicate and changed notices; conditional requests; 500s, timeouts, 429s and
malformed JSON/XML/HTML; GBK pages and spreadsheets → retried or reported, never a crash."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from adapters.platforms.file_drop import FileDropSource
from adapters.platforms.html_list import HtmlListSource
from adapters.platforms.http_json import HttpJsonSource
from adapters.platforms.rss import RssSource
from adapters.platforms.sources_config import SourcesConfigError, build, load
from bot.watch import cards as _watch_cards  # noqa: F401  (the feature's cards)
from bot.watch.watcher import Watcher
from cards.builders import BUILDERS
from storage.models import Campaign, OutboxMessage, Task
from storage.models_watch import NoticeBody, SourceState
from tests.fakes.notice_feeds import FIXTURES, NoticeServer

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
TMALL_MAPPING = {
    "items": "result.activities", "external_id": "activity_id", "title": "name",
    "type": "activity_type", "registration_start": "enroll.begin",
    "registration_end": "enroll.end", "event_start": "sale.begin", "event_end": "sale.end",
    "requirements": "rules", "source_url": "detail_url", "text": "content",
}


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH)


@pytest.fixture
def server():
    s = NoticeServer()
    yield s
    s.close()


def watcher(db, *sources) -> Watcher:
    return Watcher(db, list(sources), clock=lambda: NOW)


def campaigns(db) -> dict[str, Campaign]:
    with db.session() as s:
        return {c.external_id: c for c in s.exec(select(Campaign))}


def task_of(db, external_id: str) -> Task:
    with db.session() as s:
        return s.exec(select(Task).join(Campaign).where(Campaign.external_id == external_id)).one()


def test_open_api_json_new_duplicate_changed_with_conditional_get(seeded, server):
    db = seeded
    url = server.fixture("/tmall", "tmall_openapi.json", "application/json")
    source = HttpJsonSource("tmall-open", "tmall", url, mapping=TMALL_MAPPING, attempts=2)
    w = watcher(db, source)
    first = w.run_once()
    assert len(first.new) == 3 and not first.failed
    assert source.rejected == ["tmall-open: skipped notice: notice without id or title"]
    found = campaigns(db)
    assert found["TM-OPEN-20261211"].registration_end == datetime(2026, 11, 28, 23, 59, 59,
                                                                  tzinfo=SH)
    # Prose-only dates come from the rule text, in Shanghai time.
    prose = found["TM-OPEN-20261215"]
    assert (prose.registration_start, prose.registration_end) == (at("2026-12-01 10:00"),
                                                                  at("2026-12-06 18:00"))
    assert (prose.event_start, prose.event_end) == (at("2026-12-15 00:00"), at("2026-12-20 23:59"))
    assert task_of(db, "TM-OPEN-20261215").deadline == at("2026-12-06 18:00")
    # No readable deadline: the card says so and offers a button to set it.
    unclear = task_of(db, "TM-OPEN-20261220")
    assert unclear.deadline is None
    with db.session() as s:
        assert s.get(NoticeBody, unclear.campaign_id).unclear
        card = BUILDERS["task"](s, {"task_id": unclear.id}, "en")
    assert "Deadline unclear" in str(card.fields)
    deadline = [b for b in card.buttons if b.action == "set_deadline"]  # among the others
    assert len(deadline) == 1 and deadline[0].needs_input, [b.action for b in card.buttons]

    # Second poll: the server answers 304 to our If-None-Match; nothing is read or posted.
    again = w.run_once()
    assert (again.new, again.updated, again.unchanged) == ([], [], 0)
    assert server.asked("/tmall")[-1].get("If-None-Match", "").startswith('"')
    assert server.asked("/tmall")[-1].get("If-Modified-Since") == "Wed, 25 Nov 2026 08:00:00 GMT"
    with db.session() as s:
        assert s.get(SourceState, "tmall-open").validators["etag"]

    # The marketplace moves a deadline: same task, a "notice updated" card old → new.
    body = json.loads((FIXTURES / "tmall_openapi.json").read_text())
    body["result"]["activities"][0]["enroll"]["end"] = "2026-11-30 23:59:59"
    server.serve("/tmall", json.dumps(body, ensure_ascii=False))
    changed = w.run_once()
    assert len(changed.updated) == 1 and not changed.new
    task = task_of(db, "TM-OPEN-20261211")
    assert task.deadline.astimezone(SH).strftime("%m-%d %H:%M") == "11-30 23:59"
    with db.session() as s:
        assert len(s.exec(select(Task).where(Task.campaign_id == task.campaign_id)).all()) == 1
        rows = s.exec(select(OutboxMessage).where(
            OutboxMessage.card_key == f"notice_updated:{task.id}:2")).all()
        assert [(r.chat, r.channel_id) for r in rows] == [("web", "tmall-promo")]
        card = BUILDERS["notice_updated"](s, rows[0].payload["params"], "zh-CN")
    assert card.table[0].cells == ["报名截止", "2026-11-28 23:59", "2026-11-30 23:59"]


def test_rss_feed_and_malformed_xml(seeded, server):
    db = seeded
    url = server.fixture("/jd.rss", "jd_announcements.rss", "application/rss+xml")
    source = RssSource("jd-rss", "jd", url, attempts=1)
    report = watcher(db, source).run_once()
    assert len(report.new) == 2
    found = campaigns(db)
    annual = found["JD-ANN-88121"]
    assert annual.registration_end == at("2026-12-08 23:59")
    assert annual.event_start == at("2027-01-05 00:00")
    assert annual.source_url.endswith("/88121")
    assert found["JD-ANN-88133"].registration_end == at("2026-12-05 23:59")  # 即日起至12月5日

    broken = RssSource("broken-rss", "jd", server.fixture("/broken.rss", "broken.rss",
                                                          "application/xml"), attempts=1)
    w = watcher(db, broken)
    assert w.run_once().new == []
    health = w.health["broken-rss"]
    assert not health.ok and "unreadable feed" in health.last_error


def test_html_list_with_detail_pages_and_gbk(seeded, server):
    db = seeded
    server.fixture("/notice/5501", "douyin_5501.html", "text/html; charset=utf-8")
    server.fixture("/notice/5502", "douyin_5502.html", "text/html; charset=utf-8")
    url = server.fixture("/douyin", "douyin_list.html", "text/html; charset=utf-8")
    source = HtmlListSource("douyin-html", "douyin", url, attempts=1,
                            selectors={"item": "li.notice", "title": "a.title",
                                       "link": "a.title@href", "id": "@data-id",
                                       "date": "span.date"},
                            detail={"body": "div.article"})
    report = watcher(db, source).run_once()
    assert len(report.new) == 2 and source.rejected == ["douyin-html: skipped item: item without title"]
    found = campaigns(db)
    assert found["DY-ANN-5501"].registration_end == at("2026-12-09 18:00")
    assert found["DY-ANN-5501"].event_end == at("2027-01-18 23:59")
    assert found["DY-ANN-5502"].registration_end == at("2026-12-04 23:59")
    assert found["DY-ANN-5501"].source_url == f"{server.base}/notice/5501"

    # GBK page without a charset header: the <meta> says gbk.
    gbk_url = server.fixture("/pdd", "pdd_gbk.html", "text/html")
    pdd = HtmlListSource("pdd-html", "pdd", gbk_url, attempts=1,
                         selectors={"item": "tr.row", "title": "td.t a", "link": "td.t a@href",
                                    "text": "td.d"})
    assert len(watcher(db, pdd).run_once().new) == 2
    found = campaigns(db)
    titles = {c.title: c for c in found.values() if c.platform == "pdd"}
    assert titles["百亿补贴·12月第二期招商"].registration_end == at("2026-12-03 12:00")
    assert titles["多多买菜·冬季生鲜节报名"].registration_end == at("2026-12-06 23:59")

    # A page whose layout changed (no items match) is a reported failure, not a crash.
    server.serve("/pdd", "<html><body><p>系统维护中</p></body></html>", etag=False)
    w = watcher(db, pdd)
    w.run_once()
    assert "no items match" in w.health["pdd-html"].last_error


def test_drop_folder_csv_gbk_excel_and_broken_files(seeded, tmp_path):
    from openpyxl import Workbook

    db = seeded
    shutil.copy(FIXTURES / "calendar_gbk.csv", tmp_path / "calendar_gbk.csv")
    book = Workbook()
    book.active.append(["活动ID", "活动名称", "报名截止", "活动开始", "说明"])
    book.active.append(["XL-77", "拼多多年货节·零食专场", datetime(2026, 12, 2, 20, 0),
                        datetime(2027, 1, 3, 0, 0), "平台小二下发"])
    book.save(tmp_path / "pdd.xlsx")
    (tmp_path / "corrupt.xlsx").write_bytes(b"PK\x03\x04 this is not really excel")
    (tmp_path / "~$pdd.xlsx").write_bytes(b"lock file of an open workbook")
    source = FileDropSource("calendars", "pdd", str(tmp_path))
    w = watcher(db, source)
    report = w.run_once()
    assert len(report.new) == 4, source.rejected
    assert any("corrupt.xlsx" in r and "not a readable Excel" in r for r in source.rejected)
    assert any("unknown platform" in r for r in source.rejected)
    found = campaigns(db)
    assert found["CAL-001"].platform == "tmall" and found["CAL-001"].registration_end == at(
        "2026-11-30 23:59")
    assert found["CAL-002"].platform == "jd"
    assert found["CAL-002"].registration_end == at("2026-12-04 18:00")  # prose cell, extracted
    assert found["XL-77"].registration_end == at("2026-12-02 20:00")
    no_id = [c for c in found.values() if c.title == "缺少编号但有名称的活动"][0]
    assert no_id.platform == "douyin" and no_id.registration_end == at("2026-12-05 23:59")
    # Unchanged files are not read again; a corrected file is.
    assert w.run_once().new == [] and source.rejected == [
        r for r in source.rejected if "corrupt" in r]
    book.active.append(["XL-78", "拼多多年货节·坚果专场", "2026-12-03 20:00", None, ""])
    book.save(tmp_path / "pdd.xlsx")
    assert len(w.run_once().new) == 1
    assert w.health["calendars"].ok


def test_missing_drop_folder_is_a_failure(seeded, tmp_path):
    w = watcher(seeded, FileDropSource("gone", "pdd", str(tmp_path / "nope")))
    w.run_once()
    assert "does not exist" in w.health["gone"].last_error


def test_retries_then_alert_once_then_recovery(seeded, server):
    db = seeded
    url = server.fixture("/tmall", "tmall_openapi.json", "application/json")
    server.routes["/tmall"].failures = [500, 429]
    source = HttpJsonSource("flaky", "tmall", url, mapping=TMALL_MAPPING, attempts=3,
                            alert_after=2, interval=60)
    w = watcher(db, source)
    assert len(w.run_once().new) == 3  # a 500 and a 429 are retried inside one poll
    assert len(server.asked("/tmall")) == 3

    server.routes["/tmall"].delay = 1.5  # slower than the timeout from now on
    source.timeout, source.attempts, source.validators = 0.3, 1, {}
    w.run_once()
    with db.session() as s:
        state = s.get(SourceState, "flaky")
        assert state.consecutive_failures == 1 and not state.alerting
        assert state.next_attempt_at > NOW  # backed off
        assert not s.exec(select(OutboxMessage).where(
            OutboxMessage.card_key.like("source_down:%"))).all()
    assert w.run_due().new == []  # not due yet: the backoff is respected
    w.run_once()
    w.run_once()  # a third failure: still one alert for this outage
    with db.session() as s:
        alerts = s.exec(select(OutboxMessage).where(
            OutboxMessage.card_key.like("source_down:%"))).all()
        assert [(a.chat, a.channel_id) for a in alerts] == [("web", "ops")]
        card = BUILDERS["source_down"](s, alerts[0].payload["params"], "en")
        state = s.get(SourceState, "flaky")
        assert state.consecutive_failures == 3 and "ReadTimeout" in state.last_error
        first_gap = (state.next_attempt_at - NOW).total_seconds()
        assert 4 * 60 * 0.8 <= first_gap <= 4 * 60 * 1.2  # 60 s · 2^(3-1), ±20 % jitter
    assert card.title == "Source failing: flaky" and "3 failures" in card.text

    server.routes["/tmall"].delay = 0
    w.run_once()
    with db.session() as s:
        recovered = s.exec(select(OutboxMessage).where(
            OutboxMessage.card_key.like("source_recovered:%"))).all()
        assert len(recovered) == 1
        assert BUILDERS["source_recovered"](s, recovered[0].payload["params"], "zh-CN").title \
            == "数据源已恢复:flaky"
    assert w.health["flaky"].ok and w.health["flaky"].consecutive_failures == 0


def test_malformed_json_and_wrong_shape_are_reported(seeded, server):
    db = seeded
    url = server.serve("/bad", b"{not json", etag=False)
    w = watcher(db, HttpJsonSource("bad-json", "jd", url, attempts=1),
                HttpJsonSource("wrong-shape", "jd", server.serve("/shape", b'{"data": 3}'),
                               attempts=1))
    w.run_once()
    assert "not JSON" in w.health["bad-json"].last_error
    assert "no list at" in w.health["wrong-shape"].last_error


def test_sources_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("TMALL_TOKEN", "s3cret")
    path = tmp_path / "sources.yaml"
    path.write_text("""
defaults: {interval: 120, retries: 2}
sources:
  - {name: tmall-api, platform: tmall, kind: http_json, url: "https://api.example/x",
     headers: {Authorization: "Bearer ${TMALL_TOKEN}"}, mapping: {items: "data"},
     channel: "feishu:oc_1"}
  - {name: jd-rss, platform: jd, kind: rss, url: "https://jd.example/rss", interval: 900}
  - {name: dy-html, platform: douyin, kind: html_list, url: "https://dy.example/",
     selectors: {item: "li"}, detail: {body: ".article"}}
  - {name: drop, platform: pdd, kind: file_drop, folder: /tmp/drop}
  - {name: sandbox-jd, platform: jd, kind: sandbox}
  - {name: paused, platform: jd, kind: rss, url: "https://x", enabled: false}
""", encoding="utf-8")
    built = build(load(path), timezone="Asia/Shanghai", base_url="http://127.0.0.1:8000")
    by_name = {s.name: s for s in built}
    assert sorted(by_name) == ["drop", "dy-html", "jd-rss", "sandbox-jd", "tmall-api"]
    assert by_name["tmall-api"].headers["Authorization"] == "Bearer s3cret"
    assert by_name["tmall-api"].interval == 120 and by_name["tmall-api"].attempts == 2
    assert by_name["tmall-api"].channel == "feishu:oc_1"
    assert by_name["jd-rss"].interval == 900
    assert by_name["sandbox-jd"].url == "http://127.0.0.1:8000/sandbox/jd/notices"
    path.write_text("sources:\n  - {name: a, platform: jd, kind: rss}\n"
                    "  - {name: a, platform: jd, kind: rss, url: x}\n")
    with pytest.raises(SourcesConfigError) as err:
        load(path)
    assert "needs url" in str(err.value)
    path.write_text("sources: [\n")
    with pytest.raises(SourcesConfigError, match="not valid YAML"):
        load(path)


def test_healthz_and_cli_show_source_health(live, server, monkeypatch, tmp_path):
    import httpx
    from typer.testing import CliRunner

    from bot.cli.main import app
    from bot.core.settings import get_settings
    from bot.watch.settings import get_watch_settings

    broken = server.serve("/down", b"oops", status=503, etag=False)
    config = tmp_path / "sources.yaml"
    config.write_text(f"sources:\n  - {{name: down-feed, platform: jd, kind: http_json, "
                      f"url: '{broken}', retries: 1}}\n", encoding="utf-8")
    live.container.extras["watcher"].run_once()
    body = httpx.get(f"{live.url}/healthz").json()
    names = {s["name"]: s for s in body["sources"]}
    assert names["sandbox-tmall"]["ok"] and names["sandbox-tmall"]["kind"] == "http_json"
    assert names["sandbox-tmall"]["last_success"]

    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", live.settings.database_url)
    monkeypatch.setenv("PROMOPILOT_SOURCES_FILE", str(config))
    monkeypatch.setenv("PROMOPILOT_SANDBOX_ENABLED", "false")
    get_settings.cache_clear()
    get_watch_settings.cache_clear()
    try:
        runner = CliRunner()
        watch = runner.invoke(app, ["watch", "--once"])
        assert watch.exit_code == 1, watch.output  # a failing source fails the cron job
        assert json.loads(watch.output.strip().splitlines()[-1])["sources"][0]["name"] == "down-feed"
        shown = runner.invoke(app, ["sources"])
        assert "FAIL down-feed" in shown.output and "503" in shown.output
    finally:
        get_settings.cache_clear()
        get_watch_settings.cache_clear()


def test_fixture_files_are_really_gbk():
    raw = (Path(FIXTURES) / "calendar_gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_example_sources_file_is_valid():
    from bot.core.settings import ROOT

    built = build(load(ROOT / "config" / "sources.example.yaml"), timezone="Asia/Shanghai",
                  base_url="http://127.0.0.1:8000")
    assert [s.kind for s in built] == ["http_json", "rss", "html_list", "file_drop"]


def test_tokens_in_urls_never_reach_health_or_cards(seeded, server):
    url = server.serve("/feed?access_token=s3cret", b"down", status=503, etag=False)
    w = watcher(seeded, HttpJsonSource("tokened", "jd", url, attempts=1, alert_after=1))
    w.run_once()
    error = w.health["tokened"].last_error
    assert "503" in error and "s3cret" not in error
    with seeded.session() as s:
        alert = s.exec(select(OutboxMessage).where(
            OutboxMessage.card_key.like("source_down:tokened:%"))).one()
        card = BUILDERS["source_down"](s, alert.payload["params"], "en")
    assert "s3cret" not in card.model_dump_json()
