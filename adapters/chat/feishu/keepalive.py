"""lark-oapi's HTTP calls over kept-alive connections.

The SDK's transport calls ``requests.request`` for every API call: a new ``requests.Session``
each time, so a new TCP (and, against Feishu, TLS) connection per message sent or updated,
and the session's set-up on top — a tenth of a process's CPU while cards are updated under
load (docs/benchmarks.md). ``install()`` hands the transport a stand-in whose ``request``
goes through one ``requests.Session`` per thread (the SDK is called from worker threads;
a session is not meant to be shared between threads), with the same arguments, timeout
included. Everything else the transport module uses from ``requests`` is passed through.

``requests`` also reads the environment on every call (proxies, ``no_proxy``, CA bundle: a
scan of ``os.environ`` and a proxy-bypass check, an eighth of an update's CPU). Here it is
read once per host and thread, when the first call goes there, and then passed as the
call's arguments: a proxy or CA bundle set in the environment still applies; one changed
while the process runs does not (restart it, as for any setting).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

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
            session.trust_env = False  # read once per host below, not on every call
            _local.env = {}
        host = urlsplit(url)[:2]
        env = _local.env.get(host)
        if env is None:  # what a plain requests call would take from the environment
            env = _local.env[host] = requests.Session().merge_environment_settings(
                url, {}, None, None, None)
        for name in ("proxies", "verify", "cert"):
            if kwargs.get(name) is None:
                kwargs[name] = env[name]
        return session.request(method, url, **kwargs)


def install() -> None:
    """Idempotent; the transport module is imported here (it is light: no API services)."""
    from lark_oapi.core.http import transport

    if not isinstance(transport.requests, _KeptAlive):
        transport.requests = _KeptAlive()
