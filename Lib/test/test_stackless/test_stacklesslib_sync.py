"""stacklesslib: Lock, RLock, Condition, Semaphore, BoundedSemaphore,
Event, Barrier, Queue, LifoQueue, PriorityQueue and select()."""

import queue
import threading
import time
import unittest

import stackless
import stacklesslib
from stacklesslib import _hub

from test.test_stackless.helpers import drive_hub, kill_all


drive = drive_hub


def run_in_new_thread(*funcs):
    """Start a thread whose main tasklet runs each func in a tasklet and
    waits (on a channel, so that it waits for the other threads) until
    all have ended.  Returns the started threading.Thread."""
    def thread_main():
        done = stackless.channel()

        def wrap(func):
            try:
                func()
            finally:
                done.send(None)

        for func in funcs:
            stackless.tasklet(wrap)(func)
        for _ in funcs:
            done.receive()

    th = threading.Thread(target=thread_main)
    th.start()
    return th


def wait_until(cond, limit=60.0):
    """Let the other tasklets and threads run until cond() is true."""
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("the condition is not reached")
        if stackless.getruncount() > 1:
            stackless.schedule()
        else:
            time.sleep(0.001)


def busy(seconds):
    # Block the whole thread (not only the tasklet): timers become due
    # while nothing runs.
    time.sleep(seconds)


class SyncTestCase(unittest.TestCase):

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        drive()
        self.tasklets = []
        self.addCleanup(self.check_clean)

    def spawn(self, func, *args):
        t = stackless.tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def check_clean(self):
        for t in self.tasklets:
            kill_all(t)
        drive()
        hub = _hub.get_hub()
        self.assertEqual(hub._ntimers, 0)
        self.assertEqual(stackless.getruncount(), 1)

    def settle(self):
        drive()


class TestLock(SyncTestCase):
    cls = stacklesslib.Lock

    def test_api(self):
        lock = self.cls()
        self.assertFalse(lock.locked())
        self.assertTrue(lock.acquire())
        self.assertTrue(lock.locked())
        self.assertFalse(lock.acquire(False))
        self.assertFalse(lock.acquire(timeout=0))
        lock.release()
        self.assertFalse(lock.locked())
        with lock:
            self.assertTrue(lock.locked())
        self.assertFalse(lock.locked())
        self.assertRaises(RuntimeError, lock.release)
        self.assertRaises(ValueError, lock.acquire, False, 1)
        self.assertRaises(ValueError, lock.acquire, True, -2)
        self.assertRaises(TypeError, lock.acquire, True, "x")
        self.assertFalse(lock.locked())

    def test_fifo_and_no_barging(self):
        lock = self.cls()
        log = []

        def worker(i):
            with lock:
                log.append(i)
                stackless.schedule()

        lock.acquire()
        for i in range(5):
            self.spawn(worker, i)
        stackless.schedule()            # all five block
        self.assertEqual(len(lock._waiters), 5)
        lock.release()
        # Handed to worker 0: a newcomer cannot take it.
        self.assertTrue(lock.locked())
        self.assertFalse(lock.acquire(False))
        self.settle()
        self.assertEqual(log, [0, 1, 2, 3, 4])
        self.assertFalse(lock.locked())

    def test_timeout(self):
        lock = self.cls()
        lock.acquire()
        result = []
        self.spawn(lambda: result.append(lock.acquire(timeout=0.05)))
        self.settle()
        self.assertEqual(result, [False])
        self.assertTrue(lock.locked())
        self.assertEqual(len(lock._waiters), 0)
        lock.release()
        self.assertFalse(lock.locked())

    def test_granted_wins_over_timer(self):
        # The timer is due when the release hands the lock over: the
        # waiter gets it.
        lock = self.cls()
        lock.acquire()
        result = []
        self.spawn(lambda: result.append(lock.acquire(timeout=0.01)))
        stackless.schedule()
        busy(0.05)
        lock.release()
        self.settle()
        self.assertEqual(result, [True])
        self.assertTrue(lock.locked())
        lock.release()

    def test_stacklesslib_timeout(self):
        lock = self.cls()
        lock.acquire()
        result = []

        def waiter():
            try:
                with stacklesslib.timeout(0.05):
                    lock.acquire()
            except TimeoutError:
                result.append("timeout")

        self.spawn(waiter)
        self.settle()
        self.assertEqual(result, ["timeout"])
        self.assertEqual(len(lock._waiters), 0)
        lock.release()
        self.assertFalse(lock.locked())

    def test_kill_blocked(self):
        lock = self.cls()
        lock.acquire()
        t = self.spawn(lock.acquire)
        stackless.schedule()
        self.assertTrue(t.blocked)
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(len(lock._waiters), 0)
        lock.release()
        self.assertFalse(lock.locked())

    def test_kill_after_grant_passes_on(self):
        lock = self.cls()
        lock.acquire()
        got = []

        def waiter(i):
            lock.acquire()
            got.append(i)
            lock.release()

        t1 = self.spawn(waiter, 1)
        t2 = self.spawn(waiter, 2)
        stackless.schedule()
        lock.release()                  # handed to t1, not yet running
        self.assertFalse(t1.blocked)
        t1.kill()
        self.settle()
        self.assertEqual(got, [2])
        self.assertFalse(lock.locked())
        t3 = self.spawn(waiter, 3)
        lock.acquire()
        stackless.schedule()
        lock.release()
        t3.kill()                       # no waiter left: freed
        self.assertFalse(lock.locked())


