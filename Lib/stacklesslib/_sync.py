"""Locks and friends for tasklets, with the signatures of `threading`.

Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event and Barrier
block only the calling tasklet; the other tasklets of its thread go on
running.  They work between tasklets of different OS threads too.

All of them are FIFO-fair: blocked tasklets are served in the order in
which they blocked, and a release hands the lock (permit, notification)
directly to the first waiter, so that a tasklet that comes later cannot
take it first.

Timeouts (the `timeout` arguments, and stacklesslib.timeout()), kill()
and throw() may end any wait; they leave the object consistent: a lock
that was handed to a tasklet that dies before it returns from acquire()
is passed on to the next waiter (or released), a notification that a
dying tasklet got goes to the next waiter.

How it works: each blocked tasklet waits on a private channel (a
_Waiter) queued in the object.  Every change of an object's state runs
under stackless.atomic(), which keeps the GIL and the scheduler from
switching in the middle, so that the state is safe between threads.
"""

import collections as _collections
import threading as _threading

import stackless as _stackless

from ._hub import get_hub as _get_hub, _check_seconds

__all__ = ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
           "Event", "Barrier", "BrokenBarrierError"]

_atomic = _stackless.atomic
_getcurrent = _stackless.getcurrent

BrokenBarrierError = _threading.BrokenBarrierError

_WAITING, _GRANTED, _TIMEDOUT, _CANCELLED = range(4)
_TIMEOUT_MARK = object()


class _Waiter:
    """A tasklet blocked in a wait queue; granted at most once."""

    __slots__ = ("channel", "state", "value")

    def __init__(self, value=None):
        self.channel = _stackless.channel()
        self.channel.preference = 0     # the waker goes on running
        self.state = _WAITING
        self.value = value


def _grant(waiter, value=None):
    """Wake a waiter with value; False if it no longer waits.

    Must run under atomic().  A waiter that is WAITING but not blocked on
    its channel was pulled out by a throw, kill or timeout and is about
    to clean up: it is marked cancelled and skipped.
    """
    if waiter.state != _WAITING:
        return False
    if waiter.channel.balance >= 0:
        waiter.state = _CANCELLED
        return False
    waiter.state = _GRANTED
    waiter.channel.send(value)
    return True


def _expire(waiter):
    # A timer callback in the waiting tasklet's hub.
    with _atomic():
        if waiter.state == _WAITING and waiter.channel.balance < 0:
            waiter.state = _TIMEDOUT
            waiter.channel.send(_TIMEOUT_MARK)


def _timeout_arg(timeout):
    """None for no limit, else a non-negative float."""
    if timeout is None:
        return None
    timeout = _check_seconds(timeout, "timeout")
    if timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return timeout


def _wait(queue, waiter, timeout):
    """Block on waiter, queued in queue; must be called under atomic().

    Returns the granted value, or _TIMEOUT_MARK if `timeout` (None or
    seconds) passed.  On an exception (kill, throw, outer timeout) the
    waiter is taken out of the queue; if it had been granted already
    its state stays _GRANTED so that the caller's handler can undo the
    grant, and the exception propagates.
    """
    queue.append(waiter)
    timer = None
    if timeout is not None:
        timer = _get_hub().call_later(timeout, _expire, waiter)
    try:
        value = waiter.channel.receive()
    except BaseException:
        if waiter.state == _WAITING:
            waiter.state = _CANCELLED
        raise
    finally:
        if timer is not None:
            timer.cancel()
        try:
            queue.remove(waiter)
        except ValueError:
            pass
    if waiter.state == _TIMEDOUT:
        return _TIMEOUT_MARK
    return value


def _wait_timeout(timeout):
    """None for no limit, else seconds; negative means no wait at all
    (as in threading's Condition, Semaphore and Event)."""
    if timeout is None:
        return None
    timeout = _check_seconds(timeout, "timeout")
    return timeout if timeout > 0 else 0.0


def _lock_timeout(blocking, timeout):
    # The argument rules of threading.Lock.acquire(); None: no limit.
    if not blocking:
        if timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking "
                             "call")
        return 0.0
    if timeout == -1:
        return None
    timeout = _check_seconds(timeout, "timeout")
    if timeout < 0:
        raise ValueError("timeout value must be positive")
    return timeout


