"""Tasklets and asyncio in one thread, both ways.

From a tasklet, wait for asyncio:

    from stacklesslib import asyncio as sasyncio

    def tasklet_body():
        reader, writer = sasyncio.wait(asyncio.open_connection(host, port))
        writer.write(b"ping\\n")
        line = sasyncio.wait(reader.readline())

From a coroutine, wait for tasklets:

    async def coro(channel, worker):
        value = await sasyncio.receive(channel)   # channel.receive()
        await sasyncio.send(channel, value)       # channel.send(value)
        await sasyncio.join(worker)               # until worker ends

The design: each thread has a bridge loop (get_loop()), an
asyncio.SelectorEventLoop of class HubEventLoop that runs in a tasklet
of its own.  Its selector never blocks the thread: when asyncio would
wait for I/O or a timer, the loop's tasklet waits in the thread's hub
for the selector's epoll fd (with asyncio's timeout), so the other
tasklets run meanwhile, and asyncio's callbacks run as soon as the hub
sees their fds ready.  When asyncio has nothing at all to wait for (no
fd, no timer), the loop's tasklet blocks on a channel and does not keep
stackless.run() from returning; wait(), receive(), send(), join() and
call_soon_threadsafe() wake it.

While the loop's tasklet is switched out waiting, no asyncio loop is
"running" for the other tasklets of the thread, so they may even use a
loop of their own (asyncio.run()).

asyncio.run(main(), loop_factory=HubEventLoop) runs a coroutine on
such a loop in the calling tasklet: tasklets run while it waits.

The loop's tasklet must not block on stackless objects itself: a
coroutine uses receive()/send()/join() rather than channel.receive(),
and a tasklet uses wait() rather than loop.run_until_complete().
"""

# This module is stacklesslib.asyncio: the imports are absolute, so that
# "asyncio" is the standard package.
import asyncio as _asyncio
import asyncio.events as _events
import selectors as _selectors
import threading as _threading

import stackless as _stackless

from stacklesslib._hub import get_hub, Waiter, EVENT_READ

__all__ = ["HubEventLoop", "get_loop", "close_loop", "wait", "receive",
           "send", "join"]

# The real class: stacklesslib.monkey may patch selectors.DefaultSelector.
_RealDefaultSelector = _selectors.DefaultSelector
try:
    from stacklesslib import monkey as _monkey
    if _monkey.TaskletSelector is not None and issubclass(
            _monkey.TaskletSelector, _RealDefaultSelector):
        _RealDefaultSelector = _monkey._RealDefaultSelector
except ImportError:
    pass


class _HubSelector(_RealDefaultSelector):
    """The selector of a HubEventLoop: waits in the hub, not the thread."""

    def __init__(self):
        super().__init__()
        self._idle = None       # Waiter while idle

    def select(self, timeout=None):
        if timeout is not None and timeout <= 0:
            return super().select(0)
        ready = super().select(0)
        if ready:
            return ready
        # No loop is running for the other tasklets while this one waits.
        running = _events._get_running_loop()
        _events._set_running_loop(None)
        try:
            if (timeout is None and len(self.get_map()) <= 1
                    and not _joins):
                # Only the loop's self-pipe: nothing asyncio waits for can
                # happen without one of us kicking it.
                waiter = self._idle = Waiter()
                try:
                    waiter.wait()
                finally:
                    self._idle = None
            else:
                try:
                    get_hub().wait_fd(self.fileno(), EVENT_READ, timeout)
                except TimeoutError:
                    pass        # asyncio looks at its timers
        finally:
            _events._set_running_loop(running)
        return super().select(0)

    def kick(self):
        """Wake the loop (called in its thread)."""
        waiter = self._idle
        if waiter is not None:
            waiter.wake()


class HubEventLoop(_asyncio.SelectorEventLoop):
    """An asyncio event loop whose waits block only its tasklet.

    Use it as the bridge loop (get_loop()), or in a tasklet with
    asyncio.run(coro, loop_factory=HubEventLoop).
    """

    def __init__(self):
        selector = _HubSelector()
        super().__init__(selector)
        self._hub_thread = _threading.get_ident()
        self._hub_tasklet = None

    def kick(self):
        """Make the loop look at its ready callbacks soon (any thread)."""
        if _threading.get_ident() == self._hub_thread:
            self._selector.kick()
            self._write_to_self()
        else:
            self._write_to_self()
            hub = _hubs_by_thread.get(self._hub_thread)
            if hub is not None:
                hub.call_soon_threadsafe(self._selector.kick)

    def call_soon_threadsafe(self, callback, *args, context=None):
        handle = super().call_soon_threadsafe(callback, *args,
                                              context=context)
        if _threading.get_ident() != self._hub_thread:
            hub = _hubs_by_thread.get(self._hub_thread)
            if hub is not None:
                hub.call_soon_threadsafe(self._selector.kick)
        else:
            self._selector.kick()
        return handle


_hubs_by_thread = {}        # thread id -> hub, for cross-thread kicks
_local = _threading.local()


def get_loop():
    """Return the calling thread's bridge loop, starting it if needed.

    It runs loop.run_forever() in a tasklet of its own until
    close_loop().
    """
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = HubEventLoop()
        _hubs_by_thread[_threading.get_ident()] = get_hub()
    t = loop._hub_tasklet
    if t is None or not t.alive:
        loop._hub_tasklet = _stackless.tasklet(_run_loop)(loop)
    return loop


def _run_loop(loop):
    loop.run_forever()


