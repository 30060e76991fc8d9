"""Time for tasklets: sleep(), call_later(), call_at(), timeout()."""

import stackless as _stackless

from ._hub import get_hub, monotonic, _check_seconds, Waiter, _wake_now

__all__ = ["sleep", "call_later", "call_at", "timeout", "monotonic"]


def sleep(seconds):
    """Block the calling tasklet for `seconds`; other tasklets run.

    sleep(0) only yields to the other runnable tasklets
    (stackless.schedule()).  A negative or NaN duration raises
    ValueError.  The tasklet is woken no earlier than the deadline; a
    timeout(), kill() or throw() ends the sleep early with its exception.
    """
    seconds = _check_seconds(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    if seconds == 0:
        _stackless.schedule()
        return
    hub = get_hub()
    if _stackless.getcurrent() is hub.tasklet:
        raise RuntimeError("the hub cannot sleep (a callback must not "
                           "block)")
    now = monotonic()
    hub._catch_up(now)
    waiter = Waiter()
    handle = hub.call_at(now + seconds, _wake_now, waiter)
    try:
        waiter.wait()
    finally:
        handle.cancel()


def call_later(delay, func, *args):
    """Call func(*args) after `delay` seconds, in this thread's hub.

    Returns a handle with cancel() and cancelled().  The call runs in
    the hub tasklet of the calling thread: it must not block (use
    stackless.tasklet(func)() for work that blocks).  An exception it
    raises is printed and dropped, except BaseExceptions that are no
    Exception (KeyboardInterrupt, SystemExit), which are raised in the
    thread's main tasklet.
    """
    return get_hub().call_later(delay, func, *args)


def call_at(when, func, *args):
    """Call func(*args) at time `when` of the monotonic() clock.

    As call_later(), with an absolute deadline (time.monotonic()).
    """
    return get_hub().call_at(when, func, *args)


class timeout:
    """Context manager: raise TimeoutError if the block overruns.

        with stacklesslib.timeout(2.0):
            value = channel.receive()

    When `seconds` have passed and the tasklet is still in the block,
    TimeoutError is raised in it where it waits: a channel send or
    receive, sleep(), an fd wait, a lock or a queue of stacklesslib --
    any wait in which the tasklet is blocked on a channel, or paused.
    The tasklet leaves the channel, nothing is sent or received.

    A tasklet that is runnable at the deadline is not interrupted: one
    that computes, or one that was already given a value (a sender met
    it) and has not yet taken it.  It keeps the value, and gets
    TimeoutError when it next blocks inside the block.  So no value is
    lost.  Leaving the block cancels the timer.

    Timeouts nest: the one whose deadline comes first fires; `expired`
    tells a timeout object whether it was the one.  timeout(None) does
    nothing; a timeout of 0 or less fires at the first wait.
    """

    __slots__ = {
        "seconds": "The time the block may take, in seconds, or None.",
        "expired": "True once this timeout fired (not one that it is "
                   "nested in).",
        "_tasklet": None, "_handle": None, "_hub": None,
    }

    def __init__(self, seconds):
        if seconds is not None:
            seconds = _check_seconds(seconds)
        self.seconds = seconds
        self.expired = False
        self._tasklet = None
        self._handle = None
        self._hub = None

    def __enter__(self):
        if self.seconds is None:
            return self
        if self._tasklet is not None:
            raise RuntimeError("timeout is already in use")
        self.expired = False
        self._hub = get_hub()
        self._tasklet = _stackless.getcurrent()
        self._handle = self._hub.call_later(self.seconds, self._fire)
        return self

    def _fire(self):
        t = self._tasklet
        self._handle = None
        if t is None or not t.alive:
            return
        if t.blocked or not t.scheduled:
            self.expired = True
            t.throw(TimeoutError(f"timed out after {self.seconds:g} s"),
                    pending=True)
        else:
            # Runnable: try again at the hub's next turn, which comes
            # after the tasklet has run.
            self._handle = self._hub.call_later(0, self._fire)

    def __exit__(self, exc_type, exc_value, traceback):
        handle = self._handle
        if handle is not None:
            self._handle = None
            handle.cancel()
        self._tasklet = None
        self._hub = None
        return False

    def __repr__(self):
        return f"<stacklesslib.timeout {self.seconds!r} expired={self.expired}>"