class Lock:
    """A lock like threading.Lock that blocks only the tasklet.

    acquire(blocking=True, timeout=-1) returns True when it got the lock,
    False if blocking is false and the lock is held, or if `timeout`
    seconds passed.  Any tasklet (of any thread) may release() it.
    Waiters get the lock in the order they came.
    """

    __slots__ = ("_locked", "_waiters", "__weakref__")

    def __init__(self):
        self._locked = False
        self._waiters = _collections.deque()

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock; see the class docstring."""
        timeout = _lock_timeout(blocking, timeout)
        with _atomic():
            if not self._locked:
                self._locked = True
                return True
            if timeout == 0:
                return False
            waiter = _Waiter()
            try:
                value = _wait(self._waiters, waiter, timeout)
            except BaseException:
                if waiter.state == _GRANTED:
                    self._release()     # handed to us: pass it on
                raise
            return value is not _TIMEOUT_MARK

    def _release(self):
        # Under atomic: hand the lock to the first waiter, or free it.
        waiters = self._waiters
        while waiters:
            if _grant(waiters.popleft()):
                return
        self._locked = False

    def release(self):
        """Release the lock; RuntimeError if it is not locked."""
        with _atomic():
            if not self._locked:
                raise RuntimeError("release unlocked lock")
            self._release()

    def locked(self):
        """True if the lock is held."""
        return self._locked

    __enter__ = acquire

    def __exit__(self, *exc_info):
        self.release()

    def _at_fork_reinit(self):
        self.__init__()

    def __repr__(self):
        state = "locked" if self._locked else "unlocked"
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"{state} waiters={len(self._waiters)}>")


class RLock:
    """A reentrant lock like threading.RLock, owned by a tasklet.

    The tasklet that holds it may acquire it again; it is free when that
    tasklet has released it as often as it acquired it.  release() by
    another tasklet raises RuntimeError.
    """

    __slots__ = ("_owner", "_count", "_waiters", "__weakref__")

    def __init__(self):
        self._owner = None
        self._count = 0
        self._waiters = _collections.deque()

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock (again); as Lock.acquire()."""
        timeout = _lock_timeout(blocking, timeout)
        me = _getcurrent()
        with _atomic():
            if self._owner is me:
                self._count += 1
                return True
            if self._owner is None:
                self._owner = me
                self._count = 1
                return True
            if timeout == 0:
                return False
            waiter = _Waiter(me)
            try:
                value = _wait(self._waiters, waiter, timeout)
            except BaseException:
                if waiter.state == _GRANTED:
                    self._count = 0
                    self._pass_on()
                raise
            return value is not _TIMEOUT_MARK

    def _pass_on(self):
        # Under atomic, the lock free of its owner: give it to the next.
        waiters = self._waiters
        while waiters:
            waiter = waiters[0]
            if waiter.state == _WAITING and waiter.channel.balance < 0:
                waiters.popleft()
                self._owner = waiter.value
                self._count = 1
                _grant(waiter)
                return
            waiters.popleft()
            if waiter.state == _WAITING:
                waiter.state = _CANCELLED
        self._owner = None
        self._count = 0

    def release(self):
        """Release once; RuntimeError if the tasklet does not hold it."""
        with _atomic():
            if self._owner is not _getcurrent():
                raise RuntimeError("cannot release un-acquired lock")
            self._count -= 1
            if not self._count:
                self._pass_on()

    __enter__ = acquire

    def __exit__(self, *exc_info):
        self.release()

    def locked(self):
        """True if some tasklet holds the lock."""
        return self._owner is not None

    # For Condition.
    def _is_owned(self):
        return self._owner is _getcurrent()

    def _release_save(self):
        with _atomic():
            if self._owner is not _getcurrent():
                raise RuntimeError("cannot release un-acquired lock")
            count = self._count
            self._count = 0
            self._pass_on()
            return count

    def _acquire_restore(self, count):
        self.acquire()
        self._count = count

    def _at_fork_reinit(self):
        self.__init__()

    def __repr__(self):
        owner = self._owner
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"{'locked' if owner is not None else 'unlocked'} "
                f"owner={owner!r} count={self._count}>")


