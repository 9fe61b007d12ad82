from __future__ import annotations

from bsg_provider.throttle import RequestThrottle


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
