"""PagePrefetcher: answers in the consumer's order, bounded work in flight, nothing left running."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from bsg_provider.extraction.prefetch import READY_IN_A_ROW, FetchCancelled, PagePrefetcher


class GatedFetch:
    """A fetch that blocks until the test releases its key, recording what ran at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.release: dict[int, threading.Event] = {}
        self.started: list[int] = []
        self.running = 0
        self.most_running = 0
        self.cancelled: list[int] = []

    def gate(self, key):
        with self.lock:
            return self.release.setdefault(key, threading.Event())

    def __call__(self, key, cancelled):
        with self.lock:
            self.started.append(key)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            while not self.gate(key).wait(0.01):
                if cancelled.is_set():
                    with self.lock:
                        self.cancelled.append(key)
                    raise FetchCancelled
            if isinstance(key, int) and key < 0:
                raise ValueError(f"no page {key}")
            return f"page {key}"
        finally:
            with self.lock:
                self.running -= 1


def test_answers_come_in_the_order_asked_whatever_order_they_finish_in():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 4)
    try:
        prefetcher.ahead([1, 2, 3, 4])
        for key in (4, 3, 2, 1):  # the last one answers first
            fetch.gate(key).set()
        assert [prefetcher.get(key) for key in (1, 2, 3, 4)] == ["page 1", "page 2", "page 3", "page 4"]
    finally:
        prefetcher.close()
    assert prefetcher.submitted == 4 and prefetcher.dropped == 0


def settled(prefetcher):
    """Wait until no fetch is under way and every finished one has started what it would."""
    for _ in range(2000):
        with prefetcher._lock:
            if prefetcher._running == 0:
                return
        threading.Event().wait(0.005)
    raise AssertionError("fetches still under way after 10 s")


def test_never_more_than_max_concurrency_fetched_nor_as_many_held():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 3)
    try:
        prefetcher.ahead(range(20))
        assert prefetcher.submitted == 3, "only the first three of twenty expected keys are fetched"
        for key in range(20):
            fetch.gate(key).set()
            assert prefetcher.get(key) == f"page {key}"
            prefetcher.ahead(range(key + 1, 20))
            assert prefetcher.peak <= 6 and prefetcher.peak_running <= 3
    finally:
        prefetcher.close()
    assert fetch.most_running <= 3
    assert fetch.started == list(range(20)), "each page fetched once, in the consumer's order"


def test_a_finished_fetch_starts_the_next_one_while_the_consumer_works():
    # The consumer asks for nothing meanwhile: the pool keeps max_concurrency in flight by itself,
    # until max_concurrency answers wait for the consumer.
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 2)
    prefetcher.depth = prefetcher.lookahead  # as after the consumer waited (see the tests below)
    try:
        prefetcher.ahead(range(10))
        assert fetch.started == [0, 1]
        fetch.gate(1).set()
        for _ in range(2000):
            if len(fetch.started) == 3:
                break
            threading.Event().wait(0.005)
        assert fetch.started == [0, 1, 2], "the next key started when one fetch ended"
        for key in range(10):
            fetch.gate(key).set()
        settled(prefetcher)
        assert fetch.started == [0, 1, 2, 3], "two in flight and two held at most: four"
        assert prefetcher.get(0) == "page 0"
        prefetcher.ahead(range(1, 10))
        settled(prefetcher)
        assert fetch.started == [0, 1, 2, 3, 4], "taking one made room for one more"
    finally:
        prefetcher.close()
    assert prefetcher.peak == 4 and prefetcher.peak_running == 2


def test_keys_no_longer_expected_are_dropped_and_their_fetch_stops():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 2)
    try:
        prefetcher.ahead([1, 2])
        prefetcher.ahead([7, 8])  # the consumer changed its mind (a rescan, a new plan)
        fetch.gate(7).set()
        fetch.gate(8).set()
        assert prefetcher.get(7) == "page 7"
        assert prefetcher.get(8) == "page 8"
    finally:
        prefetcher.close()
    assert prefetcher.dropped == 2
    assert sorted(fetch.cancelled) == [1, 2]
    assert sorted(fetch.started) == [1, 2, 7, 8], "nothing fetched that was no longer expected"


def test_an_unexpected_key_is_fetched_on_demand():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 2)
    try:
        fetch.gate(5).set()
        assert prefetcher.get(5) == "page 5"
    finally:
        prefetcher.close()


