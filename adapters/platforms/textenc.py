"""Bytes → text for feeds and files that say their encoding wrongly or not at all.

Chinese platform pages and the spreadsheets managers export are often GBK/GB18030; a
declared charset wins, then UTF-8 (with or without BOM), then GB18030 (a superset of GBK).
"""

from __future__ import annotations

import codecs


def decode(raw: bytes, declared: str | None = None) -> str:
    if declared:
        try:
            codecs.lookup(declared)
            return raw.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")
