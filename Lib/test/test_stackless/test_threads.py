"""Tasklets and threads (spec X-1 .. X-5, T-14, T-15, C-14, S-12 (2), M-7,
M-8).

Each OS thread has a scheduler of its own.  The tests start helper
threads with threading.Thread and keep every wait bounded: events are
waited for with a timeout, threads are joined with a timeout and then
checked to have ended, so that a missing wake-up fails a test instead of
hanging it.  Where the main thread's main tasklet blocks on a channel
while a helper thread is alive (S-12 (2)), the helper always ends within
a bounded time; once it has ended, the blocked main tasklet gets the
Deadlock error instead of waiting for ever.  Where that error is what a
test checks, no_hang() turns a missing wake-up into a failure too.
"""

import _thread
import contextlib
import gc
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import unittest
import weakref

from test.support import script_helper

import stackless
from stackless import channel, tasklet
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


TIMEOUT = 10.0          # seconds, for every wait on another thread


def wait_for(predicate, timeout=TIMEOUT):
    """Poll predicate() until it is true; False after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def must_wait(event):
    """Wait for a threading.Event inside a helper thread."""
    if not event.wait(TIMEOUT):
        raise AssertionError("timed out waiting for the other thread")


class Worker:
    """A helper thread running func(*args).

    The outcome (return value or exception) is kept; join() checks that
    the thread ended in time and re-raises an exception it died of.
    """

    def __init__(self, func, *args):
        self.func = func
        self.args = args
        self.result = None
        self.error = None
        self.ended = False
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        try:
            self.result = self.func(*self.args)
        except BaseException as e:
            self.error = e
        finally:
            self.ended = True

    def start(self):
        self.thread.start()
        return self

    @property
    def ident(self):
        return self.thread.ident

    def join(self, testcase):
        self.thread.join(TIMEOUT)
        testcase.assertFalse(self.thread.is_alive(), "thread did not end")
        if self.error is not None:
            raise self.error
        return self.result


class ThreadTestCase(unittest.TestCase):
    """Base class: tracks helper threads and tasklets, cleans up."""

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.workers = []
        self.tasklets = []
        self.addCleanup(self.clean_up)

    def start(self, func, *args):
        w = Worker(func, *args).start()
        self.workers.append(w)
        return w

    def track(self, t):
        self.tasklets.append(t)
        return t

    def clean_up(self):
        stackless.set_schedule_callback(None)
        stackless.set_channel_callback(None)
        stackless.set_error_handler(None)
        for w in self.workers:
            w.thread.join(TIMEOUT)
        for t in self.tasklets:
            for _ in range(5):
                if not t.alive or t.is_current:
                    break
                if t.thread_id != threading.get_ident():
                    break
                try:
                    t.kill()
                except Exception:
                    pass
        self.tasklets = []
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        for w in self.workers:
            self.assertFalse(w.thread.is_alive(), "thread did not end")


class PerThreadSchedulerTest(ThreadTestCase):
    """X-1, M-3 .. M-5: one scheduler per thread."""

    def test_new_thread_state(self):
        # X-1, M-4, M-5: a new thread has a main tasklet that is current
        # and a runqueue holding it alone.
        def body():
            main = stackless.getmain()
            cur = stackless.getcurrent()
            return dict(
                runcount=stackless.getruncount(),
                main=main, current=cur,
                prop_main=stackless.main, prop_current=stackless.current,
                prop_runcount=stackless.runcount,
                info=stackless.get_thread_info(),
                info_me=stackless.get_thread_info(threading.get_ident()),
                ident=threading.get_ident(),
                is_main=main.is_main, is_current=main.is_current,
                thread_id=main.thread_id, next=main.next, prev=main.prev,
                currentid=stackless.getcurrentid())

        # Tasklets scheduled here must not show up in the new thread.
        for _ in range(2):
            self.track(tasklet(stackless.schedule_remove)())
        self.assertEqual(stackless.getruncount(), 3)
        r = self.start(body).join(self)
        self.assertEqual(r['runcount'], 1)
        self.assertEqual(r['prop_runcount'], 1)
        self.assertIs(r['main'], r['current'])
        self.assertIs(r['prop_main'], r['main'])
        self.assertIs(r['prop_current'], r['main'])
        self.assertIsNot(r['main'], stackless.getmain())
        self.assertEqual(r['info'], (r['main'], r['main'], 1))
        self.assertEqual(r['info_me'], (r['main'], r['main'], 1))
        self.assertTrue(r['is_main'])
        self.assertTrue(r['is_current'])
        self.assertEqual(r['thread_id'], r['ident'])
        self.assertIs(r['next'], r['main'])
        self.assertIs(r['prev'], r['main'])
        # M-6: a main tasklet reports the thread id.
        self.assertEqual(r['currentid'], r['ident'])
        # Our own runqueue is untouched.
        self.assertEqual(stackless.getruncount(), 3)
        stackless.run()
        self.assertEqual(stackless.getruncount(), 1)

    def test_runqueues_are_separate(self):
        # scheduling in one thread does not change the runcount of
        # another; each thread runs its own tasklets.
        log = []

        def work(tag):
            log.append((tag, threading.get_ident()))

        def body():
            for i in range(3):
                tasklet(work)(('T', i))
            n = stackless.getruncount()
            stackless.run()
            return n, stackless.getruncount()

        self.track(tasklet(work)(('M', 0)))
        w = self.start(body)
        n_before, n_after = w.join(self)
        self.assertEqual((n_before, n_after), (4, 1))
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()
        me = threading.get_ident()
        self.assertEqual(sorted(log), sorted(
            [(('T', i), w.ident) for i in range(3)] + [(('M', 0), me)]))

    def test_main_tasklets_differ_per_thread(self):
        # X-1, M-4: every thread has its own main tasklet.
        mains = []

        def body():
            mains.append(stackless.getmain())

        for _ in range(2):
            self.start(body).join(self)
        mains.append(stackless.getmain())
        self.assertEqual(len({id(m) for m in mains}), 3)

    def test_switch_trap_is_per_thread(self):
        # X-1, M-11: switch_trap is a per-thread level.
        def body():
            level = stackless.switch_trap(0)
            t = tasklet(lambda: None)()
            stackless.run()         # not trapped in this thread
            return level, t.alive

        old = stackless.switch_trap(1)
        try:
            level, alive = self.start(body).join(self)
        finally:
            stackless.switch_trap(-1)
        self.assertEqual(old, 0)
        self.assertEqual(level, 0)
        self.assertFalse(alive)

    def test_pickle_flags_are_per_thread(self):
        # X-1, M-15, M-16: pickle_flags are per thread; a new thread gets
        # the per-interpreter default.
        default = stackless.pickle_flags_default()
        old = stackless.pickle_flags(1, 1)
        try:
            other = self.start(stackless.pickle_flags).join(self)
            self.assertEqual(other, default)
            self.assertEqual(stackless.pickle_flags() & 1, 1)
        finally:
            stackless.pickle_flags(old)

    def test_callbacks_are_per_interpreter(self):
        # X-1, D-3, D-4, M-18: callbacks and the error handler are shared
        # by all threads of the interpreter.
        def sched_cb(prev, next):
            pass

        def chan_cb(ch, t, sending, willblock):
            pass

        def handler(typ, val, tb):
            pass

        def body():
            return (stackless.get_schedule_callback(),
                    stackless.get_channel_callback(),
                    stackless.set_error_handler(handler))

        stackless.set_schedule_callback(sched_cb)
        stackless.set_channel_callback(chan_cb)
        stackless.set_error_handler(handler)
        try:
            got = self.start(body).join(self)
        finally:
            stackless.set_schedule_callback(None)
            stackless.set_channel_callback(None)
            stackless.set_error_handler(None)
        self.assertIs(got[0], sched_cb)
        self.assertIs(got[1], chan_cb)
        self.assertIs(got[2], handler)

    def test_error_handler_gets_errors_of_other_threads(self):
        # X-1, S-11 (3), M-18: the per-interpreter error handler also
        # handles tasklets of other threads.
        seen = []

        def handler(typ, val, tb):
            seen.append((typ, str(val), threading.get_ident()))

        def fail():
            raise KeyError("k")

        def body():
            tasklet(fail)()
            return stackless.run()

        stackless.set_error_handler(handler)
        w = self.start(body)
        self.assertIsNone(w.join(self))
        self.assertEqual(seen, [(KeyError, "'k'", w.ident)])

    def test_uncaught_error_goes_to_own_thread(self):
        # S-11 (3), X-1: without a handler an error escaping a tasklet is
        # raised from run() in the tasklet's own thread.
        def fail():
            raise ZeroDivisionError("boom")

        def body():
            tasklet(fail)()
            try:
                stackless.run()
            except ZeroDivisionError as e:
                return str(e), stackless.getruncount()
            return None

        self.assertEqual(self.start(body).join(self), ("boom", 1))

    def test_system_exit_ignored_in_other_thread(self):
        # S-11 (2): SystemExit escaping a tasklet of a thread that is not
        # the initial one is ignored.
        log = []

        def leave():
            log.append("leave")
            raise SystemExit(3)

        def body():
            tasklet(leave)()
            tasklet(log.append)("after")
            r = stackless.run()
            return r, stackless.getruncount()

        self.assertEqual(self.start(body).join(self), (None, 1))
        self.assertEqual(log, ["leave", "after"])


class OwnershipTest(ThreadTestCase):
    """X-2, T-22, T-23: tasklets belong to the thread that made them."""

    def test_thread_id_of_new_tasklets(self):
        # X-2, T-23: a tasklet is owned by its creator thread.
        def body():
            t = tasklet(lambda: None)
            return t, t.thread_id, threading.get_ident()

        t, tid, ident = self.start(body).join(self)
        self.assertEqual(tid, ident)
        self.assertNotEqual(tid, threading.get_ident())
        mine = self.track(tasklet(lambda: None))
        self.assertEqual(mine.thread_id, threading.get_ident())

    def test_insert_from_other_thread_uses_owner_runqueue(self):
        # T-4: a tasklet made here and inserted by another
        # thread joins our runqueue, not the inserting thread's.
        ran_in = []
        t = self.track(tasklet(lambda: ran_in.append(threading.get_ident()),
                               ()))

        def body():
            t.insert()
            return stackless.getruncount(), t.thread_id

        runcount, tid = self.start(body).join(self)
        self.assertEqual(runcount, 1)
        self.assertEqual(tid, threading.get_ident())
        self.assertTrue(t.scheduled)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()
        self.assertEqual(ran_in, [threading.get_ident()])

    def test_foreign_main_is_current_and_main(self):
        # T-22: is_main and is_current are relative to the owner thread.
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def body():
            box['main'] = stackless.getmain()
            ready.set()
            must_wait(go)

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            other = box['main']
            self.assertTrue(other.is_main)
            self.assertTrue(other.is_current)
            self.assertTrue(other.alive)
            self.assertEqual(other.thread_id, w.ident)
            self.assertFalse(stackless.getmain() is other)
        finally:
            go.set()
        w.join(self)


class ThreadInfoTest(ThreadTestCase):
    """M-7, M-8: get_thread_info() and getthreads() for other threads."""

    def test_getthreads(self):
        # M-8: main thread first; other threads listed while they live.
        ready = threading.Event()
        go = threading.Event()

        def body():
            stackless.getcurrent()
            ready.set()
            must_wait(go)
            return stackless.getthreads()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            threads = stackless.getthreads()
            self.assertEqual(threads[0], threading.main_thread().ident)
            self.assertIn(w.ident, threads)
            self.assertEqual(stackless.threads, threads)
        finally:
            go.set()
        seen_there = w.join(self)
        self.assertEqual(seen_there[0], threading.main_thread().ident)
        self.assertIn(w.ident, seen_there)
        self.assertNotIn(w.ident, stackless.getthreads())

    def test_info_of_other_thread(self):
        # M-7: (main, current, runcount) of another thread; the runcount
        # follows cross-thread insertions (T-4).
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def body():
            box['main'] = stackless.getmain()
            box['t'] = tasklet(lambda: None, ())
            ready.set()
            must_wait(go)
            stackless.run()
            return stackless.get_thread_info(threading.main_thread().ident)

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            main = box['main']
            self.assertEqual(stackless.get_thread_info(w.ident),
                             (main, main, 1))
            self.assertEqual(stackless.get_thread_info(w.ident, 0),
                             (main, main, 1))
            box['t'].insert()
            self.assertEqual(stackless.get_thread_info(w.ident),
                             (main, main, 2))
            self.assertEqual(stackless.getruncount(), 1)
        finally:
            go.set()
        info = w.join(self)
        me = stackless.getmain()
        self.assertEqual(info, (me, me, 1))
        self.assertFalse(box['t'].alive)

    def test_info_of_ended_thread(self):
        # M-7: an unknown thread id gives RuntimeError("Thread id not
        # found"); a non-int gives TypeError.
        w = self.start(stackless.getcurrent)
        w.join(self)
        with self.assertRaisesRegex(RuntimeError, r"^Thread id not found$"):
            stackless.get_thread_info(w.ident)
        with self.assertRaises(TypeError):
            stackless.get_thread_info("x")

    def test_info_of_waiting_thread(self):
        # M-7, S-12 (2): a thread whose main tasklet is blocked in a
        # channel waits for work: runcount 0, no current tasklet.
        done = channel()
        box = {}
        ready = threading.Event()

        def body():
            box['main'] = stackless.getmain()
            ready.set()
            return done.receive()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertTrue(wait_for(lambda: done.balance == -1))
            main = box['main']
            self.assertEqual(stackless.get_thread_info(w.ident),
                             (main, None, 0))
            self.assertTrue(main.blocked)
            self.assertFalse(main.is_current)
        finally:
            done.send("woken")
        self.assertEqual(w.join(self), "woken")


class CrossThreadChannelTest(ThreadTestCase):
    """X-4, C-14: channels linking tasklets of different threads."""

    def test_tasklet_receives_main_of_other_thread_sends(self):
        # a tasklet of thread A blocks receiving; the main tasklet of
        # this thread sends.  The receiver is appended to A's runqueue and
        # resumed there; the sender continues without switching.
        ch = channel()
        log = []
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def receiver():
            log.append(("got", ch.receive(), threading.get_ident()))

        def body():
            box['t'] = t = tasklet(receiver)()
            stackless.run()             # t blocks, run() returns
            box['blocked'] = t.blocked
            ready.set()
            must_wait(go)
            stackless.run()
            return t.alive

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            t = box['t']
            self.assertTrue(box['blocked'])
            self.assertEqual(ch.balance, -1)
            self.assertIs(ch.queue, t)
            ch.send("hello")
            # No local switch; the receiver now waits in A's runqueue.
            self.assertIs(stackless.getcurrent(), stackless.getmain())
            self.assertEqual(stackless.getruncount(), 1)
            self.assertEqual(ch.balance, 0)
            self.assertFalse(t.blocked)
            self.assertTrue(t.scheduled)
            self.assertEqual(log, [])
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 2)
        finally:
            go.set()
        self.assertFalse(w.join(self))
        self.assertEqual(log, [("got", "hello", w.ident)])

    def test_tasklet_sends_main_of_other_thread_receives(self):
        # the other way round: a tasklet of thread A blocks sending,
        # the main tasklet here receives the value at once.
        ch = channel()
        log = []
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def sender():
            ch.send("ping")
            log.append(("sent", threading.get_ident()))

        def body():
            box['t'] = tasklet(sender)()
            stackless.run()
            ready.set()
            must_wait(go)
            stackless.run()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertEqual(ch.balance, 1)
            self.assertEqual(ch.receive(), "ping")
            self.assertEqual(ch.balance, 0)
            self.assertEqual(stackless.getruncount(), 1)
            self.assertTrue(box['t'].scheduled)
            self.assertEqual(log, [])
        finally:
            go.set()
        w.join(self)
        self.assertEqual(log, [("sent", w.ident)])
        self.assertFalse(box['t'].alive)

    def test_preference_ignored_for_foreign_partner(self):
        # C-13 step 2, X-4: with a foreign partner the caller continues,
        # whatever the preference; the partner runs in its own thread.
        for pref in (-1, 0, 1):
            with self.subTest(preference=pref):
                ch = channel()
                ch.preference = pref
                log = []
                ready = threading.Event()
                go = threading.Event()

                def receiver():
                    log.append((ch.receive(), threading.get_ident()))

                def body():
                    tasklet(receiver)()
                    stackless.run()
                    ready.set()
                    must_wait(go)
                    stackless.run()

                w = self.start(body)
                try:
                    self.assertTrue(ready.wait(TIMEOUT))
                    self.assertEqual(ch.balance, -1)
                    local = self.track(tasklet(log.append)("local"))
                    ch.send(pref)
                    self.assertEqual(log, [])
                    self.assertTrue(local.scheduled)
                finally:
                    go.set()
                w.join(self)
                stackless.run()
                self.assertIn((pref, w.ident), log)
                self.assertIn("local", log)

    def test_main_receives_tasklet_of_other_thread_sends(self):
        # X-4, S-12 (2): the main tasklet here blocks receiving while
        # another thread can run; it waits (GIL released) until a tasklet
        # of that thread sends, and is resumed here.
        ch = channel()

        def body():
            if not wait_for(lambda: ch.balance == -1):
                return "main never blocked"
            t = tasklet(ch.send)("from thread")
            stackless.run()
            return t.alive

        w = self.start(body)
        value = ch.receive()
        self.assertEqual(value, "from thread")
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertIs(w.join(self), False)
        self.assertEqual(ch.balance, 0)

    def test_main_sends_tasklet_of_other_thread_receives(self):
        # X-4, S-12 (2): the main tasklet here blocks sending until a
        # tasklet of another thread receives.
        ch = channel()

        def body():
            if not wait_for(lambda: ch.balance == 1):
                return "main never blocked"
            box = []
            tasklet(lambda: box.append(ch.receive()))()
            stackless.run()
            return box

        w = self.start(body)
        ch.send("to thread")
        self.assertEqual(w.join(self), ["to thread"])
        self.assertEqual(ch.balance, 0)

    def test_ping_pong_between_threads(self):
        # repeated exchanges between the main tasklets of two
        # threads, each resumed in its own thread.
        ping = channel()
        pong = channel()
        n = 50

        def body():
            seen = []
            for i in range(n):
                seen.append((ping.receive(), threading.get_ident()))
                pong.send(i * 2)
            return seen

        w = self.start(body)
        got = []
        for i in range(n):
            ping.send(i)
            got.append(pong.receive())
        seen = w.join(self)
        self.assertEqual(got, [i * 2 for i in range(n)])
        self.assertEqual(seen, [(i, w.ident) for i in range(n)])
        self.assertEqual((ping.balance, pong.balance), (0, 0))


class WaitForOtherThreadTest(ThreadTestCase):
    """S-12 (2): a thread with an empty runqueue waits for others."""

    def test_main_of_thread_waits_in_receive(self):
        # S-12 (2): the main tasklet of a thread blocks alone; the thread
        # waits until another thread sends.
        ch = channel()
        ready = threading.Event()

        def body():
            ready.set()
            return ch.receive(), threading.get_ident()

        w = self.start(body)
        self.assertTrue(ready.wait(TIMEOUT))
        self.assertTrue(wait_for(lambda: ch.balance == -1))
        time.sleep(0.05)
        self.assertFalse(w.ended)
        ch.send(42)
        self.assertEqual(w.join(self), (42, w.ident))

    def test_main_of_thread_pausing_does_not_wait(self):
        # S-3, S-12 (1): the main tasklet leaving the runqueue of its
        # thread is itself the paused watchdog: it resumes at once,
        # other threads or not.
        def body():
            return stackless.schedule_remove("mine"), stackless.getruncount()

        self.assertEqual(self.start(body).join(self), ("mine", 1))

    def paused_tasklet_thread(self, box, ready):
        """Thread A: tasklet x pauses, then main blocks receiving from
        box['done'] with nothing runnable (S-12 (2): A waits).  x
        reports what its schedule_remove() returned and its thread."""
        done = box['done'] = channel()

        def x_body():
            v = stackless.schedule_remove("mine")
            done.send((v, threading.get_ident()))

        box['x'] = x = tasklet(x_body)()
        x.run()                     # x pauses
        ready.set()
        return done.receive()

    def test_tasklet_waits_for_insert(self):
        # S-12 (2), X-3: a thread whose tasklets are all paused or
        # blocked waits until another thread inserts one of them.
        box = {}
        ready = threading.Event()
        w = self.start(self.paused_tasklet_thread, box, ready)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertTrue(wait_for(lambda: box['done'].balance == -1))
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 0)
            time.sleep(0.05)
            self.assertFalse(w.ended)
            self.assertTrue(box['x'].paused)
        finally:
            box['x'].insert()
        value, ident = w.join(self)
        self.assertEqual(ident, w.ident)
        self.assertEqual(stackless.getruncount(), 1)

    def test_schedule_remove_returns_tempval_from_other_thread(self):
        # S-3, S-12 (2): the custom-primitive idiom across threads: the
        # waker sets tempval and inserts; schedule_remove() returns that
        # value, not its own argument.
        box = {}
        ready = threading.Event()
        w = self.start(self.paused_tasklet_thread, box, ready)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertTrue(wait_for(lambda: box['done'].balance == -1))
        finally:
            box['x'].tempval = "from main thread"
            box['x'].insert()
        self.assertEqual(w.join(self), ("from main thread", w.ident))

    def test_blocked_tasklet_woken_from_other_thread(self):
        # S-12 (2), X-4: a thread whose main tasklet and only other
        # tasklet are blocked waits; a send from another thread makes the
        # tasklet runnable and the thread carries on.
        ch = channel()
        done = channel()
        ready = threading.Event()

        def receiver():
            done.send((ch.receive(), threading.get_ident()))

        def body():
            tasklet(receiver)()
            stackless.run()             # receiver blocks, run() returns
            ready.set()
            return done.receive()       # nothing runnable: wait

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertTrue(wait_for(
                lambda: stackless.get_thread_info(w.ident)[2] == 0))
        finally:
            ch.send("wake")
        self.assertEqual(w.join(self), ("wake", w.ident))

    def test_error_while_waiting(self):
        # S-11 (3), S-12 (2): a tasklet woken from another thread dies of
        # an error: the blocked main tasklet of its thread is pulled out
        # of its channel at once and raises it.
        ch = channel()
        done = channel()
        ready = threading.Event()

        def fail():
            raise KeyError(ch.receive())

        def body():
            tasklet(fail)()
            stackless.run()             # fail() blocks
            ready.set()
            try:
                done.receive()
            except KeyError as e:
                return (e.args[0], stackless.getcurrent().is_main,
                        done.balance)
            return None

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertTrue(wait_for(lambda: done.balance == -1))
        finally:
            ch.send("err")
        self.assertEqual(w.join(self), ("err", True, 0))

    def test_run_without_threadblock_does_not_wait(self):
        # X-4, S-12 (1): inside run() without threadblock the thread does
        # not wait: run() returns while the tasklet stays blocked.
        ch = channel()

        def body():
            t = tasklet(ch.receive)()
            r = stackless.run()
            state = (r, t.blocked, ch.balance, stackless.getruncount())
            t.kill()
            return state

        self.assertEqual(self.start(body).join(self), (None, True, -1, 1))
        self.assertEqual(ch.balance, 0)


def is_waiting(ident):
    """The thread `ident` waits for other threads (S-12 (2)): its
    runqueue is empty and it runs no tasklet.  Seen by a thread holding
    the GIL, which the waiting thread released to wait."""
    info = stackless.get_thread_info(ident)
    return info[0] is not None and info[1] is None and info[2] == 0


MAIN_IDENT = threading.main_thread().ident


@contextlib.contextmanager
def no_hang():
    """In the main thread, whose waits for other threads handle signals
    (S-12 (2)): fail with AssertionError after TIMEOUT seconds instead of
    waiting for ever for a wake-up that does not come."""
    if (threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")):
        yield
        return

    def hung(signum, frame):
        raise AssertionError("the main thread was not woken")

    old = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class NoFalseDeadlockTest(ThreadTestCase):
    """S-12 (2), (4): Deadlock is reported only when no thread of the
    interpreter can make progress.  A thread whose runqueue empties while
    another thread could still make one of its tasklets runnable waits,
    the GIL released; it is woken when one is, and looks again when a
    thread ends."""

    N = 200_000         # messages
    K = 8               # tasklets per thread

    def setUp(self):
        super().setUp()
        # A thread left running by another test could wake anybody: the
        # deadlocks below would then wait for it.
        if len(stackless.getthreads()) != 1:
            self.skipTest("other threads run")

    def test_four_threads_exchange_messages(self):
        # S-12 (2), X-4, C-14: two producing and two consuming threads,
        # K tasklets each, every thread's main tasklet waiting on a
        # channel of its own for its tasklets, exchange N messages over
        # two shared channels.  Tasklets end while their main tasklet
        # waits and the others are blocked on the shared channels: the
        # thread waits for the others then.  Every message arrives once,
        # in the tasklets of the consuming thread, and all threads end.
        n, k = self.N, self.K
        shared = [channel(), channel()]

        def producer(first):
            done = channel()

            def produce(start):
                for i in range(start, first + n // 2, k):
                    shared[i % 2].send(i)
                done.send(threading.get_ident())

            for j in range(k):
                tasklet(produce)(first + j)
            return [done.receive() for _ in range(k)]

        def consumer(ch):
            done = channel()
            got = []

            def consume():
                for _ in range(n // 2 // k):
                    got.append(ch.receive())
                done.send(threading.get_ident())

            for _ in range(k):
                tasklet(consume)()
            return [done.receive() for _ in range(k)], got

        consumers = [self.start(consumer, ch) for ch in shared]
        producers = [self.start(producer, first)
                     for first in (0, n // 2)]
        received = []
        for parity, w in enumerate(consumers):
            idents, got = w.join(self)
            self.assertEqual(idents, [w.ident] * k)
            self.assertEqual(len(got), n // 2)
            self.assertTrue(all(v % 2 == parity for v in got))
            received += got
        for w in producers:
            self.assertEqual(w.join(self), [w.ident] * k)
        self.assertEqual(len(received), n)
        self.assertEqual(sorted(received), list(range(n)))
        self.assertEqual([ch.balance for ch in shared], [0, 0])

    def test_tasklet_ends_while_main_waits(self):
        # S-9, S-12 (2): the last runnable tasklet of a thread ends while
        # its main tasklet is blocked and another tasklet waits for this
        # thread: instead of pulling main out with "the main tasklet is
        # receiving without a sender available", the thread waits.
        shared = channel()
        box = {}

        def body():
            done = channel()
            box['r'] = tasklet(lambda: done.send(shared.receive()))()
            box['e'] = tasklet(lambda: None)()
            return done.receive(), threading.get_ident()

        w = self.start(body)
        try:
            self.assertTrue(wait_for(lambda: shared.balance == -1
                                     and is_waiting(w.ident)))
            self.assertFalse(box['e'].alive)
            self.assertTrue(box['r'].blocked)
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 0)
        finally:
            shared.send("late")
        self.assertEqual(w.join(self), ("late", w.ident))

    def test_true_deadlock_across_threads(self):
        # S-12 (4): both threads' main tasklets wait for the other: the
        # one that blocks last finds the other waiting and gets the
        # Deadlock error, staying unblocked; the other goes on waiting
        # until it is given work.
        mine = channel()
        theirs = channel()
        w = self.start(theirs.receive)
        try:
            self.assertTrue(wait_for(lambda: theirs.balance == -1
                                     and is_waiting(w.ident)))
            with no_hang(), \
                    self.assertRaisesRegex(RuntimeError, "^Deadlock: "):
                mine.receive()
            self.assertEqual(mine.balance, 0)
            self.assertIs(stackless.getcurrent(), stackless.getmain())
            self.assertEqual(stackless.getruncount(), 1)
            self.assertTrue(is_waiting(w.ident))
        finally:
            theirs.send("free")
        self.assertEqual(w.join(self), "free")

    def test_deadlock_in_tasklet_goes_to_main(self):
        # S-12 (4), S-11: the would-be blocker is a tasklet, blocked
        # with main while the other thread waits: it gets the error,
        # which, uncaught, is raised in main, pulled out of its channel.
        mine = channel()
        theirs = channel()
        w = self.start(theirs.receive)
        try:
            self.assertTrue(wait_for(lambda: theirs.balance == -1
                                     and is_waiting(w.ident)))
            t = tasklet(channel().receive)()
            with no_hang(), \
                    self.assertRaisesRegex(RuntimeError, "^Deadlock: "):
                mine.receive()
            self.assertFalse(t.alive)
            self.assertEqual(mine.balance, 0)
        finally:
            theirs.send("free")
        self.assertEqual(w.join(self), "free")

    def test_thread_end_wakes_waiting_main(self):
        # S-12 (2), (4): the main tasklet waits while the only other
        # thread, which uses tasklets too, runs; when that thread ends,
        # the waiter looks again and gets the Deadlock error instead of
        # waiting for ever.
        ch = channel()

        def body():
            tasklet(stackless.schedule)()
            stackless.run()
            return wait_for(lambda: ch.balance == -1
                            and is_waiting(MAIN_IDENT))

        w = self.start(body)
        with no_hang(), self.assertRaisesRegex(RuntimeError, "^Deadlock: "):
            ch.receive()
        self.assertTrue(w.join(self))
        self.assertEqual(ch.balance, 0)
        self.assertEqual(stackless.getruncount(), 1)

    def test_end_of_thread_without_tasklets_wakes_waiting_main(self):
        # S-12 (2): the same when the thread that ends never used
        # stackless: it only looks at the channel and at us, which makes
        # it no scheduler.
        ch = channel()
        looked = threading.Event()

        def body():
            ch.balance, is_waiting(MAIN_IDENT)      # what it waits for
            looked.set()
            return wait_for(lambda: ch.balance == -1
                            and is_waiting(MAIN_IDENT))

        w = self.start(body)
        self.assertTrue(looked.wait(TIMEOUT))
        self.assertEqual(stackless.get_thread_info(w.ident), (None, None, 0))
        with no_hang(), self.assertRaisesRegex(RuntimeError, "^Deadlock: "):
            ch.receive()
        self.assertTrue(w.join(self))

    def test_thread_end_with_two_waiters(self):
        # S-12 (4): two threads wait, for each other's work and for a
        # third, which ends: exactly one of the waiters, whichever looks
        # first, gets the Deadlock error; it then wakes the other, which
        # gets a value.  Neither waits for ever.
        a_channel = channel()
        main_channel = channel()
        outcome = []

        def a_body():
            try:
                outcome.append(("a got", a_channel.receive()))
            except RuntimeError as e:
                outcome.append(("a", str(e)))
                main_channel.send("from a")

        a = self.start(a_body)
        self.assertTrue(wait_for(lambda: a_channel.balance == -1
                                 and is_waiting(a.ident)))
        b = self.start(wait_for, lambda: main_channel.balance == -1
                       and is_waiting(MAIN_IDENT))
        try:
            with no_hang():
                outcome.append(("main got", main_channel.receive()))
        except RuntimeError as e:
            outcome.append(("main", str(e)))
            a_channel.send("from main")
        a.join(self)
        self.assertTrue(b.join(self))
        deadlock = "Deadlock: the last runnable tasklet cannot be blocked."
        self.assertIn(outcome, ([("a", deadlock), ("main got", "from a")],
                                [("main", deadlock), ("a got", "from main")]))

    def main_thread_only(self):
        if threading.current_thread() is not threading.main_thread():
            self.skipTest("signals go to the main thread")

    def default_sigint(self):
        """KeyboardInterrupt on SIGINT, even if it was ignored when the
        process started (a background job)."""
        self.main_thread_only()
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.addCleanup(signal.signal, signal.SIGINT, old)

    def interrupt_main_when_waiting(self, ch, done):
        if wait_for(lambda: ch.balance == -1 and is_waiting(MAIN_IDENT)):
            _thread.interrupt_main()
        return done.wait(TIMEOUT)

    def test_waiting_main_thread_is_interruptible(self):
        # S-12 (2): the main thread waits for another, which will not
        # end; KeyboardInterrupt gets through, raised by the blocking
        # call, which leaves the tasklet unblocked.
        self.default_sigint()
        ch = channel()
        done = threading.Event()
        w = self.start(self.interrupt_main_when_waiting, ch, done)
        try:
            with self.assertRaises(KeyboardInterrupt):
                ch.receive()
            self.assertEqual(ch.balance, 0)
            self.assertEqual(stackless.getruncount(), 1)
        finally:
            done.set()
        self.assertTrue(w.join(self))

    def test_waiting_after_tasklet_end_is_interruptible(self):
        # S-12 (2), S-11: the thread waits after its last tasklet ended,
        # main blocked: the KeyboardInterrupt goes to main, which is
        # pulled out of its channel and raises it.
        self.default_sigint()
        ch = channel()
        done = threading.Event()
        t = tasklet(lambda: None)()
        w = self.start(self.interrupt_main_when_waiting, ch, done)
        try:
            with self.assertRaises(KeyboardInterrupt):
                ch.receive()
            self.assertFalse(t.alive)
            self.assertEqual(ch.balance, 0)
        finally:
            done.set()
        self.assertTrue(w.join(self))

    @unittest.skipUnless(hasattr(signal, "pthread_kill"), "pthread_kill")
    def test_signal_handler_runs_while_waiting(self):
        # S-12 (2): a signal handler that returns runs while the main
        # thread waits, which then goes on waiting for its value.
        self.main_thread_only()
        ch = channel()
        handled = threading.Event()
        old = signal.signal(signal.SIGUSR1, lambda *args: handled.set())
        self.addCleanup(signal.signal, signal.SIGUSR1, old)

        def body():
            if not wait_for(lambda: ch.balance == -1
                            and is_waiting(MAIN_IDENT)):
                return "main never waited"
            signal.pthread_kill(MAIN_IDENT, signal.SIGUSR1)
            if not handled.wait(TIMEOUT):
                return "no handler ran"
            ch.send("after the signal")
            return None

        w = self.start(body)
        self.assertEqual(ch.receive(), "after the signal")
        self.assertIsNone(w.join(self))

    def test_threadblock_waits_for_other_thread(self):
        # S-5, S-12 (2): a run() with threadblock, timed or not, does not
        # return when its last runnable tasklet blocks while another
        # thread can still wake it: the thread waits.  run() returns when
        # the woken tasklet has ended (S-4 (a)).
        for timeout in (1000000, 0):
            with self.subTest(timeout=timeout):
                ch = channel()

                def body():
                    got = []
                    tasklet(lambda: None)()
                    t = tasklet(lambda: got.append(ch.receive()))()
                    return t, got, stackless.run(timeout, threadblock=True)

                w = self.start(body)
                try:
                    self.assertTrue(wait_for(lambda: ch.balance == -1
                                             and is_waiting(w.ident)))
                finally:
                    ch.send("woken")
                t, got, result = w.join(self)
                self.assertIsNone(result)
                self.assertEqual(got, ["woken"])
                self.assertFalse(t.alive)

    def test_threadblock_initial_thread_alone(self):
        # S-12 (3): in the initial thread, with no other thread, a timed
        # run() with threadblock returns when its tasklets are blocked.
        self.main_thread_only()
        ch = channel()
        t = self.track(tasklet(ch.receive)())
        self.assertIsNone(stackless.run(1000000, threadblock=True))
        self.assertTrue(t.blocked)
        t.kill()
        self.assertEqual(ch.balance, 0)

    def test_threadblock_deadlock_in_other_thread(self):
        # S-12 (4): outside the initial thread, with threadblock and no
        # thread able to make progress (main waits for the result), the
        # blocking tasklet gets the Deadlock error, which run() raises.
        result = channel()

        def body():
            t = tasklet(channel().receive)()
            if not wait_for(lambda: result.balance == -1
                            and is_waiting(MAIN_IDENT)):
                result.send("main never waited")
                return
            try:
                stackless.run(1000000, threadblock=True)
            except RuntimeError as e:
                result.send((str(e), t.alive))
            else:
                result.send("run() returned")

        w = self.start(body)
        with no_hang():
            self.assertEqual(result.receive(),
                             ("Deadlock: the last runnable tasklet cannot "
                              "be blocked.", False))
        w.join(self)


class CrossThreadCallTest(ThreadTestCase):
    """X-3, T-4 .. T-10: insert/remove/run/kill/throw on tasklets of
    another thread act on that thread's runqueue; no local switch."""

    def setUp(self):
        super().setUp()
        self.log = []
        self.box = {}
        self.ready = threading.Event()
        self.go = threading.Event()
        # D-3 is per interpreter: it sees the switches of all threads.
        self.switches = []
        stackless.set_schedule_callback(
            lambda prev, next: self.switches.append(threading.get_ident()))

    def body(self, tag):
        """A tasklet that pauses once and logs what happens to it."""
        me = threading.get_ident()
        try:
            self.log.append((tag, "start", me))
            v = stackless.schedule_remove(None)
            self.log.append((tag, "resumed", v, me))
        except ValueError as e:
            self.log.append((tag, "caught", str(e), me))
        finally:
            self.log.append((tag, "finally", me))

    def thread_main(self, tags):
        """Thread A: make paused tasklets, let the main thread act on
        them while we wait, then run what became runnable."""
        self.box['main'] = stackless.getmain()
        for tag in tags:
            t = tasklet(self.body)(tag)
            t.run()                     # started, now paused
            self.box[tag] = t
        self.ready.set()
        must_wait(self.go)
        stackless.run()

    def start_a(self, *tags):
        w = self.start(self.thread_main, tags)
        self.assertTrue(self.ready.wait(TIMEOUT))
        return w

    def events(self, tag):
        return [e[1:] for e in self.log if e[0] == tag]

    def assert_no_local_effect(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.assertNotIn(threading.get_ident(), self.switches)

    def test_insert(self):
        # X-3, T-4: insert() appends to the owner's runqueue.
        w = self.start_a("a")
        try:
            t = self.box["a"]
            self.assertTrue(t.paused)
            self.assertIs(t.insert(), t)
            self.assert_no_local_effect()
            self.assertTrue(t.scheduled)
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 2)
            self.assertEqual(self.events("a"), [("start", w.ident)])
        finally:
            self.go.set()
        w.join(self)
        self.assertEqual(self.events("a"), [
            ("start", w.ident), ("resumed", None, w.ident),
            ("finally", w.ident)])
        self.assertFalse(t.alive)

    def test_run_does_not_switch(self):
        # X-3, T-6: run() on a foreign tasklet places it right after that
        # thread's current, wakes it, and the caller continues.
        w = self.start_a("x", "y")
        try:
            x, y = self.box["x"], self.box["y"]
            x.insert()
            self.assertIsNone(y.run())
            self.assert_no_local_effect()
            self.assertTrue(y.scheduled)
            self.assertIs(self.box['main'].next, y)
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 3)
        finally:
            self.go.set()
        w.join(self)
        resumed = [e[0] for e in self.log if e[1] == "resumed"]
        self.assertEqual(resumed, ["y", "x"])
        self.assertEqual(self.events("y")[1], ("resumed", None, w.ident))

    def test_remove(self):
        # X-3, T-5: remove() unlinks from the owner's runqueue.
        w = self.start_a("r")
        try:
            t = self.box["r"]
            t.insert()
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 2)
            self.assertIs(t.remove(), t)
            self.assertTrue(t.paused)
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 1)
            self.assert_no_local_effect()
        finally:
            self.go.set()
        w.join(self)
        # Still paused when the thread ended: killed then.
        self.assertEqual(self.events("r"), [("start", w.ident),
                                            ("finally", w.ident)])

    def test_kill_does_not_switch(self):
        # X-3, T-10: kill() of a foreign tasklet schedules the TaskletExit
        # in its own thread; the victim's finally runs there.
        w = self.start_a("k")
        try:
            t = self.box["k"]
            self.assertIsNone(t.kill())
            self.assert_no_local_effect()
            self.assertTrue(t.scheduled)
            self.assertEqual(self.events("k"), [("start", w.ident)])
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 2)
        finally:
            self.go.set()
        w.join(self)
        self.assertEqual(self.events("k"), [("start", w.ident),
                                            ("finally", w.ident)])
        self.assertFalse(t.alive)

    def test_kill_pending(self):
        # X-3, T-10: kill(pending=True) on a foreign tasklet.
        w = self.start_a("k")
        try:
            self.assertIsNone(self.box["k"].kill(pending=True))
            self.assert_no_local_effect()
        finally:
            self.go.set()
        w.join(self)
        self.assertEqual(self.events("k"), [("start", w.ident),
                                            ("finally", w.ident)])

    def test_throw_does_not_switch(self):
        # X-3, T-8: non-pending throw() to a foreign tasklet never
        # switches locally; the exception is raised in the owner thread.
        for pending in (False, True):
            with self.subTest(pending=pending):
                self.log.clear()
                self.box.clear()
                self.ready.clear()
                self.go.clear()
                w = self.start_a("t")
                try:
                    t = self.box["t"]
                    t.throw(ValueError("thrown"), pending=pending)
                    self.assert_no_local_effect()
                    self.assertTrue(t.scheduled)
                    self.assertEqual(self.events("t"), [("start", w.ident)])
                finally:
                    self.go.set()
                w.join(self)
                self.assertEqual(self.events("t"), [
                    ("start", w.ident), ("caught", "thrown", w.ident),
                    ("finally", w.ident)])

    def test_raise_exception_does_not_switch(self):
        # X-3, T-9: raise_exception() is a non-pending throw.
        w = self.start_a("e")
        try:
            self.box["e"].raise_exception(ValueError, "raised")
            self.assert_no_local_effect()
        finally:
            self.go.set()
        w.join(self)
        self.assertIn(("caught", "raised", w.ident), self.events("e"))

    def test_run_wakes_idle_thread(self):
        # T-6, S-12 (2): run() on a tasklet of a thread that waits for
        # work makes it that thread's next current; the thread wakes.
        box = {}
        done = channel()

        def body():
            t = tasklet(lambda: done.send(threading.get_ident()), ())
            box['t'] = t
            self.ready.set()
            return done.receive()       # nothing runnable: wait

        w = self.start(body)
        try:
            self.assertTrue(self.ready.wait(TIMEOUT))
            self.assertTrue(wait_for(lambda: done.balance == -1))
        finally:
            box['t'].run()
        self.assert_no_local_effect()
        self.assertEqual(w.join(self), w.ident)
        self.assertFalse(box['t'].alive)

    def test_throw_to_blocked_foreign_tasklet(self):
        # X-3, T-8: throw() to a foreign blocked tasklet takes it out of
        # the channel at once; the exception is raised in its thread.
        ch = channel()
        log = []
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def receiver():
            try:
                ch.receive()
            except ValueError as e:
                log.append((str(e), threading.get_ident()))

        def body():
            box['t'] = tasklet(receiver)()
            stackless.run()
            ready.set()
            must_wait(go)
            stackless.run()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            self.assertEqual(ch.balance, -1)
            box['t'].throw(ValueError("in channel"))
            self.assert_no_local_effect()
            self.assertEqual(ch.balance, 0)
            self.assertFalse(box['t'].blocked)
            self.assertTrue(box['t'].scheduled)
        finally:
            go.set()
        w.join(self)
        self.assertEqual(log, [("in channel", w.ident)])

    def test_kill_blocked_foreign_tasklet(self):
        # X-3, T-10: killing a foreign tasklet blocked in a channel takes
        # it out of the channel at once; it dies in its own thread.
        ch = channel()
        log = []
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def receiver():
            try:
                ch.receive()
            finally:
                log.append(("finally", threading.get_ident()))

        def body():
            box['t'] = tasklet(receiver)()
            stackless.run()
            ready.set()
            must_wait(go)
            stackless.run()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            t = box['t']
            self.assertEqual(ch.balance, -1)
            t.kill()
            self.assert_no_local_effect()
            self.assertEqual(ch.balance, 0)
            self.assertFalse(t.blocked)
            self.assertEqual(log, [])
        finally:
            go.set()
        w.join(self)
        self.assertEqual(log, [("finally", w.ident)])

    def test_switch_to_foreign_tasklet(self):
        # X-3, T-7: switch() to another thread's tasklet is an error.
        w = self.start_a("s")
        try:
            t = self.box["s"]
            with self.assertRaisesRegex(
                    RuntimeError, r"^can't switch to a different thread\.$"):
                t.switch()
            self.assert_no_local_effect()
            self.assertTrue(t.paused)
        finally:
            self.go.set()
        w.join(self)

    def test_switch_to_foreign_main(self):
        # X-3, T-7: also for the other thread's main tasklet.
        w = self.start_a()
        try:
            with self.assertRaisesRegex(
                    RuntimeError, r"^can't switch to a different thread\.$"):
                self.box['main'].switch()
            self.assert_no_local_effect()
        finally:
            self.go.set()
        w.join(self)


