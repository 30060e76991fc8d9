"""Queues for tasklets, with the signatures of the `queue` module.

Queue (FIFO), LifoQueue and PriorityQueue block only the calling tasklet
and work between tasklets of different OS threads.  They raise the
standard queue.Empty and queue.Full.  Blocked getters and putters are
served in the order they came (FIFO-fair): an item put while tasklets
wait in get() goes to the one that waited longest, a free slot to the
putter that waited longest.

No item is lost or doubled when a wait ends by a timeout, kill() or
throw(): a getter that was handed an item but dies before it returns
puts the item back at the head of the queue (where the next getter takes
it); a putter whose wait ends before its item was taken in has not put
it.  (A putter killed after its item was taken in, but before it ran
again, raises the exception although the item is in the queue.)
"""

import collections as _collections
import heapq as _heapq
import queue as _stdqueue

import stackless as _stackless

from ._sync import (_Waiter, _grant, _wait, _timeout_arg, _GRANTED,
                    _TIMEOUT_MARK)

__all__ = ["Queue", "LifoQueue", "PriorityQueue", "Empty", "Full",
           "ShutDown"]

Empty = _stdqueue.Empty
Full = _stdqueue.Full
ShutDown = _stdqueue.ShutDown

# Granted to the waiting getters and putters by shutdown().
_SHUTDOWN_MARK = object()

_atomic = _stackless.atomic


