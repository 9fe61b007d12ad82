"""
Gate downstream work on a BSG campaign finishing.

Trigger it with the campaign's id, e.g. ``airflow dags trigger bsg_campaign_gate -c
'{"campaign_id": 53012345}'`` or from the UI's trigger form. ``wait_for_campaign`` waits in the
triggerer (deferrable: no worker slot is held while the campaign is sent) until the campaign is
``done`` or ``stopped``. Then:

- ``extract_messages`` writes that campaign's messages (its id taken from the sensor's XCom) to
  ``{bsg_data_url}/campaign_messages/<id>.jsonl``, the phone hashed with the key of the
  ``bsg_pii_key`` connection and the text dropped, as the nightly load does;
- ``report_delivery`` reads the campaign's delivery report (``GET /api/campaigns/{id}/detail``:
  messages by status, ``total_messages``, ``total_phones``, ``total_price`` and ``currency``),
  logs it and returns it with the number of messages extracted. Two counts named "sent" differ
  on purpose: ``sent`` is the campaign's total of messages that left BSG (its
  ``statistics.sent``), while ``messages_by_status["sent"]`` counts the messages whose latest
  status is still ``sent``, i.e. sent with no delivery report yet. Once a campaign is done,
  most of its messages are ``delivered``, ``expired``... and that count is usually 0.

A campaign rejected as ``spam`` or an unknown id fails the gate at once and neither runs.

Needs the ``bsg_default`` and ``bsg_pii_key`` connections (see ``bsg_campaigns_nightly``), and
a running triggerer (``airflow triggerer``). The wait polls every ``BSG_GATE_POKE_SECONDS``
seconds (default 60) and gives up after 12 hours. The value is read wherever this file is
parsed; the one that counts is the worker's, which parses the file before it runs the sensor
(the DAG processor's is only what the UI shows).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.operators.messages import BsgExtractMessagesOperator
from bsg_provider.sensors.campaign import BsgCampaignStatusSensor

log = logging.getLogger(__name__)

#: Seconds between status checks; the demo and the tests set it low.
POKE_SECONDS = float(os.environ.get("BSG_GATE_POKE_SECONDS", "60"))
#: The connection whose password is the key of the phones' HMAC (never a literal in this file).
PII_KEY_CONN_ID = "bsg_pii_key"


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

    extract_messages = BsgExtractMessagesOperator(
        task_id="extract_messages",
        output_path=(
            "{{ var.value.get('bsg_data_url', 'file:///tmp/bsg') }}"
            "/campaign_messages/{{ params.campaign_id }}.jsonl"
        ),
        # The campaign the sensor saw finish; its messages from its creation until now.
        campaign_id="{{ ti.xcom_pull(task_ids='wait_for_campaign')['id'] }}",
        phone="hash",
        text="drop",
        pii_key_conn_id=PII_KEY_CONN_ID,
    )

    @task
    def report_delivery(campaign: dict[str, Any], messages: dict[str, Any]) -> dict[str, Any]:
        """What the downstream work would use: the campaign's outcome and its delivery report."""
        hook = BsgHook()
        try:
            details = hook.get_campaign_details(campaign["id"])
        finally:
            hook.close()
        # Messages by their latest status: "sent" here means sent and not yet reported delivered or not.
        by_status = details.get("statistics") or {}
        # The campaign's totals: "sent" here means every message that left BSG, delivered or not.
        summary = campaign.get("statistics") or {}
        sent, delivered = summary.get("sent") or 0, summary.get("delivered") or 0
        report = {
            "campaign_id": campaign["id"],
            "status": campaign["status"],
            "sent": sent,
            "delivered": delivered,
            "delivery_rate": round(delivered / sent, 4) if sent else None,
            "finished_at": campaign.get("finished_at"),
            "messages_by_status": dict(by_status),
            "total_messages": details.get("total_messages"),
            "total_phones": details.get("total_phones"),
            "total_price": details.get("total_price"),
            "currency": details.get("currency"),
            "messages_extracted": messages["records"],
            "messages_path": messages["path"],
        }
        statuses = ", ".join(f"{count} {status}" for status, count in by_status.items() if count)
        log.info(
            "BSG campaign %s finished with status %s: %s messages to %s phones (by latest status: %s), "
            "%s %s; %d messages in %s.",
            campaign["id"],
            campaign["status"],
            report["total_messages"],
            report["total_phones"],
            statuses or "none",
            report["total_price"],
            report["currency"] or "",
            messages["records"],
            messages["path"],
        )
        return report

    campaign >> extract_messages
    report_delivery(campaign.output, extract_messages.output)


bsg_campaign_gate()
