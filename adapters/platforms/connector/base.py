"""The base every marketplace connector builds on (docs/connectors.md).

A platform module subclasses ``ConnectorBase`` and writes only what is the platform's own:
``_call`` (one signed request and its error codes), ``_list_campaigns``, ``_eligible``,
``_enrol``, ``_status``, ``_cancel`` and, where the platform has no idempotency key of its
own, ``_recover`` (find an enrolment a lost answer may have made). The base gives it:

- retries with backoff and jitter for what ``errors`` calls retryable, the platform's wait
  (Retry-After) honoured, never for a bad signature or an invalid parameter;
- the enrolment ledger: a retry, a crash or a second ``submit`` with the same idempotency
  key never enrols twice (the key → the platform's request id / trace code / activity ids);
- health (last call, last error) for ``promopilot platforms``;
- the ``NoticeSource`` face (campaigns and invitations → notices for the watcher) and the
  ``Submitter`` face (eligibility first, ineligible SKUs not sent; enrol; status).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from adapters.platforms.connector.credentials import CredentialStore
from adapters.platforms.connector.errors import (
    ConnectorError,
    Malformed,
    NoCredentials,
    NotEligible,
    Unavailable,
    Unsupported,
)
from adapters.platforms.connector.ledger import FINAL, Health, Ledger, as_enrolment
from bot.core.i18n import t
from bot.core.ports import (
    OPERATIONS,
    Candidate,
    Enrolment,
    Notice,
    PlatformCampaign,
    ReviewStatus,
    SubmissionItem,
    SubmitReceipt,
)
from bot.declarations import platform_gate
from storage.db import Database
from storage.models_data import PlatformItem

log = logging.getLogger(__name__)
QUICK: contextvars.ContextVar[bool] = contextvars.ContextVar("connector_quick", default=False)
# Inside an action the caller's session: a second connection would wait for the action's own
# transaction (SQLite takes the write lock at BEGIN), so quick calls read through this one.
SESSION: contextvars.ContextVar[Any] = contextvars.ContextVar("connector_session",
                                                              default=None)
CENT = Decimal("0.01")


class ConnectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt setting stops start-up

    name: str
    kind: str
    shop: str
    platform: str | None = None  # default: the kind's platform
    gateway: str = ""  # default: the kind's production gateway
    source: bool = True  # list campaigns and invitations as notices
    submitter: bool = True  # be the platform's ``api`` submission channel
    interval_seconds: float = 600.0
    timeout_seconds: float = 10.0
    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    max_wait: float = 60.0  # the longest platform-asked wait honoured
    options: dict[str, Any] = Field(default_factory=dict)


def fen(value: Decimal | None) -> int | None:
    """Yuan (Decimal) → integer fen, as most Chinese open platforms take money."""
    return None if value is None else int((value * 100).quantize(Decimal(1), ROUND_HALF_UP))


def yuan(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return (Decimal(str(value)) / 100).quantize(CENT)
    except ArithmeticError:
        raise Malformed(f"not an amount in fen: {value!r}") from None


def transport(platform: str, exc: httpx.HTTPError) -> ConnectorError:
    """A transport failure as a retryable connector error (timeouts, refused connections)."""
    what = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    return Unavailable(what, platform=platform)


class ConnectorBase:
    kind = ""
    platform = ""
    default_gateway = ""
    capability = "api_submit"
    operations: frozenset[str] = frozenset(OPERATIONS)
    # (field, secret): what ``promopilot platforms credentials set`` asks for
    credential_fields: tuple[tuple[str, bool], ...] = ()

    def __init__(self, config: ConnectorConfig, db: Database, credentials: CredentialStore,
                 *, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.name, self.shop = config.name, config.shop
        self.platform = config.platform or type(self).platform
        self.gateway = (config.gateway or self.default_gateway).rstrip("/")
        self.interval = config.interval_seconds  # the watcher's pace for this source
        self.db = db
        self.credentials = credentials
        self.client = client or httpx.Client(timeout=httpx.Timeout(
            config.timeout_seconds, connect=min(5.0, config.timeout_seconds)))
        self.sleep = sleep
        self.ledger = Ledger(db, self.name)
        self.health = Health(db, self.name, self.platform, self.shop)

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        """A session to read with: the action's own inside a quick call, else a new one."""
        outer = SESSION.get()
        if outer is not None:
            yield outer
            return
        with self.db.session() as session:
            yield session

    def secrets(self) -> dict:
        values = self.credentials.get(self.platform, self.shop, session=SESSION.get())
        if not values:
            raise NoCredentials(f"none stored for shop {self.shop!r}", platform=self.platform)
        return values

    def request_timeout(self) -> Any:
        """The timeout of one request: short inside an action (quick), else the client's."""
        return httpx.Timeout(min(3.0, self.config.timeout_seconds)) if QUICK.get() \
            else httpx.USE_CLIENT_DEFAULT

    def _require(self, operation: str) -> None:
        if operation not in self.operations:
            raise Unsupported(operation, platform=self.platform)

    def run(self, operation: str, fn: Callable[[], Any], *, attempts: int | None = None) -> Any:
        """``fn`` with retries for retryable errors; health recorded (not in quick mode)."""
        config = self.config

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, ConnectorError) and exc.retry_after is not None:
                return min(max(exc.retry_after, 0.0), config.max_wait)
            return wait_exponential_jitter(initial=config.backoff_initial,
                                           max=config.backoff_max)(state)

        def before_sleep(state: RetryCallState) -> None:
            log.warning("connector retry", extra={
                "connector": self.name, "operation": operation, "attempt": state.attempt_number,
                "error": str(state.outcome.exception() if state.outcome else "")[:300]})

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, ConnectorError) and e.retry),
            stop=stop_after_attempt(attempts or config.attempts), wait=wait,
            sleep=self.sleep, reraise=True, before_sleep=before_sleep)
        quick = QUICK.get()
        try:
            result = retrying(fn)
        except Exception as exc:
            if not isinstance(exc, ConnectorError):
                log.exception("connector failed unexpectedly",
                              extra={"connector": self.name, "operation": operation})
            else:
                log.warning("connector call failed", extra={
                    "connector": self.name, "operation": operation, "kind": exc.kind,
                    "code": exc.code, "error": str(exc)[:300]})
            if not quick:
                self.health.failed(operation, exc)
            raise
        if not quick:
            self.health.ok(operation)
        return result

    def platform_ids(self, skus: list[str]) -> dict[str, tuple[str, str]]:
        """Our SKU → (the platform's item/goods id, its SKU id) from the data pool."""
        with self.reading() as session:
            rows = session.exec(select(PlatformItem).where(
                PlatformItem.platform == self.platform, PlatformItem.sku.in_(skus))).all()
        return {r.sku: (r.item_id, r.sku_id or r.item_id) for r in rows if r.item_id}

    def reason(self, key: str, **params: Any) -> str:
        """A reason PromoPilot gives on the platform's behalf, in the team's language."""
        return t(key, None, platform=self.platform, **params)

    # -- the Connector port -----------------------------------------------------------------

    def list_campaigns(self) -> list[PlatformCampaign]:
        self._require("list_campaigns")
        return self.run("list_campaigns", self._list_campaigns)

    def eligible_products(self, campaign_id: str, skus: list[str], *,
                          quick: bool = False) -> list[Candidate]:
        """The platform's answer for every SKU asked (one it did not list: not eligible).
        ``quick``: one attempt, no token refresh, no health write (inside an action)."""
        self._require("eligible_products")
        token = QUICK.set(quick)
        try:
            found = self.run("eligible_products", lambda: self._eligible(campaign_id, skus),
                             attempts=1 if quick else None)
        finally:
            QUICK.reset(token)
        by_sku = {c.sku: c for c in found}
        return [by_sku.get(s) or Candidate(s, False, "NOT_LISTED",
                                           self.reason("conn.reason.not_listed"))
                for s in skus]

    def quick_check(self, session: Any, campaign_id: str, skus: list[str]) -> list[Candidate]:
        """For the pre-check guard, inside an action: one short attempt, through its session."""
        token = SESSION.set(session)
        try:
            return self.eligible_products(campaign_id, skus, quick=True)
        finally:
            SESSION.reset(token)

    def enrol(self, campaign_id: str, items: list[SubmissionItem],
              idempotency_key: str) -> Enrolment:
        self._require("enrol")
        row = self.ledger.by_key(idempotency_key)
        if row is not None and row.status != "sending":
            log.info("enrolment already made; not sent again", extra={
                "connector": self.name, "key": idempotency_key, "reference": row.reference})
            return as_enrolment(row)
        if row is None:
            self.ledger.start(idempotency_key, campaign_id, items)
        # Sent before and the outcome never known (lost answer, crash): look first.
        tries = [1 if row is not None and (row.raw or {}).get("sent") else 0]

        def attempt() -> Enrolment:
            if tries[0]:
                found = self._recover(campaign_id, items, idempotency_key)
                if found is not None:
                    log.info("enrolment found on the platform; not sent again", extra={
                        "connector": self.name, "key": idempotency_key,
                        "reference": found.reference})
                    return found
            tries[0] += 1
            self.ledger.note(idempotency_key, sent=True)  # from now on it may exist
            return self._enrol(campaign_id, items, idempotency_key)

        enrolment = self.run("enrol", attempt)
        self.ledger.save(idempotency_key, enrolment)
        return enrolment

    def enrolment_status(self, reference: str) -> Enrolment:
        self._require("enrolment_status")
        row = self.ledger.by_reference(reference)
        if row is not None and row.status in FINAL:
            return as_enrolment(row)
        enrolment = self.run("enrolment_status", lambda: self._status(reference, row))
        if row is not None:
            self.ledger.save(row.idempotency_key, enrolment)
        return enrolment

    def cancel(self, reference: str) -> None:
        self._require("cancel")
        row = self.ledger.by_reference(reference)
        self.run("cancel", lambda: self._cancel(reference, row))
        if row is not None:
            self.ledger.save(row.idempotency_key, Enrolment(reference, "cancelled",
                                                            as_enrolment(row).items))

    # -- NoticeSource -----------------------------------------------------------------------

    def fetch(self) -> list[Notice]:
        return [c.notice(self.platform) for c in self.list_campaigns()]

    # -- Submitter --------------------------------------------------------------------------

    def submit(self, campaign_external_id: str, items: list[SubmissionItem],
               idempotency_key: str) -> SubmitReceipt:
        prior = self.ledger.by_key(idempotency_key)
        if prior is None:
            ineligible: dict[str, str] = {}
            if "eligible_products" in self.operations:
                answers = self.eligible_products(campaign_external_id, [i.sku for i in items])
                with self.db.session() as session:
                    platform_gate.store(session, self.platform, campaign_external_id, answers,
                                        self.name)
                ineligible = {c.sku: c.reason_text or c.reason_code or "—" for c in answers
                              if not c.eligible}
                if len(ineligible) == len(items):  # nothing to send
                    raise NotEligible("; ".join(f"{k}: {v}" for k, v in ineligible.items()),
                                      platform=self.platform)
            chosen = [i for i in items if i.sku not in ineligible]
            self.ledger.start(idempotency_key, campaign_external_id, chosen)
            self.ledger.note(idempotency_key, ineligible=ineligible)
        else:  # submitted before with this key: the same SKUs, never a second enrolment
            ineligible = dict((prior.raw or {}).get("ineligible") or {})
            chosen = [i for i in items if i.sku not in ineligible]
        enrolment = self.enrol(campaign_external_id, chosen, idempotency_key)
        return SubmitReceipt(reference=enrolment.reference, status=enrolment.status,
                             raw={"connector": self.name, "enrolment": enrolment.raw,
                                  "ineligible": ineligible})

    def status(self, reference: str) -> ReviewStatus:
        enrolment = self.enrolment_status(reference)
        return ReviewStatus(status=enrolment.status, items=enrolment.items, raw=enrolment.raw)

    # -- what a platform module writes ------------------------------------------------------

    def _list_campaigns(self) -> list[PlatformCampaign]:
        raise Unsupported("list_campaigns", platform=self.platform)

    def _eligible(self, campaign_id: str, skus: list[str]) -> list[Candidate]:
        raise Unsupported("eligible_products", platform=self.platform)

    def _enrol(self, campaign_id: str, items: list[SubmissionItem], key: str) -> Enrolment:
        raise Unsupported("enrol", platform=self.platform)

    def _recover(self, campaign_id: str, items: list[SubmissionItem],
                 key: str) -> Enrolment | None:
        """An enrolment an earlier attempt with ``key`` made, or None. Platforms whose enrol
        call takes the key itself (a request id) need not look: sending again is safe."""
        return None

    def _status(self, reference: str, row: Any) -> Enrolment:
        raise Unsupported("enrolment_status", platform=self.platform)

    def _cancel(self, reference: str, row: Any) -> None:
        raise Unsupported("cancel", platform=self.platform)
