"""
Check the provider's API assumptions against a real account, read-only.

Usage::

    python -m bsg_provider.check_api --conn-id bsg_default [--json] [--campaign-type sms]

It logs in and sends at most :data:`MAX_REQUESTS` requests, all ``GET /api/campaigns`` or
``GET /api/messages`` (no campaign is created, changed or stopped), then prints for each assumption of
docs/api-assumptions.md a verdict, ``holds``, ``contradicted`` or ``cannot tell``, with the
evidence. Exit status: 0 when nothing is contradicted, 1 when something is, 2 when the
check could not run (connection, login or network). The API key and tokens are never
printed. The experiments and verdicts live in :mod:`bsg_provider.probe.checks`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from bsg_provider.client.api import CAMPAIGN_TYPES, ApiRequest
from bsg_provider.client.resources import CAMPAIGNS, MESSAGES
from bsg_provider.errors import BsgApiError, BsgConfigError, BsgValidationError
from bsg_provider.extraction.windows import add_months
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.probe.checks import (
    ASSUMPTIONS,
    CANNOT_TELL,
    CONTRADICTED,
    EVIDENCE_DAYS,
    FUTURE_LIMIT,
    HOLDS,
    MESSAGES_FUTURE_MARGIN,
    SECOND,
    SPAN_MONTHS,
    Answer,
    Campaign,
    EdgeTest,
    FieldTest,
    FutureSearch,
    Message,
    MessageFieldTest,
    MessagesFutureTest,
    SpanTest,
    Verdict,
    bound_verdicts,
    edge_candidates,
    exit_status,
    field_candidate,
    field_verdict,
    format_verdict,
    future_and_timezone_verdicts,
    message_field_candidate,
    message_field_verdict,
    messages_future_verdict,
    messages_outside,
    plain_wall,
    precision_verdict,
    read_campaigns,
    read_messages,
    render_filter,
    span_anchor,
    span_verdict,
)

#: Requests the probe sends at most, its login included (retries of a failed request count too).
MAX_REQUESTS = 50
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")
_FILTER_FIELDS = ("filter[from]", "filter[to]")


class BudgetSpent(Exception):
    """The probe reached :data:`MAX_REQUESTS`."""


class ApiProbe:
    """
    Runs the experiments through a :class:`~bsg_provider.hooks.bsg.BsgHook` and collects verdicts.

    :param hook: a hook of the connection to check (logged in on the first request).
    :param campaign_type: the ``filter[type]`` to look at.
    :param now: our clock; the real one when None.
    :param max_requests: the request budget, login included.
    """

    def __init__(
        self,
        hook: BsgHook,
        *,
        campaign_type: str = "sms",
        now: datetime | None = None,
        max_requests: int = MAX_REQUESTS,
    ) -> None:
        self.hook = hook
        self.campaign_type = campaign_type
        self.now = now or datetime.now(timezone.utc)
        self.max_requests = max_requests
        self.api_timezone: str = hook.settings.api_timezone
        self.tz: tzinfo = ZoneInfo(self.api_timezone)
        self.fmt = "plain"
        self.campaigns: list[Campaign] = []
        self._seen: set[int] = set()
        # Set by the first stage once a window was answered: later stages need its evidence.
        self._outside: list[Campaign] | None = None
        self._evidence_window = (self.now, self.now)
        self._edge_tests: list[EdgeTest] = []
        # Where the campaigns' 30-day limit fell (seconds after our now + 30 days), once measured.
        self._future_boundary: float | None = None

    # -- requests -----------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Requests sent so far (login and retries included)."""
        return int(self.hook.counters.requests)

    def ask(
        self,
        api_from: str | None,
        api_to: str | None,
        *,
        limit: int = 500,
        way: str = "asc",
        messages: bool = False,
    ) -> tuple[Answer, list[dict[str, Any]]]:
        """One ``GET /api/campaigns`` (or ``GET /api/messages``); a 422 is an answer, not an error.

        :param api_from: ``filter[from]`` as sent, or None to leave it out.
        :param api_to: ``filter[to]`` as sent, or None to leave it out.
        :param limit: ``page[limit]``.
        :param way: ``asc`` or ``desc`` (by id).
        :param messages: ask the messages endpoint (every campaign's) instead.
        """
        # A login still to come counts too, and retries may add to a request: keep a margin of one.
        if self.requests + (2 if self.requests == 0 else 1) > self.max_requests:
            raise BudgetSpent
        params = {"page[limit]": str(limit), "sort": "id", "way": way}
        if not messages:
            params["filter[type]"] = self.campaign_type
        if api_from is not None:
            params["filter[from]"] = api_from
        if api_to is not None:
            params["filter[to]"] = api_to
        request = (
            ApiRequest("messages", "GET", MESSAGES.path, params=params)
            if messages
            else ApiRequest("list", "GET", CAMPAIGNS.path, params=params)
        )
        try:
            payload = self.hook.call(request)
        except BsgValidationError as exc:
            messages = [msg for msgs in exc.errors.values() for msg in msgs]
            return Answer(False, fields=tuple(sorted(exc.errors)), message=" ".join(messages)[:300]), []
        records = payload.get("data") if isinstance(payload, dict) else None
        records = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
        ids = frozenset(r["id"] for r in records if isinstance(r.get("id"), int))
        return Answer(True, ids=ids), records

    def value(self, instant: datetime) -> str:
        """A filter value for an instant, in the format in use."""
        return render_filter(instant, self.tz, self.fmt)

    def _keep(self, records: Sequence[dict[str, Any]]) -> list[Campaign]:
        found = read_campaigns(records)
        for campaign in found:
            if campaign.id not in self._seen:
                self._seen.add(campaign.id)
                self.campaigns.append(campaign)
        return found

    # -- experiments --------------------------------------------------------------------------

    def run(self) -> list[Verdict]:
        """Every experiment, then the verdicts in :data:`~bsg_provider.probe.checks.ASSUMPTIONS` order."""
        verdicts: dict[str, Verdict] = {}
        stages = (
            self._formats_and_evidence,
            self._filter_field,
            self._bounds,
            self._span,
            self._future,
            self._messages_field,
            self._messages_span,
            self._messages_future,
        )
        for stage in stages:
            try:
                for verdict in stage():
                    verdicts[verdict.key] = verdict
            except BudgetSpent:
                break
        if "precision" not in verdicts and "from_bound" in verdicts:
            verdicts["precision"] = precision_verdict(self.campaigns, self._edge_tests)
        spent = f"not checked: the probe's budget of {self.max_requests} requests was spent"
        return [verdicts.get(key) or Verdict(key, CANNOT_TELL, spent) for key in ASSUMPTIONS]

    def _formats_and_evidence(self) -> list[Verdict]:
        end = self.now
        start = end - timedelta(days=EVIDENCE_DAYS)
        plain, records = self.ask(self.value(start), self.value(end), way="desc")
        self._evidence_window = (start, end)
        iso_value = lambda instant: render_filter(instant, self.tz, "iso")  # noqa: E731
        iso = None
        if plain.accepted:
            self._outside = self._outside_of(self._keep(records), start, end)
            iso, _ = self.ask(iso_value(end - timedelta(days=1)), iso_value(end), limit=30)
        elif set(plain.fields) & set(_FILTER_FIELDS):
            iso, records = self.ask(iso_value(start), iso_value(end), way="desc")
            if iso.accepted:
                self.fmt = "iso"
                self._outside = self._outside_of(self._keep(records), start, end)
        verdict = format_verdict(plain, iso)
        if self._outside is None:
            return [verdict]
        # An empty recent past: look further back, window by legal window.
        for step in (1, 2):
            if self.campaigns:
                break
            hi = end - timedelta(days=EVIDENCE_DAYS * step)
            lo = hi - timedelta(days=EVIDENCE_DAYS)
            answer, records = self.ask(self.value(lo), self.value(hi), way="desc")
            if answer.accepted:
                self._keep(records)
        return [verdict]

    def _outside_of(self, found: Sequence[Campaign], start: datetime, end: datetime) -> list[Campaign]:
        # Compared on the wall clock the window was sent in, with a second of slack for rounding.
        if self.fmt == "plain":
            lo = start.astimezone(self.tz).replace(tzinfo=None) - SECOND
            hi = end.astimezone(self.tz).replace(tzinfo=None) + SECOND
            return [c for c in found if not lo <= c.created.wall <= hi]
        return [c for c in found if not start - SECOND <= c.created.instant(self.tz) <= end + SECOND]

    def _window(self, campaign: Campaign, stamp_of: str, before: timedelta, after: timedelta) -> bool:
        stamp = campaign.created if stamp_of == "created" else campaign.start
        assert stamp is not None
        answer, records = self.ask(
            stamp.filter_value(-before, self.tz, self.fmt), stamp.filter_value(after, self.tz, self.fmt)
        )
        self._keep(records)
        if not answer.accepted:
            return False
        return campaign.id in answer.ids

    def _filter_field(self) -> list[Verdict]:
        if self._outside is None:
            return []
        latest = (self.now + FUTURE_LIMIT - timedelta(hours=15)).astimezone(self.tz).replace(tzinfo=None)
        candidate = field_candidate(self.campaigns, latest)
        test = None
        if candidate is not None:
            around_created = self._window(candidate, "created", SECOND, SECOND)
            around_start = self._window(candidate, "start", SECOND, SECOND)
            test = FieldTest(candidate, around_created, around_start)
        start, end = self._evidence_window
        window = f"[{self.value(start)}, {self.value(end)}]"
        return [field_verdict(test, self._outside, window)]

    def _bounds(self) -> list[Verdict]:
        if self._outside is None:
            return []
        tests: list[EdgeTest] = []
        self._edge_tests = tests
        for campaign in edge_candidates(self.campaigns, 2):
            around = self._window(campaign, "created", SECOND, SECOND)
            if not around:
                tests.append(EdgeTest(campaign, around=False))
                continue
            exact = self._window(campaign, "created", timedelta(0), timedelta(0))
            from_edge = self._window(campaign, "created", timedelta(0), SECOND)
            to_edge = self._window(campaign, "created", SECOND, timedelta(0))
            tests.append(EdgeTest(campaign, True, exact, from_edge, to_edge))
        fraction_shown = any(c.created.has_nonzero_fraction for c in self.campaigns)
        from_verdict, to_verdict = bound_verdicts(tests, fraction_shown)
        return [from_verdict, to_verdict, precision_verdict(self.campaigns, tests)]

    def _span(self, messages: bool = False) -> list[Verdict]:
        if self._outside is None:
            return []
        anchor = span_anchor(self.now.astimezone(self.tz).replace(tzinfo=None))
        calendar_start = add_months(anchor, -SPAN_MONTHS)
        # The smallest page each endpoint accepts: only the answer's status matters.
        limit = MESSAGES.min_page_size if messages else CAMPAIGNS.min_page_size

        def ask(start_wall: datetime) -> Answer:
            return self.ask(
                self._wall_value(start_wall), self._wall_value(anchor), limit=limit, messages=messages
            )[0]

        test = SpanTest(anchor, None, None, None)
        try:
            test = SpanTest(anchor, ask(anchor - timedelta(days=89)), None, None)
            test = SpanTest(anchor, test.days_89, ask(calendar_start), None)
            test = SpanTest(anchor, test.days_89, test.calendar, ask(calendar_start - SECOND))
            if test.calendar is not None and not test.calendar.accepted:
                test = SpanTest(
                    anchor, test.days_89, test.calendar, test.calendar_plus, ask(anchor - timedelta(days=90))
                )
        except BudgetSpent:
            pass
        return [span_verdict(test, "messages_span_rule" if messages else "span_rule")]

    def _wall_value(self, wall: datetime) -> str:
        if self.fmt == "plain":
            return plain_wall(wall)
        return self.value(wall.replace(tzinfo=self.tz))

    def _future(self) -> list[Verdict]:
        if self._outside is None:
            return []
        search = FutureSearch()
        base = self.now + FUTURE_LIMIT
        try:
            while (offset := search.next_offset()) is not None:
                to = base + timedelta(seconds=offset)
                answer, _ = self.ask(self.value(to - timedelta(days=1)), self.value(to), limit=30)
                if not answer.accepted and "filter[to]" not in answer.fields:
                    break  # refused for another reason: the search would mislead
                search.record(offset, answer.accepted)
        except BudgetSpent:
            pass
        self._future_boundary = search.boundary
        return list(
            future_and_timezone_verdicts(
                search, api_timezone=self.api_timezone, tz=self.tz, now=self.now, campaigns=self.campaigns
            )
        )

    # -- messages: the campaigns' window rules assumed (docs/api-assumptions.md, section 8) --------

    def _messages_field(self) -> list[Verdict]:
        if self._outside is None:
            return []
        start, end = self._evidence_window
        window = f"[{self.value(start)}, {self.value(end)}]"
        evidence, records = self.ask(self.value(start), self.value(end), way="desc", messages=True)
        found = read_messages(records)
        if self.fmt == "plain":
            lo = start.astimezone(self.tz).replace(tzinfo=None) - SECOND
            hi = end.astimezone(self.tz).replace(tzinfo=None) + SECOND
        else:
            lo = (start - SECOND).astimezone(self.tz).replace(tzinfo=None)
            hi = (end + SECOND).astimezone(self.tz).replace(tzinfo=None)
        outside = messages_outside(found, lo, hi) if evidence.accepted else []
        latest = (self.now + FUTURE_LIMIT - timedelta(hours=15)).astimezone(self.tz).replace(tzinfo=None)
        candidate = message_field_candidate(found, latest) if evidence.accepted else None
        test = None
        if candidate is not None:
            test = MessageFieldTest(
                candidate,
                self._message_window(candidate, candidate.created),
                self._message_window(candidate, candidate.delivered),
            )
        return [message_field_verdict(evidence, test, outside, window)]

    def _message_window(self, message: Message, stamp: Any) -> bool:
        answer, _ = self.ask(
            stamp.filter_value(-SECOND, self.tz, self.fmt),
            stamp.filter_value(SECOND, self.tz, self.fmt),
            messages=True,
        )
        return answer.accepted and message.id in answer.ids

    def _messages_span(self) -> list[Verdict]:
        return self._span(messages=True)

    def _messages_future(self) -> list[Verdict]:
        if self._outside is None:
            return []
        center = self._future_boundary or 0.0
        base = self.now + FUTURE_LIMIT + timedelta(seconds=center)
        answers: list[Answer | None] = [None, None]
        try:
            for index, shift in enumerate((-MESSAGES_FUTURE_MARGIN, MESSAGES_FUTURE_MARGIN)):
                to = base + shift
                answers[index] = self.ask(
                    self.value(to - timedelta(days=1)),
                    self.value(to),
                    limit=MESSAGES.min_page_size,
                    messages=True,
                )[0]
        except BudgetSpent:
            pass
        test = MessagesFutureTest(center, self._future_boundary is not None, answers[0], answers[1])
        return [messages_future_verdict(test)]


