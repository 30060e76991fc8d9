"""stacklesslib: the hub of a thread, sleep, timers, timeouts, fd waits,
run_in_thread, and the thread wakeup fd of _stackless."""

import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import stackless
import stacklesslib
from stacklesslib import _hub
from test.support import import_helper

from test.test_stackless.helpers import drive_hub, kill_all


drive = drive_hub


class HubTestCase(unittest.TestCase):

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.hub = _hub.get_hub()
        drive()
        self.assertEqual(stackless.getruncount(), 1)
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
        self.assertEqual(self.hub._ntimers, 0)
        self.assertEqual(self.hub._nwaiters, 0)
        self.assertEqual(self.hub._fds, {})
        self.assertEqual(stackless.getruncount(), 1)

    def run_all(self):
        stackless.run()
        drive()


class TestSleep(HubTestCase):

    def test_order_and_lower_bound(self):
        log = []
        start = time.monotonic()

        def sleeper(d):
            stacklesslib.sleep(d)
            log.append((d, time.monotonic() - start))

        for d in (0.3, 0.1, 0.2, 0.15):
            self.spawn(sleeper, d)
        self.run_all()
        self.assertEqual([d for d, _ in log], [0.1, 0.15, 0.2, 0.3])
        for d, elapsed in log:
            self.assertGreaterEqual(elapsed, d)
            self.assertLess(elapsed, d + 5)

    def test_main_sleeps_alone(self):
        start = time.monotonic()
        stacklesslib.sleep(0.2)
        self.assertGreaterEqual(time.monotonic() - start, 0.2)

    def test_main_sleeps_while_others_sleep(self):
        log = []
        self.spawn(lambda: (stacklesslib.sleep(0.05), log.append("t")))
        stacklesslib.sleep(0.15)
        log.append("main")
        self.assertEqual(log, ["t", "main"])

    def test_sleep_zero_yields(self):
        log = []

        def f(name):
            for i in range(3):
                log.append((name, i))
                stacklesslib.sleep(0)

        self.spawn(f, "a")
        self.spawn(f, "b")
        self.run_all()
        self.assertEqual(log, [("a", 0), ("b", 0), ("a", 1), ("b", 1),
                               ("a", 2), ("b", 2)])

    def test_bad_durations(self):
        self.assertRaises(ValueError, stacklesslib.sleep, -1)
        self.assertRaises(ValueError, stacklesslib.sleep, float("nan"))
        self.assertRaises(TypeError, stacklesslib.sleep, "1")
        self.assertRaises(TypeError, stacklesslib.sleep, None)

    def test_idle_does_not_spin(self):
        # Let the hub and anything before settle, then measure the CPU
        # time of a one-second sleep: the hub waits in epoll.
        cpu = time.process_time()
        start = time.monotonic()
        stacklesslib.sleep(1.0)
        self.assertGreaterEqual(time.monotonic() - start, 1.0)
        self.assertLess(time.process_time() - cpu, 0.2)

    def test_many_sleepers_same_deadline_fifo(self):
        log = []
        for i in range(50):
            self.spawn(lambda i=i: (stacklesslib.sleep(0.05), log.append(i)))
        self.run_all()
        self.assertEqual(sorted(log), list(range(50)))

    def test_due_sleeper_cuts_into_a_long_runqueue(self):
        # A sleeper whose deadline passes while a burst of tasklets runs
        # wakes at the next sleep() call of the burst, not after all of
        # it (the hub's own turn is last in the runqueue).
        log = []
        self.spawn(lambda: (stacklesslib.sleep(0.005), log.append("A")))
        stackless.schedule()            # A sleeps

        def burst(i):
            time.sleep(0.002)           # work that takes the thread
            log.append(i)
            stacklesslib.sleep(0.001)

        for i in range(20):
            self.spawn(burst, i)
        self.run_all()
        self.assertIn("A", log)
        # Its deadline passed by the third tasklet at the latest.
        self.assertLess(log.index("A"), 8, log)
        self.assertEqual(sorted(x for x in log if x != "A"),
                         list(range(20)))

    def test_woken_sleeper_runs_before_runnable_tasklets(self):
        # A timer wakes its sleeper and runs it at once; the tasklets
        # that were runnable already run after it, in their order.
        log = []
        self.spawn(lambda: (stacklesslib.sleep(0.01), log.append("A")))
        stackless.schedule()
        time.sleep(0.02)                # A is due

        def spinner(name):
            for _ in range(2):
                log.append(name)
                stackless.schedule()

        self.spawn(spinner, "x")
        self.spawn(spinner, "y")
        stacklesslib.sleep(0.001)       # main: the hub catches up first
        self.run_all()
        self.assertEqual(log[0], "A", log)
        self.assertEqual([x for x in log if x != "A"], ["x", "y", "x", "y"])

    def test_run_returns_after_sleepers(self):
        done = []
        self.spawn(lambda: (stacklesslib.sleep(0.1), done.append(1)))
        stackless.run()
        self.assertEqual(done, [1])