class TestRLock(TestLock):
    cls = stacklesslib.RLock

    def test_api(self):
        lock = self.cls()
        self.assertTrue(lock.acquire())
        self.assertTrue(lock.acquire())
        lock.release()
        self.assertTrue(lock.locked())
        lock.release()
        self.assertFalse(lock.locked())
        self.assertRaises(RuntimeError, lock.release)
        self.assertRaises(ValueError, lock.acquire, False, 1)
        with lock:
            with lock:
                self.assertTrue(lock._is_owned())
        self.assertFalse(lock.locked())

    def test_release_by_other_tasklet(self):
        lock = self.cls()
        lock.acquire()
        errors = []

        def other():
            try:
                lock.release()
            except RuntimeError as e:
                errors.append(e)
            errors.append(lock.acquire(False))

        self.spawn(other)
        self.settle()
        self.assertEqual(len(errors), 2)
        self.assertIs(errors[1], False)
        lock.release()

    def test_stacklesslib_timeout(self):
        super().test_stacklesslib_timeout()

    def test_granted_wins_over_timer(self):
        lock = self.cls()
        lock.acquire()
        result = []

        def waiter():
            result.append(lock.acquire(timeout=0.01))
            result.append(lock._is_owned())
            lock.release()

        self.spawn(waiter)
        stackless.schedule()
        busy(0.05)
        lock.release()
        self.settle()
        self.assertEqual(result, [True, True])
        self.assertFalse(lock.locked())


class TestCondition(SyncTestCase):

    def test_notify_order_and_count(self):
        cond = stacklesslib.Condition()
        log = []

        def waiter(i):
            with cond:
                self.assertTrue(cond.wait())
                log.append(i)

        for i in range(4):
            self.spawn(waiter, i)
        stackless.schedule()
        with cond:
            cond.notify(2)
        self.settle()
        self.assertEqual(log, [0, 1])
        with cond:
            cond.notify_all()
        self.settle()
        self.assertEqual(log, [0, 1, 2, 3])
        self.assertRaises(RuntimeError, cond.notify)
        self.assertRaises(RuntimeError, cond.wait)

    def test_wait_timeout_reacquires(self):
        for lock in (stacklesslib.Lock(), stacklesslib.RLock()):
            cond = stacklesslib.Condition(lock)
            with cond:
                self.assertFalse(cond.wait(0.02))
                self.assertTrue(lock.locked())
                self.assertFalse(cond.wait(0))
            self.assertFalse(lock.locked())

    def test_wait_for(self):
        cond = stacklesslib.Condition(stacklesslib.Lock())
        box = []

        def producer():
            for i in range(3):
                with cond:
                    box.append(i)
                    cond.notify()
                stackless.schedule()

        self.spawn(producer)
        with cond:
            self.assertTrue(cond.wait_for(lambda: len(box) == 3))
            self.assertFalse(cond.wait_for(lambda: False, 0.02))

    def test_kill_in_wait(self):
        lock = stacklesslib.RLock()
        cond = stacklesslib.Condition(lock)

        def waiter():
            with cond:
                cond.wait()

        t = self.spawn(waiter)
        stackless.schedule()
        self.assertFalse(lock.locked())
        t.kill()
        self.assertFalse(t.alive)
        self.assertFalse(lock.locked())
        self.assertEqual(len(cond._waiters), 0)

    def test_notified_then_killed_passes_on(self):
        cond = stacklesslib.Condition()
        log = []

        def waiter(i):
            with cond:
                cond.wait()
                log.append(i)

        t1 = self.spawn(waiter, 1)
        self.spawn(waiter, 2)
        stackless.schedule()
        with cond:
            cond.notify()
        t1.kill()
        self.settle()
        self.assertEqual(log, [2])
        self.assertFalse(cond._lock.locked())


