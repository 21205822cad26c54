"""Structured logs: one line per event, extra fields included, secrets redacted."""

from __future__ import annotations

import json
import logging
import re

SECRET_KEYS = re.compile(r"(token|secret|password|authorization|signature|encrypt)", re.I)
SECRET_VALUES = re.compile(r"(xox[abposr]-[\w-]+|Bearer\s+[\w.\-~+/]+=*|t-[\w]{20,}"
                           # a Fernet token (sealed credentials); token=… in a query or form
                           r"|gAAAAA[\w-]{20,}=*"
                           r"|(?<=access_token=)[^&\s\"']+|(?<=refresh_token=)[^&\s\"']+"
                           r"|(?<=client_secret=)[^&\s\"']+|(?<=app_secret=)[^&\s\"']+)")
_STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact(key: str, value: object) -> object:
    if SECRET_KEYS.search(key):
        return "***"
    if isinstance(value, str):
        return SECRET_VALUES.sub("***", value)
    return value


class StructuredFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: redact(k, v) for k, v in record.__dict__.items() if k not in _STD}
        message = SECRET_VALUES.sub("***", record.getMessage())
        if self.as_json:
            payload = {"ts": self.formatTime(record), "level": record.levelname,
                       "logger": record.name, "msg": message, **extra}
            if record.exc_info:
                payload["exc"] = self.formatException(record.exc_info)
            return json.dumps(payload, ensure_ascii=False, default=str)
        tail = " ".join(f"{k}={v}" for k, v in extra.items())
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {message}"
        line = f"{line} {tail}" if tail else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(StructuredFormatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default",
                  "apscheduler.scheduler", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
