"""The one parser for every number a person types: a chat edit (``改 1 MZ-002 库存=２０``),
the console's line edit, and every money or count cell of an imported file.

What people really type is normalised: full-width digits and signs (``２０``, ``－``),
thousands separators in groups of three (``1,299.00``, ``1 299``), a yuan sign or word
(``￥99``, ``¥ 99``, ``99元``, ``RMB 99``), a count's unit (``50件``) and spaces. What cannot be
read with certainty is refused with a reason a person can act on, never guessed: superscript
or circled digits (``²``, ``①``), another currency (``$99``), commas that are not thousands
separators (``12,5``), words (``abc``, ``二十九``), more decimals than the field keeps (a
typed price; a file's money cell is rounded to the cent), and numbers out of range.

``NumberRefused`` carries a catalog key (``num.*``) and its parameters; ``reason()`` is the
``Term`` to put in a message, rendered in the reader's language.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from bot.core.i18n import Term

MONEY_PLACES = 2
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}  # ！…～ → !…~
_SPACES = {0x3000: " ", 0x00A0: " ", 0x2009: " ", 0x202F: " ", 0x2007: " ", 0xFFE5: "¥",
           0x2212: "-", 0x2013: "-", 0xFE63: "-"}
_YUAN_BEFORE = ("¥", "rmb", "cny")
_YUAN_AFTER = ("元", "块", "rmb", "cny")
_UNITS_AFTER = ("件", "个", "只", "pcs")
_OTHER_MONEY = re.compile(r"[$€£₩₹]|usd|hkd|eur|us\$", re.IGNORECASE)
_GROUPED = re.compile(r"\d{1,3}(?:[, ]\d{3})+(?:\.\d*)?")
_FOREIGN = re.compile(r"[^0-9., ]")
_PLAIN = re.compile(r"\d+(?:\.\d*)?|\.\d+")


class NumberRefused(ValueError):
    """A typed number that cannot be read with certainty; ``key`` is a ``num.*`` message."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def reason(self) -> Term:
        return Term.of(self.key, **self.params)


def _strip_affixes(text: str, before: tuple[str, ...], after: tuple[str, ...]) -> str:
    lowered = text.lower()
    for word in before:
        if lowered.startswith(word):
            text, lowered = text[len(word):].strip(), lowered[len(word):].strip()
            break
    for word in after:
        if lowered.endswith(word):
            text = text[: len(text) - len(word)].strip()
            break
    return text


def clean(raw: str, *, money: bool) -> str:
    """The typed text as a plain ASCII number (sign, digits, one point), or refused."""
    text = str(raw).translate(_FULLWIDTH).translate(_SPACES).strip()
    if not text:
        raise NumberRefused("num.empty")
    odd = next((c for c in text if not c.isascii() and unicodedata.digit(c, None) is not None), None)
    if odd is not None:  # ², ①, ½ … look like digits but are not the number they seem
        raise NumberRefused("num.odd_digit", char=odd)
    if money:
        if _OTHER_MONEY.search(text):
            raise NumberRefused("num.currency")
        text = _strip_affixes(text, _YUAN_BEFORE, _YUAN_AFTER)
    else:
        text = _strip_affixes(text, (), _UNITS_AFTER)
    sign = ""
    if text[:1] in "+-":
        sign, text = text[:1].replace("+", ""), text[1:].strip()
    if money and text[:1] == "¥":  # -¥5
        text = text[1:].strip()
    if _FOREIGN.search(text):
        raise NumberRefused("num.not_number")
    if "," in text or " " in text:
        if not _GROUPED.fullmatch(text):
            raise NumberRefused("num.grouping")
        text = text.replace(",", "").replace(" ", "")
    if not _PLAIN.fullmatch(text):
        raise NumberRefused("num.not_number")
    return sign + text


def _range(value: Decimal, minimum: Decimal | int | None, maximum: Decimal | int | None,
           positive: bool) -> None:
    if value < 0 and minimum is not None and minimum >= 0:
        raise NumberRefused("num.negative")
    if positive and value <= 0:
        raise NumberRefused("num.positive")
    if minimum is not None and value < minimum:
        raise NumberRefused("num.too_small", min=minimum)
    if maximum is not None and value > maximum:
        raise NumberRefused("num.too_large", max=maximum)


def to_decimal(value: object, *, places: int = MONEY_PLACES, round_excess: bool = False,
               minimum: Decimal | int | None = 0, maximum: Decimal | int | None = None,
               positive: bool = False) -> Decimal:
    """Money (or another decimal) from a typed text or a spreadsheet cell.

    More decimals than ``places``: rounded half up when ``round_excess`` (a file's cell,
    where 38.4999999 is how a float stores 38.5), otherwise refused (a person's typo)."""
    if isinstance(value, bool) or value is None:
        raise NumberRefused("num.not_number" if value is not None else "num.empty")
    if isinstance(value, int | float | Decimal):
        text = str(value)
        round_excess = round_excess or isinstance(value, float)
    else:
        text = clean(str(value), money=True)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise NumberRefused("num.not_number") from None
    if not number.is_finite():
        raise NumberRefused("num.not_number")
    _range(number, minimum, maximum, positive)
    step = Decimal(1).scaleb(-places)
    rounded = number.quantize(step, rounding=ROUND_HALF_UP)
    if rounded != number and not round_excess:
        raise NumberRefused("num.places", n=places)
    return rounded


def to_int(value: object, *, minimum: int | None = 0, maximum: int | None = None,
           positive: bool = False) -> int:
    """A count (stock, a limit) from a typed text or a spreadsheet cell; ``40.0`` is 40,
    ``1.5`` is refused."""
    if isinstance(value, bool) or value is None:
        raise NumberRefused("num.not_number" if value is not None else "num.empty")
    text = str(value) if isinstance(value, int | float | Decimal) else clean(str(value), money=False)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise NumberRefused("num.not_number") from None
    if not number.is_finite():
        raise NumberRefused("num.not_number")
    _range(number, minimum, maximum, positive)
    if number != number.to_integral_value():
        raise NumberRefused("num.not_integer")
    return int(number)
