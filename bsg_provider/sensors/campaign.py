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

from bsg_provider.client.campaign_wait import CampaignWait, Outcome, Pending
from bsg_provider.client.statuses import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_TARGET_STATUSES,
    CampaignIds,
    StatusGate,
    parse_campaign_ids,
)
from bsg_provider.errors import BsgApiError, BsgConfigError
from bsg_provider.hooks import metrics
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class BsgCampaignStatusSensor(BaseSensorOperator):
    """
    Wait until BSG campaigns are done (or stopped); fail as soon as one is rejected as spam.

    Succeeds when every campaign is in one of ``target_statuses`` and returns the campaign
    record (one id) or the records in the given order (a list) as its XCom value. Fails without
    retries (``AirflowFailException``) when a campaign is in one of ``failure_statuses``, does
    not exist, or the API refuses the read for good. An API that keeps failing transiently
    (429, 5xx, timeouts...) only means the status is not known yet: the wait goes on. Runs in
    ``poke`` or ``reschedule`` mode, or deferred to the triggerer with ``deferrable=True``
    after one poke; ``timeout`` bounds the whole wait, counted from the first try's start, in
    every mode.

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
        if _is_literal(campaign_id):
            # A value no rendering can change: one that can never be ids fails the DAG's import.
            parse_campaign_ids(campaign_id)
        self.campaign_id = campaign_id
        self.bsg_conn_id = bsg_conn_id
        self.deferrable = deferrable
        self._wait: CampaignWait | None = None

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

    def wait_started_at(self, context: Context) -> datetime:
        """
        When this wait began, which ``timeout`` counts from: the start of the task's first try.

        The try's own start holds across deferrals, and in reschedule mode the first reschedule's
        start (as Airflow's sensor base class computes it) across reschedules. On a retry Airflow 3
        gives the worker no record of earlier tries, so the DAG run's start, which precedes them all,
        stands in: the whole wait never exceeds ``timeout``.

        :param context: the task's context; without a task instance (a bare call), now.
        """
        now = datetime.now(timezone.utc)
        ti = context.get("ti")
        if ti is None:
            return now
        starts = [getattr(ti, "start_date", None)]
        if self.reschedule and not self.deferrable:
            starts.append(ti.get_first_reschedule_date(context))
        first_try = getattr(ti, "max_tries", 0) - (self.retries or 0) + 1
        if getattr(ti, "try_number", 1) > first_try:
            dag_run = context.get("dag_run")
            starts.append(getattr(dag_run, "start_date", None))
        known = [_aware(start) for start in starts if start is not None]
        return min(known, default=now)

    def _begin_wait(self, context: Context, ids: CampaignIds) -> CampaignWait:
        deadline = self.wait_started_at(context) + timedelta(seconds=self.timeout)
        self._wait = CampaignWait(ids, self.gate, self.bsg_conn_id, deadline, self.log)
        return self._wait

    def execute(self, context: Context) -> Any:
        ids = self.campaign_ids()
        # A fresh wait per run, should the same operator object run twice (dag.test, tests).
        deadline = self._begin_wait(context, ids).deadline
        try:
            if not self.deferrable:
                return super().execute(context)
            # Poke once first, as HttpSensor does: a campaign already done never goes through the triggerer.
            done = self._poke_honouring_soft_fail(context)
        finally:
            self.hook.close()
        if done:
            return done.xcom_value
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
            timeout=max(deadline - datetime.now(timezone.utc), timedelta(seconds=1)),
        )

    def _poke_honouring_soft_fail(self, context: Context) -> PokeReturnValue | bool:
        try:
            return self.poke(context)
        except (AirflowFailException, AirflowSensorTimeout) as exc:
            if self.soft_fail:
                raise AirflowSkipException(f"Skipping due to soft_fail: {exc}") from exc
            raise

    def poke(self, context: Context) -> bool | PokeReturnValue:
        wait = self._wait if self._wait is not None else self._begin_wait(context, self.campaign_ids())
        try:
            outcome = self._poll(wait)
        except BsgConfigError as exc:
            # A wrong connection fails the same way on every try: no task retries.
            raise AirflowFailException(str(exc)) from None
        metrics.sensor_polled(self.mode)
        if isinstance(outcome, Pending):
            return False
        metrics.sensor_finished(outcome.status)
        return PokeReturnValue(is_done=True, xcom_value=self.execute_complete(context, outcome.event()))

    def _poll(self, wait: CampaignWait) -> Outcome:
        campaigns: dict[int, dict[str, Any]] = {}
        for campaign_id in wait.to_read():
            try:
                campaigns[campaign_id] = self.hook.get_campaign(campaign_id, retries=wait.retries)
            except BsgApiError as exc:
                return wait.failed(campaign_id, exc)
        return wait.answered(campaigns)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """
        Turn an outcome (the trigger's event, or a poke's) into the task's result.

        :param event: the payload of :class:`~bsg_provider.triggers.campaign.BsgCampaignStatusTrigger`.
        :raises AirflowFailException: for a failure status, an unknown campaign, or a refused read.
        :raises AirflowSensorTimeout: when ``timeout`` passed first.
        :raises AirflowException: when the trigger could not work (a missing connection, a bug).
        """
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            campaigns = event["campaigns"]
            self.log.info("All %d BSG campaign(s) reached a target status.", len(campaigns))
            return campaigns[0] if self.campaign_ids().single else campaigns
        message = event.get("message") if isinstance(event, dict) else None
        if status in ("failure", "not_found", "refused"):
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


def _aware(moment: datetime | str) -> datetime:
    # Airflow 3.0 under dag.test() may hand the reschedule date over unparsed (see the tests' conftest).
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _is_literal(value: Any) -> bool:
    """
    Whether ``value`` is final as given: no Jinja template and no XCom reference inside, so that
    rendering leaves it as it is. Only such a value can be judged when the DAG is built.
    """
    if isinstance(value, str):
        return "{{" not in value and "{%" not in value
    if isinstance(value, (list, tuple)):
        return all(_is_literal(item) for item in value)
    return isinstance(value, (int, float)) or value is None
