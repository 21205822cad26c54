"""An HTTP/1.1 server for the fakes whose real API keeps connections alive (Slack, Feishu)."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class KeepAliveServer(ThreadingHTTPServer):
    """Threaded, with a longer backlog; a kept-alive connection that the client drops
    between requests (a process stopping) is the usual end of one, not an error to print."""

    daemon_threads = True
    request_queue_size = 128  # 50 channels posting at once: the default backlog of 5 refused some

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)
