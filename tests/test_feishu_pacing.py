"""Feishu counts an app's IM calls from every process: the workers of one host share them."""

from __future__ import annotations

import asyncio

import pytest

from adapters.chat.feishu.adapter import FeishuAdapter
from adapters.chat.feishu.settings import FeishuSettings
from tests.fakes.feishu import FakeFeishu


@pytest.fixture
def fake():
    fake = FakeFeishu("cli_pacing", "app-secret").start()
    yield fake
    fake.stop()


def _send_to_twelve_chats(fake: FakeFeishu) -> list[float]:
    adapter = FeishuAdapter(FeishuSettings(app_id=fake.app_id, app_secret="app-secret",
                                           domain=fake.url, _env_file=None))

    async def send() -> None:  # twelve chats: only the app-wide pace can space them
        await asyncio.gather(*(adapter.post_text(f"oc_pace{n}", f"消息 {n}")
                               for n in range(12)))

    asyncio.run(send())
    return sorted(sent.created for sent in fake.messages.values())


def test_each_worker_takes_its_share_of_the_apps_calls(fake, monkeypatch):
    monkeypatch.setenv("PROMOPILOT_WORKERS", "3")  # what `promopilot run --workers 3` sets
    times = _send_to_twelve_chats(fake)
    assert len(times) == 12
    # 45 calls a second for the app, a third each: 11 gaps of 1/15 s (as received: ± jitter)
    assert times[-1] - times[0] >= 0.9 * 11 * 3 / 45


def test_one_process_takes_the_whole_pace(fake, monkeypatch):
    monkeypatch.delenv("PROMOPILOT_WORKERS", raising=False)
    times = _send_to_twelve_chats(fake)
    assert len(times) == 12
    assert times[-1] - times[0] >= 0.8 * 11 / 45
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) < 3 / 45


def test_the_app_pace_is_a_setting(monkeypatch):
    monkeypatch.setenv("PROMOPILOT_FEISHU_APP_CALLS_PER_SECOND", "20")
    settings = FeishuSettings(_env_file=None)
    assert settings.app_interval(2) == pytest.approx(0.1)
    monkeypatch.setenv("PROMOPILOT_FEISHU_APP_CALLS_PER_SECOND", "0")
    with pytest.raises(ValueError):
        FeishuSettings(_env_file=None)
