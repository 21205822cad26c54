"""RPA webhook: a signed JSON job for a robot (影刀, UiPath …) and the check of its callback.

Signature: hex HMAC-SHA256 over ``"{timestamp}.{body}"`` with the shared secret, sent as
``X-PromoPilot-Timestamp`` and ``X-PromoPilot-Signature``; the robot signs its callback the
same way. A timestamp outside five minutes is refused, so a captured callback can't be replayed
later. The job carries the enrolment's idempotency key, so a robot that runs a job twice
enrols once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import httpx
from pydantic import BaseModel

from adapters.platforms.http_util import check, with_retries
from adapters.platforms.submitters.base import NotConfigured, item_dicts, waiting
from bot.core.ports import SubmissionItem, SubmitReceipt

WINDOW_SECONDS = 300


class RpaConfig(BaseModel):
    url: str = ""
    secret_env: str = "PROMOPILOT_RPA_SECRET"
    timeout_seconds: float = 10.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float | None = None) -> bool:
    if not secret or not timestamp or not signature:
        return False
    try:
        age = abs((now or time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= WINDOW_SECONDS and hmac.compare_digest(sign(secret, timestamp, body), signature)


class RpaWebhookSubmitter:
    capability = "api_submit"
    channel = "rpa"

    def __init__(self, config: RpaConfig, platform: str, secret: str | None,
                 callback_url: str, client: httpx.Client | None = None) -> None:
        if not config.url or not secret:
            raise NotConfigured("rpa: url and secret are required")
        self.config, self.platform, self.secret = config, platform, secret
        self.callback_url = callback_url
        self.client = client or httpx.Client(timeout=config.timeout_seconds)

    @with_retries()
    def _post(self, body: bytes) -> None:
        ts = str(int(time.time()))
        check(self.client.post(self.config.url, content=body, headers={
            "Content-Type": "application/json", "X-PromoPilot-Timestamp": ts,
            "X-PromoPilot-Signature": sign(self.secret, ts, body)}))

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        job_id = f"{idempotency_key}.{secrets.token_hex(4)}"  # one per hand-off to the robot
        job = {"job_id": job_id, "idempotency_key": idempotency_key, "platform": self.platform,
               "campaign_id": campaign_external_id, "items": item_dicts(items),
               "callback_url": self.callback_url}
        self._post(json.dumps(job, ensure_ascii=False, sort_keys=True).encode())
        return waiting(job_id, job_id=job_id, robot=self.config.url)

    def status(self, reference: str):  # the robot calls back
        raise NotImplementedError("the RPA robot reports through its callback")
