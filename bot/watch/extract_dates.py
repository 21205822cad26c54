"""Registration and event windows from notice text, Chinese or English.

Platforms announce deadlines in prose (``报名时间:11月1日10:00-11月5日23:59``,
``2026年11月30日 23:59 截止``, ``即日起至12月3日``, ``Registration closes Nov 5, 6pm``).
A missed deadline is the costliest failure, so the extractor is conservative: it reports
``unclear`` whenever it had to guess between readings, and the card then asks a person.

Times are read in the team's zone; a date without a year gets the year that puts it nearest
after "a month ago" (a notice in December about ``1月5日`` means next January).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_MON = r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
       r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_ORD = r"(?:st|nd|rd|th)?"

DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})T(?P<H>\d{1,2}):(?P<M>\d{2})"
                       r"(?::(?P<S>\d{2}))?(?P<off>Z|[+-]\d{2}:?\d{2})?")),
    ("zh", re.compile(r"(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]")),
    ("ymd", re.compile(r"(?<!\d)(?P<y>\d{4})\s*[-/.]\s*(?P<m>\d{1,2})\s*[-/.]\s*(?P<d>\d{1,2})(?!\d)")),
    ("en_md", re.compile(r"\b" + _MON + r"\s+(?P<d>\d{1,2})" + _ORD + r"\b(?![:.]\d)(?:,?\s+(?P<y>\d{4})\b)?",
                         re.I)),
    ("en_dm", re.compile(r"\b(?P<d>\d{1,2})" + _ORD + r"\s+(?:of\s+)?" + _MON
                         + r"(?:,?\s+(?P<y>\d{4})\b)?", re.I)),
    ("md", re.compile(r"(?<![\d./])(?P<m>1[0-2]|0?[1-9])\s*[/.]\s*(?P<d>3[01]|[12]\d|0?[1-9])"
                      r"(?![\d.:/%]|\s*[折元%])")),
    ("rel", re.compile(r"(?P<rel>今天|今日|明天|明日|后天|today|tomorrow)", re.I)),
    ("now", re.compile(r"(?P<now>即日起|即日开始|即日|从现在起|现在起|now|today onwards)", re.I)),
]
DAY_ONLY = re.compile(r"(?P<d>\d{1,2})\s*[日号]")
TIME = re.compile(
    r"\s*(?:[((][^))]{1,6}[))]\s*)?[,,]?\s*(?:at\s+)?"
    r"(?:(?P<ap>上午|早上|早晨|中午|下午|傍晚|晚上|夜间|晚|凌晨|早)\s*)?"
    r"(?P<H>\d{1,2})\s*(?:(?::\s*(?P<M>\d{2})(?::(?P<S>\d{2}))?)|(?P<zh>[点时])\s*(?:(?P<ZM>\d{1,2})\s*分?|(?P<half>半))?)?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?", re.I)
CONNECTOR = re.compile(r"^\s*(?:-|~|–|—|－|―|至|到|to|until|till|through|thru)\s*$", re.I)

REGISTRATION = re.compile(r"报名|招商|提报|申报|报送|提交|registration|register|sign[- ]?up|apply|"
                          r"application|enrol|submission|nominat", re.I)
EVENT = re.compile(r"活动时间|活动期间|活动日期|活动周期|活动为|售卖|正式期|预热|开抢|大促时间|"
                   r"event|sale|promotion period|campaign runs|runs from|live from", re.I)
DEADLINE = re.compile(r"截止|截至|为止|止|之前|前|deadline|closes?|closing|by|before|no later than|"
                      r"due|until", re.I)
START = re.compile(r"开始|起|opens?|starts?|from", re.I)
SENTENCE = re.compile(r"[\n。;;!!]|(?<=[a-z0-9)])\.\s+(?=[A-Z])")


@dataclass
class Point:
    """One date (maybe with a time) found in the text."""

    start: int
    end: int
    kind: str
    y: int | None = None
    m: int | None = None
    d: int | None = None
    hm: tuple[int, int] | None = None
    tz: ZoneInfo | None = None
    offset: timedelta | None = None
    now: bool = False
    before: bool = False  # "X日前": strictly before that day


@dataclass
class Extracted:
    registration_start: datetime | None = None
    registration_end: datetime | None = None
    event_start: datetime | None = None
    event_end: datetime | None = None
    unclear: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return any((self.registration_start, self.registration_end, self.event_start,
                    self.event_end))


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").replace("\u3000", " ")


def _hour(match: re.Match[str]) -> tuple[int, int] | None:
    hour = int(match["H"])
    minute = int(match["M"] or match["ZM"] or 0) + (30 if match["half"] else 0)
    if not (match["M"] or match["zh"] or match["ampm"]):
        return None  # a bare number is not a time
    ap, ampm = match["ap"] or "", (match["ampm"] or "").lower().replace(".", "")
    if ap in ("下午", "傍晚", "晚上", "夜间", "晚") and hour < 12 or ap == "中午" and hour < 6:
        hour += 12
    elif ap == "凌晨" and hour == 12:
        hour = 0
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour == 24 and minute == 0:
        return (23, 59)  # "24点" / "24:00": the end of that day
    if hour > 23 or minute > 59:
        return None
    return (hour, minute)


def _points(sentence: str) -> list[Point]:
    found: list[Point] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in DATE_PATTERNS:
        for m in pattern.finditer(sentence):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            g = m.groupdict()
            point = Point(m.start(), m.end(), kind)
            if kind == "now":
                point.now = True
            elif kind == "rel":
                point.m = -1
                point.d = {"今天": 0, "今日": 0, "today": 0, "明天": 1, "明日": 1,
                           "tomorrow": 1, "后天": 2}[g["rel"].lower()]
            else:
                point.y = int(g["y"]) if g.get("y") else None
                point.m = MONTHS[g["mon"][:3].lower()] if g.get("mon") else int(g["m"])
                point.d = int(g["d"])
                if not (1 <= point.m <= 12 and 1 <= point.d <= 31):
                    continue
                if kind == "iso":
                    point.hm = (int(g["H"]), int(g["M"]))
                    if g.get("off"):
                        off = g["off"].replace(":", "")
                        point.offset = timedelta(0) if off == "Z" else timedelta(
                            hours=int(off[1:3]), minutes=int(off[3:5])) * (1 if off[0] == "+" else -1)
            found.append(point)
            taken.append((m.start(), m.end()))
    found.sort(key=lambda p: p.start)
    points: list[Point] = []
    for i, point in enumerate(found):
        limit = found[i + 1].start if i + 1 < len(found) else len(sentence)
        if point.hm is None and not point.now:
            tm = TIME.match(sentence, point.end, limit)
            if tm and tm.end() > point.end and _hour(tm):
                point.hm, point.end = _hour(tm), tm.end()
        points.append(point)
    return _add_bare_ends(sentence, points)


def _add_bare_ends(sentence: str, points: list[Point]) -> list[Point]:
    """``11月1日至5日`` and ``11月5日10:00-18:00``: an end that borrows its start's date."""
    result: list[Point] = []
    for i, point in enumerate(points):
        result.append(point)
        nxt = points[i + 1].start if i + 1 < len(points) else len(sentence)
        rest = sentence[point.end:nxt]
        conn = re.match(r"\s*(?:-|~|–|—|至|到|to|until|till)\s*", rest, re.I)
        if not conn or point.now:
            continue
        at = point.end + conn.end()
        day = DAY_ONLY.match(sentence, at, nxt)
        tm = TIME.match(sentence, day.end() if day else at, nxt)
        hm = _hour(tm) if tm and tm.end() > (day.end() if day else at) else None
        if day and int(day["d"]) <= 31:
            end = tm.end() if hm else day.end()
            result.append(Point(at, end, "day", point.y, point.m, int(day["d"]), hm))
        elif hm and tm and point.hm is not None and not re.match(r"\s*\d{1,2}\s*[月/.-]",
                                                                 sentence[at:nxt]):
            result.append(Point(at, tm.end(), "time", point.y, point.m, point.d, hm))
    return result


