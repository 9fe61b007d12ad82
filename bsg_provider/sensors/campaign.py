"""Wait for BSG campaigns to finish: :class:`BsgCampaignStatusSensor`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from bsg_provider import metrics
from bsg_provider.api import check_campaign_id
from bsg_provider.errors import BsgConfigError, BsgNotFoundError
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.statuses import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_TARGET_STATUSES,
    CampaignIds,
    Failed,
    StatusGate,
    StatusWatch,
    Succeeded,
    log_observation,
    not_found_message,
    parse_campaign_ids,
    statuses_of,
)
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class BsgCampaignStatusSensor(BaseSensorOperator):
    """
    Wait until BSG campaigns are done (or stopped); fail as soon as one is rejected as spam.

    Succeeds when every campaign is in one of ``target_statuses`` and returns the campaign
    record (one id) or the records in the given order (a list) as its XCom value. Fails without
    retries (``AirflowFailException``) when a campaign is in one of ``failure_statuses`` or does
    not exist. Runs in ``poke`` or ``reschedule`` mode, or deferred to the triggerer with
    ``deferrable=True``; ``timeout`` bounds the wait in every mode.

    :param campaign_id: a campaign id or a list of ids (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='send') }}"``; a list rendered as text (``"[1, 2]"``) is accepted.
    :param target_statuses: statuses that end the wait successfully; at least one.
    :param failure_statuses: statuses that fail the task at once; may be empty.
    :param bsg_conn_id: the ``bsg`` connection to use.
    :param deferrable: wait in the triggerer instead of a worker slot; defaults to
        ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("campaign_id",)
    ui_color = "#d4ecf7"

    def __init__(
        self,
        *,
        campaign_id: Any,
        target_statuses: Sequence[str] = DEFAULT_TARGET_STATUSES,
        failure_statuses: Sequence[str] = DEFAULT_FAILURE_STATUSES,
        bsg_conn_id: str = BsgHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked here so a typo fails at DAG parse time, not hours later in a run.
        self.gate = StatusGate(target_statuses, failure_statuses)
        self.target_statuses = self.gate.target_statuses
        self.failure_statuses = self.gate.failure_statuses
        if isinstance(campaign_id, int) and not isinstance(campaign_id, bool):
            check_campaign_id(campaign_id)
        self.campaign_id = campaign_id
        self.bsg_conn_id = bsg_conn_id
        self.deferrable = deferrable
        self._watch = StatusWatch()
        self._settled: dict[int, dict[str, Any]] = {}

    @cached_property
    def hook(self) -> BsgHook:
        """The sync hook; one per task attempt, so a poke-mode wait keeps its token between pokes."""
        return BsgHook(bsg_conn_id=self.bsg_conn_id)

    def campaign_ids(self) -> CampaignIds:
        """
        The rendered ``campaign_id`` as ids.

        :raises AirflowFailException: when it is not an id or a list of ids (retrying would not help).
        """
        try:
            return parse_campaign_ids(self.campaign_id)
        except BsgConfigError as exc:
            raise AirflowFailException(str(exc)) from exc

    def execute(self, context: Context) -> Any:
        ids = self.campaign_ids()
        # A fresh start per run, should the same operator object run twice (dag.test, tests).
        self._watch = StatusWatch()
        self._settled = {}
        if not self.deferrable:
            return super().execute(context)
        deadline = datetime.now(timezone.utc) + timedelta(seconds=self.timeout)
        self.log.info(
            "Deferring until BSG campaign(s) %s reach %s, at the latest until %s.",
            ", ".join(map(str, ids.unique)),
            " or ".join(self.target_statuses),
            deadline.isoformat(),
        )
        self.defer(
            trigger=BsgCampaignStatusTrigger(
                campaign_ids=list(ids.ids),
                bsg_conn_id=self.bsg_conn_id,
                target_statuses=list(self.target_statuses),
                failure_statuses=list(self.failure_statuses),
                poll_interval=self.poke_interval,
                deadline=deadline.isoformat(),
            ),
            method_name="execute_complete",
            # The scheduler's bound, should the triggerer not report in time; the trigger's own
            # deadline usually ends the wait first, with a clearer message.
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        ids = self.campaign_ids()
        campaigns: dict[int, dict[str, Any]] = {}
        for campaign_id in ids.unique:
            if campaign_id in self._settled:
                campaigns[campaign_id] = self._settled[campaign_id]
                continue
            try:
                campaigns[campaign_id] = self.hook.get_campaign(campaign_id)
            except BsgNotFoundError:
                metrics.sensor_finished("not_found")
                raise AirflowFailException(not_found_message(campaign_id, self.bsg_conn_id)) from None
            except BsgConfigError as exc:
                # A wrong connection fails the same way on every try: no task retries.
                raise AirflowFailException(str(exc)) from None
        metrics.sensor_polled(self.mode)

        statuses = statuses_of(list(campaigns.values()))
        log_observation(self.log, self._watch.observe(statuses), self.gate)

        decision = self.gate.evaluate(statuses)
        if isinstance(decision, Failed):
            metrics.sensor_finished("failure")
            raise AirflowFailException(self.gate.failure_message(decision.campaign_id, decision.status))
        if isinstance(decision, Succeeded):
            metrics.sensor_finished("success")
            self.log.info("All %d BSG campaign(s) reached a target status.", len(ids.unique))
            return PokeReturnValue(is_done=True, xcom_value=ids.shape(campaigns))
        self._settled.update(
            (campaign_id, campaigns[campaign_id])
            for campaign_id in ids.unique
            if self.gate.settled(statuses[campaign_id])
        )
        return False

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """
        Turn the trigger's event into the task's result.

        :param event: the payload of :class:`~bsg_provider.triggers.campaign.BsgCampaignStatusTrigger`.
        :raises AirflowFailException: for a failure status or an unknown campaign.
        :raises AirflowSensorTimeout: when ``timeout`` passed first.
        :raises AirflowException: when the API kept failing.
        """
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            campaigns = event["campaigns"]
            self.log.info("All %d BSG campaign(s) reached a target status.", len(campaigns))
            return campaigns[0] if self.campaign_ids().single else campaigns
        message = event.get("message") if isinstance(event, dict) else None
        if status in ("failure", "not_found"):
            raise AirflowFailException(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "error":
            raise AirflowException(f"Waiting for BSG campaigns failed: {message}")
        raise AirflowException(
            f"BsgCampaignStatusTrigger sent an event this sensor does not know: {event!r}."
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as exc:
            # Airflow 3.0 turns a deferral timeout into a sensor timeout without honouring soft_fail
            # (3.1+ does); skip here so soft_fail means the same on every version.
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping due to soft_fail: {exc}") from exc
            raise
