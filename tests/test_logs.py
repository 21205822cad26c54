"""Structured logs keep secrets out and context in."""

from __future__ import annotations

import json
import logging

from bot.core.logs import StructuredFormatter


def record(msg: str, **extra) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "t", "levelname": "INFO", "levelno": 20, "msg": msg})
    rec.__dict__.update(extra)
    return rec


def test_tokens_are_redacted_in_messages_and_fields():
    fmt = StructuredFormatter(as_json=True)
    line = json.loads(fmt.format(record(
        "calling with xoxb-123-456-abcdef and Bearer abc.def",
        app_secret="hunter2", authorization="Bearer zzz", task_id=12,
        error="401 for token xoxp-9-9")))
    text = json.dumps(line)
    for secret in ("xoxb-123", "abc.def", "hunter2", "zzz", "xoxp-9"):
        assert secret not in text
    assert line["task_id"] == 12 and line["app_secret"] == "***"


def test_plain_format_keeps_context():
    line = StructuredFormatter(as_json=False).format(record("transition", task_id=3, to="claimed"))
    assert "transition" in line and "task_id=3" in line and "to=claimed" in line
