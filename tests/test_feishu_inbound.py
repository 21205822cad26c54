"""Reading Feishu messages: text and rich-text (post) commands, whose mention is the bot's."""

from __future__ import annotations

import json

from lark_oapi.api.im.v1 import P2ImMessageReceiveV1

from adapters.chat.feishu.inbound import FeishuInbound, message_text
from tests.fakes.feishu import BOT_OPEN_ID, message_event


def parsed(event: dict) -> P2ImMessageReceiveV1:
    return P2ImMessageReceiveV1(event)


def inbound(bot_open_id: str | None) -> FeishuInbound:
    reader = FeishuInbound(db=None, adapter=None, lang="zh-CN")  # type: ignore[arg-type]
    reader.bot_open_id = bot_open_id
    return reader


def test_post_message_text_is_read():
    event = message_event("x", chat_id="oc_1", open_id="ou_1", token="t")
    message = event["event"]["message"]
    message["message_type"] = "post"
    message["content"] = json.dumps({"title": "", "content": [[
        {"tag": "at", "user_id": "@_user_1"}, {"tag": "text", "text": "认领 12"}]]})
    message = parsed(event).event.message
    assert message_text(message) == "@_user_1 认领 12"
    assert inbound(BOT_OPEN_ID)._strip_mentions(message, message_text(message)) == "认领 12"


def test_mentions_with_and_without_knowing_the_bot():
    event = parsed(message_event("user add a ops @_user_2", chat_id="oc_1", open_id="ou_1",
                                 token="t", others=[("ou_new", "新人")]))
    message = event.event.message
    known = inbound(BOT_OPEN_ID)
    assert known._mentions_bot(message)
    assert known._strip_mentions(message, message_text(message)) == "user add a ops ou_new"
    other_bot = inbound("ou_someone_else")
    assert not other_bot._mentions_bot(message)
    # bot id unknown: Feishu's mentioned_type decides; old payloads without it count
    message.mentions[0].mentioned_type = "bot"
    message.mentions[1].mentioned_type = "user"
    unknown = inbound(None)
    assert unknown._mentions_bot(message)
    assert unknown._strip_mentions(message, message_text(message)) == "user add a ops ou_new"
    message.mentions[0].mentioned_type = "user"
    assert not unknown._mentions_bot(message)
