"""The sync hook: every task that talks to the BSG One API goes through :class:`BsgHook`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property, partial
from typing import Any, TypeVar

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from tenacity import Retrying

from bsg_provider.client.api import (
    MIN_PAGE_SIZE,
    USER_AGENT,
    ApiRequest,
    campaign_details_request,
    check_campaign_id,
    check_campaign_ids,
    connection_error,
    get_campaign_request,
    http_request,
    is_plain_http,
    is_span_refusal,
    list_campaigns_request,
    list_request,
    login_request,
    parse_campaign,
    parse_campaign_details,
    parse_campaign_page,
    parse_list_page,
    parse_token,
    read_response,
    refresh_request,
    timeout_error,
)
from bsg_provider.client.connection import (
    MAX_CONCURRENCY_LIMIT,
    BsgConnectionSettings,
    check_max_concurrency,
    connection_fields,
    warn_if_plain_http,
)
from bsg_provider.client.counters import RequestCounters
from bsg_provider.client.policy import Pacer, TokenState, retry_kwargs
from bsg_provider.client.resources import CAMPAIGNS, MESSAGES, ListQuery, campaigns_query, messages_query
from bsg_provider.errors import BsgApiError, BsgAuthError, BsgError, BsgPagingError, BsgValidationError
from bsg_provider.extraction.paging import WindowPager
from bsg_provider.extraction.prefetch import FetchCancelled, PagePrefetcher
from bsg_provider.extraction.progress import ExtractionProgress
from bsg_provider.extraction.window_filter import WindowFilter
from bsg_provider.extraction.windows import Window, WindowPlan, plan_windows
from bsg_provider.hooks import metrics
from bsg_provider.hooks.connection_form import CONNECTION_FIELDS, CONNECTION_UI_BEHAVIOUR

T = TypeVar("T")
#: What the page prefetcher fetches: a window, its pass (re-reads so far) and the offset.
PageKey = tuple[Window, int, int]
#: Bytes read at once from an answer's body: more than any page holds.
_BODY_CHUNK = 1 << 22

#: Seconds the Test button waits for each request at most, whatever the connection's timeout.
TEST_CONNECTION_MAX_TIMEOUT = 10.0


class BsgHook(BaseHook):
    """
    Talk to the BSG One API: JWT login and renewal, retries, paging and window planning.

    Thread-safe for its own concurrent paging: the threads share one login (a renewal happens
    once, the others wait for it), one rate limit and one back-off (:attr:`pacer`).

    :param bsg_conn_id: id of a connection of type ``bsg``: host is the base URL,
        password the API key; extras ``api_timezone``, ``timeout``, ``max_retries``,
        ``retry_max_wait``, ``max_requests_per_second`` and ``max_concurrency``.
    :param max_concurrency: list requests in flight at most while paging; None for the
        connection's ``max_concurrency``. 1 reads one page after another.
    """

    conn_name_attr = "bsg_conn_id"
    default_conn_name = "bsg_default"
    conn_type = "bsg"
    hook_name = "BSG One API"

    def __init__(self, bsg_conn_id: str = default_conn_name, max_concurrency: int | None = None) -> None:
        super().__init__()
        self.bsg_conn_id = bsg_conn_id
        self.counters = RequestCounters()
        self._max_concurrency = check_max_concurrency(max_concurrency)
        self._tokens = TokenState()
        # Held while the token is renewed, so concurrent requests renew it once.
        self._token_lock = threading.Lock()
        #: The connection's rate limit and the shared back-off: a retry's wait holds every
        #: request of this hook (one 429 slows all in flight). The rate is set with the settings.
        self.pacer = Pacer(None)
        self._prefetchers: set[PagePrefetcher[Any, Any]] = set()
        #: The windows the last :meth:`iter_pages` read, after any re-planning (None before).
        self.last_plan: WindowPlan | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel, hide and fill in the connection form's fields (Airflow 3.0; 3.3 reads provider info)."""
        return CONNECTION_UI_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """
        The extras as connection form fields for Airflow 3.0, which ignores provider info's
        ``conn-fields`` (3.1+ reads those and never calls this). Airflow 3.0 builds the form from
        wtforms fields, so they appear only where ``wtforms`` is installed (the FAB provider
        installs it); the form saves each under its plain name, e.g. ``timeout``.
        """
        from wtforms import IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        widgets: dict[str, Any] = {}
        for name, spec in CONNECTION_FIELDS.items():
            default = spec["schema"].get("default")
            if "integer" in spec["schema"]["type"]:
                field = IntegerField(
                    spec["label"],
                    validators=[
                        Optional(),
                        NumberRange(min=spec["schema"].get("minimum", 0), max=spec["schema"].get("maximum")),
                    ],
                    description=spec["description"],
                    default=default,
                )
            else:
                # wtforms has no float field Airflow 3.0 accepts: numbers are typed as text,
                # which the hook reads as numbers. Empty by default (the placeholder shows the
                # default): a pre-filled short text such as "30" would be saved, and Airflow's
                # secrets masker warns about every extra under 5 characters in each task's log.
                field = StringField(
                    spec["label"],
                    validators=[Optional()],
                    description=spec["description"],
                    default=None,
                )
            widgets[name] = field
        return widgets

    @cached_property
    def settings(self) -> BsgConnectionSettings:
        """The connection's fields, validated on first use."""
        settings = BsgConnectionSettings.from_fields(
            self.bsg_conn_id, **connection_fields(self.get_connection(self.bsg_conn_id))
        )
        mask_secret(settings.api_key)
        warn_if_plain_http(self.log, self.bsg_conn_id, settings.base_url)
        self.pacer.set_rate(settings.max_requests_per_second)
        return settings

    @property
    def max_concurrency(self) -> int:
        """List requests in flight at most while paging: the argument, else the connection's."""
        if self._max_concurrency is not None:
            return self._max_concurrency
        return self.settings.max_concurrency

    def get_conn(self) -> requests.Session:
        """
        A session with the provider's User-Agent, reused for every request of this hook.

        The proxy and CA bundle the environment sets for the connection's base URL
        (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``...) are read once, when the session
        is made, and ``.netrc`` is not read: the session is meant for the API's host.
        """
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # Enough pooled connections for every paging thread to keep its own alive (idle ones cost nothing).
        for prefix in ("http://", "https://"):
            session.mount(prefix, HTTPAdapter(pool_maxsize=max(DEFAULT_POOLSIZE, MAX_CONCURRENCY_LIMIT)))
        # requests would read these from the environment again for every request (a scan of
        # os.environ and a stat of ~/.netrc: about a tenth of a page's CPU in an Airflow worker).
        environment = session.merge_environment_settings(self.settings.base_url, {}, None, None, None)
        session.proxies.update(environment["proxies"])
        session.verify = environment["verify"]
        session.trust_env = False
        return session

    def close(self) -> None:
        """Stop any paging still under way (its threads end) and close the HTTP session's connections."""
        for prefetcher in list(self._prefetchers):
            prefetcher.close()
        self._prefetchers.clear()
        if "_session" in self.__dict__:
            self._session.close()
            del self.__dict__["_session"]

    # -- requests -----------------------------------------------------------------------------
    # One call: tenacity's retry loop around an authenticated send. The decisions (what to
    # retry, how long to wait, when to renew the token, when a request may go) are
    # client/policy.py's, shared with the async hook; this is the I/O around them.

    @property
    def _token(self) -> str | None:
        """The token this hook sends now (None before the first login)."""
        return self._tokens.token

    @_token.setter
    def _token(self, value: str | None) -> None:
        self._tokens.token = value

    @property
    def _token_expiry(self) -> datetime | None:
        return self._tokens.expiry

    @_token_expiry.setter
    def _token_expiry(self, value: datetime | None) -> None:
        self._tokens.expiry = value

    def call(
        self,
        request: ApiRequest,
        parse: Callable[[Any], T] | None = None,
        *,
        retries: bool = True,
        timeout: float | None = None,
    ) -> T:
        """
        Send ``request`` with authentication and retries; return the decoded JSON answer.

        :param request: built by one of :mod:`bsg_provider.client.api`'s ``*_request`` functions.
        :param parse: reads the answer inside the retry loop, so an answer of the wrong shape is
            retried like a truncated one; its result is returned instead of the raw JSON.
        :param retries: retry transient failures as the connection says; False tries once.
        :param timeout: seconds per request; None for the connection's.
        :raises BsgApiError: when the API refuses it, or transient failures outlast the retries.
        """
        return self._call(request, parse, retries=retries, timeout=timeout)

    def _call(
        self,
        request: ApiRequest,
        parse: Callable[[Any], T] | None = None,
        *,
        retries: bool = True,
        timeout: float | None = None,
        cancelled: threading.Event | None = None,
    ) -> T:
        """
        :meth:`call`, for a paging thread too: once ``cancelled`` is set its waits end at once and it
        raises :class:`FetchCancelled` before sending anything more (an answer received is kept).
        """
        settings = self.settings
        timeout = settings.timeout if timeout is None else timeout
        wait = time.sleep if cancelled is None else cancelled.wait
        policy = retry_kwargs(
            max_retries=settings.max_retries if retries else 0,
            max_wait=settings.retry_max_wait,
            log=self.log,
            on_retry=self._count_retry,
        )
        for attempt in Retrying(**policy, sleep=partial(self._back_off, wait=wait)):
            with attempt:
                answer = self._authenticated(request, timeout, cancelled)
                return parse(answer) if parse is not None else answer
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _authenticated(self, request: ApiRequest, timeout: float, cancelled: threading.Event | None) -> Any:
        """Send ``request`` with the current token (renewed if due); after a 401, log in and replay once."""
        if not request.authenticated:
            return self._send(request, None, timeout, cancelled)
        token = self._tokens.current() or self._renew(None, timeout, cancelled)
        try:
            return self._send(request, token, timeout, cancelled)
        except BsgAuthError as exc:
            if exc.status != 401:
                raise
        # Revoked or expired early: one fresh login, then the same request once more.
        self.log.info("BSG One API refused the token (401); logging in again and replaying the request.")
        return self._send(request, self._renew(token, timeout, cancelled), timeout, cancelled)

    def _renew(self, refused: str | None, timeout: float, cancelled: threading.Event | None) -> str:
        """
        Renew the shared token, one thread at a time: refresh it, else log in; return the new one.

        A thread that waited for the lock uses what the renewal it waited for gave, or raises its
        failure. A token the API issued is kept for everyone, even if this fetch was dropped meanwhile.

        :param refused: the token the API just refused (then: log in), or None when it is due.
        """
        tokens = self._tokens
        seen = tokens.renewals
        with self._token_lock:
            token = tokens.reusable(refused)
            if token is not None:
                return token
            current = tokens.begin_renewal(seen, refused)
            try:
                payload = self._refresh(current, timeout, cancelled) if current is not None else None
                if payload is None:
                    tokens.token = None  # a login replaces whatever token there was
                    self.counters.add(logins=1)
                    payload = self._send(login_request(self.settings.api_key), None, timeout, cancelled)
                token = parse_token(payload)
                mask_secret(token)
            except BaseException as exc:
                tokens.renewal_failed(exc)
                raise
            tokens.renewed(token)
            return token

    def _refresh(self, token: str, timeout: float, cancelled: threading.Event | None) -> Any | None:
        """The refresh endpoint's answer, or None when it failed (a login follows)."""
        self.counters.add(refreshes=1)
        try:
            return self._send(refresh_request(), token, timeout, cancelled)
        except BsgApiError as exc:
            reason = exc.status or exc.__class__.__name__
            self.log.info("Token refresh failed (%s); logging in again.", reason)
            return None

    def _back_off(self, seconds: float, wait: Callable[[float], object]) -> None:
        """tenacity's sleep: a retry's wait holds every request of this hook, not only this one."""
        self.counters.add(retry_wait_seconds=seconds)
        self.pacer.hold(seconds)
        self._wait_held(wait)

    def _wait_held(self, wait: Callable[[float], object]) -> None:
        # A hold may be extended while we wait: look again until it has passed (or we were cancelled).
        while (pause := self.pacer.held_for()) > 0:
            if wait(pause) is True:
                return

    def _count_retry(self, reason: str) -> None:
        self.counters.add(retries=1)
        metrics.retried(reason)

    def _send(
        self, request: ApiRequest, token: str | None, timeout: float, cancelled: threading.Event | None = None
    ) -> Any:
        # A cancelled fetch wakes from its waits at once (Event.wait returns True).
        wait = time.sleep if cancelled is None else cancelled.wait
        # The rate-limit slot first, then the shared back-off: a 429 that came in while this
        # request waited for its slot still holds it; and a dropped fetch sends nothing.
        throttled = self.pacer.reserve()
        if throttled > 0:
            wait(throttled)
        self._wait_held(wait)
        if cancelled is not None and cancelled.is_set():
            raise FetchCancelled
        if request.endpoint == "login":
            metrics.logged_in()
        self.counters.add(requests=1, throttle_wait_seconds=throttled)
        base_url = self.settings.base_url
        started = time.monotonic()
        status: int | None = None
        try:
            response = self._session.request(
                **http_request(request, base_url, token),
                timeout=(timeout, timeout),
                # As in the async hook: a redirect is reported, never followed (it would turn the
                # login POST into a GET, and carry the token to another host).
                allow_redirects=False,
                # The body read in one piece, not in requests' 10 KiB chunks: a third less CPU a page.
                stream=True,
            )
            try:
                body = b"".join(response.iter_content(_BODY_CHUNK))
            finally:
                response.close()  # back to the pool when read to the end; dropped when not
            status = response.status_code
        except requests.Timeout:
            raise timeout_error(request, base_url, timeout) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise connection_error(request, base_url, exc) from None
        finally:
            metrics.request_sent(request.endpoint, status, time.monotonic() - started)
        return read_response(request, status, body, response.headers)

    # -- campaigns ----------------------------------------------------------------------------

    def get_campaign(self, campaign_id: int | str, *, retries: bool = True) -> dict[str, Any]:
        """
        One campaign with all its properties.

        :param campaign_id: the campaign's id.
        :param retries: retry transient failures as the connection says; False tries once.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        request = get_campaign_request(check_campaign_id(campaign_id))
        return self.call(request, parse=parse_campaign, retries=retries)

    def plan(self, start: datetime, end: datetime, *, now: datetime | None = None) -> WindowPlan:
        """
        The windows that cover ``[start, end)`` in this connection's API timezone.

        :param start: interval start, timezone-aware.
        :param end: interval end (excluded), timezone-aware.
        :param now: the current time; defaults to the real clock.
        """
        plan = plan_windows(start, end, tz=self.settings.api_timezone, now=now)
        if plan.clipped:
            self.log.warning(
                "The interval ends at %s, past the API limit of 30 days ahead; extracting up to %s instead.",
                plan.requested_end.isoformat(),
                plan.end.isoformat(),
            )
        return plan

    def iter_window_pages(
        self, window: Window, *, campaign_type: str = "sms", page_size: int = 500
    ) -> Iterator[list[dict[str, Any]]]:
        """
        The campaigns of one window, page by page, each campaign once, even if rows change mid-way.

        After rows changed mid-way the window is read again, and the records it had missed
        come after later ones: order by id is not guaranteed then.

        :param window: one window of a :class:`~bsg_provider.extraction.windows.WindowPlan`.
        :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
        :param page_size: records per request, 30..500.
        :raises BsgAssumptionError: when a page holds a campaign the request ruled out.
        """
        query = campaigns_query(campaign_type)
        window_filter = self._window_filter(query)
        for fresh, _total in self._window_pages(window, query, page_size, window_filter):
            if fresh:
                yield fresh

    def _window_filter(self, query: ListQuery) -> WindowFilter:
        return WindowFilter(tz=self.settings.api_timezone, query=query, conn_id=self.bsg_conn_id)

    def _window_pages(
        self,
        window: Window,
        query: ListQuery,
        page_size: int,
        window_filter: WindowFilter,
        prefetcher: PagePrefetcher[PageKey, Any] | None = None,
        next_window: Window | None = None,
        typed: bool = False,
    ) -> Iterator[tuple[list[Any], int | None]]:
        resource = query.resource
        parse = partial(parse_list_page, endpoint=resource.endpoint, noun=resource.noun)
        api_from, api_to = window.api_bounds(self.settings.api_timezone)
        window_filter.window(window)
        # Rows can appear only in a window reaching the present; there pages overlap by one row.
        pager = WindowPager(page_size, overlap=window.is_live(datetime.now(timezone.utc)))
        while not pager.done:
            if prefetcher is None:
                page = self.call(
                    list_request(
                        query, api_from, api_to, offset=pager.request_offset, limit=page_size, typed=typed
                    ),
                    parse=parse,
                )
            else:
                # The same page, maybe fetched ahead; the pager still takes them in this order.
                prefetcher.ahead(
                    self._expected_pages(pager, window, next_window, prefetcher.lookahead, prefetcher.peek)
                )
                page = prefetcher.get((window, pager.rescans, pager.request_offset))
            # The request asks for a little more than the window: keep what was created in it.
            fresh = window_filter.keep(pager.accept(page))
            if pager.rescans and pager.offset == 0:
                self.log.warning(
                    "%s changed while paging %s..%s (total now %s); reading the window again "
                    "(re-read %d) so nothing is skipped.",
                    resource.name.capitalize(),
                    api_from,
                    api_to,
                    pager.total,
                    pager.rescans,
                )
            yield fresh, pager.total

    @staticmethod
    def _expected_pages(
        pager: WindowPager,
        window: Window,
        next_window: Window | None,
        count: int,
        peek: Callable[[PageKey], Any | None],
    ) -> list[PageKey]:
        """
        The pages the pager will ask for next; once this window's tail fits, the next window's
        first, and once a window's first page is in (``peek`` gives it), the pages its total promises.

        A window that can still gain rows (its pages overlap) is read one page at a time: a busy
        account adds rows between any two requests, so pages answered out of order would show
        totals going back and forth, which the pager must take for drift and read again.

        :param count: how many pages at most.
        :param peek: the answer for a page fetched ahead, without taking it, or None.
        """
        if pager.overlap:
            return [(window, pager.rescans, pager.request_offset)]
        keys = [(window, pager.rescans, offset) for offset in pager.predicted_offsets(count)]
        if pager.total is None:
            # Its first page may be in already, fetched while the window before was read.
            return keys + _pages_after_first(window, pager.limit, peek(keys[0]), count - len(keys))
        if len(keys) < count and next_window is not None:
            first = (next_window, 0, 0)
            keys.append(first)
            keys += _pages_after_first(next_window, pager.limit, peek(first), count - len(keys))
        return keys

    def _page_fetcher(
        self, query: ListQuery, page_size: int, typed: bool = False
    ) -> Callable[[PageKey, threading.Event], Any]:
        """What the prefetcher's threads run: one list page, as :meth:`call` would fetch it."""
        resource = query.resource
        parse = partial(parse_list_page, endpoint=resource.endpoint, noun=resource.noun)
        settings = self.settings

        def fetch(key: PageKey, cancelled: threading.Event) -> Any:
            window, _pass, offset = key
            api_from, api_to = window.api_bounds(settings.api_timezone)
            request = list_request(query, api_from, api_to, offset=offset, limit=page_size, typed=typed)
            return self._call(request, parse, cancelled=cancelled)

        return fetch

    def iter_pages(
        self, plan: WindowPlan, *, campaign_type: str = "sms", page_size: int = 500, typed: bool = False
    ) -> Iterator[list[Any]]:
        """
        The campaigns of every window of ``plan``, page by page, with progress in the task log.

        Logs the plan first, then a line per window and at most one every few seconds
        within a window, then totals once the last page was read. When the API refuses a
        window's span (HTTP 422 naming the filter bounds), the rest of the interval is
        planned again in shorter windows, said once in the log; :attr:`last_plan` holds the
        windows actually read.

        :param plan: from :meth:`plan`.
        :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
        :param page_size: records per request, 30..500.
        :param typed: the extraction's fast path: a usual page's campaigns come as
            :class:`~bsg_provider.client.usual_page.UsualCampaign` structs, decoded straight from
            the body (any other page as dicts; :func:`~bsg_provider.client.usual_page.as_dicts`
            gives dicts of either). False: dicts only.
        :raises BsgConfigError: for bad arguments, before any request.
        :raises BsgAssumptionError: when a page holds a campaign the request ruled out.
        """
        query = campaigns_query(campaign_type)
        CAMPAIGNS.check_page_size(page_size)
        return self._query_pages(plan, query, page_size, f"{campaign_type} campaigns", typed=typed)

    def iter_message_pages(
        self,
        plan: WindowPlan,
        *,
        campaign_id: int | str | Sequence[int | str] | None = None,
        page_size: int = 500,
    ) -> Iterator[list[dict[str, Any]]]:
        """
        The messages of every window of ``plan``, page by page, as :meth:`iter_pages` reads campaigns.

        :param plan: from :meth:`plan`.
        :param campaign_id: None for every campaign's messages, or one campaign id or a list:
            one pass with ``filter[campaign_id]`` per distinct id, in the order given.
        :param page_size: records per request, 15..500.
        :raises BsgConfigError: for bad arguments, before any request.
        :raises BsgAssumptionError: when a page holds a message the request ruled out.
        """
        MESSAGES.check_page_size(page_size)
        ids = check_campaign_ids(campaign_id)
        queries = [messages_query()] if ids is None else [messages_query(one) for one in ids]

        def passes() -> Iterator[list[dict[str, Any]]]:
            for query in queries:
                what = "messages" if not query.filters else f"messages of campaign {query.expect[0][1]}"
                yield from self._query_pages(plan, query, page_size, what)

        return passes()

    def _query_pages(
        self, plan: WindowPlan, query: ListQuery, page_size: int, what: str, *, typed: bool = False
    ) -> Iterator[list[Any]]:
        """
        The engine both resources share: windows, pages, run-time checks, re-planning on a refused span.

        With :attr:`max_concurrency` above 1 the pages are fetched ahead by a
        :class:`~bsg_provider.extraction.prefetch.PagePrefetcher`: once a window's first page gives its
        total, the offsets the pager will ask for next are fetched concurrently, and the next
        window's first page while this window's tail is in flight. Pages are still handed to
        the same pager and filter in the sequential order, and a fetched-ahead page the pager
        no longer wants (a re-read, a changed total, a re-planned interval) is dropped, so
        the records, their order, the checks and the plan and window log lines are those of
        a sequential read (a dropped page's retries still show in the log and the counters,
        and waits are summed over threads). At most :attr:`max_concurrency` requests are in
        flight, and twice as many pages in flight or held.
        """
        window_filter = self._window_filter(query)
        progress = ExtractionProgress(self.log, plan, what=what, counters=self.counters)
        concurrency = self.max_concurrency
        prefetcher = None
        if concurrency > 1:
            prefetcher = PagePrefetcher(self._page_fetcher(query, page_size, typed), concurrency)
            self._prefetchers.add(prefetcher)
        try:
            yield from self._read_plan(plan, query, page_size, window_filter, progress, prefetcher, typed)
        finally:
            if prefetcher is not None:
                # Also when the consumer stopped early or an error is on its way: no thread outlives it.
                prefetcher.close()
                self._prefetchers.discard(prefetcher)

    def _read_plan(
        self,
        plan: WindowPlan,
        query: ListQuery,
        page_size: int,
        window_filter: WindowFilter,
        progress: ExtractionProgress,
        prefetcher: PagePrefetcher[PageKey, Any] | None,
        typed: bool = False,
    ) -> Iterator[list[Any]]:
        progress.started()
        self.last_plan = plan
        index = 0
        while index < len(plan.windows):
            window = plan.windows[index]
            next_window = plan.windows[index + 1] if index + 1 < len(plan.windows) else None
            progress.window_started(index + 1, window)
            pages = 0
            try:
                for fresh, total in self._window_pages(
                    window, query, page_size, window_filter, prefetcher, next_window, typed
                ):
                    pages += 1
                    progress.page(index + 1, window, len(fresh), total)
                    metrics.records_extracted(len(fresh), query.label)
                    if fresh:
                        yield fresh
            except BsgValidationError as exc:
                api_from, api_to = window.api_walls(plan.tz)
                refused = plan.span
                shorter = refused.shorter(api_from, api_to) if pages == 0 and is_span_refusal(exc) else None
                if shorter is None:
                    raise
                plan = plan.replanned(index, shorter)
                progress.plan = self.last_plan = plan
                self.log.warning(
                    "The API refused filter[from]=%s filter[to]=%s (HTTP 422: %s): its span limit is "
                    "shorter than %s. Reading the rest of the interval in %d window(s) of at most %s; "
                    "nothing is skipped.",
                    *window.api_bounds(plan.tz),
                    exc.api_message or "no message",
                    refused.describe(),
                    len(plan.windows) - index,
                    shorter.describe(),
                )
                continue
            progress.window_finished(index + 1, window)
            index += 1
        progress.finished()

    def iter_campaigns(
        self,
        start: datetime,
        end: datetime,
        campaign_type: str = "sms",
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """
        Every campaign created in ``[start, end)``, in legal windows, each once.

        :param start: interval start, timezone-aware, included.
        :param end: interval end, timezone-aware, excluded; clipped to 30 days ahead.
        :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
        :param page_size: records per request, 30..500.
        :raises BsgConfigError: for bad arguments, before any request.
        """
        # iter_pages checks the arguments before its first request.
        for page in self.iter_pages(self.plan(start, end), campaign_type=campaign_type, page_size=page_size):
            yield from page

    # -- messages -----------------------------------------------------------------------------

    def iter_messages(
        self,
        start: datetime,
        end: datetime,
        campaign_id: int | str | Sequence[int | str] | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """
        Every message created in ``[start, end)``, in legal windows, each once.

        The messages endpoint is assumed to follow the campaigns' window rules
        (:data:`~bsg_provider.client.resources.MESSAGES`); the run-time checks fail the extraction
        when an answer contradicts that.

        :param start: interval start, timezone-aware, included.
        :param end: interval end, timezone-aware, excluded; clipped to 30 days ahead.
        :param campaign_id: None for all campaigns' messages, or one campaign id or a list.
        :param page_size: records per request, 15..500.
        :raises BsgConfigError: for bad arguments, before any request.
        """
        pages = self.iter_message_pages(self.plan(start, end), campaign_id=campaign_id, page_size=page_size)
        for page in pages:
            yield from page

    def get_campaign_details(self, campaign_id: int | str) -> dict[str, Any]:
        """
        A campaign with its delivery statistics by status (``GET /api/campaigns/{id}/detail``).

        :param campaign_id: the campaign's id.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        request = campaign_details_request(check_campaign_id(campaign_id))
        return self.call(request, parse=parse_campaign_details)

    def test_connection(self) -> tuple[bool, str]:
        """
        Log in and read one page of the last day's campaigns, once; say what failed if anything did.

        One attempt, no retries, each request bounded by the connection's timeout capped at
        :data:`TEST_CONNECTION_MAX_TIMEOUT` seconds, so the UI's Test button answers promptly;
        the session is closed afterwards.
        """
        try:
            settings = self.settings
            end = datetime.now(timezone.utc)
            api_from, api_to = (
                self.plan(end - timedelta(days=1), end).windows[0].api_bounds(settings.api_timezone)
            )
            request = list_campaigns_request(
                api_from, api_to, campaign_type="sms", offset=0, limit=MIN_PAGE_SIZE
            )
            started = time.monotonic()
            self.call(
                request,
                parse_campaign_page,
                retries=False,
                timeout=min(settings.timeout, TEST_CONNECTION_MAX_TIMEOUT),
            )
        except BsgAuthError as exc:
            return False, f"Login or request refused: {exc}"
        except BsgError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            self.close()
        message = f"Logged in and listed campaigns in {time.monotonic() - started:.2f} s."
        if is_plain_http(settings.base_url):
            message += (
                " Warning: the host uses plain http, so the API key and token travel unencrypted; "
                "use https unless this is a local simulator."
            )
        return True, message


def _pages_after_first(window: Window, limit: int, first_page: Any | None, count: int) -> list[PageKey]:
    """
    The pages after a window's first that its pager will ask for once it takes ``first_page``
    (at most ``count``); none before that page is in, or for a window read one page at a time.
    """
    if first_page is None or count < 1:
        return []
    trial = WindowPager(limit, overlap=window.is_live(datetime.now(timezone.utc)))
    try:
        trial.accept(first_page)
    except BsgPagingError:
        return []  # the window's own pager will say so
    if trial.overlap or trial.rescans:
        return []
    return [(window, 0, offset) for offset in trial.predicted_offsets(count)]