def _resolve_year(month: int, day: int, ref: datetime) -> int:
    """The year that puts month/day nearest after a month before ``ref``."""
    floor = (ref - timedelta(days=31)).date()
    for year in (ref.year - 1, ref.year, ref.year + 1):
        try:
            if date(year, month, day) >= floor:
                return year
        except ValueError:
            continue
    return ref.year + 1


def _to_dt(point: Point, now: datetime, tz: ZoneInfo, end: bool,
           after: datetime | None = None) -> datetime | None:
    local_now = now.astimezone(tz)
    if point.now:
        return None
    if point.m == -1:  # today / tomorrow
        day = local_now.date() + timedelta(days=point.d or 0)
    else:
        assert point.m is not None and point.d is not None
        year = point.y
        if year is None:
            ref = after.astimezone(tz) if after is not None else local_now
            year = _resolve_year(point.m, point.d, ref)
            if after is not None and point.y is None:
                try:
                    if date(year, point.m, point.d) < after.astimezone(tz).date():
                        year += 1
                except ValueError:
                    return None
        try:
            day = date(year, point.m, point.d)
        except ValueError:
            return None
    if point.before and point.hm is None:
        return datetime.combine(day, time(0, 0), tz)
    hm = point.hm or ((23, 59) if end else (0, 0))
    if point.offset is not None:
        return datetime.combine(day, time(*hm), timezone(point.offset))
    return datetime.combine(day, time(*hm), tz)


