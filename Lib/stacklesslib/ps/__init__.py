"""stacklesslib.ps: a `ps` of tasklets.

    stacklesslib.ps()            -> list of TaskletInfo, every tasklet of
                                    every thread
    stacklesslib.ps.format()     -> the same as text
    stacklesslib.ps.install(signal.SIGUSR1)
                                 -> the program prints format() on its
                                    standard error on that signal
    python -m stacklesslib.ps PID [SIGNAL]
                                 -> sends the signal (default SIGUSR1)

Each TaskletInfo tells the tasklet's thread, its state ("running",
"runnable", "blocked", "paused"; "main" marks main tasklets), what it
waits on as far as stacklesslib knows -- an fd of the hub (with the
events), a sleep or a timer (with its deadline on time.monotonic() and
the seconds left), a stacklesslib.timeout() armed for it, the object
that owns the channel it blocks on (a Lock, a Queue ... found through
the garbage collector), or else the channel itself -- and its Python
stack (innermost frame last, as traceback.format_stack()).

The tasklets are found through the garbage collector (they are GC
tracked), so ps() costs a walk over all objects: a tool for debugging,
not for a hot path.
"""

import collections as _collections
import gc as _gc
import signal as _signal
import sys as _sys
import time as _time
import traceback as _traceback
import types as _types

import stackless as _stackless

from stacklesslib import _hub

__all__ = ["ps", "format", "install", "uninstall", "TaskletInfo"]


class TaskletInfo:
    """What ps() knows of one tasklet.

    Attributes: tasklet, thread_id, state, is_main, waits_on (a string
    or None), deadline (monotonic() time or None) and stack (a list of
    traceback.FrameSummary, outermost first).
    """

    __slots__ = {
        "tasklet": "The tasklet.",
        "thread_id": "The id of the thread the tasklet belongs to.",
        "state": "'running', 'runnable', 'blocked' or 'paused'.",
        "is_main": "True for the main tasklet of its thread.",
        "waits_on": "What the tasklet waits for (a channel, a socket, a "
                    "lock, sleep()), as a string, or None.",
        "deadline": "When its wait times out, on the time.monotonic() "
                    "clock, or None.",
        "stack": "Its frames, outermost first: a list of "
                 "traceback.FrameSummary.",
    }

    def __init__(self, tasklet, thread_id, state, is_main, waits_on,
                 deadline, stack):
        self.tasklet = tasklet
        self.thread_id = thread_id
        self.state = state
        self.is_main = is_main
        self.waits_on = waits_on
        self.deadline = deadline
        self.stack = stack

    def __repr__(self):
        return (f"<TaskletInfo {self.tasklet!r} thread={self.thread_id} "
                f"{self.state} waits_on={self.waits_on!r}>")

    def format(self, now=None):
        """The tasklet as text: a headline and its stack."""
        if now is None:
            now = _time.monotonic()
        head = f"tasklet {id(self.tasklet):#x}"
        if self.is_main:
            head += " (main)"
        head += f" thread {self.thread_id}: {self.state}"
        if self.waits_on:
            head += f", waits on {self.waits_on}"
        if self.deadline is not None:
            head += f" (deadline in {self.deadline - now:.3f} s)"
        lines = [head]
        if self.stack:
            lines.extend(line.rstrip("\n")
                         for line in _traceback.format_list(self.stack))
        else:
            lines.append("  (no Python frames)")
        return "\n".join(lines)


def _hub_waits():
    """channel -> (description, deadline) for the Waiters of the hubs;
    tasklet -> (description, deadline) for armed timeouts."""
    by_channel = {}
    by_tasklet = {}
    for hub in list(_hub._hubs):
        for fd, entry in list(hub._fds.items()):
            for what, waiters in (("readable", entry.readers),
                                  ("writable", entry.writers)):
                for waiter in list(waiters):
                    desc, _ = by_channel.get(waiter.channel, (None, None))
                    if desc is not None:        # read and write
                        desc = f"fd {fd} readable or writable"
                    else:
                        desc = f"fd {fd} {what}"
                    by_channel[waiter.channel] = (desc, None)
        for handle in list(hub._timers):
            if isinstance(handle, tuple):       # (when, seq, handle)
                handle = handle[-1]
            if handle._state != _hub.TimerHandle._PENDING:
                continue
            func = handle._func
            owner = getattr(func, "__self__", None)
            sleep = func is _hub._wake_now      # sleep()'s timer
            if sleep:
                owner = handle._args[0]
            if isinstance(owner, _hub.Waiter):
                desc, _ = by_channel.get(owner.channel, (None, None))
                if desc is None:
                    desc = "sleep" if sleep else "timer"
                else:
                    desc += " with a timeout"
                by_channel[owner.channel] = (desc, handle.when)
            elif (getattr(func, "__name__", None) == "_fire"
                  and type(owner).__name__ == "timeout"):
                t = getattr(owner, "_tasklet", None)
                if t is not None:
                    by_tasklet[t] = (
                        f"stacklesslib.timeout({owner.seconds:g})",
                        handle.when)
    return by_channel, by_tasklet


def _owner_of_dict(d):
    """The object whose __dict__ is d (not a module), or None."""
    for owner in _gc.get_referrers(d):
        if getattr(owner, "__dict__", None) is d and not \
                isinstance(owner, _types.ModuleType):
            return owner
    return None


