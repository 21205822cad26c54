"""A short line at the bottom of the channel when a task reaches its result.

The task card is one message updated in place for the whole lifecycle, so by the time the
marketplace decides, the card is far up the channel and nobody sees it change. When a task
is accepted or rejected by the platform, every channel showing its card also gets a one-line
text with a link back to the card: the console's channel with the card highlighted, or the
task's dashboard page for the other chats (their message links need the workspace's own
address). Registered on import (``bot.wiring``); one line per result and channel (the
outbox key is the task version, so a redelivered verdict never posts twice).
"""

from __future__ import annotations

from urllib.parse import quote

from sqlmodel import Session, select

from bot.core import lifecycle, outbox
from bot.core.i18n import t
from bot.core.settings import get_settings
from storage.models import Campaign, ChatMessage, Task

RESULTS = {"accept": "result.line.accepted", "platform_reject": "result.line.rejected"}
TITLE_SHOWN = 60


def card_link(chat: str, channel_id: str, task_id: int) -> str:
    base = get_settings().base_url
    if chat == "web":
        return f"{base}/console?channel={quote(channel_id, safe='')}&task={task_id}"
    return f"{base}/dash/tasks/{task_id}"


def result_line(session: Session, task: Task, outcome: lifecycle.Outcome, actor: object) -> None:
    key = RESULTS.get(outcome.action)
    if key is None or not outcome.changed:
        return
    campaign = session.get(Campaign, task.campaign_id)
    title = (campaign.title if campaign else "")[:TITLE_SHOWN]
    lang = get_settings().language  # cards and lines in channels use the team's language
    shown = session.exec(select(ChatMessage.chat, ChatMessage.channel_id).where(
        ChatMessage.card_key == f"task:{task.id}")).all()
    targets = set(shown) or {(b.chat, b.channel_id) for b in outbox.bindings_for(
        session, campaign.platform if campaign else "*", "notices", task.team_id)}
    for chat, channel in sorted(targets):
        outbox.enqueue_text(session, chat, channel, t(
            key, lang, task_id=task.id, title=title, url=card_link(chat, channel, task.id or 0)),
            key=f"result:{task.id}:v{task.version}:{chat}:{channel}"[:256])


lifecycle.on_transition(result_line)
