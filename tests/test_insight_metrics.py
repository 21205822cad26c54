"""Team cost metrics on a hand-written history (tests/insight_history.py), on SQLite and
PostgreSQL: hours from notice to submission, deadlines missed, rejections and rework,
overtime submissions in Asia/Shanghai — per platform and month, through the code, the CLI
and ``GET /api/metrics``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.core.errors import Invalid
from bot.core.settings import get_settings
from bot.insight.metrics import InsightSettings, compute, parse_since
from tests.insight_history import NOW, at, build

WINDOW = (at("2026-10-01 00:00"), at("2026-12-01 00:00"))


def rows_of(found) -> dict[tuple[str, str], dict]:
    return {(r.platform, r.month): r.as_dict() for r in found.rows}


def test_metrics_per_platform_and_month_match_the_hand_computed_answers(db):
    build(db)
    with db.session() as s:
        found = compute(s, *WINDOW, now=NOW, settings=InsightSettings(_env_file=None))
    rows = rows_of(found)
    assert sorted(rows) == [("jd", "2026-10"), ("jd", "2026-11"), ("tmall", "2026-11")]
    tmall = rows[("tmall", "2026-11")]
    # A 10:00→20:00 = 10 h, B Wed 09:00→Fri 11:00 = 50 h, G 20:00→23:00 = 3 h
    assert tmall["submitted"] == 3 and tmall["hours_to_submit"] == 63.0
    assert tmall["avg_hours_to_submit"] == 21.0
    # A's and B's deadlines passed (G's is after NOW); B was submitted a day late
    assert (tmall["deadlines"], tmall["missed"]) == (2, 1)
    # A rejected in approval, re-sent 2 h later; B rejected by tmall, re-submitted 19 h later
    assert (tmall["rejections_approval"], tmall["rejections_platform"]) == (1, 1)
    assert (tmall["reworks_done"], tmall["rework_hours"], tmall["reworks_open"]) == (2, 21.0, 0)
    # four submissions: A (a click at 19:30 Monday: overtime), B on Friday 10:00 (a click in
    # hours), B again on Saturday (marked by a person: overtime), G by the robot (never)
    assert (tmall["submissions"], tmall["person_submissions"], tmall["overtime"]) == (4, 3, 2)
    assert tmall["accepted"] == 2 and tmall["acceptance_rate"] == round(2 / 3, 4)

    # F: Sunday 07:00 in Shanghai is Saturday 23:00 UTC — November here, not October
    jd_nov = rows[("jd", "2026-11")]
    assert (jd_nov["submitted"], jd_nov["hours_to_submit"]) == (1, 9.0)
    assert (jd_nov["submissions"], jd_nov["overtime"]) == (1, 1)
    # C skipped before its deadline (not missed), D left to expire (missed)
    assert (jd_nov["deadlines"], jd_nov["missed"]) == (2, 1)
    jd_oct = rows[("jd", "2026-10")]
    assert (jd_oct["rejections_approval"], jd_oct["reworks_open"], jd_oct["submitted"]) == (1, 1, 0)

    total = found.total().as_dict()
    assert (total["submitted"], total["hours_to_submit"], total["avg_hours_to_submit"]) == \
        (4, 72.0, 18.0)
    assert (total["deadlines"], total["missed"], total["overtime"]) == (4, 2, 3)
    assert (total["rejections"], total["rework_hours"]) == (3, 21.0)


def test_the_window_and_the_filters_choose_what_is_counted(db):
    ids = build(db)
    with db.session() as s:
        later = compute(s, at("11-05 00:00"), WINDOW[1], now=NOW).total()
        jd = compute(s, *WINDOW, platforms=["jd"], now=NOW)
        other_team = compute(s, *WINDOW, team_id=999, now=NOW)
    # from Nov 5: A's events and H are out; B and G are submitted, B's deadline missed
    assert (later.submitted, later.deadlines, later.missed) == (2, 3, 2)
    assert (later.rejections_approval, later.rejections_platform, later.accepted) == (0, 1, 1)
    assert later.rework_hours == 19.0
    assert jd.platforms() == ["jd"] and jd.total().submitted == 1
    assert other_team.rows == []
    assert len(ids) == 8


def test_working_hours_and_days_come_from_the_settings(db):
    build(db)
    longer = InsightSettings(work_hours="08:00-20:00", work_days="1-6", _env_file=None)
    with db.session() as s:
        found = compute(s, *WINDOW, now=NOW, settings=longer)
    # A's 19:30 click and B's Saturday mark are now in hours; only F (Sunday 07:00) is not
    assert found.total().overtime == 1


def test_since_reads_durations_dates_and_times_and_refuses_the_rest():
    assert parse_since("30d", NOW) == at("10-21 12:00")  # October has 31 days
    assert parse_since("2w", NOW) == at("11-06 12:00")
    assert parse_since("2026-11-01", NOW, "Asia/Shanghai") == at("11-01 00:00")
    assert parse_since("2026-11-01T00:00:00Z", NOW).utcoffset().total_seconds() == 0
    with pytest.raises(Invalid) as refused:
        parse_since("yesterday", NOW)
    assert "yesterday" in refused.value.message("zh-CN") and "30d" in refused.value.message("en")
    with pytest.raises(Invalid):
        parse_since("2026-11-01T08:00", NOW)  # a time without a zone is a guess


def test_report_metrics_on_the_command_line(db, monkeypatch):
    from bot.cli.main import app

    build(db)
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["report", "metrics", "--since", "2026-10-01",
                                     "--until", "2026-12-01", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        # run after NOW: G's deadline (Nov 25) has passed too, and G was in time
        assert (data["total"]["submitted"], data["total"]["deadlines"],
                data["total"]["missed"]) == (4, 5, 2)
        assert data["platforms"]["jd"]["overtime"] == 1
        text = runner.invoke(app, ["report", "metrics", "--since", "2026-10-01", "--until",
                                   "2026-12-01", "--lang", "zh-CN"])
        assert text.exit_code == 0, text.output
        assert "团队成本指标" in text.stdout and "天猫" in text.stdout and "合计" in text.stdout
        tmall = next(line for line in text.stdout.splitlines()
                     if "2026-11" in line and "天猫" in line)
        # submitted, avg hours, missed/deadlines, rejections approval/platform, rework, overtime
        assert tmall.split() == ["天猫", "2026-11", "3", "21.0", "1/3", "1/1", "21.0", "2/3"]
        bad = runner.invoke(app, ["report", "metrics", "--since", "yesterday", "--lang", "en"])
        assert bad.exit_code != 0 and "Cannot read the time" in bad.output
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York", "Asia/Kathmandu",
                                "Pacific/Chatham"])
def test_a_moment_is_counted_in_the_month_of_the_teams_zone(tz):
    """The month a submission or deadline counts in, by the window's month starts, is the
    month its team's clock showed: around every local midnight that starts a month, in
    zones with daylight saving and with offsets of 45 minutes."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from bot.insight.metrics import Months

    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    months = Months(tz, since, until)
    moments = []
    for month in range(2, 13):
        start = datetime(2026, month, 1, tzinfo=ZoneInfo(tz))
        moments += [start + timedelta(seconds=s) for s in (-61, -1, 0, 1, 3600)]
    moments += [since, until - timedelta(microseconds=1)]
    for moment in moments:
        local = moment.astimezone(ZoneInfo(tz))
        assert months.of(moment) == f"{local.year:04d}-{local.month:02d}", moment
