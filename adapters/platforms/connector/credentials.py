"""Each shop's marketplace credentials, in the database, encrypted at rest.

The values (client id and secret, access and refresh tokens …) are one JSON object sealed
with Fernet under the key(s) in ``PROMOPILOT_SECRET_KEY`` — several keys separated by
commas, the newest first (``MultiFernet``). A token sealed with an older key is re-sealed
with the newest when it is read, so rotating is: put the new key first, keep the old one
until ``promopilot platforms credentials rotate`` (or every shop's next call) has re-sealed
everything, then drop it. Connectors read credentials per call through a short cache, so
credentials set with the CLI (or refreshed tokens) reach a running server without a
restart. The values are never logged; only field names are ever shown.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlmodel import Session, select

from storage.db import Database
from storage.models_connectors import PlatformCredential
from storage.types import utcnow

log = logging.getLogger(__name__)
ENV = "PROMOPILOT_SECRET_KEY"
CACHE_SECONDS = 30.0


class SecretKeyMissing(Exception):
    """``PROMOPILOT_SECRET_KEY`` is not set or holds no usable Fernet key."""


class SealedWithUnknownKey(Exception):
    """A stored token was sealed with a key that is not in ``PROMOPILOT_SECRET_KEY``."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, keys: str | None = None) -> None:
        raw = keys if keys is not None else os.environ.get(ENV, "")
        parts = [k.strip() for k in raw.replace(";", ",").split(",") if k.strip()]
        if not parts:
            raise SecretKeyMissing(f"{ENV} is not set")
        try:
            self.fernets = [Fernet(k.encode()) for k in parts]
        except (ValueError, TypeError) as exc:
            raise SecretKeyMissing(f"{ENV} holds a key that is not a Fernet key "
                                   "(32 url-safe base64-encoded bytes)") from exc
        self.multi = MultiFernet(self.fernets)

    def seal(self, values: dict) -> str:
        return self.multi.encrypt(json.dumps(values, ensure_ascii=False).encode()).decode()

    def open(self, token: str) -> tuple[dict, bool]:
        """The values, and whether the token was sealed with an older key."""
        try:
            data = self.multi.decrypt(token.encode())
        except InvalidToken:
            raise SealedWithUnknownKey("stored credentials were sealed with a key that is "
                                       f"not in {ENV}") from None
        try:
            self.fernets[0].decrypt(token.encode())
            stale = False
        except InvalidToken:
            stale = True
        return json.loads(data), stale

    def rotate(self, token: str) -> str:
        try:
            return self.multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise SealedWithUnknownKey("stored credentials were sealed with a key that is "
                                       f"not in {ENV}") from None


class CredentialStore:
    def __init__(self, db: Database, box: Callable[[], SecretBox] = SecretBox,
                 cache_seconds: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.box = box
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def get(self, platform: str, shop: str, session: Session | None = None) -> dict | None:
        """The shop's credentials, or None when none are stored (``session``: read through
        the caller's transaction instead of a new one)."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get((platform, shop))
            if hit and hit[0] > now:
                return dict(hit[1])
        if session is not None:
            values = self._read(session, platform, shop)
        else:
            with self.db.session() as own:
                values = self._read(own, platform, shop)
        if values is None:
            return None
        with self._lock:
            self._cache[(platform, shop)] = (now + self.cache_seconds, dict(values))
        return values

    def _read(self, session: Session, platform: str, shop: str) -> dict | None:
        row = session.exec(select(PlatformCredential).where(
            PlatformCredential.platform == platform, PlatformCredential.shop == shop)).first()
        if row is None:
            return None
        box = self.box()
        values, stale = box.open(row.secret)
        if stale:  # sealed with an older key: re-seal with the newest now
            row.secret, row.updated_at = box.rotate(row.secret), utcnow()
            session.add(row)
            log.info("credentials re-sealed with the newest key",
                     extra={"platform": platform, "shop": shop})
        return values

    def set(self, platform: str, shop: str, values: dict, *, merge: bool = True) -> list[str]:
        """Store (or merge into) the shop's credentials; returns the field names stored."""
        box = self.box()
        with self.db.session() as session:
            row = session.exec(select(PlatformCredential).where(
                PlatformCredential.platform == platform,
                PlatformCredential.shop == shop)).first()
            current = box.open(row.secret)[0] if row is not None and merge else {}
            merged = {**current, **{k: v for k, v in values.items() if v not in (None, "")}}
            if row is None:
                row = PlatformCredential(platform=platform, shop=shop, secret=box.seal(merged))
            else:
                row.secret, row.updated_at = box.seal(merged), utcnow()
            session.add(row)
        self.forget(platform, shop)
        log.info("credentials stored", extra={"platform": platform, "shop": shop,
                                              "fields": sorted(merged)})
        return sorted(merged)

    def forget(self, platform: str, shop: str) -> None:
        with self._lock:
            self._cache.pop((platform, shop), None)

    def listing(self) -> list[dict]:
        """Every stored shop with the names of its fields (never the values)."""
        box = self.box()
        with self.db.session() as session:
            rows = list(session.exec(select(PlatformCredential)
                                     .order_by(PlatformCredential.platform,
                                               PlatformCredential.shop)))
        out = []
        for row in rows:
            try:
                fields, readable = sorted(box.open(row.secret)[0]), True
            except SealedWithUnknownKey:
                fields, readable = [], False
            out.append({"platform": row.platform, "shop": row.shop, "fields": fields,
                        "readable": readable, "updated_at": row.updated_at})
        return out

    def rotate_all(self) -> int:
        """Re-seal every stored token with the newest key; returns how many."""
        box = self.box()
        n = 0
        with self.db.session() as session:
            for row in session.exec(select(PlatformCredential)):
                row.secret, row.updated_at = box.rotate(row.secret), utcnow()
                session.add(row)
                n += 1
        with self._lock:
            self._cache.clear()
        return n
