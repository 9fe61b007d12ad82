"""The per-resource declarations: page-size ranges, filters and what each record must match."""

from __future__ import annotations

import pytest

from bsg_provider.client import api
from bsg_provider.client.resources import CAMPAIGNS, MESSAGES, campaigns_query, messages_query
from bsg_provider.errors import BsgConfigError


@pytest.mark.parametrize(("resource", "lo"), [(CAMPAIGNS, 30), (MESSAGES, 15)])
def test_each_resource_has_its_page_size_range(resource, lo):
    assert resource.check_page_size(lo) == lo and resource.check_page_size(500) == 500
    for bad in (lo - 1, 501, True, "100", 100.0):
        with pytest.raises(BsgConfigError, match=rf"page_size must be (an integer )?from {lo} to 500"):
            resource.check_page_size(bad)


def test_queries_say_their_filters_and_checks():
    sms = campaigns_query("rcs")
    assert sms.filters == (("filter[type]", "rcs"),) and sms.expect == (("message_type", "rcs"),)
    with pytest.raises(BsgConfigError, match="campaign_type must be one of sms, rcs, whatsapp"):
        campaigns_query("fax")
    assert messages_query().filters == () and messages_query().expect == ()
    one = messages_query(42)
    assert one.filters == (("filter[campaign_id]", "42"),) and one.expect == (("campaign_id", 42),)


def test_list_requests_of_both_resources_share_paging_and_bounds():
    bounds = ("2025-01-01 00:00:00", "2025-02-01 00:00:00")
    request = api.list_request(messages_query(7), *bounds, offset=15, limit=15)
    assert (request.endpoint, request.path) == ("messages", "/api/messages")
    assert request.params == {
        "filter[campaign_id]": "7",
        "filter[from]": "2025-01-01 00:00:00",
        "filter[to]": "2025-02-01 00:00:00",
        "page[offset]": "15",
        "page[limit]": "15",
        "sort": "id",
        "way": "asc",
    }
    campaigns = api.list_campaigns_request("a", "b", campaign_type="sms", offset=0, limit=30)
    assert (campaigns.endpoint, campaigns.path) == ("list", "/api/campaigns")
    assert campaigns.params["filter[type]"] == "sms"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (5, [5]), ("5", [5]), ([5, "6", 5], [5, 6]), ("5, 6", [5, 6]), ("[5, 6]", [5, 6])],
)
def test_campaign_ids_one_or_many(value, expected):
    assert api.check_campaign_ids(value) == expected


def test_message_pages_and_details_are_checked():
    meta = {"page": {"total": 1, "offset": 0, "limit": 15}}
    assert api.parse_message_page({"data": [{"id": 1}], "meta": meta}).total == 1
    with pytest.raises(Exception, match=r"messages answer .*a message whose id is '1'"):
        api.parse_message_page({"data": [{"id": "1"}], "meta": meta})
    assert api.parse_campaign_details({"data": {"id": 3, "statistics": {}}})["id"] == 3
    with pytest.raises(Exception, match=r"detail answer .*no 'statistics' object"):
        api.parse_campaign_details({"data": {"id": 3}})
    assert api.campaign_details_request(3).path == "/api/campaigns/3/detail"
