"""DingTalk-specific texts (zh-CN and en)."""

from bot.i18n import register

register({
    "dingtalk.text_only": {
        "zh-CN": "我只看得懂文字命令,发送「帮助」查看用法。",
        "en": "I only understand text commands; send 'help' to see them.",
    },
    "dingtalk.open_task": {"zh-CN": "打开任务", "en": "Open task"},
    "dingtalk.more_lines": {
        "zh-CN": "……另有 {n} 行,请在控制台查看",
        "en": "… {n} more lines in the console",
    },
    "dingtalk.locked": {"zh-CN": "已处理,卡片已锁定", "en": "Decided; this card is locked"},
})
