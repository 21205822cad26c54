"""Card model → Block Kit, always inside Block Kit's limits.

Slack refuses a whole message when one limit is broken (50 blocks, 3,000 characters of
section text, 10 fields of 2,000, 75 characters of button text …), so every piece is cut to
size here and the card's console link is appended wherever something was cut: a long card
posts shortened, never fails.
"""

from __future__ import annotations

import json

from bot.core.i18n import t
from cards.model import Button, Card

from .escape import ELLIPSIS, fit, link, mrkdwn, plain

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS_PER_SECTION = 10
CONTEXT_TEXT = 2000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
ACTIONS_PER_BLOCK = 25
URL_MAX = 3000
FALLBACK_TEXT = 3000
TABLE_SECTIONS = 6
ACTION_PREFIX = "pp:"
LINK_ACTION = "pp-link"
EMOJI = {"blue": "🔵", "green": "🟢", "orange": "🟠", "red": "🔴", "grey": "⚪", "purple": "🟣"}


def action_id(button: Button) -> str:
    """``pp:<action>`` — ``:input`` marks buttons that open a modal for a comment."""
    value = f"{ACTION_PREFIX}{button.action}{':input' if button.needs_input else ''}"
    return value[:ACTION_ID]


def parse_action_id(value: str) -> tuple[str, bool]:
    body = value[len(ACTION_PREFIX):] if value.startswith(ACTION_PREFIX) else value
    needs_input = body.endswith(":input")
    return (body[: -len(":input")] if needs_input else body), needs_input


def render(card: Card, lang: str) -> dict:
    """``{"text": fallback, "blocks": [...]}`` for chat.postMessage / chat.update."""
    more = _more(card, lang)
    body: list[dict] = []
    title = f"{EMOJI.get(card.color, '')} *{fit(card.title, 600, one_line=True, plain_format=True)}*"
    title = title.strip()
    if card.subtitle:
        title += "\n" + fit(card.subtitle, 300, one_line=True, plain_format=True)
    body.append(_section(title))
    short = [f for f in card.fields if f.short]
    for start in range(0, len(short), FIELDS_PER_SECTION):
        chunk = short[start:start + FIELDS_PER_SECTION]
        body.append({"type": "section", "fields": [
            _mrkdwn(_labelled(f.label, f.value, FIELD_TEXT, more)) for f in chunk]})
    for f in (f for f in card.fields if not f.short):
        body.append(_section(_labelled(f.label, f.value, SECTION_TEXT, more)))
    if card.text:
        body.append(_section(fit(card.text, SECTION_TEXT, suffix=more, plain_format=True)))
    body.extend(_table(card, lang, more))
    if card.mentions:
        names = " ".join("@" + " ".join(str(name).split()) for name in card.mentions)
        body.append(_context(fit(names, CONTEXT_TEXT, suffix=more, one_line=True)))

    tail: list[dict] = []
    actions = _actions(card, lang)
    tail.extend(actions)
    footer = fit(card.footer, CONTEXT_TEXT, one_line=True, plain_format=True) \
        if card.footer else ""
    if card.locked:
        footer = (footer + "  ·  " if footer else "") + mrkdwn(t("slack.locked", lang))
    if footer:
        tail.append(_context(footer))

    room = MAX_BLOCKS - len(tail)
    if len(body) > room:
        cut = [_context(mrkdwn(t("slack.truncated", lang)) + (" " + more if more else ""))]
        body = body[: room - len(cut)] + cut
    fallback = fit(card.title, FALLBACK_TEXT, one_line=True)
    if card.subtitle:
        fallback = fit(f"{card.title} · {card.subtitle}", FALLBACK_TEXT, one_line=True)
    return {"text": fallback, "blocks": body + tail}


def _more(card: Card, lang: str) -> str:
    return (" " + link(card.link, t("slack.more", lang))) if card.link else ""


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(text[:SECTION_TEXT])}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [_mrkdwn(text[:CONTEXT_TEXT])]}


def _labelled(label: str, value: str, limit: int, more: str) -> str:
    head = f"*{fit(label, 200, one_line=True, plain_format=True)}*\n"
    return head + fit(value, limit - len(head), suffix=more, plain_format=True)


