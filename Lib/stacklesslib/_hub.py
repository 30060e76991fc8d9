"""The hub of a thread: timers and file-descriptor waits for tasklets.

Every OS thread that uses stacklesslib's blocking calls gets a hub
(get_hub()): a tasklet of that thread that runs timers and wakes the
tasklets that wait for a file descriptor.  It is part of the scheduler's
cycle only while it has something to do:

- When timers or fd waits are pending, the hub is in the runqueue.  Each
  time it runs it runs the timers that are due, polls the file
  descriptors, makes the tasklets whose fds are ready runnable, and
  yields (stackless.schedule()).  When it is the only runnable tasklet
  of its thread it waits in epoll (selectors.DefaultSelector) with the
  GIL released, until the nearest deadline or until an fd is ready: no
  polling loop, no CPU while idle.  Another thread that makes a tasklet
  of this thread runnable wakes it at once through the thread's wakeup
  fd (stackless.set_thread_wakeup_fd()).
- When nothing is pending it leaves the runqueue (schedule_remove()), so
  that the scheduler's deadlock detection works as without
  it; registering a timer or an fd wait puts it back.

A consequence: stackless.run() returns only when no tasklet is runnable
and no timer or fd wait is pending, and a main tasklet that blocks on a
channel while timers or I/O are pending waits instead of raising
"Deadlock".

Tasklets wait for the hub by blocking on a channel (class Waiter): a
tasklet blocked there is "blocked" for stackless, so that
stacklesslib.timeout(), kill() and throw() pull it out of its wait, and
the wait cleans up in its ``finally``.

Timer callbacks run in the hub tasklet of the thread that registered
them.  They must not block (the hub has block_trap set: a channel
operation that would block raises RuntimeError in the callback).  An
exception escaping a callback is reported (Hub.handle_error) and the hub
goes on; a KeyboardInterrupt, SystemExit or other BaseException that is
no Exception -- from a callback or from a signal handler that runs while
the hub waits in epoll -- is raised in the thread's main tasklet.

The internals here (get_hub(), Hub.call_at(), Hub.wait_fd(),
Hub.cancel_wait(), Hub.call_soon_threadsafe(), Waiter) are meant for the
other parts of stacklesslib; user code uses the functions of the
stacklesslib package.
"""

import errno as _errno
import heapq as _heapq
import itertools as _itertools
import math as _math
import os as _os
import queue as _queue
import selectors as _selectors
import sys as _sys
import threading as _threading
import time as _time
import traceback as _traceback
import weakref as _weakref
from collections import deque as _collections_deque

import stackless as _stackless

__all__ = ["Hub", "TimerHandle", "Waiter", "get_hub", "monotonic",
           "EVENT_READ", "EVENT_WRITE", "fileno_of"]

#: The clock of the deadlines (call_at(), Hub.time()).
monotonic = _time.monotonic

EVENT_READ = _selectors.EVENT_READ
EVENT_WRITE = _selectors.EVENT_WRITE

_atomic = _stackless.atomic


def fileno_of(fd_or_fileobj):
    """Return the file descriptor of an int or an object with fileno().

    Raises TypeError for other objects and ValueError for a negative fd.
    """
    if isinstance(fd_or_fileobj, int):
        fd = fd_or_fileobj
    else:
        try:
            fileno = fd_or_fileobj.fileno
        except AttributeError:
            raise TypeError("expected a file descriptor (int) or an object "
                            "with a fileno() method, not "
                            f"{type(fd_or_fileobj).__name__!r}") from None
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"invalid file descriptor: {fd}")
    return fd


def _check_seconds(seconds, what="seconds"):
    """Return seconds as a float; TypeError or ValueError for bad input."""
    if not isinstance(seconds, (int, float)):
        tp = type(seconds)
        if not (hasattr(tp, "__float__") or hasattr(tp, "__index__")):
            raise TypeError(f"{what} must be a number, not "
                            f"{tp.__name__!r}")
    try:
        seconds = float(seconds)
    except OverflowError:
        seconds = _math.inf if seconds > 0 else -_math.inf
    if _math.isnan(seconds):
        raise ValueError(f"{what} must not be NaN")
    return seconds


