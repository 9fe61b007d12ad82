"""
The campaign status gate: which campaigns to wait for, which statuses end the wait, and what a poll means.

Pure and free of Airflow, so the sensor's poke and the deferrable trigger decide identically
and word their messages the same way.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bsg_provider.client.api import CAMPAIGN_STATUSES, check_campaign_id
from bsg_provider.errors import BsgConfigError

DEFAULT_TARGET_STATUSES = ("done", "stopped")
DEFAULT_FAILURE_STATUSES = ("spam",)
#: Statuses a campaign never leaves (per the vendor's status list): no need to read it again.
TERMINAL_STATUSES = frozenset({"done", "stopped", "spam"})


@dataclass(frozen=True)
class CampaignIds:
    """
    The campaigns a gate waits for, as the user named them.

    :param ids: the ids in the given order (duplicates kept, so results line up with the input).
    :param single: whether the user gave one id rather than a list, which decides the result's shape.
    """

    ids: tuple[int, ...]
    single: bool

    @property
    def unique(self) -> tuple[int, ...]:
        """Each id once, in first-seen order: what to request."""
        return tuple(dict.fromkeys(self.ids))

    def shape(self, campaigns_by_id: Mapping[int, dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
        """The result: one campaign for a single id, else a list in the given order."""
        records = [campaigns_by_id[campaign_id] for campaign_id in self.ids]
        return records[0] if self.single else records


def parse_campaign_ids(value: Any) -> CampaignIds:
    """
    Read a rendered ``campaign_id``: an id, a list or tuple of ids, or such a list rendered as text.

    Jinja renders an XCom list as text (``"[1, 2]"``) unless the DAG sets
    ``render_template_as_native_obj=True``, so a list literal in a string is accepted too.

    :param value: an int, a digit string, a list/tuple of those, or a list literal string.
    :raises BsgConfigError: saying what was wrong and which forms are accepted.
    """
    if isinstance(value, str) and value.strip()[:1] in ("[", "("):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise BsgConfigError(_ids_hint(value, "it looks like a list but does not parse as one")) from None
        if not isinstance(value, (list, tuple)):
            raise BsgConfigError(_ids_hint(value, "it is not a list of ids"))
    if isinstance(value, (list, tuple)):
        if not value:
            raise BsgConfigError("campaign_id is an empty list; give at least one campaign id.")
        ids = []
        for position, item in enumerate(value):
            try:
                ids.append(check_campaign_id(item))
            except BsgConfigError:
                raise BsgConfigError(
                    _ids_hint(value, f"item {position} ({item!r}) is not a positive integer id")
                ) from None
        return CampaignIds(ids=tuple(ids), single=False)
    try:
        return CampaignIds(ids=(check_campaign_id(value),), single=True)
    except BsgConfigError:
        raise BsgConfigError(_ids_hint(value, "it is not a positive integer id")) from None


def _ids_hint(value: Any, problem: str) -> str:
    shown = repr(value) if len(repr(value)) <= 200 else repr(value)[:200] + "..."
    return (
        f"campaign_id must be a campaign id or a list of ids after rendering, got {shown}: {problem}. "
        "Accepted: 123, '123', [123, 456], or a list rendered as text such as '[123, 456]' "
        "(set render_template_as_native_obj=True on the DAG to pass XCom lists as lists)."
    )


def _status_tuple(statuses: Any, name: str) -> tuple[str, ...]:
    if isinstance(statuses, str):
        statuses = (statuses,)
    if not isinstance(statuses, Iterable):
        raise BsgConfigError(f"{name} must be a list of campaign statuses, got {statuses!r}.")
    result: list[str] = []
    for status in statuses:
        if status not in CAMPAIGN_STATUSES:
            raise BsgConfigError(
                f"{name} contains {status!r}, which is not a BSG campaign status; "
                f"use some of {', '.join(CAMPAIGN_STATUSES)}."
            )
        if status not in result:
            result.append(status)
    return tuple(result)


@dataclass(frozen=True)
class Waiting:
    """Not every campaign is in a target status yet, and none is in a failure status."""

    pending: tuple[tuple[int, Any], ...]

    def describe(self) -> str:
        """Which campaigns still hold the gate, for logs."""
        return ", ".join(f"{campaign_id} ({status})" for campaign_id, status in self.pending)


@dataclass(frozen=True)
class Succeeded:
    """Every campaign is in a target status."""


@dataclass(frozen=True)
class Failed:
    """A campaign is in a failure status.

    :param campaign_id: the first such campaign, in the order the ids were given.
    :param status: its status.
    """

    campaign_id: int
    status: str


Decision = Waiting | Succeeded | Failed


@dataclass(frozen=True)
class StatusGate:
    """
    When a wait for campaigns ends: all in ``target_statuses`` (success) or any in ``failure_statuses``.

    :param target_statuses: statuses that count as success; at least one.
    :param failure_statuses: statuses that fail the wait at once; may be empty.
    :raises BsgConfigError: for an empty target set, an unknown status, or a status in both sets.
    """

    target_statuses: tuple[str, ...] = DEFAULT_TARGET_STATUSES
    failure_statuses: tuple[str, ...] = DEFAULT_FAILURE_STATUSES

    def __post_init__(self) -> None:
        target = _status_tuple(self.target_statuses, "target_statuses")
        failure = _status_tuple(self.failure_statuses, "failure_statuses")
        if not target:
            raise BsgConfigError(
                "target_statuses is empty, so the wait could never succeed; "
                f"name at least one status, such as {DEFAULT_TARGET_STATUSES}."
            )
        both = [status for status in target if status in failure]
        if both:
            raise BsgConfigError(
                f"{', '.join(map(repr, both))} is in both target_statuses and failure_statuses; "
                "a status can either end the wait successfully or fail it, not both."
            )
        object.__setattr__(self, "target_statuses", target)
        object.__setattr__(self, "failure_statuses", failure)

    def evaluate(self, statuses_by_id: Mapping[int, Any]) -> Decision:
        """
        Decide on one poll's statuses.

        A failure status wins over waiting, so a list fails as soon as any campaign fails.

        :param statuses_by_id: each campaign's current status, in the order the ids were given.
        """
        for campaign_id, status in statuses_by_id.items():
            if status in self.failure_statuses:
                return Failed(campaign_id, status)
        pending = tuple(
            (campaign_id, status)
            for campaign_id, status in statuses_by_id.items()
            if status not in self.target_statuses
        )
        return Waiting(pending) if pending else Succeeded()

    def settled(self, status: Any) -> bool:
        """Whether a campaign in ``status`` will count as success for good, so it need not be read again."""
        return status in self.target_statuses and status in TERMINAL_STATUSES

    def failure_message(self, campaign_id: int, status: str) -> str:
        """Why the wait failed, for the task log and the exception."""
        return (
            f"BSG campaign {campaign_id} has status {status!r}, one of the failure statuses "
            f"({', '.join(self.failure_statuses)}); it will not reach {' or '.join(self.target_statuses)}."
        )


def not_found_message(campaign_id: int, conn_id: str) -> str:
    """Why the wait failed when the API does not know a campaign (404)."""
    return (
        f"BSG campaign {campaign_id} was not found (HTTP 404 from GET /api/campaigns/{campaign_id} "
        f"through connection {conn_id!r}). Check the id, and that the connection's API key belongs "
        "to the account that owns the campaign."
    )


@dataclass(frozen=True)
class Observation:
    """What one poll showed that is worth telling.

    :param changes: ``(campaign_id, previous status or None, status)`` for each status not seen before.
    :param unknown: ``(campaign_id, status)`` for each status the provider does not know, first time only.
    """

    changes: tuple[tuple[int, Any, Any], ...]
    unknown: tuple[tuple[int, Any], ...]


@dataclass
class StatusWatch:
    """Remembers the statuses seen, so each change is logged once and each unknown status warned once."""

    _last: dict[int, Any] = field(default_factory=dict)
    _warned: set[tuple[int, str]] = field(default_factory=set)

    def observe(self, statuses_by_id: Mapping[int, Any]) -> Observation:
        """
        Record one poll's statuses.

        :param statuses_by_id: each campaign's current status.
        """
        changes = []
        unknown = []
        for campaign_id, status in statuses_by_id.items():
            previous = self._last.get(campaign_id)
            if campaign_id not in self._last or previous != status:
                changes.append((campaign_id, previous, status))
                self._last[campaign_id] = status
            key = (campaign_id, repr(status))
            if status not in CAMPAIGN_STATUSES and key not in self._warned:
                self._warned.add(key)
                unknown.append((campaign_id, status))
        return Observation(tuple(changes), tuple(unknown))


def unknown_status_message(campaign_id: int, status: Any, gate: StatusGate) -> str:
    """The warning for a status the provider does not know (the wait goes on)."""
    return (
        f"BSG campaign {campaign_id} has status {status!r}, which this provider does not know "
        f"(known: {', '.join(CAMPAIGN_STATUSES)}); still waiting for {' or '.join(gate.target_statuses)}. "
        "If the API added a status, upgrade the provider or report it."
    )


def log_observation(log: logging.Logger, observation: Observation, gate: StatusGate) -> None:
    """Log each status change at INFO and each unknown status at WARNING, as sensor and trigger both do."""
    for campaign_id, previous, status in observation.changes:
        if previous is None:
            log.info("BSG campaign %s has status %s.", campaign_id, status)
        else:
            log.info("BSG campaign %s changed from %s to %s.", campaign_id, previous, status)
    for campaign_id, status in observation.unknown:
        log.warning("%s", unknown_status_message(campaign_id, status, gate))


def statuses_of(campaigns: Sequence[dict[str, Any]]) -> dict[int, Any]:
    """Map campaign records to ``{id: status}``, keeping their order."""
    return {campaign["id"]: campaign.get("status") for campaign in campaigns}
