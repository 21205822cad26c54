"""Console links to a declaration's form, hints and files; signed and expiring when the API is
protected by a token (``PROMOPILOT_API_TOKEN``)."""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import HTTPException

from bot.core.i18n import t
from bot.core.settings import get_settings

LINK_DAYS = 7


def _sign(secret: str, task_id: int, kind: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{task_id}:{kind}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def link(task_id: int, kind: str, settings=None) -> str:
    """A console URL for a declaration's form or files; signed and expiring when a token is set."""
    settings = settings or get_settings()
    url = f"{settings.base_url}/console/declarations/{task_id}/{kind}"
    if settings.api_token is not None:
        expires = int(time.time()) + LINK_DAYS * 86400
        url += f"?exp={expires}&sig={_sign(settings.api_token.get_secret_value(), task_id, kind, expires)}"
    return url


def verify(settings, task_id: int, kind: str, exp: int | None, sig: str | None) -> None:
    if settings.api_token is None:
        return
    if exp is None or sig is None or exp < time.time() or not hmac.compare_digest(
            sig, _sign(settings.api_token.get_secret_value(), task_id, kind, exp)):
        raise HTTPException(403, t("dform.link_expired", settings.language))