class ThreadEndTest(ThreadTestCase):
    """X-5: what happens to a thread's tasklets when it ends."""

    def test_paused_tasklet_killed_at_thread_end(self):
        # X-5, T-23, T-17: a tasklet paused with its stack is killed when
        # its thread ends (finally runs there); it is then threadless.
        log = []

        def body_():
            try:
                stackless.schedule_remove()
                log.append("resumed")
            except TaskletExit:
                log.append(("exit", threading.get_ident()))
                raise
            finally:
                log.append(("finally", threading.get_ident()))

        def body():
            t = tasklet(body_)()
            t.run()
            return t, t.paused

        w = self.start(body)
        t, paused = w.join(self)
        self.assertTrue(paused)
        self.assertEqual(log, [("exit", w.ident), ("finally", w.ident)])
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)
        self.assertFalse(t.paused)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.is_main)
        self.assertFalse(t.is_current)

    def test_scheduled_started_tasklet_killed_at_thread_end(self):
        # a started tasklet still in the runqueue when its thread
        # ends is killed too.
        log = []

        def body_():
            try:
                stackless.schedule()
                stackless.schedule()
            finally:
                log.append("finally")

        def body():
            t = tasklet(body_)()
            t.run()                 # runs up to the first schedule()
            return t, t.scheduled

        t, scheduled = self.start(body).join(self)
        self.assertTrue(scheduled)
        self.assertEqual(log, ["finally"])
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)

    def test_blocked_tasklet_killed_at_thread_end(self):
        # X-5, T-10: a tasklet blocked with its stack in a channel is
        # killed at thread end and so leaves the channel.
        ch = channel()
        log = []

        def receiver():
            try:
                ch.receive()
            finally:
                log.append(("finally", threading.get_ident()))

        def body():
            t = tasklet(receiver)()
            stackless.run()
            return t, ch.balance

        w = self.start(body)
        t, balance = w.join(self)
        self.assertEqual(balance, -1)
        self.assertEqual(log, [("finally", w.ident)])
        self.assertEqual(ch.balance, 0)
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)
        self.assertFalse(t.blocked)

    def test_never_run_tasklet_at_thread_end(self):
        # a runnable tasklet that never ran is unlinked and becomes
        # threadless; its function never runs.
        log = []

        def body():
            t = tasklet(log.append)("ran")
            return t, t.scheduled

        t, scheduled = self.start(body).join(self)
        self.assertTrue(scheduled)
        self.assertEqual(log, [])
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)
        self.assertFalse(t.scheduled)
        self.assertIsNone(t.next)
        self.assertIsNone(t.prev)

    def test_main_tasklet_after_thread_end(self):
        # X-5, T-17, T-22, T-23: the main tasklet of an ended thread.
        main = self.start(stackless.getmain).join(self)
        self.assertEqual(main.thread_id, -1)
        self.assertFalse(main.alive)
        self.assertFalse(main.is_current)
        self.assertFalse(main.is_main)

    def test_several_tasklets_killed_at_thread_end(self):
        # all tasklets with a stack are killed, each one once.
        log = []

        def worker(i):
            try:
                stackless.schedule_remove()
            finally:
                log.append(i)

        def body():
            ts = [tasklet(worker)(i) for i in range(5)]
            stackless.run()
            return ts

        ts = self.start(body).join(self)
        self.assertEqual(sorted(log), list(range(5)))
        self.assertTrue(all(t.thread_id == -1 and not t.alive for t in ts))

    def test_bind_thread_revives_threadless_tasklet(self):
        # X-5, T-14: a threadless tasklet with frames (never run, so no C
        # state) becomes alive again when bound to a thread.
        log = []

        def body():
            return tasklet(lambda x: log.append((x, threading.get_ident())),
                           ("revived",))

        t = self.track(self.start(body).join(self))
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)
        self.assertEqual(log, [])
        self.assertIsNone(t.bind_thread())
        self.assertEqual(t.thread_id, threading.get_ident())
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        t.run()
        self.assertEqual(log, [("revived", threading.get_ident())])
        self.assertFalse(t.alive)