class TestCallLater(HubTestCase):

    def test_order_args_and_thread(self):
        log = []
        stacklesslib.call_later(0.1, log.append, "b")
        stacklesslib.call_later(0.05, log.append, "a")
        h = stacklesslib.call_at(stacklesslib.monotonic() + 0.15,
                                 lambda x, y: log.append(x + y), "c", "d")
        self.assertIsInstance(h, stacklesslib.TimerHandle)
        stacklesslib.sleep(0.3)
        self.assertEqual(log, ["a", "b", "cd"])
        self.assertFalse(h.cancelled())
        self.assertFalse(h.cancel())

    def test_same_deadline_in_registration_order(self):
        log = []
        when = stacklesslib.monotonic() + 0.05
        for i in range(10):
            stacklesslib.call_at(when, log.append, i)
        stacklesslib.sleep(0.1)
        self.assertEqual(log, list(range(10)))

    def test_cancel(self):
        log = []
        h = stacklesslib.call_later(0.05, log.append, 1)
        self.assertTrue(h.cancel())
        self.assertTrue(h.cancelled())
        self.assertFalse(h.cancel())
        stacklesslib.sleep(0.1)
        self.assertEqual(log, [])
        self.assertEqual(self.hub._ntimers, 0)

    def test_cancel_by_earlier_callback(self):
        log = []
        when = stacklesslib.monotonic() + 0.05
        h2 = None
        stacklesslib.call_at(when, lambda: h2.cancel())
        h2 = stacklesslib.call_at(when, log.append, 2)
        stacklesslib.sleep(0.1)
        self.assertEqual(log, [])
        self.assertTrue(h2.cancelled())

    def test_many_cancelled_timers_are_dropped(self):
        handles = [stacklesslib.call_later(100, print) for _ in range(500)]
        for h in handles:
            h.cancel()
        self.assertLess(len(self.hub._timers), 200)

    def test_callback_error_is_reported_and_hub_goes_on(self):
        log = []
        reported = []
        self.hub.handle_error = lambda exc, ctx: reported.append(exc)
        try:
            stacklesslib.call_later(0.01, lambda: 1 / 0)
            stacklesslib.call_later(0.02, log.append, "after")
            stacklesslib.sleep(0.05)
        finally:
            del self.hub.handle_error
        self.assertEqual(log, ["after"])
        self.assertEqual(len(reported), 1)
        self.assertIsInstance(reported[0], ZeroDivisionError)

    def test_callback_must_not_block(self):
        reported = []
        ch = stackless.channel()
        self.hub.handle_error = lambda exc, ctx: reported.append(exc)
        try:
            stacklesslib.call_later(0.01, ch.send, 1)
            stacklesslib.sleep(0.05)
        finally:
            del self.hub.handle_error
        self.assertEqual(len(reported), 1)
        self.assertIsInstance(reported[0], RuntimeError)
        self.assertEqual(ch.balance, 0)

    def test_bad_arguments(self):
        self.assertRaises(TypeError, stacklesslib.call_later, 1, None)
        self.assertRaises(TypeError, stacklesslib.call_later, "x", print)
        self.assertRaises(ValueError, stacklesslib.call_later,
                          float("nan"), print)
        self.assertEqual(self.hub._ntimers, 0)

    def test_timer_keeps_blocked_main_from_deadlock(self):
        ch = stackless.channel()
        ch.preference = 0
        stacklesslib.call_later(0.05, ch.send, 42)
        self.assertEqual(ch.receive(), 42)


