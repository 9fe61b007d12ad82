"""
Fetching ahead of an in-order consumer, on a small pool of threads, with bounded work in flight.

The consumer (the hook's paging loop) reads pages strictly in the order a sequential reader
would, but tells :class:`PagePrefetcher` which pages it expects to ask for next. Those are
fetched concurrently while it works; when it then asks for one, the answer is usually there.
When its expectation changes (a window is read again, a total changed, the plan was redone),
the pages no longer expected are dropped: their fetch stops at its next step and its answer
is thrown away, so the consumer only ever sees answers to the requests it asked for, in its
own order.

A fetch that finishes starts the next expected one at once, from its own thread: the
consumer's work on a page (encoding, writing) never leaves a request slot idle, so against a
distant API, where the consumer waits for its answers, all ``max_concurrency`` requests stay
in flight. How many answers it keeps outstanding adapts to what the consumer meets
(:meth:`PagePrefetcher._adapt`): more after it waited, fewer while answers wait for it.
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

#: Answers the consumer finds ready in a row before one fewer is kept outstanding.
READY_IN_A_ROW = 4


class FetchCancelled(Exception):
    """
    Raised inside a fetch whose answer is no longer wanted. The consumer sees it only when
    :meth:`PagePrefetcher.close`, called from another thread, stops the fetch it waits for
    (or :class:`concurrent.futures.CancelledError`, when that fetch had not started yet).
    """


class PagePrefetcher(Generic[K, T]):
    """
    Fetch what an in-order consumer will ask for next: ``max_concurrency`` at a time, twice that outstanding.

    Bounds, whatever the consumer does: at most ``max_concurrency`` fetches run at once (the
    pool has that many threads), and at most :attr:`lookahead` (twice ``max_concurrency``)
    answers are outstanding, in flight or held for the consumer, plus the one :meth:`get` is
    handing over. For pages of ``page_size`` records that is at most ``2 * max_concurrency``
    pages in memory, however large the extraction. Within that, new fetches start while fewer
    than :attr:`depth` answers are outstanding (the very next expected one always may), and
    :attr:`depth` moves between 1 and :attr:`lookahead` as :meth:`_adapt` says.

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
        #: Answers outstanding at most (in flight or held): how many keys :meth:`ahead` reads.
        self.lookahead = 2 * max_concurrency
        self._fetch = fetch
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=thread_name_prefix)
        self._outstanding: OrderedDict[K, tuple[Future[T], threading.Event]] = OrderedDict()
        # What the consumer said it expects, nearest first, less what it has taken since.
        self._wanted: list[K] = []
        # Fetches submitted and not finished (queued, running, or stopping after a drop).
        self._running = 0
        # Every fetch not yet finished, by its cancel event: close() stops them all, including one
        # whose caller was interrupted before it could keep a reference to it.
        self._live: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._closed = False
        self._shut_down = threading.Event()
        # Shared by the consumer, close() (a task being killed) and the pool's threads, whose
        # finished fetches start the next ones; re-entrant because a future that is already done
        # (or cancelled) runs its callback at once, in the thread that holds the lock.
        self._lock = threading.RLock()
        #: Answers kept outstanding now, 1 to :attr:`lookahead`: see :meth:`_adapt`.
        self.depth = max_concurrency
        self._ready_in_a_row = 0
        #: Most answers outstanding at once, and most fetches submitted and not finished at once.
        self.peak = 0
        self.peak_running = 0
        #: Fetches submitted, and those dropped because the consumer no longer expected them.
        self.submitted = 0
        self.dropped = 0

    def ahead(self, keys: Iterable[K]) -> None:
        """
        Say what the consumer expects to :meth:`get` next, in order, starting with the very next one.

        Outstanding fetches not among the first :attr:`lookahead` keys are dropped; those keys
        not yet fetched are submitted in order, within the bounds, now and whenever a fetch ends.

        :param keys: the expected keys, nearest first (only the first :attr:`lookahead` are read).
        """
        wanted = list(itertools.islice(keys, self.lookahead))
        keep = set(wanted)
        with self._lock:
            # First: a fetch a drop ends at once starts the next one, which must be one of these.
            self._wanted = wanted
            for key in [key for key in self._outstanding if key not in keep]:
                self._drop(key)
            self._fill()

    def get(self, key: K) -> T:
        """
        The answer for ``key`` (fetched now if it was not fetched ahead); raises the fetch's error.

        :param key: what to fetch.
        """
        entry: tuple[Future[T], threading.Event] | None = None
        try:
            with self._lock:
                entry = self._outstanding.pop(key, None)
                expected = key in self._wanted
                if expected:
                    self._wanted.remove(key)
                if entry is None:
                    if expected:
                        self._adapt(ready=False)  # it was expected, and it was not fetched ahead
                    entry = self._submit(key, keep=False)
                else:
                    self._adapt(ready=entry[0].done())
                    self._fill()  # one fewer held: room for another
            return entry[0].result()
        except BaseException:
            # Interrupted (a task timeout, SIGTERM), wherever in here: stop the fetch at once
            # rather than when close() comes. Harmless for a fetch that has finished.
            if entry is not None:
                entry[1].set()
            raise

    def peek(self, key: K) -> T | None:
        """
        The answer for ``key`` if it was fetched ahead and has arrived, without taking it; else None.

        :param key: what was fetched.
        """
        with self._lock:
            entry = self._outstanding.get(key)
        if entry is None or not entry[0].done() or entry[0].cancelled() or entry[0].exception() is not None:
            return None
        return entry[0].result()

    def close(self) -> None:
        """Drop every outstanding fetch and shut the pool down, waiting for its threads to end."""
        with self._lock:
            already = self._closed
            if not already:
                self._closed = True
                self._wanted = []
                for key in list(self._outstanding):
                    self._drop(key)
                for cancelled in list(self._live):
                    cancelled.set()
        if already:
            self._shut_down.wait()  # another caller is shutting the pool down
            return
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._shut_down.set()

    def _adapt(self, *, ready: bool) -> None:
        """
        Keep twice as many answers outstanding after the consumer waited for one, and one fewer
        after it found :data:`READY_IN_A_ROW` ready in a row (under the lock).

        Against a distant API the consumer waits, and the pool keeps ``max_concurrency`` requests
        in flight with as many answers held for bursts. Against one that answers at once, answers
        wait for the consumer: a fetch or two ahead keep it busy, and fewer pages are held and
        fewer threads compete with it for the interpreter.
        """
        if not ready:
            self._ready_in_a_row = 0
            self.depth = min(self.depth * 2, self.lookahead)
            return
        self._ready_in_a_row += 1
        if self._ready_in_a_row >= READY_IN_A_ROW:
            self._ready_in_a_row = 0
            self.depth = max(self.depth - 1, 1)

    def _fill(self) -> None:
        """Submit the nearest expected keys not yet outstanding, within the bounds (under the lock)."""
        if self._closed:
            return
        for index, key in enumerate(self._wanted):
            outstanding = len(self._outstanding)
            if self._running >= self.max_concurrency or outstanding >= self.lookahead:
                break
            # The very next key even beyond depth: answers held for later ones (the next window's
            # pages, say, while this one is read again) must not make the consumer fetch on demand.
            if outstanding >= self.depth and index > 0:
                break
            if key not in self._outstanding:
                self._submit(key, keep=True)
        self.peak = max(self.peak, len(self._outstanding))

    def _finished(self, _future: Future[T]) -> None:
        """A fetch ended (answered, failed, cancelled or stopped): start the next expected one."""
        with self._lock:
            self._running -= 1
            self._fill()

    def _submit(self, key: K, *, keep: bool) -> tuple[Future[T], threading.Event]:
        """Start fetching ``key`` (under the lock); ``keep`` it among the outstanding ones."""
        if self._closed:
            raise RuntimeError("PagePrefetcher used after close()")
        cancelled = threading.Event()
        # Known to close() before the fetch exists: nothing can interrupt in between.
        self._live.add(cancelled)
        try:
            entry = self._pool.submit(self._fetch, key, cancelled), cancelled
            self.submitted += 1
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
            if keep:
                self._outstanding[key] = entry
            # Last: a fetch already done runs _finished here and now, whose _fill must find this
            # key outstanding, or it would fetch it a second time.
            entry[0].add_done_callback(self._finished)
        except BaseException:
            # Interrupted before the caller holds the entry: the fetch must not run on unseen.
            cancelled.set()
            raise
        return entry

    def _drop(self, key: K) -> None:
        future, cancelled = self._outstanding.pop(key)  # under self._lock
        cancelled.set()
        future.cancel()  # a fetch not started yet never starts
        self.dropped += 1
