"""Card model → DingTalk payloads, within DingTalk's limits, every untrusted string escaped.

Three shapes: the interactive card's ``cardParamMap`` (for the card template described in
docs/dingtalk.md; values must be strings), the robot ActionCard ``msgParam`` used where an
organisation has no interactive cards (its buttons can only open links, so they open the task
in the console), and the custom-robot webhook body.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit, urlunsplit

from bot.core.i18n import t
from cards.model import Button, Card

from . import escape

TITLE_MAX = 100  # shown in the chat list and card header
VALUE_MAX = 500
TABLE_ROWS = 20
BODY_MAX = 4000
TEXT_MAX = 4000  # robot text messages
ACTIONCARD_BUTTONS = 5  # sampleActionCard … sampleActionCard5


def title(card: Card) -> str:
    return escape.plain(card.title, TITLE_MAX)


def body_markdown(card: Card, lang: str) -> str:
    """Fields, text, table and footer as escaped markdown, shortened with a console pointer."""
    lines: list[str] = []
    for field in card.fields:
        value = escape.markdown(escape.truncate(field.value, VALUE_MAX), one_line=True)
        lines.append(f"**{escape.markdown(field.label, one_line=True)}**: {value}")
    if card.text:
        lines.append("")
        lines.append(escape.markdown(escape.truncate(card.text, BODY_MAX // 2)))
    if card.table:
        lines.append("")
        if card.table_header:
            header = " · ".join(escape.markdown(h, one_line=True) for h in card.table_header)
            lines.append(f"**{header}**")
        for row in card.table[:TABLE_ROWS]:
            lines.append("- " + " · ".join(escape.markdown(c, one_line=True) for c in row.cells))
        if len(card.table) > TABLE_ROWS:
            lines.append(escape.markdown(t("dingtalk.more_lines", lang,
                                           n=len(card.table) - TABLE_ROWS), one_line=True))
    if card.footer:
        lines.append("")
        lines.append(escape.markdown(card.footer, one_line=True))
    text = "\n".join(lines).strip()
    if len(text) > BODY_MAX:
        text = text[:BODY_MAX].rsplit("\n", 1)[0] + "\n…"
    return text


def _button(button: Button, locked: bool) -> dict | None:
    if button.url:
        url = escape.safe_url(button.url)
        return {"text": escape.plain(button.label, 20), "url": url} if url else None
    return {"text": escape.plain(button.label, 20), "value": button.value, "style": button.style,
            "action": button.action, "needsInput": button.needs_input, "disabled": locked}


def interactive(card: Card, lang: str) -> dict[str, str]:
    """The ``cardParamMap`` for the interactive card template (all values strings)."""
    rendered = [] if card.locked else [_button(b, card.locked) for b in card.buttons]
    buttons = [b for b in rendered if b is not None]
    link = escape.safe_url(card.link)
    return {
        "kind": card.kind,
        "title": title(card),
        "subtitle": escape.plain(card.subtitle, 40),
        "color": card.color,
        "markdown": body_markdown(card, lang),
        "buttons": json.dumps(buttons, ensure_ascii=False),
        "locked": "true" if card.locked else "false",
        "status": t("dingtalk.locked", lang) if card.locked else "",
        "link": link,
        "linkText": t("dingtalk.open_task", lang) if link else "",
        "taskId": str(card.task_id or ""),
        "version": str(card.version or ""),
    }


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def link_buttons(card: Card, lang: str) -> list[tuple[str, str]]:
    """ActionCard buttons: each opens the task in the console (clicks cannot call back)."""
    link = escape.safe_url(card.link)
    out: list[tuple[str, str]] = []
    for button in card.buttons:
        if button.url and escape.safe_url(button.url):
            out.append((escape.plain(button.label, 20), escape.safe_url(button.url)))
        elif link and not card.locked:
            out.append((escape.plain(button.label, 20), _with_query(link, action=button.action)))
    if link and not out:
        out.append((t("dingtalk.open_task", lang), link))
    return out[:ACTIONCARD_BUTTONS]


def action_card_markdown(card: Card, lang: str) -> str:
    head = f"### {escape.markdown(card.title, one_line=True)}"
    if card.subtitle:
        head += f"\n\n**{escape.markdown(card.subtitle, one_line=True)}**"
    return f"{head}\n\n{body_markdown(card, lang)}".strip()


def robot_message(card: Card, lang: str) -> tuple[str, dict]:
    """(msgKey, msgParam) for the robot message APIs: an ActionCard, or markdown if no link."""
    text = action_card_markdown(card, lang)
    buttons = link_buttons(card, lang)
    if not buttons:
        return "sampleMarkdown", {"title": title(card), "text": text}
    if len(buttons) == 1:
        return "sampleActionCard", {"title": title(card), "text": text,
                                    "singleTitle": buttons[0][0], "singleURL": buttons[0][1]}
    param: dict = {"title": title(card), "text": text}
    for i, (label, url) in enumerate(buttons, start=1):
        param[f"actionTitle{i}"] = label
        param[f"actionURL{i}"] = url
    return f"sampleActionCard{len(buttons)}", param


def webhook_card(card: Card, lang: str) -> dict:
    """The custom robot's ``actionCard`` (or ``markdown``) body; never mentions anyone."""
    text = action_card_markdown(card, lang)
    buttons = link_buttons(card, lang)
    at = {"isAtAll": False, "atUserIds": [], "atMobiles": []}
    if not buttons:
        return {"msgtype": "markdown", "markdown": {"title": title(card), "text": text}, "at": at}
    body: dict = {"title": title(card), "text": text, "btnOrientation": "0"}
    if len(buttons) == 1:
        body.update(singleTitle=buttons[0][0], singleURL=buttons[0][1])
    else:
        body["btns"] = [{"title": label, "actionURL": url} for label, url in buttons]
    return {"msgtype": "actionCard", "actionCard": body, "at": at}


def webhook_text(text: str) -> dict:
    return {"msgtype": "text", "text": {"content": text_content(text)},
            "at": {"isAtAll": False, "atUserIds": [], "atMobiles": []}}


def text_content(text: str) -> str:
    """A robot text message's content: mentions neutralised, within DingTalk's size."""
    return escape.truncate(escape.multiline(text), TEXT_MAX)