class TestTimeout(HubTestCase):

    def test_none_does_nothing(self):
        with stacklesslib.timeout(None) as t:
            stacklesslib.sleep(0.01)
        self.assertFalse(t.expired)
        self.assertEqual(self.hub._ntimers, 0)

    def test_bad_seconds(self):
        self.assertRaises(TypeError, stacklesslib.timeout, "x")
        self.assertRaises(ValueError, stacklesslib.timeout, float("nan"))

    def test_receive(self):
        ch = stackless.channel()
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.1) as t:
                ch.receive()
        self.assertTrue(t.expired)
        self.assertGreaterEqual(time.monotonic() - start, 0.1)
        self.assertEqual(ch.balance, 0)
        # The channel still works, nothing is stuck in it.
        self.spawn(ch.send, 5)
        self.assertEqual(ch.receive(), 5)

    def test_send(self):
        ch = stackless.channel()
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05) as t:
                ch.send("lost?")
        self.assertTrue(t.expired)
        self.assertEqual(ch.balance, 0)

    def test_receive_in_other_tasklet(self):
        ch = stackless.channel()
        log = []

        def receiver():
            try:
                with stacklesslib.timeout(0.05):
                    ch.receive()
            except TimeoutError as e:
                log.append(str(e))

        self.spawn(receiver)
        self.run_all()
        self.assertEqual(len(log), 1)
        self.assertIn("timed out", log[0])
        self.assertEqual(ch.balance, 0)

    def test_sleep(self):
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05):
                stacklesslib.sleep(10)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(self.hub._ntimers, 0)

    def test_fd_wait(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05):
                stacklesslib.wait_readable(a)
        self.assertEqual(self.hub._nwaiters, 0)
        self.assertEqual(self.hub._fds, {})

    def test_no_timeout_when_fast(self):
        ch = stackless.channel()
        self.spawn(ch.send, "v")
        with stacklesslib.timeout(5) as t:
            self.assertEqual(ch.receive(), "v")
        self.assertFalse(t.expired)
        self.assertEqual(self.hub._ntimers, 0)

    def test_zero_fires_at_first_wait(self):
        ch = stackless.channel()
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0):
                ch.receive()
        self.assertEqual(ch.balance, 0)

    def test_nested_inner_first(self):
        ch = stackless.channel()
        with stacklesslib.timeout(5) as outer:
            with self.assertRaises(TimeoutError):
                with stacklesslib.timeout(0.05) as inner:
                    ch.receive()
            self.assertEqual(self.hub._ntimers, 1)
        self.assertTrue(inner.expired)
        self.assertFalse(outer.expired)
        self.assertEqual(self.hub._ntimers, 0)
        self.assertEqual(ch.balance, 0)

    def test_nested_outer_first(self):
        ch = stackless.channel()
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05) as outer:
                with stacklesslib.timeout(5) as inner:
                    ch.receive()
        self.assertTrue(outer.expired)
        self.assertFalse(inner.expired)
        self.assertEqual(self.hub._ntimers, 0)

    def test_timer_cancelled_on_exit_with_error(self):
        with self.assertRaises(KeyError):
            with stacklesslib.timeout(0.05):
                raise KeyError
        self.assertEqual(self.hub._ntimers, 0)
        stacklesslib.sleep(0.1)     # would have fired: nothing happens

    def test_value_is_not_lost(self):
        # The deadline passes while the receiver is runnable with its
        # value, and the hub runs before it: no TimeoutError, the value
        # arrives.
        ch = stackless.channel()
        ch.preference = 0
        got = []

        def receiver():
            with stacklesslib.timeout(0.02) as t:
                got.append(ch.receive())
            got.append(t.expired)

        self.spawn(receiver)
        stackless.schedule()                # receiver blocks
        self.assertEqual(ch.balance, -1)
        busy = time.monotonic() + 0.1
        while time.monotonic() < busy:
            pass                            # the deadline passes
        ch.send(42)                         # receiver runnable, after hub
        self.run_all()
        self.assertEqual(got, [42, False])

    def test_value_taken_then_next_wait_times_out(self):
        ch = stackless.channel()
        ch.preference = 0
        got = []

        def receiver():
            try:
                with stacklesslib.timeout(0.02):
                    got.append(ch.receive())
                    got.append(ch.receive())
            except TimeoutError:
                got.append("timeout")

        self.spawn(receiver)
        stackless.schedule()
        busy = time.monotonic() + 0.1
        while time.monotonic() < busy:
            pass
        ch.send(1)
        self.run_all()
        self.assertEqual(got, [1, "timeout"])
        self.assertEqual(ch.balance, 0)

    def test_timeout_around_run(self):
        # Main paused in run() while a tasklet waits forever on an fd.
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        t = self.spawn(stacklesslib.wait_readable, a)
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05):
                stackless.run()
        self.assertTrue(t.blocked)
        t.kill()
        self.assertEqual(self.hub._nwaiters, 0)

    def test_kill_inside(self):
        ch = stackless.channel()
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        finals = []

        def in_receive():
            with stacklesslib.timeout(5):
                try:
                    ch.receive()
                finally:
                    finals.append("receive")

        def in_sleep():
            with stacklesslib.timeout(5):
                try:
                    stacklesslib.sleep(10)
                finally:
                    finals.append("sleep")

        def in_fd():
            with stacklesslib.timeout(5):
                try:
                    stacklesslib.wait_readable(a)
                finally:
                    finals.append("fd")

        def in_send():
            with stacklesslib.timeout(5):
                try:
                    ch.send("never taken")
                finally:
                    finals.append("send")

        ts = [self.spawn(f) for f in (in_receive, in_sleep, in_fd)]
        stacklesslib.sleep(0.02)
        self.assertTrue(all(t.blocked for t in ts))
        self.assertEqual(self.hub._ntimers, 4)
        self.assertEqual(self.hub._nwaiters, 1)
        for t in ts:
            t.kill()
            self.assertFalse(t.alive)
        t = self.spawn(in_send)
        stacklesslib.sleep(0.02)
        self.assertEqual(ch.balance, 1)
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(finals, ["receive", "sleep", "fd", "send"])
        self.assertEqual(self.hub._ntimers, 0)
        self.assertEqual(self.hub._nwaiters, 0)
        self.assertEqual(ch.balance, 0)

    def test_reuse_refused_while_active(self):
        to = stacklesslib.timeout(1)
        with to:
            with self.assertRaises(RuntimeError):
                to.__enter__()
        with to:        # reusable afterwards
            pass