class Queue:
    """A FIFO queue like queue.Queue that blocks only the tasklet.

    maxsize <= 0 means no limit.  put(item, block=True, timeout=None)
    waits for a free slot (raising Full if not blocking or after
    `timeout` seconds), get(block=True, timeout=None) for an item
    (raising Empty).  task_done() and join() count the items as in
    queue.Queue.  shutdown() makes put() raise ShutDown, and get() once
    the queue is empty (at once with immediate=True).
    """

    def __init__(self, maxsize=0):
        self.maxsize = maxsize
        self._init(maxsize)
        self._getters = _collections.deque()
        self._putters = _collections.deque()   # waiter.value: the item
        self._joiners = _collections.deque()
        self.unfinished_tasks = 0
        self.is_shutdown = False

    # The storage; subclasses override these (as in queue.Queue), plus
    # _unget(), which puts back an item that a getter could not take.
    def _init(self, maxsize):
        self.queue = _collections.deque()

    def _qsize(self):
        return len(self.queue)

    def _put(self, item):
        self.queue.append(item)

    def _get(self):
        return self.queue.popleft()

    def _unget(self, item):
        self.queue.appendleft(item)

    def _full(self):
        return 0 < self.maxsize <= self._qsize()

    def _service(self):
        # Under atomic: give items to waiting getters and free slots to
        # waiting putters until neither can go on.
        getters, putters = self._getters, self._putters
        while True:
            progress = False
            while getters and self._qsize():
                waiter = getters.popleft()
                item = waiter.value = self._get()
                if _grant(waiter, item):
                    progress = True
                else:
                    self._unget(item)
            while putters and not self._full():
                waiter = putters.popleft()
                if waiter.channel.balance < 0 and waiter.state == 0:
                    self._put(waiter.value)
                    self.unfinished_tasks += 1
                    waiter.value = None
                    _grant(waiter)
                    progress = True
                else:
                    _grant(waiter)      # marks it cancelled
            if not progress:
                return

    def qsize(self):
        """The number of items in the queue."""
        return self._qsize()

    def empty(self):
        """True if the queue has no items."""
        return not self._qsize()

    def full(self):
        """True if the queue has maxsize items (never if maxsize <= 0)."""
        return self._full()

    def put(self, item, block=True, timeout=None):
        """Put item in the queue; see the class docstring."""
        timeout = _timeout_arg(timeout)
        if not block:
            timeout = 0.0
        with _atomic():
            if self.is_shutdown:
                raise ShutDown
            # After _service() a queue with room has no waiting putter.
            self._service()
            if not self._full():
                self._put(item)
                self.unfinished_tasks += 1
                self._service()
                return
            if timeout == 0:
                raise Full
            waiter = _Waiter(item)
            value = _wait(self._putters, waiter, timeout)
            if value is _TIMEOUT_MARK:
                raise Full
            if value is _SHUTDOWN_MARK:
                raise ShutDown

    def get(self, block=True, timeout=None):
        """Remove and return an item; see the class docstring."""
        timeout = _timeout_arg(timeout)
        if not block:
            timeout = 0.0
        with _atomic():
            # After _service() a queue with items has no waiting getter.
            self._service()
            if self._qsize():
                item = self._get()
                self._service()
                return item
            if self.is_shutdown:
                raise ShutDown
            if timeout == 0:
                raise Empty
            waiter = _Waiter()
            try:
                item = _wait(self._getters, waiter, timeout)
            except BaseException:
                if (waiter.state == _GRANTED
                        and waiter.value is not _SHUTDOWN_MARK):
                    # Handed an item we cannot return: it goes back.
                    self._unget(waiter.value)
                    self._service()
                raise
            if item is _TIMEOUT_MARK:
                raise Empty
            if item is _SHUTDOWN_MARK:
                raise ShutDown
            return item

    def put_nowait(self, item):
        """put(item, block=False)."""
        return self.put(item, False)

    def get_nowait(self):
        """get(block=False)."""
        return self.get(False)

    def task_done(self):
        """Mark one item taken by get() as processed (for join())."""
        with _atomic():
            if self.unfinished_tasks <= 0:
                raise ValueError("task_done() called too many times")
            self.unfinished_tasks -= 1
            if not self.unfinished_tasks:
                joiners = self._joiners
                while joiners:
                    _grant(joiners.popleft())

    def join(self):
        """Block until every item put has been marked task_done()."""
        with _atomic():
            if self.unfinished_tasks:
                _wait(self._joiners, _Waiter(), None)

    def shutdown(self, immediate=False):
        """Shut the queue down: put() raises ShutDown from now on, and
        get() once the queue is empty.

        The tasklets blocked in put() or get() raise ShutDown (a getter
        blocks only on an empty queue).  With immediate=True the items
        are dropped as well, so that get() raises at once;
        unfinished_tasks goes down by their number and join() returns
        when it is zero.  As queue.Queue.shutdown().
        """
        with _atomic():
            self.is_shutdown = True
            if immediate:
                while self._qsize():
                    self._get()
                    if self.unfinished_tasks > 0:
                        self.unfinished_tasks -= 1
                if not self.unfinished_tasks:
                    joiners = self._joiners
                    while joiners:
                        _grant(joiners.popleft())
            for waiters in (self._getters, self._putters):
                while waiters:
                    waiter = waiters.popleft()
                    waiter.value = _SHUTDOWN_MARK
                    _grant(waiter, _SHUTDOWN_MARK)

    def __repr__(self):
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"qsize={self._qsize()} maxsize={self.maxsize} "
                f"getters={len(self._getters)} "
                f"putters={len(self._putters)}>")


class LifoQueue(Queue):
    """A last-in first-out Queue (as queue.LifoQueue)."""

    def _init(self, maxsize):
        self.queue = []

    def _qsize(self):
        return len(self.queue)

    def _put(self, item):
        self.queue.append(item)

    def _get(self):
        return self.queue.pop()

    def _unget(self, item):
        self.queue.append(item)


class PriorityQueue(Queue):
    """A Queue that returns the smallest item first (as
    queue.PriorityQueue; entries are often (priority, data) tuples)."""

    def _init(self, maxsize):
        self.queue = []

    def _qsize(self):
        return len(self.queue)

    def _put(self, item):
        _heapq.heappush(self.queue, item)

    def _get(self):
        return _heapq.heappop(self.queue)

    def _unget(self, item):
        _heapq.heappush(self.queue, item)
