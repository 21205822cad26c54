"""One way to show time: every time a person reads (cards, replies, the rules history, the
audit export, the sources CLI, templates) is in the team's zone, stored times stay UTC, and
a naive or UTC time reaching a message fails a test.

The known instant is 2026-11-30 22:08 UTC, which in Asia/Shanghai is 06:08 on 12-01: a
reader must see 06:08 (and the 1st of December), never 22:08 or the 30th."""

from __future__ import annotations

import csv
import importlib
import io
import json
import pkgutil
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli.main import app
from bot.core import i18n, templating, timefmt
from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.settings import get_settings
from bot.core.views import BUILDERS
from bot.declarations.autofill import current
from commands.router import Inbound, router
from storage.models import (
    ApprovalStep,
    AuditEvent,
    Campaign,
    QualificationDocument,
    Task,
    User,
)
from storage.models_approval import ApprovalRound, SubmissionRun
from storage.models_costs import CostSourceState
from storage.models_data import RuleProposal
from storage.models_results import AlertLog
from storage.models_watch import SourceState

T = datetime(2026, 11, 30, 22, 8, tzinfo=UTC)  # stored (UTC)
SHOWN = "2026-12-01 06:08"  # what a person in Asia/Shanghai must read
SHOWN_ISO = "2026-12-01T06:08:00+08:00"
UTC_CLOCK = "22:08"
UTC_DAY = "2026-11-30"
# a time in UTC or a raw isoformat()/str(datetime) that reached a text
RAW_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}|[+-]00:?00\b|\d{2}:\d{2}(:\d{2})?Z\b")


@pytest.fixture(autouse=True)
def team_zone(monkeypatch):
    monkeypatch.setenv("PROMOPILOT_TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def people(db) -> dict[str, Actor]:
    with db.session() as s:
        return {u.name: Actor.of(u) for u in s.exec(select(User))}


def tmall_task(db) -> int:
    with db.session() as s:
        return s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                      .where(Campaign.platform == "tmall").order_by(Task.id)).first()


def card_text(card) -> str:
    """Every string a person can read on a card (title, text, fields, table, footer…)."""
    out: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                button_data = k == "value" and "action" in value  # a button's callback data
                if not button_data and k not in ("url", "link"):
                    walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(card.model_dump())
    return "\n".join(out)


def assert_team_time(text: str, where: str, shown: bool = True) -> None:
    assert not RAW_TIME.search(text), f"{where}: a raw/UTC timestamp reached a person: " \
        f"{RAW_TIME.search(text).group(0)!r} in {text!r}"  # type: ignore[union-attr]
    assert UTC_CLOCK not in text, f"{where}: shows the UTC clock 22:08: {text!r}"
    assert UTC_DAY not in text, f"{where}: shows the UTC day 2026-11-30: {text!r}"
    if shown:
        assert "06:08" in text or "2026-12-01" in text, f"{where}: the team time is missing: {text!r}"


# -- the scene: one task with every kind of time a card can show, all at T -------------------------