class TestFdWaits(HubTestCase):

    def pair(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.setblocking(False)
        b.setblocking(False)
        return a, b

    def test_readable(self):
        a, b = self.pair()
        log = []

        def reader():
            stacklesslib.wait_readable(a)
            log.append(a.recv(10))

        self.spawn(reader)
        stacklesslib.sleep(0.05)
        self.assertEqual(log, [])
        b.send(b"hi")
        self.run_all()
        self.assertEqual(log, [b"hi"])

    def test_writable_at_once_and_fd_int(self):
        a, b = self.pair()
        stacklesslib.wait_writable(a.fileno())
        stacklesslib.wait_writable(a, timeout=1)

    def test_main_waits_alone(self):
        a, b = self.pair()
        stacklesslib.call_later(0.05, b.send, b"x")
        stacklesslib.wait_readable(a, timeout=5)
        self.assertEqual(a.recv(1), b"x")

    def test_timeout_argument(self):
        a, b = self.pair()
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            stacklesslib.wait_readable(a, timeout=0.05)
        self.assertGreaterEqual(time.monotonic() - start, 0.05)
        self.assertEqual(self.hub._fds, {})

    def test_several_readers_and_a_writer(self):
        a, b = self.pair()
        log = []
        # Fill a's send buffer so that a writer must wait.
        try:
            while True:
                a.send(b"x" * 65536)
        except BlockingIOError:
            pass

        def reader(i):
            stacklesslib.wait_readable(a)
            log.append(("r", i))

        def writer():
            stacklesslib.wait_writable(a)
            log.append("w")

        for i in range(3):
            self.spawn(reader, i)
        self.spawn(writer)
        stacklesslib.sleep(0.02)
        self.assertEqual(log, [])
        self.assertEqual(self.hub._nwaiters, 4)
        b.send(b"y")
        stacklesslib.sleep(0.02)
        self.assertEqual(sorted(log), [("r", 0), ("r", 1), ("r", 2)])
        # Drain b: a becomes writable.
        try:
            while b.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
        self.run_all()
        self.assertEqual(log[-1], "w")

    def test_cancel_wait(self):
        a, b = self.pair()
        errors = []

        def reader():
            try:
                stacklesslib.wait_readable(a)
            except OSError as e:
                errors.append(e.errno)

        self.spawn(reader)
        self.spawn(reader)
        stacklesslib.sleep(0.01)
        self.assertEqual(self.hub.cancel_wait(a), 2)
        self.run_all()
        self.assertEqual(errors, [errno.EBADF, errno.EBADF])
        self.assertEqual(self.hub.cancel_wait(a), 0)

    def test_cancel_wait_custom_exception(self):
        a, b = self.pair()
        errors = []

        def reader():
            try:
                stacklesslib.wait_readable(a)
            except ConnectionAbortedError as e:
                errors.append(e)

        self.spawn(reader)
        stacklesslib.sleep(0.01)
        self.hub.cancel_wait(a.fileno(), ConnectionAbortedError("closed"))
        self.run_all()
        self.assertEqual(len(errors), 1)

    def test_close_fd(self):
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        errors = []

        def reader():
            try:
                stacklesslib.wait_readable(r)
            except OSError as e:
                errors.append(e.errno)

        self.spawn(reader)
        stacklesslib.sleep(0.01)
        self.hub.close_fd(r)
        self.run_all()
        self.assertEqual(errors, [errno.EBADF])
        self.assertRaises(OSError, os.fstat, r)

    def test_bad_input(self):
        self.assertRaises(TypeError, stacklesslib.wait_readable, "x")
        self.assertRaises(ValueError, stacklesslib.wait_readable, -1)
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        self.assertRaises(OSError, stacklesslib.wait_readable, r)
        self.assertRaises(ValueError, self.hub.wait_fd, 0, 0)
        self.assertEqual(self.hub._fds, {})
        self.assertEqual(self.hub._nwaiters, 0)

    def test_hangup_wakes_reader(self):
        a, b = self.pair()
        log = []

        def reader():
            stacklesslib.wait_readable(a)
            log.append(a.recv(10))

        self.spawn(reader)
        stacklesslib.sleep(0.01)
        b.close()
        self.run_all()
        self.assertEqual(log, [b""])


class TestRunInThread(HubTestCase):

    def tearDown(self):
        _hub._pool.shutdown()

    def test_result_and_concurrency(self):
        ticks = []

        def ticker():
            for i in range(5):
                ticks.append(i)
                stacklesslib.sleep(0.01)

        self.spawn(ticker)
        me = threading.get_ident()
        ident = stacklesslib.run_in_thread(
            lambda d: (time.sleep(d), threading.get_ident())[1], 0.2)
        self.assertNotEqual(ident, me)
        self.assertEqual(ticks, [0, 1, 2, 3, 4])

    def test_kwargs_and_exception(self):
        self.assertEqual(stacklesslib.run_in_thread(int, "ff", base=16), 255)
        with self.assertRaises(ZeroDivisionError):
            stacklesslib.run_in_thread(lambda: 1 / 0)
        self.assertRaises(TypeError, stacklesslib.run_in_thread, None)

    def test_main_alone_waits_without_timers(self):
        # No timer: the hub is idle, main waits for the worker thread.
        self.assertEqual(stacklesslib.run_in_thread(
            lambda: (time.sleep(0.1), "done")[1]), "done")

    def test_kill_while_waiting(self):
        ev = threading.Event()
        log = []

        def waiter():
            try:
                stacklesslib.run_in_thread(ev.wait, 5)
            finally:
                log.append("cleaned")

        t = self.spawn(waiter)
        stacklesslib.sleep(0.02)
        self.assertTrue(t.blocked)
        t.kill()
        self.assertEqual(log, ["cleaned"])
        ev.set()
        stacklesslib.sleep(0.05)     # the late result is dropped

    def test_timeout_drops_result(self):
        ev = threading.Event()
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05):
                stacklesslib.run_in_thread(ev.wait, 5)
        ev.set()
        stacklesslib.sleep(0.05)


