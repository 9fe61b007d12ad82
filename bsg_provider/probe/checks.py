"""
The experiments of the API probe and the verdicts they lead to, without any I/O.

``python -m bsg_provider.check_api`` (:mod:`bsg_provider.probe.run`) sends the requests;
this module decides what to ask (filter values, span anchors, the future-limit search) and
what the answers mean for each assumption of docs/api-assumptions.md. A verdict is
``holds``, ``contradicted`` or ``cannot tell`` (the account gave no evidence either way).

Every test is read at the level the extraction relies on: "a campaign shown as created at
``12:00:00`` is returned by ``filter[to]=12:00:00``", not at a level the API does not show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from bsg_provider.extraction.windows import add_months

HOLDS = "holds"
CONTRADICTED = "contradicted"
CANNOT_TELL = "cannot tell"

#: The assumptions the probe checks, in report order: key -> what is assumed.
ASSUMPTIONS: dict[str, str] = {
    "date_formats": "filter[from]/filter[to] take yyyy-mm-dd hh:mm:ss",
    "filter_field": "filter[from]/filter[to] select on created_at",
    "from_bound": "filter[from] includes a campaign created at the second it names",
    "to_bound": "filter[to] includes a campaign created at the second it names",
    "precision": "created_at is stored to the whole second it shows",
    "span_rule": "a window may span 3 calendar months, and no more",
    "future_limit": "filter[to] may be up to 30 days ahead",
    "timezone": "timestamps and filters are in the connection's api_timezone",
    "messages_filter_field": "GET /api/messages: filter[from]/filter[to] select on created_at",
    "messages_span_rule": "GET /api/messages: a window may span 3 calendar months, no more (as campaigns)",
    "messages_future_limit": "GET /api/messages: filter[to] may be up to 30 days ahead (as campaigns)",
}

SECOND = timedelta(seconds=1)
FUTURE_LIMIT = timedelta(days=30)
#: The future-limit search looks for the boundary this far either side of 30 days.
FUTURE_SEARCH = timedelta(hours=15)
#: A boundary this close to 30 days means the API's clock and timezone agree with ours.
CLOCK_TOLERANCE = timedelta(minutes=10)
#: Bisection steps of the future-limit search: 30 h / 2**9 is under 4 minutes.
FUTURE_STEPS = 9
#: Windows of the evidence search stay this short, legal under any span rule of 89+ days.
EVIDENCE_DAYS = 80
SPAN_MONTHS = 3
_FRACTION = re.compile(r"\A\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\.(\d+)")
_WALL = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Verdict:
    """
    What the probe concluded about one assumption.

    :param key: the assumption's key in :data:`ASSUMPTIONS`.
    :param verdict: ``holds``, ``contradicted`` or ``cannot tell``.
    :param evidence: the requests and answers that led there, for a person.
    """

    key: str
    verdict: str
    evidence: str

    @property
    def assumption(self) -> str:
        """What is assumed, in words."""
        return ASSUMPTIONS[self.key]

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {
            "assumption": self.key,
            "text": self.assumption,
            "verdict": self.verdict,
            "evidence": self.evidence,
        }


# -- filter values ----------------------------------------------------------------------------


def plain_wall(wall: datetime) -> str:
    """``yyyy-mm-dd hh:mm:ss`` of a wall-clock time (its tzinfo, if any, is not shown).

    :param wall: the datetime.
    """
    return wall.strftime(_WALL)


def iso_instant(instant: datetime) -> str:
    """The vendor SDK's ISO 8601 form of an aware instant, e.g. ``2026-11-24T19:43:44.000000+0000``.

    :param instant: aware datetime.
    """
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%f%z")


def render_filter(instant: datetime, tz: tzinfo, fmt: str) -> str:
    """A filter value naming ``instant``: plain wall clock in ``tz``, or ISO 8601 with offset.

    :param instant: aware datetime.
    :param tz: the API timezone the connection names.
    :param fmt: ``plain`` or ``iso``.
    """
    local = instant.astimezone(tz)
    return plain_wall(local) if fmt == "plain" else iso_instant(local)


@dataclass(frozen=True)
class Stamp:
    """A timestamp as the API showed it.

    :param text: the text.
    :param wall: its wall-clock fields, naive, to the second (a fraction cut off).
    :param offset: its UTC offset, when the text has one.
    :param fraction: the fraction digits shown, or None when none are.
    """

    text: str
    wall: datetime
    offset: timedelta | None
    fraction: str | None

    def instant(self, tz: tzinfo) -> datetime:
        """The aware instant, reading a text without offset in ``tz``.

        :param tz: the connection's API timezone.
        """
        if self.offset is not None:
            return self.wall.replace(tzinfo=timezone(self.offset))
        return self.wall.replace(tzinfo=tz)

    def filter_value(self, delta: timedelta, tz: tzinfo, fmt: str) -> str:
        """A filter value ``delta`` after the shown second, on the API's own wall clock if plain.

        Echoing the shown wall clock keeps the bound tests independent of the timezone.

        :param delta: added to the shown second.
        :param tz: the connection's API timezone (ISO values without a shown offset use it).
        :param fmt: ``plain`` or ``iso``.
        """
        if fmt == "plain":
            return plain_wall(self.wall + delta)
        return iso_instant(self.instant(tz) + delta)

    @property
    def has_nonzero_fraction(self) -> bool:
        """Whether the text shows a fraction of a second other than zero."""
        return bool(self.fraction and self.fraction.strip("0"))


def parse_stamp(value: Any) -> Stamp | None:
    """Read a campaign timestamp (``2024-04-03 12:14:49``, ISO 8601 with or without offset).

    :param value: the field's value.
    :return: the stamp, or None when the value is not a timestamp.
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    match = _FRACTION.match(value.strip())
    return Stamp(
        text=value,
        wall=parsed.replace(tzinfo=None, microsecond=0),
        offset=parsed.utcoffset(),
        fraction=match.group(1) if match else None,
    )