def _acquire_uninterruptibly(acquire):
    # Reacquire a lock whatever happens meanwhile; raise the first
    # exception that interrupted it afterwards.
    error = None
    while True:
        try:
            acquire()
            break
        except BaseException as exc:
            if error is None:
                error = exc
    if error is not None:
        try:
            raise error
        finally:
            error = None


class Condition:
    """A condition variable like threading.Condition, for tasklets.

    `lock` is a Lock or RLock of stacklesslib (default: a new RLock).
    wait(timeout=None) releases the lock, blocks until notify() or
    notify_all() (in the order the tasklets waited), reacquires the lock
    and returns True, or False if `timeout` passed.  The lock is
    reacquired also when the wait ends by an exception (a kill).
    """

    def __init__(self, lock=None):
        if lock is None:
            lock = RLock()
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release
        self._waiters = _collections.deque()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc_info):
        return self._lock.__exit__(*exc_info)

    def _is_owned(self):
        try:
            return self._lock._is_owned()
        except AttributeError:
            pass
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _release_save(self):
        try:
            return self._lock._release_save()
        except AttributeError:
            self._lock.release()
            return None

    def _acquire_restore(self, saved):
        try:
            restore = self._lock._acquire_restore
        except AttributeError:
            _acquire_uninterruptibly(self._lock.acquire)
        else:
            _acquire_uninterruptibly(lambda: restore(saved))

    def wait(self, timeout=None):
        """Release the lock, wait for a notification, reacquire."""
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        timeout = _wait_timeout(timeout)
        waiter = _Waiter()
        with _atomic():
            saved = self._release_save()
            try:
                if timeout == 0:
                    return False
                try:
                    value = _wait(self._waiters, waiter, timeout)
                except BaseException:
                    if waiter.state == _GRANTED:
                        self._notify(1)    # pass the notification on
                    raise
                return value is not _TIMEOUT_MARK
            finally:
                self._acquire_restore(saved)

    def wait_for(self, predicate, timeout=None):
        """Wait until predicate() is true; return its last value."""
        endtime = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = _get_hub().time() + waittime
                else:
                    waittime = endtime - _get_hub().time()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def _notify(self, n):
        waiters = self._waiters
        while n > 0 and waiters:
            if _grant(waiters.popleft()):
                n -= 1

    def notify(self, n=1):
        """Wake up to n waiting tasklets (the earliest first)."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        with _atomic():
            self._notify(n)

    def notify_all(self):
        """Wake all waiting tasklets."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        with _atomic():
            self._notify(len(self._waiters))

    def __repr__(self):
        return f"<Condition({self._lock!r}, {len(self._waiters)})>"


