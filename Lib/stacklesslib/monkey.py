"""Opt-in monkey-patching: make code written for the standard modules
block only the calling tasklet.

    import stacklesslib.monkey
    stacklesslib.monkey.patch_all()     # early, before other imports

patch_all() replaces, in the standard modules:

- socket: socket, create_connection, create_server, socketpair,
  fromfd, getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr,
  getnameinfo -- by those of stacklesslib.socket;
- time.sleep -- by stacklesslib.sleep (a call in a hub's callback
  still sleeps the thread);
- select.select -- by a select() that waits in the hub;
- selectors.DefaultSelector -- by TaskletSelector, an epoll (kqueue)
  selector whose select() waits in the hub.

unpatch_all() puts the originals back; patched() tells what is patched.

Limits: only what is looked up through the module after patch_all()
changes: a module that did ``from socket import socket`` before keeps
the standard class, and sockets made before keep blocking their thread.
select.poll(), select.epoll(), the other selectors classes, ssl
sockets, threading and subprocess are not patched (they block the
thread).  A thread that uses patched calls gets a hub of its own, so
they also work in threads without tasklets.
"""

import selectors as _selectors
import select as _select
import socket as _socket_mod
import time as _time

import stackless as _stackless

from stacklesslib import _hub
from stacklesslib import socket as _ssocket
from stacklesslib._time import sleep as _tasklet_sleep
from stacklesslib._hub import get_hub, monotonic, fileno_of, EVENT_READ

__all__ = ["patch_all", "unpatch_all", "patched", "TaskletSelector",
           "select", "sleep"]

_real_sleep = _time.sleep
_real_select = _select.select
_RealDefaultSelector = _selectors.DefaultSelector


def _in_hub():
    hub = getattr(_hub._local, "hub", None)
    return hub is not None and _stackless.getcurrent() is hub.tasklet


def sleep(seconds):
    """time.sleep() for tasklets: stacklesslib.sleep(seconds).

    In a hub's callback (which must not block), the thread sleeps.
    """
    if _in_hub():
        return _real_sleep(seconds)
    return _tasklet_sleep(seconds)


def _deadline_of(timeout):
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("timeout must be non-negative")
    return monotonic() + timeout


def _wait_readable(fd, deadline):
    """Wait in the hub until fd is readable; False when deadline passed.

    A TimeoutError of a stacklesslib.timeout() around the call passes.
    """
    if deadline is None:
        get_hub().wait_fd(fd, EVENT_READ, None)
        return True
    remaining = deadline - monotonic()
    if remaining <= 0:
        return False
    try:
        get_hub().wait_fd(fd, EVENT_READ, remaining)
    except TimeoutError:
        if monotonic() >= deadline:
            return False
        raise
    return True


if hasattr(_select, "epoll"):
    def select(rlist, wlist, xlist, timeout=None):
        """select.select() for tasklets: the same arguments and results;
        the wait blocks only the tasklet (an epoll object, registered
        with the hub, collects the file descriptors)."""
        if timeout is not None:
            timeout = float(timeout)
        ready = _real_select(rlist, wlist, xlist, 0)
        if ready[0] or ready[1] or ready[2] or timeout == 0:
            return ready
        if _in_hub():
            return _real_select(rlist, wlist, xlist, timeout)
        deadline = _deadline_of(timeout)
        masks = {}
        for objs, mask in ((rlist, _select.EPOLLIN),
                           (wlist, _select.EPOLLOUT),
                           (xlist, _select.EPOLLPRI)):
            for obj in objs:
                fd = fileno_of(obj)
                masks[fd] = masks.get(fd, 0) | mask
        ep = _select.epoll()
        try:
            for fd, mask in masks.items():
                try:
                    ep.register(fd, mask)
                except PermissionError:
                    pass        # regular files: select() says ready
            while True:
                if not _wait_readable(ep.fileno(), deadline):
                    return [], [], []
                events = ep.poll(0)
                ready = _real_select(rlist, wlist, xlist, 0)
                if ready[0] or ready[1] or ready[2]:
                    return ready
                # An error or hang-up that select() does not report for
                # the sets asked (say, an fd only in xlist): stop
                # watching it rather than spin on it.
                for fd, ev in events:
                    if ev & (_select.EPOLLERR | _select.EPOLLHUP):
                        ep.unregister(fd)
        finally:
            ep.close()
else:
    select = None


_POLLABLE = tuple(getattr(_selectors, name)
                  for name in ("EpollSelector", "KqueueSelector",
                               "DevpollSelector")
                  if hasattr(_selectors, name))

if issubclass(_RealDefaultSelector, _POLLABLE):
    class TaskletSelector(_RealDefaultSelector):
        """selectors.DefaultSelector for tasklets: select(timeout)
        blocks only the calling tasklet.

        The selector's own fd (epoll or kqueue) becomes readable when
        one of its registered fds is ready; the tasklet waits for that
        in the hub, then collects the events without blocking.
        """

        def select(self, timeout=None):
            if (timeout is not None and timeout <= 0) or _in_hub():
                return super().select(timeout)
            ready = super().select(0)
            if ready:
                return ready
            deadline = _deadline_of(timeout)
            while True:
                if not _wait_readable(self.fileno(), deadline):
                    return []
                ready = super().select(0)
                if ready:
                    return ready
else:
    TaskletSelector = None


_SOCKET_NAMES = ("socket", "create_connection", "create_server",
                 "socketpair", "fromfd", "getaddrinfo", "gethostbyname",
                 "gethostbyname_ex", "gethostbyaddr", "getnameinfo")

_saved = {}         # (module, name) -> original


def _patch(module, name, value):
    if value is None or not hasattr(module, name):
        return
    key = (module, name)
    if key not in _saved:
        _saved[key] = getattr(module, name)
    setattr(module, name, value)


def patch_all(socket=True, time=True, select=True, selectors=True):
    """Patch the standard modules (see the module's docstring).

    Pass False for a module to leave it alone.  Calling it again does
    no harm.
    """
    if socket:
        for name in _SOCKET_NAMES:
            _patch(_socket_mod, name, getattr(_ssocket, name, None))
    if time:
        _patch(_time, "sleep", sleep)
    if select:
        _patch(_select, "select", globals()["select"])
    if selectors:
        _patch(_selectors, "DefaultSelector", TaskletSelector)


def unpatch_all():
    """Restore every standard object patch_all() replaced."""
    while _saved:
        (module, name), value = _saved.popitem()
        setattr(module, name, value)


def patched():
    """The patched objects, as a sorted list of "module.name"."""
    return sorted(f"{module.__name__}.{name}" for module, name in _saved)
