"""
A downstream DAG that runs whenever the nightly load has written a new campaigns file.

It is scheduled on the asset ``bsg://bsg_default/campaigns``, which
``BsgExtractCampaignsOperator`` updates on every successful run without being told to (its
default asset, one per connection). Nothing in ``bsg_campaigns_nightly`` names this DAG.

``report_campaigns`` reads the asset event that triggered the run: its ``extra`` says which file
was written (``path``), how many campaigns it holds (``records``) and which interval they were
created in (``data_interval_start``, ``data_interval_end``). It reads that file and logs and
returns the campaigns by status with their sent and delivered messages. Events of loads that
finish before the scheduler starts this DAG (a backfill's runs, say) start one run together, which
reports the newest of them. Triggered by hand, it reports the asset's latest event instead.

Every successful extraction queues a run, whether the nightly run was scheduled, manual or a
backfill's. Unpause this DAG before the nightly load runs: events that come while it is paused
start nothing. The scheduler creates asset-triggered runs only with ``[scheduler]
use_job_schedule`` on (the default). It needs no connection of its own, only read access to the
files (the ``bsg_data_url`` storage).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pendulum
from airflow.sdk import ObjectStoragePath, dag, task

from bsg_provider.assets import campaigns_asset

log = logging.getLogger(__name__)

#: What the nightly load's extract_campaigns updates (bsg://bsg_default/campaigns).
CAMPAIGNS = campaigns_asset("bsg_default")


def latest_extra(triggering_asset_events: Any, inlet_events: Any) -> dict[str, Any]:
    """
    The ``extra`` of the newest event that triggered the run, or of the asset's latest event for a
    manual run.

    :param triggering_asset_events: the run's triggering events, by asset.
    :param inlet_events: the task's inlet events, by asset (for a manual run).
    """
    try:
        events = list(triggering_asset_events[CAMPAIGNS])
    except (KeyError, TypeError):
        events = []
    if events:
        # Airflow hands a run's triggering events over in no particular order.
        return dict(max(events, key=lambda event: event.timestamp).extra)
    try:
        return dict(inlet_events[CAMPAIGNS][-1].extra)
    except (KeyError, IndexError):
        raise ValueError(
            f"No event of {CAMPAIGNS.uri} yet: run bsg_campaigns_nightly (or any "
            "BsgExtractCampaignsOperator on bsg_default) first."
        ) from None


@dag(
    dag_id="bsg_campaigns_report",
    description="Report the campaigns of each new nightly campaigns file, by status.",
    schedule=[CAMPAIGNS],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["bsg", "example"],
    doc_md=__doc__,
)
def bsg_campaigns_report() -> None:
    @task(inlets=[CAMPAIGNS])
    def report_campaigns(triggering_asset_events: Any = None, inlet_events: Any = None) -> dict[str, Any]:
        """Count the campaigns of the file the triggering event names, by status."""
        extra = latest_extra(triggering_asset_events, inlet_events)
        statuses: Counter[str] = Counter()
        sent = delivered = 0
        with ObjectStoragePath(extra["path"]).open("rb") as handle:
            # readline, not iteration: Airflow 3.0 wraps the file in a proxy that is not iterable.
            for line in iter(handle.readline, b""):
                if line.strip():
                    campaign = json.loads(line)
                    statuses[campaign["status"]] += 1
                    statistics = campaign.get("statistics") or {}
                    sent += statistics.get("sent") or 0
                    delivered += statistics.get("delivered") or 0
        report = {
            "path": extra["path"],
            "data_interval_start": extra["data_interval_start"],
            "data_interval_end": extra["data_interval_end"],
            "campaigns": sum(statuses.values()),
            "by_status": dict(sorted(statuses.items())),
            "sent": sent,
            "delivered": delivered,
        }
        if report["campaigns"] != extra["records"]:
            raise ValueError(
                f"{extra['path']} holds {report['campaigns']} campaigns but its event says "
                f"{extra['records']}: a later run rewrote it; rerun this DAG run."
            )
        log.info(
            "Campaigns created in [%s, %s): %d (%s); %d messages sent, %d delivered; from %s.",
            report["data_interval_start"],
            report["data_interval_end"],
            report["campaigns"],
            ", ".join(f"{count} {status}" for status, count in report["by_status"].items()) or "none",
            sent,
            delivered,
            extra["path"],
        )
        return report

    report_campaigns()


bsg_campaigns_report()
