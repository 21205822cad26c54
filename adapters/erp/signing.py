"""Request signing for the ERPs that need it: 聚水潭's open platform (openapi.jushuitan.com).

A 聚水潭 call is a form-encoded POST of the system parameters (``app_key``,
``access_token``, ``timestamp`` in Unix seconds, ``charset``, ``version`` 2), the business
parameters as one JSON string (``biz``) and ``sign``: the MD5, in lower-case hex, of the
app secret followed by every other parameter as name then value, sorted by name, empty
values left out. The secret itself is never sent.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

JST_VERSION = "2"


def jushuitan_sign(params: dict[str, str], secret: str) -> str:
    """``md5(secret + k1 + v1 + k2 + v2 …)`` over the sorted names, without ``sign``."""
    text = secret + "".join(f"{name}{value}" for name, value in sorted(params.items())
                            if name != "sign" and value not in (None, ""))
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def jushuitan_form(biz: dict[str, Any], *, app_key: str, app_secret: str, access_token: str,
                   now: float | None = None) -> dict[str, str]:
    """The form of one call, signed; built again for every attempt (the timestamp ages)."""
    params = {"app_key": app_key, "access_token": access_token,
              "timestamp": str(int(time.time() if now is None else now)), "charset": "utf-8",
              "version": JST_VERSION,
              "biz": json.dumps(biz, ensure_ascii=False, separators=(",", ":"), default=str)}
    params["sign"] = jushuitan_sign(params, app_secret)
    return params