def _owner_of(channel, _depth=0):
    """A description of the object that holds channel (a lock, a
    queue...), found through gc, or None.  The waiters of the package's
    locks and queues hold the channel they block on: the lock or queue
    that holds the waiter in its wait queue is the owner."""
    from .._sync import _Waiter
    for ref in _gc.get_referrers(channel):
        if isinstance(ref, (_types.FrameType, _stackless.tasklet)):
            continue
        if isinstance(ref, _Waiter):
            if _depth == 0:
                owner = _owner_of(ref, 1)
                if owner is not None:
                    return owner
            continue
        if isinstance(ref, dict):
            owner = _owner_of_dict(ref)
            if owner is not None:
                return _describe(owner)
            continue
        if isinstance(ref, (list, tuple, set, frozenset,
                            _collections.deque)):
            for owner in _gc.get_referrers(ref):
                if isinstance(owner, dict):
                    # The container is an attribute: whose __dict__?
                    owner = _owner_of_dict(owner)
                    if owner is not None:
                        return _describe(owner)
                    continue
                if isinstance(owner, (_types.FrameType, list,
                                      _types.ModuleType)):
                    continue
                # An attribute, in a slot or (inline values) its __dict__.
                attrs = getattr(owner, "__dict__", None)
                if (any(getattr(owner, slot, None) is ref
                        for slot in _slots_of(type(owner)))
                        or (isinstance(attrs, dict)
                            and any(v is ref for v in attrs.values()))):
                    return _describe(owner)
            continue
        if type(ref).__module__ != "builtins":
            return _describe(ref)
    return None


def _slots_of(cls):
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        yield from slots


def _describe(obj):
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__} at {id(obj):#x}"


def _stack_of(t, current_frames):
    if t.is_current:
        frame = current_frames.get(t.thread_id)
        if t.thread_id == _thread_ident():
            # Our caller's frame, without the frames of this module.
            frame = _sys._getframe(1)
            while frame is not None and frame.f_globals is globals():
                frame = frame.f_back
    else:
        frame = t.frame
        if frame is None and t.is_main and t.thread_id != _thread_ident():
            # A main tasklet that blocks while its thread has nothing
            # else to run waits on the thread's own stack.
            frame = current_frames.get(t.thread_id)
    if frame is None:
        return []
    return _traceback.StackSummary.extract(
        _traceback.walk_stack(frame), lookup_lines=True)[::-1]


def _thread_ident():
    import threading
    return threading.get_ident()


def ps():
    """Return a TaskletInfo for every alive tasklet of every thread."""
    by_channel, by_tasklet = _hub_waits()
    current_frames = _sys._current_frames()
    tasklets = [o for o in _gc.get_objects()
                if isinstance(o, _stackless.tasklet)]
    # Main and current tasklets are not always tracked objects.
    for tid in _stackless.getthreads():
        try:
            info = _stackless.get_thread_info(tid)
        except (ValueError, RuntimeError):
            continue
        tasklets.extend(x for x in info[:2]
                        if isinstance(x, _stackless.tasklet))
    hub_tasklets = {h.tasklet for h in list(_hub._hubs)}
    seen = set()
    result = []
    for t in tasklets:
        if id(t) in seen or not t.alive:
            continue
        seen.add(id(t))
        if t.is_current:
            state = "running"
        elif t.blocked:
            state = "blocked"
        elif t.scheduled:
            state = "runnable"
        else:
            state = "paused"
        waits_on = deadline = None
        channel = t._channel if t.blocked else None
        if channel is not None:
            waits_on, deadline = by_channel.get(channel, (None, None))
            if waits_on is None:
                owner = _owner_of(channel)
                waits_on = owner if owner is not None else repr(channel)
        if waits_on is None and t in hub_tasklets:
            waits_on = "(it is the hub of its thread)"
        if t in by_tasklet:
            desc, when = by_tasklet[t]
            waits_on = f"{waits_on}, under {desc}" if waits_on else desc
            if deadline is None or when < deadline:
                deadline = when
        result.append(TaskletInfo(t, t.thread_id, state, t.is_main,
                                  waits_on, deadline,
                                  _stack_of(t, current_frames)))
    result.sort(key=lambda i: (i.thread_id, not i.is_main))
    return result


def format():
    """ps() as text, one block per tasklet."""
    now = _time.monotonic()
    infos = ps()
    blocks = [f"{len(infos)} tasklets"]
    blocks.extend(i.format(now) for i in infos)
    return "\n\n".join(blocks) + "\n"


_installed = {}


def install(signum=_signal.SIGUSR1, file=None):
    """Print format() on `file` (default sys.stderr) on signal signum.

    Then `python -m stacklesslib.ps PID` (or kill -USR1 PID) shows the
    tasklets of the program.  Call it from the main thread.  Returns
    the handler that was there before.
    """
    def handler(signum, frame):
        out = file if file is not None else _sys.stderr
        out.write(format())
        out.flush()

    previous = _signal.signal(signum, handler)
    _installed.setdefault(signum, previous)
    return previous


def uninstall(signum=_signal.SIGUSR1):
    """Restore the handler install() replaced for signum."""
    if signum in _installed:
        _signal.signal(signum, _installed.pop(signum))


class _PsModule(_types.ModuleType):
    """stacklesslib.ps is callable: stacklesslib.ps() is ps.ps()."""

    def __call__(self):
        return ps()


_sys.modules[__name__].__class__ = _PsModule