class Semaphore:
    """A semaphore like threading.Semaphore that blocks only the tasklet.

    acquire(blocking=True, timeout=None) takes a permit, waiting for one
    if none is left; release(n=1) gives n back, to the waiters first, in
    the order they came.
    """

    def __init__(self, value=1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._waiters = _collections.deque()

    def acquire(self, blocking=True, timeout=None):
        """Take a permit; False if not blocking or timed out."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking "
                             "acquire")
        timeout = _wait_timeout(timeout)
        if not blocking:
            timeout = 0.0
        with _atomic():
            if self._value > 0:
                self._value -= 1
                return True
            if timeout == 0:
                return False
            waiter = _Waiter()
            try:
                value = _wait(self._waiters, waiter, timeout)
            except BaseException:
                if waiter.state == _GRANTED:
                    self._release(1)    # give the permit back
                raise
            return value is not _TIMEOUT_MARK

    __enter__ = acquire

    def _release(self, n):
        waiters = self._waiters
        while n and waiters:
            if _grant(waiters.popleft()):
                n -= 1
        self._value += n

    def release(self, n=1):
        """Give n permits back (waking up to n waiters)."""
        if n < 1:
            raise ValueError("n must be one or more")
        with _atomic():
            self._release(n)

    def __exit__(self, *exc_info):
        self.release()

    def __repr__(self):
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"value={self._value} waiters={len(self._waiters)}>")


class BoundedSemaphore(Semaphore):
    """A Semaphore whose release() past its initial value is an error
    (ValueError), as threading.BoundedSemaphore."""

    def __init__(self, value=1):
        super().__init__(value)
        self._initial_value = value

    def release(self, n=1):
        """Give n permits back; ValueError if that exceeds the initial
        value."""
        if n < 1:
            raise ValueError("n must be one or more")
        with _atomic():
            if self._value + n > self._initial_value:
                raise ValueError("Semaphore released too many times")
            self._release(n)


class Event:
    """An event like threading.Event: wait() blocks the tasklet until
    set() (which wakes all waiters); clear() resets it."""

    def __init__(self):
        self._flag = False
        self._waiters = _collections.deque()

    def is_set(self):
        """True if the flag is set."""
        return self._flag

    def set(self):
        """Set the flag and wake every waiting tasklet."""
        with _atomic():
            self._flag = True
            waiters = self._waiters
            while waiters:
                _grant(waiters.popleft())

    def clear(self):
        """Reset the flag."""
        self._flag = False

    def wait(self, timeout=None):
        """Block until the flag is set; return the flag (False on a
        timeout)."""
        timeout = _wait_timeout(timeout)
        with _atomic():
            if self._flag:
                return True
            if timeout == 0:
                return False
            waiter = _Waiter()
            value = _wait(self._waiters, waiter, timeout)
            if value is _TIMEOUT_MARK:
                return self._flag
            return True

    def _at_fork_reinit(self):
        self.__init__()

    def __repr__(self):
        return (f"<{type(self).__module__}.{type(self).__qualname__} "
                f"{'set' if self._flag else 'unset'}>")


class Barrier:
    """A barrier like threading.Barrier for `parties` tasklets.

    wait(timeout=None) blocks until `parties` tasklets wait, then all
    return, each with a different index 0..parties-1; `action` (if any)
    is called by one of them first.  A timeout, a kill or an exception
    of the action breaks the barrier: the waiters and later wait() calls
    raise BrokenBarrierError until reset().  abort() breaks it at once.
    """

    def __init__(self, parties, action=None, timeout=None):
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._cond = Condition(Lock())
        self._action = action
        self._timeout = timeout
        self._parties = parties
        self._state = 0     # 0 filling, 1 draining, -1 resetting, -2 broken
        self._count = 0

    def wait(self, timeout=None):
        """Wait for the barrier; return this tasklet's index."""
        if timeout is None:
            timeout = self._timeout
        with self._cond:
            self._enter()
            index = self._count
            self._count += 1
            try:
                if index + 1 == self._parties:
                    self._release()
                else:
                    self._wait(timeout)
                return index
            finally:
                self._count -= 1
                self._exit()

    def _enter(self):
        while self._state in (-1, 1):
            self._cond.wait()
        if self._state < 0:
            raise BrokenBarrierError
        assert self._state == 0

    def _release(self):
        try:
            if self._action:
                self._action()
            self._state = 1
            self._cond.notify_all()
        except BaseException:
            self._break()
            raise

    def _wait(self, timeout):
        try:
            done = self._cond.wait_for(lambda: self._state != 0, timeout)
        except BaseException:
            self._break()       # a kill: the others must not wait forever
            raise
        if not done:
            self._break()
            raise BrokenBarrierError
        if self._state < 0:
            raise BrokenBarrierError
        assert self._state == 1

    def _exit(self):
        if self._count == 0:
            if self._state in (-1, 1):
                self._state = 0
                self._cond.notify_all()

    def reset(self):
        """Return the barrier to its empty state; its waiters get
        BrokenBarrierError."""
        with self._cond:
            if self._count > 0:
                if self._state == 0:
                    self._state = -1
                elif self._state == -2:
                    self._state = -1
            else:
                self._state = 0
            self._cond.notify_all()

    def abort(self):
        """Break the barrier: waiters and later wait() calls raise
        BrokenBarrierError."""
        with self._cond:
            self._break()

    def _break(self):
        self._state = -2
        self._cond.notify_all()

    @property
    def parties(self):
        """The number of tasklets the barrier waits for."""
        return self._parties

    @property
    def n_waiting(self):
        """The number of tasklets waiting now."""
        if self._state == 0:
            return self._count
        return 0

    @property
    def broken(self):
        """True if the barrier is broken."""
        return self._state == -2

    def __repr__(self):
        if self.broken:
            return f"<{type(self).__qualname__} broken>"
        return (f"<{type(self).__qualname__} waiters={self.n_waiting}/"
                f"{self.parties}>")
