"""Every approval decision and submission attempt is in the audit log, and
``promopilot audit export`` writes it out (JSON lines or CSV) with PII masked."""

from __future__ import annotations

import csv
import io
import json

from sqlmodel import select
from typer.testing import CliRunner

from bot.cli.main import app
from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from bot.core.settings import get_settings
from storage.models import Campaign, Task, User


def test_audit_export_has_decisions_and_masks_pii(seeded, monkeypatch, tmp_path):
    db = seeded
    with db.session() as s:
        tid = s.exec(select(Task.id).join(Campaign, Campaign.id == Task.campaign_id)
                     .where(Campaign.platform == "tmall").order_by(Task.id)).first()
        people = {u.name: Actor.of(u) for u in s.exec(select(User))}
    for action, who, comment in [("claim", "li.na", None), ("draft", "li.na", None),
                                 ("request_approval", "li.na", None),
                                 ("request_changes", "zhou.qiang",
                                  "请联系 13812345678 或 buyer@example.com 核价"),
                                 ("request_approval", "li.na", None),
                                 ("approve", "zhou.qiang", None)]:
        perform(db, ActionRequest(tid, action, people[who], comment=comment))
    monkeypatch.setenv("PROMOPILOT_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["audit", "export", "--task", str(tid)])
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in result.stdout.splitlines()]
        actions = [e["action"] for e in events]
        assert actions[-4:] == ["request_approval", "request_changes", "request_approval",
                                "approve"]
        assert next(e for e in events if e["action"] == "approve")["detail"]["roles"] == \
            ["manager"]
        changes = next(e for e in events if e["action"] == "request_changes")
        assert changes["actor"] == "zhou.qiang"
        assert "138****5678" in changes["detail"]["comment"]
        assert "b***@example.com" in changes["detail"]["comment"]
        assert "13812345678" not in result.stdout
        out = tmp_path / "audit.csv"
        result = runner.invoke(app, ["audit", "export", "--format", "csv", "-o", str(out),
                                     "--since", "2000-01-01T00:00:00Z"])
        assert result.exit_code == 0, result.output
        table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert {"approve", "request_changes", "claim"} <= {r["action"] for r in table}
        bad = runner.invoke(app, ["audit", "export", "--since", "yesterday"])
        assert bad.exit_code != 0
    finally:
        get_settings.cache_clear()