class Waiter(_stackless.channel):
    """A one-shot rendezvous between a waiting tasklet and its waker.

    The tasklet calls wait(), which blocks it on the waiter, a private
    channel (preference 0: the waker goes on running).  wake(value)
    makes it return value; throw(exc) makes it raise exc.  Either does
    nothing if the tasklet no longer waits (it was woken already, timed
    out, was killed): wake() and throw() return whether they delivered.
    The waker may be in another thread.
    """

    # timer: the TimerHandle of a timeout on the wait, or None.
    __slots__ = ("timer",)

    def __init__(self):
        self.preference = 0
        self.timer = None

    @property
    def channel(self):
        """The channel the tasklet blocks on: the waiter itself."""
        return self

    def wait(self):
        """Block the calling tasklet until wake() or throw()."""
        return self.receive()

    @property
    def waiting(self):
        """True while a tasklet blocks in wait()."""
        return self.balance < 0

    def wake(self, value=None):
        """Make the waiting tasklet runnable; its wait() returns value."""
        with _atomic():
            if self.balance < 0:
                self.send(value)
                return True
        return False

    def throw(self, exc):
        """Make the waiting tasklet runnable; its wait() raises exc."""
        with _atomic():
            if self.balance < 0:
                self.send_throw(exc)
                return True
        return False


def _wake_now(waiter):
    """A timer's callback (in the hub): wake the tasklet that waits on
    waiter, and run it now rather than last in the runqueue (timer
    precision).  When it blocks or schedules, the hub goes on."""
    if waiter.balance < 0:
        t = waiter.queue
        waiter.send(None)
        t.run()


class TimerHandle:
    """A call scheduled by call_later() or call_at(): cancel() it.

    ``when`` is the deadline on the monotonic() clock.
    """

    __slots__ = {
        "when": "The deadline, on the time.monotonic() clock.",
        "_func": None, "_args": None, "_hub": None, "_state": None,
    }

    _PENDING, _CANCELLED, _DONE = 0, 1, 2

    def __init__(self, hub, when, func, args):
        self.when = when
        self._func = func
        self._args = args
        self._hub = hub
        self._state = self._PENDING

    def cancel(self):
        """Cancel the call if it has not run yet; later calls do nothing.

        Returns True if this call cancelled it.
        """
        if self._state != self._PENDING:
            return False
        self._state = self._CANCELLED
        self._func = self._args = None
        self._hub._timer_cancelled()
        return True

    def cancelled(self):
        """True if cancel() stopped the call before it ran."""
        return self._state == self._CANCELLED

    def __repr__(self):
        state = ("pending", "cancelled", "done")[self._state]
        return (f"<TimerHandle {state} when={self.when:.6f} "
                f"func={self._func!r}>")


def _without(waiters, waiter):
    return tuple([w for w in waiters if w is not waiter])


class _FdEntry:
    __slots__ = ("readers", "writers", "events", "owned")

    def __init__(self):
        # Tuples: most fds have one waiter, and an empty tuple costs
        # nothing (lists would cost some 150 bytes per idle fd).
        self.readers = ()
        self.writers = ()
        self.events = 0         # registered with the selector
        self.owned = False      # see Hub.wait_fd()


_TaskletExit = _stackless.TaskletExit


def _nothing():
    pass


