"""Small helpers for the simulator tests: a thin requests client and time formatting."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import requests

UTC = timezone.utc
#: The pinned clock anchor of the shared test simulators.
NOW = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)
API_TIMESTAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2})?"


def wall(instant: datetime, tz: str = "UTC") -> str:
    """``yyyy-mm-dd hh:mm:ss`` of an aware instant in ``tz``.

    :param instant: aware datetime.
    :param tz: IANA timezone name.
    """
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def months_back(value: datetime, months: int) -> datetime:
    """Calendar months back with end-of-month clamping (written apart from the simulator's).

    :param value: the datetime.
    :param months: months to go back.
    """
    month = value.month - months
    year = value.year
    while month < 1:
        month += 12
        year -= 1
    return value.replace(year=year, month=month, day=min(value.day, calendar.monthrange(year, month)[1]))


class Client:
    """A requests session against one simulator.

    :param url: the simulator's base URL.
    :param api_key: the key to log in with.
    """

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.api_key = api_key
        self.session = requests.Session()
        self.token: str | None = None

    def login(self) -> str:
        """Log in and keep the token."""
        response = self.session.post(f"{self.url}/api/auth/login", json={"api_key": self.api_key}, timeout=5)
        response.raise_for_status()
        self.token = response.json()["bearer"]
        return self.token

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Authorization header for ``token`` or the kept one.

        :param token: a token to use instead.
        """
        return {"Authorization": f"Bearer {token or self.token}"}

    def list(self, params: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
        """``GET /api/campaigns``.

        :param params: query parameters.
        :param kwargs: passed to requests.
        """
        kwargs.setdefault("headers", self.headers())
        kwargs.setdefault("timeout", 5)
        return self.session.get(f"{self.url}/api/campaigns", params=params or {}, **kwargs)

    def get(self, campaign_id: object, **kwargs: Any) -> requests.Response:
        """``GET /api/campaigns/{id}``.

        :param campaign_id: the id (any text).
        :param kwargs: passed to requests.
        """
        kwargs.setdefault("headers", self.headers())
        kwargs.setdefault("timeout", 5)
        return self.session.get(f"{self.url}/api/campaigns/{campaign_id}", **kwargs)

    def stop(self, campaign_id: object) -> requests.Response:
        """``PATCH /api/campaigns/{id}/stop``.

        :param campaign_id: the id.
        """
        return self.session.patch(
            f"{self.url}/api/campaigns/{campaign_id}/stop", headers=self.headers(), timeout=5
        )

    def refresh(self, token: str | None = None) -> requests.Response:
        """``POST /api/auth/refresh``.

        :param token: the token to refresh with; the kept one by default.
        """
        return self.session.post(f"{self.url}/api/auth/refresh", headers=self.headers(token), timeout=5)

    def pages(self, params: dict[str, Any], limit: int = 500) -> tuple[list[dict[str, Any]], list[int]]:
        """All rows of a window by offset paging, and the total each page reported.

        :param params: filter parameters.
        :param limit: page size.
        """
        rows: list[dict[str, Any]] = []
        totals = []
        offset = 0
        while True:
            response = self.list({**params, "page[limit]": limit, "page[offset]": offset})
            assert response.status_code == 200, response.text
            body = response.json()
            rows.extend(body["data"])
            totals.append(body["meta"]["page"]["total"])
            offset += limit
            if offset >= body["meta"]["page"]["total"]:
                return rows, totals


def window(start: datetime, end: datetime, tz: str = "UTC") -> dict[str, str]:
    """Filter params selecting ``[start, end]`` (inclusive, whole seconds).

    :param start: aware first instant.
    :param end: aware last instant.
    :param tz: the simulator's timezone.
    """
    return {"filter[from]": wall(start, tz), "filter[to]": wall(end, tz)}


SECOND = timedelta(seconds=1)


def message_pages(
    api: Client, params: dict[str, Any], limit: int = 500
) -> tuple[list[dict[str, Any]], list[int]]:
    """All rows of a ``GET /api/messages`` window by offset paging, and each page's total.

    :param api: a logged-in client.
    :param params: filter parameters.
    :param limit: page size.
    """
    rows: list[dict[str, Any]] = []
    totals = []
    offset = 0
    while True:
        response = messages(api, {**params, "page[limit]": limit, "page[offset]": offset})
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        totals.append(body["meta"]["page"]["total"])
        offset += limit
        if offset >= body["meta"]["page"]["total"]:
            return rows, totals


def messages(api: Client, params: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    """``GET /api/messages``.

    :param api: a logged-in client.
    :param params: query parameters.
    :param kwargs: passed to requests.
    """
    kwargs.setdefault("headers", api.headers())
    kwargs.setdefault("timeout", 30)
    return api.session.get(f"{api.url}/api/messages", params=params or {}, **kwargs)


def detail(api: Client, campaign_id: object, **kwargs: Any) -> requests.Response:
    """``GET /api/campaigns/{id}/detail``.

    :param api: a logged-in client.
    :param campaign_id: the id (any text).
    :param kwargs: passed to requests.
    """
    kwargs.setdefault("headers", api.headers())
    kwargs.setdefault("timeout", 30)
    return api.session.get(f"{api.url}/api/campaigns/{campaign_id}/detail", **kwargs)
