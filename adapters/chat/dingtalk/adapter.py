"""PromoPilot's ``ChatAdapter`` for DingTalk: interactive cards through the open API, the
ActionCard fallback where an organisation has no card template, and the custom robot webhook.

Message references say how a message can be changed later: ``card:<outTrackId>`` is an
interactive card updated in place; ``msg:…`` / ``webhook:…`` cannot be edited, so an
update posts the fresh card as a new message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets

from sqlmodel import select

from bot.core.ports import ChatDeliveryError
from bot.core.settings import get_settings
from cards.model import Card
from storage.db import Database
from storage.models import ChatIdentity, User

from . import escape, render
from .openapi import OpenApi
from .settings import WEBHOOK_CHANNEL, DingTalkSettings
from .webhook import WebhookRobot

log = logging.getLogger(__name__)


class DingTalkChatAdapter:
    chat = "dingtalk"

    def __init__(self, settings: DingTalkSettings, db: Database, api: OpenApi | None,
                 webhook: WebhookRobot | None) -> None:
        self.settings = settings
        self.db = db
        self.api = api
        self.webhook = webhook

    # -- ChatAdapter -------------------------------------------------------------------

    async def post_card(self, channel_id: str, card: Card) -> str:
        lang = get_settings().language
        if channel_id == WEBHOOK_CHANNEL:
            return await self._webhook().send(render.webhook_card(card, lang))
        if self.settings.card_template_id:
            return await self._create_card(channel_id, card, lang)
        msg_key, param = render.robot_message(card, lang)
        return await self._group_message(channel_id, msg_key, param)

    async def update_card(self, channel_id: str, message_ref: str, card: Card) -> None:
        if not message_ref.startswith("card:"):
            await self.post_card(channel_id, card)  # ActionCards cannot be edited
            return
        await self._require_api().call("PUT", "/v1.0/card/instances", {
            "outTrackId": message_ref.removeprefix("card:"),
            "cardData": {"cardParamMap": render.interactive(card, get_settings().language)},
            "cardUpdateOptions": {"updateCardDataByKey": True},
            "userIdType": 1,
        })

    async def post_text(self, channel_id: str, text: str) -> str:
        if channel_id == WEBHOOK_CHANNEL:
            return await self._webhook().send(render.webhook_text(text))
        return await self._group_message(channel_id, "sampleText",
                                         {"content": render.text_content(text)})

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None) -> None:
        data = await self._require_api().call("POST", "/v1.0/robot/oToMessages/batchSend", {
            "robotCode": self.settings.robot,
            "userIds": [external_user_id],
            "msgKey": "sampleText",
            "msgParam": json.dumps({"content": render.text_content(text)}, ensure_ascii=False),
        })
        if external_user_id in (data.get("invalidStaffIdList") or []):
            raise ChatDeliveryError(f"DingTalk does not know staff id {external_user_id}",
                                    permanent=True)
        if external_user_id in (data.get("flowControlledStaffIdList") or []):
            raise ChatDeliveryError("DingTalk flow control on a direct message", retry_after=60)

    # -- helpers -----------------------------------------------------------------------

    def _require_api(self) -> OpenApi:
        if self.api is None:
            raise ChatDeliveryError("DingTalk app credentials are not set "
                                    "(DINGTALK_CLIENT_ID/DINGTALK_CLIENT_SECRET)", permanent=True)
        return self.api

    def _webhook(self) -> WebhookRobot:
        if self.webhook is None:
            raise ChatDeliveryError("DINGTALK_WEBHOOK_URL is not set", permanent=True)
        return self.webhook

    async def _create_card(self, channel_id: str, card: Card, lang: str) -> str:
        out_track_id = f"pp-{secrets.token_hex(12)}"
        deliver: dict = {"robotCode": self.settings.robot}
        at = await asyncio.to_thread(self._staff_ids, card.mentions)
        if at:
            deliver["atUserIds"] = at
        title = render.title(card)
        data = await self._require_api().call("POST", "/v1.0/card/instances/createAndDeliver", {
            "cardTemplateId": self.settings.card_template_id,
            "outTrackId": out_track_id,
            "callbackType": "STREAM",
            "cardData": {"cardParamMap": render.interactive(card, lang)},
            "openSpaceId": f"dtv1.card//IM_GROUP.{channel_id}",
            "imGroupOpenSpaceModel": {"supportForward": True,
                                      "lastMessageI18n": {"ZH_CN": title, "EN_US": title}},
            "imGroupOpenDeliverModel": deliver,
            "userIdType": 1,
        })
        results = (data.get("result") or {}).get("deliverResults") or []
        failed = [r for r in results if not r.get("success", True)]
        if failed:
            raise ChatDeliveryError(f"card not delivered to {channel_id}: "
                                    f"{str(failed[0].get('errorMsg'))[:200]}")
        return f"card:{out_track_id}"

    async def _group_message(self, channel_id: str, msg_key: str, param: dict) -> str:
        data = await self._require_api().call("POST", "/v1.0/robot/groupMessages/send", {
            "robotCode": self.settings.robot,
            "openConversationId": channel_id,
            "msgKey": msg_key,
            "msgParam": json.dumps(param, ensure_ascii=False),
        })
        return f"msg:{data.get('processQueryKey') or secrets.token_hex(8)}"

    def _staff_ids(self, names: list[str]) -> dict[str, str]:
        """Card mentions (user names) → DingTalk staff ids; never @all."""
        if not names:
            return {}
        with self.db.session() as session:
            rows = session.exec(select(ChatIdentity.external_id, User.display_name)
                                .join(User, User.id == ChatIdentity.user_id)
                                .where(ChatIdentity.chat == "dingtalk", User.name.in_(names)))
            return {ext: escape.plain(display) for ext, display in rows
                    if ext and ext.upper() != "@ALL"}
