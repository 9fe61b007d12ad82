"""A local BSG One API for development, tests and demos.

It re-implements the vendor's rules on its own (standard library only, no imports from
the rest of ``bsg_provider``), so a misreading of the API in the client is not mirrored::

    from bsg_provider.simulator import BsgSimulator

    with BsgSimulator(campaigns=1000, seed=1) as sim:
        ...  # sim.url, sim.api_key, sim.inject(...), sim.ground_truth(...)
        ...  # sim.message_ground_truth_ids(...), sim.message_counts(campaign_id)

Each campaign's messages (``GET /api/messages``, ``GET /api/campaigns/{id}/detail``) are
derived on demand from the seed, so millions cost no memory until served.

Run it standalone with ``python -m bsg_provider.simulator --help``.
"""

from __future__ import annotations

from .faults import Fault, parse_fault_spec
from .requestlog import RequestRecord
from .server import BsgSimulator

__all__ = ["BsgSimulator", "Fault", "RequestRecord", "parse_fault_spec"]
