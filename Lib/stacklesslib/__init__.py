"""stacklesslib: batteries for tasklets.

Blocking calls that block only the calling tasklet, not its thread:

- sleep(seconds), call_later(delay, func, *args), call_at(when, func,
  *args) and timeout(seconds), a context manager that raises
  TimeoutError in a tasklet whose block overruns;
- wait_readable(fd, timeout=None) and wait_writable(fd, timeout=None);
- run_in_thread(func, *args, **kwargs): a blocking call in a worker
  thread.

Each OS thread has a hub (stacklesslib._hub), a tasklet that runs the
timers and waits in epoll while no other tasklet of the thread can run.
"""

from ._hub import (get_hub, monotonic, run_in_thread, TimerHandle,
                   EVENT_READ, EVENT_WRITE)
from ._time import sleep, call_later, call_at, timeout

__all__ = [
    "sleep", "call_later", "call_at", "timeout", "monotonic",
    "wait_readable", "wait_writable", "run_in_thread", "get_hub",
    "TimerHandle",
]


def wait_readable(fd, timeout=None):
    """Block the calling tasklet until fd can be read without blocking.

    fd is a file descriptor or an object with fileno() (a socket, a
    file).  Readiness includes end of file, a hang-up and errors: the
    read that follows reports them.  Raises TimeoutError after `timeout`
    seconds (None: no limit), OSError(EBADF) if the fd is closed through
    stacklesslib while the tasklet waits.  Other tasklets run meanwhile.
    """
    get_hub().wait_fd(fd, EVENT_READ, timeout)


def wait_writable(fd, timeout=None):
    """Block the calling tasklet until fd can be written without blocking.

    As wait_readable(), for writing.
    """
    get_hub().wait_fd(fd, EVENT_WRITE, timeout)

# Synchronization, queues and select() (stacklesslib._sync, _queue, _select).
from ._sync import (Lock, RLock, Condition, Semaphore,  # noqa: E402
                    BoundedSemaphore, Event, Barrier, BrokenBarrierError)
from ._queue import Queue, LifoQueue, PriorityQueue  # noqa: E402
from ._select import select  # noqa: E402
__all__ += ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
            "Event", "Barrier", "BrokenBarrierError", "Queue", "LifoQueue",
            "PriorityQueue", "select"]

# stacklesslib.ps() (a callable module): the tasklets of every thread.
from . import ps  # noqa: E402
