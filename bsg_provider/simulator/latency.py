"""Simulated network latency: a delay before every API answer, with deterministic jitter."""

from __future__ import annotations

import random
import threading


class Latency:
    """The delay each API request waits before it is answered.

    Each request waits ``latency_ms`` plus a jitter drawn uniformly from
    ``[-latency_jitter_ms, +latency_jitter_ms]`` (never below zero). The draws come from a
    generator seeded by the simulator's seed, so the sequence of delays (in arrival order)
    is the same on every run.

    :param latency_ms: mean delay in milliseconds.
    :param latency_jitter_ms: largest deviation from it in milliseconds.
    :param seed: the simulator's seed.
    """

    def __init__(self, latency_ms: float = 0.0, latency_jitter_ms: float = 0.0, seed: int = 0) -> None:
        if not latency_ms >= 0 or not latency_jitter_ms >= 0:  # also refuses NaN
            raise ValueError("latency_ms and latency_jitter_ms must be numbers >= 0")
        self.latency_ms = float(latency_ms)
        self.latency_jitter_ms = float(latency_jitter_ms)
        self._random = random.Random(f"latency-{seed}")
        self._lock = threading.Lock()

    def next_delay(self) -> float:
        """Seconds the next request waits."""
        if not self.latency_jitter_ms:
            return self.latency_ms / 1000
        with self._lock:
            jitter = self._random.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000
