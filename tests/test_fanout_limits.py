"""A reminder fan-out to 10 channels per platform through the real outbox and adapters,
against fakes that enforce the platform's rate limits (low ones, so it runs in seconds):
every message arrives exactly once, nothing refused is dropped, and the per-channel
limiters keep what one channel is sent (refused requests included) within its limit."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bench.fanout import Limits, fan_out
from storage.models import Task

# SQLite only: the outbox's database work is the same on both, and the time goes to waiting
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
CHANNELS, MESSAGES = 10, 4
LOW = dict(slack_rate=4.0, slack_burst=2, feishu_chat=2, feishu_app=20, dingtalk_group=3,
           dingtalk_window=1.5)
# for the refusals: windows long enough that a channel's four messages land inside one even
# on a slow, loaded box (CI once sent a DingTalk group's four over 2 s, past its 1.5 s window,
# so the platform had nothing to refuse)
TIGHT = dict(LOW, slack_rate=0.5, feishu_window=3.0, dingtalk_window=4.0)


def first_task(db) -> int:
    with db.session() as session:
        return int(session.exec(select(Task.id).order_by(Task.id)).first() or 0)


@pytest.mark.parametrize("chat", ["slack", "feishu", "dingtalk"])
async def test_fan_out_is_spread_by_the_limiter_and_delivered_once(seeded, chat):
    result = await fan_out(seeded, chat, CHANNELS, MESSAGES, Limits(**LOW), first_task(seeded),
                           poll=0.1, timeout=30)
    assert result.messages == CHANNELS * MESSAGES
    assert (result.delivered, result.duplicates, result.dropped, result.dead) == (
        CHANNELS * MESSAGES, 0, 0, 0)
    # the limiters space each channel's posts: without them every channel would get its four
    # at once and one or two refused (10-20 in all); a few refusals after a slow answer
    # (a loaded box) are tolerated, and each is retried (the test below)
    assert result.refused < CHANNELS, result
    assert result.max_per_channel <= result.channel_allowed + 1, result
    assert result.app_max <= result.app_allowed


@pytest.mark.parametrize("chat", ["slack", "feishu", "dingtalk"])
async def test_refusals_past_the_limit_are_retried_never_dropped(seeded, chat):
    """The adapters believe in twice the fakes' limit (someone else posts there too): the
    platforms refuse the excess, and each refused message is sent again, once."""
    limits = Limits(**TIGHT, adapter_scale=2.0)
    result = await fan_out(seeded, chat, CHANNELS, MESSAGES, limits, first_task(seeded),
                           poll=0.1, timeout=30)
    assert result.refused > 0
    assert (result.delivered, result.duplicates, result.dropped, result.dead) == (
        CHANNELS * MESSAGES, 0, 0, 0)