class TestSemaphore(SyncTestCase):

    def test_api(self):
        sem = stacklesslib.Semaphore(2)
        self.assertTrue(sem.acquire())
        self.assertTrue(sem.acquire(timeout=0))
        self.assertFalse(sem.acquire(False))
        self.assertFalse(sem.acquire(timeout=0.01))
        sem.release(2)
        with sem:
            self.assertEqual(sem._value, 1)
        self.assertEqual(sem._value, 2)
        self.assertRaises(ValueError, stacklesslib.Semaphore, -1)
        self.assertRaises(ValueError, sem.release, 0)
        self.assertRaises(ValueError, sem.acquire, False, 1)
        bsem = stacklesslib.BoundedSemaphore(1)
        self.assertRaises(ValueError, bsem.release)
        bsem.acquire()
        bsem.release()
        self.assertRaises(ValueError, bsem.release)

    def test_fifo(self):
        sem = stacklesslib.Semaphore(0)
        log = []
        for i in range(4):
            self.spawn(lambda i=i: (sem.acquire(), log.append(i)))
        stackless.schedule()
        sem.release(3)
        self.assertFalse(sem.acquire(False))
        self.settle()
        self.assertEqual(log, [0, 1, 2])
        sem.release()
        self.settle()
        self.assertEqual(log, [0, 1, 2, 3])
        self.assertEqual(sem._value, 0)

    def test_kill_after_grant_returns_permit(self):
        sem = stacklesslib.Semaphore(0)
        t = self.spawn(sem.acquire)
        stackless.schedule()
        sem.release()
        t.kill()
        self.assertEqual(sem._value, 1)
        t = self.spawn(sem.acquire)     # no waiter: nothing
        stackless.schedule()
        self.assertEqual(sem._value, 0)

    def test_kill_blocked(self):
        sem = stacklesslib.Semaphore(0)
        t = self.spawn(sem.acquire)
        stackless.schedule()
        t.kill()
        sem.release()
        self.assertEqual(sem._value, 1)
        self.assertEqual(len(sem._waiters), 0)


class TestEvent(SyncTestCase):

    def test_set_wakes_all(self):
        ev = stacklesslib.Event()
        log = []
        for i in range(3):
            self.spawn(lambda i=i: log.append((i, ev.wait())))
        stackless.schedule()
        self.assertFalse(ev.is_set())
        ev.set()
        self.settle()
        self.assertEqual(log, [(0, True), (1, True), (2, True)])
        self.assertTrue(ev.wait(0))
        ev.clear()
        self.assertFalse(ev.wait(0))
        self.assertFalse(ev.wait(0.01))
        self.assertFalse(ev.wait(-1))       # as threading: no wait

    def test_kill_blocked(self):
        ev = stacklesslib.Event()
        t = self.spawn(ev.wait)
        stackless.schedule()
        t.kill()
        self.assertEqual(len(ev._waiters), 0)
        ev.set()


class TestBarrier(SyncTestCase):

    def test_indices_and_action(self):
        actions = []
        b = stacklesslib.Barrier(3, action=lambda: actions.append(1))
        self.assertEqual(b.parties, 3)
        results = []
        for _ in range(3):
            self.spawn(lambda: results.append(b.wait()))
        self.settle()
        self.assertEqual(sorted(results), [0, 1, 2])
        self.assertEqual(actions, [1])
        self.assertFalse(b.broken)
        self.assertEqual(b.n_waiting, 0)
        # Reusable.
        results.clear()
        for _ in range(3):
            self.spawn(lambda: results.append(b.wait()))
        self.settle()
        self.assertEqual(sorted(results), [0, 1, 2])

    def run_breaking(self, b, breaker):
        errors = []

        def waiter():
            try:
                b.wait()
            except stacklesslib.BrokenBarrierError:
                errors.append("broken")

        ts = [self.spawn(waiter) for _ in range(2)]
        stackless.schedule()
        self.assertEqual(b.n_waiting, 2)
        breaker(ts)
        self.settle()
        return errors

    def test_abort(self):
        b = stacklesslib.Barrier(3)
        self.assertEqual(self.run_breaking(b, lambda ts: b.abort()),
                         ["broken", "broken"])
        self.assertTrue(b.broken)
        self.assertRaises(stacklesslib.BrokenBarrierError, b.wait)
        b.reset()
        self.assertFalse(b.broken)

    def test_reset(self):
        b = stacklesslib.Barrier(3)
        self.assertEqual(self.run_breaking(b, lambda ts: b.reset()),
                         ["broken", "broken"])
        self.assertFalse(b.broken)

    def test_kill_breaks(self):
        b = stacklesslib.Barrier(3)
        self.assertEqual(self.run_breaking(b, lambda ts: ts[0].kill()),
                         ["broken"])
        self.assertTrue(b.broken)

    def test_timeout_breaks(self):
        b = stacklesslib.Barrier(2, timeout=0.02)
        self.assertRaises(stacklesslib.BrokenBarrierError, b.wait)
        self.assertTrue(b.broken)
        self.assertIs(stacklesslib.BrokenBarrierError,
                      threading.BrokenBarrierError)


