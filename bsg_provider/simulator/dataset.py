"""The simulated campaigns: deterministic generation, status progression and fast selection.

Campaigns are kept per message type in a list ordered by ``(created_at, id)`` so a
``filter[from]``/``filter[to]`` window on ``created_at`` is two bisects (a filter on
``start_at`` uses a second index built on demand). Filter keys are integer epoch
microseconds: ``created_at`` may carry a millisecond fraction (sub-second precision).
Generated campaigns derive every attribute lazily from 96 random bits, which keeps
start-up fast for large data sets; their rendered JSON is cached once their status can no longer change.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, tzinfo
from json.encoder import encode_basestring_ascii
from typing import Any

from .timeutil import US, epoch_to_wall, format_offset, format_wall

STATUSES = ("creation", "moderation", "scheduled", "sending", "paused", "stopped", "done", "spam")
STOPPABLE = frozenset({"scheduled", "sending", "paused", "moderation"})
#: Values the list endpoint's ``filter[type]`` accepts.
LIST_TYPES = ("sms", "rcs", "whatsapp")
#: Values the vendor's MessageType schema allows on a campaign.
MESSAGE_TYPES = ("sms", "viber", "hlr", "rcs", "whatsapp")
TIMESTAMP_FORMATS = ("plain", "iso", "mixed")
FIRST_ID = 53_000_000

_PROGRESSION = ("creation", "moderation", "scheduled", "sending")
_SENDERS = (
    "testsms",
    "BSG",
    "Vet klinika",
    "InfoSMS",
    "ShopNow",
    "Bank24",
    "TaxiGo",
    "PromoSMS",
    "Delivery",
    "MyClinic",
    "AirTickets",
    "PizzaHut",
    "Beauty Bar",
    "CityGym",
    "Notice",
    "OTPcode",
)
_PREFIX = {"sms": "SMS", "rcs": "RCS", "whatsapp": "WhatsApp", "viber": "Viber", "hlr": "HLR"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH_DATE = date(1970, 1, 1)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_ESCAPE = encode_basestring_ascii
_ADD_FIELDS = frozenset(
    {
        "id",
        "name",
        "sender",
        "status",
        "start_at",
        "statistics",
        "calculated_price",
        "currency",
        "alternative_channels",
    }
)


def progression(origin: float, step: float, final_status: str) -> tuple[tuple[float, str], ...]:
    """Timeline from creation to ``final_status``, one status per ``step`` seconds.

    :param origin: epoch seconds of the ``creation`` status.
    :param step: seconds between statuses.
    :param final_status: the status the campaign settles in.
    """
    if final_status not in STATUSES:
        raise ValueError(f"unknown status {final_status!r}; expected one of {STATUSES}")
    if final_status in _PROGRESSION:
        path = _PROGRESSION[: _PROGRESSION.index(final_status) + 1]
    elif final_status == "spam":
        # Spam is a moderation verdict: such a campaign is never scheduled.
        path = ("creation", "moderation", "spam")
    else:
        path = (*_PROGRESSION, final_status)
    return tuple((origin + index * step, status) for index, status in enumerate(path))


class Campaign:
    """One campaign. Generated ones fill their attributes from ``bits`` on first use.

    :param campaign_id: the campaign id.
    :param created: ``created_at`` in whole epoch seconds.
    :param message_type: sms, rcs, whatsapp...
    :param bits: random bits to derive the other attributes from, or None when set explicitly.
    :param frac: microseconds of ``created_at`` past ``created`` (0 at second precision).
    """

    __slots__ = (
        "alternative_channels",
        "bits",
        "cached",
        "created",
        "currency",
        "delivered",
        "fixed_stats",
        "frac",
        "id",
        "message_type",
        "name",
        "price",
        "sender",
        "sent",
        "settle_at",
        "start_at",
        "start_frac",
        "timeline",
    )

    def __init__(
        self, campaign_id: int, created: int, message_type: str, bits: int | None = None, frac: int = 0
    ) -> None:
        # Only what bisecting and lazy materialization need: keeps generating 200k campaigns fast.
        self.id = campaign_id
        self.created = created
        self.frac = frac
        self.message_type = message_type
        self.bits = bits
        self.cached: bytes | None = None
        if bits is None:
            self.set_defaults()

    def set_defaults(self) -> None:
        """Give every other attribute a value (done by materialization for generated campaigns)."""
        self.timeline: tuple[tuple[float, str], ...] = ((self.created, "creation"),)
        self.settle_at = math.inf
        self.name = ""
        self.sender = ""
        self.sent = 0
        self.delivered = 0
        self.fixed_stats = False
        self.price: float | None = None
        self.currency: str | None = None
        self.start_at = self.created
        self.start_frac = self.frac
        self.alternative_channels: Any = None

    @property
    def key(self) -> int:
        """``created_at`` in epoch microseconds, what filters compare."""
        return self.created * US + self.frac

    @property
    def start_key(self) -> int:
        """``start_at`` in epoch microseconds (call on a materialized campaign)."""
        return self.start_at * US + self.start_frac

    def state(self, now: float) -> tuple[str, float | None, float | None]:
        """Status, real start and finish instants at ``now`` (epoch seconds).

        :param now: simulated epoch seconds.
        """
        status, reached = self.timeline[0][1], self.timeline[0][0]
        real_start = None
        for moment, name in self.timeline:
            if moment > now:
                break
            status, reached = name, moment
            if name == "sending" and real_start is None:
                real_start = moment
        # The vendor shows no finish time for a campaign stopped before it ever sent.
        finished = reached if status == "done" or (status == "stopped" and real_start is not None) else None
        return status, real_start, finished

    def next_change(self, now: float) -> float:
        """Epoch seconds of the next status change after ``now``, or infinity.

        :param now: simulated epoch seconds.
        """
        return next((moment for moment, _ in self.timeline if moment > now), math.inf)


def _materialize(campaign: Campaign, tz: tzinfo, messages_per_campaign: int | None = None) -> None:
    """Derive a generated campaign's attributes from its random bits (bit ranges are disjoint).

    :param messages_per_campaign: the number of messages it sent, instead of the one its bits give.
    """
    bits = campaign.bits
    if bits is None:
        return
    campaign.bits = None
    campaign.set_defaults()
    created = campaign.created
    campaign.sender = _SENDERS[(bits >> 16) & 0xF]
    size = (bits >> 30) & 0xFFF
    sent = campaign.sent = 1 + ((size**3) >> 24) if messages_per_campaign is None else messages_per_campaign
    campaign.delivered = sent * (60 + ((bits >> 42) & 0x3F) * 40 // 63) // 100
    price_mode = (bits >> 48) & 3
    if price_mode == 1:
        campaign.price = 0.0
    elif price_mode > 1:
        campaign.price = round(sent * 0.0125 + 0.0027, 4)
        campaign.currency = "EUR" if (bits >> 50) & 1 else "USD"
    delay = (((bits >> 55) & 0x3F) + 1) * 60 if (bits >> 51) & 0xF >= 13 else 0
    campaign.start_at = created + delay
    moderation = created + 1 + ((bits >> 61) & 3)
    scheduled = moderation + 1 + ((bits >> 63) & 7)
    sending = max(campaign.start_at, scheduled + 1) + ((bits >> 66) & 3)
    finished = sending + 1 + sent // 20
    roll = (bits >> 20) & 0x3FF
    final = "done" if roll < 870 else "stopped" if roll < 940 else "spam" if roll < 1000 else "paused"
    if final == "spam":
        timeline: tuple[tuple[float, str], ...] = (
            (created, "creation"),
            (moderation, "moderation"),
            (scheduled + 5, "spam"),
        )
    elif final == "stopped" and delay and (bits >> 81) & 1:
        timeline = (
            (created, "creation"),
            (moderation, "moderation"),
            (scheduled, "scheduled"),
            (scheduled + delay // 2, "stopped"),
        )
    else:
        end = finished if final != "stopped" else sending + 1 + (finished - sending) // 2
        timeline = (
            (created, "creation"),
            (moderation, "moderation"),
            (scheduled, "scheduled"),
            (sending, "sending"),
            (end, final),
        )
    campaign.timeline = timeline
    campaign.settle_at = timeline[-1][0]
    kind = (bits >> 68) & 7
    if kind == 5:
        wall = epoch_to_wall(created, tz)
        campaign.name = f"Promo {_MONTHS[wall.month - 1]} {wall.year}"
    elif kind == 6:
        campaign.name = f"Newsletter #{((bits >> 71) & 0x3FF) + 1}"
    elif kind == 7:
        campaign.name = f"Reminders {datetime.fromtimestamp(created, tz).date().isoformat()}"
    else:
        wall_text = datetime.fromtimestamp(created, tz).isoformat(" ")[:19]
        campaign.name = f"{_PREFIX[campaign.message_type]} api campaign / {wall_text}"


def _quoted(stamp: Callable[[float], str], seconds: float | None) -> str:
    return "null" if seconds is None else f'"{stamp(seconds)}"'


class Renderer:
    """Renders timestamps in the API timezone and format.

    Cold list pages render thousands of timestamps, so UTC offsets are cached per
    15-minute bucket (every modern zone changes offset on such a boundary) and dates per day.

    :param tz: the API timezone.
    :param timestamp_format: plain, iso (space form with offset) or mixed (per campaign).
    :param subsecond: show milliseconds in the form with an offset (``12:14:49.250+02:00``, as
        the vendor's OpenAPI examples); the plain form always truncates to the second.
    """

    def __init__(self, tz: tzinfo, timestamp_format: str, subsecond: bool = False) -> None:
        if timestamp_format not in TIMESTAMP_FORMATS:
            raise ValueError(f"timestamp_format must be one of {TIMESTAMP_FORMATS}")
        self.tz = tz
        self.timestamp_format = timestamp_format
        self.subsecond = subsecond
        self._offsets: dict[int, tuple[int, str]] = {}
        self._dates: dict[int, str] = {}

    def _offset(self, bucket: int) -> tuple[int, str]:
        local = datetime.fromtimestamp(bucket * 900, self.tz)
        seconds = int((local.utcoffset() or timedelta(0)).total_seconds())
        entry = self._offsets[bucket] = (seconds, format_offset(local))
        return entry

    def text(self, seconds: float, with_offset: bool, frac: int | None = None) -> str:
        """``yyyy-mm-dd hh:mm:ss`` (plus ``+hh:mm`` if asked) of epoch seconds, floored.

        :param seconds: epoch seconds.
        :param with_offset: append the UTC offset, as the vendor's ``2000-01-23 04:56:07+00:00``.
        :param frac: microseconds past ``seconds``; None takes the fraction of ``seconds``.
        """
        whole = math.floor(seconds)
        bucket = whole // 900
        offset, suffix = self._offsets.get(bucket) or self._offset(bucket)
        day, rest = divmod(whole + offset, 86400)
        date = self._dates.get(day)
        if date is None:
            date = self._dates[day] = (_EPOCH_DATE + timedelta(days=day)).isoformat()
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        clock = f"{date} {hours:02d}:{minutes:02d}:{secs:02d}"
        if not with_offset:
            return clock
        if self.subsecond:
            micros = round((seconds - whole) * US) if frac is None else frac
            clock = f"{clock}.{min(micros // 1000, 999):03d}"
        return clock + suffix

    def stamper(self, campaign_id: int) -> Callable[..., str]:
        """The timestamp renderer (``seconds, frac=None``) used for every field of one campaign.

        :param campaign_id: decides the form when the format is ``mixed``.
        """
        offset = self.timestamp_format == "iso" or (self.timestamp_format == "mixed" and campaign_id % 2 == 1)
        text = self.text
        return lambda seconds, frac=None: text(seconds, offset, frac)


class _Lane:
    """The campaigns of one message type, ordered by (created key, id)."""

    __slots__ = ("id_sorted", "items", "start_index", "times")

    def __init__(self) -> None:
        # created_at keys (epoch microseconds), parallel to items.
        self.times: list[int] = []
        # (dataset version, start_at keys, campaigns ordered by (start_at, id)), built on demand.
        self.start_index: tuple[int, list[int], list[Campaign]] | None = None
        self.items: list[Campaign] = []
        # True while id order equals (created, id) order: the default sort then needs no sorting.
        self.id_sorted = True


class Dataset:
    """All campaigns of one simulator; every method is thread-safe.

    :param count: number of campaigns to generate.
    :param seed: random seed; the same seed and anchor give the same campaigns.
    :param anchor: epoch seconds of "now" the campaigns are generated before.
    :param period_days: campaigns are spread over this many days before the anchor.
    :param tz: the API timezone.
    :param timestamp_format: see :class:`Renderer`.
    :param subsecond: give generated ``created_at`` a millisecond fraction.
    :param messages_per_campaign: messages each campaign sent (its ``statistics.sent``); None keeps
        the number its random bits give (1 to about 4,000, 1,000 on average).
    """

    def __init__(
        self,
        *,
        count: int,
        seed: int,
        anchor: int,
        period_days: float,
        tz: tzinfo,
        timestamp_format: str,
        subsecond: bool = False,
        messages_per_campaign: int | None = None,
    ) -> None:
        if messages_per_campaign is not None and messages_per_campaign < 0:
            raise ValueError("messages_per_campaign must be at least 0")
        self.messages_per_campaign = messages_per_campaign
        self.lock = threading.RLock()
        self.tz = tz
        self.subsecond = subsecond
        self.renderer = Renderer(tz, timestamp_format, subsecond)
        self._by_id: dict[int, Campaign] = {}
        self._lanes: dict[str, _Lane] = {name: _Lane() for name in LIST_TYPES}
        self._drift = random.Random(f"drift-{seed}")
        self._version = 0
        self._orders: dict[tuple[Any, ...], tuple[int, float, list[Campaign]]] = {}
        self.max_id = FIRST_ID
        self._generate(count, seed, anchor, int(period_days * 86400))

    def _generate(self, count: int, seed: int, anchor: int, span: int) -> None:
        if count <= 0 or span <= 0:
            return
        rng = random.Random(seed)
        start = anchor - span
        rand = rng.random
        times = [start + int(rand() * span) for _ in range(count)]
        # Campaigns exactly at UTC midnight and several in one second expose window-edge bugs.
        first_midnight = -(-start // 86400) * 86400
        days = (anchor - 1 - first_midnight) // 86400 + 1 if first_midnight < anchor else 0
        if days > 0:
            for _ in range(min(count, max(2, count // 100))):
                times[rng.randrange(count)] = first_midnight + 86400 * rng.randrange(days)
        times.sort()
        if count > 1:
            for _ in range(max(2, count // 50)):
                index = rng.randrange(1, count)
                times[index] = times[index - 1]
            midnight = next((i for i in range(count - 1) if times[i] % 86400 == 0), None)
            if midnight is not None:
                times[midnight + 1] = times[midnight]
        fracs = self._fractions(times, seed, days, first_midnight) if self.subsecond else [0] * count
        next_id = FIRST_ID
        getbits = rng.getrandbits
        lanes = self._lanes
        by_id = self._by_id
        for created, frac in zip(times, fracs, strict=True):
            bits = getbits(96)
            next_id += 1 + (bits & 0xFF) % 5
            roll = (bits >> 8) & 0xFF
            message_type = "sms" if roll < 218 else "rcs" if roll < 243 else "whatsapp"
            campaign = Campaign(next_id, created, message_type, bits, frac)
            by_id[next_id] = campaign
            lane = lanes[message_type]
            lane.times.append(created * US + frac)
            lane.items.append(campaign)
        self.max_id = next_id

    @staticmethod
    def _fractions(times: list[int], seed: int, days: int, first_midnight: int) -> list[int]:
        """Millisecond fractions for sorted ``times``, re-sorting ``times`` in place with them.

        Campaigns on a midnight stay exactly on it; a few more land in the last second before a
        midnight with a fraction of at least half a second (a ``to = end - 1 s`` filter misses them).
        """
        rng = random.Random(f"fraction-{seed}")
        count = len(times)
        fracs = [0 if created % 86400 == 0 else rng.randrange(1000) * 1000 for created in times]
        if days > 1:
            for _ in range(max(2, count // 100)):
                index = rng.randrange(count)
                times[index] = first_midnight + 86400 * rng.randrange(1, days) - 1
                fracs[index] = rng.randrange(500, 1000) * 1000
        pairs = sorted(zip(times, fracs, strict=True))
        times[:] = [created for created, _ in pairs]
        return [frac for _, frac in pairs]

    # --- reading -----------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """A number that changes whenever a campaign is added, removed or changes status."""
        return self._version

    def materialize(self, campaign: Campaign) -> None:
        """Derive a generated campaign's attributes now (a no-op for the others).

        :param campaign: the campaign.
        """
        with self.lock:
            _materialize(campaign, self.tz, self.messages_per_campaign)

    def live(self) -> list[Campaign]:
        """Every campaign, of every message type, ordered by (created key, id)."""
        with self.lock:
            items = [campaign for lane in self._lanes.values() for campaign in lane.items]
        items.sort(key=lambda c: (c.key, c.id))
        return items

    def get(self, campaign_id: int) -> Campaign | None:
        """The campaign with this id, or None.

        :param campaign_id: the id.
        """
        return self._by_id.get(campaign_id)

    def to_dict(self, campaign: Campaign, now: float) -> dict[str, Any]:
        """A campaign as the API renders it at ``now``.

        :param campaign: the campaign.
        :param now: simulated epoch seconds.
        """
        return json.loads(self.to_json(campaign, now))

    def to_json(self, campaign: Campaign, now: float) -> bytes:
        """A campaign's JSON, cached once its status is settled.

        :param campaign: the campaign.
        :param now: simulated epoch seconds.
        """
        cached = campaign.cached
        if cached is not None:
            return cached
        with self.lock:
            data = self._render(campaign, now)
            if now >= campaign.settle_at:
                campaign.cached = data
            return data

    def _render(self, campaign: Campaign, now: float) -> bytes:
        # Hand-built JSON: ten times faster than json.dumps, which matters for cold list pages.
        _materialize(campaign, self.tz, self.messages_per_campaign)
        status, real_start, finished = campaign.state(now)
        stamp = self.renderer.stamper(campaign.id)
        created = stamp(campaign.created, campaign.frac)
        same_start = campaign.start_at == campaign.created and campaign.start_frac == campaign.frac
        start_at = created if same_start else stamp(campaign.start_at, campaign.start_frac)
        shown = campaign.fixed_stats or real_start is not None
        price = "null" if campaign.price is None else repr(float(campaign.price))
        channels = "null" if campaign.alternative_channels is None else _ENCODE(campaign.alternative_channels)
        return (
            f'{{"id":{campaign.id},"name":{_ESCAPE(campaign.name)},"sender":{_ESCAPE(campaign.sender)},'
            f'"status":"{status}","message_type":"{campaign.message_type}","start_at":"{start_at}",'
            f'"real_start_at":{_quoted(stamp, real_start)},"finished_at":{_quoted(stamp, finished)},'
            f'"created_at":"{created}","statistics":{{"delivered":{campaign.delivered if shown else 0},'
            f'"sent":{campaign.sent if shown else 0}}},"calculated_price":{price},'
            f'"currency":{"null" if campaign.currency is None else _ESCAPE(campaign.currency)},'
            f'"alternative_channels":{channels}}}'
        ).encode()

    def select(
        self,
        message_type: str,
        lo: int,
        hi: int,
        sort: str,
        way: str,
        offset: int,
        limit: int,
        now: float,
        field: str = "created_at",
    ) -> tuple[int, list[bytes]]:
        """One page of the list endpoint: campaigns with ``lo <= field <= hi``.

        :param message_type: the ``filter[type]``.
        :param lo: first epoch microsecond included.
        :param hi: last epoch microsecond included.
        :param sort: id, sender, type, date (created_at) or status (by name, alphabetically: the
            vendor does not say); id breaks ties in the same direction.
        :param way: asc or desc.
        :param offset: rows to skip.
        :param limit: rows to return at most.
        :param now: simulated epoch seconds.
        :param field: the timestamp the window applies to: created_at or start_at.
        :return: the total in the window and the page's rendered campaigns.
        """
        with self.lock:
            lane = self._lanes.get(message_type)
            if lane is None:
                return 0, []
            keys, items = (lane.times, lane.items) if field == "created_at" else self._start_index(lane)
            start = bisect_left(keys, lo)
            end = bisect_right(keys, hi)
            total = max(0, end - start)
            if offset >= total:
                return total, []
            if field == "created_at" and (sort == "date" or (sort == "id" and lane.id_sorted)):
                if way == "asc":
                    page = lane.items[start + offset : min(end, start + offset + limit)]
                else:
                    top = end - offset
                    page = lane.items[max(start, top - limit) : top]
                    page.reverse()
            else:
                ordered = self._ordered((message_type, field), items, start, end, sort, way, now)
                page = ordered[offset : offset + limit]
            return total, [self.to_json(campaign, now) for campaign in page]

    def _start_index(self, lane: _Lane) -> tuple[list[int], list[Campaign]]:
        # A start_at filter is a reading the tests ask for; index it once per data version.
        cached = lane.start_index
        if cached is not None and cached[0] == self._version:
            return cached[1], cached[2]
        for campaign in lane.items:
            _materialize(campaign, self.tz, self.messages_per_campaign)
        items = sorted(lane.items, key=lambda c: (c.start_key, c.id))
        keys = [campaign.start_key for campaign in items]
        lane.start_index = (self._version, keys, items)
        return keys, items

    def _ordered(
        self,
        source: tuple[str, str],
        lane_items: list[Campaign],
        start: int,
        end: int,
        sort: str,
        way: str,
        now: float,
    ) -> list[Campaign]:
        # Paging re-requests the same window many times: sort it once per data version.
        key = (*source, start, end, sort, way)
        hit = self._orders.get(key)
        if hit is not None and hit[0] == self._version and now < hit[1]:
            return hit[2]
        items = lane_items[start:end]
        for campaign in items:
            _materialize(campaign, self.tz, self.messages_per_campaign)
        valid_until = math.inf
        sort_key: Callable[[Campaign], Any]
        if sort == "sender":
            sort_key = lambda c: (c.sender, c.id)  # noqa: E731
        elif sort == "type":
            sort_key = lambda c: (c.message_type, c.id)  # noqa: E731
        elif sort == "date":
            sort_key = lambda c: (c.key, c.id)  # noqa: E731
        elif sort == "status":
            sort_key = lambda c: (c.state(now)[0], c.id)  # noqa: E731
            valid_until = min((c.next_change(now) for c in items), default=math.inf)
        else:
            sort_key = lambda c: c.id  # noqa: E731
        items.sort(key=sort_key, reverse=way == "desc")
        if len(self._orders) > 16:
            self._orders.clear()
        self._orders[key] = (self._version, valid_until, items)
        return items

    def window(self, message_type: str, lo: int, hi_exclusive: int) -> list[Campaign]:
        """Campaigns with ``lo <= created_at < hi_exclusive``, sorted by id.

        :param message_type: the message type.
        :param lo: first epoch microsecond included.
        :param hi_exclusive: first epoch microsecond excluded.
        """
        with self.lock:
            lane = self._lanes.get(message_type)
            if lane is None:
                return []
            start = bisect_left(lane.times, lo)
            end = bisect_left(lane.times, hi_exclusive)
            return sorted(lane.items[start:end], key=lambda c: c.id)

    # --- changing ----------------------------------------------------------------------------

    def add(
        self,
        created_us: int,
        *,
        message_type: str,
        final_status: str,
        step: float,
        now: float,
        fields: dict[str, Any],
    ) -> Campaign:
        """Add a campaign whose status progresses from ``now`` towards ``final_status``.

        :param created_us: ``created_at`` in epoch microseconds.
        :param message_type: sms, rcs, whatsapp (viber and hlr too, though the list cannot filter them).
        :param final_status: the status it settles in.
        :param step: seconds per status step.
        :param now: simulated epoch seconds the progression starts at.
        :param fields: overrides: id, name, sender, status (fixed), start_at (epoch microseconds),
            statistics ({"sent", "delivered"}), calculated_price, currency, alternative_channels.
        """
        unknown = set(fields) - _ADD_FIELDS
        if unknown:
            raise TypeError(f"unknown campaign fields: {sorted(unknown)}; allowed: {sorted(_ADD_FIELDS)}")
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"message_type must be one of {MESSAGE_TYPES}")
        if step <= 0:
            raise ValueError("status_step_seconds must be positive")
        with self.lock:
            campaign_id = fields.get("id")
            if campaign_id is None:
                campaign_id = self.max_id + 1
            elif not isinstance(campaign_id, int) or campaign_id in self._by_id:
                raise ValueError(f"id {campaign_id!r} is not a new integer id")
            created, frac = divmod(created_us, US)
            campaign = Campaign(campaign_id, created, message_type, frac=frac)
            if "status" in fields:
                campaign.timeline = ((now, _check_status(fields["status"])),)
            else:
                campaign.timeline = progression(now, step, final_status)
            campaign.settle_at = campaign.timeline[-1][0]
            wall = format_wall(epoch_to_wall(created, self.tz))
            campaign.name = fields.get("name", f"{_PREFIX[message_type]} api campaign / {wall}")
            campaign.sender = fields.get("sender", "testsms")
            campaign.start_at, campaign.start_frac = divmod(fields.get("start_at", created_us), US)
            stats = fields.get("statistics")
            if stats is not None:
                campaign.sent, campaign.delivered = int(stats["sent"]), int(stats["delivered"])
                campaign.fixed_stats = True
            else:
                sent = 10 if self.messages_per_campaign is None else self.messages_per_campaign
                campaign.sent, campaign.delivered = sent, sent * 7 // 10
            campaign.price = fields.get("calculated_price", 0.0)
            campaign.currency = fields.get("currency")
            campaign.alternative_channels = fields.get("alternative_channels")
            self._insert(campaign)
            return campaign

    def _insert(self, campaign: Campaign) -> None:
        lane = self._lanes.setdefault(campaign.message_type, _Lane())
        times, items = lane.times, lane.items
        key = campaign.key
        pos = bisect_right(times, key)
        while pos > 0 and times[pos - 1] == key and items[pos - 1].id > campaign.id:
            pos -= 1
        after_bigger = pos > 0 and items[pos - 1].id > campaign.id
        before_smaller = pos < len(items) and items[pos].id < campaign.id
        if after_bigger or before_smaller:
            lane.id_sorted = False
        times.insert(pos, key)
        items.insert(pos, campaign)
        self._by_id[campaign.id] = campaign
        self.max_id = max(self.max_id, campaign.id)
        self._version += 1

    def delete(self, campaign_id: int) -> None:
        """Remove a campaign.

        :param campaign_id: the id; KeyError when unknown.
        """
        with self.lock:
            campaign = self._by_id.pop(campaign_id)
            lane = self._lanes[campaign.message_type]
            pos = bisect_left(lane.times, campaign.key)
            while lane.items[pos] is not campaign:
                pos += 1
            del lane.times[pos]
            del lane.items[pos]
            self._version += 1

    def set_status(self, campaign_id: int, status: str, now: float) -> None:
        """Fix a campaign's status from ``now`` on, keeping the history reached so far.

        :param campaign_id: the id; KeyError when unknown.
        :param status: the new status.
        :param now: simulated epoch seconds.
        """
        _check_status(status)
        with self.lock:
            campaign = self._by_id[campaign_id]
            _materialize(campaign, self.tz, self.messages_per_campaign)
            reached = tuple(entry for entry in campaign.timeline if entry[0] <= now)
            campaign.timeline = (*reached, (now, status))
            campaign.settle_at = now
            campaign.cached = None
            self._version += 1

    def stop(self, campaign_id: int, now: float) -> Campaign | None:
        """The stop endpoint's rule: only scheduled, sending, paused or moderation may stop.

        :param campaign_id: the id; KeyError when unknown.
        :param now: simulated epoch seconds.
        :return: the stopped campaign, or None when its status does not allow stopping.
        """
        with self.lock:
            campaign = self._by_id[campaign_id]
            _materialize(campaign, self.tz, self.messages_per_campaign)
            if campaign.state(now)[0] not in STOPPABLE:
                return None
            self.set_status(campaign_id, "stopped", now)
            return campaign

    def insert_random(self, message_type: str, lo: int, hi: int, count: int) -> list[int]:
        """Insert generated campaigns at random instants in ``[lo, hi]`` with new ids.

        :param message_type: their message type.
        :param lo: first epoch microsecond allowed.
        :param hi: last epoch microsecond allowed.
        :param count: how many (none when no whole second, or millisecond, lies in the window).
        """
        step = 1000 if self.subsecond else US
        first, last = -(-lo // step), hi // step
        with self.lock:
            added: list[int] = []
            if first > last:
                return added
            for _ in range(count):
                created, frac = divmod(self._drift.randint(first, last) * step, US)
                campaign = Campaign(self.max_id + 1, created, message_type, self._drift.getrandbits(96), frac)
                self._insert(campaign)
                added.append(campaign.id)
            return added

    def delete_lowest(self, message_type: str, lo: int, hi: int, count: int) -> list[int]:
        """Delete the ``count`` lowest-id campaigns with ``lo <= created_at <= hi``.

        :param message_type: the message type.
        :param lo: first epoch microsecond.
        :param hi: last epoch microsecond.
        :param count: how many.
        """
        with self.lock:
            lane = self._lanes.get(message_type)
            if lane is None:
                return []
            start, end = bisect_left(lane.times, lo), bisect_right(lane.times, hi)
            victims = [c.id for c in heapq.nsmallest(count, lane.items[start:end], key=lambda c: c.id)]
            for campaign_id in victims:
                self.delete(campaign_id)
            return victims

    def ids(self) -> Iterable[int]:
        """All campaign ids (unordered)."""
        with self.lock:
            return list(self._by_id)


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
    return status
