"""The DingTalk adapter's outbound calls against the local open API: the ActionCard fallback,
token reuse and refresh, throttling and refusals classified for the outbox."""

from __future__ import annotations

import pytest
from sqlmodel import select

from adapters.chat.dingtalk import build_adapter
from adapters.chat.dingtalk.settings import DingTalkSettings
from bot.core.ports import ChatDeliveryError
from bot.core.users import link
from cards.model import Button, Card, CardField
from storage.models import User
from tests.fakes.dingtalk import FakeDingTalk


@pytest.fixture
def api():
    server = FakeDingTalk().start()
    yield server
    server.stop()


def adapter_for(api: FakeDingTalk, db=None, **overrides):
    values = dict(client_id=api.client_id, client_secret=api.client_secret, api_url=api.url,
                  _env_file=None)
    values.update(overrides)
    return build_adapter(DingTalkSettings(**values), db)


def sample_card(**kw) -> Card:
    values = dict(kind="task", title="#7 [天猫] 年货节 @所有人", subtitle="待认领",
                  fields=[CardField(label="平台", value="天猫")], task_id=7, version=2,
                  link="http://127.0.0.1:8000/console?task=7",
                  buttons=[Button(label="认领", action="claim", value="pp1|claim|7|2",
                                  style="primary"),
                           Button(label="放弃", action="skip", value="pp1|skip|7|2")])
    values.update(kw)
    return Card(**values)


async def test_action_card_fallback_buttons_open_the_task_in_the_console(api):
    adapter = adapter_for(api)  # no DINGTALK_CARD_TEMPLATE_ID: no interactive cards
    ref = await adapter.post_card("cidGROUP", sample_card())
    assert ref.startswith("msg:")
    [message] = api.group_messages
    assert message["msgKey"] == "sampleActionCard2" and message["openConversationId"] == "cidGROUP"
    param = message["param"]
    assert (param["actionTitle1"], param["actionTitle2"]) == ("认领", "放弃")
    assert param["actionURL1"] == "http://127.0.0.1:8000/console?task=7&action=claim"
    assert "@所有人" not in param["title"] and "年货节" in param["title"]
    # an ActionCard cannot be edited: an update shows the fresh card as a new message
    await adapter.update_card("cidGROUP", ref, sample_card(subtitle="已认领", buttons=[]))
    assert len(api.group_messages) == 2
    last = api.group_messages[-1]
    assert last["msgKey"] == "sampleActionCard" and "已认领" in last["param"]["text"]
    assert last["param"]["singleURL"] == "http://127.0.0.1:8000/console?task=7"


async def test_token_is_reused_and_refreshed_when_rejected(api):
    adapter = adapter_for(api)
    await adapter.post_text("cidGROUP", "一")
    await adapter.post_text("cidGROUP", "二")
    assert api.token_requests == 1
    api.fail("/v1.0/robot/groupMessages/send", 401, body={"code": "InvalidAuthentication"})
    await adapter.post_text("cidGROUP", "三")
    assert api.token_requests == 2
    assert [m["param"]["content"] for m in api.group_messages] == ["一", "二", "三"]


async def test_throttling_and_refusals_are_classified_for_the_outbox(api):
    adapter = adapter_for(api)
    api.fail("/v1.0/robot/oToMessages/batchSend", 429, headers={"Retry-After": "7"})
    with pytest.raises(ChatDeliveryError) as throttled:
        await adapter.send_private("staff-lina", "hi")
    assert throttled.value.retry_after == 7 and not throttled.value.permanent
    api.fail("/v1.0/robot/groupMessages/send", 400, body={"code": "param.invalid",
                                                          "message": "bad conversation"})
    with pytest.raises(ChatDeliveryError) as refused:
        await adapter.post_text("cid-nope", "hi")
    assert refused.value.permanent and "bad conversation" in str(refused.value)
    wrong = adapter_for(api, client_secret="not-the-secret")
    with pytest.raises(ChatDeliveryError) as bad_secret:
        await wrong.post_text("cidGROUP", "hi")
    assert bad_secret.value.permanent and "not-the-secret" not in str(bad_secret.value)


async def test_interactive_card_update_in_place_and_mentions_only_named_people(api, seeded):
    with seeded.session() as session:
        link(session, session.exec(select(User).where(User.name == "li.na")).one(),
             "dingtalk", "staff-lina")
    adapter = adapter_for(api, seeded, card_template_id="tpl.schema")
    ref = await adapter.post_card("cidGROUP", sample_card(mentions=["li.na", "nobody"]))
    out_track_id = ref.removeprefix("card:")
    created = api.cards[out_track_id]["create"]
    assert created["imGroupOpenDeliverModel"]["atUserIds"] == {"staff-lina": "李娜(运营)"}
    await adapter.update_card("cidGROUP", ref, sample_card(locked=True, subtitle="已放弃"))
    params = api.cards[out_track_id]["params"]
    assert params["locked"] == "true" and params["buttons"] == "[]"
    assert params["subtitle"] == "已放弃"


async def test_private_message_without_app_credentials_is_a_clear_permanent_error(api):
    adapter = build_adapter(DingTalkSettings(webhook_url=api.webhook_url, _env_file=None), None)
    with pytest.raises(ChatDeliveryError) as missing:
        await adapter.send_private("staff-lina", "hi")
    assert missing.value.permanent and "DINGTALK_CLIENT_ID" in str(missing.value)
