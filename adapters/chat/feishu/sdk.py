"""The parts of lark-oapi the adapter uses, without importing the other Feishu APIs.

``import lark_oapi`` (and so any ``lark_oapi.x`` import, since a package's ``__init__`` runs
first) builds all 60-odd API services: +140 MB of RSS and seconds of start-up for the two
calls we make (messages, one user lookup). ``light()`` registers ``lark_oapi`` and the few
packages on our path as *lazy* packages before anything imports them: their submodules
import as usual, and the first access to a name only the real ``__init__`` defines (e.g.
``lark_oapi.Client`` from other code) runs that ``__init__`` then, so nobody else breaks.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

# packages whose __init__ imports far more than the modules we need from them
LAZY = ("lark_oapi", "lark_oapi.api", "lark_oapi.api.im", "lark_oapi.api.im.v1",
        "lark_oapi.api.im.v1.model", "lark_oapi.api.contact", "lark_oapi.api.contact.v3",
        "lark_oapi.api.contact.v3.model",
        "lark_oapi.channel")  # the bot identity fetch (channel/__init__ imports the client)
_lock = threading.RLock()
_pending: dict[str, ModuleType] = {}  # lazy packages whose own __init__ has not run yet


def _full(name: str) -> None:
    """Run the real ``__init__`` of ``name`` and of its lazy sub-packages, deepest first
    (each only imports its own submodules), so star imports see every name."""
    with _lock:
        names = sorted((n for n in _pending if n == name or n.startswith(name + ".")),
                       key=lambda n: n.count("."), reverse=True)
        for each in names:
            module = _pending.pop(each)
            del module.__dict__["__getattr__"]
            try:
                module.__spec__.loader.exec_module(module)  # type: ignore[union-attr]
            except ImportError:  # a package lark-oapi's own __init__ never imports
                if each == name:
                    raise


def _lazy(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # noqa: N807 - PEP 562 module hook
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        _full(name)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = __getattr__
    _pending[name] = module
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _api_packages() -> list[str]:
    """Every API's package, version and model package (the long connection's dispatcher
    imports one module of each API's version package: its event processors)."""
    top = importlib.util.find_spec("lark_oapi")  # a top-level spec imports nothing
    if top is None or not top.submodule_search_locations:
        return []
    names = []
    for root in (Path(p) / "api" for p in top.submodule_search_locations):
        for service in sorted(p for p in root.iterdir() if (p / "__init__.py").exists()):
            names.append(f"lark_oapi.api.{service.name}")
            for version in sorted(p for p in service.iterdir() if (p / "__init__.py").exists()):
                names.append(f"lark_oapi.api.{service.name}.{version.name}")
                if (version / "model" / "__init__.py").exists():
                    names.append(f"lark_oapi.api.{service.name}.{version.name}.model")
    return names


def light() -> None:
    """Make the packages in ``LAZY`` lazy (a no-op for any already imported in full)."""
    with _lock:
        if "lark_oapi" in sys.modules and "lark_oapi" not in _pending:
            return  # imported in full already
        for name in dict.fromkeys([*LAZY, *_api_packages()]):
            _lazy(name)