def scene(db) -> dict[str, dict]:
    """Card params for every builder, over seeded data whose times are all T."""
    who = people(db)
    tid = tmall_task(db)
    perform(db, ActionRequest(tid, "claim", who["li.na"]))
    perform(db, ActionRequest(tid, "draft", who["li.na"]))
    with db.session() as s:
        _, lines = current(s, tid)
        for line in lines:  # deep discount: manager, then finance
            line.promo_price = (line.list_price * Decimal("0.65")).quantize(Decimal("0.01"))
            s.add(line)
    perform(db, ActionRequest(tid, "request_approval", who["li.na"]))
    perform(db, ActionRequest(tid, "approve", who["zhou.qiang"]))
    with db.session() as s:
        task = s.get(Task, tid)
        assert task is not None and task.state == "in_approval"
        task.deadline = T
        s.add(task)
        campaign = s.get(Campaign, task.campaign_id)
        assert campaign is not None
        campaign.event_start, campaign.event_end = T, T + timedelta(days=3)
        s.add(campaign)
        for step in s.exec(select(ApprovalStep).where(ApprovalStep.task_id == tid)):
            step.due_at = T
            step.decided_at = T if step.decided_at else None
            s.add(step)
        for event in s.exec(select(AuditEvent).where(AuditEvent.task_id == tid)):
            event.created_at = T
            s.add(event)
        for doc in s.exec(select(QualificationDocument)):
            doc.valid_until = T  # expires before the campaign ends: the pre-check says when
            s.add(doc)
        declaration, _ = current(s, tid)
        assert declaration is not None
        rnd = s.exec(select(ApprovalRound).where(ApprovalRound.task_id == tid)
                     .order_by(ApprovalRound.id.desc())).first()
        assert rnd is not None
        s.add(SourceState(name="feed-x", platform="tmall", kind="http_json", ok=False,
                          consecutive_failures=3, last_success=T, next_attempt_at=T,
                          last_error="HTTP 503"))
        run = SubmissionRun(task_id=tid, declaration_version=declaration.version + 10,
                            idempotency_key="pp-test", channels=["api", "excel"],
                            channel_index=1, status="failed", last_error="boom",
                            tried=[{"channel": "api", "error": "boom", "at": T.isoformat()}])
        s.add(run)
        manager = s.exec(select(User).where(User.name == "zhou.qiang")).one()
        proposal = RuleProposal(platform="tmall", signature="t-display", category="stock",
                                sample_text="库存不足", occurrences=3, state="accepted",
                                rule={"kind": "min_stock", "min": 100}, task_id=tid,
                                decided_by=manager.id, decided_at=T, rule_version=2)
        s.add(proposal)
        alert = AlertLog(key="t-display:stock", kind="stock_cross", subject="t-display:stock",
                         task_id=tid, platform="tmall", sku="SKU", created_at=T,
                         detail={"stock": 50, "safety": 40, "in_transit": 0, "expected": 30,
                                 "high": 45, "left_after": 20, "suggest": 35,
                                 "method": "holt_winters", "days_left": 2})
        muted = AlertLog(key="t-display:price", kind="competitor_price", task_id=tid,
                         subject="t-display:price", platform="tmall", sku="SKU", created_at=T,
                         muted_by="li.na", muted_at=T,
                         detail={"ours": "99.00", "theirs": "80.00", "competitor": "竞店",
                                 "gap": "0.192", "threshold": "0.05", "url": ""})
        s.add(alert)
        s.add(muted)
        s.add(CostSourceState(name="erp-x", kind="http_json", ok=False, consecutive_failures=2,
                              last_attempt=T, last_success=T, next_attempt_at=T,
                              last_error="ReadTimeout", alerting=True, incidents=1))
        s.flush()
        ids = {"run": run.id, "proposal": proposal.id, "round": rnd.id,
               "version": declaration.version, "alert": alert.id, "muted": muted.id}
    at = T - timedelta(hours=3)
    week = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    reminder = {"task_id": tid, "tier": "24h", "deadline": T.isoformat(), "due": T.isoformat(),
                "at": at.isoformat(), "late": True, "kind": "tier"}
    return {
        "task": {"task_id": tid},
        "approval": {"task_id": tid, "declaration_version": ids["version"],
                     "round_id": ids["round"]},
        "submission": {"task_id": tid, "run_id": ids["run"]},
        "notice_updated": {"task_id": tid, "version": 2, "changes": {
            "registration_end": [(T - timedelta(days=2)).isoformat(), T.isoformat()],
            "event_start": [None, T.isoformat()]}},
        "source_down": {"source": "feed-x"},
        "source_recovered": {"source": "feed-x"},
        "reminder": reminder,
        "reminder:nag": reminder | {"kind": "nag", "role": "finance", "waited": 7200, "n": 1},
        "reminder:escalation": reminder | {"kind": "escalation", "managers_display": ["周强"]},
        "digest": {"platforms": ["tmall"], "team_id": None, "date": "2026-12-01",
                   "at": (T + timedelta(hours=1)).isoformat(), "tz": None},
        "declaration": {"task_id": tid},
        "rule_proposal": {"proposal_id": ids["proposal"]},
        "insight_alert": {"alert_id": ids["alert"]},  # decided at T
        "insight_alert:muted": {"alert_id": ids["muted"]},  # muted at T
        # the review of the week 12-01 – 12-07: it starts at the team's midnight, which is
        # 16:00 on 11-30 in UTC (a reader must see 2026-12-01, never the UTC day)
        "review": {"team_id": None, "period": "2026-W49", "start": week.isoformat(),
                   "end": (week + timedelta(days=7)).isoformat(), "platforms": ["tmall"]},
        # the ops cards, with the params bot/watch/rejections.py and bot/core/outbox.py
        # hand them; they show no time of their own (NO_TIME), and no raw one may leak in
        "notice_rejected": {"source": "feed-x", "platform": "tmall", "ref": "TM-9",
                            "reason": "registration_end is not a time (str)"},
        "notice_rejected:more": {"source": "feed-x", "platform": "tmall", "more": 7,
                                 "refs": ["TM-10", "TM-11"]},
        # the ERP cost source's ops cards: the next try (down) and the last sync (recovered)
        # are at T; the rejected-rows card shows no time of its own
        "cost_source_down": {"source": "erp-x"},
        "cost_source_recovered": {"source": "erp-x"},
        "cost_rows_rejected": {"source": "erp-x", "more": 2, "items": [
            {"ref": "SKU-7", "key": "erp.row.not_number", "params": {"field": "cost",
                                                                     "value": "abc"}}]},
        "card_unbuildable": {"builder": "task", "card_key": f"task:{tid}", "chat": "web",
                             "channel": "ops",
                             "error": "ValueError('stored value the layout cannot read')"},
    }