# -- report -----------------------------------------------------------------------------------


def render_report(
    verdicts: Sequence[Verdict], *, conn_id: str, base_url: str, api_timezone: str, requests: int
) -> str:
    """The report a person reads.

    :param verdicts: the verdicts.
    :param conn_id: the connection checked.
    :param base_url: its base URL.
    :param api_timezone: its API timezone.
    :param requests: requests sent.
    """
    lines = [
        f"BSG One API assumptions checked against {base_url} "
        f"(connection {conn_id!r}, api_timezone {api_timezone}); read-only, {requests} requests.",
        "",
    ]
    for verdict in verdicts:
        lines.append(f"{verdict.verdict:<13} {verdict.key}: {verdict.assumption}")
        lines.append(f"{'':13} {verdict.evidence}")
    counts = {name: sum(v.verdict == name for v in verdicts) for name in (HOLDS, CONTRADICTED, CANNOT_TELL)}
    lines += [
        "",
        f"{counts[HOLDS]} hold, {counts[CONTRADICTED]} contradicted, {counts[CANNOT_TELL]} cannot tell. "
        "What each verdict means for you: docs/api-assumptions.md.",
    ]
    return "\n".join(lines)


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """``text`` with every secret and anything shaped like a JWT replaced by ``***``.

    :param text: the output.
    :param secrets: the API key and tokens.
    """
    for secret in secrets:
        if secret:
            text = text.replace(str(secret), "***")
    return _JWT.sub("***", text)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bsg_provider.check_api",
        description="Check the provider's BSG One API assumptions against your account (read-only, "
        f"at most {MAX_REQUESTS} requests). Exit status 0: nothing contradicted; 1: an assumption is "
        "contradicted; 2: the check could not run.",
    )
    parser.add_argument(
        "--conn-id", default="bsg_default", help="the bsg connection to check (default bsg_default)"
    )
    parser.add_argument(
        "--campaign-type", default="sms", choices=CAMPAIGN_TYPES, help="filter[type] to look at"
    )
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe and print its report.

    :param argv: arguments without the program name; sys.argv when None.
    """
    args = build_parser().parse_args(argv)
    hook = BsgHook(args.conn_id)
    secrets: list[str | None] = []
    try:
        try:
            with contextlib.redirect_stdout(sys.stderr):
                settings = hook.settings
        except BsgConfigError as exc:
            print(f"Cannot check connection {args.conn_id!r}: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"Cannot check connection {args.conn_id!r}: {exc}", file=sys.stderr)
            return 2
        secrets.append(str(settings.api_key))
        probe = ApiProbe(hook, campaign_type=args.campaign_type)
        try:
            # The hook's log lines (Airflow prints them to stdout) go to stderr: stdout is the report.
            with contextlib.redirect_stdout(sys.stderr):
                verdicts = probe.run()
        except BsgApiError as exc:
            secrets.append(getattr(hook, "_token", None))
            message = f"Cannot check connection {args.conn_id!r}: {exc}"
            print(redact(message, secrets), file=sys.stderr)
            return 2
        secrets.append(getattr(hook, "_token", None))
        if args.json:
            output = json.dumps(
                {
                    "conn_id": args.conn_id,
                    "api_timezone": settings.api_timezone,
                    "requests": probe.requests,
                    "verdicts": [v.as_dict() for v in verdicts],
                    "exit_status": exit_status(verdicts),
                },
                indent=2,
            )
        else:
            output = render_report(
                verdicts,
                conn_id=args.conn_id,
                base_url=settings.base_url,
                api_timezone=settings.api_timezone,
                requests=probe.requests,
            )
        print(redact(output, secrets))
        return exit_status(verdicts)
    finally:
        hook.close()


if __name__ == "__main__":
    sys.exit(main())