def _label(sentence: str, start: int, end: int) -> str | None:
    """What a date belongs to: the nearest keyword before it, else just after it."""
    before = sentence[:start]
    best, best_pos = None, -1
    for name, pattern in (("registration", REGISTRATION), ("event", EVENT)):
        for m in pattern.finditer(before):
            if m.start() >= best_pos:
                best, best_pos = name, m.start()
    if best:
        return best
    after = sentence[end:]
    positions = [(m.start(), name) for name, pattern in (("registration", REGISTRATION),
                                                        ("event", EVENT))
                 for m in [pattern.search(after)] if m]
    return min(positions)[1] if positions else None


def extract(text: str, *, now: datetime, tz: str = "Asia/Shanghai") -> Extracted:
    """Read windows out of ``text``; ``now`` anchors years and "即日起/today"."""
    zone = ZoneInfo(tz)
    out = Extracted()
    reg_ends: list[datetime] = []
    for sentence in SENTENCE.split(_normalise(text)):
        if not sentence.strip():
            continue
        points = _points(sentence)
        i = 0
        while i < len(points):
            point = points[i]
            nxt = points[i + 1] if i + 1 < len(points) else None
            between = sentence[point.end:nxt.start] if nxt else ""
            if nxt and CONNECTOR.match(between):
                label = _label(sentence, point.start, nxt.end)
                label = label or ("registration" if point.now else None)
                start = _to_dt(point, now, zone, end=False)
                finish = _to_dt(nxt, now, zone, end=True, after=start)
                tail = sentence[nxt.end:nxt.end + 6]
                if finish is not None and re.match(r"\s*前", tail) and nxt.hm is None:
                    finish = _to_dt(Point(0, 0, "x", nxt.y, nxt.m, nxt.d, before=True),
                                    now, zone, end=True, after=start)
                if label == "registration":
                    out.registration_start = out.registration_start or start
                    if finish:
                        reg_ends.append(finish)
                elif label == "event":
                    out.event_start = out.event_start or start
                    out.event_end = out.event_end or finish
                else:
                    out.unclear = True
                    out.notes.append(f"unlabelled window: {sentence[point.start:nxt.end]}")
                i += 2
                continue
            label = _label(sentence, point.start, point.end)
            tail = sentence[point.end:point.end + 12]
            head = sentence[max(0, point.start - 10):point.start]
            is_before = bool(re.match(r"\s*(?:之前|前)", tail))
            is_deadline = bool(DEADLINE.search(tail) or re.search(
                r"(?:截止|截至|deadline|closes?|by|before|until|no later than)\W*$", head, re.I)
                or re.search(r"截止|截至|deadline|close", sentence[:point.start], re.I))
            is_start = bool(START.match(tail.strip()) or re.search(r"(?:from|opens?|starts?)\W*$",
                                                                    head, re.I))
            if is_before and point.hm is None:
                point.before = True
            if point.now:
                i += 1
                continue
            if label == "event":
                value = _to_dt(point, now, zone, end=is_deadline)
                if is_deadline:
                    out.event_end = out.event_end or value
                else:
                    out.event_start = out.event_start or value
            elif is_deadline and not is_start:
                value = _to_dt(point, now, zone, end=True)
                if value:
                    reg_ends.append(value)
            elif label == "registration" and is_start:
                out.registration_start = out.registration_start or _to_dt(point, now, zone, False)
            elif label == "registration":
                day_start = _to_dt(point, now, zone, end=False)
                day_end = _to_dt(point, now, zone, end=True)
                out.registration_start = out.registration_start or day_start
                if day_end:
                    reg_ends.append(day_end)
            else:
                out.notes.append(f"date without context: {sentence[point.start:point.end]}")
            i += 1
    distinct = sorted(set(reg_ends))
    if distinct:
        out.registration_end = distinct[0]
        if len(distinct) > 1:
            out.unclear = True
            out.notes.append("several registration deadlines; the earliest is used")
    if out.registration_end is None:
        out.unclear = True
    return out