class TestQueue(SyncTestCase):

    def test_orders(self):
        for cls, expect in ((stacklesslib.Queue, [3, 1, 2]),
                            (stacklesslib.LifoQueue, [2, 1, 3]),
                            (stacklesslib.PriorityQueue, [1, 2, 3])):
            q = cls()
            for x in (3, 1, 2):
                q.put(x)
            self.assertEqual(q.qsize(), 3)
            self.assertEqual([q.get() for _ in range(3)], expect)
            self.assertTrue(q.empty())

    def test_nowait_and_errors(self):
        q = stacklesslib.Queue(maxsize=1)
        self.assertEqual(q.maxsize, 1)
        self.assertRaises(queue.Empty, q.get_nowait)
        self.assertRaises(queue.Empty, q.get, timeout=0.01)
        q.put_nowait(1)
        self.assertTrue(q.full())
        self.assertRaises(queue.Full, q.put_nowait, 2)
        self.assertRaises(queue.Full, q.put, 2, timeout=0.01)
        self.assertRaises(queue.Full, q.put, 2, False)
        self.assertRaises(ValueError, q.put, 2, True, -1)
        self.assertEqual(q.get(), 1)
        self.assertEqual(q.qsize(), 0)
        self.assertIs(stacklesslib._queue.Empty, queue.Empty)

    def test_fifo_getters_and_putters(self):
        q = stacklesslib.Queue(maxsize=1)
        got = []
        for i in range(3):
            self.spawn(lambda i=i: got.append((i, q.get())))
        stackless.schedule()
        for x in "abc":
            q.put(x)
        self.settle()
        self.assertEqual(got, [(0, "a"), (1, "b"), (2, "c")])
        q.put("x")
        for x in "yz":
            self.spawn(q.put, x)
        stackless.schedule()
        self.assertEqual(len(q._putters), 2)
        self.assertEqual([q.get(), q.get(), q.get()], ["x", "y", "z"])
        self.settle()
        self.assertTrue(q.empty())

    def test_task_done_join(self):
        q = stacklesslib.Queue()
        done = []

        def worker():
            while True:
                item = q.get()
                stackless.schedule()
                done.append(item)
                q.task_done()

        self.spawn(worker)
        for i in range(5):
            q.put(i)
        q.join()
        self.assertEqual(done, [0, 1, 2, 3, 4])
        self.assertRaises(ValueError, q.task_done)

    def test_shutdown(self):
        q = stacklesslib.Queue()
        q.put(1)
        q.put(2)
        self.assertFalse(q.is_shutdown)
        q.shutdown()
        self.assertTrue(q.is_shutdown)
        self.assertRaises(queue.ShutDown, q.put, 3)
        self.assertRaises(queue.ShutDown, q.put_nowait, 3)
        # The items left can still be had; then get() raises.
        self.assertEqual([q.get(), q.get()], [1, 2])
        self.assertRaises(queue.ShutDown, q.get)
        self.assertRaises(queue.ShutDown, q.get_nowait)
        self.assertRaises(queue.ShutDown, q.get, timeout=10)

    def test_shutdown_wakes_blocked_getters_and_putters(self):
        for immediate in (False, True):
            with self.subTest(immediate=immediate):
                empty = stacklesslib.Queue()
                full = stacklesslib.Queue(maxsize=1)
                full.put("kept")
                raised = []

                def call(func, *args):
                    try:
                        func(*args)
                    except queue.ShutDown:
                        raised.append(func.__name__)

                self.spawn(call, empty.get)
                self.spawn(call, empty.get, True, 30)
                self.spawn(call, full.put, "x")
                stackless.schedule()
                self.assertEqual(len(empty._getters), 2)
                self.assertEqual(len(full._putters), 1)
                empty.shutdown(immediate)
                full.shutdown(immediate)
                self.settle()
                self.assertEqual(sorted(raised), ["get", "get", "put"])
                self.assertEqual(full.qsize(), 0 if immediate else 1)
                self.assertEqual(_hub.get_hub()._ntimers, 0)

    def test_shutdown_immediate_releases_join(self):
        q = stacklesslib.Queue()
        for i in range(3):
            q.put(i)
        self.assertEqual(q.get(), 0)         # taken, not task_done()
        joined = []
        self.spawn(lambda: joined.append(q.join()))
        stackless.schedule()
        self.assertEqual(joined, [])
        q.shutdown(immediate=True)
        self.assertEqual(q.qsize(), 0)
        # The two dropped items are done; the one taken is not.
        self.assertEqual(q.unfinished_tasks, 1)
        stackless.schedule()
        self.assertEqual(joined, [])
        q.task_done()
        self.settle()
        self.assertEqual(joined, [None])
        self.assertRaises(ValueError, q.task_done)

    def test_shutdown_kill_granted_getter_loses_nothing(self):
        # A getter woken by shutdown() and killed before it runs puts
        # nothing back (there was no item).
        q = stacklesslib.Queue()
        t = self.spawn(q.get)
        stackless.schedule()
        q.shutdown()
        t.kill()
        self.assertEqual(q.qsize(), 0)
        self.assertRaises(queue.ShutDown, q.get_nowait)

    def test_get_timeout_vs_put(self):
        # The timer is due when put() hands over: the item is returned.
        q = stacklesslib.Queue()
        got = []
        self.spawn(lambda: got.append(q.get(timeout=0.01)))
        stackless.schedule()
        busy(0.05)
        q.put("item")
        self.settle()
        self.assertEqual(got, ["item"])
        self.assertTrue(q.empty())

    def test_stacklesslib_timeout_vs_put(self):
        q = stacklesslib.Queue()
        got = []

        def getter():
            try:
                with stacklesslib.timeout(0.01):
                    got.append(q.get())
                    stackless.schedule()
            except TimeoutError:
                got.append("timeout")

        self.spawn(getter)
        stackless.schedule()
        busy(0.05)
        q.put("item")
        self.settle()
        self.assertEqual(got[0], "item")
        self.assertTrue(q.empty())

    def test_timeouts_leave_queue_consistent(self):
        q = stacklesslib.Queue(maxsize=1)
        q.put(0)
        errors = []

        def putter():
            try:
                q.put(1, timeout=0.02)
            except queue.Full:
                errors.append("full")

        self.spawn(putter)
        self.settle()
        self.assertEqual(errors, ["full"])
        self.assertEqual(q.qsize(), 1)
        self.assertEqual(q.unfinished_tasks, 1)
        self.assertEqual(q.get(), 0)
        self.assertEqual(len(q._putters), 0)

    def test_kill_getter_after_grant_keeps_item(self):
        q = stacklesslib.Queue()
        got = []
        t1 = self.spawn(q.get)
        self.spawn(lambda: got.append(q.get()))
        stackless.schedule()
        q.put("a")                      # handed to t1
        self.assertEqual(q.qsize(), 0)
        t1.kill()
        self.settle()
        self.assertEqual(got, ["a"])    # the next getter has it
        t3 = self.spawn(q.get)
        stackless.schedule()
        q.put("b")
        t3.kill()
        self.assertEqual(q.get_nowait(), "b")

    def test_kill_blocked_getter_and_putter(self):
        q = stacklesslib.Queue(maxsize=1)
        t = self.spawn(q.get)
        stackless.schedule()
        t.kill()
        q.put(1)
        self.assertEqual(q.qsize(), 1)
        t = self.spawn(q.put, 2)
        stackless.schedule()
        t.kill()
        self.assertEqual(q.get(), 1)
        self.assertTrue(q.empty())
        self.assertEqual(q.unfinished_tasks, 1)