# -- choosing evidence ------------------------------------------------------------------------


@dataclass(frozen=True)
class Campaign:
    """The fields of one listed campaign the probe reads.

    :param id: campaign id.
    :param created: its ``created_at``.
    :param start: its ``start_at``, if it has one.
    """

    id: int
    created: Stamp
    start: Stamp | None


def listed(records: Iterable[Any]) -> Iterator[tuple[dict[str, Any], Stamp]]:
    """The records of a list answer with a readable id and ``created_at``, with that timestamp.

    The one reader both resources' experiments use: what each keeps besides differs.

    :param records: the ``data`` of list answers (campaigns or messages).
    """
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("id"), int):
            continue
        created = parse_stamp(record.get("created_at"))
        if created is not None:
            yield record, created


def read_campaigns(records: Iterable[Any]) -> list[Campaign]:
    """The listed campaigns with a readable id and ``created_at``.

    :param records: the ``data`` of list answers.
    """
    return [
        Campaign(record["id"], created, parse_stamp(record.get("start_at")))
        for record, created in listed(records)
    ]


def edge_candidates(campaigns: Sequence[Campaign], count: int = 2) -> list[Campaign]:
    """Campaigns to test the bounds on: starting when created (so any filter field selects them
    at ``created_at``), each in a second of its own among those found.

    :param campaigns: listed campaigns.
    :param count: how many.
    """
    seconds: dict[datetime, int] = {}
    for campaign in campaigns:
        seconds[campaign.created.wall] = seconds.get(campaign.created.wall, 0) + 1
    chosen = []
    for campaign in campaigns:
        starts_with = campaign.start is None or campaign.start.wall == campaign.created.wall
        if starts_with and seconds[campaign.created.wall] == 1:
            chosen.append(campaign)
            if len(chosen) == count:
                break
    return chosen


def field_candidate(campaigns: Sequence[Campaign], latest_start: datetime) -> Campaign | None:
    """A campaign whose ``start_at`` is at least 3 s away from its ``created_at`` on the wall clock.

    :param campaigns: listed campaigns.
    :param latest_start: naive wall time a ``start_at`` may not pass (the future limit).
    """
    for campaign in campaigns:
        start = campaign.start
        apart = start is not None and abs(start.wall - campaign.created.wall) >= 3 * SECOND
        if apart and start is not None and start.wall <= latest_start:
            return campaign
    return None


# -- span anchors -----------------------------------------------------------------------------


