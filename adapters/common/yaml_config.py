"""Reading an adapter's YAML config file (sources, cost sources …): ``${VAR}`` expanded
from the environment (so secrets stay out of the file), validated by a pydantic model, every
problem raised as the caller's own error with the file named."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ENV = re.compile(r"\$\{([A-Z0-9_]+)\}")
M = TypeVar("M", bound=BaseModel)


def expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def load_model(path: str | Path, model: type[M], error: type[Exception]) -> M:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from exc
    try:
        return model.model_validate(expand_env(raw))
    except ValidationError as exc:
        raise error(f"{path}: {exc}") from exc


def duplicate_names(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})