class ThreadlessTaskletTest(ThreadTestCase):
    """X-5 with T-2 .. T-10: what can be done with a tasklet whose
    thread has ended (thread_id -1) while it still has its frames (it
    never ran, so it had no C state to kill)."""

    def setUp(self):
        super().setUp()
        self.ran = []

    def threadless(self):
        def body():
            return tasklet(self.ran.append, ("ran",))

        t = self.start(body).join(self)
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)
        return t

    def test_insert(self):
        # T-4: RuntimeError("Target thread isn't initialized").
        t = self.threadless()
        with self.assertRaisesRegex(
                RuntimeError, r"^Target thread isn't initiali[sz]ed$"):
            t.insert()

    def test_run_and_switch(self):
        # T-6, T-7: RuntimeError("tasklet has no thread").
        t = self.threadless()
        with self.assertRaisesRegex(RuntimeError, r"^tasklet has no thread$"):
            t.run()
        with self.assertRaisesRegex(RuntimeError, r"^tasklet has no thread$"):
            t.switch()
        self.assertEqual(self.ran, [])

    def test_remove(self):
        # T-5: thread gone: remove() is a no-op.
        t = self.threadless()
        self.assertIs(t.remove(), t)
        self.assertEqual(t.thread_id, -1)

    def test_throw(self):
        # T-8, T-9: RuntimeError("tasklet has no thread").
        t = self.threadless()
        with self.assertRaisesRegex(RuntimeError, r"^tasklet has no thread$"):
            t.throw(ValueError("x"))
        with self.assertRaisesRegex(RuntimeError, r"^tasklet has no thread$"):
            t.raise_exception(ValueError, "x")
        self.assertEqual(self.ran, [])

    def test_bind(self):
        # T-2: RuntimeError("tasklet has no thread").
        t = self.threadless()
        with self.assertRaisesRegex(RuntimeError, r"^tasklet has no thread$"):
            t.bind(self.ran.append, ("again",))

    def test_kill_drops_frames(self):
        # T-10: threadless with frames: the frames are dropped, nothing
        # runs; bind_thread() then leaves it dead (T-14: only a tasklet
        # with frames becomes alive again).
        t = self.threadless()
        self.assertIsNone(t.kill())
        self.assertEqual(self.ran, [])
        self.assertFalse(t.alive)
        self.assertIsNone(t.frame)
        t.bind_thread()
        self.assertFalse(t.alive)
        self.assertEqual(self.ran, [])