def span_anchor(now_wall: datetime) -> datetime:
    """A past first of a month whose 3 calendar months before it are at least 91 days long,
    so a calendar-month rule and a 90-day rule answer differently.

    :param now_wall: the current naive wall-clock time in the API timezone.
    """
    anchor = now_wall.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while (anchor - add_months(anchor, -SPAN_MONTHS)).days < 91:
        anchor = add_months(anchor, -1)
    return anchor


# -- verdicts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How the API answered one list request of the probe.

    :param accepted: True for a 200, False for a 422.
    :param ids: campaign ids of the page (empty when refused).
    :param fields: the fields a 422 named.
    :param message: the API's message of a 422.
    """

    accepted: bool
    ids: frozenset[int] = frozenset()
    fields: tuple[str, ...] = ()
    message: str = ""

    def describe(self) -> str:
        """``accepted`` or ``refused (422 on filter[from]: ...)``."""
        if self.accepted:
            return "accepted"
        detail = f": {self.message}" if self.message else ""
        return f"refused (422 on {', '.join(self.fields) or 'no field'}{detail})"


def format_verdict(plain: Answer | None, iso: Answer | None) -> Verdict:
    """Whether plain ``yyyy-mm-dd hh:mm:ss`` filters are accepted (ISO 8601 reported alongside).

    :param plain: the answer to a plain-format window.
    :param iso: the answer to the same window in the vendor SDK's ISO 8601 form, if asked.
    """
    iso_note = ""
    if iso is not None:
        iso_note = (
            "; a window in ISO 8601 (the vendor SDK's 2026-11-24T19:43:44.000000+0000 form) was "
            + iso.describe()
        )
    if plain is None:
        return Verdict("date_formats", CANNOT_TELL, "no plain-format request was answered" + iso_note)
    if plain.accepted:
        return Verdict(
            "date_formats", HOLDS, "a window written as yyyy-mm-dd hh:mm:ss was accepted" + iso_note
        )
    if iso is not None and iso.accepted:
        return Verdict(
            "date_formats",
            CONTRADICTED,
            f"a window written as yyyy-mm-dd hh:mm:ss was {plain.describe()}, but ISO 8601 with an offset "
            f"was accepted: the API takes ISO 8601 only{iso_note}",
        )
    return Verdict(
        "date_formats",
        CONTRADICTED,
        f"a window written as yyyy-mm-dd hh:mm:ss was {plain.describe()}{iso_note}",
    )


@dataclass(frozen=True)
class EdgeTest:
    """The one-second windows around one campaign's shown ``created_at`` C.

    :param campaign: the campaign (its start equals its creation).
    :param around: returned by ``[C - 1 s, C + 1 s]``.
    :param exact: returned by ``[C, C]``, None if not asked.
    :param from_edge: returned by ``[C, C + 1 s]``, None if not asked.
    :param to_edge: returned by ``[C - 1 s, C]``, None if not asked.
    """

    campaign: Campaign
    around: bool
    exact: bool | None = None
    from_edge: bool | None = None
    to_edge: bool | None = None

    @property
    def whole_second(self) -> bool:
        """Whether the answers prove the stored value is exactly the shown second.

        With a hidden fraction f > 0, ``[C, C + 1 s]`` always holds the campaign and ``[C, C]``
        and ``[C - 1 s, C]`` never do, whatever the bounds.
        """
        return bool(self.exact or self.to_edge or self.from_edge is False)

    def label(self) -> str:
        return f"campaign {self.campaign.id} (created_at {self.campaign.created.text!r})"


def _yes(value: bool | None) -> str:
    return "returned it" if value else "did not return it"


def bound_verdicts(tests: Sequence[EdgeTest], fraction_shown: bool) -> tuple[Verdict, Verdict]:
    """The from-bound and to-bound verdicts.

    :param tests: edge tests of one or more campaigns.
    :param fraction_shown: whether campaigns' timestamps show a non-zero fraction of a second (then
        whole-second windows cannot test the bounds).
    """
    usable = [test for test in tests if test.around]
    if not usable:
        why = (
            "no campaign was found to test on"
            if not tests
            else f"{tests[0].label()} was not returned even by [C - 1 s, C + 1 s] around its created_at "
            "(see filter field and timezone)"
        )
        return Verdict("from_bound", CANNOT_TELL, why), Verdict("to_bound", CANNOT_TELL, why)
    from_lines, to_lines = [], []
    from_ok = to_ok = True
    for test in usable:
        from_lines.append(f"{test.label()}: filter[from]=C, filter[to]=C + 1 s {_yes(test.from_edge)}")
        to_lines.append(f"{test.label()}: filter[from]=C - 1 s, filter[to]=C {_yes(test.to_edge)}")
        from_ok = from_ok and bool(test.from_edge)
        to_ok = to_ok and bool(test.to_edge)
    from_evidence, to_evidence = "; ".join(from_lines), "; ".join(to_lines)
    if from_ok:
        from_verdict = Verdict("from_bound", HOLDS, from_evidence)
    else:
        from_verdict = Verdict(
            "from_bound",
            CONTRADICTED,
            from_evidence
            + ": filter[from] is exclusive (a campaign created at the second it names is left out)",
        )
    if to_ok:
        to_verdict = Verdict("to_bound", HOLDS, to_evidence)
    elif fraction_shown:
        to_verdict = Verdict(
            "to_bound",
            CANNOT_TELL,
            to_evidence + ": but created_at has a fraction of a second (see precision), so a whole-second "
            "filter[to] cannot name it",
        )
    else:
        to_verdict = Verdict(
            "to_bound",
            CONTRADICTED,
            to_evidence
            + ": filter[to] leaves out a campaign shown as created at the second it names; either "
            "filter[to] is exclusive or created_at has a fraction of a second the API does not show",
        )
    return from_verdict, to_verdict


def precision_verdict(campaigns: Sequence[Campaign], tests: Sequence[EdgeTest]) -> Verdict:
    """Whether ``created_at`` is stored to the whole second it shows.

    :param campaigns: every campaign listed.
    :param tests: the edge tests.
    """
    fractional = [c for c in campaigns if c.created.has_nonzero_fraction]
    if fractional:
        example = fractional[0]
        return Verdict(
            "precision",
            CONTRADICTED,
            f"{len(fractional)} of {len(campaigns)} campaigns show a fraction of a second, e.g. campaign "
            f"{example.id} created_at {example.created.text!r}",
        )
    proven = [test for test in tests if test.around and test.whole_second]
    if proven:
        return Verdict(
            "precision",
            HOLDS,
            f"{proven[0].label()}: one-second windows at C answered as only a value of exactly C can "
            f"([C, C] {_yes(proven[0].exact)}, [C, C + 1 s] {_yes(proven[0].from_edge)}, "
            f"[C - 1 s, C] {_yes(proven[0].to_edge)})",
        )
    shown = [c for c in campaigns if c.created.fraction is not None]
    if len(shown) >= 20:
        return Verdict(
            "precision", HOLDS, f"all {len(shown)} campaigns' created_at show a zero fraction of a second"
        )
    if not tests:
        return Verdict("precision", CANNOT_TELL, "no campaign was found to test on")
    return Verdict(
        "precision",
        CANNOT_TELL,
        "timestamps show whole seconds, and every answer is explained as well by an exclusive filter[to] as "
        "by a fraction of a second the API does not show (see to bound)",
    )


@dataclass(frozen=True)
class FieldTest:
    """Windows around one campaign's ``created_at`` and around its (different) ``start_at``.

    :param campaign: the campaign.
    :param around_created: returned by ``[created_at - 1 s, created_at + 1 s]``.
    :param around_start: returned by ``[start_at - 1 s, start_at + 1 s]``.
    """

    campaign: Campaign
    around_created: bool
    around_start: bool


def field_verdict(test: FieldTest | None, outside: Sequence[Campaign], window: str) -> Verdict:
    """Whether the filters select on ``created_at``.

    :param test: the two windows around a campaign scheduled later than it was created, if any.
    :param outside: listed campaigns whose ``created_at`` lay outside the window asked for.
    :param window: the window those were listed for, as sent.
    """
    notes = []
    if outside:
        example = outside[0]
        notes.append(
            f"{len(outside)} campaigns listed for {window} were created outside it, e.g. campaign "
            f"{example.id} created_at {example.created.text!r}"
            + (f", start_at {example.start.text!r}" if example.start else "")
        )
    if test is None:
        if outside:
            return Verdict("filter_field", CONTRADICTED, "; ".join(notes))
        return Verdict(
            "filter_field",
            CANNOT_TELL,
            "no listed campaign starts at another time than it was created, so created_at and start_at "
            "cannot be told apart",
        )
    c = test.campaign
    assert c.start is not None
    label = f"campaign {c.id} (created_at {c.created.text!r}, start_at {c.start.text!r})"
    evidence = (
        f"{label}: a window of created_at +/- 1 s {_yes(test.around_created)}, a window of start_at "
        f"+/- 1 s {_yes(test.around_start)}"
    )
    evidence = "; ".join([evidence, *notes])
    if test.around_created and not test.around_start and not outside:
        return Verdict("filter_field", HOLDS, evidence)
    if test.around_start and not test.around_created:
        return Verdict("filter_field", CONTRADICTED, evidence + ": the filters select on start_at")
    if test.around_created and test.around_start:
        return Verdict("filter_field", CANNOT_TELL, evidence)
    return Verdict("filter_field", CONTRADICTED, evidence + ": the filters select on neither as assumed")


@dataclass(frozen=True)
class SpanTest:
    """Windows ending at a first of a month, reaching back various lengths.

    :param anchor: ``filter[to]``, naive wall time.
    :param days_89: 89 days back.
    :param calendar: exactly 3 calendar months back (at least 91 days).
    :param calendar_plus: 3 calendar months and 1 s back.
    :param days_90: 90 days back, asked only when the calendar span was refused.
    """

    anchor: datetime
    days_89: Answer | None
    calendar: Answer | None
    calendar_plus: Answer | None
    days_90: Answer | None = None


def span_verdict(test: SpanTest, key: str = "span_rule") -> Verdict:
    """Whether the longest window is 3 calendar months.

    :param test: the answers.
    :param key: the assumption: ``span_rule`` (campaigns) or ``messages_span_rule``.
    """
    anchor = test.anchor
    start = add_months(anchor, -SPAN_MONTHS)
    days = (anchor - start).days
    lines = [f"filter[to]={plain_wall(anchor)}"]
    if test.days_89 is not None:
        lines.append(f"89 days back: {test.days_89.describe()}")
    if test.days_90 is not None:
        lines.append(f"90 days back: {test.days_90.describe()}")
    if test.calendar is not None:
        lines.append(f"3 calendar months back ({plain_wall(start)}, {days} days): {test.calendar.describe()}")
    if test.calendar_plus is not None:
        lines.append(f"3 calendar months and 1 s back: {test.calendar_plus.describe()}")
    evidence = "; ".join(lines)
    if test.days_89 is None or test.calendar is None or test.calendar_plus is None:
        return Verdict(key, CANNOT_TELL, evidence + " (not every window was asked)")
    if not test.days_89.accepted:
        return Verdict(key, CONTRADICTED, evidence + ": the limit is shorter than 89 days")
    if not test.calendar.accepted:
        if test.days_90 is not None and test.days_90.accepted:
            rule = "the limit is 90 days (or between 90 and 91), not 3 calendar months"
        elif test.days_90 is not None:
            rule = "the limit is between 89 and 90 days, not 3 calendar months"
        else:
            rule = f"the limit is shorter than 3 calendar months ({days} days here)"
        return Verdict(key, CONTRADICTED, f"{evidence}: {rule}")
    if test.calendar_plus.accepted:
        return Verdict(key, CONTRADICTED, evidence + ": the API allows more than 3 calendar months")
    return Verdict(key, HOLDS, evidence)


@dataclass
class FutureSearch:
    """Bisection for the latest ``filter[to]`` the API accepts, relative to our now + 30 days.

    Offsets are seconds from our clock's now + 30 days; the boundary lies in ``(low, high]``
    once :attr:`low` was accepted and :attr:`high` refused.

    :param low: latest offset accepted so far.
    :param high: earliest offset refused so far.
    :param low_seen: whether the first ``low`` was accepted (None: not asked yet).
    :param high_seen: whether the first ``high`` was accepted (None: not asked yet).
    :param steps: every (offset, accepted) asked, in order.
    """

    low: float = -FUTURE_SEARCH.total_seconds()
    high: float = FUTURE_SEARCH.total_seconds()
    low_seen: bool | None = None
    high_seen: bool | None = None
    steps: list[tuple[float, bool]] = field(default_factory=list)

    def next_offset(self) -> float | None:
        """The offset to ask next, or None when the search is done."""
        if self.low_seen is None:
            return self.low
        if self.low_seen is False:
            return None  # refused well before 30 days: the limit is shorter, nothing to bisect
        if self.high_seen is None:
            return self.high
        if not (self.low_seen and self.high_seen is False):
            return None  # the boundary is outside the bracket: nothing to bisect
        if len(self.steps) >= FUTURE_STEPS + 2:
            return None
        return (self.low + self.high) / 2

    def record(self, offset: float, accepted: bool) -> None:
        """Note the API's answer to a ``filter[to]`` at ``offset``.

        :param offset: seconds after our now + 30 days.
        :param accepted: True for a 200, False for a 422 on filter[to].
        """
        self.steps.append((offset, accepted))
        if self.low_seen is None and offset == self.low:
            self.low_seen = accepted
        elif self.high_seen is None and offset == self.high:
            self.high_seen = accepted
        elif accepted:
            self.low = offset
        else:
            self.high = offset

    @property
    def boundary(self) -> float | None:
        """Seconds after now + 30 days where the API's limit lies, when the search bracketed it."""
        if self.low_seen and self.high_seen is False:
            return (self.low + self.high) / 2
        return None


