"""Button payloads carry only what identifies the decision: ``(action, id, version)``.

Size-checked like aiogram's CallbackData: Slack allows 2,000 chars in a value and 255 in an
action_id, Telegram 64 bytes; we keep to 64 so every platform can carry it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "pp1"
MAX_BYTES = 64
_ACTION = re.compile(r"[a-z][a-z0-9_]{0,40}")
_NUMBER = re.compile(r"[0-9]{1,10}")


class BadCallback(ValueError):
    pass


@dataclass(frozen=True)
class CallbackData:
    action: str
    task_id: int
    version: int

    def pack(self) -> str:
        if "|" in self.action or not self.action:
            raise BadCallback(f"bad action name {self.action!r}")
        packed = f"{PREFIX}|{self.action}|{self.task_id}|{self.version}"
        if len(packed.encode()) > MAX_BYTES:
            raise BadCallback(f"callback data over {MAX_BYTES} bytes: {packed!r}")
        return packed

    @classmethod
    def unpack(cls, raw: str) -> CallbackData:
        parts = str(raw or "").split("|")
        if len(parts) != 4 or parts[0] != PREFIX:
            raise BadCallback(f"not a PromoPilot button: {str(raw)[:80]!r}")
        # ASCII digits that fit the database's integers ("²", "5_000" or 20 digits would
        # reach a query and fail there); an action is a plain name.
        if not (_ACTION.fullmatch(parts[1]) and _NUMBER.fullmatch(parts[2])
                and _NUMBER.fullmatch(parts[3])) or int(parts[2]) >= 2**31 \
                or int(parts[3]) >= 2**31:
            raise BadCallback(f"malformed button value: {str(raw)[:80]!r}")
        return cls(parts[1], int(parts[2]), int(parts[3]))