def close_loop():
    """Stop and close the calling thread's bridge loop, if it has one.

    Its pending tasks are cancelled first (and run to their end).
    A later get_loop() makes a new one.
    """
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        return
    if _stackless.getcurrent() is loop._hub_tasklet:
        raise RuntimeError("close_loop() from the loop's own tasklet")
    tasks = [t for t in _asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        wait(_asyncio.gather(*tasks, return_exceptions=True))
    wait(loop.shutdown_asyncgens())
    t = loop._hub_tasklet
    if t is not None and t.alive:
        done = Waiter()
        loop.call_soon(loop.stop)
        loop.call_soon(_wake_later, done)
        loop.kick()
        done.wait()
        while t.alive:
            _stackless.schedule()
    loop.close()
    _local.loop = None


def _wake_later(waiter):
    waiter.wake()


def wait(awaitable, timeout=None):
    """Block the calling tasklet until awaitable completes on the bridge
    loop of the thread; return its result or raise its exception.

    A coroutine becomes a task of the loop.  With `timeout` (seconds),
    TimeoutError is raised when it passes and the awaitable is
    cancelled; the same if the tasklet is killed or a
    stacklesslib.timeout() fires while it waits.
    """
    loop = get_loop()
    if _stackless.getcurrent() is loop._hub_tasklet:
        if _asyncio.iscoroutine(awaitable):
            awaitable.close()       # never awaited: no warning
        raise RuntimeError("wait() in the loop's tasklet would block the "
                           "loop: await instead")
    fut = _asyncio.ensure_future(awaitable, loop=loop)
    if not fut.done():
        waiter = Waiter()

        def done(f):
            waiter.wake()

        fut.add_done_callback(done)
        loop.kick()
        try:
            if timeout is None:
                waiter.wait()
            else:
                from stacklesslib import timeout as _timeout
                with _timeout(timeout):
                    waiter.wait()
        except BaseException:
            fut.remove_done_callback(done)
            fut.cancel()
            loop.kick()
            raise
    return fut.result()


def _running_hub_loop():
    loop = _asyncio.get_running_loop()
    if not isinstance(loop, HubEventLoop):
        raise RuntimeError("stacklesslib.asyncio needs a HubEventLoop "
                           "(get_loop(), or asyncio.run(..., "
                           "loop_factory=HubEventLoop))")
    return loop


async def receive(channel):
    """Await channel.receive() without blocking the loop.

    A helper tasklet receives; if the awaiting task is cancelled before
    a value came, the helper leaves the channel.  A value that arrives
    at the moment of the cancellation is sent back into the channel (so
    it is not lost; the helper then waits for the next receiver).
    """
    loop = _running_hub_loop()
    fut = loop.create_future()

    got = []

    def helper():
        try:
            value = channel.receive()
            got.append(True)
        except _stackless.TaskletExit:
            raise
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
                loop.kick()
            return
        if fut.done():
            channel.send(value)         # cancelled meanwhile: put it back
        else:
            fut.set_result(value)
            loop.kick()

    t = _stackless.tasklet(helper)()
    try:
        return await fut
    finally:
        # Still blocked in receive(): no value taken, it may go.  Runnable
        # or blocked in the send back: it holds a value, leave it.
        if t.alive and t.blocked and not got:
            t.kill()


async def send(channel, value):
    """Await channel.send(value) without blocking the loop.

    If the awaiting task is cancelled while the helper tasklet still
    waits for a receiver, the value is not sent.
    """
    loop = _running_hub_loop()
    fut = loop.create_future()

    def helper():
        try:
            channel.send(value)
        except _stackless.TaskletExit:
            raise
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
                loop.kick()
            return
        if not fut.done():
            fut.set_result(None)
            loop.kick()

    t = _stackless.tasklet(helper)()
    try:
        await fut
    finally:
        if t.alive and t.blocked:
            t.kill()                # still waiting for a receiver


# join(): a schedule callback sees the switches away from the tasklets
# that are joined; it asks their loops to look whether they ended.
_joins = {}                 # tasklet -> list of (loop, future)
_prev_callback = None
_installed = False


def _schedule_callback(prev, next):
    if prev is not None and prev in _joins:
        for loop, _ in _joins[prev]:
            # The base method: no kick (no channel operation in here).
            _asyncio.SelectorEventLoop.call_soon_threadsafe(
                loop, _check_join, prev)
    if _prev_callback is not None:
        _prev_callback(prev, next)


def _check_join(t):
    if t.alive:
        return
    for loop, fut in _joins.pop(t, ()):
        if not fut.done():
            fut.set_result(None)
    _uninstall()


def _install():
    global _installed, _prev_callback
    if not _installed:
        _prev_callback = _stackless.set_schedule_callback(_schedule_callback)
        _installed = True


def _uninstall():
    global _installed, _prev_callback
    if _installed and not _joins:
        if _stackless.get_schedule_callback() is _schedule_callback:
            _stackless.set_schedule_callback(_prev_callback)
        _prev_callback = None
        _installed = False


async def join(tasklet):
    """Await the end of tasklet (it returns, raises or is killed).

    Returns at once for a tasklet that is not alive.  While a join is
    pending a schedule callback (stackless.set_schedule_callback(),
    chained to one that was set before) watches the tasklet.
    """
    if not isinstance(tasklet, _stackless.tasklet):
        raise TypeError(f"expected a tasklet, not {type(tasklet).__name__}")
    loop = _running_hub_loop()
    if not tasklet.alive:
        return
    fut = loop.create_future()
    entry = (loop, fut)
    _joins.setdefault(tasklet, []).append(entry)
    _install()
    try:
        await fut
    finally:
        entries = _joins.get(tasklet)
        if entries is not None and entry in entries:
            entries.remove(entry)
            if not entries:
                del _joins[tasklet]
        _uninstall()
