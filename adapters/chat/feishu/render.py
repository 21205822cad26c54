"""The card model as a Feishu interactive card (card JSON 1.0), within Feishu's limits.

Every string from the model is untrusted, so it only ever lands in ``plain_text`` elements
(shown literally: no markdown, no ``<at>`` mentions) and the JSON is built as a dict, so
quotes and braces cannot break it. The one ``lark_md`` element holds the mentions we built
ourselves from open_ids in our database. Feishu refuses cards over ~30 KB; we shrink the card
(table rows, long texts, fields) and point to the console instead — rendering never fails.
Plain messages go out as ``post`` rich text whose ``text`` runs are literal too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.core.i18n import t
from cards.model import Button, Card

MAX_CARD_BYTES = 28_000  # Feishu: card content ≤ 30 KB; keep room for the request envelope
MAX_TITLE = 200
MAX_TEXT = 2_000
MAX_FIELD = 1_000
MAX_ROWS = 30
MAX_BUTTONS = 8
COLORS = {"blue": "blue", "green": "green", "orange": "orange", "red": "red",
          "grey": "grey", "purple": "purple"}
BUTTON_TYPES = {"primary": "primary", "danger": "danger", "default": "default"}
VALUE_KEY = "pp"  # button value: {"pp": "<packed CallbackData>"}
COMMENT_FIELD = "comment"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_AT_TAG = re.compile(r"<(\s*/?\s*at\b)", re.I)
_OPEN_ID = re.compile(r"^ou_[A-Za-z0-9_-]{1,64}$")



def clean(text: object, limit: int | None = None) -> str:
    """Plain text safe for any Feishu surface: no control chars, no live ``<at>`` tag."""
    value = _CONTROL.sub("", str(text or ""))
    value = _AT_TAG.sub("<\u200b\\1", value)
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    return value


def plain(text: str, limit: int | None = None) -> dict[str, str]:
    return {"tag": "plain_text", "content": clean(text, limit)}


def _button(button: Button, in_form: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"tag": "button", "text": plain(button.label, 40),
                           "type": BUTTON_TYPES.get(button.style, "default")}
    if button.url:
        out["url"] = button.url if button.url.startswith(("https://", "http://")) else ""
        return out
    out["value"] = {VALUE_KEY: button.value}
    if in_form:
        out["action_type"] = "form_submit"
        out["name"] = f"pp_{button.action}"
    return out


def _elements(card: Card, lang: str, rows: int, field_limit: int, text_limit: int,
              truncated: bool) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = []
    if card.subtitle:
        elements.append({"tag": "div", "text": plain(card.subtitle, MAX_TITLE)})
    if card.text:
        elements.append({"tag": "div", "text": plain(card.text, text_limit)})
    if card.fields:
        elements.append({"tag": "div", "fields": [
            {"is_short": f.short, "text": plain(f"{clean(f.label, 80)}\n{clean(f.value)}",
                                                  field_limit)}
            for f in card.fields]})
    if card.table and rows:
        lines = []
        if card.table_header:
            lines.append(" | ".join(card.table_header))
        lines += [" | ".join(line.cells) for line in card.table[:rows]]
        if len(card.table) > rows:
            lines.append(t("feishu.more_rows", lang, n=len(card.table) - rows))
            truncated = True
        elements.append({"tag": "hr"})
        elements.append({"tag": "div", "text": plain("\n".join(lines))})
    elif card.table:
        truncated = True
    if truncated:
        elements.append({"tag": "div", "text": plain(t("feishu.truncated", lang))})
    buttons = [] if card.locked else card.buttons[:MAX_BUTTONS]
    direct = [b for b in buttons if not b.needs_input]
    with_input = [b for b in buttons if b.needs_input and not b.url]
    link = card.link if card.link and card.link.startswith(("https://", "http://")) else None
    actions = [_button(b) for b in direct]
    if link:
        actions.append(_button(Button(label=t("action.open", lang), action="open", url=link)))
    if actions:
        elements.append({"tag": "action", "actions": actions})
    if with_input:
        elements.append({"tag": "form", "name": "pp_form", "elements": [
            {"tag": "input", "name": COMMENT_FIELD, "required": False, "max_length": 500,
             "placeholder": plain(t("feishu.comment", lang))},
            *[_button(b, in_form=True) for b in with_input],
        ]})
    footer = card.footer
    if card.locked:
        footer = f"{t('feishu.locked', lang)} · {footer}" if footer else t("feishu.locked", lang)
    if footer:
        elements.append({"tag": "note", "elements": [plain(footer, 300)]})
    return elements


MAX_MENTIONS = 20  # people one card calls out; the rest are counted ("+N more")


def mention_element(open_ids: list[str], lang: str = "zh-CN") -> list[dict[str, Any]]:
    """Who the card notifies: only well-formed open_ids we looked up — never ``all``; past
    ``MAX_MENTIONS`` the card says how many more were meant rather than dropping them."""
    tags = [f"<at id={oid}></at>" for oid in dict.fromkeys(open_ids) if _OPEN_ID.match(oid)]
    content = " ".join(tags[:MAX_MENTIONS])
    if len(tags) > MAX_MENTIONS:
        content += " " + clean(t("feishu.more_mentions", lang, n=len(tags) - MAX_MENTIONS), 80)
    return [{"tag": "div", "text": {"tag": "lark_md", "content": content}}] if tags else []


def render(card: Card, lang: str = "zh-CN",
           mention_ids: list[str] | None = None) -> dict[str, Any]:
    """The card JSON, shrunk step by step until it fits Feishu's size limit."""
    attempts = [(MAX_ROWS, MAX_FIELD, MAX_TEXT, False), (10, 300, 500, True),
                (0, 120, 200, True), (0, 40, 80, True)]
    mentions = mention_element(mention_ids or [], lang)
    for rows, field_limit, text_limit, truncated in attempts:
        body = {
            "config": {"wide_screen_mode": True, "update_multi": True},
            "header": {"template": COLORS.get(card.color, "blue"),
                       "title": plain(card.title, MAX_TITLE)},
            "elements": mentions + _elements(card, lang, rows, field_limit, text_limit,
                                             truncated),
        }
        if size(body) <= MAX_CARD_BYTES:
            return body
    minimal = card.model_copy(update={"fields": card.fields[:10], "table": [], "text": ""})
    return {  # last resort: title, a few short fields, the buttons and the console link
        "config": {"wide_screen_mode": True, "update_multi": True},
        "header": {"template": COLORS.get(card.color, "blue"), "title": plain(card.title, 100)},
        "elements": mentions + _elements(minimal, lang, 0, 40, 40, True),
    }


def size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, ensure_ascii=False).encode())


def post_content(text: str) -> str:
    """A ``post`` message: each line a literal ``text`` run (no mentions, no markdown)."""
    lines = clean(text, 20_000).split("\n")
    content = [[{"tag": "text", "text": line}] for line in lines]
    return json.dumps({"zh_cn": {"title": "", "content": content}}, ensure_ascii=False)
