"""
Fetching ahead of an in-order consumer, on a small pool of threads, with bounded work in flight.

The consumer (the hook's paging loop) reads pages strictly in the order a sequential reader
would, but tells :class:`PagePrefetcher` which pages it expects to ask for next. Those are
fetched concurrently while it works; when it then asks for one, the answer is usually there.
When its expectation changes (a window is read again, a total changed, the plan was redone),
the pages no longer expected are dropped: their fetch stops at its next step and its answer
is thrown away, so the consumer only ever sees answers to the requests it asked for, in its
own order.

How far ahead it fetches adapts to what the consumer meets, as TCP's window does: twice as
far each time the consumer had to wait for an answer it expected, up to ``max_concurrency``,
and one fewer after it found several ready in a row. Against a distant API the consumer waits,
and ``max_concurrency`` requests stay in flight after a few pages; when the answers come faster
than the consumer takes them, fewer are fetched ahead, so no more requests are in flight and no
more pages held than keep the consumer busy.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

#: Answers the consumer finds ready in a row before one fewer is fetched ahead.
READY_IN_A_ROW = 4


class FetchCancelled(Exception):
    """
    Raised inside a fetch whose answer is no longer wanted. The consumer sees it only when
    :meth:`PagePrefetcher.close`, called from another thread, stops the fetch it waits for.
    """


class PagePrefetcher(Generic[K, T]):
    """
    Fetch what an in-order consumer will ask for next, at most ``max_concurrency`` at a time.

    Bounds, whatever the consumer does: at most ``max_concurrency`` fetches run at once (the
    pool has that many threads), and at most ``max_concurrency`` answers are outstanding
    (in flight or held for the consumer), plus the one :meth:`get` is handing over. For pages
    of ``page_size`` records that is ``max_concurrency`` pages in memory, however large the
    extraction. Within that bound, :attr:`depth` answers are fetched ahead: it starts at 1,
    doubles whenever the consumer waits for an answer fetched ahead, and shrinks by one
    after :data:`READY_IN_A_ROW` answers were ready when asked for.

    :param fetch: ``fetch(key, cancelled)`` returns the answer for ``key``; it should stop soon
        (raising :class:`FetchCancelled`) once the event ``cancelled`` is set.
    :param max_concurrency: fetches in flight at most, 1 or more.
    :param thread_name_prefix: names of the pool's threads, for thread dumps and logs.
    """

    def __init__(
        self,
        fetch: Callable[[K, threading.Event], T],
        max_concurrency: int,
        *,
        thread_name_prefix: str = "bsg-page",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self._fetch = fetch
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=thread_name_prefix)
        self._outstanding: OrderedDict[K, tuple[Future[T], threading.Event]] = OrderedDict()
        # Every fetch not yet finished, by its cancel event: close() stops them all, including one
        # whose caller was interrupted before it could keep a reference to it.
        self._live: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._closed = False
        # close() may come from another thread (a task being killed) while the consumer works.
        self._lock = threading.Lock()
        #: Answers fetched ahead now, 1 to ``max_concurrency``.
        self.depth = 1
        self._ready_in_a_row = 0
        #: Most answers outstanding at once.
        self.peak = 0
        #: Fetches submitted, and those dropped because the consumer no longer expected them.
        self.submitted = 0
        self.dropped = 0

    def ahead(self, keys: Iterable[K]) -> None:
        """
        Say what the consumer expects to :meth:`get` next, in order, starting with the very next one.

        Outstanding fetches not among the first ``max_concurrency`` keys are dropped; those
        keys not yet fetched are submitted in order while fewer than :attr:`depth` are outstanding.

        :param keys: the expected keys, nearest first (only the first ``max_concurrency`` are read).
        """
        wanted = list(itertools.islice(keys, self.max_concurrency))
        keep = set(wanted)
        with self._lock:
            for key in [key for key in self._outstanding if key not in keep]:
                self._drop(key)
            for key in wanted:
                if len(self._outstanding) >= self.depth:
                    break
                if key not in self._outstanding:
                    self._outstanding[key] = self._submit(key)
            self.peak = max(self.peak, len(self._outstanding))

    def get(self, key: K) -> T:
        """
        The answer for ``key`` (fetched now if it was not fetched ahead); raises the fetch's error.

        :param key: what to fetch.
        """
        with self._lock:
            entry = self._outstanding.pop(key, None)
            fetched_ahead = entry is not None
            if entry is None:
                entry = self._submit(key)
        try:
            if fetched_ahead:
                self._adapt(ready=entry[0].done())
            return entry[0].result()
        except BaseException:
            # Interrupted here (a task timeout, SIGTERM): stop the fetch at once rather than
            # when close() comes. Harmless for a fetch that has finished.
            entry[1].set()
            raise

    def _adapt(self, *, ready: bool) -> None:
        """Twice as far ahead after a wait; one fewer after answers were ready several times in a row."""
        if not ready:
            self._ready_in_a_row = 0
            self.depth = min(self.depth * 2, self.max_concurrency)
            return
        self._ready_in_a_row += 1
        if self._ready_in_a_row >= READY_IN_A_ROW:
            self._ready_in_a_row = 0
            self.depth = max(self.depth - 1, 1)

    def close(self) -> None:
        """Drop every outstanding fetch and shut the pool down, waiting for its threads to end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for key in list(self._outstanding):
                self._drop(key)
            for cancelled in list(self._live):
                cancelled.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, key: K) -> tuple[Future[T], threading.Event]:
        if self._closed:
            raise RuntimeError("PagePrefetcher used after close()")
        cancelled = threading.Event()
        # Known to close() before the fetch exists: nothing can interrupt in between.
        self._live.add(cancelled)
        self.submitted += 1
        return self._pool.submit(self._fetch, key, cancelled), cancelled

    def _drop(self, key: K) -> None:
        future, cancelled = self._outstanding.pop(key)  # under self._lock
        cancelled.set()
        future.cancel()  # a fetch not started yet never starts
        self.dropped += 1