def _hours(seconds: float) -> str:
    sign = "+" if seconds >= 0 else "-"
    minutes = round(abs(seconds) / 60)
    return f"{sign}{minutes // 60:d} h {minutes % 60:02d} min"


def _offset_text(offset: timedelta) -> str:
    minutes = round(offset.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def future_and_timezone_verdicts(
    search: FutureSearch,
    *,
    api_timezone: str,
    tz: tzinfo,
    now: datetime,
    campaigns: Sequence[Campaign],
) -> tuple[Verdict, Verdict]:
    """The future-limit and timezone verdicts.

    The API refuses a ``filter[to]`` more than 30 days after its now, read on its wall clock:
    where that boundary falls, measured on ours in ``api_timezone``, shows both the limit and
    how far the API's reading of filter dates is from ``api_timezone``. Timestamps with an
    offset, and campaigns shown as created in our future, are evidence on the timezone too.

    :param search: the finished future-limit search.
    :param api_timezone: the connection's timezone name.
    :param tz: that timezone.
    :param now: our clock when the search ran (aware).
    :param campaigns: every campaign listed.
    """
    tz_notes: list[str] = []
    tz_wrong = tz_right = False
    offsets = [c for c in campaigns if c.created.offset is not None]
    mismatched = [c for c in offsets if c.created.instant(tz).astimezone(tz).utcoffset() != c.created.offset]
    if mismatched:
        example = mismatched[0]
        ours = example.created.instant(tz).astimezone(tz).utcoffset() or timedelta(0)
        tz_notes.append(
            f"campaign {example.id} created_at {example.created.text!r} carries "
            f"{_offset_text(example.created.offset or timedelta(0))}, where {api_timezone} is at "
            f"{_offset_text(ours)}"
        )
        tz_wrong = True
    elif offsets:
        tz_notes.append(f"{len(offsets)} timestamps carry offsets matching {api_timezone}")
        tz_right = True
    future = [
        c for c in campaigns if c.created.offset is None and c.created.instant(tz) > now + CLOCK_TOLERANCE
    ]
    if future:
        example = future[0]
        tz_notes.append(
            f"campaign {example.id} shows created_at {example.created.text!r}, which in {api_timezone} lies "
            f"{_hours((example.created.instant(tz) - now).total_seconds())} in the future"
        )
        tz_wrong = True

    steps = ", ".join(f"{_hours(offset)}: {'accepted' if ok else 'refused'}" for offset, ok in search.steps)
    search_evidence = (
        f"filter[to] at now + 30 days {steps}" if steps else "no filter[to] near 30 days was asked"
    )
    boundary = search.boundary
    ours_now = now.astimezone(tz).utcoffset() or timedelta(0)
    if boundary is None:
        if search.low_seen is False:
            future_verdict = Verdict(
                "future_limit", CONTRADICTED, search_evidence + ": the limit is shorter than 30 days - 15 h"
            )
        elif search.high_seen:
            future_verdict = Verdict(
                "future_limit", CONTRADICTED, search_evidence + ": the API allows more than 30 days + 15 h"
            )
        else:
            future_verdict = Verdict("future_limit", CANNOT_TELL, search_evidence)
        clock_note = None
    elif abs(boundary) <= CLOCK_TOLERANCE.total_seconds():
        future_verdict = Verdict(
            "future_limit", HOLDS, f"{search_evidence}: the limit is 30 days ({_hours(boundary)})"
        )
        clock_note = f"the API's 30-day limit falls at {_hours(boundary)} on {api_timezone}'s clock"
        tz_right = tz_right or not tz_wrong
    else:
        shifted = (
            f"{search_evidence}: the limit falls {_hours(boundary)} from 30 days on {api_timezone}'s clock"
        )
        clock_note = (
            f"the API's 30-day limit falls {_hours(boundary)} from 30 days on {api_timezone}'s clock: "
            f"the API reads filter dates about {_hours(boundary)} from {api_timezone} "
            f"(an account at about {_offset_text(ours_now + timedelta(seconds=round(boundary / 900) * 900))})"
        )
        if tz_right:
            future_verdict = Verdict("future_limit", CONTRADICTED, shifted + ", with the timezone confirmed")
            clock_note = None
        else:
            future_verdict = Verdict(
                "future_limit",
                CANNOT_TELL,
                shifted + ": the account's timezone differs (see timezone) or the limit is not 30 days",
            )
            tz_wrong = True
    if clock_note:
        tz_notes.append(clock_note)
    tz_evidence = (
        "; ".join(tz_notes) or "no timestamp with an offset, and the future-limit search found no boundary"
    )
    if tz_wrong:
        timezone_verdict = Verdict(
            "timezone", CONTRADICTED, tz_evidence + "; set api_timezone to the account's timezone"
        )
    elif tz_right:
        timezone_verdict = Verdict("timezone", HOLDS, tz_evidence)
    else:
        timezone_verdict = Verdict("timezone", CANNOT_TELL, tz_evidence)
    return future_verdict, timezone_verdict


# -- messages -----------------------------------------------------------------------------------
# The vendor documents no window rules for GET /api/messages; the provider assumes the campaigns'
# (bsg_provider/client/resources.py, MESSAGES). These experiments check the parts the extraction relies on.

#: How far either side of the campaigns' 30-day boundary the messages' one is checked.
MESSAGES_FUTURE_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class Message:
    """The fields of one listed message the probe reads.

    :param id: message id.
    :param created: its ``created_at``.
    :param delivered: its ``delivered_at``, or else its ``sent_at``, if it has one.
    """

    id: int
    created: Stamp
    delivered: Stamp | None


def read_messages(records: Iterable[Any]) -> list[Message]:
    """The listed messages with a readable id and ``created_at``.

    :param records: the ``data`` of messages answers.
    """
    found = []
    for record, created in listed(records):
        later = parse_stamp(record.get("delivered_at")) or parse_stamp(record.get("sent_at"))
        found.append(Message(record["id"], created, later))
    return found


def message_field_candidate(messages: Sequence[Message], latest: datetime) -> Message | None:
    """A message delivered (or sent) at least 3 s after it was created, on the wall clock.

    :param messages: listed messages.
    :param latest: naive wall time the later timestamp may not pass (the future limit).
    """
    for message in messages:
        later = message.delivered
        if later is not None and later.wall - message.created.wall >= 3 * SECOND and later.wall <= latest:
            return message
    return None


def messages_outside(messages: Sequence[Message], lo: datetime, hi: datetime) -> list[Message]:
    """The messages whose shown ``created_at`` lies outside ``[lo, hi]`` on the wall clock.

    :param messages: listed messages.
    :param lo: naive wall time, a second of slack included.
    :param hi: naive wall time, a second of slack included.
    """
    return [m for m in messages if not lo <= m.created.wall <= hi]


@dataclass(frozen=True)
class MessageFieldTest:
    """Windows around one message's ``created_at`` and around its (later) delivery.

    :param message: the message.
    :param around_created: returned by ``[created_at - 1 s, created_at + 1 s]``.
    :param around_delivered: returned by ``[delivered_at - 1 s, delivered_at + 1 s]``.
    """

    message: Message
    around_created: bool
    around_delivered: bool


def message_field_verdict(
    evidence: Answer | None, test: MessageFieldTest | None, outside: Sequence[Message], window: str
) -> Verdict:
    """Whether the messages' filters select on ``created_at``.

    :param evidence: the answer to the evidence window, if asked.
    :param test: the two windows around a message delivered later than it was created, if any.
    :param outside: listed messages whose ``created_at`` lay outside the evidence window.
    :param window: the evidence window, as sent.
    """
    key = "messages_filter_field"
    if evidence is None:
        return Verdict(key, CANNOT_TELL, "no messages request was answered")
    if not evidence.accepted:
        return Verdict(
            key, CANNOT_TELL, f"messages for {window} were {evidence.describe()} (see messages span rule)"
        )
    notes = []
    if outside:
        example = outside[0]
        notes.append(
            f"{len(outside)} messages listed for {window} were created outside it, e.g. message "
            f"{example.id} created_at {example.created.text!r}"
        )
    if test is None:
        if outside:
            return Verdict(key, CONTRADICTED, "; ".join(notes))
        return Verdict(
            key,
            CANNOT_TELL,
            f"no message listed for {window} was delivered 3 s or more after it was created, so "
            "created_at cannot be told from the delivery time",
        )
    m = test.message
    assert m.delivered is not None
    label = f"message {m.id} (created_at {m.created.text!r}, delivered {m.delivered.text!r})"
    evidence_text = "; ".join(
        [
            f"{label}: a window of created_at +/- 1 s {_yes(test.around_created)}, a window of the delivery "
            f"+/- 1 s {_yes(test.around_delivered)}",
            *notes,
        ]
    )
    if test.around_created and not test.around_delivered and not outside:
        return Verdict(key, HOLDS, evidence_text)
    if test.around_delivered and not test.around_created:
        return Verdict(key, CONTRADICTED, evidence_text + ": the filters select on sent_at or delivered_at")
    if test.around_created and test.around_delivered:
        return Verdict(key, CANNOT_TELL, evidence_text)
    return Verdict(key, CONTRADICTED, evidence_text + ": the filters select on neither as assumed")


@dataclass(frozen=True)
class MessagesFutureTest:
    """``filter[to]`` of messages just before and just after where the campaigns' limit fell.

    :param center: seconds after our now + 30 days where the campaigns' limit fell (0 when the
        campaigns' search did not find it).
    :param measured: whether the campaigns' search found it.
    :param before: the answer at ``center - margin``.
    :param after: the answer at ``center + margin``.
    :param margin: how far either side of ``center``.
    """

    center: float
    measured: bool
    before: Answer | None
    after: Answer | None
    margin: timedelta = MESSAGES_FUTURE_MARGIN


def messages_future_verdict(test: MessagesFutureTest) -> Verdict:
    """Whether the messages' ``filter[to]`` stops where the campaigns' does (30 days ahead).

    :param test: the answers.
    """
    key = "messages_future_limit"
    where = "the campaigns' limit" if test.measured else "now + 30 days"
    margin = test.margin.total_seconds()
    lines = [f"filter[to] at {where} ({_hours(test.center)} from 30 days)"]
    if test.before is not None:
        lines.append(f"{_hours(-margin)}: {test.before.describe()}")
    if test.after is not None:
        lines.append(f"{_hours(margin)}: {test.after.describe()}")
    evidence = "; ".join(lines)
    if test.before is None or test.after is None:
        return Verdict(key, CANNOT_TELL, evidence + " (not every window was asked)")
    if not test.before.accepted:
        if "filter[to]" not in test.before.fields:
            return Verdict(key, CANNOT_TELL, evidence + ": refused for another reason than filter[to]")
        return Verdict(key, CONTRADICTED, evidence + f": the messages' limit lies before {where}")
    if test.after.accepted:
        return Verdict(key, CONTRADICTED, evidence + f": the messages' limit lies after {where}")
    return Verdict(key, HOLDS, evidence + f": the messages' limit is {where}, within {_hours(margin)[1:]}")


def exit_status(verdicts: Iterable[Verdict]) -> int:
    """1 when any assumption is contradicted, else 0.

    :param verdicts: the report.
    """
    return 1 if any(v.verdict == CONTRADICTED for v in verdicts) else 0
