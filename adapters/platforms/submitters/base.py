"""What every submission channel shares: the error that must not be retried, and hand-offs.

A channel either enrols synchronously (API) and returns a reference, or hands the job to
someone — a person (Excel file, assisted checklist) or a robot (RPA) — and returns a
``waiting`` receipt; the hand-off finishes later through a button or a callback.
"""

from __future__ import annotations

from bot.core.ports import WAITING, SubmissionItem, SubmitReceipt


class PermanentSubmitError(Exception):
    """The platform refused the request itself (4xx, validation): retrying cannot help."""


class NotConfigured(Exception):
    """The channel lacks its configuration (URL, secret, deep link) for this platform."""


def waiting(reference: str, **handoff: object) -> SubmitReceipt:
    return SubmitReceipt(reference=reference, status=WAITING, raw={"handoff": handoff})


def item_dicts(items: list[SubmissionItem]) -> list[dict]:
    return [{"sku": i.sku, "list_price": str(i.list_price) if i.list_price is not None else None,
             "promo_price": str(i.promo_price) if i.promo_price is not None else None,
             "promo_stock": i.promo_stock} for i in items]