class ThreadlessStartedTaskletTest(ThreadTestCase):
    """X-5, T-10, T-14: a tasklet that was parked softly in a thread that
    then ended keeps its frames.  Killing it, or collecting it, clears
    them as the eval loop would (frame objects keep copies, generators in
    them end); bind_thread() moves the whole frame chain, with the
    exception state of the generators in it."""

    both_modes = False          # only soft-parked tasklets outlive a thread

    def setUp(self):
        super().setUp()
        old = stackless.enable_softswitch(True)
        self.addCleanup(stackless.enable_softswitch, old)

    def test_kill_clears_frames(self):
        ch = channel()
        freed = []

        class Canary:
            pass

        def stubborn():
            c = Canary()
            weakref.finalize(c, freed.append, "canary")
            while True:
                try:
                    ch.receive()
                except TaskletExit:
                    pass

        def body():
            t = tasklet(stubborn)()
            stackless.run()
            return t

        t = self.start(body).join(self)
        self.assertEqual(t.thread_id, -1)
        self.assertTrue(t.blocked)
        self.assertEqual(ch.balance, -1)
        self.assertIsNone(t.kill())
        self.assertFalse(t.alive)
        self.assertFalse(t.blocked)         # it left the channel
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(t.frame)
        self.assertEqual(freed, ["canary"])

    def test_collected_tasklet_ends_its_generator(self):
        ch = channel()
        saved = {}

        def gen():
            while True:
                try:
                    ch.receive()
                except TaskletExit:
                    continue
                yield 1

        def stubborn():
            try:
                1 / 0
            except ZeroDivisionError as e:
                saved["exc"] = e            # its traceback holds our frame
            g = gen()
            saved["gen"] = g
            next(g)

        def body():
            tasklet(stubborn)()
            stackless.run()

        self.start(body).join(self)
        self.assertTrue(saved["gen"].gi_running)
        ch = None
        gc.collect()                        # the tasklet goes, with its chunk
        junk = [bytearray(n) for n in range(40, 400) for _ in range(20)]
        g = saved["gen"]
        self.assertFalse(g.gi_running)
        self.assertIsNone(g.gi_frame)
        with self.assertRaises(StopIteration):
            next(g)
        tb = saved["exc"].__traceback__
        self.assertEqual(tb.tb_frame.f_code, stubborn.__code__)
        self.assertIsNone(tb.tb_frame.f_back)
        text = "".join(traceback.format_exception(saved["exc"]))
        self.assertIn("1 / 0", text)
        del junk

    def test_bind_thread_moves_generator_exception_state(self):
        # The generator in the moved chain sees the handled exception of
        # its new thread, not the one its old thread handles meanwhile.
        ch = channel()
        box = {}
        in_except = threading.Event()
        finish = threading.Event()

        def gen():
            ch.receive()
            yield sys.exc_info()[1]

        def task():
            box["seen"] = next(gen())

        def body():
            box["t"] = tasklet(task)()
            stackless.run()                 # it blocks inside gen
            try:
                raise ValueError("handled by the old thread")
            except ValueError:
                in_except.set()
                must_wait(finish)

        w = self.start(body)
        self.assertTrue(in_except.wait(TIMEOUT))
        t = self.track(box["t"])
        t.bind_thread()
        ch.send(None)                       # t resumes here
        finish.set()
        w.join(self)
        self.assertIsNone(box["seen"])

    def test_bind_thread_after_thread_end(self):
        # The old thread's state is freed: nothing in the chain may point
        # at it (a debug build asserts, a release build reads freed memory).
        ch = channel()
        box = {}

        def gen():
            while True:
                try:
                    ch.receive()
                except TaskletExit:
                    continue            # survives the kills at thread end
                yield sys.exc_info()

        def task():
            g = gen()
            box["info"] = next(g)
            try:
                raise KeyError("k")
            except KeyError:
                pass
            box["done"] = True

        def body():
            box["t"] = tasklet(task)()
            stackless.run()

        self.start(body).join(self)
        t = self.track(box["t"])
        self.assertEqual(t.thread_id, -1)
        t.bind_thread()
        junk = [bytearray(n) for n in range(40, 400) for _ in range(20)]
        ch.send(None)
        del junk
        self.assertEqual(box["info"], (None, None, None))
        self.assertIs(box.get("done"), True)


