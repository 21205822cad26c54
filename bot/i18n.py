"""User-facing texts in zh-CN and en. Every message a person can see goes through ``t``.

Features keep their catalogue next to their code and call ``register`` at import time.
"""

from __future__ import annotations

import re

_CATALOGUE: dict[str, dict[str, str]] = {}
LANGS = ("zh-CN", "en")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def register(messages: dict[str, dict[str, str]]) -> None:
    for key, texts in messages.items():
        missing = set(LANGS) - set(texts)
        if missing:
            raise ValueError(f"message {key!r} lacks {sorted(missing)}")
        _CATALOGUE[key] = texts


def normalise(lang: str | None) -> str:
    if not lang:
        return "zh-CN"
    return "en" if lang.lower().startswith("en") else "zh-CN"


def t(key: str, lang: str | None = None, **params: object) -> str:
    texts = _CATALOGUE.get(key)
    if texts is None:
        return key
    template = texts[normalise(lang)]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def looks_chinese(text: str) -> bool:
    return bool(_CJK.search(text or ""))


register(
    {
        # states
        "state.new": {"zh-CN": "待认领", "en": "New"},
        "state.claimed": {"zh-CN": "已认领", "en": "Claimed"},
        "state.drafting": {"zh-CN": "填报中", "en": "Drafting"},
        "state.in_approval": {"zh-CN": "审批中", "en": "In approval"},
        "state.approved": {"zh-CN": "已批准", "en": "Approved"},
        "state.submitting": {"zh-CN": "提交中", "en": "Submitting"},
        "state.submitted": {"zh-CN": "已提交", "en": "Submitted"},
        "state.in_review": {"zh-CN": "平台审核中", "en": "In platform review"},
        "state.accepted": {"zh-CN": "报名成功", "en": "Accepted"},
        "state.platform_rejected": {"zh-CN": "平台驳回", "en": "Rejected by platform"},
        "state.running": {"zh-CN": "活动进行中", "en": "Running"},
        "state.finished": {"zh-CN": "已结束", "en": "Finished"},
        "state.skipped": {"zh-CN": "已放弃", "en": "Skipped"},
        "state.expired": {"zh-CN": "已过期", "en": "Expired"},
        # actions (button labels)
        "action.claim": {"zh-CN": "认领", "en": "Claim"},
        "action.draft": {"zh-CN": "填报申报单", "en": "Fill declaration"},
        "action.request_approval": {"zh-CN": "提交审批", "en": "Request approval"},
        "action.approve": {"zh-CN": "批准", "en": "Approve"},
        "action.reject": {"zh-CN": "驳回", "en": "Reject"},
        "action.request_changes": {"zh-CN": "要求修改", "en": "Request changes"},
        "action.submit": {"zh-CN": "提交平台", "en": "Submit"},
        "action.skip": {"zh-CN": "放弃", "en": "Skip"},
        "action.release": {"zh-CN": "释放", "en": "Release"},
        "action.notice_new": {"zh-CN": "发现新活动", "en": "found the notice"},
        "action.notice_updated": {"zh-CN": "通知已更新", "en": "notice updated"},
        "action.mark_submitted": {"zh-CN": "已提交平台", "en": "submitted"},
        "action.review_started": {"zh-CN": "平台审核中", "en": "review started"},
        "action.accept": {"zh-CN": "平台通过", "en": "accepted"},
        "action.platform_reject": {"zh-CN": "平台驳回", "en": "rejected"},
        "action.submission_failed": {"zh-CN": "提交失败", "en": "submission failed"},
        "action.expire": {"zh-CN": "已过期", "en": "expired"},
        "action.redraft": {"zh-CN": "退回填报", "en": "back to drafting"},
        "action.start": {"zh-CN": "活动开始", "en": "started"},
        "action.finish": {"zh-CN": "活动结束", "en": "finished"},
        "action.open": {"zh-CN": "打开控制台", "en": "Open console"},
        # errors
        "err.not_found": {"zh-CN": "找不到任务 #{task_id}。", "en": "Task #{task_id} not found."},
        "err.forbidden_role": {
            "zh-CN": "你的角色({roles})不能执行「{action}」,需要:{allowed}。",
            "en": "Your role ({roles}) may not {action}; it needs: {allowed}.",
        },
        "err.already_claimed": {
            "zh-CN": "任务 #{task_id} 已被 {who} 认领。",
            "en": "Task #{task_id} is already claimed by {who}.",
        },
        "err.bad_state": {
            "zh-CN": "任务 #{task_id} 当前状态为「{state}」,不能「{action}」。",
            "en": "Task #{task_id} is {state}; it cannot {action} now.",
        },
        "err.not_claimant": {
            "zh-CN": "只有认领人 {who} 或经理可以操作任务 #{task_id}。",
            "en": "Only the claimant {who} or a manager may act on task #{task_id}.",
        },
        "err.stale_card": {
            "zh-CN": "这张卡片已过期,请看最新的卡片(任务 #{task_id})。",
            "en": "This card is out of date; see the latest card for task #{task_id}.",
        },
        "err.unknown_user": {
            "zh-CN": "还不认识你({ref})。请管理员执行:`user add <名字> <角色> --{chat} {ref}`。",
            "en": "I don't know you yet ({ref}). Ask an admin to run: "
            "`user add <name> <role> --{chat} {ref}`.",
        },
        "err.reason_required": {
            "zh-CN": "请写明原因,例如:{example}",
            "en": "Please give a reason, e.g. {example}",
        },
        "err.no_declaration": {
            "zh-CN": "任务 #{task_id} 还没有申报单,请先填报。",
            "en": "Task #{task_id} has no declaration yet; fill it first.",
        },
        "err.self_approval": {
            "zh-CN": "不能审批自己提交的申请。",
            "en": "You cannot approve your own request.",
        },
        "err.usage": {"zh-CN": "用法:{usage}", "en": "Usage: {usage}"},
        "err.bad_id": {
            "zh-CN": "「{value}」不是任务编号,请写数字,例如 认领 12。",
            "en": "'{value}' is not a task id; use a number, e.g. claim 12.",
        },
        "err.internal": {
            "zh-CN": "出错了,已记录(编号 {ref})。请稍后再试。",
            "en": "Something went wrong and was logged (ref {ref}). Please try again.",
        },
        # confirmations
        "ok.claim": {"zh-CN": "{who} 认领了任务 #{task_id}。", "en": "{who} claimed task #{task_id}."},
        "ok.transition": {
            "zh-CN": "任务 #{task_id}:{before} → {after}",
            "en": "Task #{task_id}: {before} → {after}",
        },
        "ok.duplicate": {
            "zh-CN": "已处理过(任务 #{task_id} 现为「{state}」)。",
            "en": "Already done (task #{task_id} is {state}).",
        },
    }
)
