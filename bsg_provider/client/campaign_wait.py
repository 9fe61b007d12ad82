"""
One wait for campaigns, poll by poll: the decisions the sensor's poke and the deferrable trigger share.

A poll reads :meth:`CampaignWait.to_read` (``get_campaign`` of the sync hook in the sensor, of the
async hook in the trigger, with :attr:`CampaignWait.retries`) and hands what it got to
:meth:`CampaignWait.answered`, or the first error to :meth:`CampaignWait.failed`; both give the
:class:`Outcome`. So the sensor and the trigger read the same campaigns, treat failures the same
way and end with the same outcome. Pure and free of Airflow and of I/O.

A transient failure (429, 5xx, a timeout, a dropped connection, a malformed answer) that outlasts
the hook's retries means "not known yet": the wait goes on until its deadline, and the log says
so once per outage and once when the API answers again. A permanent one (404, a refusal that a
fresh login did not cure, a failure status) ends the wait at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from bsg_provider.client.statuses import (
    CampaignIds,
    Failed,
    StatusGate,
    StatusWatch,
    Succeeded,
    log_observation,
    not_found_message,
    statuses_of,
)
from bsg_provider.errors import BsgApiError, BsgNotFoundError, BsgRetryableError


@dataclass(frozen=True)
class Outcome:
    """What a poll concluded; every outcome but :class:`Pending` ends the wait."""

    status: ClassVar[str]

    def event(self) -> dict[str, Any]:
        """The trigger event's payload (JSON-safe), which the sensor also turns into its result."""
        return {"status": self.status}


@dataclass(frozen=True)
class Pending(Outcome):
    """Not every campaign is in a target status yet (or the API did not say): poll again."""

    status: ClassVar[str] = "pending"


@dataclass(frozen=True)
class Success(Outcome):
    """Every campaign is in a target status; ``campaigns`` are the records in the order given."""

    status: ClassVar[str] = "success"
    campaigns: list[dict[str, Any]]

    def event(self) -> dict[str, Any]:
        return {"status": self.status, "campaigns": self.campaigns}


@dataclass(frozen=True)
class Failure(Outcome):
    """A campaign is in a failure status."""

    status: ClassVar[str] = "failure"
    campaign_id: int
    campaign_status: str
    message: str

    def event(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "campaign_id": self.campaign_id,
            "campaign_status": self.campaign_status,
            "message": self.message,
        }


@dataclass(frozen=True)
class NotFound(Outcome):
    """The API does not know a campaign (404)."""

    status: ClassVar[str] = "not_found"
    campaign_id: int
    message: str

    def event(self) -> dict[str, Any]:
        return {"status": self.status, "campaign_id": self.campaign_id, "message": self.message}


@dataclass(frozen=True)
class Refused(Outcome):
    """The API refused the read for good (a 401 after a fresh login, a 403, a 422...)."""

    status: ClassVar[str] = "refused"
    message: str

    def event(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message}


