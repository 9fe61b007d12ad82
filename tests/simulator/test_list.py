"""``GET /api/campaigns``: defaults, inclusive bounds, timezone, validation, sorting and paging."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, SECOND, UTC, Client, months_back, wall, window


def test_defaults(sim: BsgSimulator, client: Client) -> None:
    before = sim.now().replace(microsecond=0)
    response = client.list()
    after = sim.now().replace(microsecond=0)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["page"]["limit"] == 50
    assert body["meta"]["page"]["offset"] == 0
    ids = [row["id"] for row in body["data"]]
    assert len(ids) == 50 and ids == sorted(ids)
    assert {row["message_type"] for row in body["data"]} == {"sms"}
    # Default window [to - 3 months, to] with to = now; allow for the clock moving during the call.
    narrowest = sim.ground_truth_ids(months_back(after, 3), before + SECOND)
    widest = sim.ground_truth_ids(months_back(before, 3), after + SECOND)
    assert len(narrowest) <= body["meta"]["page"]["total"] <= len(widest)
    assert set(ids) <= widest


def test_only_to_given_means_three_months_back(sim: BsgSimulator, client: Client) -> None:
    end = datetime(2025, 5, 31, 12, 0, 0, tzinfo=UTC)
    response = client.list({"filter[to]": wall(end), "page[limit]": 500})
    expected = sim.ground_truth_ids(datetime(2025, 2, 28, 12, 0, 0, tzinfo=UTC), end + SECOND)
    assert response.json()["meta"]["page"]["total"] == len(expected)


def test_bounds_are_inclusive_at_second_resolution(sim: BsgSimulator, client: Client) -> None:
    start = NOW + timedelta(days=2, hours=3)
    end = start + timedelta(seconds=10)
    outside = [sim.add_campaign(start - SECOND)["id"], sim.add_campaign(end + SECOND)["id"]]
    inside = [sim.add_campaign(at)["id"] for at in (start, start + timedelta(seconds=5), end)]
    body = client.list(window(start, end)).json()
    assert [row["id"] for row in body["data"]] == inside
    assert body["meta"]["page"]["total"] == 3
    assert not set(outside) & {row["id"] for row in body["data"]}
    # A single-second window holds exactly that second.
    assert [row["id"] for row in client.list(window(end, end)).json()["data"]] == [inside[-1]]


def test_sub_second_created_at_is_stored_as_its_second(sim: BsgSimulator, client: Client) -> None:
    at = NOW + timedelta(days=3, hours=1)
    campaign = sim.add_campaign(at + timedelta(milliseconds=900))
    assert campaign["created_at"] == wall(at)
    assert [row["id"] for row in client.list(window(at, at)).json()["data"]] == [campaign["id"]]


def test_filters_are_read_in_the_api_timezone() -> None:
    with BsgSimulator(campaigns=100, timezone="Europe/Berlin", now=NOW) as berlin:
        api = Client(berlin.url, berlin.api_key)
        api.login()
        summer = datetime(2025, 6, 1, 22, 30, 0, tzinfo=UTC)  # 2025-06-02 00:30 in Berlin (UTC+2)
        winter = datetime(2025, 1, 10, 23, 15, 0, tzinfo=UTC)  # 2025-01-11 00:15 in Berlin (UTC+1)
        ids = {berlin.add_campaign(summer)["id"], berlin.add_campaign(winter)["id"]}
        for instant, local in ((summer, "2025-06-02 00:30:00"), (winter, "2025-01-11 00:15:00")):
            found = api.list({"filter[from]": local, "filter[to]": local}).json()["data"]
            assert [row["id"] for row in found if row["id"] in ids] == [
                next(i for i in ids if berlin.campaign(i)["created_at"] == local)
            ]
            assert found[0]["created_at"] == local
            utc_text = wall(instant)
            assert api.list({"filter[from]": utc_text, "filter[to]": utc_text}).json()["data"] == []


def _error_fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "The given data was invalid."
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())
    return sorted(body["errors"])


END = datetime(2025, 6, 10, 0, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter[from]": "2025-02-10 00:00:00", "filter[to]": "2025-06-10 00:00:00"}, "filter[from]"),
        ({"filter[from]": "2025-03-09 23:59:59", "filter[to]": "2025-06-10 00:00:00"}, "filter[from]"),
        ({"filter[from]": "2025-02-28 11:59:59", "filter[to]": "2025-05-31 12:00:00"}, "filter[from]"),
        ({"filter[from]": "2025-06-10 00:00:01", "filter[to]": "2025-06-10 00:00:00"}, "filter[from]"),
        ({"page[limit]": "1000"}, "page[limit]"),
        ({"page[limit]": "29"}, "page[limit]"),
        ({"page[limit]": "501"}, "page[limit]"),
        ({"page[limit]": "fifty"}, "page[limit]"),
        ({"page[limit]": "50.0"}, "page[limit]"),
        ({"page[offset]": "-1"}, "page[offset]"),
        ({"page[offset]": "x"}, "page[offset]"),
        ({"filter[from]": "2025-06-01T00:00:00", "filter[to]": "2025-06-10 00:00:00"}, "filter[from]"),
        ({"filter[from]": "2025-06-01", "filter[to]": "2025-06-10 00:00:00"}, "filter[from]"),
        ({"filter[from]": "2025-06-01 00:00:00", "filter[to]": "2025-13-10 00:00:00"}, "filter[to]"),
        ({"filter[to]": "2025-06-10 00:00:00+00:00"}, "filter[to]"),
        ({"filter[to]": ""}, "filter[to]"),
        ({"sort": "name"}, "sort"),
        ({"way": "up"}, "way"),
        ({"filter[type]": "viber"}, "filter[type]"),
    ],
)
def test_invalid_parameters_are_422_naming_the_field(client: Client, params: dict, field: str) -> None:
    assert _error_fields(client.list(params)) == [field]


def test_to_more_than_30_days_ahead_is_422(sim: BsgSimulator, client: Client) -> None:
    now = sim.now()
    assert _error_fields(client.list({"filter[to]": wall(now + timedelta(days=40))})) == ["filter[to]"]
    assert _error_fields(client.list({"filter[to]": wall(now + timedelta(days=30, seconds=3))})) == [
        "filter[to]"
    ]
    allowed = client.list({"filter[to]": wall(now + timedelta(days=30))})
    assert allowed.status_code == 200, allowed.text


def test_several_errors_are_reported_together(client: Client) -> None:
    fields = _error_fields(client.list({"page[limit]": "1000", "sort": "x", "filter[from]": "bad"}))
    assert fields == ["filter[from]", "page[limit]", "sort"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-10 00:00:00", "2025-06-10 00:00:00"),
        ("2025-02-28 12:00:00", "2025-05-31 12:00:00"),  # end-of-month clamping
        ("2024-11-30 00:00:00", "2025-02-28 00:00:00"),
        ("2025-06-10 00:00:00", "2025-06-10 00:00:00"),
    ],
)
def test_exactly_three_calendar_months_is_allowed(client: Client, start: str, end: str) -> None:
    response = client.list({"filter[from]": start, "filter[to]": end})
    assert response.status_code == 200, response.text


def _sort_value(row: dict, sort: str) -> object:
    return {
        "id": row["id"],
        "sender": row["sender"],
        "type": row["message_type"],
        "date": row["created_at"],
        "status": row["status"],
    }[sort]


@pytest.mark.parametrize("way", ["asc", "desc"])
@pytest.mark.parametrize("sort", ["id", "sender", "type", "date", "status"])
def test_sorting_with_id_tie_breaker(sim: BsgSimulator, client: Client, sort: str, way: str) -> None:
    params = {**window(END - timedelta(days=60), END), "sort": sort, "way": way}
    rows, _ = client.pages(params, limit=100)
    keys = [(_sort_value(row, sort), row["id"]) for row in rows]
    assert keys == sorted(keys, reverse=way == "desc")
    assert {row["id"] for row in rows} == sim.ground_truth_ids(END - timedelta(days=60), END + SECOND)
    if sort in ("sender", "type", "status", "date"):
        assert len({key[0] for key in keys}) < len(keys)  # ties really were broken by id


def test_paging_matches_ground_truth(sim: BsgSimulator, client: Client) -> None:
    start, end = END - timedelta(days=80), END
    rows, totals = client.pages(window(start, end), limit=30)
    ids = [row["id"] for row in rows]
    expected = sorted(sim.ground_truth_ids(start, end + SECOND))
    assert ids == expected
    assert set(totals) == {len(expected)}
    beyond = client.list({**window(start, end), "page[offset]": len(expected) + 10}).json()
    assert beyond["data"] == [] and beyond["meta"]["page"]["total"] == len(expected)
    assert beyond["meta"]["page"]["offset"] == len(expected) + 10


@pytest.mark.parametrize("kind", ["sms", "rcs", "whatsapp"])
def test_type_filter(sim: BsgSimulator, client: Client, kind: str) -> None:
    start = END - timedelta(days=90)
    rows, _ = client.pages({**window(start, END), "filter[type]": kind})
    assert rows, f"the data set should hold some {kind} campaigns"
    assert {row["message_type"] for row in rows} == {kind}
    assert {row["id"] for row in rows} == sim.ground_truth_ids(start, END + SECOND, kind)


def test_response_is_compact_json_with_length(client: Client) -> None:
    response = client.list({"page[limit]": 30})
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert re.match(rb'\{"data":\[\{"id":\d+,"name":', response.content)