class TestThreads(HubTestCase):

    def test_hub_per_thread(self):
        results = {}

        def thread_main(name):
            log = []
            hub = _hub.get_hub()

            def sleeper(d):
                stacklesslib.sleep(d)
                log.append(d)

            for d in (0.1, 0.05):
                stackless.tasklet(sleeper)(d)
            where = []
            stacklesslib.call_later(0.02,
                                    lambda: where.append(threading.get_ident()))
            stackless.run()
            results[name] = (log, hub, where, threading.get_ident())

        threads = [threading.Thread(target=thread_main, args=(n,))
                   for n in ("a", "b")]
        for t in threads:
            t.start()
        stacklesslib.sleep(0.02)     # main's hub works meanwhile
        for t in threads:
            t.join()
        (log_a, hub_a, where_a, id_a) = results["a"]
        (log_b, hub_b, where_b, id_b) = results["b"]
        self.assertEqual(log_a, [0.05, 0.1])
        self.assertEqual(log_b, [0.05, 0.1])
        self.assertIsNot(hub_a, hub_b)
        self.assertIsNot(hub_a, self.hub)
        self.assertEqual(where_a, [id_a])
        self.assertEqual(where_b, [id_b])

    def test_cross_thread_wakes_hub_in_epoll(self):
        # A far timer keeps the hub waiting in epoll; another thread
        # sends to main: the hub must wake at once, not at the timer.
        ch = stackless.channel()
        h = stacklesslib.call_later(30, print)

        def sender():
            time.sleep(0.2)
            ch.send("hello")

        th = threading.Thread(target=sender)
        start = time.monotonic()
        th.start()
        try:
            self.assertEqual(ch.receive(), "hello")
        finally:
            h.cancel()
            th.join()
        self.assertLess(time.monotonic() - start, 5)

    def test_cross_thread_insert_wakes_hub_in_epoll(self):
        # A paused tasklet of this thread that another thread inserts
        # while main is blocked and the hub waits in epoll.
        ch = stackless.channel()
        t = stackless.tasklet(ch.send, ("ran",))
        self.tasklets.append(t)
        h = stacklesslib.call_later(30, print)
        th = threading.Timer(0.1, t.insert)
        start = time.monotonic()
        th.start()
        try:
            self.assertEqual(ch.receive(), "ran")
        finally:
            h.cancel()
            th.join()
        self.assertLess(time.monotonic() - start, 5)

    def test_post_from_thread_without_gil_wakes_hub(self):
        # PyStackless_PostToChannel() from a thread without the GIL, while
        # main is blocked and the hub waits in epoll for a far timer.
        T = import_helper.import_module("_teststackless")
        ch = stackless.channel()
        h = stacklesslib.call_later(30, print)
        start = time.monotonic()
        try:
            T.post_later(ch, "posted", 100)
            self.assertEqual(ch.receive(), "posted")
        finally:
            h.cancel()
        self.assertLess(time.monotonic() - start, 5)

    def test_call_soon_threadsafe(self):
        ch = stackless.channel()
        ch.preference = 0
        h = stacklesslib.call_later(30, print)
        th = threading.Timer(
            0.1, self.hub.call_soon_threadsafe,
            (lambda: ch.send(threading.get_ident()),))
        start = time.monotonic()
        th.start()
        try:
            self.assertEqual(ch.receive(), threading.get_ident())
        finally:
            h.cancel()
            th.join()
        self.assertLess(time.monotonic() - start, 5)

    def test_call_soon_threadsafe_idle_hub(self):
        # The hub is idle (nothing pending): the call puts it back.
        ch = stackless.channel()
        ch.preference = 0
        th = threading.Timer(0.1, self.hub.call_soon_threadsafe,
                             (ch.send, "x"))
        th.start()
        try:
            self.assertEqual(ch.receive(), "x")
        finally:
            th.join()


