"""``GET /api/messages`` and ``GET /api/campaigns/{id}/detail`` over real HTTP."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, SECOND, UTC, Client, detail, message_pages, messages, months_back, wall, window

START = months_back(NOW, 3)
WINDOW = window(START, NOW)
PENDING = ("scheduled", "moderation")


@contextmanager
def serving(**options: Any) -> Iterator[tuple[BsgSimulator, Client]]:
    """A small simulator with 20 messages per campaign, and a logged-in client."""
    settings: dict[str, Any] = {"campaigns": 300, "seed": 5, "messages_per_campaign": 20, **options}
    with BsgSimulator(api_key="test_messages_key", now=NOW, **settings) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        yield sim, api


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[BsgSimulator, Client]]:
    with serving() as pair:
        yield pair


def parse(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_paging_a_window_returns_its_ground_truth_once(served: tuple[BsgSimulator, Client]) -> None:
    sim, api = served
    for limit in (15, 137, 500):
        rows, totals = message_pages(api, WINDOW, limit=limit)
        ids = [row["id"] for row in rows]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        # Both bounds inclusive, whole seconds: the window is [START, NOW + 1 s).
        assert ids == sim.message_ground_truth_ids(START, NOW + SECOND)
        assert set(totals) == {len(ids)} and len(ids) > 1000


def test_way_desc_reverses_id_order(served: tuple[BsgSimulator, Client]) -> None:
    _sim, api = served
    asc, _ = message_pages(api, WINDOW)
    desc, _ = message_pages(api, {**WINDOW, "way": "desc"}, limit=100)
    assert [row["id"] for row in desc] == [row["id"] for row in reversed(asc)]


@pytest.mark.parametrize("sort", ["phone", "delivered"])
@pytest.mark.parametrize("way", ["asc", "desc"])
def test_sorts_are_total_orders_with_id_ties(
    served: tuple[BsgSimulator, Client], sort: str, way: str
) -> None:
    sim, api = served
    rows, _ = message_pages(api, {**WINDOW, "sort": sort, "way": way}, limit=200)
    field = {"phone": "phone", "delivered": "delivered_at"}[sort]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row[field]
        return (value is not None, value or "", row["id"])

    assert rows == sorted(rows, key=key, reverse=way == "desc")
    assert sorted(row["id"] for row in rows) == sim.message_ground_truth_ids(START, NOW + SECOND)
    if sort == "delivered":
        assert any(row["delivered_at"] is None for row in rows)


def test_record_shape(served: tuple[BsgSimulator, Client]) -> None:
    _sim, api = served
    rows, _ = message_pages(api, WINDOW)
    campaigns: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row["campaign_id"] not in campaigns:
            campaigns[row["campaign_id"]] = api.get(row["campaign_id"]).json()["data"]
        campaign = campaigns[row["campaign_id"]]
        assert parse(row["created_at"]) >= parse(campaign["created_at"])
        assert isinstance(row["phone"], int) and 10**8 <= row["phone"] <= 999_999_999_999_999
        assert Decimal(row["amount"]["value"]) >= 0 and len(row["amount"]["value"].split(".")[1]) == 7
        assert row["type"] == campaign["message_type"] and row["sender"] == campaign["sender"]
        if row["sent_at"] is not None:
            assert parse(row["sent_at"]) >= parse(row["created_at"])
        if row["delivered_at"] is not None:
            assert parse(row["delivered_at"]) > parse(row["sent_at"])
        if row["reference_id"] is not None:
            assert row["source"] == "rest" and len(row["reference_id"]) == 32
    assert {len(str(row["phone"])) for row in rows} >= {12, 15}
    assert len({row["campaign_id"] for row in rows}) > 30


def test_statistics_details_and_messages_agree(served: tuple[BsgSimulator, Client]) -> None:
    sim, api = served
    campaigns = [row for kind in ("sms", "rcs") for row in api.pages({**WINDOW, "filter[type]": kind})[0]]
    assert len(campaigns) > 30
    for campaign in campaigns[:60]:
        found = detail(api, campaign["id"])
        assert found.status_code == 200, found.text
        data = found.json()["data"]
        rows, _ = message_pages(api, {"filter[campaign_id]": campaign["id"], **WINDOW}, limit=500)
        own = [
            row
            for row in message_pages(
                api,
                {
                    "filter[campaign_id]": campaign["id"],
                    **window(
                        parse(campaign["created_at"]), parse(campaign["created_at"]) + timedelta(hours=2)
                    ),
                },
            )[0]
        ]
        by_status = Counter(row["status"] for row in own)
        assert data["statistics"] == {key: by_status.get(key, 0) for key in data["statistics"]}
        assert sum(data["statistics"].values()) == data["total_messages"] == len(own) == 20
        assert data["statistics"]["delivered"] == campaign["statistics"]["delivered"]
        went_out = len(own) - sum(by_status[status] for status in PENDING)
        assert campaign["statistics"]["sent"] == went_out
        assert data["total_phones"] == len({row["phone"] for row in own})
        assert Decimal(data["total_price"]) == sum(Decimal(row["amount"]["value"]) for row in own)
        assert {row["amount"]["currency"] for row in own} == {data["currency"]}
        assert sim.message_counts(campaign["id"])["statistics"] == data["statistics"]
        assert (data["id"], data["type"], data["created_at"]) == (
            campaign["id"],
            campaign["message_type"],
            campaign["created_at"],
        )
        assert {row["id"] for row in rows} <= {row["id"] for row in own}


def test_default_counts_keep_campaign_statistics() -> None:
    with BsgSimulator(campaigns=40, seed=3, now=NOW) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        for campaign_id in sorted(sim.dataset.ids())[:10]:
            campaign = api.get(campaign_id).json()["data"]
            data = detail(api, campaign_id).json()["data"]
            assert data["statistics"]["delivered"] == campaign["statistics"]["delivered"]
            if campaign["real_start_at"] is not None:
                assert data["total_messages"] == campaign["statistics"]["sent"]


def test_a_campaign_not_sending_yet_has_pending_messages() -> None:
    with serving() as (sim, api):
        campaign = sim.add_campaign(NOW, final_status="done", status_step_seconds=3600)
        assert campaign["statistics"] == {"delivered": 0, "sent": 0}
        data = detail(api, campaign["id"]).json()["data"]
        assert data["statistics"]["moderation"] == data["total_messages"] == 20
        assert data["total_price"] == "0.0000000"
        rows, _ = message_pages(api, {"filter[campaign_id]": campaign["id"], **window(NOW, NOW)})
        assert {(row["status"], row["sent_at"], row["delivered_at"]) for row in rows} == {
            ("moderation", None, None)
        }
        sim.set_status(campaign["id"], "scheduled")
        assert detail(api, campaign["id"]).json()["data"]["statistics"]["scheduled"] == 20


def test_filters(served: tuple[BsgSimulator, Client]) -> None:
    _sim, api = served
    rows, _ = message_pages(api, WINDOW)
    target = next(row for row in rows if row["reference_id"] is not None)
    by_id = messages(api, {**WINDOW, "filter[id]": target["id"]}).json()
    assert by_id["data"] == [target] and by_id["meta"]["page"]["total"] == 1
    by_ref = messages(api, {**WINDOW, "filter[reference_id]": target["reference_id"]}).json()
    assert by_ref["data"] == [target]
    both = {"filter[id]": target["id"] + 1, "filter[reference_id]": target["reference_id"]}
    assert messages(api, {**WINDOW, **both}).json()["data"] == []
    assert messages(api, {**WINDOW, "filter[reference_id]": "0" * 32}).json()["data"] == []
    by_campaign, _ = message_pages(api, {**WINDOW, "filter[campaign_id]": target["campaign_id"]}, limit=15)
    assert by_campaign == [row for row in rows if row["campaign_id"] == target["campaign_id"]]
    assert messages(api, {**WINDOW, "filter[campaign_id]": 1}).json()["meta"]["page"]["total"] == 0
    # Outside the window nothing matches, even by id.
    early = window(START - timedelta(days=30), START - SECOND)
    assert messages(api, {**early, "filter[id]": target["id"]}).json()["data"] == []


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"page[limit]": 14}, ["page[limit]"]),
        ({"page[limit]": 501}, ["page[limit]"]),
        ({"page[limit]": "1e3"}, ["page[limit]"]),
        ({"page[offset]": -1}, ["page[offset]"]),
        ({"sort": "date"}, ["sort"]),
        ({"way": "up"}, ["way"]),
        ({"filter[id]": "abc", "filter[campaign_id]": "0"}, ["filter[campaign_id]", "filter[id]"]),
        ({"filter[reference_id]": "x" * 33}, ["filter[reference_id]"]),
        ({"filter[from]": "2025-01-01 00:00:00", "filter[to]": "2025-06-01 00:00:00"}, ["filter[from]"]),
        ({"filter[to]": "2030-01-01 00:00:00"}, ["filter[to]"]),
        ({"filter[from]": "yesterday"}, ["filter[from]"]),
    ],
)
def test_invalid_parameters(
    served: tuple[BsgSimulator, Client], params: dict[str, Any], fields: list[str]
) -> None:
    _sim, api = served
    response = messages(api, params)
    assert response.status_code == 422, response.text
    assert response.json()["message"] == "The given data was invalid."
    assert sorted(response.json()["errors"]) == fields


def test_limits_and_defaults(served: tuple[BsgSimulator, Client]) -> None:
    sim, api = served
    body = messages(api, {}).json()
    assert body["meta"]["page"]["limit"] == 50 and len(body["data"]) == 50
    assert messages(api, {"page[limit]": 15}).json()["meta"]["page"] == {
        "total": body["meta"]["page"]["total"],
        "limit": 15,
        "offset": 0,
    }
    assert body["meta"]["page"]["total"] == len(sim.message_ground_truth_ids(START, NOW + SECOND))


def test_auth_and_not_found(served: tuple[BsgSimulator, Client]) -> None:
    sim, api = served
    assert messages(api, headers={}).status_code == 401
    assert detail(api, 1).status_code == 404
    assert detail(api, 1).json() == {"message": "Campaign not found"}
    assert detail(api, "abc").status_code == 404
    assert detail(api, sorted(sim.dataset.ids())[0], headers={}).status_code == 401
    refused = api.session.post(f"{api.url}/api/messages", headers=api.headers(), timeout=5)
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET"
    assert sim.count("messages") >= 1 and sim.count("detail") >= 4


def test_same_seed_same_messages_other_seed_other_messages() -> None:
    bodies = []
    for seed in (5, 5, 6):
        with serving(seed=seed) as (_, api):
            bodies.append(messages(api, {**WINDOW, "page[limit]": 500, "page[offset]": 100}).content)
    assert bodies[0] == bodies[1] != bodies[2]


def test_faults_apply_to_the_messages_endpoints() -> None:
    with serving() as (sim, api):
        sim.inject("status", endpoint="messages", status=503, retry_after="2")
        sim.inject("status", endpoint="detail", status=429)
        failed = messages(api, WINDOW)
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
        assert detail(api, sorted(sim.dataset.ids())[0]).status_code == 429
        assert messages(api, WINDOW).status_code == 200
        sim.inject("malformed_json", endpoint="messages")
        assert messages(api, WINDOW).status_code == 200 and sim.requests[-1].fault == "malformed_json"


def test_drift_inserts_and_deletes_messages_and_statistics_follow() -> None:
    with serving() as (sim, api):
        before = sim.message_ground_truth_ids(START, NOW + SECOND)
        lowest = before[:2]
        owner = messages(api, {**WINDOW, "filter[id]": lowest[0]}).json()["data"][0]["campaign_id"]
        stats_before = api.get(owner).json()["data"]["statistics"]
        sim.inject("delete", endpoint="messages", count=2)
        first = messages(api, {**WINDOW, "page[limit]": 15})
        assert [row["id"] for row in first.json()["data"]][:1] != lowest[:1]
        after_delete = sim.message_ground_truth_ids(START, NOW + SECOND)
        assert after_delete == before[2:]
        owners = Counter(messages(api, {"filter[id]": i}).json()["meta"]["page"]["total"] for i in lowest)
        assert owners == {0: 2}
        stats_after = api.get(owner).json()["data"]["statistics"]
        assert stats_after["sent"] < stats_before["sent"]
        counts = sim.message_counts(owner)
        assert counts["total_messages"] == stats_after["sent"]
        assert counts["statistics"]["delivered"] == stats_after["delivered"]

        sim.inject("insert", endpoint="messages", count=3)
        assert messages(api, WINDOW).status_code == 200
        after_insert = sim.message_ground_truth_ids(START, NOW + SECOND)
        added = sorted(set(after_insert) - set(after_delete))
        assert len(added) == 3 and set(after_delete) <= set(after_insert)
        rows, totals = message_pages(api, WINDOW, limit=100)
        assert [row["id"] for row in rows] == after_insert and set(totals) == {len(after_insert)}
        for row in (r for r in rows if r["id"] in added):
            campaign = api.get(row["campaign_id"]).json()["data"]
            counts = sim.message_counts(row["campaign_id"])
            assert counts["total_messages"] == campaign["statistics"]["sent"]
            assert counts["statistics"]["delivered"] == campaign["statistics"]["delivered"]
            assert parse(row["created_at"]) >= parse(campaign["created_at"])
            assert row["status"] == "delivered"


def test_control_endpoints(served: tuple[BsgSimulator, Client]) -> None:
    sim, api = served
    start, end = START.isoformat(), (NOW + SECOND).isoformat()
    truth = api.session.get(
        f"{api.url}/_simulator/messages/ground-truth", params={"start": start, "end": end}, timeout=30
    ).json()
    assert truth["ids"] == sim.message_ground_truth_ids(START, NOW + SECOND) and truth["count"] == len(
        truth["ids"]
    )
    campaign_id = messages(api, WINDOW).json()["data"][0]["campaign_id"]
    counts = api.session.get(
        f"{api.url}/_simulator/messages/counts", params={"campaign_id": campaign_id}, timeout=5
    ).json()
    assert counts == sim.message_counts(campaign_id)
    assert counts["statistics"] == detail(api, campaign_id).json()["data"]["statistics"]
    total = api.session.get(f"{api.url}/_simulator/messages/total", timeout=5).json()
    assert total == {"total": 300 * 20}
    unknown = api.session.get(f"{api.url}/_simulator/messages/counts", params={"campaign_id": 1}, timeout=5)
    assert unknown.status_code == 404
    assert api.session.get(f"{api.url}/_simulator/messages/counts", timeout=5).status_code == 400


def test_two_million_messages_are_derived_not_stored() -> None:
    tracemalloc.start()
    try:
        with BsgSimulator(campaigns=2000, seed=9, now=NOW, messages_per_campaign=1000) as sim:
            api = Client(sim.url, sim.api_key)
            api.login()
            assert sim.message_total() == 2_000_000
            first = messages(api, {**WINDOW, "page[limit]": 500}).json()
            total = first["meta"]["page"]["total"]
            assert total > 300_000
            last = messages(api, {**WINDOW, "page[limit]": 500, "page[offset]": total - 1}).json()
            assert len(last["data"]) == 1 and last["data"][0]["id"] > first["data"][-1]["id"]
            deep = messages(api, {**WINDOW, "page[limit]": 15, "page[offset]": total // 2}).json()
            assert len(deep["data"]) == 15
            _, peak = tracemalloc.get_traced_memory()
        # Two million dicts would take gigabytes; the blocks and index take a few megabytes.
        assert peak < 40 * 2**20, peak
    finally:
        tracemalloc.stop()


# --- the readings apply to messages through the same settings ---------------------------------

T = NOW + timedelta(days=2, hours=5)


@pytest.mark.parametrize(
    ("from_bound", "to_bound", "kept"),
    [
        ("inclusive", "inclusive", (0, 1, 2)),
        ("exclusive", "inclusive", (1, 2)),
        ("inclusive", "exclusive", (0, 1)),
        ("exclusive", "exclusive", (1,)),
    ],
)
def test_bounds_apply_to_messages(from_bound: str, to_bound: str, kept: tuple[int, ...]) -> None:
    with serving(from_bound=from_bound, to_bound=to_bound, messages_per_campaign=None) as (sim, api):
        edges = [sim.add_campaign(T + timedelta(seconds=s))["id"] for s in (0, 5, 10)]
        rows, _ = message_pages(api, window(T, T + timedelta(seconds=10)))
        assert Counter(row["campaign_id"] for row in rows) == {edges[k]: 10 for k in kept}


def test_subsecond_precision_applies_to_messages() -> None:
    with serving(created_precision="subsecond", messages_per_campaign=None) as (sim, api):
        late = sim.add_campaign(T + timedelta(milliseconds=250))["id"]
        exact = sim.add_campaign(T)["id"]
        rows, _ = message_pages(api, window(T - timedelta(seconds=5), T))
        assert {row["campaign_id"] for row in rows} == {exact}
        rows, _ = message_pages(api, window(T, T + SECOND))
        assert {row["campaign_id"] for row in rows} == {exact, late}
        truth = sim.message_ground_truth_ids(T + timedelta(milliseconds=1), T + SECOND)
        assert truth == sorted(row["id"] for row in rows if row["campaign_id"] == late)
        generated = message_pages(api, WINDOW)[0]
        assert all(row["created_at"].count(":") == 2 for row in generated)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"span_rule": "90d"},
        {"filter_formats": "plain,iso"},
        {"filter_formats": "iso"},
        {"timezone": "Europe/Berlin"},
    ],
)
@pytest.mark.parametrize(
    "params",
    [
        {"filter[from]": wall(NOW - timedelta(days=91)), "filter[to]": wall(NOW)},
        {"filter[from]": wall(NOW - timedelta(days=90)), "filter[to]": wall(NOW)},
        {"filter[from]": wall(months_back(NOW, 3) - SECOND), "filter[to]": wall(NOW)},
        {"filter[from]": "2025-06-01T00:00:00+02:00", "filter[to]": "2025-06-10T00:00:00Z"},
        {"filter[from]": wall(NOW), "filter[to]": wall(NOW - SECOND)},
        {"filter[to]": wall(NOW + timedelta(days=30, seconds=1))},
    ],
)
def test_window_rules_are_the_campaigns_rules(options: dict[str, Any], params: dict[str, str]) -> None:
    with serving(campaigns=30, **options) as (_sim, api):
        campaigns = api.list(params)
        found = messages(api, params)
        assert found.status_code == campaigns.status_code
        if found.status_code == 422:
            assert found.json()["errors"] == campaigns.json()["errors"]


def test_page_offset_in_meta_applies_to_messages() -> None:
    with serving(page_offset_in_meta=False) as (_sim, api):
        assert set(messages(api, WINDOW).json()["meta"]["page"]) == {"total", "limit"}


@pytest.mark.parametrize("name", ["filter[id]", "filter[campaign_id]", "page[limit]", "page[offset]"])
@pytest.mark.parametrize("value", ["9" * 5000, "\u0661\u0662", "1.5", "", " 1"])
def test_hostile_integers_are_422(served: tuple[BsgSimulator, Client], name: str, value: str) -> None:
    _sim, api = served
    response = messages(api, {name: value})
    assert response.status_code == 422, response.text
    assert list(response.json()["errors"]) == [name]


@pytest.mark.parametrize("path", ["/api/messages", "/api/campaigns/53000001/detail"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_405(served: tuple[BsgSimulator, Client], path: str, method: str) -> None:
    _sim, api = served
    response = api.session.request(method, f"{api.url}{path}", headers=api.headers(), timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_control_endpoints_refuse_other_methods(served: tuple[BsgSimulator, Client], method: str) -> None:
    _sim, api = served
    response = api.session.request(method, f"{api.url}/_simulator/messages/total", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
