"""PromoPilot's ``ChatAdapter`` for DingTalk: interactive cards through the open API, the
ActionCard fallback where an organisation has no card template, and the custom robot webhook.

Message references say how a message can be changed later: ``card:<outTrackId>`` is an
interactive card updated in place; ``msg:…`` / ``webhook:…`` cannot be edited, so an
update posts the fresh card as a new message.

An interactive card's ``outTrackId`` comes from the outbox key recorded before the post, so
a retry after a lost answer names the same card instance: it is updated if DingTalk has it
and created only if not. Robot texts, ActionCards and the webhook have no such id: a retry
after a lost answer may show them twice (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from datetime import datetime

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

    async def post_card(self, channel_id: str, card: Card, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        lang = get_settings().language
        if channel_id == WEBHOOK_CHANNEL:
            return await self._webhook().send(render.webhook_card(card, lang))
        if self.settings.card_template_id:
            return await self._create_card(channel_id, card, lang, key, unsure_since)
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

    async def post_text(self, channel_id: str, text: str, *, key: str = "",
                        unsure_since: datetime | None = None) -> str:
        if channel_id == WEBHOOK_CHANNEL:
            return await self._webhook().send(render.webhook_text(text))
        return await self._group_message(channel_id, "sampleText",
                                         {"content": render.text_content(text)})

    async def send_private(self, external_user_id: str, text: str,
                           channel_id: str | None = None, *, key: str = "",
                           unsure_since: datetime | None = None) -> None:
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

    async def _create_card(self, channel_id: str, card: Card, lang: str, key: str = "",
                           unsure_since: datetime | None = None) -> str:
        out_track_id = (f"pp-{hashlib.sha256(key.encode()).hexdigest()[:24]}" if key
                        else f"pp-{secrets.token_hex(12)}")
        if unsure_since is not None and await self._exists(out_track_id, card, lang):
            log.info("card instance found from an earlier attempt; not posting again",
                     extra={"channel": channel_id, "out_track_id": out_track_id})
            return f"card:{out_track_id}"
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
        if failed:  # the instance exists but nobody sees it: the next try is a new card
            raise ChatDeliveryError(f"card not delivered to {channel_id}: "
                                    f"{str(failed[0].get('errorMsg'))[:200]}", not_sent=True)
        return f"card:{out_track_id}"

    async def _exists(self, out_track_id: str, card: Card, lang: str) -> bool:
        """Does DingTalk have this card instance (an earlier attempt made it)? Asked by
        updating it with the current content: that is what we want shown anyway."""
        try:
            await self._require_api().call("PUT", "/v1.0/card/instances", {
                "outTrackId": out_track_id,
                "cardData": {"cardParamMap": render.interactive(card, lang)},
                "cardUpdateOptions": {"updateCardDataByKey": True}, "userIdType": 1})
        except ChatDeliveryError as exc:
            if exc.permanent:  # refused: no such instance, so the earlier attempt made none
                return False
            raise
        return True

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