def test_a_fetch_error_is_raised_when_its_key_is_asked_for_not_before():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 2)
    try:
        prefetcher.ahead([1, -2])
        fetch.gate(-2).set()  # the second one fails first
        fetch.gate(1).set()
        assert prefetcher.get(1) == "page 1"
        with pytest.raises(ValueError, match="no page -2"):
            prefetcher.get(-2)
    finally:
        prefetcher.close()


def test_close_stops_every_fetch_and_leaves_no_thread():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 4, thread_name_prefix="bsg-page-close-test")
    prefetcher.ahead(range(6))
    prefetcher.close()  # none released: all four running fetches must stop, the queued two never run
    assert sorted(fetch.cancelled) == sorted(fetch.started)
    assert fetch.running == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("bsg-page-close-test")]
    with pytest.raises(RuntimeError, match="after close"):
        prefetcher.get(1)


def test_max_concurrency_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        PagePrefetcher(GatedFetch(), 0)


def test_close_also_stops_the_fetch_the_consumer_is_waiting_for():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 2)
    raised: list[BaseException] = []

    def consumer():
        try:
            prefetcher.get(5)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=consumer)
    thread.start()
    while not fetch.started:  # the fetch is running (never released), the consumer waits on it
        threading.Event().wait(0.005)
    prefetcher.close()  # e.g. the task was interrupted and its hook closed
    thread.join(10)
    assert [type(exc) for exc in raised] == [FetchCancelled]
    assert fetch.cancelled == [5]


def thread_stacks() -> str:
    """Where every thread of this process is: what a rare failure needs to be understood."""
    import sys
    import traceback

    return "\n".join(
        f"thread {ident}:\n" + "".join(traceback.format_stack(frame)[-6:])
        for ident, frame in sys._current_frames().items()
    )


def test_a_consumer_interrupted_while_waiting_stops_that_fetch():
    # A task timeout or SIGTERM raises in the consumer's thread while it waits in get(): the
    # fetch it waited for must stop too, or close() would wait through all its retries.
    import signal

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    started, stopped = threading.Event(), threading.Event()

    def fetch(key, cancelled):
        started.set()
        # Only cancellation ends this fetch early; without it, close() waits the 30 s out.
        if cancelled.wait(30):
            stopped.set()
            raise FetchCancelled
        return "too late"

    def interrupt_once_fetching(target: int) -> None:
        started.wait(30)
        signal.pthread_kill(target, signal.SIGUSR1)

    prefetcher = PagePrefetcher(fetch, 2)
    previous = signal.signal(signal.SIGUSR1, interrupt)
    interrupter = threading.Thread(target=interrupt_once_fetching, args=(threading.get_ident(),))
    interrupter.start()
    try:
        with pytest.raises(Interrupted):
            prefetcher.get(9)
    finally:
        interrupter.join()
        signal.signal(signal.SIGUSR1, previous)
        prefetcher.close()
    # (Waited for, not checked at once: an interrupt inside the pool's submit() can leave the
    # fetch's thread unknown to shutdown(); it is still told to stop, and stops at once.)
    assert stopped.wait(25), "the fetch ran on after its consumer was interrupted:\n" + thread_stacks()


def test_twice_as_many_are_kept_outstanding_after_a_wait_and_one_fewer_after_answers_were_ready():
    prefetcher = PagePrefetcher(GatedFetch(), 3)
    try:
        assert prefetcher.depth == 3 and prefetcher.lookahead == 6
        prefetcher._adapt(ready=False)
        assert prefetcher.depth == 6
        prefetcher._adapt(ready=False)
        assert prefetcher.depth == 6, "never past lookahead"
        for _ in range(READY_IN_A_ROW - 1):
            prefetcher._adapt(ready=True)
        prefetcher._adapt(ready=False)  # a wait starts the count again
        for _ in range(READY_IN_A_ROW - 1):
            prefetcher._adapt(ready=True)
        assert prefetcher.depth == 6
        prefetcher._adapt(ready=True)
        assert prefetcher.depth == 5
        for _ in range(10 * READY_IN_A_ROW):
            prefetcher._adapt(ready=True)
        assert prefetcher.depth == 1, "never below one"
        prefetcher._adapt(ready=False)
        assert prefetcher.depth == 2
    finally:
        prefetcher.close()


