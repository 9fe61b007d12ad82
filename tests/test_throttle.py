from __future__ import annotations

import pytest

from bsg_provider.client.throttle import RequestThrottle


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_requests_are_spaced_by_the_rate():
    clock = FakeClock()
    throttle = RequestThrottle(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        throttle.wait()
    assert clock.slept == [0.25, 0.25, 0.25, 0.25]
    assert throttle.waited == 1.0


def test_idle_time_is_not_saved_up_for_a_burst():
    clock = FakeClock()
    throttle = RequestThrottle(2.0, clock=clock, sleep=clock.sleep)
    throttle.wait()
    clock.now += 10
    throttle.wait()
    throttle.wait()
    assert clock.slept == [0.5]


def test_no_rate_means_no_waiting():
    clock = FakeClock()
    throttle = RequestThrottle(None, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        throttle.wait()
    assert clock.slept == []


def test_threads_sharing_a_throttle_get_distinct_slots_at_the_rate():
    """max_requests_per_second holds over every paging thread: each reserves its own slot."""
    import threading

    clock = FakeClock()
    throttle = RequestThrottle(10.0, clock=clock, sleep=lambda seconds: None)
    delays: list[float] = []
    lock = threading.Lock()

    def sender():
        for _ in range(50):
            pause = throttle.delay()
            with lock:
                delays.append(pause)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The clock stood still: 400 requests were given the slots 0, 0.1, 0.2 ... 39.9 s from now.
    assert sorted(round(d, 6) for d in delays) == [round(i * 0.1, 6) for i in range(400)]


def test_a_wait_can_be_cut_short_by_the_caller():
    # A dropped page's fetch waits on its cancel event, which returns at once once set.
    slept: list[float] = []
    throttle = RequestThrottle(0.5, clock=lambda: 100.0, sleep=lambda s: pytest.fail("the default sleep ran"))
    assert throttle.wait() == 0.0  # the first slot is free
    assert throttle.wait(sleep=slept.append) == 2.0
    assert slept == [2.0]
