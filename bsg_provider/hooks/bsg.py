"""The sync hook: every task that talks to the BSG One API goes through :class:`BsgHook`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

import requests
from airflow.providers.common.compat.sdk import mask_secret
from tenacity import Retrying

from bsg_provider import metrics
from bsg_provider.api import (
    USER_AGENT,
    ApiRequest,
    auth_headers,
    check_campaign_id,
    check_campaign_type,
    check_page_size,
    connection_error,
    get_campaign_request,
    list_campaigns_request,
    login_request,
    parse_campaign,
    parse_campaign_page,
    parse_token,
    read_answer,
    refresh_request,
    timeout_error,
)
from bsg_provider.connection import BsgConnectionSettings, connection_fields, warn_if_plain_http
from bsg_provider.errors import BsgApiError, BsgAuthError, BsgError
from bsg_provider.get_provider_info import CONNECTION_FIELDS, CONNECTION_UI_BEHAVIOUR
from bsg_provider.hooks.base import BsgBaseHook
from bsg_provider.paging import WindowPager
from bsg_provider.progress import ExtractionProgress
from bsg_provider.throttle import RequestThrottle
from bsg_provider.tokens import needs_renewal, token_expiry
from bsg_provider.windows import Window, WindowPlan, plan_windows


class BsgHook(BsgBaseHook):
    """
    Talk to the BSG One API: JWT login and renewal, retries, paging and window planning.

    :param bsg_conn_id: id of a connection of type ``bsg``: host is the base URL,
        password the API key; extras ``api_timezone``, ``timeout``, ``max_retries``,
        ``retry_max_wait`` and ``max_requests_per_second``.
    """

    def __init__(self, bsg_conn_id: str = BsgBaseHook.default_conn_name) -> None:
        super().__init__(bsg_conn_id)
        self._token: str | None = None
        self._token_expiry: datetime | None = None

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
                    validators=[Optional(), NumberRange(min=0)],
                    description=spec["description"],
                    default=default,
                )
            else:
                # wtforms has no float field Airflow 3.0 accepts: numbers are typed as text,
                # which the hook reads as numbers.
                field = StringField(
                    spec["label"],
                    validators=[Optional()],
                    description=spec["description"],
                    default=None if default is None else str(default),
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
        return settings

    @cached_property
    def _throttle(self) -> RequestThrottle:
        return RequestThrottle(self.settings.max_requests_per_second)

    def get_conn(self) -> requests.Session:
        """A session with the provider's User-Agent, reused for every request of this hook."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        return session

    def close(self) -> None:
        """Close the HTTP session's connections."""
        if "_session" in self.__dict__:
            self._session.close()
            del self.__dict__["_session"]

    # -- requests -----------------------------------------------------------------------------

    def call(self, request: ApiRequest, parse: Callable[[Any], Any] | None = None) -> Any:
        """
        Send ``request`` with authentication and retries; return the decoded JSON answer.

        :param request: built by one of :mod:`bsg_provider.api`'s ``*_request`` functions.
        :param parse: reads the answer inside the retry loop, so an answer of the wrong shape is
            retried like a truncated one; its result is returned instead of the raw JSON.
        :raises BsgApiError: when the API refuses it, or transient failures outlast the retries.
        """
        settings = self.settings
        retrying = Retrying(**self._retry_policy(settings))
        try:
            for attempt in retrying:
                with attempt:
                    answer = self._call_once(request)
                    return parse(answer) if parse is not None else answer
        finally:
            self.counters.retry_wait_seconds += retrying.statistics.get("idle_for", 0.0)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _call_once(self, request: ApiRequest) -> Any:
        if not request.authenticated:
            return self._send(request, None)
        token = self._current_token()
        try:
            return self._send(request, token)
        except BsgAuthError as exc:
            if exc.status != 401:
                raise
            # Revoked or expired early: one fresh login, then the same request once more.
            self.log.info("BSG One API refused the token (401); logging in again and replaying the request.")
            self._token = None
            return self._send(request, self._login())

    def _send(self, request: ApiRequest, token: str | None) -> Any:
        settings = self.settings
        headers = auth_headers(token) if token else None
        self._throttle.wait()
        self.counters.throttle_wait_seconds = self._throttle.waited
        self.counters.requests += 1
        started = time.monotonic()
        status: int | None = None
        try:
            response = self._session.request(
                request.method,
                settings.base_url + request.path,
                params=request.params,
                json=request.json,
                headers=headers,
                timeout=(settings.timeout, settings.timeout),
                # As httpx does in the trigger: a redirect is reported, never followed (it would turn
                # the login POST into a GET, and carry the token to another host).
                allow_redirects=False,
            )
            body = response.content
            status = response.status_code
        except requests.Timeout:
            raise timeout_error(request, settings.base_url, settings.timeout) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise connection_error(request, settings.base_url, exc) from None
        finally:
            metrics.request_sent(request.endpoint, status, time.monotonic() - started)
        return read_answer(
            request,
            response.status_code,
            body,
            content_type=response.headers.get("Content-Type"),
            retry_after=response.headers.get("Retry-After"),
            location=response.headers.get("Location"),
        )

    # -- auth ---------------------------------------------------------------------------------

    def _current_token(self) -> str:
        if self._token is None:
            return self._login()
        if needs_renewal(self._token_expiry, datetime.now(timezone.utc)):
            return self._refresh()
        return self._token

    def _login(self) -> str:
        # Sent bare: the caller's retry loop already covers a transient login failure.
        self.counters.logins += 1
        metrics.logged_in()
        return self._keep_token(self._send(login_request(self.settings.api_key), None))

    def _refresh(self) -> str:
        self.counters.refreshes += 1
        try:
            return self._keep_token(self._send(refresh_request(), self._token))
        except BsgApiError as exc:
            self.log.info(
                "Token refresh failed (%s); logging in again.", exc.status or exc.__class__.__name__
            )
            self._token = None
            return self._login()

    def _keep_token(self, payload: Any) -> str:
        token = parse_token(payload)
        mask_secret(token)
        self._token = token
        self._token_expiry = token_expiry(token)
        return token

    # -- campaigns ----------------------------------------------------------------------------

    def get_campaign(self, campaign_id: int | str) -> dict[str, Any]:
        """
        One campaign with all its properties.

        :param campaign_id: the campaign's id.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        return self.call(get_campaign_request(check_campaign_id(campaign_id)), parse=parse_campaign)

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

        :param window: one window of a :class:`~bsg_provider.windows.WindowPlan`.
        :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
        :param page_size: records per request, 30..500.
        """
        for fresh, _total in self._window_pages(window, campaign_type, page_size):
            if fresh:
                yield fresh

    def _window_pages(
        self, window: Window, campaign_type: str, page_size: int
    ) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
        api_from, api_to = window.api_bounds(self.settings.api_timezone)
        # Rows can appear only in a window reaching the present; there pages overlap by one row.
        pager = WindowPager(page_size, overlap=window.is_live(datetime.now(timezone.utc)))
        while not pager.done:
            page = self.call(
                list_campaigns_request(
                    api_from,
                    api_to,
                    campaign_type=campaign_type,
                    offset=pager.request_offset,
                    limit=page_size,
                ),
                parse=parse_campaign_page,
            )
            fresh = pager.accept(page)
            if pager.rescans and pager.offset == 0:
                self.log.warning(
                    "Campaigns changed while paging %s..%s (total now %s); reading the window again "
                    "(re-read %d) so nothing is skipped.",
                    api_from,
                    api_to,
                    pager.total,
                    pager.rescans,
                )
            yield fresh, pager.total

    def iter_pages(
        self, plan: WindowPlan, *, campaign_type: str = "sms", page_size: int = 500
    ) -> Iterator[list[dict[str, Any]]]:
        """
        The campaigns of every window of ``plan``, page by page, with progress in the task log.

        Logs the plan first, then a line per window and at most one every few seconds
        within a window, then totals once the last page was read.

        :param plan: from :meth:`plan`.
        :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
        :param page_size: records per request, 30..500.
        :raises BsgConfigError: for bad arguments, before any request.
        """
        check_campaign_type(campaign_type)
        check_page_size(page_size)
        progress = ExtractionProgress(self.log, plan, campaign_type=campaign_type, counters=self.counters)
        progress.started()
        for index, window in enumerate(plan.windows, 1):
            progress.window_started(index, window)
            for fresh, total in self._window_pages(window, campaign_type, page_size):
                progress.page(index, window, len(fresh), total)
                metrics.records_extracted(len(fresh), campaign_type)
                if fresh:
                    yield fresh
            progress.window_finished(index, window)
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

    def test_connection(self) -> tuple[bool, str]:
        """Log in and read one page of the last day's campaigns; say what failed if anything did."""
        try:
            end = datetime.now(timezone.utc)
            window = self.plan(end - timedelta(days=1), end).windows[0]
            started = time.monotonic()
            next(self.iter_window_pages(window, page_size=30), None)
        except BsgAuthError as exc:
            return False, f"Login or request refused: {exc}"
        except BsgError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Logged in and listed campaigns in {time.monotonic() - started:.2f} s."
