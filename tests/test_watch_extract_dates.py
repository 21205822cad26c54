"""Deadline extraction on real-world phrasings (Chinese and English), in Asia/Shanghai."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.watch.extract_dates import extract

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 20, 10, 0, tzinfo=SH)


def at(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH) if text else None


# phrase, registration start, registration end (deadline), event start, event end
CASES = [
    ("报名时间:11月1日10:00-11月5日23:59", "2026-11-01 10:00", "2026-11-05 23:59", None, None),
    ("2026年11月30日 23:59 截止", None, "2026-11-30 23:59", None, None),
    ("即日起至12月3日", None, "2026-12-03 23:59", None, None),
    ("报名时间:2026.11.01 10:00 - 2026.11.05 23:59", "2026-11-01 10:00", "2026-11-05 23:59",
     None, None),
    ("报名时间:2026/11/01-2026/11/05", "2026-11-01 00:00", "2026-11-05 23:59", None, None),
    ("报名截止时间:11月5日 18:00", None, "2026-11-05 18:00", None, None),
    ("报名截止:2026-11-05 18:00:00", None, "2026-11-05 18:00", None, None),
    ("活动时间:12月10日0点-12月12日24点", None, None, "2026-12-10 00:00", "2026-12-12 23:59"),
    ("招商时间:11月1日至5日", "2026-11-01 00:00", "2026-11-05 23:59", None, None),
    ("提报时间:11月1日10点至11月5日18点", "2026-11-01 10:00", "2026-11-05 18:00", None, None),
    ("请于11月5日晚8点前完成报名", None, "2026-11-05 20:00", None, None),
    ("报名截止到11月5日中午12点", None, "2026-11-05 12:00", None, None),
    ("请于11月5日前完成报名", None, "2026-11-05 00:00", None, None),
    ("报名截止日期:2026年12月3日", None, "2026-12-03 23:59", None, None),
    ("报名时间:2026年11月1日00:00:00-2026年11月11日23:59:59", "2026-11-01 00:00",
     "2026-11-11 23:59", None, None),
    ("报名时间:11月1日10:00~11月5日23:59", "2026-11-01 10:00", "2026-11-05 23:59", None, None),
    ("报名时间:12.1-12.5", "2026-12-01 00:00", "2026-12-05 23:59", None, None),
    ("报名时间:12/1 10:00 – 12/5 23:59", "2026-12-01 10:00", "2026-12-05 23:59", None, None),
    ("即日起-11月20日24:00", None, "2026-11-20 23:59", None, None),
    ("即日起至2026年11月20日18:00止", None, "2026-11-20 18:00", None, None),
    ("报名将于11月5日(周四)23:59截止", None, "2026-11-05 23:59", None, None),
    ("请在11月5日 23:59 前提交报名", None, "2026-11-05 23:59", None, None),
    ("报名截止:明天 18:00", None, "2026-10-21 18:00", None, None),
    ("商家报名:11月1日10:00开始,11月5日23:59截止", "2026-11-01 10:00", "2026-11-05 23:59",
     None, None),
    ("报名时间:11月1日-11月5日;活动时间:11月11日0点-11月13日24点", "2026-11-01 00:00",
     "2026-11-05 23:59", "2026-11-11 00:00", "2026-11-13 23:59"),
    ("年货节报名时间:12月28日-1月5日", "2026-12-28 00:00", "2027-01-05 23:59", None, None),
    ("报名时间:2026年12月28日-1月5日", "2026-12-28 00:00", "2027-01-05 23:59", None, None),
    ("报名截止:1月8日 下午3点", None, "2027-01-08 15:00", None, None),
    ("报名截至11月5日23点59分", None, "2026-11-05 23:59", None, None),
    ("报名时间:11月5日10:00-18:00", "2026-11-05 10:00", "2026-11-05 18:00", None, None),
    ("报名时间:１１月５日—１１月８日", "2026-11-05 00:00", "2026-11-08 23:59", None, None),
    ("报名截止:10月25日凌晨2点", None, "2026-10-25 02:00", None, None),
    ("Registration: Nov 1, 10:00 – Nov 5, 23:59", "2026-11-01 10:00", "2026-11-05 23:59",
     None, None),
    ("Registration closes on November 30, 2026 at 23:59", None, "2026-11-30 23:59", None, None),
    ("Deadline: 2026-11-30 23:59", None, "2026-11-30 23:59", None, None),
    ("Sign up by Dec 3", None, "2026-12-03 23:59", None, None),
    ("Registration period: 1 Nov 2026 - 5 Nov 2026", "2026-11-01 00:00", "2026-11-05 23:59",
     None, None),
    ("Apply before 5 November 18:00", None, "2026-11-05 18:00", None, None),
    ("Event: Dec 10 – Dec 12", None, None, "2026-12-10 00:00", "2026-12-12 23:59"),
    ("Registration deadline: Nov 5, 6pm", None, "2026-11-05 18:00", None, None),
    ("Registration closes 5 Nov at 11:59 pm", None, "2026-11-05 23:59", None, None),
    ("Registration window: 2026-11-01T10:00+08:00 to 2026-11-05T23:59+08:00",
     "2026-11-01 10:00", "2026-11-05 23:59", None, None),
    ("Registration: 11/01 10:00 - 11/05 23:59", "2026-11-01 10:00", "2026-11-05 23:59",
     None, None),
    ("Registration opens Nov 1 and closes Nov 5 at 6:30 PM", "2026-11-01 00:00",
     "2026-11-05 18:30", None, None),
    ("双11预售报名:10月21日10:00-10月25日18:00。活动时间:11月1日20:00-11月11日23:59。",
     "2026-10-21 10:00", "2026-10-25 18:00", "2026-11-01 20:00", "2026-11-11 23:59"),
    ("报名时间\n11月1日 10:00 - 11月5日 23:59", None, None, None, None),  # label on its own line
]


@pytest.mark.parametrize(("phrase", "reg_start", "reg_end", "ev_start", "ev_end"), CASES)
def test_phrasings(phrase, reg_start, reg_end, ev_start, ev_end):
    got = extract(phrase, now=NOW)
    assert (got.registration_start, got.registration_end, got.event_start, got.event_end) == (
        at(reg_start), at(reg_end), at(ev_start), at(ev_end)), got.notes


def test_at_least_forty_phrasings():
    assert len(CASES) >= 40


@pytest.mark.parametrize("phrase", [
    "活动火热进行中,欢迎报名",
    "折扣9.5折,满300减40",
    "报名截止:11月5日;最终截止:11月3日",  # two deadlines: earliest used, flagged
    "报名时间\n11月1日 10:00 - 11月5日 23:59",
])
def test_unclear_texts_say_so(phrase):
    got = extract(phrase, now=NOW)
    assert got.unclear
    if "最终" in phrase:
        assert got.registration_end == at("2026-11-03 23:59")


def test_year_is_inferred_from_now():
    december = datetime(2026, 12, 20, tzinfo=SH)
    assert extract("报名截止:1月5日", now=december).registration_end == at("2027-01-05 23:59")
    january = datetime(2027, 1, 3, tzinfo=SH)
    assert extract("报名截止:12月28日", now=january).registration_end == at("2026-12-28 23:59")
