"""
Gate downstream work on a BSG campaign finishing.

Trigger it with the campaign's id, e.g. ``airflow dags trigger bsg_campaign_gate -c
'{"campaign_id": 53012345}'`` or from the UI's trigger form. ``wait_for_campaign`` waits in the
triggerer (deferrable: no worker slot is held while the campaign is sent) until the campaign is
``done`` or ``stopped``, then ``report_delivery`` runs with the campaign record. A campaign
rejected as ``spam`` or an unknown id fails the gate at once and ``report_delivery`` does not run.

Needs the ``bsg_default`` connection and a running triggerer (``airflow triggerer``). The wait
polls every ``BSG_GATE_POKE_SECONDS`` seconds (default 60) and gives up after 12 hours. The
value is read wherever this file is parsed; the one that counts is the worker's, which parses
the file before it runs the sensor (the DAG processor's is only what the UI shows).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from bsg_provider.sensors.campaign import BsgCampaignStatusSensor

log = logging.getLogger(__name__)

#: Seconds between status checks; the demo and the tests set it low.
POKE_SECONDS = float(os.environ.get("BSG_GATE_POKE_SECONDS", "60"))


@dag(
    dag_id="bsg_campaign_gate",
    description="Wait for a BSG campaign to finish, then report its delivery.",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "campaign_id": Param(
            type="integer",
            minimum=1,
            title="Campaign id",
            description="The BSG campaign to wait for, as the API numbers it.",
        ),
    },
    tags=["bsg", "example"],
    doc_md=__doc__,
)
def bsg_campaign_gate() -> None:
    campaign = BsgCampaignStatusSensor(
        task_id="wait_for_campaign",
        campaign_id="{{ params.campaign_id }}",
        target_statuses=("done", "stopped"),
        failure_statuses=("spam",),
        deferrable=True,
        poke_interval=POKE_SECONDS,
        timeout=timedelta(hours=12),
    )

    @task
    def report_delivery(campaign: dict[str, Any]) -> dict[str, Any]:
        """What the downstream work would use: the campaign's outcome and delivery figures."""
        statistics = campaign.get("statistics") or {}
        sent, delivered = statistics.get("sent") or 0, statistics.get("delivered") or 0
        report = {
            "campaign_id": campaign["id"],
            "status": campaign["status"],
            "sent": sent,
            "delivered": delivered,
            "delivery_rate": round(delivered / sent, 4) if sent else None,
            "finished_at": campaign.get("finished_at"),
        }
        log.info("BSG campaign %s finished: %s", campaign["id"], report)
        return report

    report_delivery(campaign.output)


bsg_campaign_gate()