class TestPreemption(HubTestCase):

    def test_run_with_timeout(self):
        done = []

        def busy():
            while not done:
                pass

        def sleeper():
            stacklesslib.sleep(0.05)
            done.append(1)

        self.spawn(busy)
        self.spawn(sleeper)
        interrupted = 0
        deadline = time.monotonic() + 10
        while stackless.getruncount() > 1 or self.hub._pending():
            t = stackless.run(1000)
            if t is not None:
                interrupted += 1
                t.insert()
            self.assertLess(time.monotonic(), deadline)
        self.assertEqual(done, [1])
        self.assertGreater(interrupted, 0)


class TestSignals(HubTestCase):

    @unittest.skipUnless(hasattr(signal, "raise_signal"), "raise_signal")
    def test_keyboard_interrupt_from_timer(self):
        stacklesslib.call_later(0.05, signal.raise_signal, signal.SIGINT)
        start = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            stacklesslib.sleep(5)
        self.assertLess(time.monotonic() - start, 4.5)
        # The hub survives and works.
        stacklesslib.sleep(0.01)

    @unittest.skipUnless(hasattr(signal, "pthread_kill"), "pthread_kill")
    def test_keyboard_interrupt_in_epoll(self):
        # main blocked on a channel, the hub in epoll for a far timer; the
        # signal interrupts epoll and reaches main.
        ch = stackless.channel()
        h = stacklesslib.call_later(30, print)
        th = threading.Timer(0.1, signal.pthread_kill,
                             (threading.main_thread().ident, signal.SIGINT))
        th.start()
        start = time.monotonic()
        try:
            with self.assertRaises(KeyboardInterrupt):
                ch.receive()
        finally:
            h.cancel()
            th.join()
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(ch.balance, 0)
        stacklesslib.sleep(0.01)


