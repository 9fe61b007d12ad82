"""A page decoded into structs: the same records, checks, errors and bytes as one decoded into dicts."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bsg_provider.client.api import list_request, parse_list_page, read_answer
from bsg_provider.client.resources import campaigns_query, messages_query
from bsg_provider.client.usual_page import UsualCampaign, as_dicts, field_values, is_typed, record_ids
from bsg_provider.errors import BsgMalformedResponseError
from bsg_provider.extraction.file_formats import CsvEncoder, JsonLinesEncoder
from bsg_provider.extraction.paging import WindowPager
from bsg_provider.extraction.records import CAMPAIGN_COLUMNS, STATISTICS_KEYS, RecordShaper
from bsg_provider.extraction.window_filter import WindowFilter
from bsg_provider.extraction.windows import plan_windows
from tests.test_file_formats import CAMPAIGN, campaigns


def body(records: list, total: int | None = None) -> bytes:
    meta = {"page": {"total": len(records) if total is None else total, "offset": 0, "limit": 500}}
    return json.dumps({"data": records, "meta": meta}, allow_nan=False).encode()


def read_page(data: bytes, *, typed: bool, query=None):
    """A list answer read as the hook reads it: decoded (typed or not), then checked."""
    request = list_request(query or campaigns_query("sms"), "a", "b", offset=0, limit=500, typed=typed)
    return parse_list_page(read_answer(request, 200, data, content_type="application/json"))


def test_the_struct_fields_are_the_output_columns():
    # The typed page's columns are taken in struct order: it must be the documented output order.
    assert UsualCampaign.__struct_fields__ == CAMPAIGN_COLUMNS
    assert UsualCampaign.__struct_fields__[CAMPAIGN_COLUMNS.index("statistics")] == "statistics"
    from bsg_provider.client.usual_page import UsualStatistics

    assert UsualStatistics.__struct_fields__ == STATISTICS_KEYS


def test_a_usual_page_is_typed_and_any_other_comes_as_dicts():
    usual = [{**CAMPAIGN, "id": n} for n in range(1, 4)]
    page = read_page(body(usual), typed=True)
    assert is_typed(page.records) and record_ids(page.records) == [1, 2, 3]
    assert (page.total, page.offset, page.limit) == (3, 0, 500)
    assert as_dicts(page.records) == usual
    # Without typed, or for another shape, or for messages: dicts, as ever.
    assert not is_typed(read_page(body(usual), typed=False).records)
    no_timestamp = {**CAMPAIGN, "start_at": 5}
    for odd in ({**CAMPAIGN, "extra": 1}, {**CAMPAIGN, "statistics": {"sent": 1}}, no_timestamp):
        records = read_page(body([usual[0], odd]), typed=True).records
        assert not is_typed(records) and records[1] == odd
    assert not is_typed(read_page(body(usual), typed=True, query=messages_query()).records)


def test_what_the_checks_refuse_is_refused_the_same_way_when_typed():
    bad_meta = b'{"data": [], "meta": {"page": {"total": -1}}}'
    for data in (b"[1]", body([{**CAMPAIGN, "id": "7"}]), bad_meta, b"{"):
        errors = []
        for typed in (False, True):
            with pytest.raises(BsgMalformedResponseError) as caught:
                read_page(data, typed=typed)
            errors.append(str(caught.value))
        assert errors[0] == errors[1]
    # A usual page with a wrong meta: the same check and message.
    with pytest.raises(BsgMalformedResponseError, match=r"meta\.page\.limit = None"):
        read_page(json.dumps({"data": [CAMPAIGN], "meta": {"page": {"total": 1}}}).encode(), typed=True)


def test_repeated_keys_keep_the_last_value_either_way():
    text = json.dumps({**CAMPAIGN, "id": 1})[:-1] + ', "id": 2, "statistics": {"delivered": 5, "sent": 6}}'
    data = b'{"data": [' + text.encode() + b'], "meta": {"page": {"total": 1, "offset": 0, "limit": 500}}}'
    typed, plain = read_page(data, typed=True).records, read_page(data, typed=False).records
    assert is_typed(typed)
    assert as_dicts(typed) == plain and plain[0]["id"] == 2


def _values(page):
    """Every value of every campaign, one level into lists and objects."""
    for campaign in page:
        for value in campaign.values():
            yield value
            if isinstance(value, list):
                yield from value


def outcome(encoder, records):
    try:
        return encoder.encode_page(records)
    except BsgMalformedResponseError as exc:
        return str(exc)


@settings(max_examples=150, deadline=None)
@given(
    page=st.lists(campaigns(), max_size=5),
    usual=st.integers(0, 5),
    zone=st.sampled_from(["UTC", "Europe/Berlin"]),
    convert=st.booleans(),
)
def test_a_typed_page_encodes_to_the_same_bytes_and_errors_as_dicts(page, usual, zone, convert):
    page = [
        {**CAMPAIGN, "id": 100 + n, "created_at": f"2024-04-0{n + 1} 0{n}:14:49"} for n in range(usual)
    ] + page
    assume(not any(isinstance(value, float) and math.isinf(value) for value in _values(page)))
    data = body(page)
    typed, plain = read_page(data, typed=True).records, read_page(data, typed=False).records
    shaper = RecordShaper(api_timezone=zone, convert_timestamps=convert)
    for encoder in (JsonLinesEncoder(shaper), CsvEncoder(shaper)):
        assert outcome(encoder, typed) == outcome(encoder, plain)
    assert field_values(typed, "created_at") == field_values(plain, "created_at")
    assert field_values(typed, "campaign_id") == field_values(plain, "campaign_id")


@settings(max_examples=100, deadline=None)
@given(
    minutes=st.lists(st.integers(-90, 24 * 60 + 90), max_size=8),
    drop=st.booleans(),
    message_type=st.sampled_from(["sms", "viber"]),
)
def test_the_pager_and_the_window_cut_keep_the_same_records_typed_or_not(minutes, drop, message_type):
    # Campaigns around a day's window: inside, outside by under a second, far outside (an assumption
    # error), of another type (another); the typed page must keep and refuse exactly what dicts do.
    day = datetime(2024, 4, 3, tzinfo=timezone.utc)
    window = plan_windows(day, day + timedelta(days=1), tz="UTC", now=day + timedelta(days=9)).windows[0]
    page = [
        {
            **CAMPAIGN,
            "id": n + 1,
            "message_type": message_type if n == 0 else "sms",
            "created_at": (day + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S"),
        }
        for n, m in enumerate(sorted(minutes))
    ]
    if drop and page:
        del page[-1]["currency"]
    data = body(page)
    results = []
    for typed in (True, False):
        pager, cut = WindowPager(500), WindowFilter(tz="UTC")
        cut.window(window)
        try:
            kept = cut.keep(pager.accept(read_page(data, typed=typed)))
            results.append((as_dicts(kept), pager.done, cut.outside))
        except Exception as exc:  # the same error either way is the point
            results.append((type(exc), str(exc)))
    assert results[0] == results[1]


def test_structs_come_back_as_the_dicts_the_generic_decode_gives():
    records = msgspec.json.decode(body([CAMPAIGN, {**CAMPAIGN, "id": 8}]))["data"]
    typed = read_page(body(records), typed=True).records
    assert as_dicts(typed) == records
    assert [list(record) for record in as_dicts(typed)] == [list(CAMPAIGN_COLUMNS)] * 2
    assert as_dicts(records) is records


def test_the_hook_reads_the_simulators_pages_typed_only_when_asked(simulator, bsg_conn_id):
    from bsg_provider.hooks.bsg import BsgHook

    end = simulator.now()
    hook = BsgHook(bsg_conn_id)
    plan = hook.plan(end - timedelta(days=30), end)
    typed = [page for page in hook.iter_pages(plan, typed=True)]
    plain = [page for page in hook.iter_pages(plan)]
    assert typed and all(map(is_typed, typed)), "the extraction's pages are not on the fast path"
    assert not any(map(is_typed, plain))
    assert [as_dicts(page) for page in typed] == plain


def test_typed_records_stay_out_of_the_garbage_collectors_way():
    # Tracked, every page of them brings the next collection closer (docs/performance.md):
    # decoded JSON holds no cycles, so they need not be tracked.
    import gc

    page = read_page(body([{**CAMPAIGN, "alternative_channels": None}]), typed=True).records
    assert is_typed(page)
    assert not gc.is_tracked(page[0]) and not gc.is_tracked(page[0].statistics)
    encoder = JsonLinesEncoder(RecordShaper())
    assert not gc.is_tracked(encoder._usual_record(*([None] * len(CAMPAIGN_COLUMNS))))


@pytest.mark.parametrize(
    ("number", "says"),
    [("1e400", r"the number 1e400 is too large"), ("NaN", r"NaN is not a JSON value"), ("9" * 5000, r"")],
)
def test_a_number_json_reads_but_no_file_can_hold_is_refused_not_written(number, says):
    # msgspec refuses these; json.loads took 1e400 as inf (written as null or inf), NaN as nan, and
    # raised an error without a position for 5,000 digits (AttributeError instead of a clear one).
    data = json.dumps({"data": [CAMPAIGN], "meta": {}}).replace("0.0527088", number).encode()
    for typed in (False, True):
        with pytest.raises(BsgMalformedResponseError, match="body that is not valid JSON.*" + says):
            read_page(data, typed=typed)
