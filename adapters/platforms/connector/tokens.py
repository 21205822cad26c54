"""Refreshing an expired access token, once, the way PDD's client does it — shared by the
connectors whose platform has a refresh call (JD's OAuth, TOP's token refresh, 抖店's
``token.refresh``).

``TokenKeeper.call(once)`` runs ``once(secrets)``; on ``TokenExpired`` it swaps the refresh
token for new tokens (under a lock: several threads waiting on the same expired token
refresh it once), stores them encrypted for the shop and runs ``once`` again. A second
expiry right after a refresh, a missing refresh token or a refused refresh is
``Unauthorized`` (someone must authorise the shop again); a refresh that meets a timeout or
a rate limit stays retryable. Inside an action (quick mode) nothing is refreshed: a refresh
writes, and the caller degrades instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from adapters.platforms.connector.base import QUICK
from adapters.platforms.connector.errors import ConnectorError, TokenExpired, Unauthorized

log = logging.getLogger(__name__)
T = TypeVar("T")


class TokenKeeper:
    def __init__(self, connector: Any, refresh: Callable[[dict], dict]) -> None:
        """``refresh(current secrets)`` asks the platform for new tokens and returns
        ``{"access_token", "refresh_token"?, "expires_in"?}``."""
        self.c = connector
        self._refresh_call = refresh
        self._lock = threading.Lock()
        self.refreshes = 0

    def call(self, once: Callable[[dict], T]) -> T:
        secrets = self.c.secrets()
        try:
            return once(secrets)
        except TokenExpired:
            if QUICK.get():
                raise
            self.refresh(secrets)
            try:
                return once(self.c.secrets())
            except TokenExpired as again:
                raise Unauthorized("the access token expired again right after a refresh",
                                   platform=self.c.platform, code=again.code) from None

    def refresh(self, used: dict) -> None:
        with self._lock:
            self.c.credentials.forget(self.c.platform, self.c.shop)
            current = self.c.secrets()
            if current.get("access_token") != used.get("access_token"):
                return  # another thread refreshed meanwhile
            if not current.get("refresh_token"):
                raise Unauthorized("the access token expired and no refresh token is stored",
                                   platform=self.c.platform)
            try:
                answer = self._refresh_call(current)
            except ConnectorError as exc:
                if exc.retry:
                    raise  # a timeout or a rate limit: the whole call is tried again
                raise Unauthorized(f"token refresh refused: {exc.detail}",
                                   platform=self.c.platform, code=exc.code) from None
            token = answer.get("access_token")
            if not token:
                raise Unauthorized("token refresh answered without an access token",
                                   platform=self.c.platform)
            fresh = {"access_token": str(token),
                     "refresh_token": str(answer.get("refresh_token")
                                          or current["refresh_token"])}
            try:
                if answer.get("expires_in"):
                    fresh["expires_at"] = str(int(time.time()) + int(answer["expires_in"]))
            except (TypeError, ValueError):
                pass  # an odd expiry never loses the new token
            self.c.credentials.set(self.c.platform, self.c.shop, fresh)
            self.refreshes += 1
            log.info("access token refreshed", extra={"connector": self.c.name,
                                                      "shop": self.c.shop})