class ReleaseInThreadTest(ThreadTestCase):
    """T-15 with threads: a released tasklet with C state is killed."""

    def setUp(self):
        super().setUp()
        self.log = []

    def body(self):
        me = threading.get_ident()
        try:
            stackless.schedule_remove()
            self.log.append(("resumed", me))
        except TaskletExit:
            self.log.append(("exit", me))
            raise
        finally:
            self.log.append(("finally", me))

    def test_released_in_own_thread(self):
        # T-15, X-5: a paused tasklet released in its own thread is
        # killed there, once, and never resumes normally.
        def body():
            t = tasklet(self.body)()
            t.run()
            self.assertTrue(t.paused)
            del t
            gc.collect()
            stackless.run()

        w = self.start(body)
        w.join(self)
        self.assertEqual(self.log, [("exit", w.ident), ("finally", w.ident)])

    def test_released_in_other_thread(self):
        # T-15, X-3: the last reference to a paused tasklet of thread A
        # dropped here: it is killed once (foreign kill: no local switch)
        # and dies in thread A.
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def body():
            t = tasklet(self.body)()
            t.run()
            box['t'] = t
            del t
            ready.set()
            must_wait(go)
            stackless.run()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            ref = weakref.ref(box.pop('t'))
            gc.collect()
            self.assertEqual(self.log, [])
            self.assertEqual(stackless.getruncount(), 1)
        finally:
            go.set()
        w.join(self)
        del ref
        gc.collect()
        self.assertEqual(self.log, [("exit", w.ident), ("finally", w.ident)])


