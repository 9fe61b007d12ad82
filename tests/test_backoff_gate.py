"""The shared back-off: one request's retry wait holds every other request of the hook."""

from __future__ import annotations

import threading

from bsg_provider.client.backoff_gate import BackoffGate


class FakeClock:
    def __init__(self):
        self.now = 50.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_an_open_gate_costs_nothing():
    clock = FakeClock()
    gate = BackoffGate(clock=clock, sleep=clock.sleep)
    assert gate.wait() == 0.0
    assert clock.slept == [] and gate.held == 0


def test_a_retry_wait_holds_the_other_requests_until_it_ends():
    clock = FakeClock()
    gate = BackoffGate(clock=clock, sleep=clock.sleep)
    gate.hold(2.0)  # a 429 with Retry-After: 2 on one thread
    clock.now += 0.5  # another thread is about to send half a second later
    assert gate.wait() == 1.5
    assert clock.now == 52.0 and gate.held == 1
    assert gate.wait() == 0.0, "open again once the wait has passed"


def test_a_shorter_hold_never_shortens_a_longer_one():
    clock = FakeClock()
    gate = BackoffGate(clock=clock, sleep=clock.sleep)
    assert gate.hold(5.0) == 55.0
    assert gate.hold(1.0) == 55.0
    assert gate.not_before == 55.0


def test_the_retry_itself_waits_its_own_hold():
    clock = FakeClock()
    gate = BackoffGate(clock=clock, sleep=clock.sleep)
    gate.pause(0.75)
    assert clock.slept == [0.75] and gate.held == 0, "its own wait is not counted as held by another"


def test_a_hold_extended_while_waiting_is_waited_for_too():
    clock = FakeClock()
    gate = BackoffGate(clock=clock)

    def sleep(seconds):
        clock.sleep(seconds)
        if len(clock.slept) == 1:
            gate.hold(3.0)  # another 429 arrived meanwhile

    gate.hold(1.0)
    assert gate.wait(sleep) == 4.0
    assert clock.slept == [1.0, 3.0]


def test_a_cancelled_wait_returns_at_once():
    gate = BackoffGate()
    gate.hold(60.0)
    cancelled = threading.Event()
    cancelled.set()
    assert gate.wait(cancelled.wait) > 0  # returned without sleeping a minute


def test_threads_waiting_on_one_hold_all_open_at_its_end():
    clock = FakeClock()
    lock = threading.Lock()
    all_waiting = threading.Barrier(4)
    gate = BackoffGate(clock=clock)
    gate.hold(2.0)
    opened = []

    def sleep(seconds):
        all_waiting.wait()  # the clock moves on only once all four found the gate closed
        with lock:
            clock.now = max(clock.now, 52.0)

    def sender():
        gate.wait(sleep)
        opened.append(clock())

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened == [52.0] * 4 and gate.held == 4
