"""The zh-CN and en catalogs (locale/*/LC_MESSAGES/promopilot.po) hold every text a person reads.

- every message exists in both languages, non-empty, with the same ``{placeholders}``;
- every key the code names (``t("…")``, ``DomainError("…")``, ``Term("…")``, ``usage=``…)
  exists, and so does every member of a key family built at run time (``state.{s}``…);
- a Chinese message, rendered with sample parameters, has no English word outside a short
  allow-list, and an English one has no Chinese; the domain's real refusals, rendered in
  zh-CN, name roles, actions and states in Chinese.
"""

from __future__ import annotations

import ast
import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

import commands  # noqa: F401  (registers the commands)
from bot.core import lifecycle
from bot.core.actions import HANDLERS, ActionRequest, perform
from bot.core.actors import ROLES, Actor
from bot.core.errors import DomainError
from bot.core.i18n import LANGS, Term, Terms, load_catalog, roles, t
from bot.core.views import BUILDERS
from cards.builders import NEEDS_INPUT
from commands.router import Inbound, router
from storage.models import Task, User

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("bot", "cards", "commands", "adapters")
CATALOGS = {lang: load_catalog(lang) for lang in LANGS}
ZH, EN = CATALOGS["zh-CN"], CATALOGS["en"]

# English words a Chinese message may carry: names and codes that are the same in every
# language (the product, file formats and encodings, units, acronyms everyone uses).
ALLOWED_WORDS = {
    "PromoPilot",  # the product
    "SKU", "ID", "URL",  # codes a team uses as they are
    "Excel", "CSV", "UTF", "GBK",  # file formats and encodings (UTF-8)
    "API", "RPA",  # the submission channels' own names
    "ROI", "GMV",  # the metrics a review reports, named the same in Chinese
    "px",  # image sizes
}
# Tokens a person types exactly as written, removed before looking for words: command-line
# flags (--skip-bad-rows, --slack), Slack's slash command, and file paths.
VERBATIM = re.compile(r"--[A-Za-z][\w-]*|/promo\b|[\w./-]+\.(?:ya?ml|xlsx|csv)\b")
# Names that only exist in English, per message: an HTTP header, the REST fields, the CLI
# (the chat commands have Chinese words; the console's API and the `promopilot` CLI do not).
VERBATIM_IN = {
    "auth.required": ["Authorization: Bearer"],
    "auth.name_required": ["user", "actor"],
    "auth.login_hint": ["promopilot user passwd"],
}
ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def english_words(text: str, key: str = "") -> set[str]:
    for verbatim in VERBATIM_IN.get(key, ()):
        text = text.replace(verbatim, " ")
    return set(ENGLISH_WORD.findall(VERBATIM.sub(" ", text))) - ALLOWED_WORDS


def placeholders(template: str) -> set[str]:
    return {field.split(".")[0].split("[")[0]
            for _, field, _, _ in string.Formatter().parse(template) if field}


# -- 1. both languages, same placeholders ------------------------------------------------------


def test_every_message_exists_in_both_languages_with_the_same_placeholders():
    raw = {lang: _raw_ids(lang) for lang in LANGS}
    assert raw["zh-CN"] == raw["en"], {
        "only in zh-CN": sorted(raw["zh-CN"] - raw["en"]),
        "only in en": sorted(raw["en"] - raw["zh-CN"])}
    empty = {lang: sorted(raw[lang] - set(CATALOGS[lang])) for lang in LANGS}
    assert not any(empty.values()), f"messages without a text: {empty}"
    differ = {key: (sorted(placeholders(ZH[key])), sorted(placeholders(EN[key])))
              for key in ZH if placeholders(ZH[key]) != placeholders(EN[key])}
    assert not differ, f"zh-CN and en use different placeholders: {differ}"


def _raw_ids(lang: str) -> set[str]:
    """Every msgid in the file, translated or not (``load_catalog`` drops empty ones)."""
    from babel.messages.pofile import read_po

    from bot.core.i18n import _po_path

    with _po_path(lang).open("rb") as fh:
        return {str(m.id) for m in read_po(fh) if m.id}


# -- 2. the keys the code uses exist ----------------------------------------------------------

ERROR_CLASSES = {"DomainError", "NotFound", "Forbidden", "Conflict", "Invalid"}
NAMESPACES = {key.split(".")[0] for key in EN}
KEYLIKE = re.compile(r"[a-z]+(?:\.[a-z0-9_]+)+")
NOT_KEYS = re.compile(r".*\.(?:py|ya?ml|json|md|xlsx|csv|j2|po|html|zip|db)$")
OTHER_NAMES = {"card.action.trigger"}  # Feishu's event type, not one of our keys


def _code_files() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))