class AfterTheTaskletsEndTest(unittest.TestCase):
    """Python code that runs in a thread after its tasklets were let go,
    as its thread state is cleared (a finalizer of a thread-local object):
    it runs, without switching, and what needs the thread's tasklets
    raises RuntimeError (it crashed)."""

    def test_finalizer_of_a_thread_local(self):
        out = []

        class Manager:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        def gen():
            yield 1

        def cleanup():
            with Manager():
                out.append(next(gen()))
                out.append(list(map(lambda x: x + 1, [1])))
            for op in (stackless.getcurrent, stackless.schedule,
                       lambda: stackless.tasklet(print)(),
                       lambda: stackless.channel().send(1)):
                try:
                    op()
                except RuntimeError as e:
                    out.append(str(e))

        class Holder:
            pass

        local = threading.local()

        def target():
            stackless.schedule()
            local.holder = Holder()
            weakref.finalize(local.holder, cleanup)

        t = threading.Thread(target=target)
        t.start()
        t.join()
        gc.collect()
        self.assertEqual(out[:2], [1, [2]])
        self.assertEqual(out[2:],
                         ["the tasklets of this thread have ended"] * 4)


class BindThreadTest(ThreadTestCase):
    """T-14: bind_thread() moves a tasklet to another thread."""

    def setUp(self):
        super().setUp()
        self.box = {}
        self.ready = threading.Event()
        self.go = threading.Event()

    def thread_main(self):
        self.box['main'] = stackless.getmain()
        self.ready.set()
        must_wait(self.go)
        # Run whatever was moved here.
        stackless.run()

    def start_a(self):
        w = self.start(self.thread_main)
        self.assertTrue(self.ready.wait(TIMEOUT))
        return w

    def test_bind_fresh_tasklet_to_other_thread(self):
        # T-14, X-2: ownership moves with bind_thread(thread_id); calling
        # it without argument takes the tasklet back.
        w = self.start_a()
        try:
            t = self.track(tasklet())
            self.assertIsNone(t.bind_thread(w.ident))
            self.assertEqual(t.thread_id, w.ident)
            self.assertIsNone(t.bind_thread())
            self.assertEqual(t.thread_id, threading.get_ident())
            self.assertIsNone(t.bind_thread(w.ident))
            self.assertIsNone(t.bind_thread(-1))
            self.assertEqual(t.thread_id, threading.get_ident())
        finally:
            self.go.set()
        w.join(self)

    def test_bind_own_thread_is_noop(self):
        # T-14: no-op if omitted and already ours, even when runnable.
        t = self.track(tasklet(lambda: None)())
        self.assertIsNone(t.bind_thread())
        self.assertEqual(t.thread_id, threading.get_ident())
        self.assertTrue(t.scheduled)
        stackless.run()
        u = self.track(tasklet(lambda: None, ()))
        self.assertIsNone(u.bind_thread(threading.get_ident()))
        self.assertEqual(u.thread_id, threading.get_ident())
        self.assertTrue(u.paused)

    def test_bound_paused_tasklet_runs_in_new_thread(self):
        # T-14, X-2: a paused (bound, never run) tasklet moved to another
        # thread runs there when inserted.
        log = []
        w = self.start_a()
        try:
            t = self.track(tasklet(lambda: log.append(threading.get_ident()),
                                   ()))
            self.assertTrue(t.paused)
            t.bind_thread(w.ident)
            self.assertEqual(t.thread_id, w.ident)
            self.assertTrue(t.alive)
            t.insert()
            self.assertEqual(stackless.getruncount(), 1)
            self.assertEqual(stackless.get_thread_info(w.ident)[2], 2)
        finally:
            self.go.set()
        w.join(self)
        self.assertEqual(log, [w.ident])

    def test_bind_foreign_tasklet_to_us(self):
        # T-14: a paused tasklet of another thread can be taken over by
        # calling bind_thread() here.
        log = []
        ready = threading.Event()
        go = threading.Event()
        box = {}

        def body():
            box['t'] = tasklet(lambda: log.append(threading.get_ident()), ())
            ready.set()
            must_wait(go)

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            t = self.track(box['t'])
            self.assertEqual(t.thread_id, w.ident)
            t.bind_thread()
            self.assertEqual(t.thread_id, threading.get_ident())
        finally:
            go.set()
        w.join(self)
        self.assertTrue(t.alive)
        t.run()
        self.assertEqual(log, [threading.get_ident()])

    def test_runnable_tasklet_cannot_be_rebound(self):
        # T-14: a runnable tasklet can't move to another thread.
        w = self.start_a()
        try:
            t = self.track(tasklet(lambda: None)())
            with self.assertRaisesRegex(
                    RuntimeError, r"^can't \(re\)bind a runnable tasklet$"):
                t.bind_thread(w.ident)
            self.assertEqual(t.thread_id, threading.get_ident())
            self.assertTrue(t.scheduled)
        finally:
            self.go.set()
        w.join(self)
        stackless.run()

    def test_foreign_runnable_tasklet_cannot_be_taken(self):
        # T-14: nor can a tasklet runnable in another thread move here.
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def body():
            box['t'] = tasklet(lambda: None)()
            ready.set()
            must_wait(go)
            stackless.run()

        w = self.start(body)
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            with self.assertRaisesRegex(
                    RuntimeError, r"^can't \(re\)bind a runnable tasklet$"):
                box['t'].bind_thread()
            self.assertEqual(box['t'].thread_id, w.ident)
        finally:
            go.set()
        w.join(self)
        self.assertFalse(box['t'].alive)

    def test_started_tasklet_cannot_move(self):
        # T-14: with hard switching a started tasklet keeps C state on its
        # stack: RuntimeError("tasklet has C state on its stack").
        w = self.start_a()
        try:
            t = self.track(tasklet(stackless.schedule_remove)())
            t.run()
            self.assertTrue(t.paused)
            with self.assertRaisesRegex(
                    RuntimeError, r"^tasklet has C state on its stack$"):
                t.bind_thread(w.ident)
            self.assertEqual(t.thread_id, threading.get_ident())
        finally:
            self.go.set()
        w.join(self)

    def test_bad_thread(self):
        # T-14: an unknown thread id gives ValueError("bad thread").
        t = self.track(tasklet())
        ids = set(stackless.getthreads())
        bogus = max(ids) + 1
        while bogus in ids:
            bogus += 1
        with self.assertRaisesRegex(ValueError, r"^bad thread$"):
            t.bind_thread(bogus)
        self.assertEqual(t.thread_id, threading.get_ident())

    def test_ended_thread_is_bad(self):
        # T-14: the id of a thread that ended is unknown.
        w = self.start(stackless.getcurrent)
        w.join(self)
        t = self.track(tasklet(lambda: None, ()))
        with self.assertRaisesRegex(ValueError, r"^bad thread$"):
            t.bind_thread(w.ident)
        self.assertEqual(t.thread_id, threading.get_ident())
        self.assertTrue(t.paused)