class TestEveryBlockingPoint(SyncTestCase):
    """A stacklesslib.timeout() and a kill() at each blocking call leave
    the object as it was before the call."""

    def blocking_points(self):
        # (name, setup() -> (blocking call, check of the state after))
        def lock(cls):
            def setup():
                lk = cls()
                lk.acquire()

                def check():
                    self.assertEqual(len(lk._waiters), 0)
                    lk.release()
                    self.assertFalse(lk.locked())
                return lk.acquire, check
            return setup

        def cond_wait():
            lk = stacklesslib.RLock()
            cond = stacklesslib.Condition(lk)

            def call():
                with cond:
                    cond.wait()

            def check():
                self.assertFalse(lk.locked())
                self.assertEqual(len(cond._waiters), 0)
            return call, check

        def sem():
            s = stacklesslib.Semaphore(0)

            def check():
                self.assertEqual((s._value, len(s._waiters)), (0, 0))
            return s.acquire, check

        def event():
            e = stacklesslib.Event()
            return e.wait, lambda: self.assertEqual(len(e._waiters), 0)

        def barrier():
            b = stacklesslib.Barrier(2)

            def call():
                try:
                    b.wait()
                except stacklesslib.BrokenBarrierError:
                    pass

            def check():
                self.assertTrue(b.broken)
                self.assertEqual(b._count, 0)
            return call, check

        def get():
            q = stacklesslib.Queue()

            def check():
                self.assertEqual((q.qsize(), len(q._getters)), (0, 0))
                q.put(1)
                self.assertEqual(q.get_nowait(), 1)
            return q.get, check

        def put():
            q = stacklesslib.Queue(1)
            q.put(0)

            def check():
                self.assertEqual(len(q._putters), 0)
                self.assertEqual(q.qsize(), 1)
                self.assertEqual(q.unfinished_tasks, 1)
                self.assertEqual(q.get_nowait(), 0)
            return lambda: q.put(1), check

        def join():
            q = stacklesslib.Queue()
            q.put(0)
            return q.join, lambda: self.assertEqual(len(q._joiners), 0)

        def select():
            a, b = stackless.channel(), stackless.channel()

            def check():
                self.settle()
                self.assertEqual((a.balance, b.balance), (0, 0))
            return (lambda: stacklesslib.select([(a, "recv"),
                                                 (b, "send", 1)]), check)

        return [("Lock", lock(stacklesslib.Lock)),
                ("RLock", lock(stacklesslib.RLock)),
                ("Condition.wait", cond_wait), ("Semaphore", sem),
                ("Event", event), ("Barrier", barrier), ("get", get),
                ("put", put), ("join", join), ("select", select)]

    def test_timeout(self):
        for name, setup in self.blocking_points():
            with self.subTest(name):
                call, check = setup()
                log = []

                def victim():
                    try:
                        with stacklesslib.timeout(0.01):
                            call()
                        log.append("returned")
                    except TimeoutError:
                        log.append("timeout")

                self.spawn(victim)
                self.settle()
                self.assertEqual(log, ["timeout"])
                check()

    def test_kill(self):
        for name, setup in self.blocking_points():
            with self.subTest(name):
                call, check = setup()
                t = self.spawn(call)
                stackless.schedule()
                stackless.schedule()
                self.assertTrue(t.blocked)
                t.kill()
                self.assertFalse(t.alive)
                check()


