"""The submitters plugin: the configured channel chain (``policies/submission.yaml``), the
signed RPA callback and the hand-off file download. Installed from ``bot.wiring.PLUGINS``."""

from __future__ import annotations

import json
import logging
import os
import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from adapters.platforms.submitters import ConfiguredChannels, load
from adapters.platforms.submitters.rpa import verify
from bot.core.errors import DomainError
from bot.submissions import channels
from bot.submissions.rpa import rpa_callback
from bot.submissions.service import SubmissionService
from storage.models_approval import SubmissionRun

log = logging.getLogger(__name__)


def install(container, api) -> None:
    """Replace the foundation's API-only service with the configured channel chain."""
    config = load()
    base = container.settings.base_url
    configured = ConfiguredChannels(
        config, container.submitters.get, f"{base}/submissions/rpa/callback", container.db,
        assisted_for=lambda platform: container.extras.get("assisted_submitters", {}).get(
            platform))  # an assisted connector (connectors plugin, installed later)
    channels.configure(configured)
    container.submissions = SubmissionService(container.db, configured)
    router = APIRouter(prefix="/submissions", tags=["submissions"])

    @router.post("/rpa/callback")
    async def rpa(request: Request) -> dict:
        body = await request.body()
        secret = os.environ.get(config.rpa.secret_env, "")
        if not verify(secret, request.headers.get("X-PromoPilot-Timestamp"),
                      request.headers.get("X-PromoPilot-Signature"), body):
            log.warning("rpa callback refused: bad signature or timestamp")
            raise HTTPException(401, "bad signature")
        try:
            payload = json.loads(body)
            result = rpa_callback(container.db, payload if isinstance(payload, dict) else {})
        except (ValueError, DomainError) as exc:
            raise HTTPException(422, str(exc)[:300]) from None
        container.extras.get("kick", lambda: None)()
        return {"result": result}

    @router.get("/handoff/{run_id}/file")
    def handoff_file(run_id: int, token: str) -> FileResponse:
        with container.db.session() as session:
            run = session.get(SubmissionRun, run_id)
        handoff = run.handoff if run else {}
        if not handoff.get("token") or not secrets.compare_digest(
                str(handoff["token"]), token) or not handoff.get("file"):
            raise HTTPException(404, "no such hand-off file")
        return FileResponse(handoff["file"], filename=handoff.get("filename") or "promo.xlsx",
                            media_type="application/vnd.openxmlformats-officedocument."
                                       "spreadsheetml.sheet")

    api.include_router(router)
