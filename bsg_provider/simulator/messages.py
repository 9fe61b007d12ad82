"""The simulated messages: derived on demand from (seed, campaign, index), never stored one by one.

A campaign that sent ``n`` messages owns the message ids ``first_id .. first_id + n - 1``
(allocated in campaign id order) and a :class:`Block` of a few dozen numbers from which
every message's attributes follow: ``created_at`` is ``campaign.created_at + (i * spread //
n)`` units (whole seconds, or milliseconds at sub-second precision), non-decreasing in the
index, so the messages of a campaign inside a filter window are one index range found by
bisection; the final statuses are laid out over a permutation of the indices so that their
counts are exactly the campaign's ``statistics``. A window's page is then a prefix sum over
the candidate campaigns' ranges: nothing is materialised per message, and two million
messages cost a few kilobytes per campaign.

Consistency with the campaigns: a campaign's ``statistics.delivered`` is the number of its
messages whose status is ``delivered`` and ``statistics.sent`` the number that left the
platform (every status but ``scheduled`` and ``moderation``). Before a campaign starts sending
(while its list ``statistics`` show zeros) its messages are ``moderation`` (campaign in
creation, moderation or spam) or ``scheduled``, without ``sent_at``/``delivered_at`` and with
an amount of 0; once it sends they show their final status. Drift (insert/delete faults on the
messages endpoint) adds or removes messages and updates the campaign's statistics with them.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii
from math import gcd
from typing import Any

from .dataset import Campaign, Dataset
from .timeutil import US

#: The keys of a campaign's detailed ``statistics``, in the vendor's order.
STATISTICS_KEYS = (
    "delivered",
    "sent",
    "scheduled",
    "moderation",
    "accepted",
    "sending",
    "expired",
    "failed",
    "undelivered",
    "unknown",
    "read",
    "not_viber_user",
    "not_rcs_user",
)
#: Statuses of messages that have not left the platform.
PENDING_STATUSES = frozenset({"scheduled", "moderation"})
#: Statuses whose delivery report has arrived (they carry ``delivered_at``).
REPORTED_STATUSES = frozenset({"delivered", "read", "undelivered", "expired", "failed", "not_viber_user"})
FIRST_MESSAGE_ID = 4_400_000_000
#: Messages of a campaign are created within this many seconds of it.
MAX_SPREAD_SECONDS = 3600
_MASK = (1 << 64) - 1
_ESCAPE = encode_basestring_ascii
# Final statuses other than delivered and their weights, per message type.
_OUTCOMES = {
    "sms": (("undelivered", 4), ("expired", 2), ("failed", 2), ("unknown", 1), ("sent", 1)),
    "rcs": (("read", 4), ("undelivered", 2), ("expired", 1), ("failed", 1), ("sent", 1)),
    "viber": (("read", 3), ("not_viber_user", 3), ("undelivered", 1), ("expired", 1), ("sent", 1)),
}
# country, calling code, national digits, price per part in 1e-7 units (phones of 11 to 15 digits).
_COUNTRIES = (
    ("UA", 380, 9, 210_000),
    ("PL", 48, 9, 325_000),
    ("DE", 49, 11, 780_000),
    ("KZ", 7, 10, 450_000),
    ("US", 1, 10, 90_000),
    ("AT", 43, 13, 655_000),
)
_SOURCES = ("rest", "rest", "rest", "web", "web", "smpp")
_VALIDITIES = (72, 72, 72, 72, 24, 6, 1, 48)
_TEXTS = (
    "Your code is {n}. Do not share it with anyone.",
    "Hello! Your order #{n} is on its way.",
    "\u041f\u0440\u0438\u0432\u0456\u0442! \u0417\u043d\u0438\u0436\u043a\u0430 {n}% "
    "\u043b\u0438\u0448\u0435 \u0441\u044c\u043e\u0433\u043e\u0434\u043d\u0456",
    "Reminder: your appointment no. {n} is tomorrow \u2705",
    "Dear customer, we are happy to inform you that the points balance of your loyalty card {n} "
    "has been updated. Visit any of our shops this week to use them before they expire. Thank you!",
)


_RENDERED_TEXTS: dict[str, tuple[tuple[str, int], ...]] = {}


def mix(value: int) -> int:
    """64 well-mixed bits of an integer (splitmix64's finaliser): cheap per-message randomness.

    :param value: any integer.
    """
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def parts_of(text: str) -> int:
    """SMS parts of a text: 160/153 characters in GSM-7 (ASCII here), 70/67 in UCS-2.

    :param text: the message text.
    """
    single, multi = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // multi)


def decimal_text(units: int) -> str:
    """Exact decimal text of an amount in 1e-7 units: ``0.0210000``.

    :param units: the amount times 10**7.
    """
    return f"{units // 10_000_000}.{units % 10_000_000:07d}"


def _final_counts(n: int, delivered: int, message_type: str, bits: int) -> list[tuple[str, int]]:
    rest = n - delivered
    outcomes = _OUTCOMES.get(message_type, _OUTCOMES["sms"])
    shift = bits % len(outcomes)
    outcomes = outcomes[shift:] + outcomes[:shift]
    weight = sum(w for _, w in outcomes)
    counts = [(status, rest * w // weight) for status, w in outcomes]
    left = rest - sum(count for _, count in counts)
    counts[0] = (counts[0][0], counts[0][1] + left)
    return [("delivered", delivered), *counts]


class Block:
    """How one campaign's messages derive from its index: a few numbers, not one object per message.

    :param campaign: the campaign (materialised).
    :param first_id: its first message id.
    :param seed: the simulator's seed.
    :param subsecond: whether ``created_at`` carries milliseconds.
    """

    __slots__ = (
        "campaign",
        "country",
        "cum",
        "currency",
        "deleted",
        "extras",
        "first_id",
        "key",
        "n",
        "perm_a",
        "perm_b",
        "phone_a",
        "phone_b",
        "phone_base",
        "phone_space",
        "price",
        "salt",
        "source",
        "spread",
        "statuses",
        "template",
        "unit",
        "validity",
    )

    def __init__(self, campaign: Campaign, first_id: int, seed: int, subsecond: bool) -> None:
        self.campaign = campaign
        self.first_id = first_id
        self.key = campaign.key
        n = self.n = max(0, campaign.sent)
        bits = self.salt = mix(seed * 1_000_003 + campaign.id)
        country, code, digits, price = _COUNTRIES[bits % len(_COUNTRIES)]
        self.country = country
        self.phone_space = 10**digits
        self.phone_base = code * self.phone_space
        # An affine map with a multiplier coprime to 10**digits: distinct slots, distinct phones.
        self.phone_a = ((bits >> 8) % (self.phone_space // 10)) * 10 + 7
        self.phone_b = (bits >> 20) % self.phone_space
        self.price = price
        self.currency = campaign.currency or "EUR"
        self.source = _SOURCES[(bits >> 32) % len(_SOURCES)]
        self.validity = _VALIDITIES[(bits >> 36) % len(_VALIDITIES)]
        self.template = _TEXTS[(bits >> 40) % len(_TEXTS)]
        seconds = min(n // 20, MAX_SPREAD_SECONDS)
        if subsecond:
            self.unit, self.spread = 1000, seconds * 1000 + (bits >> 44) % 1000
        else:
            self.unit, self.spread = US, seconds
        counts = _final_counts(n, min(max(0, campaign.delivered), n), campaign.message_type, bits >> 48)
        self.statuses = tuple(status for status, _ in counts)
        running, cum = 0, []
        for _, count in counts:
            running += count
            cum.append(running)
        self.cum = tuple(cum)
        a = 1 + (bits >> 52) % max(1, n)
        while n and gcd(a, n) != 1:
            a += 1
        self.perm_a, self.perm_b = a, (bits >> 28) % max(1, n)
        self.deleted: set[int] = set()
        # index (>= n) -> (message id, created key, final status) of messages drift added.
        self.extras: dict[int, tuple[int, int, str]] = {}

    # --- per index -------------------------------------------------------------------------

    def created_key(self, index: int) -> int:
        """``created_at`` of message ``index`` in epoch microseconds.

        :param index: the message's index in its campaign.
        """
        if index >= self.n:
            return self.extras[index][1]
        return self.key + (index * self.spread // self.n) * self.unit

    def message_id(self, index: int) -> int:
        """The id of message ``index``.

        :param index: the message's index.
        """
        return self.first_id + index if index < self.n else self.extras[index][0]

    def final_status(self, index: int) -> str:
        """The status message ``index`` settles in once its campaign sends.

        :param index: the message's index.
        """
        if index >= self.n:
            return self.extras[index][2]
        return self.statuses[bisect_right(self.cum, (self.perm_a * index + self.perm_b) % self.n)]

    def phone(self, index: int) -> int:
        """The phone of message ``index``; every 50th message repeats the previous one's phone.

        :param index: the message's index.
        """
        slot = index - (index + 1) // 50 if index < self.n else index
        return self.phone_base + (self.phone_a * slot + self.phone_b) % self.phone_space

    def text(self, index: int) -> str:
        """The text of message ``index``.

        :param index: the message's index.
        """
        return self.template.format(n=self.text_code(index) + 10)

    def text_code(self, index: int) -> int:
        """Which of the campaign's 90 texts message ``index`` carries.

        :param index: the message's index.
        """
        return mix(self.salt ^ index) % 90

    def rendered_texts(self) -> tuple[tuple[str, int], ...]:
        """The campaign's 90 texts as JSON strings, with their SMS parts (shared by every campaign)."""
        texts = _RENDERED_TEXTS.get(self.template)
        if texts is None:
            variants = [self.template.format(n=code + 10) for code in range(90)]
            texts = tuple((_ESCAPE(text), parts_of(text)) for text in variants)
            _RENDERED_TEXTS[self.template] = texts
        return texts

    def window(self, lo: int, hi: int) -> tuple[int, int]:
        """The generated indices ``[start, end)`` whose ``created_at`` lies in ``[lo, hi]``.

        :param lo: first epoch microsecond included.
        :param hi: last epoch microsecond included.
        """
        key = self.created_key
        return bisect_left(range(self.n), lo, key=key), bisect_right(range(self.n), hi, key=key)

    def live(self, start: int, end: int) -> list[int] | range:
        """The indices in ``[start, end)`` not deleted.

        :param start: first index.
        :param end: index after the last.
        """
        if not self.deleted:
            return range(start, end)
        deleted = self.deleted
        return [index for index in range(start, end) if index not in deleted]

    def all_live(self) -> list[int]:
        """Every live index, generated then added, in id order."""
        return [*self.live(0, self.n), *(index for index in self.extras if index not in self.deleted)]


class State:
    """What a campaign's state at one instant means for its messages.

    :param block: the campaign's block.
    :param now: simulated epoch seconds.
    """

    __slots__ = ("final", "pending", "send_duration", "send_start")

    def __init__(self, block: Block, now: float) -> None:
        campaign = block.campaign
        status, real_start, _ = campaign.state(now)
        self.final = campaign.fixed_stats or real_start is not None
        self.pending = "moderation" if status in ("creation", "moderation", "spam") else "scheduled"
        moments = [moment for moment, name in campaign.timeline if name == "sending"]
        self.send_start = moments[0] if moments else None
        end = campaign.timeline[-1][0]
        self.send_duration = max(1, int(end - moments[0])) if moments else 1


class Segment:
    """A run of messages in id order: generated indices of one block, or one added message.

    :param block: the block.
    :param indices: live indices, ascending.
    """

    __slots__ = ("block", "first_id", "indices")

    def __init__(self, block: Block, indices: list[int] | range) -> None:
        self.block = block
        self.indices = indices
        self.first_id = block.message_id(indices[0])


class MessageStore:
    """Every campaign's messages; thread-safe through the dataset's lock.

    :param dataset: the campaigns.
    :param seed: the simulator's seed.
    :param subsecond: whether ``created_at`` carries milliseconds.
    """

    def __init__(self, dataset: Dataset, seed: int, subsecond: bool) -> None:
        self.dataset = dataset
        self.seed = seed
        self.subsecond = subsecond
        self.lock = dataset.lock
        self._first_ids: dict[int, int] = {}
        self._next_id = FIRST_MESSAGE_ID
        self._blocks: dict[int, Block] = {}
        self._version = 0
        self._built: tuple[int, int] | None = None
        self._campaigns: list[Campaign] = []
        self._keys: list[int] = []
        self._id_starts: list[int] = []
        self._id_campaigns: list[int] = []
        self._extras_keys: list[int] = []
        self._extras: list[tuple[int, int]] = []  # (campaign id, index), parallel to _extras_keys
        self._extra_ids: dict[int, tuple[int, int]] = {}
        self._windows: dict[tuple[Any, ...], tuple[list[Segment], list[int]]] = {}
        self._sorted: dict[tuple[Any, ...], array[int]] = {}
        self._drift = random.Random(f"message-drift-{seed}")
        ref_bits = mix(seed ^ 0x5EED)
        self._ref_mask = ref_bits

    # --- indexes ---------------------------------------------------------------------------

    def _index(self) -> None:
        """Bring the campaign order and id ranges up to date with the dataset (under the lock)."""
        stamp = (self.dataset.version, self._version)
        if self._built == stamp:
            return
        campaigns = self.dataset.live()
        for campaign in sorted((c for c in campaigns if c.id not in self._first_ids), key=lambda c: c.id):
            self.dataset.materialize(campaign)
            self._first_ids[campaign.id] = self._next_id
            self._next_id += max(0, campaign.sent)
        self._campaigns = campaigns
        self._keys = [campaign.key for campaign in campaigns]
        by_first = sorted((self._first_ids[c.id], c.id) for c in campaigns)
        self._id_starts = [first for first, _ in by_first]
        self._id_campaigns = [cid for _, cid in by_first]
        alive = {c.id for c in campaigns}
        for cid in [cid for cid in self._blocks if cid not in alive]:
            del self._blocks[cid]
        extras = sorted(
            (block.extras[index][1], block.extras[index][0], block.campaign.id, index)
            for block in self._blocks.values()
            for index in block.extras
            if index not in block.deleted
        )
        self._extras_keys = [key for key, *_ in extras]
        self._extras = [(cid, index) for *_, cid, index in extras]
        self._windows.clear()
        self._sorted.clear()
        self._built = stamp

    def block(self, campaign_id: int) -> Block | None:
        """The messages of a campaign, or None for an unknown one.

        :param campaign_id: the campaign id.
        """
        with self.lock:
            campaign = self.dataset.get(campaign_id)
            if campaign is None:
                return None
            block = self._blocks.get(campaign_id)
            if block is None or block.campaign is not campaign:
                self._index()
                self.dataset.materialize(campaign)
                block = self._blocks[campaign_id] = Block(
                    campaign, self._first_ids[campaign_id], self.seed, self.subsecond
                )
            return block

    # --- reference ids ---------------------------------------------------------------------

    def reference_id(self, message_id: int) -> str:
        """The 32-character reference id of a message sent through the API (reversible).

        :param message_id: the message id.
        """
        return f"{message_id ^ self._ref_mask:016x}{mix(message_id ^ self._ref_mask):016x}"

    def id_of_reference(self, reference: str) -> int | None:
        """The message id a reference id names, or None when it names none.

        :param reference: a ``filter[reference_id]`` value.
        """
        if len(reference) != 32 or not all(char in "0123456789abcdef" for char in reference):
            return None
        message_id = int(reference[:16], 16) ^ self._ref_mask
        return message_id if self.reference_id(message_id) == reference else None

    # --- selection -------------------------------------------------------------------------

    def locate(self, message_id: int) -> tuple[Block, int] | None:
        """The block and index of a live message id, or None.

        :param message_id: the id.
        """
        with self.lock:
            self._index()
            extra = self._extra_ids.get(message_id)
            if extra is not None:
                block = self.block(extra[0])
                return None if block is None or extra[1] in block.deleted else (block, extra[1])
            pos = bisect_right(self._id_starts, message_id) - 1
            if pos < 0:
                return None
            block = self.block(self._id_campaigns[pos])
            if block is None:
                return None
            index = message_id - block.first_id
            if not 0 <= index < block.n or index in block.deleted:
                return None
            return block, index

    def segments(self, lo: int, hi: int, campaign_id: int | None) -> tuple[list[Segment], list[int]]:
        """The live messages with ``lo <= created_at <= hi`` as id-ordered segments and their prefix sums.

        :param lo: first epoch microsecond included.
        :param hi: last epoch microsecond included.
        :param campaign_id: only this campaign's messages, if given.
        :return: segments ascending by id, and ``ends[k]`` = messages in segments ``0..k``.
        """
        with self.lock:
            self._index()
            cache_key = (lo, hi, campaign_id)
            hit = self._windows.get(cache_key)
            if hit is not None:
                return hit
            if campaign_id is not None:
                campaign = self.dataset.get(campaign_id)
                candidates = [] if campaign is None else [campaign]
            else:
                start = bisect_left(self._keys, lo - MAX_SPREAD_SECONDS * US)
                candidates = self._campaigns[start : bisect_right(self._keys, hi)]
            segments: list[Segment] = []
            for campaign in candidates:
                if campaign.key > hi:
                    continue
                block = self.block(campaign.id)
                if block is None or not block.n:
                    continue
                first, last = block.window(lo, hi)
                indices = block.live(first, last)
                if indices:
                    segments.append(Segment(block, indices))
            for pos in range(bisect_left(self._extras_keys, lo), bisect_right(self._extras_keys, hi)):
                cid, index = self._extras[pos]
                block = self.block(cid)
                if block is not None and (campaign_id is None or cid == campaign_id):
                    segments.append(Segment(block, [index]))
            segments.sort(key=lambda segment: segment.first_id)
            ends, total = [], 0
            for segment in segments:
                total += len(segment.indices)
                ends.append(total)
            if len(self._windows) > 32:
                self._windows.clear()
            self._windows[cache_key] = (segments, ends)
            return segments, ends

    @staticmethod
    def at(segments: list[Segment], ends: list[int], position: int) -> tuple[Block, int]:
        """The message at an id-order position of a window.

        :param segments: from :meth:`segments`.
        :param ends: from :meth:`segments`.
        :param position: 0-based position.
        """
        pos = bisect_right(ends, position)
        before = ends[pos - 1] if pos else 0
        segment = segments[pos]
        return segment.block, segment.indices[position - before]

    def iter_range(
        self, segments: list[Segment], ends: list[int], start: int, stop: int
    ) -> Iterator[tuple[Block, int]]:
        """Messages at id-order positions ``start .. stop - 1``.

        :param segments: from :meth:`segments`.
        :param ends: from :meth:`segments`.
        :param start: first position.
        :param stop: position after the last.
        """
        if start >= stop:
            return
        pos = bisect_right(ends, start)
        offset = start - (ends[pos - 1] if pos else 0)
        left = stop - start
        while left > 0 and pos < len(segments):
            segment = segments[pos]
            chunk = segment.indices[offset : offset + left]
            for index in chunk:
                yield segment.block, index
            left -= len(chunk)
            pos, offset = pos + 1, 0

    def order(
        self, segments: list[Segment], ends: list[int], sort: str, now: float, cache_key: tuple[Any, ...]
    ) -> array[int]:
        """Id-order positions of a window sorted ascending by phone or delivered_at, ties by id.

        Messages without ``delivered_at`` sort first, as NULLs do in MySQL.

        :param segments: from :meth:`segments`.
        :param ends: from :meth:`segments`.
        :param sort: ``phone`` or ``delivered``.
        :param now: simulated epoch seconds (delivered_at depends on it).
        :param cache_key: the window's key; the order is cached while no campaign in it changes.
        """
        with self.lock:
            settled = all(now >= segment.block.campaign.settle_at for segment in segments)
            key = (*cache_key, sort)
            hit = self._sorted.get(key) if settled else None
            if hit is not None:
                return hit
            total = ends[-1] if ends else 0
            keys: list[int] = []
            position = 0
            for segment in segments:
                block = segment.block
                if sort == "phone":
                    for index in segment.indices:
                        keys.append(block.phone(index) << 32 | position)
                        position += 1
                else:
                    state = State(block, now)
                    for index in segment.indices:
                        delivered = self.delivered_at(block, index, state)
                        keys.append((0 if delivered is None else delivered + 1) << 32 | position)
                        position += 1
            keys.sort()
            ordered = array("Q", (value & 0xFFFFFFFF for value in keys))
            assert len(ordered) == total
            if settled:
                if len(self._sorted) > 4:
                    self._sorted.clear()
                self._sorted[key] = ordered
            return ordered

    # --- attributes at an instant ----------------------------------------------------------

    @staticmethod
    def status(block: Block, index: int, state: State) -> str:
        """Message status at the state's instant.

        :param block: the block.
        :param index: the index.
        :param state: the campaign's state.
        """
        return block.final_status(index) if state.final else state.pending

    @staticmethod
    def sent_at(block: Block, index: int, state: State) -> int | None:
        """Epoch seconds the message left, or None.

        :param block: the block.
        :param index: the index.
        :param state: the campaign's state.
        """
        if not state.final:
            return None
        created = block.created_key(index) // US
        if state.send_start is None:
            return created
        start = math.ceil(state.send_start)
        offset = index * state.send_duration // max(1, block.n) if index < block.n else state.send_duration
        return max(created, start + offset)

    def delivered_at(self, block: Block, index: int, state: State) -> int | None:
        """Epoch seconds of the delivery report, or None.

        :param block: the block.
        :param index: the index.
        :param state: the campaign's state.
        """
        status = self.status(block, index, state)
        return self._reported(block, index, status, self.sent_at(block, index, state))

    @staticmethod
    def _reported(block: Block, index: int, status: str, sent: int | None) -> int | None:
        if status not in REPORTED_STATUSES or sent is None:
            return None
        if status == "expired":
            return sent + block.validity * 3600
        return sent + 1 + mix(block.salt + index) % 60

    @staticmethod
    def amount(block: Block, index: int, status: str, text: str) -> int:
        """Price of a message in 1e-7 units: RCS bills only delivered (or read) messages.

        :param block: the block.
        :param index: the index.
        :param status: its status now.
        :param text: its text.
        """
        if status in PENDING_STATUSES:
            return 0
        if block.campaign.message_type == "rcs" and status not in ("delivered", "read"):
            return 0
        return block.price * parts_of(text)

    def render(self, block: Block, index: int, state: State, memo: dict[tuple[int, int, bool], str]) -> bytes:
        """One message's JSON.

        :param block: the block.
        :param index: the index.
        :param state: the campaign's state at the answer's instant.
        :param memo: rendered timestamps of this answer (neighbouring messages share seconds).
        """
        campaign = block.campaign
        message_id = block.message_id(index)
        renderer = self.dataset.renderer
        layout = renderer.timestamp_format
        form = layout == "iso" or (layout == "mixed" and message_id % 2 == 1)
        created_seconds, created_frac = divmod(block.created_key(index), US)
        status = self.status(block, index, state)
        sent = self.sent_at(block, index, state)
        delivered = self._reported(block, index, status, sent)
        stamps = []
        for seconds, frac in ((created_seconds, created_frac), (sent, 0), (delivered, 0)):
            if seconds is None:
                stamps.append("null")
                continue
            key = (seconds, frac, form)
            text = memo.get(key)
            if text is None:
                text = memo[key] = f'"{renderer.text(seconds, form, frac)}"'
            stamps.append(text)
        escaped, parts = block.rendered_texts()[block.text_code(index)]
        reference = f'"{self.reference_id(message_id)}"' if block.source == "rest" else "null"
        if status in PENDING_STATUSES or (
            campaign.message_type == "rcs" and status not in ("delivered", "read")
        ):
            amount = "0.0000000"
        else:
            amount = decimal_text(block.price * parts)
        return (
            f'{{"id":{message_id},"campaign_id":{campaign.id},"reference_id":{reference},'
            f'"type":"{campaign.message_type}","source":"{block.source}","text":{escaped},'
            f'"phone":{block.phone(index)},"validity":{block.validity},"status":"{status}",'
            f'"amount":{{"value":"{amount}","currency":{_ESCAPE(block.currency)}}},'
            f'"sender":{_ESCAPE(campaign.sender)},"created_at":{stamps[0]},'
            f'"sent_at":{stamps[1]},"delivered_at":{stamps[2]},'
            f'"country":"{block.country}","parts":{parts}}}'
        ).encode()

    # --- per campaign ----------------------------------------------------------------------

    def summary(self, campaign_id: int, now: float) -> dict[str, Any] | None:
        """Counts by status, distinct phones and total price of a campaign's live messages.

        :param campaign_id: the campaign id.
        :param now: simulated epoch seconds.
        :return: ``{"statistics", "total_messages", "total_phones", "total_price" (1e-7 units),
            "currency"}``, or None for an unknown campaign.
        """
        with self.lock:
            block = self.block(campaign_id)
            if block is None:
                return None
            state = State(block, now)
            counts: Counter[str] = Counter()
            phones = set()
            price = 0
            indices = block.all_live()
            for index in indices:
                status = self.status(block, index, state)
                counts[status] += 1
                phones.add(block.phone(index))
                price += self.amount(block, index, status, block.text(index))
            return {
                "statistics": {key: counts.get(key, 0) for key in STATISTICS_KEYS},
                "total_messages": len(indices),
                "total_phones": len(phones),
                "total_price": price,
                "currency": block.currency,
            }

    # --- drift -----------------------------------------------------------------------------

    def _changed(self, block: Block, status: str, delta: int) -> None:
        campaign = block.campaign
        campaign.sent += delta
        if status == "delivered":
            campaign.delivered += delta
        campaign.cached = None
        self._version += 1

    def delete_lowest(self, lo: int, hi: int, campaign_id: int | None, count: int) -> list[int]:
        """Delete the ``count`` lowest-id messages with ``lo <= created_at <= hi``.

        :param lo: first epoch microsecond.
        :param hi: last epoch microsecond.
        :param campaign_id: only this campaign's, if given.
        :param count: how many.
        :return: the deleted ids.
        """
        with self.lock:
            segments, ends = self.segments(lo, hi, campaign_id)
            victims = list(self.iter_range(segments, ends, 0, min(count, ends[-1] if ends else 0)))
            deleted = []
            for block, index in victims:
                deleted.append(block.message_id(index))
                block.deleted.add(index)
                self._changed(block, block.final_status(index), -1)
            return deleted

    def insert_random(self, lo: int, hi: int, campaign_id: int | None, count: int) -> list[int]:
        """Add ``count`` delivered messages at random instants in ``[lo, hi]`` with new ids.

        Each joins the latest campaign created at or before its instant (the given one, if any).

        :param lo: first epoch microsecond allowed.
        :param hi: last epoch microsecond allowed.
        :param campaign_id: the campaign to add to, if given.
        :param count: how many.
        :return: the new ids.
        """
        step = 1000 if self.subsecond else US
        with self.lock:
            self._index()
            added: list[int] = []
            for _ in range(count):
                if campaign_id is not None:
                    target = self.dataset.get(campaign_id)
                    first = max(lo, target.key) if target is not None else hi + 1
                else:
                    target, first = None, lo
                first_unit, last_unit = -(-first // step), hi // step
                if first_unit > last_unit:
                    break
                key = self._drift.randint(first_unit, last_unit) * step
                if target is None:
                    pos = bisect_right(self._keys, key) - 1
                    if pos < 0:
                        continue
                    target = self._campaigns[pos]
                block = self.block(target.id)
                assert block is not None
                index = block.n + len(block.extras)
                message_id = self._next_id
                self._next_id += 1
                block.extras[index] = (message_id, key, "delivered")
                self._extra_ids[message_id] = (target.id, index)
                self._changed(block, "delivered", 1)
                self._index()
                added.append(message_id)
            return added

    # --- ground truth ----------------------------------------------------------------------

    def ground_truth(self, lo: int, hi_exclusive: int, campaign_id: int | None = None) -> list[int]:
        """Ids of the live messages with ``lo <= created_at < hi_exclusive``, ascending.

        Computed message by message, apart from the paging code, so it can check it.

        :param lo: first epoch microsecond included.
        :param hi_exclusive: first epoch microsecond excluded.
        :param campaign_id: only this campaign's, if given.
        """
        with self.lock:
            self._index()
            ids = []
            for campaign in self._campaigns:
                if campaign_id is not None and campaign.id != campaign_id:
                    continue
                block = self.block(campaign.id)
                assert block is not None
                for index in block.all_live():
                    if lo <= block.created_key(index) < hi_exclusive:
                        ids.append(block.message_id(index))
            return sorted(ids)

    def total(self) -> int:
        """Live messages of every campaign."""
        with self.lock:
            self._index()
            deleted = sum(len(block.deleted) for block in self._blocks.values())
            extras = sum(len(block.extras) for block in self._blocks.values())
            sizes = sum(max(0, self._size(c)) for c in self._campaigns)
            return sizes + extras - deleted

    def _size(self, campaign: Campaign) -> int:
        block = self._blocks.get(campaign.id)
        return block.n if block is not None else campaign.sent