class Hub:
    """The hub of one OS thread; get_hub() returns the calling thread's.

    Use it from its own thread, except call_soon_threadsafe() and
    cancel_wait(), which any thread may call.
    """

    def __init__(self):
        self.thread_id = _threading.get_ident()
        self.selector = _selectors.DefaultSelector()
        self._timers = []               # heap of (when, seq, TimerHandle)
        self._seq = _itertools.count()
        self._ntimers = 0               # pending, not cancelled
        self._ncancelled = 0            # cancelled, still in the heap
        self._fds = {}                  # fd -> _FdEntry
        self._in_timers = False         # in _run_due_timers()
        self._nwaiters = 0
        self._threadsafe = _collections_deque()
        self._rfd, self._wfd = _os.pipe()
        _os.set_blocking(self._rfd, False)
        _os.set_blocking(self._wfd, False)
        self.selector.register(self._rfd, EVENT_READ)
        self._idle = True
        self._tasklet = self._new_tasklet()
        _stackless.set_thread_wakeup_fd(self._wfd)
        self._finalizer = _weakref.finalize(
            self, _close_hub, self.selector, self._rfd, self._wfd,
            self.thread_id)

    # --- the hub tasklet ---------------------------------------------------

    def _new_tasklet(self):
        # Paused with its frame: insert() may start it from any thread.
        return _stackless.tasklet(self._run, ())

    @property
    def tasklet(self):
        """The hub's tasklet (the one that runs the callbacks)."""
        return self._tasklet

    def _ensure_running(self):
        # Called when something becomes pending, under the GIL in the
        # hub's thread or atomically in another.
        if self._idle:
            self._idle = False
            t = self._tasklet
            if not t.alive:
                if _threading.get_ident() != self.thread_id:
                    # Only the hub's thread can make a new one; wake it.
                    self._idle = True
                    self._write_wakeup()
                    return
                t = self._tasklet = self._new_tasklet()
            t.insert()

    def _write_wakeup(self):
        try:
            _os.write(self._wfd, b"\0")
        except OSError:
            pass

    def _pending(self):
        return self._ntimers or self._nwaiters or self._threadsafe

    def _run(self):
        me = _stackless.getcurrent()
        me.set_atomic(True)
        me.block_trap = True
        while True:
            try:
                self._loop()
            except _TaskletExit:
                # Killed (the thread or the interpreter ends): a later
                # registration starts a new hub tasklet.
                self._idle = True
                raise
            except BaseException as exc:
                self._deliver_to_main(exc)

    def _deliver_to_main(self, exc):
        main = _stackless.getmain()
        try:
            main.throw(exc)
        except _TaskletExit:
            raise
        except BaseException as err:
            self.handle_error(err, "delivering an exception to main")

    def _loop(self):
        # (self.selector, not a bound method kept here: a fork replaces
        # it.)
        getruncount = _stackless.getruncount
        while True:
            if self._threadsafe:
                self._run_threadsafe()
            self._run_due_timers()
            if not self._pending():
                self._idle = True
                try:
                    _stackless.schedule_remove()
                except RuntimeError:
                    # "Deadlock": nothing pending, nothing runnable, main
                    # blocked.  It is main's deadlock, as without a hub.
                    self._idle = False
                    raise
                continue
            if getruncount() > 1:
                if self._nwaiters:
                    self._dispatch(self.selector.select(0))
            else:
                # Signal handlers and pending calls (values posted by
                # threads without the GIL) may make tasklets runnable.
                self._handle_pending()
                if getruncount() > 1:
                    timeout = 0
                elif self._ntimers:
                    timeout = self._timers[0][0] - monotonic()
                    timeout = 0 if timeout < 0 else min(timeout, 86400.0)
                else:
                    timeout = None
                self._dispatch(self.selector.select(timeout))
                if self._threadsafe:
                    self._run_threadsafe()
                self._run_due_timers()
            _stackless.schedule()

    def _handle_pending(self):
        # The hub is atomic: the eval loop does not run the signal
        # handlers and pending calls in it.  A signal that came in since
        # the last check (while epoll returned for another reason, say)
        # would wait for the next wake-up; handle it now, in a call with
        # atomic off (the call's RESUME runs what is pending).
        me = _stackless.getcurrent()
        me.set_atomic(False)
        try:
            _nothing()
        finally:
            me.set_atomic(True)

    def _dispatch(self, events):
        for key, mask in events:
            fd = key.fd
            if fd == self._rfd:
                self._drain_wakeup()
                continue
            entry = self._fds.get(fd)
            if entry is None:
                continue
            woken = []
            unwaited = False        # ready for what nobody waits for
            if mask & EVENT_READ:
                if entry.readers:
                    woken += entry.readers
                    entry.readers = ()
                else:
                    unwaited = True
            if mask & EVENT_WRITE:
                if entry.writers:
                    woken += entry.writers
                    entry.writers = ()
                else:
                    unwaited = True
            self._nwaiters -= len(woken)
            if unwaited or not entry.owned:
                # (An owned fd stays registered while its owner is
                # between two waits, unless it is ready meanwhile.)
                self._update_fd(fd, entry, trim=True)
            for waiter in woken:
                # waiter.wake(mask); the hub is atomic already.
                if waiter.balance < 0:
                    waiter.send(mask)

    def _drain_wakeup(self):
        try:
            while _os.read(self._rfd, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _run_threadsafe(self):
        calls = self._threadsafe
        for _ in range(len(calls)):
            func, args = calls.popleft()
            self._call(func, args)

    def _call(self, func, args):
        me = _stackless.getcurrent()
        me.set_atomic(False)
        try:
            func(*args)
        except Exception as exc:
            self.handle_error(exc, f"callback {func!r}")
        finally:
            me.set_atomic(True)

    def handle_error(self, exc, context):
        """Report an exception that escaped a callback, then go on.

        Prints the traceback to sys.stderr; replace the method on a hub
        to do otherwise.
        """
        try:
            print(f"stacklesslib: exception in {context}:", file=_sys.stderr)
            _traceback.print_exception(exc, file=_sys.stderr)
        except Exception:
            pass

    # --- timers --------------------------------------------------------------

    def time(self):
        """The hub's clock: time.monotonic()."""
        return monotonic()

    def call_at(self, when, func, *args):
        """Call func(*args) in the hub at monotonic() time `when`.

        Returns a TimerHandle.  Calls due at the same time run in the
        order they were registered.
        """
        when = _check_seconds(when, "when")
        if not callable(func):
            raise TypeError("func must be callable")
        handle = TimerHandle(self, when, func, args)
        _heapq.heappush(self._timers, (when, next(self._seq), handle))
        self._ntimers += 1
        self._ensure_running()
        return handle

    def call_later(self, delay, func, *args):
        """Call func(*args) in the hub after `delay` seconds.

        A delay of 0 or less runs it at the hub's next turn.
        """
        delay = _check_seconds(delay, "delay")
        return self.call_at(monotonic() + delay, func, *args)

    def call_soon_threadsafe(self, func, *args):
        """Call func(*args) in the hub's thread at its next turn.

        Any thread may call this; the hub wakes up if it waits.
        """
        self._threadsafe.append((func, args))
        if _threading.get_ident() == self.thread_id:
            self._ensure_running()
            return
        with _atomic():
            # No other thread runs in between: the hub is either idle
            # (paused) and inserting it wakes its thread, or it runs or
            # waits in epoll and the byte wakes it.
            idle = self._idle
            if idle:
                self._ensure_running()
        if not idle:
            self._write_wakeup()

    def _timer_cancelled(self):
        self._ntimers -= 1
        self._ncancelled += 1
        timers = self._timers
        if self._ntimers == 0:
            # Only cancelled ones are left: they go at once, so that an
            # idle hub holds nothing.
            timers.clear()
            self._ncancelled = 0
        elif self._ncancelled > 64 and self._ncancelled * 2 > len(timers):
            timers[:] = [e for e in timers
                         if e[2]._state == TimerHandle._PENDING]
            _heapq.heapify(timers)
            self._ncancelled = 0

    def _catch_up(self, now):
        """Let the hub run now if a timer of its is due.

        Called by a tasklet about to block (sleep()): the hub's turn may
        be a whole runqueue away (100,000 tasklets starting at once), and
        a timer must not fire that late.  The hub goes in the runqueue
        right before the caller and runs; the caller goes on when the
        hub schedules, the order of the others unchanged.
        """
        timers = self._timers
        if not timers or timers[0][0] > now or self._in_timers:
            return
        t = self._tasklet
        cur = _stackless.getcurrent()
        if (cur is t or cur.atomic or not t.alive or t.blocked
                or t.thread_id != cur.thread_id):
            return
        if t.scheduled:
            t.remove()
        self._idle = False
        t.run()

    def _run_due_timers(self):
        timers = self._timers
        if not timers:
            return
        self._in_timers = True
        try:
            self._run_due_timers_now()
        finally:
            self._in_timers = False

    def _run_due_timers_now(self):
        timers = self._timers
        now = monotonic()
        due = []
        while timers and timers[0][0] <= now:
            entry = _heapq.heappop(timers)
            if entry[2]._state == TimerHandle._CANCELLED:
                self._ncancelled -= 1
                continue
            due.append(entry)
        # Timers the callbacks register run at the next turn at the
        # earliest, so that a callback that re-registers itself with no
        # delay cannot starve the others.
        for i, entry in enumerate(due):
            handle = entry[2]
            if handle._state != TimerHandle._PENDING:
                self._ncancelled -= 1   # by an earlier callback
                continue
            handle._state = TimerHandle._DONE
            self._ntimers -= 1
            func, args = handle._func, handle._args
            handle._func = handle._args = None
            try:
                self._call(func, args)
            except BaseException:
                # KeyboardInterrupt and the like go to main; the timers
                # not yet run stay due.
                for e in due[i + 1:]:
                    _heapq.heappush(timers, e)
                raise

    # --- file descriptors ----------------------------------------------------

    def wait_fd(self, fd, events, timeout=None, owner=None):
        """Block the calling tasklet until fd is ready for `events`.

        events is EVENT_READ, EVENT_WRITE or both; fd an int or an object
        with fileno().  Returns the events that are ready (on an error or
        hang-up of the fd both are reported, so that the caller tries
        its operation and gets the error).  Raises TimeoutError after
        `timeout` seconds (None: no limit), and what cancel_wait()
        gives.  Several tasklets may wait on one fd.

        owner, if given, is the object that owns fd (a socket of
        stacklesslib.socket): it has a writable attribute _hub_entry and
        calls cancel_wait_all(fd) before it closes or detaches fd.  The
        hub then leaves fd registered with epoll between the owner's
        waits, which saves two system calls per wait.  A registration
        made for another owner, or for none, is made anew: the fd may
        have been closed and its number reused since.
        """
        fd = fileno_of(fd)
        if not events or events & ~(EVENT_READ | EVENT_WRITE):
            raise ValueError(f"invalid events: {events!r}")
        if timeout is not None:
            timeout = _check_seconds(timeout, "timeout")
        waiter = self._fd_wait_begin(fd, events, timeout, owner)
        try:
            mask = waiter.receive()     # waiter.wait(), a frame less
        except BaseException:
            # A timeout, cancel_wait(), a kill...
            self._fd_wait_abort(fd, waiter)
            raise
        # Woken by _dispatch(), which took the waiter out.
        if waiter.timer is not None:
            waiter.timer.cancel()
        return mask

    # wait_fd() in two halves, for callers that block on the waiter in
    # their own frame (stacklesslib.socket: a tasklet blocked in a
    # socket read is two frames deep, not three).  fd, events and
    # timeout are checked already.

    def _fd_wait_begin(self, fd, events, timeout, owner):
        # Queue a waiter on fd (registered with epoll) and arm its
        # timeout; the caller blocks in waiter.receive().
        if _stackless.getcurrent() is self._tasklet:
            raise RuntimeError("the hub cannot wait for a file descriptor")
        waiter = Waiter()
        entry = self._fds.get(fd)
        if (entry is not None and entry.owned
                and not (entry.readers or entry.writers)
                and (owner is None or owner._hub_entry is not entry)):
            # Kept registered for an owner that may be gone (a socket
            # collected without close()); its fd number may be another
            # file's now.
            entry.owned = False
            self._update_fd(fd, entry, trim=True)
            entry = None
        if entry is None:
            entry = self._fds[fd] = _FdEntry()
            if owner is not None:
                entry.owned = True
                owner._hub_entry = entry
        if events & EVENT_READ:
            entry.readers += (waiter,)
        if events & EVENT_WRITE:
            entry.writers += (waiter,)
        if events & ~entry.events:
            try:
                self._update_fd(fd, entry)
            except BaseException:
                self._remove_waiter(fd, waiter)
                raise
        self._nwaiters += 1
        if self._idle:
            self._ensure_running()
        if timeout is not None:
            waiter.timer = self.call_later(
                timeout, waiter.throw,
                TimeoutError("timed out"))
        return waiter

    def _fd_wait_abort(self, fd, waiter):
        # The wait ended by an exception: take the waiter out.
        if waiter.timer is not None:
            waiter.timer.cancel()
        if self._remove_waiter(fd, waiter):
            self._nwaiters -= 1

    def _remove_waiter(self, fd, waiter):
        entry = self._fds.get(fd)
        if entry is None:
            return False
        found = False
        if waiter in entry.readers:
            entry.readers = _without(entry.readers, waiter)
            found = True
        if waiter in entry.writers:
            entry.writers = _without(entry.writers, waiter)
            found = True
        if found:
            try:
                self._update_fd(fd, entry)
            except OSError:
                pass
        return found

    def _update_fd(self, fd, entry, trim=False):
        # Register with the selector the events someone waits for; an
        # owned fd keeps what it has registered, unless trim is set.
        events = ((EVENT_READ if entry.readers else 0)
                  | (EVENT_WRITE if entry.writers else 0))
        if entry.owned and not trim:
            events |= entry.events
        if events == entry.events:
            if not events:
                del self._fds[fd]
            return
        sel = self.selector
        if not events:
            del self._fds[fd]
            entry.events = 0
            try:
                sel.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass            # closed under us: epoll dropped it
            return
        if entry.events:
            try:
                sel.modify(fd, events)
            except (KeyError, OSError):
                # The fd was closed and its number reused.
                try:
                    sel.unregister(fd)
                except (KeyError, ValueError, OSError):
                    pass
                entry.events = 0
                sel.register(fd, events)
        else:
            try:
                sel.register(fd, events)
            except KeyError:
                sel.unregister(fd)
                sel.register(fd, events)
        entry.events = events

    def cancel_wait(self, fd, exc=None):
        """Wake every tasklet that waits on fd in this hub with an error.

        exc is the exception they raise (by default an OSError EBADF,
        "Bad file descriptor", a new one for each).  Call it before you
        close an fd that tasklets may wait on.  Any thread may call it.
        Returns the number of tasklets woken.
        """
        fd = fileno_of(fd)
        with _atomic():
            entry = self._fds.get(fd)
            if entry is None:
                return 0
            waiters = []
            for waiter in entry.readers + entry.writers:
                if waiter not in waiters:
                    waiters.append(waiter)
            entry.readers = ()
            entry.writers = ()
            entry.owned = False         # it is being closed
            self._nwaiters -= len(waiters)
            self._update_fd(fd, entry)
            n = 0
            for waiter in waiters:
                e = exc
                if e is None:
                    e = OSError(_errno.EBADF, _os.strerror(_errno.EBADF))
                n += waiter.throw(e)
        return n

    def close_fd(self, fd):
        """cancel_wait(fd) in every hub, then os.close(fd)."""
        fd = fileno_of(fd)
        cancel_wait_all(fd)
        _os.close(fd)

    def _reinit_after_fork(self):
        # In a child process: the epoll instance and the pipe are shared
        # with the parent; make new ones, with the same registrations.
        old_selector, old_rfd, old_wfd = self.selector, self._rfd, self._wfd
        self._finalizer.detach()
        self.thread_id = _threading.get_ident()
        self.selector = _selectors.DefaultSelector()
        self._rfd, self._wfd = _os.pipe()
        _os.set_blocking(self._rfd, False)
        _os.set_blocking(self._wfd, False)
        self.selector.register(self._rfd, EVENT_READ)
        for fd, entry in list(self._fds.items()):
            entry.events = 0
            try:
                self._update_fd(fd, entry)
            except (OSError, ValueError) as exc:
                for waiter in entry.readers + entry.writers:
                    waiter.throw(exc)
        _stackless.set_thread_wakeup_fd(self._wfd)
        self._finalizer = _weakref.finalize(
            self, _close_hub, self.selector, self._rfd, self._wfd,
            self.thread_id)
        try:
            old_selector.close()
        except OSError:
            pass
        for fd in (old_rfd, old_wfd):
            try:
                _os.close(fd)
            except OSError:
                pass

    def __repr__(self):
        return (f"<Hub thread={self.thread_id} timers={self._ntimers} "
                f"fd_waiters={self._nwaiters} idle={self._idle}>")


def _close_hub(selector, rfd, wfd, thread_id):
    # Unset the thread's wakeup fd if it is still ours, then close.
    try:
        with _atomic():
            prev = _stackless.set_thread_wakeup_fd(-1, thread_id)
            if prev != wfd:
                _stackless.set_thread_wakeup_fd(prev, thread_id)
    except (ValueError, RuntimeError):
        pass            # the thread is gone
    try:
        selector.close()
    except Exception:
        pass
    for fd in (rfd, wfd):
        try:
            _os.close(fd)
        except OSError:
            pass


_local = _threading.local()
_hubs = _weakref.WeakSet()


def get_hub():
    """Return the calling thread's hub, created on first use."""
    try:
        return _local.hub
    except AttributeError:
        hub = _local.hub = Hub()
        _hubs.add(hub)
        return hub


def cancel_wait_all(fd, exc=None):
    """Hub.cancel_wait(fd, exc) in the hub of every thread."""
    n = 0
    for hub in list(_hubs):
        n += hub.cancel_wait(fd, exc)
    return n


# --- a small pool of worker threads for run_in_thread() -------------------

class _Pool:
    """Worker threads that run blocking calls; idle ones end after a
    while, so that an idle program has no extra threads."""

    def __init__(self, max_workers=None, idle_timeout=2.0):
        if max_workers is None:
            max_workers = min(32, (_os.cpu_count() or 1) + 4)
        self.max_workers = max_workers
        self.idle_timeout = idle_timeout
        self._jobs = _queue.SimpleQueue()
        self._lock = _threading.Lock()
        self._threads = set()
        self._idle = 0

    def submit(self, job):
        with self._lock:
            self._jobs.put(job)
            if self._idle == 0 and len(self._threads) < self.max_workers:
                t = _threading.Thread(target=self._work, daemon=True,
                                      name="stacklesslib-worker")
                self._threads.add(t)
                t.start()

    def _work(self):
        me = _threading.current_thread()
        while True:
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self.idle_timeout)
            except _queue.Empty:
                job = None
            with self._lock:
                self._idle -= 1
                if job is None:
                    if not self._jobs.empty():
                        continue
                    self._threads.discard(me)
                    return
            if job is _STOP:
                with self._lock:
                    self._threads.discard(me)
                return
            job()
            del job

    def shutdown(self):
        """Stop the idle workers and wait for all of them to end."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(_STOP)
        for t in threads:
            t.join()


_STOP = object()
_pool = _Pool()


def _after_fork_in_child():
    # Only the thread that forked lives on: its hub gets its own epoll
    # instance and pipe; the other hubs and the workers are gone.
    hub = getattr(_local, "hub", None)
    for other in list(_hubs):
        if other is not hub:
            _hubs.discard(other)
    if hub is not None:
        hub._reinit_after_fork()
    _pool.__init__(_pool.max_workers, _pool.idle_timeout)


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)


def run_in_thread(func, *args, **kwargs):
    """Run func(*args, **kwargs) in a worker thread; block the tasklet.

    Returns the result or raises the exception of the call.  If the
    tasklet stops waiting (a timeout, a kill), the call still runs to its
    end in its thread, and its result is dropped.
    """
    if not callable(func):
        raise TypeError("func must be callable")
    hub = get_hub()
    waiter = Waiter()

    def job():
        try:
            result = (True, func(*args, **kwargs))
        except BaseException as exc:
            result = (False, exc)
        hub.call_soon_threadsafe(waiter.wake, result)

    _pool.submit(job)
    ok, value = waiter.wait()
    if ok:
        return value
    try:
        raise value
    finally:
        value = None