def _table(card: Card, lang: str, more: str) -> list[dict]:
    """The table as monospace text, a few sections of whole rows; the rest via the link."""
    if not card.table:
        return []
    rows = [card.table_header] if card.table_header else []
    rows += [line.cells for line in card.table]
    widths: dict[int, int] = {}
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = min(max(widths.get(i, 0), len(str(cell))), 40)
    lines = ["  ".join(_cell(str(c), widths[i]) for i, c in enumerate(row)) for row in rows]
    sections: list[dict] = []
    chunk: list[str] = []
    budget = SECTION_TEXT - 8  # the ``` fences and newlines
    used = 0
    for index, line in enumerate(lines):
        escaped = fit(line, 500, as_code=True)
        if chunk and used + len(escaped) + 1 > budget:
            sections.append(_section("```" + "\n".join(chunk) + "```"))
            chunk, used = [], 0
            if len(sections) == TABLE_SECTIONS:
                left = len(lines) - index
                note = mrkdwn(t("slack.more_rows", lang, n=left))
                sections.append(_context(note + (" ·" + more if more else "")))
                return sections
        chunk.append(escaped)
        used += len(escaped) + 1
    if chunk:
        sections.append(_section("```" + "\n".join(chunk) + "```"))
    return sections


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    if len(text) > width:
        text = text[: max(width - 1, 0)] + ELLIPSIS
    return text.ljust(width)


def _actions(card: Card, lang: str) -> list[dict]:
    fits = [b for b in card.buttons if b.url or len(b.value) <= BUTTON_VALUE]
    buttons = [] if card.locked else fits
    elements = []
    for b in buttons:
        element: dict = {"type": "button", "text": {"type": "plain_text",
                                                    "text": plain(b.label, BUTTON_TEXT)}}
        if b.url:
            if not link(b.url, "x") or len(b.url) > URL_MAX:
                continue
            element.update(action_id=f"{LINK_ACTION}-{len(elements)}", url=b.url)
        else:
            element.update(action_id=action_id(b), value=b.value)
        if b.style in ("primary", "danger"):
            element["style"] = b.style
        elements.append(element)
    if card.link and link(card.link, "x") and len(card.link) <= URL_MAX:
        elements.append({"type": "button", "action_id": LINK_ACTION,
                         "text": {"type": "plain_text", "text": plain(t("action.open", lang),
                                                                      BUTTON_TEXT)},
                         "url": card.link})
    seen: set[str] = set()
    unique = []
    for element in elements:  # action_id must be unique within a message
        if element["action_id"] not in seen:
            seen.add(element["action_id"])
            unique.append(element)
    return [{"type": "actions", "elements": unique[i:i + ACTIONS_PER_BLOCK]}
            for i in range(0, min(len(unique), ACTIONS_PER_BLOCK * 2), ACTIONS_PER_BLOCK)]


def modal(card_title: str, value: str, action: str, task_id: int, channel_id: str,
          message_ts: str, lang: str) -> dict:
    """The reason/comment dialog opened for reject, skip and request-changes buttons."""
    meta = json.dumps({"v": value, "c": channel_id, "ts": message_ts, "l": lang})
    return {
        "type": "modal",
        "callback_id": "pp_comment",
        "title": {"type": "plain_text", "text": plain(t("slack.modal_title", lang), 24)},
        "submit": {"type": "plain_text", "text": plain(t("slack.modal_submit", lang), 24)},
        "close": {"type": "plain_text", "text": plain(t("slack.modal_close", lang), 24)},
        "private_metadata": meta[:3000],
        "blocks": [
            _section(fit(t("slack.modal_for", lang, action=t(f"action.{action}", lang),
                           task_id=task_id), 500) + ("\n" + fit(card_title, 2000)
                                                      if card_title else "")),
            {"type": "input", "block_id": "comment",
             "label": {"type": "plain_text", "text": plain(t("slack.modal_label", lang), 2000)},
             "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                         "max_length": 1000}},
        ],
    }


def text_message(text: str) -> dict:
    """A reply as escaped mrkdwn: commands echo untrusted words back."""
    return {"text": fit(text, 39000)}
