"""Feishu card rendering: literal untrusted text, buttons that round-trip, size limits."""

from __future__ import annotations

import json

from adapters.chat.feishu.render import MAX_CARD_BYTES, post_content, render, size
from cards.callback import CallbackData
from cards.model import Button, Card, CardField, Line

EVIL = ('<at user_id="all"></at> <at id=all></at> "}]} \\ **bold** [x](https://evil.example)'
        ' \n# head `code`')


def texts(node) -> list[tuple[str, str]]:
    """Every (tag, content) of text elements in the card JSON."""
    found = []
    if isinstance(node, dict):
        if node.get("tag") in ("plain_text", "lark_md", "markdown") and "content" in node:
            found.append((node["tag"], node["content"]))
        for value in node.values():
            found += texts(value)
    elif isinstance(node, list):
        for value in node:
            found += texts(value)
    return found


def buttons(node) -> list[dict]:
    if isinstance(node, dict):
        own = [node] if node.get("tag") == "button" else []
        return own + [b for v in node.values() for b in buttons(v)]
    if isinstance(node, list):
        return [b for v in node for b in buttons(v)]
    return []


def task_card(**extra) -> Card:
    return Card(kind="task", title="#7 [天猫] 双11", color="orange", subtitle="待认领",
                fields=[CardField(label="平台", value="天猫")], task_id=7, version=3,
                link="http://127.0.0.1:8000/console?task=7",
                buttons=[Button(label="认领", action="claim", style="primary",
                                value=CallbackData("claim", 7, 3).pack()),
                         Button(label="放弃", action="skip", needs_input=True,
                                value=CallbackData("skip", 7, 3).pack())], **extra)


def test_untrusted_text_is_plain_and_cannot_mention_anyone():
    card = task_card(text=EVIL, footer=EVIL)
    card.title = EVIL
    card.fields.append(CardField(label=EVIL, value=EVIL))
    card.table_header = ["SKU", "note"]
    card.table = [Line(cells=["A-1", EVIL])]
    body = render(card)
    raw = json.dumps(body, ensure_ascii=False)
    assert json.loads(raw) == body  # the breakers did not break the JSON
    found = texts(body)
    assert found and all(tag == "plain_text" for tag, _ in found)  # never markdown
    assert "<at" not in raw.lower()  # no live mention tag anywhere
    assert body["header"]["title"]["content"].replace("\u200b", "") == EVIL
    assert any("**bold** [x](https://evil.example)" in c for _, c in found)


def test_header_colour_buttons_and_input_form():
    body = render(task_card())
    assert body["header"]["template"] == "orange"
    assert body["config"]["update_multi"] is True  # every viewer sees updates
    by_label = {b["text"]["content"]: b for b in buttons(body)}
    claim = CallbackData.unpack(by_label["认领"]["value"]["pp"])
    assert (claim.action, claim.task_id, claim.version) == ("claim", 7, 3)
    assert by_label["放弃"]["action_type"] == "form_submit"
    form = next(e for e in body["elements"] if e["tag"] == "form")
    assert form["elements"][0]["tag"] == "input" and form["elements"][0]["name"] == "comment"
    assert by_label["打开控制台"]["url"].endswith("/console?task=7")


def test_locked_card_has_no_decision_buttons():
    body = render(task_card(locked=True, footer="done"), "en")
    labels = [b["text"]["content"] for b in buttons(body)]
    assert labels == ["Open console"]
    assert body["elements"][-1]["elements"][0]["content"].startswith("Locked")


def test_huge_card_is_truncated_with_a_link_never_refused():
    card = task_card(text="长" * 50_000, table_header=["SKU", "价格"],
                     table=[Line(cells=[f"SKU-{i}", "9" * 400]) for i in range(500)])
    card.fields = [CardField(label=f"f{i}", value="值" * 3_000) for i in range(60)]
    body = render(card)
    assert size(body) <= MAX_CARD_BYTES
    raw = json.dumps(body, ensure_ascii=False)
    assert "内容过长" in raw and "/console?task=7" in raw
    assert any(b["value"]["pp"].startswith("pp1|claim|7|3") for b in buttons(body)
               if "value" in b)


def test_post_text_is_literal_runs():
    content = json.loads(post_content(f"第一行\n{EVIL}"))
    runs = [run for para in content["zh_cn"]["content"] for run in para]
    assert all(run["tag"] == "text" for run in runs)
    assert runs[0]["text"] == "第一行"
    assert "<at" not in json.dumps(content, ensure_ascii=False)


def test_mentions_only_from_looked_up_open_ids_never_all():
    body = render(task_card(), mention_ids=["ou_lina", "all", 'ou_x></at><at id=all>',
                                            "ou_lina", "ou_wang"])
    first = body["elements"][0]["text"]
    assert first == {"tag": "lark_md", "content": "<at id=ou_lina></at> <at id=ou_wang></at>"}
    markdown = [c for tag, c in texts(body) if tag != "plain_text"]
    assert markdown == [first["content"]]  # the only markdown in the card
    assert "lark_md" not in json.dumps(render(task_card(), mention_ids=["all"]))