class TestCrossThread(SyncTestCase):

    def test_lock_and_queue_two_threads(self):
        lock = stacklesslib.Lock()
        q = stacklesslib.Queue(maxsize=3)
        inside = []
        counter = [0]
        received = []
        N = 40

        def locker():
            for _ in range(20):
                with lock:
                    self.assertEqual(inside, [])
                    inside.append(1)
                    stackless.schedule()
                    counter[0] += 1
                    inside.pop()
                stackless.schedule()

        def producer(base):
            for i in range(N):
                q.put(base + i)

        per_consumer = []

        def consumer():
            mine = []
            per_consumer.append(mine)
            for _ in range(N):
                item = q.get()
                mine.append(item)
                received.append(item)

        threads = [run_in_new_thread(locker, locker,
                                     lambda: producer(0),
                                     lambda: producer(1000)),
                   run_in_new_thread(locker, locker, consumer, consumer)]
        for th in threads:
            th.join(60)
            self.assertFalse(th.is_alive())
        self.assertEqual(counter[0], 80)
        self.assertFalse(lock.locked())
        self.assertEqual(sorted(received),
                         list(range(N)) + list(range(1000, 1000 + N)))
        self.assertTrue(q.empty())
        # FIFO: each consumer gets each producer's items in order.
        self.assertEqual(len(per_consumer), 2)
        for mine in per_consumer:
            for lo, hi in ((0, 1000), (1000, 2000)):
                part = [x for x in mine if lo <= x < hi]
                self.assertEqual(part, sorted(part))


