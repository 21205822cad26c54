"""The review report: a card in the team's ops channel once per period through the reminder
sweep (run twice), its signed chart and page links on the real app, the CLI's PNG and HTML,
and English labels when no font has Chinese glyphs. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import httpx
from PIL import Image
from sqlmodel import select
from typer.testing import CliRunner

import cards.review as layout
from bot.core.settings import get_settings
from bot.insight import review
from bot.watch.reminders import sweep
from bot.watch.settings import WatchSettings
from storage.models import ChatBinding, ChatMessage, OutboxMessage
from storage.types import utcnow
from tests.conftest import LiveServer
from tests.insight_history import NOW, at, build

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def quiet_sweep(db, now) -> int:
    """One reminder sweep at ``now``; the review cards it enqueued (outbox rows so far)."""
    sweep(db, now=now, settings=WatchSettings(digest_time="", quiet_hours="", _env_file=None))
    with db.session() as s:
        return len(s.exec(select(OutboxMessage).where(OutboxMessage.card_key.like("review:%")))
                   .all())


def test_the_review_card_is_posted_once_per_period_with_working_links(db, settings):
    from bot.web.app import create_app

    build(db)
    live = LiveServer(create_app(settings), settings).start()  # installs the insight plugin
    try:
        assert quiet_sweep(db, at("11-09 09:00")) == 0  # Monday, before the review time
        assert quiet_sweep(db, at("11-09 10:00")) == 1  # due: the week of Nov 2–8
        assert quiet_sweep(db, at("11-09 10:00")) == 1  # the same sweep again: nothing new
        assert quiet_sweep(db, at("11-12 15:00")) == 1  # later that week: still once
        live.drain()
        live.drain()
        with db.session() as s:
            rows = s.exec(select(OutboxMessage).where(OutboxMessage.card_key.like("review:%"))
                          ).all()
            posted = s.exec(select(ChatMessage).where(ChatMessage.card_key.like("review:%"))
                            ).all()
        assert [(r.channel_id, r.status) for r in rows] == [("ops-room", "sent")]
        assert len(posted) == 1 and posted[0].channel_id == "ops-room"  # not the notice room
        card = posted[0].card
        assert card["title"] == "复盘报告 2026-11-02 – 2026-11-08"
        fields = {f["label"]: f["value"] for f in card["fields"]}
        assert fields["提交申报"] == "2" and fields["通过率"] == "67%(2/3)"
        assert fields["错过截止"] == "1 / 2" and fields["投入产出比"] == "—"
        assert fields["节省工时(估算)"] == "3.0 小时"  # 2 declarations × 90 min
        assert "价格 ×1" in fields["主要驳回原因"]
        chart, page = (b["url"] for b in card["buttons"])
        assert chart.startswith(f"{settings.base_url}/insight/review.png?") and "sig=" in chart

        with httpx.Client(timeout=30) as client:  # no login: the signature is the credential
            image = client.get(chart)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            assert image.content.startswith(PNG_MAGIC)
            assert Image.open(io.BytesIO(image.content)).size[0] >= 1000
            html = client.get(page)
            assert html.status_code == 200 and "复盘报告 2026-11-02 – 2026-11-08" in html.text
            assert "data:image/png;base64," in html.text
            forged = client.get(chart.replace("team=1", "team=2"))
            assert forged.status_code == 403 and "无效" in forged.json()["detail"]["message"]
            params = {"team_id": 1, "start": at("11-02 00:00").isoformat(),
                      "end": at("11-09 00:00").isoformat(), "platforms": ["*"]}
            old = review.signed_url("png", params, "en", utcnow() - timedelta(days=30))
            gone = client.get(old)
            assert gone.status_code == 410 and "expired" in gone.json()["detail"]["message"]

        assert quiet_sweep(db, at("11-16 10:00")) == 2  # the next week gets its own card
    finally:
        live.stop()


def test_without_an_ops_channel_the_review_goes_to_the_notice_channels(db):
    build(db)
    with db.session() as s:
        for b in s.exec(select(ChatBinding).where(ChatBinding.purpose == "ops")):
            s.delete(b)
    with db.session() as s:
        assert review.enqueue_due(s, at("11-09 10:00")) == 1
        assert review.enqueue_due(s, at("11-09 11:00")) == 0
        row = s.exec(select(OutboxMessage)).one()
    assert row.channel_id == "tmall-promo" and row.payload["params"]["platforms"] == ["tmall"]
    assert row.key == "review:1:2026-W45:web:tmall-promo"


def test_monthly_reviews_and_the_period_arithmetic():
    from bot.insight.metrics import InsightSettings

    monthly = InsightSettings(review_period="month", review_time="08:00", _env_file=None)
    key, start, end = review.due_period(at("12-01 08:30"), "Asia/Shanghai", monthly)
    assert key == "2026-11" and start == at("11-01 00:00") and end == at("12-01 00:00")
    assert review.due_period(at("12-01 07:59"), "Asia/Shanghai", monthly) is None
    weekly = InsightSettings(_env_file=None)
    key, start, end = review.due_period(at("2027-01-04 09:30"), "Asia/Shanghai", weekly)
    assert key == "2026-W53" and start == at("2026-12-28 00:00")
    off = InsightSettings(review_period="off", _env_file=None)
    assert review.due_period(NOW, "Asia/Shanghai", off) is None


def test_report_review_writes_the_chart_and_the_page(db, monkeypatch, tmp_path):
    from bot.cli.main import app

    build(db)
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        window = ["--since", "2026-11-02", "--until", "2026-11-09", "--team", "t1"]
        png, page = tmp_path / "review.png", tmp_path / "review.html"
        done = runner.invoke(app, ["report", "review", *window, "--output", str(png)])
        assert done.exit_code == 0, done.output
        assert png.read_bytes().startswith(PNG_MAGIC)
        assert Image.open(png).size == (1210, 638)
        done = runner.invoke(app, ["report", "review", *window, "-o", str(page), "--lang", "en"])
        assert done.exit_code == 0, done.output
        text = page.read_text(encoding="utf-8")
        assert "<h1>Review 2026-11-02 – 2026-11-08</h1>" in text
        assert "<td>67% (2 of 3)</td>" in text and "Tmall" in text
        assert "data:image/png;base64," in text and "Times in Asia/Shanghai" in text
        bad = runner.invoke(app, ["report", "review", *window, "-o", str(tmp_path / "r.pdf"),
                                  "--lang", "en"])
        assert bad.exit_code != 0 and "neither" in bad.output
    finally:
        get_settings.cache_clear()


def test_the_chart_has_english_labels_when_no_font_has_chinese_glyphs(monkeypatch, caplog):
    data = {"team": "一组", "team_code": "t1", "period": "2026-11-02 – 2026-11-08",
            "acceptance_rate": 0.5, "missed": 1, "deadlines": 2, "hours_saved": 3.0,
            "roi": None, "platforms": [{"code": "tmall", "submitted": 2, "accepted": 1,
                                         "rejected": 1, "missed": 1}],
            "trend": [{"label": "11-02", "declarations": 2, "acceptance_rate": 0.5}]}
    used: list[str] = []
    real_t = layout.t
    monkeypatch.setattr(layout, "cjk_font", lambda configured="": None)
    monkeypatch.setattr(layout, "t", lambda key, lang=None, **kw: used.append(lang) or
                        real_t(key, lang, **kw))
    layout._warn_no_font.cache_clear()
    with caplog.at_level(logging.WARNING):
        png = layout.chart_png(data, "zh-CN")
    assert png.startswith(PNG_MAGIC)
    assert used and set(used) == {"en"}  # not one Chinese label to draw as empty boxes
    assert "English labels" in caplog.text
