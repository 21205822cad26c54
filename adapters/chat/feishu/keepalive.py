"""lark-oapi's HTTP calls over kept-alive connections.

The SDK's transport calls ``requests.request`` for every API call: a new ``requests.Session``
each time, so a new TCP (and, against Feishu, TLS) connection per message sent or updated,
and the session's set-up on top — a tenth of a process's CPU while cards are updated under
load (docs/benchmarks.md). ``install()`` hands the transport a stand-in whose ``request``
goes through one ``requests.Session`` per thread (the SDK is called from worker threads;
a session is not meant to be shared between threads), with the same arguments, timeout
included. Everything else the transport module uses from ``requests`` is passed through.
"""

from __future__ import annotations

import threading
from typing import Any

import requests

_local = threading.local()


class _KeptAlive:
    """Looks like the ``requests`` module to lark-oapi's transport."""

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)

    @staticmethod
    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        session = getattr(_local, "session", None)
        if session is None:
            session = _local.session = requests.Session()
        return session.request(method, url, **kwargs)


def install() -> None:
    """Idempotent; the transport module is imported here (it is light: no API services)."""
    from lark_oapi.core.http import transport

    if not isinstance(transport.requests, _KeptAlive):
        transport.requests = _KeptAlive()
