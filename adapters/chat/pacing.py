"""What the platforms' pacing needs to know about this deployment.

A platform's app-wide limit (Feishu: 50 IM calls a second for the app) counts the calls of
every process. ``promopilot run --workers N`` starts N processes on one host and says so in
``PROMOPILOT_WORKERS`` (also how it is set in docker-compose.yml), so each takes its share.
Replicas on other hosts cannot be counted from here: docs/deploy.md says to give each its
share in the setting.
"""

from __future__ import annotations

import os


def worker_processes() -> int:
    """The server processes on this host sharing the app's limits (1 unless told)."""
    try:
        return max(int(os.environ.get("PROMOPILOT_WORKERS", "1")), 1)
    except ValueError:
        return 1