# Cards built from their params alone that carry no time: the scan still checks that no raw
# or UTC time reaches them, but does not ask for the team's time.
NO_TIME = {"notice_rejected", "card_unbuildable", "cost_rows_rejected"}


def every_builder() -> dict:
    """BUILDERS once every feature the app installs has registered its cards."""
    import bot.wiring

    for name in bot.wiring.PLUGINS:
        importlib.import_module(name)
    import bot.insight  # its plugin imports some card modules only at install: load them all

    for found in pkgutil.iter_modules(bot.insight.__path__, "bot.insight."):
        importlib.import_module(found.name)
    return BUILDERS


def test_every_card_builder_shows_times_in_the_team_zone(seeded):
    cases = scene(seeded)
    builders = every_builder()
    missing = set(builders) - {name.split(":")[0] for name in cases}
    assert not missing, f"add a case with a time to scene() for the new card builders {missing}"
    for name, params in cases.items():
        for lang in ("zh-CN", "en"):
            with seeded.session() as s:
                card = builders[name.split(":")[0]](s, params, lang)
            assert card is not None, name
            assert_team_time(card_text(card), f"{name} card ({lang})",
                             shown=name.split(":")[0] not in NO_TIME)


def test_task_card_deadline_is_06_08_on_the_first(seeded):
    cases = scene(seeded)
    with seeded.session() as s:
        card = every_builder()["task"](s, cases["task"], "zh-CN")
    fields = {f.label: f.value for f in card.fields}
    assert fields[i18n.t("card.deadline", "zh-CN")] == SHOWN, fields
    assert card.footer and "12-01 06:08" in card.footer, card.footer


# -- replies, CLI and export -------------------------------------------------------------------

def _rules_at_t(db) -> None:
    with db.session() as s:
        from bot.declarations import rules

        rules.platform_rules(s, "tmall")  # the YAML's first version, if none is stored yet
        row = rules.latest(s, "tmall")
        assert row is not None
        row.created_at = T
        s.add(row)


@pytest.mark.parametrize("text, lang", [("规则 tmall", None), ("rules tmall", "en")])
def test_rules_history_reply_is_in_the_team_zone(seeded, text, lang):
    _rules_at_t(seeded)
    reply = router.handle_text(seeded, Inbound("web", "ops", "li.na" if lang is None else "alex",
                                               lang_hint=lang), text)
    line = next(x for x in reply.text.splitlines() if x.startswith(("天猫", "Tmall")))
    assert SHOWN in line, line
    assert UTC_CLOCK not in reply.text and UTC_DAY not in reply.text, reply.text


def test_rules_history_cli_states_the_zone(seeded, monkeypatch):
    _rules_at_t(seeded)
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", seeded.url)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["rules", "history", "tmall"])
    assert result.exit_code == 0, result.output
    assert f"{SHOWN} (Asia/Shanghai)" in result.output, result.output
    assert UTC_CLOCK not in result.output