def test_a_consumer_that_finds_its_answers_ready_keeps_one_fetch_ahead():
    prefetcher = PagePrefetcher(lambda key, cancelled: f"page {key}", 3)
    try:
        for key in range(4 * READY_IN_A_ROW):
            prefetcher.ahead(range(key, key + 10))
            settled(prefetcher)  # every fetch ahead has its answer
            assert prefetcher.get(key) == f"page {key}"
        assert prefetcher.depth == 1
        prefetcher.ahead(range(100, 110))
        assert list(prefetcher._outstanding) == [100], "only the next one fetched ahead"
    finally:
        prefetcher.close()


def test_a_consumer_that_waits_gets_max_concurrency_in_flight_and_room_for_as_many_held():
    # Each fetch may finish only once its consumer is waiting for it (the consumer counted the wait).
    waits: list[bool] = []

    class Recording(PagePrefetcher):
        def _adapt(self, *, ready):
            waits.append(not ready)
            super()._adapt(ready=ready)

    fetch = GatedFetch()
    prefetcher = Recording(fetch, 2)
    try:
        for key in range(6):
            prefetcher.ahead(range(key, key + 10))
            asked = len(waits)
            releaser = threading.Thread(target=release_once_asked, args=(fetch, key, waits, asked))
            releaser.start()
            assert prefetcher.get(key) == f"page {key}"
            releaser.join()
        assert waits[1:] == [True] * 5  # the first one was fetched on demand or ahead, either way waited
        assert prefetcher.depth == 4, "room for two held besides the two in flight"
        assert fetch.most_running == 2 and prefetcher.peak_running == 2 and prefetcher.peak == 2
    finally:
        prefetcher.close()


def release_once_asked(fetch, key, waits, asked):
    while len(waits) == asked:  # get() has not looked at the fetch yet
        threading.Event().wait(0.001)
    fetch.gate(key).set()


class InlinePool:
    """An executor that runs each fetch at once, in the submitting thread: every future is done
    before its callback is added, as a very fast fetch's can be."""

    def submit(self, fn, *args):
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_a_fetch_done_before_its_callback_is_added_is_not_fetched_again():
    # The callback of a future that is already done runs at once and starts the next fetches:
    # the key just submitted must already count as outstanding then.
    fetched: list[int] = []

    def fetch(key, cancelled):
        fetched.append(key)
        return f"page {key}"

    prefetcher = PagePrefetcher(fetch, 4)
    prefetcher._pool = InlinePool()
    prefetcher.ahead(range(6))
    assert [prefetcher.get(key) for key in range(6)] == [f"page {key}" for key in range(6)]
    prefetcher.close()
    assert fetched == list(range(6)), "each page fetched once"


def test_answers_held_for_later_keys_leave_the_next_one_fetched_ahead():
    # After a window is read again, pages of the next window may already be held: the re-read's
    # next page is still fetched ahead, not on demand one at a time.
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 4)
    try:
        prefetcher.ahead(["later"])
        fetch.gate("later").set()
        settled(prefetcher)
        prefetcher.depth = 1  # as after answers were found ready many times
        prefetcher.ahead([1, 2, "later"])
        assert list(prefetcher._outstanding) == ["later", 1], "the next key beyond depth, only that one"
        fetch.gate(1).set()
        assert prefetcher.get(1) == "page 1"
    finally:
        prefetcher.close()


def test_an_expected_key_not_fetched_ahead_counts_as_a_wait():
    fetch = GatedFetch()
    prefetcher = PagePrefetcher(fetch, 1)
    try:
        prefetcher.ahead(["later"])  # its fetch runs on the only thread, and goes on running
        prefetcher.ahead([0, "later"])  # no thread left for 0: the consumer asks for it unfetched
        assert 0 not in prefetcher._outstanding and prefetcher.depth == 1
        fetch.gate("later").set()
        fetch.gate(0).set()
        assert prefetcher.get(0) == "page 0"
        assert prefetcher.depth == 2
    finally:
        prefetcher.close()


def test_a_second_close_waits_for_the_first():
    started = threading.Event()

    def fetch(key, cancelled):
        started.set()
        cancelled.wait(30)
        threading.Event().wait(0.2)  # stops, slowly
        raise FetchCancelled

    prefetcher = PagePrefetcher(fetch, 1, thread_name_prefix="bsg-page-close-twice")
    prefetcher.ahead([1])
    started.wait(10)
    first = threading.Thread(target=prefetcher.close)
    first.start()
    while not prefetcher._closed:
        threading.Event().wait(0.001)
    prefetcher.close()  # returns only once the pool is down
    assert not [t for t in threading.enumerate() if t.name.startswith("bsg-page-close-twice")]
    first.join(10)
