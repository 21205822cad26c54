"""Property-based fuzzing of notice parsing, ingestion and the cards made from notices.

Thousands of generated notices, most of them malformed on purpose (numbers that are no
time, dates outside UTC, NaN, lone surrogates, control characters, wrong types, broadcast
mentions in every field). The properties:

- no exception escapes a source's ``fetch`` (one item in, one notice or one rejection out);
- no exception escapes ``ingest`` or a watcher poll, and the good notices of a mixed batch
  are always stored, whatever shares the batch with them;
- no card rendered for any platform from a stored notice (or from fuzzed card text) holds a
  live @all / @channel / @here / ``<!channel>`` / ``<!here>`` / ``<at user_id="all">``.

Parsing runs without a database; ingestion runs its bulk on SQLite and a smaller pass on
PostgreSQL (the ``db`` fixture). The whole file stays within about a minute.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from adapters.chat.dingtalk import render as dingtalk
from adapters.chat.feishu import render as feishu
from adapters.chat.slack import render as slack
from adapters.platforms.http_json import HttpJsonSource, parse_time
from bot.core.ports import Notice
from bot.core.views import BUILDERS
from bot.watch.ingest import ingest
from bot.watch.validate import EARLIEST, LATEST, check_notice
from bot.watch.watcher import Watcher
from cards.builders import requirements_text
from cards.model import Button, Card, CardField, Line
from cards.render_html import render_html
from storage.models import Campaign, Task

FAST = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
BROADCASTS = ["@all", "@channel", "@here", "@everyone", "<!channel>", "<!here>",
              "<!everyone>", '<at user_id="all">所有人</at>', "<at id=all></at>", "@所有人",
              "＠all", "＠channel", "@_all", "<@U123>", "<at user_id=\"ou_x\">x</at>",
              "[link](javascript:alert(1))", "<script>alert(1)</script>", "&lt;!channel&gt;"]
ANY_CHAR = st.characters(exclude_categories=())  # surrogates and controls included
JUNK_TEXT = st.lists(st.one_of(st.text(ANY_CHAR, max_size=30), st.sampled_from(BROADCASTS)),
                     max_size=6).map("".join)
ZONES = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m)))
EXTREME_DATES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                             timezones=st.one_of(st.none(), ZONES))
GOOD_DATES = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31),
                          timezones=ZONES)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), JUNK_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(JUNK_TEXT, inner, max_size=3)), max_leaves=8)
TIME_VALUES = st.one_of(
    st.none(), st.just(""), st.floats(), st.integers(), st.booleans(),
    EXTREME_DATES.map(lambda d: d.isoformat()),
    EXTREME_DATES.map(lambda d: d.isoformat(sep=" ")[:16]),
    st.sampled_from(["1e20", "NaN", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+08:00",
                     "+10000-01-01", "2026-02-30", "soon", "2026-12-05 23:59"]),
    JSONISH)
REQUIREMENTS = st.one_of(
    st.fixed_dictionaries({}, optional={
        "min_discount": st.one_of(st.floats(), st.integers(), JUNK_TEXT,
                                  st.sampled_from(["abc", "10%", "0.2", "-1", "1e400"])),
        "min_stock": st.one_of(st.integers(), st.floats(), JUNK_TEXT),
        "categories": JSONISH, "required_documents": JSONISH, "image_size": JSONISH,
        "price_rule": JSONISH, "rules": JSONISH, "_unreadable": JSONISH}),
    JSONISH)


def raw_notice(ids: st.SearchStrategy) -> st.SearchStrategy[dict]:
    window = st.one_of(st.fixed_dictionaries({}, optional={"start": TIME_VALUES,
                                                            "end": TIME_VALUES}), JSONISH)
    return st.fixed_dictionaries({"id": ids}, optional={
        "title": st.one_of(JUNK_TEXT, JSONISH), "type": st.one_of(JUNK_TEXT, JSONISH),
        "registration": window, "event": window, "requirements": REQUIREMENTS,
        "url": st.one_of(JUNK_TEXT, JSONISH), "body": st.one_of(JUNK_TEXT, JSONISH)})


_answer: dict[str, bytes] = {"body": b"{}"}
_client = httpx.Client(transport=httpx.MockTransport(  # real httpx, no socket per example
    lambda request: httpx.Response(200, content=_answer["body"],
                                   headers={"Content-Type": "application/json"})))


def source_for(body: bytes, name: str = "fuzz", platform: str = "jd") -> HttpJsonSource:
    """A real HTTP-JSON source whose feed answers ``body``."""
    _answer["body"] = body
    return HttpJsonSource(name, platform, "http://feed.test/notices", client=_client,
                          attempts=1)


def feed_body(items: list) -> bytes:
    return json.dumps({"data": {"notices": items}}).encode()  # NaN and \ud800 as JSON says


# -- parsing: no database ------------------------------------------------------------------


@FAST
@given(items=st.lists(st.one_of(raw_notice(st.one_of(JUNK_TEXT, JSONISH)), JSONISH),
                      max_size=5))
def test_a_source_never_raises_and_accounts_for_every_item(items):
    source = source_for(feed_body(items))
    notices = source.fetch()
    assert len(notices) + len(source.rejected) == len(items)
    for rejection in source.rejected:
        assert rejection.ref and rejection.reason
    for notice in notices:
        for when in (notice.registration_start, notice.registration_end, notice.event_start,
                     notice.event_end):
            assert when is None or EARLIEST <= when.astimezone(UTC) < LATEST


@FAST
@given(value=TIME_VALUES)
def test_parse_time_gives_a_sane_time_none_or_malformed_notice(value):
    from adapters.platforms.http_json import MalformedNotice

    try:
        parsed = parse_time(value, "Asia/Shanghai")
    except MalformedNotice:
        return
    assert parsed is None or EARLIEST <= parsed.astimezone(UTC) < LATEST


@FAST
@given(platform=st.one_of(JUNK_TEXT, st.just("jd")), external=JUNK_TEXT, title=JUNK_TEXT,
       when=st.one_of(st.none(), EXTREME_DATES), requirements=REQUIREMENTS, text=JUNK_TEXT)
def test_check_notice_normalises_or_rejects_and_the_result_is_plain_json(
        platform, external, title, when, requirements, text):
    from bot.watch.validate import Unreadable

    notice = Notice(platform=platform, external_id=external, title=title,
                    registration_end=when, requirements=requirements, text=text)
    try:
        checked = check_notice(notice)
    except Unreadable:
        return
    json.dumps(checked.requirements, allow_nan=False, ensure_ascii=False).encode("utf-8")
    for value in (checked.title, checked.external_id, checked.text, checked.platform):
        value.encode("utf-8")  # no lone surrogate reaches the database
    assert checked.content_hash
    requirements_text(checked.requirements, "zh-CN")
    requirements_text(checked.requirements, "en")


# -- rendering: what must never be live --------------------------------------------------

SLACK_LIVE = re.compile(r"<!(?:channel|here|everyone)|(?<![\w\u2060])[@＠](?:channel|here|everyone)\b",
                        re.I)
FEISHU_LIVE = re.compile(r"<\s*at\b", re.I)
DINGTALK_LIVE = re.compile(r"[@＠](?=\w)")  # an @ right before a name (the escape adds a joiner)


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def assert_nothing_live(card: Card) -> None:
    for lang in ("zh-CN", "en"):
        for text in strings(slack.render(card, lang)):
            assert not SLACK_LIVE.search(text), text
        for text in strings(feishu.render(card, lang)):  # no mention ids given: no <at> at all
            assert not FEISHU_LIVE.search(text), text
        ding = [dingtalk.interactive(card, lang), dingtalk.robot_message(card, lang)[1]]
        hook = dingtalk.webhook_card(card, lang)
        assert hook["at"]["isAtAll"] is False and not hook["at"]["atUserIds"]
        for text in strings(ding) + strings(hook):
            assert not DINGTALK_LIVE.search(text.replace('"', "")), text
    html = render_html(card).lower()
    assert "<at" not in html and "<script" not in html and "<!channel" not in html


PRINTABLE_JUNK = st.lists(st.one_of(st.text(max_size=30), st.sampled_from(BROADCASTS)),
                          max_size=6).map("".join)


@FAST
@given(title=PRINTABLE_JUNK, subtitle=PRINTABLE_JUNK, text=PRINTABLE_JUNK,
       fields=st.lists(st.tuples(PRINTABLE_JUNK, PRINTABLE_JUNK, st.booleans()), max_size=4),
       cells=st.lists(st.lists(PRINTABLE_JUNK, min_size=1, max_size=3), max_size=3),
       footer=PRINTABLE_JUNK, label=PRINTABLE_JUNK)
def test_no_renderer_turns_card_text_into_a_live_broadcast(title, subtitle, text, fields, cells,
                                                          footer, label):
    card = Card(kind="notice", title=title, subtitle=subtitle, text=text, footer=footer,
                fields=[CardField(label=a, value=b, short=s) for a, b, s in fields],
                table_header=["SKU", label] if cells else [],
                table=[Line(cells=row) for row in cells],
                buttons=[Button(label=label or "x", action="claim", value="pp1|claim|1|1")],
                link="http://127.0.0.1:8000/console?task=1", task_id=1, version=1)
    assert_nothing_live(card)


# -- ingestion: SQLite bulk, a PostgreSQL pass ----------------------------------------------

_serial = itertools.count()


def good_notice(serial: int, i: int, title: str, when: datetime, requirements: dict) -> dict:
    return {"id": f"GOOD-{serial}-{i}", "title": f"通知{title}",
            "registration": {"end": when.isoformat()}, "requirements": requirements,
            "body": title}


GOOD_REQUIREMENTS = st.dictionaries(st.sampled_from(
    ["min_discount", "min_stock", "categories", "image_size", "price_rule", "note"]),
    st.one_of(st.none(), st.integers(), st.floats(), PRINTABLE_JUNK, st.just("abc")),
    max_size=4)


def run_mixed_batches(db, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(goods=st.lists(st.tuples(PRINTABLE_JUNK, GOOD_DATES, GOOD_REQUIREMENTS),
                          min_size=1, max_size=3),
           bads=st.lists(st.one_of(raw_notice(st.one_of(JUNK_TEXT, JSONISH)), JSONISH),
                         max_size=4),
           order=st.randoms(use_true_random=False))
    def mixed(goods, bads, order):
        serial = next(_serial)
        wanted = [good_notice(serial, i, *g) for i, g in enumerate(goods)]
        items = wanted + bads
        order.shuffle(items)
        source = source_for(feed_body(items), name=f"fuzz-{db.dialect}")
        watcher = Watcher(db, [source])
        watcher.poll(source)  # never raises
        assert watcher.health[source.name].ok
        ids = [w["id"] for w in wanted]
        with db.session() as s:
            stored = {c.external_id: c for c in s.exec(
                select(Campaign).where(Campaign.external_id.in_(ids)))}
            assert set(stored) == set(ids), "a good notice was lost"
            for campaign in stored.values():
                task = s.exec(select(Task).where(Task.campaign_id == campaign.id)).first()
                for lang in ("zh-CN", "en"):
                    card = BUILDERS["task"](s, {"task_id": task.id}, lang)
                    assert card is not None
                    assert_nothing_live(card)
        for params in [{"source": source.name, "ref": r.ref, "reason": r.reason}
                       for r in source.rejected[:2]]:
            with db.session() as s:
                assert_nothing_live(BUILDERS["notice_rejected"](s, params, "zh-CN"))

    mixed()


def test_mixed_batches_always_store_the_good_notices(seeded):
    run_mixed_batches(seeded, 150 if seeded.dialect == "sqlite" else 20)


def test_ingest_never_raises_on_odd_python_values(seeded):
    """A source written in Python may hand in anything; ingest isolates each notice."""
    tz = timezone(timedelta(hours=-5))
    odd = [Notice("jd", "ODD-1", "远未来", registration_end=datetime(9999, 12, 31, 23, 59,
                                                                      tzinfo=tz)),
           Notice("jd", "ODD-2", "远古", event_start=datetime(1, 1, 1, tzinfo=timezone(
               timedelta(hours=8)))),
           Notice("jd", "ODD-3", "无时区", registration_end=datetime(2026, 1, 1)),  # naive
           Notice("jd", "ODD-4", "\ud800", requirements={"x": float("nan")}),
           Notice(None, None, None),  # type: ignore[arg-type]
           Notice("x" * 40, "ODD-6", "平台代码过长"),
           Notice("jd", "ODD-7", "不是时间", registration_end="tomorrow"),  # type: ignore[arg-type]
           Notice("jd", "ODD-8", "需求不是对象", requirements=["a"]),  # type: ignore[arg-type]
           "not a notice",  # type: ignore[list-item]
           Notice("jd", "OK-1", "好通知", registration_end=datetime(2026, 12, 5, tzinfo=UTC))]
    report = ingest(seeded, odd)
    assert len(report.new) == 1 and len(report.rejected) == 9
    with seeded.session() as s:
        assert s.exec(select(Campaign).where(Campaign.external_id == "OK-1")).one()