class ShutdownTest(unittest.TestCase):
    """X-6: at interpreter shutdown, daemon threads still running tasklets
    get TaskletExit and short time slices to end them."""

    def test_daemon_thread_tasklets_end_at_exit(self):
        code = textwrap.dedent("""
            import stackless, sys, threading, time
            ready = threading.Event()
            def spin(name):
                try:
                    ready.set()
                    while True:
                        stackless.schedule()
                finally:
                    print("finally", name, flush=True)
            def worker():
                for i in range(3):
                    stackless.tasklet(spin)(i)
                try:
                    while True:
                        stackless.schedule()
                finally:
                    print("finally main", flush=True)
            threading.Thread(target=worker, daemon=True).start()
            ready.wait(10)
            time.sleep(0.05)
            print("exit", flush=True)
        """)
        rc, out, err = script_helper.assert_python_ok("-c", code)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0], "exit")
        # The thread's main tasklet got TaskletExit and ended; the end of
        # the thread then killed the other tasklets.
        self.assertIn("finally main", lines, err.decode())
        self.assertEqual(sorted(line for line in lines[1:]
                                if line != "finally main"),
                         ["finally 0", "finally 1", "finally 2"])
        # Killing them did not raise TaskletExit in the main tasklet a
        # second time (it was asked to end once).
        self.assertNotIn(b"Exception killing tasklet", err)

    def test_waiting_daemon_thread_ends_at_exit(self):
        # X-6, S-12 (2): a daemon thread waits for others, its last
        # tasklet ended and its main tasklet blocked: at exit its main
        # tasklet is killed, which wakes it, and its tasklets end; exit
        # does not wait for it longer than that.
        code = textwrap.dedent("""
            import stackless, threading, time
            ready = threading.Event()
            def blocked():
                try:
                    stackless.channel().receive()
                finally:
                    print("finally tasklet", flush=True)
            def worker():
                stackless.tasklet(blocked)()
                stackless.tasklet(lambda: None)()
                try:
                    ready.set()
                    stackless.channel().receive()
                finally:
                    print("finally main", flush=True)
            t = threading.Thread(target=worker, daemon=True)
            t.start()
            ready.wait(10)
            while stackless.get_thread_info(t.ident)[2] != 0:
                time.sleep(0.001)
            print("exit", flush=True)
        """)
        rc, out, err = script_helper.assert_python_ok("-c", code)
        self.assertEqual(out.decode().splitlines(),
                         ["exit", "finally main", "finally tasklet"])

    def test_waiting_thread_joined_at_exit(self):
        # S-12 (4): a non-daemon thread waits for the main thread, which
        # exits and joins it: the main thread can wake nobody any more,
        # so the waiter gets the Deadlock error instead of hanging exit.
        code = textwrap.dedent("""
            import stackless, threading, time
            ch = stackless.channel()
            def worker():
                try:
                    ch.receive()
                except RuntimeError as e:
                    print("worker:", e, flush=True)
            threading.Thread(target=worker).start()
            while ch.balance != -1:
                time.sleep(0.001)
            print("exit", flush=True)
        """)
        # A hang is what is tested: the exit must not wait for ever.
        proc = subprocess.run([sys.executable, "-X", "faulthandler", "-I",
                               "-c", code], capture_output=True,
                              timeout=6 * TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual(proc.stdout.decode().splitlines(),
                         ["exit", "worker: Deadlock: the last runnable "
                          "tasklet cannot be blocked."])


if __name__ == "__main__":
    unittest.main()