class InSubprocess(unittest.TestCase):

    def run_code(self, code):
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                              capture_output=True, text=True, timeout=60)


class TestDeadlock(InSubprocess):

    def test_deadlock_when_nothing_pending(self):
        r = self.run_code("""
            import stackless, stacklesslib
            stacklesslib.sleep(0.01)
            try:
                stackless.channel().receive()
            except RuntimeError as e:
                print("E", e)
        """)
        self.assertIn("E Deadlock", r.stdout, r.stderr)

    def test_deadlock_after_last_timer(self):
        r = self.run_code("""
            import stackless, stacklesslib, time
            log = []
            stacklesslib.call_later(0.1, log.append, 1)
            start = time.monotonic()
            try:
                stackless.channel().receive()
            except RuntimeError as e:
                print("E", e, log, time.monotonic() - start >= 0.1)
        """)
        self.assertIn("E Deadlock", r.stdout, r.stderr)
        self.assertIn("[1] True", r.stdout)

    def test_run_returns_when_tasklet_blocks_forever(self):
        # As without a hub (S-12 (1)): main paused in run() resumes when
        # the last tasklet blocks and nothing is pending.
        r = self.run_code("""
            import stackless, stacklesslib
            def f():
                stacklesslib.sleep(0.05)
                stackless.channel().receive()
            t = stackless.tasklet(f)()
            stackless.run()
            print("returned", t.blocked)
        """)
        self.assertIn("returned True", r.stdout, r.stderr)


