"""Block Kit rendering: every card kind fits Slack's limits, untrusted text stays literal."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from adapters.chat.slack.escape import ZWJ, fit, link, mrkdwn
from adapters.chat.slack.inbound import command_text
from adapters.chat.slack.limiter import ChannelLimiter
from adapters.chat.slack.render import modal, parse_action_id, render
from cards.callback import CallbackData
from cards.model import Button, Card, CardField, Line
from tests.fakes.slack import block_kit_problems

KINDS = ["notice", "task", "approval", "reminder", "digest", "result", "error", "report"]
LINK = "http://127.0.0.1:8000/console?task=7"


def buttons(n: int = 3, label: str = "Claim") -> list[Button]:
    actions = ["claim", "skip", "approve", "reject", "request_changes", "draft", "submit"]
    out = []
    for i in range(n):
        action = actions[i % len(actions)]
        out.append(Button(label=label, action=action, style="primary" if i == 0 else "default",
                          value=CallbackData(action, 7, 3).pack(),
                          needs_input=action in ("skip", "reject", "request_changes")))
    return out


def wire(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_valid_blocks(kind):
    card = Card(kind=kind, title=f"#7 [天猫] {kind} 双12", subtitle="New", color="orange",
                fields=[CardField(label="Platform", value="天猫"),
                        CardField(label="Requirements", value="min. discount 20%", short=False)],
                text="正文", table_header=["SKU", "List", "Promo"],
                table=[Line(cells=["MZ-001", "129.00", "99.00"])], buttons=buttons(),
                footer="Last: Bob claimed", link=LINK, task_id=7, version=3)
    message = render(card, "en")
    assert block_kit_problems(message["blocks"]) == []
    assert "#7 [天猫]" in message["text"]
    actions = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in actions] == ["pp:claim", "pp:skip:input", "pp:approve",
                                                 "pp-link"]
    assert actions[0]["style"] == "primary" and "style" not in actions[1]
    assert actions[-1]["url"] == LINK
    assert "```" in wire(message)  # the table is monospace


@pytest.mark.parametrize("kind", KINDS)
def test_oversized_card_is_cut_to_fit_with_a_console_link(kind):
    huge = "超长内容 <b> & " * 2000
    card = Card(
        kind=kind, title="标题" * 3000, subtitle="s" * 5000,
        fields=[CardField(label=f"L{i}" * 100, value=huge, short=i % 2 == 0) for i in range(60)],
        text=huge * 3, table_header=[f"col{i}" for i in range(8)],
        table=[Line(cells=[f"cell-{r}-{c}-" + "x" * 60 for c in range(8)]) for r in range(3000)],
        buttons=buttons(40, label="很长的按钮文字" * 30), footer=huge, mentions=["all"] * 800,
        link=LINK)
    message = render(card, "zh-CN")
    assert block_kit_problems(message["blocks"]) == []
    assert len(message["text"]) <= 3000
    text = wire(message)
    assert f"<{LINK}|" in text  # where something was cut, the console has the rest
    assert message["blocks"][-2]["type"] == "actions" or any(
        b["type"] == "actions" for b in message["blocks"][-4:])
    for block in message["blocks"]:  # no half-cut entity left anywhere
        for piece in [block.get("text") or {}, *block.get("fields", []),
                      *block.get("elements", [])]:
            value = piece.get("text") if isinstance(piece.get("text"), str) else ""
            assert "&am…" not in value and "&l…" not in value and "&g…" not in value


def test_untrusted_text_is_literal_everywhere():
    evil = "<!channel> 限时 & <@U123> <!here|here> <https://evil.example|click> @everyone"
    card = Card(kind="notice", title=evil, subtitle=evil,
                fields=[CardField(label=evil, value=evil), CardField(label="r", value=evil,
                                                                     short=False)],
                text=evil, table_header=["t"], table=[Line(cells=[evil])], footer=evil,
                mentions=["<!channel>"], buttons=buttons(1, label=evil), link=LINK)
    text = wire(render(card, "en"))
    for token in ("<!channel>", "<@U123>", "<!here", "<https://evil", "@everyone"):
        assert token not in text
    assert "&lt;!channel&gt; 限时 &amp; &lt;@U123&gt;" in text
    assert f"@{ZWJ}everyone" in text


def test_escape_helpers():
    assert mrkdwn("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert mrkdwn("hi @channel and @Here") == f"hi @{ZWJ}channel and @{ZWJ}Here"
    assert mrkdwn("a\nb", one_line=True) == "a b"
    cut = fit("&" * 100, 23)
    assert len(cut) <= 23 and cut.endswith("…") and cut[:-1].replace("&amp;", "") == ""
    assert fit("short", 10) == "short"
    assert link("javascript:alert(1)", "x") == ""
    assert link("https://h/x?a=1&b=2|<x>", "a|b") == \
        "<https://h/x?a=1&amp;b=2%7C%3Cx%3E|a|b>"


def test_locked_card_has_no_buttons():
    card = Card(kind="approval", title="t", buttons=buttons(), locked=True, footer="Approved")
    message = render(card, "en")
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    assert "🔒" in wire(message)


def test_modal_fits_and_carries_the_button():
    value = CallbackData("reject", 7, 3).pack()
    view = modal("", value, "reject", 7, "C1", "1700.1", "zh-CN")
    assert len(view["title"]["text"]) <= 24 and len(view["private_metadata"]) <= 3000
    assert json.loads(view["private_metadata"])["v"] == value
    assert view["blocks"][-1]["type"] == "input"
    assert parse_action_id("pp:reject:input") == ("reject", True)
    assert parse_action_id("pp:claim") == ("claim", False)


def test_command_text_from_slack_wire_format():
    assert command_text("<@UBOT> claim 12", strip_mention=True) == "claim 12"
    assert command_text("<@UBOT|promopilot> 认领12", strip_mention=True) == "认领12"
    assert command_text("user add bob ops <@U0BOB|bob>", strip_mention=False) == \
        "user add bob ops U0BOB"
    assert command_text("reject 3 price &lt; cost &amp; <https://x.y|x.y>",
                        strip_mention=False) == "reject 3 price < cost & x.y"


def test_limiter_spaces_posts_per_channel_and_obeys_pause():
    async def run() -> tuple[float, float, float]:
        limiter = ChannelLimiter(rate=10, burst=2)
        start = time.monotonic()
        for _ in range(5):
            await limiter.acquire("C1")
        spaced = time.monotonic() - start
        start = time.monotonic()
        await limiter.acquire("C2")  # another channel is not held up
        other = time.monotonic() - start
        limiter.pause("C2", 0.3)
        start = time.monotonic()
        await limiter.acquire("C2")
        return spaced, other, time.monotonic() - start

    spaced, other, paused = asyncio.run(run())
    assert spaced >= 0.25 and other < 0.05 and paused >= 0.28


def test_manifest_matches_what_the_app_serves():
    from pathlib import Path

    import yaml

    from adapters.chat.slack import EVENTS_PATH

    manifest = yaml.safe_load((Path(__file__).parent.parent / "docs" /
                               "slack-manifest.yaml").read_text())
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/promo" and command["should_escape"] is True
    urls = [command["url"], manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"]]
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    assert {"chat:write", "commands", "app_mentions:read", "users:read", "im:history"} <= \
        set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == \
        {"app_mention", "message.im"}
