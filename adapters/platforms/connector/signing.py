"""The open-platform request signature PDD documents (and Temu's partner API shares):
every parameter but ``sign`` — the system ones (``type``, ``client_id``/``app_key``,
``access_token``, ``timestamp``, ``data_type``) and the business ones — sorted by name,
each name followed by its value, the whole wrapped in the client secret on both ends,
MD5, upper-case hex. Nested values are signed as the JSON text that is sent."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def wire(value: Any) -> str:
    """A parameter's value as it goes on the wire (and into the signature)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def sign(params: dict[str, Any], secret: str) -> str:
    body = "".join(f"{key}{wire(params[key])}" for key in sorted(params)
                   if key != "sign" and params[key] is not None)
    return hashlib.md5(f"{secret}{body}{secret}".encode()).hexdigest().upper()