class TestSelect(SyncTestCase):

    def test_ready_cases(self):
        a, b = stackless.channel(), stackless.channel()
        self.spawn(a.send, "A")
        self.spawn(b.send, "B")
        stackless.schedule()
        # Both ready: the first in list order.
        self.assertEqual(stacklesslib.select([(b, "recv"), (a, "recv")]),
                         (0, "B"))
        self.assertEqual(stacklesslib.select([(b, "recv"), (a, "recv")]),
                         (1, "A"))
        got = []
        self.spawn(lambda: got.append(b.receive()))
        stackless.schedule()
        self.assertEqual(stacklesslib.select([(a, "recv"), (b, "send", 7)]),
                         (1, None))
        self.settle()
        self.assertEqual(got, [7])

    def test_default_and_timeout(self):
        a = stackless.channel()
        self.assertEqual(stacklesslib.select([(a, "recv")], default=True),
                         (-1, None))
        self.assertEqual(stacklesslib.select([(a, "send", 1)], default=True),
                         (-1, None))
        self.assertRaises(TimeoutError, stacklesslib.select,
                          [(a, "recv")], timeout=0.02)
        self.assertRaises(TimeoutError, stacklesslib.select,
                          [(a, "send", 1)], timeout=0.02)
        self.assertRaises(TimeoutError, stacklesslib.select,
                          [(a, "recv")], timeout=0)
        self.settle()
        self.assertEqual(a.balance, 0)

    def test_exception_sent_to_a_waiting_case(self):
        # An exception sent to the channel of a 'recv' case while select()
        # blocks is its outcome: raised by select(), at once, the other
        # cases withdrawn and the timer cancelled.
        for how in ("send_exception", "send_throw"):
            with self.subTest(how=how):
                a, b = stackless.channel(), stackless.channel()

                def send():
                    stackless.schedule()
                    if how == "send_exception":
                        a.send_exception(KeyError, "x")
                    else:
                        a.send_throw(KeyError("x"))

                self.spawn(send)
                with self.assertRaises(KeyError):
                    stacklesslib.select([(b, "recv"), (a, "recv")],
                                        timeout=5)
                self.settle()
                self.assertEqual((a.balance, b.balance), (0, 0))

    def test_bad_cases(self):
        a, b = stackless.channel(), stackless.channel()
        self.assertRaises(TypeError, stacklesslib.select, [(1, "recv")])
        self.assertRaises(TypeError, stacklesslib.select, [a])
        self.assertRaises(ValueError, stacklesslib.select, [(a, "get")])
        self.assertRaises(ValueError, stacklesslib.select, [(a, "send")])
        self.assertRaises(ValueError, stacklesslib.select, [])

    def test_recv_and_send_on_one_channel(self):
        # The recv case cannot pair with select()'s own send.
        a = stackless.channel()
        self.assertRaises(TimeoutError, stacklesslib.select,
                          [(a, "recv"), (a, "send", 1)], timeout=0.02)
        self.settle()
        self.assertEqual(a.balance, 0)
        got = []
        self.spawn(lambda: got.append(a.receive()))
        stackless.schedule()
        self.assertEqual(
            stacklesslib.select([(a, "recv"), (a, "send", 2)]), (1, None))
        self.settle()
        self.assertEqual(got, [2])

    def test_blocking_recv(self):
        a, b = stackless.channel(), stackless.channel()
        res = []
        self.spawn(lambda: res.append(
            stacklesslib.select([(a, "recv"), (b, "recv")])))
        stackless.schedule()
        b.send("x")
        self.settle()
        self.assertEqual(res, [(1, "x")])
        self.assertEqual((a.balance, b.balance), (0, 0))

    def test_blocking_send_and_recv(self):
        a, b = stackless.channel(), stackless.channel()
        res = []
        sel = lambda: res.append(  # noqa: E731
            stacklesslib.select([(a, "recv"), (b, "send", "v")]))
        self.spawn(sel)
        stackless.schedule()
        self.assertEqual(b.receive(), "v")
        self.settle()
        self.assertEqual(res, [(1, None)])
        self.assertEqual(a.balance, 0)
        self.spawn(sel)
        stackless.schedule()
        a.send("w")
        self.settle()
        self.assertEqual(res[1], (0, "w"))
        self.assertEqual(b.balance, 0)     # the send was withdrawn

    def test_kill_and_timeout_while_blocked(self):
        a, b = stackless.channel(), stackless.channel()
        t = self.spawn(stacklesslib.select, [(a, "recv"), (b, "send", 1)])
        stackless.schedule()
        t.kill()
        self.settle()
        self.assertEqual((a.balance, b.balance), (0, 0))
        errors = []

        def sel():
            try:
                with stacklesslib.timeout(0.02):
                    stacklesslib.select([(a, "recv"), (b, "recv")])
            except TimeoutError:
                errors.append("timeout")

        self.spawn(sel)
        self.settle()
        self.assertEqual(errors, ["timeout"])
        self.assertEqual((a.balance, b.balance), (0, 0))

    def test_two_values_in_a_row_none_lost(self):
        # Two senders come one after the other before the first helper
        # runs: the first send withdraws the other helper in the same
        # step, so the second sender finds nobody and waits.
        a, b = stackless.channel(), stackless.channel()
        a.preference = b.preference = 1     # senders go on running
        res = []
        self.spawn(lambda: res.append(
            stacklesslib.select([(a, "recv"), (b, "recv")])))
        stackless.schedule()
        stackless.schedule()
        self.assertEqual((a.balance, b.balance), (-1, -1))
        a.send("A")
        self.assertEqual(b.balance, 0)      # withdrawn already
        self.spawn(b.send, "B")
        self.settle()
        self.assertEqual(res, [(0, "A")])
        self.assertEqual(b.balance, 1)      # "B" waits for a receiver
        self.assertEqual(b.receive(), "B")

    def test_several_send_cases(self):
        a, b, c = (stackless.channel() for _ in range(3))
        res = []
        self.spawn(lambda: res.append(stacklesslib.select(
            [(a, "send", "to a"), (b, "send", "to b"), (c, "recv")])))
        stackless.schedule()
        stackless.schedule()
        self.assertEqual((a.balance, b.balance, c.balance), (1, 1, -1))
        self.assertEqual(b.receive(), "to b")
        self.settle()
        self.assertEqual(res, [(1, None)])
        self.assertEqual((a.balance, b.balance, c.balance), (0, 0, 0))

    def test_several_send_cases_exactly_one_goes(self):
        # A tasklet receives on both channels in a row, running on after
        # its first value (receiver preference): only the first receive
        # gets one, the other send case was withdrawn in the same step.
        a, b = stackless.channel(), stackless.channel()
        a.preference = b.preference = -1    # receivers go on running
        res, got = [], []
        self.spawn(lambda: res.append(stacklesslib.select(
            [(a, "send", 1), (b, "send", 2)])))
        stackless.schedule()
        stackless.schedule()
        self.assertEqual((a.balance, b.balance), (1, 1))

        def receive_both():
            got.append(a.receive())
            got.append(("b", b.balance))

        self.spawn(receive_both)
        self.settle()
        self.assertEqual(res, [(0, None)])
        self.assertEqual(got, [1, ("b", 0)])

    def test_several_send_cases_timeout_and_kill(self):
        a, b = stackless.channel(), stackless.channel()
        self.assertRaises(TimeoutError, stacklesslib.select,
                          [(a, "send", 1), (b, "send", 2)], timeout=0.02)
        self.settle()
        self.assertEqual((a.balance, b.balance), (0, 0))
        t = self.spawn(stacklesslib.select,
                       [(a, "send", 1), (b, "send", 2)])
        stackless.schedule()
        stackless.schedule()
        self.assertEqual((a.balance, b.balance), (1, 1))
        t.kill()
        self.settle()
        self.assertEqual((a.balance, b.balance), (0, 0))

    def test_several_send_cases_across_threads(self):
        a, b = stackless.channel(), stackless.channel()
        res, got = [], []
        self.spawn(lambda: res.append(stacklesslib.select(
            [(a, "send", "A"), (b, "send", "B")])))
        stackless.schedule()
        stackless.schedule()
        th = run_in_new_thread(lambda: got.append(b.receive()))
        wait_until(lambda: not th.is_alive())
        th.join()
        self.settle()
        self.assertEqual(got, ["B"])
        self.assertEqual(res, [(1, None)])
        self.assertEqual((a.balance, b.balance), (0, 0))

    def test_exactly_once_under_contention(self):
        chans = [stackless.channel() for _ in range(3)]
        N = 60
        received = []
        STOP = object()

        def selector():
            while True:
                i, v = stacklesslib.select([(c, "recv") for c in chans])
                if v is STOP:
                    return
                received.append(v)
                if len(received) % 7 == 0:
                    stackless.schedule()

        def sender(k):
            for j in range(N):
                chans[(k + j) % 3].send((k, j))

        sels = [self.spawn(selector) for _ in range(4)]
        th = run_in_new_thread(lambda: sender(0), lambda: sender(1))
        for k in (2, 3):
            self.spawn(sender, k)
        wait_until(lambda: len(received) >= 4 * N)
        th.join(60)
        self.assertFalse(th.is_alive())
        for _ in sels:
            chans[0].send(STOP)
        self.settle()
        self.assertEqual(len(received), 4 * N)
        self.assertEqual(sorted(received),
                         [(k, j) for k in range(4) for j in range(N)])
        for c in chans:
            self.assertEqual(c.balance, 0)

    def test_exactly_once_with_send_cases(self):
        # Selectors in two threads race on shared channels: each either
        # receives from `inp` or forwards a token on `out`.  Every value
        # sent on inp is received exactly once; every token that the
        # select reports as sent was received exactly once, and none
        # that it does not report.
        inp, out = stackless.channel(), stackless.channel()
        inp.preference = 1          # senders run on: values pile up
        N, ROUNDS = 50, 40
        got_in, sent_tokens, got_tokens, done = [], [], [], []

        def selector(name):
            for r in range(ROUNDS):
                token = (name, r)
                i, v = stacklesslib.select([(inp, "recv"),
                                            (out, "send", token)])
                if i == 0:
                    got_in.append(v)
                else:
                    sent_tokens.append(token)
            done.append(name)

        def sender(k):
            for j in range(N):
                inp.send((k, j))

        def token_reader():
            while True:
                v = out.receive()
                if v is None:
                    return
                got_tokens.append(v)

        th = run_in_new_thread(lambda: selector("t0"),
                               lambda: selector("t1"),
                               lambda: sender(0))
        for name in ("m0", "m1"):
            self.spawn(selector, name)
        self.spawn(sender, 1)
        reader = self.spawn(token_reader)
        wait_until(lambda: len(done) == 4)
        # The selectors are done; what they did not take is still offered
        # (blocked senders, or values a helper sends again).
        rest = []

        def drained():
            while inp.balance > 0:
                rest.append(inp.receive())
            return len(got_in) + len(rest) >= 2 * N

        wait_until(drained)
        th.join(60)
        self.assertFalse(th.is_alive())
        out.send(None)
        self.settle()
        self.assertFalse(reader.alive)
        self.assertEqual(len(got_in) + len(sent_tokens), 4 * ROUNDS)
        self.assertEqual(sorted(got_in + rest),
                         [(k, j) for k in range(2) for j in range(N)])
        self.assertEqual(sorted(sent_tokens), sorted(got_tokens))
        self.assertGreater(len(got_tokens), 0)
        self.assertEqual((inp.balance, out.balance), (0, 0))

    def test_select_across_threads(self):
        a, b = stackless.channel(), stackless.channel()
        out = []

        def other():
            out.append(stacklesslib.select([(a, "recv"), (b, "send", 5)]))

        th = threading.Thread(target=other)
        th.start()
        wait_until(lambda: b.balance == 1)
        self.assertEqual(b.receive(), 5)
        th.join()
        self.assertEqual(out, [(1, None)])
        self.assertEqual(a.balance, 0)


if __name__ == "__main__":
    unittest.main()
