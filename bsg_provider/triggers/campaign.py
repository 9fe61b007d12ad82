"""The trigger behind the deferrable :class:`~bsg_provider.sensors.campaign.BsgCampaignStatusSensor`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bsg_provider.client.api import check_campaign_id
from bsg_provider.client.campaign_wait import CampaignWait, Outcome, Pending
from bsg_provider.client.statuses import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_TARGET_STATUSES,
    CampaignIds,
    StatusGate,
)
from bsg_provider.errors import BsgApiError, BsgConfigError, BsgError
from bsg_provider.hooks import metrics
from bsg_provider.hooks.bsg_async import BsgAsyncHook

#: Fraction of the poll interval by which a trigger may poll early.
POLL_JITTER = 0.1
#: Seconds past the deadline the last look waits, so the clock has surely passed it then.
DEADLINE_SLACK = 0.01


class BsgCampaignStatusTrigger(BaseTrigger):
    """
    Poll campaigns until all are in a target status, one is in a failure status, or the deadline passes.

    Yields exactly one event, a dict with ``status``:

    - ``success``: ``campaigns``, the records in ``campaign_ids`` order;
    - ``failure``: ``campaign_id``, ``campaign_status`` and ``message``;
    - ``not_found``: ``campaign_id`` and ``message`` (the API answered 404);
    - ``refused``: ``message`` (the API refused the read for good: a 401 after a fresh login, a 403...);
    - ``timeout``: ``message`` (``deadline`` passed; an API that kept failing transiently until
      then only delayed the answer, and the message says so);
    - ``error``: ``message`` (the connection is missing or wrong, or an unexpected error).

    Transient API failures (429, 5xx, timeouts, dropped connections, malformed answers) do not
    end the wait: the trigger polls on until ``deadline``. The poll is the sensor's own
    (:class:`~bsg_provider.client.campaign_wait.CampaignWait`), read through the async hook.

    :param campaign_ids: the campaigns to wait for.
    :param bsg_conn_id: the ``bsg`` connection; the triggerer reads it, so no secret is serialized.
    :param target_statuses: statuses that count as success.
    :param failure_statuses: statuses that fail at once.
    :param poll_interval: seconds between polls.
    :param deadline: ISO 8601 instant after which the trigger gives up with a ``timeout`` event, or
        None; absolute, so a triggerer restart does not extend the wait.
    """

    def __init__(
        self,
        campaign_ids: Sequence[int],
        *,
        bsg_conn_id: str = BsgAsyncHook.default_conn_name,
        target_statuses: Sequence[str] = DEFAULT_TARGET_STATUSES,
        failure_statuses: Sequence[str] = DEFAULT_FAILURE_STATUSES,
        poll_interval: float = 60.0,
        deadline: str | None = None,
    ) -> None:
        super().__init__()
        # Checked again here: a trigger can be built by hand, or from a payload edited in the database.
        if (
            isinstance(campaign_ids, (str, bytes))
            or not isinstance(campaign_ids, Sequence)
            or not campaign_ids
        ):
            raise BsgConfigError(
                f"campaign_ids must be a non-empty list of campaign ids, got {campaign_ids!r}."
            )
        self.campaign_ids = [check_campaign_id(campaign_id) for campaign_id in campaign_ids]
        self.bsg_conn_id = bsg_conn_id
        self.gate = StatusGate(tuple(target_statuses), tuple(failure_statuses))
        if (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, (int, float))
            or poll_interval <= 0
        ):
            raise BsgConfigError(f"poll_interval must be a number of seconds above 0, got {poll_interval!r}.")
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        try:
            self._deadline_at = datetime.fromisoformat(deadline) if deadline else None
        except (TypeError, ValueError):
            raise BsgConfigError(
                f"deadline must be an ISO 8601 instant with a UTC offset, got {deadline!r}."
            ) from None
        if self._deadline_at is not None and self._deadline_at.tzinfo is None:
            raise BsgConfigError(f"deadline must carry a UTC offset, got {deadline!r}.")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-safe kwargs: ids, connection id and settings; never a key or token."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "campaign_ids": list(self.campaign_ids),
                "bsg_conn_id": self.bsg_conn_id,
                "target_statuses": list(self.gate.target_statuses),
                "failure_statuses": list(self.gate.failure_statuses),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the outcome is known, release the HTTP client, then yield the one event."""
        hook = BsgAsyncHook(self.bsg_conn_id)
        try:
            payload = await self._wait(hook)
        finally:
            # Also on cancellation: the shared client must not outlive its last user.
            await hook.close()
        metrics.sensor_finished(payload["status"])
        yield TriggerEvent(payload)

    async def _wait(self, hook: BsgAsyncHook) -> dict[str, Any]:
        wait = CampaignWait(
            CampaignIds(tuple(self.campaign_ids), single=False),
            self.gate,
            self.bsg_conn_id,
            self._deadline_at,
            self.log,
        )
        while True:
            try:
                outcome = await _poll(hook, wait)
            except BsgError as exc:
                self.log.error("Stopped waiting for BSG campaigns: %s", exc)
                return {"status": "error", "message": str(exc)}
            except Exception as exc:
                self.log.exception("Stopped waiting for BSG campaigns after an unexpected error.")
                return {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
            metrics.sensor_polled("deferrable")
            if not isinstance(outcome, Pending):
                return outcome.event()
            # A little jitter keeps hundreds of triggers deferred together from polling in lockstep.
            pause = self.poll_interval * random.uniform(1.0 - POLL_JITTER, 1.0)
            if self._deadline_at is not None:
                # Wake at the deadline at the latest, for one last look before giving up.
                remaining = (self._deadline_at - datetime.now(timezone.utc)).total_seconds()
                pause = min(pause, max(remaining, 0.0) + DEADLINE_SLACK)
            await asyncio.sleep(pause)


async def _poll(hook: BsgAsyncHook, wait: CampaignWait) -> Outcome:
    """One poll: read the campaigns not settled yet, as the sensor's poke does, and decide."""
    campaigns: dict[int, dict[str, Any]] = {}
    for campaign_id in wait.to_read():
        try:
            campaigns[campaign_id] = await hook.get_campaign(campaign_id, retries=wait.retries)
        except BsgApiError as exc:
            return wait.failed(campaign_id, exc)
    return wait.answered(campaigns)
