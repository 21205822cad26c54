"""Slack-only texts (zh-CN and en); registered on import."""

from __future__ import annotations

from bot.i18n import register

register({
    "slack.more": {"zh-CN": "在控制台查看全部", "en": "see all in the console"},
    "slack.more_rows": {"zh-CN": "还有 {n} 行", "en": "{n} more rows"},
    "slack.truncated": {"zh-CN": "内容过长,已截断。", "en": "Too long for Slack; shortened."},
    "slack.locked": {"zh-CN": "🔒 已完成,卡片已锁定", "en": "🔒 Decided; this card is locked"},
    "slack.modal_title": {"zh-CN": "填写原因", "en": "Give a reason"},
    "slack.modal_submit": {"zh-CN": "提交", "en": "Send"},
    "slack.modal_close": {"zh-CN": "取消", "en": "Cancel"},
    "slack.modal_label": {"zh-CN": "原因 / 意见", "en": "Reason / comment"},
    "slack.modal_for": {"zh-CN": "「{action}」任务 #{task_id}", "en": "{action}: task #{task_id}"},
    "slack.reason_empty": {"zh-CN": "请写明原因。", "en": "Please write a reason."},
    "slack.unknown_user": {
        "zh-CN": "还不认识你({ref})。请 PromoPilot 管理员执行:"
                 "`/promo user add {name} <角色> --slack {ref}`(角色:{roles})。",
        "en": "I don't know you yet ({ref}). Ask a PromoPilot admin to run: "
              "`/promo user add {name} <role> --slack {ref}` (roles: {roles}).",
    },
})
