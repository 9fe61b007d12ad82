"""Move a simulated campaign's status once a sensor has read it a number of times."""

from __future__ import annotations

import threading
import time

from bsg_provider.simulator import BsgSimulator


def reads_of(sim: BsgSimulator, campaign_id: int) -> int:
    """How many ``GET /api/campaigns/{id}`` the simulator answered for one campaign."""
    path = f"/api/campaigns/{campaign_id}"
    return sum(1 for r in sim.requests if r.endpoint == "get" and r.path == path)


class StatusFlip(threading.Thread):
    """
    Set a campaign's status once the sensor has read it ``after_reads`` times.

    Keyed to the sensor's own reads rather than to a clock, so the test knows the sensor was
    really waiting however slow Airflow's start-up is on a busy machine.
    """

    def __init__(self, sim: BsgSimulator, campaign_id: int, status: str, after_reads: int) -> None:
        super().__init__(daemon=True, name=f"flip-{campaign_id}")
        self.sim = sim
        self.campaign_id = campaign_id
        self.status = status
        self.after_reads = after_reads
        #: Reads answered before the flip; None until it happened.
        self.reads_before: int | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            reads = reads_of(self.sim, self.campaign_id)
            if reads >= self.after_reads:
                self.sim.set_status(self.campaign_id, self.status)
                self.reads_before = reads
                return
            time.sleep(0.01)  # polls what the simulator saw

    def stopped_promptly(self) -> bool:
        """Whether the sensor read the campaign once (or twice, if one read was in flight) after the flip."""
        return self.reads_before is not None and (
            self.reads_before + 1 <= reads_of(self.sim, self.campaign_id) <= self.reads_before + 2
        )

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)
