"""Which connectors a deployment runs: ``config/connectors.yaml`` (or the file named by
``PROMOPILOT_CONNECTORS_FILE``), and the kinds PromoPilot knows.

```yaml
connectors:
  - name: pdd-flagship          # unique; shown by `promopilot platforms`
    kind: pdd                   # a key of KINDS
    shop: flagship              # whose credentials (`promopilot platforms credentials set pdd flagship`)
    gateway: https://gw-api.pinduoduo.com/api/router   # default: the kind's production gateway
    source: true                # campaigns and invitations become notices (the watcher)
    submitter: true             # the platform's `api` submission channel
    interval_seconds: 600
    timeout_seconds: 10
    attempts: 4
    options: {}                 # the kind's own (e.g. pdd: campaigns_type, activity_type)
```
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from adapters.platforms.connector.base import ConnectorBase, ConnectorConfig
from adapters.platforms.connector.credentials import CredentialStore
from storage.db import Database

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_PATH = ROOT / "config" / "connectors.yaml"
ENV = "PROMOPILOT_CONNECTORS_FILE"

# kind → "module:class". Adding a marketplace is one line here and a package beside pdd/.
KINDS: dict[str, str] = {
    "pdd": "adapters.platforms.pdd.connector:PddConnector",
    "temu": "adapters.platforms.temu.connector:TemuConnector",
    "jd": "adapters.platforms.jd.connector:JdConnector",
    "taobao": "adapters.platforms.taobao.connector:TaobaoConnector",
    "tmall_bigsale": "adapters.platforms.taobao.bigsale:TmallBigSaleConnector",
    "douyin": "adapters.platforms.douyin.connector:DouyinConnector",
}


class ConnectorsFile(BaseModel):
    connectors: list[ConnectorConfig] = Field(default_factory=list)


def kind_class(kind: str) -> type[ConnectorBase]:
    if kind not in KINDS:
        raise ValueError(f"unknown connector kind {kind!r}; use one of {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def path() -> Path | None:
    configured = os.environ.get(ENV, "").strip()
    if configured:
        return Path(configured)
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load(file: Path | str | None = None) -> ConnectorsFile:
    file = Path(file) if file else path()
    if file is None:
        return ConnectorsFile()
    try:
        parsed = ConnectorsFile.model_validate(yaml.safe_load(file.read_text("utf-8")) or {})
    except FileNotFoundError:
        raise ValueError(f"connectors file {file} does not exist ({ENV})") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"connectors file {file}: {exc}") from None
    names = [c.name for c in parsed.connectors]
    if len(names) != len(set(names)):
        raise ValueError(f"connectors file {file}: connector names must be unique")
    for c in parsed.connectors:
        kind_class(c.kind)  # unknown kinds stop start-up with a clear message
    return parsed


def build(db: Database, file: Path | str | None = None,
          credentials: CredentialStore | None = None, **kw) -> list[ConnectorBase]:
    store = credentials or CredentialStore(db)
    return [kind_class(c.kind)(c, db, store, **kw) for c in load(file).connectors]