def test_audit_export_is_iso_in_the_team_zone(seeded, monkeypatch, tmp_path):
    tid = tmall_task(seeded)
    with seeded.session() as s:
        s.add(AuditEvent(task_id=tid, actor="li.na", action="set_deadline", from_state="new",
                         to_state="new", created_at=T,
                         detail={"old": None, "new": T.isoformat(), "note": "12:00 meeting",
                                 "tried": [{"at": T.isoformat(), "error": "x"}]}))
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", seeded.url)
    get_settings.cache_clear()
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "export", "--task", str(tid)])
    assert result.exit_code == 0, result.output
    event = next(json.loads(x) for x in result.stdout.splitlines()
                 if json.loads(x)["action"] == "set_deadline")
    assert event["created_at"] == SHOWN_ISO
    assert event["detail"]["new"] == SHOWN_ISO and event["detail"]["tried"][0]["at"] == SHOWN_ISO
    assert event["detail"]["note"] == "12:00 meeting" and event["detail"]["old"] is None
    assert datetime.fromisoformat(event["created_at"]) == T  # still the same instant
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["audit", "export", "--task", str(tid), "--format", "csv",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    row = next(r for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
               if r["action"] == "set_deadline")
    assert row["created_at"] == SHOWN_ISO
    assert "+00:00" not in out.read_text(encoding="utf-8")


def test_sources_cli_shows_team_time_with_its_zone(db, monkeypatch, tmp_path):
    from bot.watch.settings import get_watch_settings

    config = tmp_path / "sources.yaml"
    config.write_text("sources:\n  - {name: feed-x, platform: tmall, kind: http_json, "
                      "url: 'http://127.0.0.1:9/notices'}\n", encoding="utf-8")
    with db.session() as s:
        s.add(SourceState(name="feed-x", platform="tmall", kind="http_json", ok=True,
                          last_success=T, next_attempt_at=T + timedelta(minutes=5)))
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    monkeypatch.setenv("PROMOPILOT_SOURCES_FILE", str(config))
    monkeypatch.setenv("PROMOPILOT_SANDBOX_ENABLED", "false")
    get_settings.cache_clear()
    get_watch_settings.cache_clear()
    try:
        runner = CliRunner()
        shown = runner.invoke(app, ["sources"])
        assert shown.exit_code == 0, shown.output
        assert f"last_ok={SHOWN} (Asia/Shanghai)" in shown.output, shown.output
        assert "next=2026-12-01 06:13 (Asia/Shanghai)" in shown.output, shown.output
        assert UTC_CLOCK not in shown.output
        as_json = runner.invoke(app, ["sources", "--json"])
        row = json.loads(as_json.stdout)[0]
        assert row["last_success"] == SHOWN_ISO, row
    finally:
        get_watch_settings.cache_clear()


def test_platform_workbook_and_declaration_text_use_the_team_day(seeded):
    from bot.declarations import exporters

    cases = scene(seeded)
    tid = cases["task"]["task_id"]
    with seeded.session() as s:
        text = exporters.declaration_text(s, tid, "zh-CN", violations=[])
    assert "有效期至 2026-12-01" in text and UTC_DAY not in text, text
    assert exporters._cell_value(T) == SHOWN  # a column map that shows a campaign time


# -- the guard: t() and templates never let a naive or UTC time through -----------------------------

def test_t_formats_a_datetime_in_the_team_zone():
    text = i18n.t("rules.version", "en", platform="tmall", version=3, author="sun.li", when=T, n=5)
    assert text == f"Tmall: v3 by sun.li at {SHOWN} (5 rules)"
    assert format(timefmt.Shown(T), "%m-%d %H:%M") == "12-01 06:08"


def test_a_naive_datetime_in_a_message_fails_in_strict_mode():
    assert timefmt.strict(), "tests/conftest.py turns strict mode on"
    naive = datetime(2026, 11, 30, 22, 8)
    with pytest.raises(timefmt.NaiveTime):
        i18n.t("rules.version", "zh-CN", platform="tmall", version=1, author="x", when=naive, n=1)
    with pytest.raises(timefmt.NaiveTime):
        timefmt.local(naive)


def test_production_takes_a_naive_datetime_as_utc_and_warns(caplog):
    before = timefmt.set_strict(False)
    try:
        with caplog.at_level("WARNING", logger="bot.core.timefmt"):
            text = i18n.t("rules.version", "en", platform="jd", version=1, author="x",
                          when=datetime(2026, 11, 30, 22, 8), n=1)
    finally:
        timefmt.set_strict(before)
    assert SHOWN in text
    assert any("naive" in r.getMessage() for r in caplog.records)


def test_templates_show_bare_datetimes_in_the_team_zone():
    assert templating.render_string("截止 {{ when }}", when=T) == f"截止 {SHOWN}"
    assert templating.render_string("{{ when|localdate }}", when=T) == "2026-12-01"
    assert templating.render_string("{{ when|local('%H:%M') }}", when=T) == "06:08"


def test_the_guard_catches_a_utc_time_on_a_card():
    """The scan's own check fails on what the defect looked like (22:08, isoformat)."""
    for leaked in (f"v3 by x at {T:%Y-%m-%d %H:%M}", f"at {T.isoformat()}", "at 2026-11-30T22:08Z"):
        with pytest.raises(AssertionError):
            assert_team_time(leaked, "example")
    assert_team_time(f"v3 at {SHOWN}", "example")