def _callee(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):  # ctx.t, Term.of, router.command
        owner = f.value.id if isinstance(f.value, ast.Name) else ""
        return f"{owner}.{f.attr}" if owner == "Term" else f.attr
    return ""


def used_keys() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({key: [where]}, {f-string prefix: [where]})`` over the code."""
    literal: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}
    for path in _code_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(ROOT)
        in_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                       for part in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _callee(node)
                args = []
                if name in {"t", "Term", "Term.of", *ERROR_CLASSES} and node.args:
                    args.append(node.args[0])
                args += [k.value for k in node.keywords if k.arg in ("usage", "usage_key")]
                if name == "task_id_arg" and len(node.args) > 2:
                    args.append(node.args[2])
                for arg in args:
                    where = f"{rel}:{arg.lineno}"
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        literal.setdefault(arg.value, []).append(where)
                    elif isinstance(arg, ast.JoinedStr) and arg.values and \
                            isinstance(arg.values[0], ast.Constant):
                        prefixes.setdefault(str(arg.values[0].value), []).append(where)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in in_fstrings and node.value not in OTHER_NAMES:
                # keys kept in tables and variables ("usage.claim" in a tuple, key = "…")
                value = node.value
                if KEYLIKE.fullmatch(value) and value.split(".")[0] in NAMESPACES \
                        and not NOT_KEYS.match(value):
                    literal.setdefault(value, []).append(f"{rel}:{node.lineno}")
    return literal, prefixes


def test_every_key_the_code_names_is_in_the_catalogs():
    literal, prefixes = used_keys()
    assert len(literal) > 100, "the scan found the keys (t(…), errors, Term, usage=)"
    missing = {key: where for key, where in literal.items() if key not in EN or key not in ZH}
    assert not missing, f"keys used in the code but not in the catalogs: {missing}"
    unknown = {p: w for p, w in prefixes.items() if not any(k.startswith(p) for k in EN)}
    assert not unknown, f"f-string keys whose family has no message: {unknown}"


def test_every_member_of_the_key_families_exists():
    states = [s.value for s in lifecycle.State]
    actions = sorted(set(lifecycle.TRANSITIONS) | set(HANDLERS))
    needs_words = sorted({a for a, rule in lifecycle.TRANSITIONS.items() if rule.needs_comment}
                         | NEEDS_INPUT | {"submission_done", "platform_rejected", "set_deadline"})
    families = {
        "state": states,
        "action": actions,
        "role": [*ROLES, "claimant", "none", "system"],
        "card.decision": ["approved", "rejected", "changes_requested", "cancelled", "skipped"],
        "example": [*needs_words, "override_submit", "override_request_approval"],
        "purpose": ["notices", "approvals", "ops"],
        "sub.ch": ["api", "http_json", "rpa", "excel", "assisted"],
        "learn.state": ["proposed", "accepted", "dismissed"],
    }
    missing = [f"{family}.{name}" for family, names in families.items() for name in names
               if f"{family}.{name}" not in EN or f"{family}.{name}" not in ZH]
    assert not missing, f"missing from the catalogs: {missing}"
    assert len(BUILDERS) >= 3  # the card builders that use these families are registered


def test_every_text_command_has_its_usage_in_both_languages():
    for spec in router.specs:
        assert spec.usage_key in EN and spec.usage_key in ZH, spec.names


# -- 3. Chinese messages have no English word; English ones no Chinese -------------------------

TERM_PARAMS: dict[str, object] = {
    "role": Term("role.finance"),
    "roles": roles({"finance", "legal"}),
    "allowed": roles({"market", "ops", "manager"}),
    "action": Term("action.submit"),
    "actions": Terms((Term("action.claim"), Term("action.skip"))),
    "state": Term("state.drafting"),
    "before": Term("state.claimed"),
    "after": Term("state.drafting"),
    "decision": Term("card.decision.approved"),
    "example": Term.of("example.reject", task_id=3),
    "usage": Term("usage.reject"),
    "purpose": Term("purpose.notices"),
    "channel": Term("sub.ch.excel"),
}
WHEN = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)


def sample(key: str, lang: str) -> str:
    """The message with every placeholder filled: a Term for role/action/state-like names,
    a time for a formatted one, a number for the rest (data: titles, names, ids)."""
    params: dict[str, object] = {}
    for _, field, spec, _ in string.Formatter().parse(CATALOGS[lang][key]):
        if not field:
            continue
        name = field.split(".")[0]
        params[name] = TERM_PARAMS.get(name, WHEN if spec else 3)
    return t(key, lang, **params)


def test_every_chinese_message_is_chinese_apart_from_product_names_and_codes():
    found = {key: sorted(english_words(sample(key, "zh-CN"), key)) for key in ZH}
    found = {key: words for key, words in found.items() if words}
    assert not found, f"English words in Chinese messages: {found}"


def test_every_english_message_is_english():
    found = {key: text for key in EN if CJK.search(text := sample(key, "en"))}
    assert not found, f"Chinese in English messages: {found}"


def test_the_check_catches_an_english_word_and_allows_the_listed_ones():
    assert english_words("你的角色(finance)不能执行「submit」") == {"finance", "submit"}
    assert english_words("例如:reject 3 <reason>") == {"reject", "reason"}
    assert not english_words("下载报名 Excel;加 --skip-bad-rows;见 policies/submission.yaml")


# -- 4. the domain's real refusals, in Chinese --------------------------------------------------


def _user(db, name: str) -> User:
    with db.session() as session:
        return session.exec(select(User).where(User.name == name)).one()


def _first_task(db) -> int:
    with db.session() as session:
        return session.exec(select(Task.id).order_by(Task.id)).first()


def _refusal(db, task_id: int, action: str, who: str, comment: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as refused:
        perform(db, ActionRequest(task_id, action, Actor.of(_user(db, who)), comment=comment))
    return refused.value


def _say(db, who: str, text: str):
    return router.handle_text(db, Inbound("web", "tmall-promo", who), text)


def assert_chinese(text: str, *must: str) -> None:
    for word in must:
        assert word in text, text
    assert not english_words(text), text


def test_a_finance_user_who_tries_to_submit_is_told_in_chinese(seeded):
    tid = _first_task(seeded)
    message = _refusal(seeded, tid, "submit", "zhao.lei").message("zh-CN")
    assert_chinese(message, "财务", "提交平台", "运营")
    assert "finance" not in message and "submit" not in message
    reply = _say(seeded, "zhao.lei", f"提交 {tid}")
    assert not reply.ok
    assert_chinese(reply.text, "财务")
    english = _refusal(seeded, tid, "submit", "zhao.lei").message("en")
    assert "Finance" in english and "财务" not in english  # the same error, read in English


def test_refusals_along_an_approval_are_chinese(seeded):
    db = seeded
    tid = _first_task(db)
    assert_chinese(_refusal(db, tid, "approve", "zhou.qiang").message("zh-CN"), "待认领", "批准")
    for text in (f"认领 {tid}", f"填报 {tid}", f"送审 {tid}"):
        assert _say(db, "li.na", text).ok, text
    assert_chinese(_refusal(db, tid, "approve", "zhao.lei").message("zh-CN"), "财务", "经理")
    assert_chinese(_refusal(db, tid, "reject", "zhou.qiang").message("zh-CN"),
                   f"例如:驳回 {tid} <原因>")
    reply = _say(db, "zhou.qiang", f"reject {tid}")  # typed in English, read in Chinese
    assert_chinese(reply.text, f"驳回 {tid}")
    assert "例如:驳回" in _say(db, "zhou.qiang", f"驳回 {tid}").text
    assert_chinese(_refusal(db, tid, "skip", "li.na", "原因").message("zh-CN"), "审批中", "放弃")
    reply = _say(db, "zhou.qiang", f"审批单 {tid}")
    labels = [f.label for f in reply.card.fields]
    assert "审批环节 1 · 经理" in labels, labels
    reply = router.handle_text(db, Inbound("web", "tmall-promo", "alex"), f"approval {tid}")
    assert "Step 1 · Manager" in [f.label for f in reply.card.fields]
    assert _say(db, "zhou.qiang", f"批准 {tid}").ok
    done = _refusal(db, tid, "approve", "zhou.qiang").message("zh-CN")
    assert_chinese(done, "已批准")


def test_usage_and_role_replies_use_chinese_words(seeded):
    db = seeded
    assert_chinese(_say(db, "li.na", "驳回").text, "驳回 <编号> <原因>")
    assert_chinese(_say(db, "admin", "用户 添加 bob 会计").text, "财务")
    added = _say(db, "admin", "用户 添加 bob 运营,市场")
    assert added.ok
    assert "运营" in added.text and "市场" in added.text
    assert english_words(added.text) == {"bob"}, added.text  # the name, as typed
    with db.session() as session:
        assert sorted(session.exec(select(User).where(User.name == "bob")).one().roles) == \
            ["market", "ops"]
    bound = _say(db, "admin", "绑定 jd 审批")
    assert bound.ok
    assert_chinese(bound.text, "审批")
    stranger = router.handle_text(db, Inbound("slack", "C1", "U404"), "列表")
    assert "用户 添加" in stranger.text and "user add" not in stranger.text
    help_zh = _say(db, "li.na", "帮助").text
    assert_chinese(help_zh, "认领 <编号>")
