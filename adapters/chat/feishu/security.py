"""Inbound verification for Feishu HTTP callbacks: decrypt, token, signature, freshness.

Feishu signs with ``sha256(timestamp + nonce + encrypt_key + body)``. lark-oapi checks that
with ``!=`` and no age limit, so we do it ourselves: a freshness window on the timestamp
(a replayed capture is refused) and ``hmac.compare_digest``. Decryption uses the SDK's
``AESCipher`` (AES-256-CBC, key = sha256(encrypt key)).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from lark_oapi.core.utils import AESCipher

from adapters.chat.feishu.settings import FeishuSettings

TS, NONCE, SIGNATURE = "x-lark-request-timestamp", "x-lark-request-nonce", "x-lark-signature"


class Rejected(Exception):
    """The request is refused; ``status`` is the HTTP answer, the message is logged only."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@lru_cache(maxsize=4)
def _cipher(key: str) -> AESCipher:
    """One cipher per encrypt key (its AES key is a hash of it), not one per request."""
    return AESCipher(key)


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def token_of(payload: dict[str, Any]) -> str:
    """v2 events (and card.action.trigger) carry it in ``header``; v1 and the challenge on top."""
    header = payload.get("header")
    if isinstance(header, dict) and "token" in header:
        return str(header.get("token") or "")
    return str(payload.get("token") or "")


def open_request(raw: bytes, headers: Mapping[str, str], settings: FeishuSettings,
                 now: float | None = None) -> dict[str, Any]:
    """The verified, decrypted payload; raises ``Rejected`` otherwise."""
    token = settings.verification_token.get_secret_value()
    key = settings.encrypt_key.get_secret_value()
    if not token and not key:
        raise Rejected(403, "FEISHU_VERIFICATION_TOKEN / FEISHU_ENCRYPT_KEY not set")
    try:
        outer = json.loads(raw)
    except ValueError:
        raise Rejected(400, "body is not JSON") from None
    if not isinstance(outer, dict):
        raise Rejected(400, "body is not a JSON object")
    encrypted = outer.get("encrypt")
    if encrypted:
        if not key:
            raise Rejected(400, "encrypted payload but FEISHU_ENCRYPT_KEY is not set")
        try:
            payload = json.loads(_cipher(key).decrypt_str(str(encrypted)))
        except Exception:  # noqa: BLE001 - any failure to decrypt is the sender's fault
            raise Rejected(400, "payload does not decrypt with our encrypt key") from None
        if not isinstance(payload, dict):
            raise Rejected(400, "decrypted payload is not a JSON object")
    elif key:
        raise Rejected(401, "plain payload although an encrypt key is configured")
    else:
        payload = outer
    challenge = payload.get("type") == "url_verification"
    if token and not hmac.compare_digest(token_of(payload).encode(), token.encode()):
        raise Rejected(401, "verification token mismatch")
    if key and not challenge:  # Feishu does not sign the URL-verification request
        check_signature(raw, headers, key, settings.signature_window_seconds, now)
    return payload


def check_signature(raw: bytes, headers: Mapping[str, str], key: str, window: int,
                    now: float | None = None) -> None:
    timestamp, nonce = _header(headers, TS), _header(headers, NONCE)
    given = _header(headers, SIGNATURE)
    if not (timestamp and nonce and given):
        raise Rejected(401, "signature headers missing")
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        raise Rejected(401, "timestamp is not a number") from None
    if age > window:
        raise Rejected(401, f"timestamp outside the {window}s window")
    expected = signature(timestamp, nonce, key, raw)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Rejected(401, "signature mismatch")