@dataclass(frozen=True)
class TimedOut(Outcome):
    """The deadline passed before the campaigns got there."""

    status: ClassVar[str] = "timeout"
    message: str

    def event(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CampaignWait:
    """
    The state of one wait across its polls: statuses seen, campaigns settled, the current outage.

    :param ids: the campaigns to wait for.
    :param gate: when the wait ends.
    :param conn_id: the connection's id, for messages.
    :param deadline: when to give up (aware), or None to wait for ever.
    :param log: where status changes and outages are told.
    :param now: the current time (aware).
    """

    ids: CampaignIds
    gate: StatusGate
    conn_id: str
    deadline: datetime | None
    log: logging.Logger
    now: Callable[[], datetime] = _utcnow
    _watch: StatusWatch = field(default_factory=StatusWatch)
    _settled: dict[int, dict[str, Any]] = field(default_factory=dict)
    _last_status: dict[int, Any] = field(default_factory=dict)
    _outage_since: datetime | None = None
    _outage_polls: int = 0
    _outage_error: BsgRetryableError | None = None

    @property
    def in_outage(self) -> bool:
        """Whether the last poll found the API failing."""
        return self._outage_since is not None

    @property
    def retries(self) -> bool:
        """
        Whether this poll's reads use the hook's retries.

        While the API is failing, a poll reads with one attempt only: the next poll is the next
        retry, and the log is not filled with retries of a known outage.
        """
        return not self.in_outage

    def to_read(self) -> list[int]:
        """The campaigns this poll reads, in order: those not settled yet."""
        return [campaign_id for campaign_id in self.ids.unique if campaign_id not in self._settled]

    def failed(self, campaign_id: int, exc: BsgApiError) -> Outcome:
        """
        The outcome of a poll whose read of ``campaign_id`` raised ``exc`` (the poll stops there).

        A transient failure that outlasted the retries means "not known yet"; a 404 or any
        other refusal ends the wait.

        :param campaign_id: the campaign being read.
        :param exc: what the read raised.
        """
        if isinstance(exc, BsgNotFoundError):
            message = not_found_message(campaign_id, self.conn_id)
            self.log.error("%s", message)
            return NotFound(campaign_id, message)
        if isinstance(exc, BsgRetryableError):
            return self._unanswered(exc)
        message = f"Stopped waiting for BSG campaigns: {exc}"
        self.log.error("%s", message)
        return Refused(message)

    def answered(self, campaigns: dict[int, dict[str, Any]]) -> Outcome:
        """
        The outcome of a poll that read every campaign of :meth:`to_read`.

        :param campaigns: the records read, by id.
        """
        self._answered()
        return self._decide({**self._settled, **campaigns})

    def _decide(self, campaigns: dict[int, dict[str, Any]]) -> Outcome:
        campaigns = {campaign_id: campaigns[campaign_id] for campaign_id in self.ids.unique}
        statuses = statuses_of(list(campaigns.values()))
        self._last_status.update(statuses)
        log_observation(self.log, self._watch.observe(statuses), self.gate)
        decision = self.gate.evaluate(statuses)
        if isinstance(decision, Succeeded):
            self.log.info("All %d BSG campaign(s) reached a target status.", len(self.ids.unique))
            return Success([campaigns[campaign_id] for campaign_id in self.ids.ids])
        if isinstance(decision, Failed):
            message = self.gate.failure_message(decision.campaign_id, decision.status)
            self.log.error("%s", message)
            return Failure(decision.campaign_id, decision.status, message)
        self._settled.update(
            (campaign_id, campaigns[campaign_id])
            for campaign_id in self.ids.unique
            if self.gate.settled(statuses[campaign_id])
        )
        return self._pending(f"BSG campaign(s) {decision.describe()}")

    def _unanswered(self, exc: BsgRetryableError) -> Outcome:
        self._outage_polls += 1
        self._outage_error = exc
        if self._outage_since is None:
            self._outage_since = self.now()
            until = "without a deadline" if self.deadline is None else f"until {self.deadline.isoformat()}"
            self.log.warning(
                "BSG One API did not answer (%s); the campaigns' status is not known yet, so the wait "
                "goes on %s. Polls keep going quietly until it answers again. Last error: %s",
                exc.reason,
                until,
                exc,
            )
        pending = ", ".join(
            f"{campaign_id} ({self._last_status.get(campaign_id, 'status unknown')})"
            for campaign_id in self.ids.unique
            if campaign_id not in self._settled
        )
        return self._pending(f"BSG campaign(s) {pending}")

    def _answered(self) -> None:
        if self._outage_since is None:
            return
        self.log.info(
            "BSG One API answers again, after %d unanswered poll(s) since %s.",
            self._outage_polls,
            self._outage_since.isoformat(),
        )
        self._outage_since, self._outage_polls, self._outage_error = None, 0, None

    def _pending(self, what: str) -> Outcome:
        if self.deadline is None or self.now() < self.deadline:
            return Pending()
        message = (
            f"Timed out at {self.deadline.isoformat()} waiting for {what} "
            f"to reach {' or '.join(self.gate.target_statuses)}"
        )
        if self._outage_since is not None:
            message += (
                f"; the API has not answered since {self._outage_since.isoformat()} "
                f"({self._outage_polls} poll(s)), last error: {self._outage_error}"
            )
        message += "."
        self.log.error("%s", message)
        return TimedOut(message)