class TestFork(InSubprocess):

    @unittest.skipUnless(hasattr(os, "fork"), "fork")
    def test_child_has_its_own_hub(self):
        r = self.run_code("""
            import os, socket, stackless, stacklesslib
            from stacklesslib import _hub
            a, b = socket.socketpair()
            stacklesslib.sleep(0.01)
            parent_selector = _hub.get_hub().selector
            h = stacklesslib.call_later(0.3, b.send, b"p")
            pid = os.fork()
            if pid == 0:
                hub = _hub.get_hub()
                ok = hub.selector is not parent_selector
                c, d = socket.socketpair()
                stacklesslib.call_later(0.05, d.send, b"c")
                stacklesslib.wait_readable(c, timeout=5)
                ok = ok and c.recv(1) == b"c"
                ok = ok and stacklesslib.run_in_thread(lambda: 7) == 7
                h.cancel()
                os._exit(0 if ok else 1)
            stacklesslib.wait_readable(a, timeout=5)
            print("parent got", a.recv(10))
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status))
        """)
        self.assertIn("child exit 0", r.stdout, r.stderr)
        self.assertIn("parent got b'p'", r.stdout, r.stderr)


class TestWakeupFd(unittest.TestCase):

    def test_set_and_get(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        old = stackless.set_thread_wakeup_fd(w)
        try:
            self.assertEqual(stackless.set_thread_wakeup_fd(w), w)
        finally:
            self.assertEqual(stackless.set_thread_wakeup_fd(old), w)

    def test_bad_input(self):
        self.assertRaises(ValueError, stackless.set_thread_wakeup_fd, -2)
        self.assertRaises(TypeError, stackless.set_thread_wakeup_fd, "1")
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        self.assertRaises(ValueError, stackless.set_thread_wakeup_fd, w)
        self.assertRaises(TypeError, stackless.set_thread_wakeup_fd, 1, "x")
        self.assertRaises(ValueError, stackless.set_thread_wakeup_fd, 1,
                          2 ** 40 + 12345)

    def test_other_thread_writes_a_byte(self):
        # In a new process: no other thread ends meanwhile (the end of a
        # thread wakes every thread, a byte each).
        code = textwrap.dedent("""
            import os, stackless, threading
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            log = []
            old = stackless.set_thread_wakeup_fd(w)
            # Our own inserts write nothing.
            stackless.tasklet(log.append, ("y",)).insert()
            try:
                os.read(r, 10)
                print("unexpected byte")
            except BlockingIOError:
                pass
            t = stackless.tasklet(log.append, ("x",))
            go = threading.Event()
            done = threading.Event()
            def other():
                t.insert()
                done.set()
                go.wait(10)
            th = threading.Thread(target=other)
            th.start()
            done.wait(10)
            print("read", os.read(r, 10))
            go.set()
            th.join()
            stackless.set_thread_wakeup_fd(old)
            stackless.run()
            print(sorted(log))
        """)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.stdout.split("\n")[:2],
                         ["read b'\\x00'", "['x', 'y']"], r.stderr)

    def test_set_for_other_thread(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        ready = threading.Event()
        stop = threading.Event()
        seen = []

        def other():
            stackless.getcurrent()
            seen.append(stackless.set_thread_wakeup_fd(-1))
            ready.set()
            stop.wait(10)
            seen.append(stackless.set_thread_wakeup_fd(-1))

        th = threading.Thread(target=other)
        th.start()
        ready.wait(10)
        self.assertEqual(stackless.set_thread_wakeup_fd(w, th.ident), -1)
        stop.set()
        th.join()
        self.assertEqual(seen, [-1, w])


if __name__ == "__main__":
    unittest.main()
