"""Contract test: real simulator answers validate against the vendor's schemas (trimmed copy)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator

from bsg_provider.simulator import BsgSimulator

from .helpers import API_TIMESTAMP, NOW, Client

SCHEMAS = json.loads((Path(__file__).parents[1] / "schemas" / "bsg_one_api.json").read_text())
TIMESTAMP_FIELDS = ("start_at", "real_start_at", "finished_at", "created_at")
PARAMS = {"filter[from]": "2025-03-15 12:00:00", "filter[to]": "2025-06-15 12:00:00", "page[limit]": 500}


def check(body: Any, name: str) -> None:
    """Validate ``body`` against ``$defs/name`` and the vendor's timestamp text form."""
    schema = {**SCHEMAS, "$ref": f"#/$defs/{name}"}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, "\n".join(str(error.message) for error in errors[:5])
    campaigns = body.get("data") if isinstance(body, dict) else None
    for campaign in campaigns if isinstance(campaigns, list) else [campaigns] if campaigns else []:
        for field in TIMESTAMP_FIELDS:
            # The schema requires the campaign fields; messages and details are checked below.
            if campaign.get(field) is not None:
                assert re.fullmatch(API_TIMESTAMP, campaign[field]), (field, campaign[field])


@pytest.fixture(scope="module", params=["plain", "iso", "mixed"])
def formatted(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A logged-in client of a simulator in each timestamp format (Berlin, to show offsets)."""
    with BsgSimulator(
        campaigns=800, seed=2, timestamp_format=request.param, timezone="Europe/Berlin", now=NOW
    ) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        api.sim = sim  # type: ignore[attr-defined]
        yield api


def test_schema_file_is_a_valid_schema() -> None:
    Draft202012Validator.check_schema(SCHEMAS)
    assert "bsg-one-api-openapi.yaml" in SCHEMAS["$comment"]


def test_login_and_refresh(formatted: Client) -> None:
    response = requests.post(
        f"{formatted.url}/api/auth/login", json={"api_key": formatted.api_key}, timeout=5
    )
    check(response.json(), "TokenSchema")
    check(formatted.refresh().json(), "TokenSchema")


def test_list(formatted: Client) -> None:
    response = formatted.list(PARAMS)
    assert response.status_code == 200
    body = response.json()
    assert len(body["data"]) > 30
    check(body, "SearchCampaignResource")
    statuses = {row["status"] for row in body["data"]}
    assert {"done", "spam"} <= statuses


def test_list_with_live_statuses(formatted: Client) -> None:
    sim: BsgSimulator = formatted.sim  # type: ignore[attr-defined]
    for final in ("done", "paused", "spam", "sending"):
        sim.add_campaign(NOW, final_status=final, status_step_seconds=3600)
        sim.add_campaign(NOW, final_status=final, status_step_seconds=0.001)
    body = formatted.list({"filter[from]": "2025-06-15 14:00:00", "filter[to]": "2025-06-15 14:00:00"}).json()
    assert len(body["data"]) == 8
    check(body, "SearchCampaignResource")


def test_get_and_stop(formatted: Client) -> None:
    sim: BsgSimulator = formatted.sim  # type: ignore[attr-defined]
    done_id = formatted.list(PARAMS).json()["data"][0]["id"]
    check(formatted.get(done_id).json(), "CampaignResponse")
    sending = sim.add_campaign(NOW, status="sending")
    stopped = formatted.stop(sending["id"])
    assert stopped.status_code == 200
    check(stopped.json(), "CampaignResponse")
    refused = formatted.stop(sending["id"])
    assert refused.status_code == 422
    check(refused.json(), "InvalidCampaignStatus")


def test_errors(formatted: Client) -> None:
    missing = formatted.get(1)
    assert missing.status_code == 404
    check(missing.json(), "NotFound")
    invalid = formatted.list({"page[limit]": 1000, "filter[from]": "yesterday"})
    assert invalid.status_code == 422
    check(invalid.json(), "ValidationError")
    unauthorized = formatted.list(headers={})
    assert unauthorized.status_code == 401
    check(unauthorized.json(), "Unauthorized")
    bad_login = requests.post(f"{formatted.url}/api/auth/login", json={}, timeout=5)
    check(bad_login.json(), "ValidationError")


def test_rate_limit_fault_body(formatted: Client) -> None:
    sim: BsgSimulator = formatted.sim  # type: ignore[attr-defined]
    sim.inject("status", status=429, retry_after="1")
    response = formatted.list()
    assert response.status_code == 429
    check(response.json(), "TooManyRequests")


MESSAGE_TIMESTAMPS = ("created_at", "sent_at", "delivered_at")
DETAIL_TIMESTAMPS = ("started_at", "actual_start_at", "finished_at", "created_at")


def check_timestamps(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> None:
    """Every timestamp field of ``rows`` in the vendor's text form."""
    for row in rows:
        for field in fields:
            if row[field] is not None:
                assert re.fullmatch(API_TIMESTAMP, row[field]), (field, row[field])


def messages(api: Client, params: dict[str, Any]) -> requests.Response:
    return api.session.get(f"{api.url}/api/messages", params=params, headers=api.headers(), timeout=30)


def test_messages(formatted: Client) -> None:
    sim: BsgSimulator = formatted.sim  # type: ignore[attr-defined]
    for sort in ("id", "phone", "delivered"):
        response = messages(formatted, {**PARAMS, "sort": sort})
        assert response.status_code == 200
        body = response.json()
        assert len(body["data"]) == 500
        check(body, "GetMessages200Response")
        check_timestamps(body["data"], MESSAGE_TIMESTAMPS)
    pending = sim.add_campaign(NOW, final_status="done", status_step_seconds=3600)
    body = messages(formatted, {"filter[campaign_id]": pending["id"], "page[limit]": 15}).json()
    assert {row["status"] for row in body["data"]} == {"moderation"}
    check(body, "GetMessages200Response")
    check_timestamps(body["data"], MESSAGE_TIMESTAMPS)


def test_details(formatted: Client) -> None:
    sim: BsgSimulator = formatted.sim  # type: ignore[attr-defined]
    ids = [row["id"] for row in formatted.list(PARAMS).json()["data"][:20]]
    ids.append(sim.add_campaign(NOW, final_status="spam", status_step_seconds=0.001)["id"])
    for campaign_id in ids:
        response = formatted.session.get(
            f"{formatted.url}/api/campaigns/{campaign_id}/detail", headers=formatted.headers(), timeout=30
        )
        assert response.status_code == 200
        check(response.json(), "CampaignDetails200Response")
        check_timestamps([response.json()["data"]], DETAIL_TIMESTAMPS)
    missing = formatted.session.get(
        f"{formatted.url}/api/campaigns/1/detail", headers=formatted.headers(), timeout=5
    )
    assert missing.status_code == 404
    check(missing.json(), "NotFound")
    invalid = messages(formatted, {"page[limit]": 14, "sort": "date"})
    assert invalid.status_code == 422
    check(invalid.json(), "ValidationError")
