"""Outbound HTTP for marketplace calls: timeouts, retries with backoff + jitter, 429 aware."""

from __future__ import annotations

import logging

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class RetryableHTTPError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableHTTPError | httpx.TransportError)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RetryableHTTPError) and exc.retry_after is not None:
        return min(exc.retry_after, 60.0)
    return wait_exponential_jitter(initial=0.5, max=20)(state)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("http retry", extra={"attempt": state.attempt_number, "error": repr(exc)[:300]})


def check(response: httpx.Response) -> httpx.Response:
    """Raise a retryable error for 429/5xx (honouring Retry-After), a plain one for 4xx."""
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        raise RetryableHTTPError(f"{response.request.method} {response.request.url} → "
                                 f"{response.status_code}", retry_after=seconds)
    response.raise_for_status()
    return response


def with_retries(attempts: int = 4):
    return retry(
        retry=retry_if_exception(_retryable), stop=stop_after_attempt(attempts),
        wait=_wait, before_sleep=_log_retry, reraise=True,
    )
