"""The scheduler within one thread (spec S-1 .. S-6, S-8 .. S-12, M-9,
M-11).

The test methods run in the main tasklet.  Tasklet code runs when a test
switches: stackless.run(), schedule(), t.run() or a channel operation.
Preemption tests use counting loops with a bound, so that a missing
preemption fails the test instead of hanging it.  Timeouts count ticks,
whose exact length is implementation-defined.
"""

import functools
import sys
import textwrap
import threading
import types
import unittest
from test.support import script_helper

import stackless
from . import helpers
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


DEADLOCK_TEXT = "Deadlock: the last runnable tasklet cannot be blocked."
SPIN_LIMIT = 3 * 10 ** 6     # loop iterations a spinning tasklet may make
TIMEOUT = 100                 # ticks, for run(TIMEOUT)


def single_thread(test):
    """S-12: with other Python threads around, a tasklet that blocks the
    last runnable tasklet waits for them instead of raising Deadlock."""
    @functools.wraps(test)
    def wrapper(self):
        if threading.active_count() != 1:
            self.skipTest("other threads are running")
        return test(self)
    return wrapper


class StacklessTestCase(helpers.StacklessTestCase):

    def spinner(self, name, limit=SPIN_LIMIT, counter=None):
        """A tasklet function counting up to limit in a loop that never
        switches by itself; counter[0] shows how far it got."""
        if counter is None:
            counter = [0]

        def spin():
            while counter[0] < limit:
                counter[0] += 1
            self.log.append((name, "finished"))
        return spin


class RunqueueTest(StacklessTestCase):

    def test_main_alone(self):
        # S-1, M-5, T-25: main alone is its own neighbour.
        main = stackless.getcurrent()
        self.assertIs(main.next, main)
        self.assertIs(main.prev, main)
        self.assertEqual(stackless.getruncount(), 1)

    def test_append_before_current(self):
        # S-1: new tasklets are appended just before current, in order.
        main = stackless.getcurrent()
        ts = [self.spawn(self.record, i) for i in range(3)]
        self.assertEqual(stackless.getruncount(), 4)
        self.assertIs(main.next, ts[0])
        self.assertIs(ts[0].next, ts[1])
        self.assertIs(ts[1].next, ts[2])
        self.assertIs(ts[2].next, main)
        self.assertIs(main.prev, ts[2])
        self.assertIs(ts[0].prev, main)
        stackless.schedule()
        self.assertEqual(self.log, [(ts[0], 0), (ts[1], 1), (ts[2], 2)])
        self.assertEqual(stackless.getruncount(), 1)

    def test_append_from_running_tasklet(self):
        # S-1: a tasklet created by a running tasklet is appended just
        # before that one: it runs last in this cycle, after main.
        main = stackless.getcurrent()
        created = []

        def creator():
            self.record("creator")
            created.append(self.spawn(self.record, "created"))
            t = created[0]
            self.log.append(("neighbours", t.prev, t.next))
        c = self.spawn(creator)
        t2 = self.spawn(self.record, "t2")
        stackless.schedule()
        self.record("main")
        t = created[0]
        self.assertEqual(self.log, [(c, "creator"),
                                    ("neighbours", main, c),
                                    (t2, "t2"),
                                    (main, "main")])
        self.assertTrue(t.scheduled)
        stackless.schedule()
        self.assertEqual(self.log[-1], (t, "created"))

    def test_round_robin(self):
        # S-1, S-2: tasklets that schedule() take turns, main included.
        def worker(name):
            for i in range(3):
                self.record(name, i)
                stackless.schedule()
        a = self.spawn(worker, "a")
        b = self.spawn(worker, "b")
        main = stackless.getcurrent()
        for i in range(3):
            stackless.schedule()
            self.record("main", i)
        self.assertEqual(self.log, [
            (a, "a", 0), (b, "b", 0), (main, "main", 0),
            (a, "a", 1), (b, "b", 1), (main, "main", 1),
            (a, "a", 2), (b, "b", 2), (main, "main", 2)])
        stackless.schedule()
        self.assertFalse(a.alive or b.alive)

    def test_runcount_skips_blocked_and_paused(self):
        # M-5, S-3: blocked and paused tasklets are not counted.
        ch = stackless.channel()
        self.spawn(ch.receive)
        self.spawn(stackless.schedule_remove)
        self.spawn(lambda: None)
        self.assertEqual(stackless.getruncount(), 4)
        stackless.schedule()
        self.assertEqual(stackless.getruncount(), 1)
        self.assertEqual(ch.balance, -1)


class ScheduleTest(StacklessTestCase):

    def test_alone_returns_at_once(self):
        # S-2: alone, schedule() returns at once with its retval.
        main = stackless.getcurrent()
        self.assertIs(stackless.schedule(), main)
        self.assertEqual(stackless.schedule(42), 42)
        self.assertIsNone(stackless.schedule(None))
        self.assertEqual(stackless.getruncount(), 1)

    def test_default_retval_is_current(self):
        # S-2: the default retval is the current tasklet.
        seen = []

        def f():
            seen.append(stackless.schedule() is stackless.getcurrent())
        self.spawn(f)
        self.assertIs(stackless.schedule(), stackless.getcurrent())
        stackless.schedule()
        self.assertEqual(seen, [True])

    def test_retval_returned(self):
        # S-2, T-16: retval waits in the caller's tempval and is returned
        # on resumption; the tempval is taken (reset to None).
        main = stackless.getcurrent()
        seen = []
        self.spawn(lambda: seen.append(main.tempval))
        value = object()
        self.assertIs(stackless.schedule(value), value)
        self.assertEqual(seen, [value])
        self.assertIsNone(main.tempval)

    def test_retval_changed_meanwhile(self):
        # S-2: the caller's tempval at resumption is returned.
        main = stackless.getcurrent()

        def f():
            main.tempval = "changed"
        self.spawn(f)
        self.assertEqual(stackless.schedule("orig"), "changed")
        self.assertIsNone(main.tempval)

    def test_bomb_in_tempval_is_raised(self):
        # S-2, M-13: a bomb placed in the tempval by hand is raised.
        main = stackless.getcurrent()
        exc = KeyError("by hand")

        def f():
            main.tempval = stackless.bomb(KeyError, exc)
        self.spawn(f)
        with self.assertRaises(KeyError) as cm:
            stackless.schedule()
        self.assertIs(cm.exception, exc)

    def test_caller_goes_to_cycle_end(self):
        # S-2: the caller stays runnable, at the end of the cycle.
        main = stackless.getcurrent()
        seen = []

        def f():
            seen.append((main.scheduled, main.paused,
                         stackless.getcurrent().next is main,
                         stackless.getruncount()))
        self.spawn(f)
        stackless.schedule()
        self.assertEqual(seen, [(True, False, True, 2)])

    def test_schedule_in_tasklet_returns_retval(self):
        # S-2: in a tasklet too.
        results = []

        def f():
            results.append(stackless.schedule("mine"))
        self.spawn(f)
        stackless.schedule()
        self.assertEqual(results, [])
        stackless.schedule()
        self.assertEqual(results, ["mine"])


class ScheduleRemoveTest(StacklessTestCase):

    def test_tasklet_pauses_itself(self):
        # S-3: the caller leaves the runqueue (paused); inserted again,
        # schedule_remove() returns its retval (default: current).
        results = []

        def f():
            results.append(stackless.schedule_remove())
        t = self.spawn(f)
        stackless.schedule()
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.blocked)
        self.assertEqual(stackless.getruncount(), 1)
        self.assertEqual(results, [])
        t.insert()
        self.assertTrue(t.scheduled)
        stackless.schedule()
        self.assertEqual(results, [t])
        self.assertFalse(t.alive)

    def test_custom_primitive(self):
        # S-3: someone sets t.tempval and inserts t; schedule_remove()
        # returns that value.
        waiting = []

        def wait():
            waiting.append(stackless.getcurrent())
            return stackless.schedule_remove()

        def signal(value):
            t = waiting.pop(0)
            t.tempval = value
            t.insert()

        def waiter(name):
            self.record(name, wait())

        a = self.spawn(waiter, "a")
        b = self.spawn(waiter, "b")
        stackless.schedule()
        self.assertEqual(waiting, [a, b])
        self.assertEqual(stackless.getruncount(), 1)
        signal("second")    # goes to a, the first waiter
        signal("first")
        self.assertEqual(stackless.getruncount(), 3)
        stackless.schedule()
        self.assertEqual(self.log, [(a, "a", "second"), (b, "b", "first")])

    def test_retval(self):
        # S-3: schedule_remove(retval) returns retval when the tasklet is
        # simply inserted again.
        results = []
        t = self.spawn(lambda: results.append(stackless.schedule_remove(7)))
        stackless.schedule()
        self.assertEqual(t.tempval, 7)
        t.insert()
        stackless.schedule()
        self.assertEqual(results, [7])

    def test_bypasses_block_trap(self):
        # S-3, T-13: schedule_remove ignores block_trap.
        results = []

        def f():
            stackless.getcurrent().block_trap = True
            results.append(stackless.schedule_remove("ok"))
        t = self.spawn(f)
        stackless.schedule()
        self.assertTrue(t.paused)
        t.insert()
        stackless.schedule()
        self.assertEqual(results, ["ok"])

    def test_main_resumes_when_runqueue_empties(self):
        # S-3, S-9: main paused by schedule_remove resumes when the last
        # runnable tasklet ends.
        main = stackless.getcurrent()
        seen = []
        self.spawn(lambda: seen.append((main.paused, main.scheduled)))
        self.assertEqual(stackless.schedule_remove("back"), "back")
        self.assertEqual(seen, [(True, False)])
        self.assertTrue(main.scheduled)
        self.assertEqual(stackless.getruncount(), 1)

    def test_main_reinserted_by_tasklet(self):
        # S-3: a tasklet inserts the paused main again.
        main = stackless.getcurrent()

        def f():
            self.record("f")
            main.tempval = "woken"
            main.insert()
            stackless.schedule()
            self.record("f again")
        t = self.spawn(f)
        self.assertEqual(stackless.schedule_remove(), "woken")
        self.assertEqual(self.log, [(t, "f")])
        stackless.schedule()
        self.assertEqual(self.log, [(t, "f"), (t, "f again")])

    @single_thread
    def test_main_alone_resumes_at_once(self):
        # S-3, S-12 (1): main alone removes itself; as the paused W it
        # resumes at once and stays the only runnable tasklet.
        main = stackless.getcurrent()
        self.assertEqual(stackless.schedule_remove("v"), "v")
        self.assertTrue(main.scheduled)
        self.assertIs(main.next, main)
        self.assertEqual(stackless.getruncount(), 1)


class RunTest(StacklessTestCase):

    def test_empty_runqueue(self):
        # S-4: an empty runqueue -> None at once.
        self.assertIsNone(stackless.run())
        self.assertIsNone(stackless.run(TIMEOUT))
        self.assertEqual(stackless.getruncount(), 1)

    def test_runs_all_and_returns_none(self):
        # S-4 (a): run() returns None when the runqueue empties.
        ts = [self.spawn(self.record, i) for i in range(3)]
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [(ts[0], 0), (ts[1], 1), (ts[2], 2)])
        self.assertFalse(any(t.alive for t in ts))
        self.assertEqual(stackless.getruncount(), 1)
        self.assertIs(stackless.getcurrent(), stackless.getmain())

    def test_caller_is_paused(self):
        # S-4: the caller leaves the runqueue (paused) while in run().
        main = stackless.getcurrent()
        seen = []

        def f():
            seen.append((main.paused, main.scheduled, main.alive,
                         stackless.getruncount()))
        self.spawn(f)
        self.spawn(f)
        stackless.run()
        self.assertEqual(seen, [(True, False, True, 2),
                                (True, False, True, 1)])
        self.assertTrue(main.scheduled)
        self.assertFalse(main.paused)

    def test_schedule_inside_run(self):
        # S-4: tasklets that schedule() go round until they end; the
        # watchdog is not part of the cycle.
        def worker(name):
            for i in range(2):
                self.record(name, i)
                stackless.schedule()
        a = self.spawn(worker, "a")
        b = self.spawn(worker, "b")
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [(a, "a", 0), (b, "b", 0),
                                    (a, "a", 1), (b, "b", 1)])

    def test_blocked_tasklets_stay_blocked(self):
        # S-4 (a), S-12 (1): a tasklet blocking the last runnable slot
        # makes run() return None; it stays blocked.
        ch = stackless.channel()

        def f():
            self.record("before")
            ch.receive()
            self.record("after")
        t = self.spawn(f)
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [(t, "before")])
        self.assertTrue(t.blocked)
        self.assertEqual(ch.balance, -1)
        ch.send(None)
        self.assertEqual(self.log[-1], (t, "after"))

    def test_paused_tasklets_stay_paused(self):
        # S-4 (a): a tasklet that removes itself ends run() too.
        t = self.spawn(stackless.schedule_remove)
        self.assertIsNone(stackless.run())
        self.assertTrue(t.paused)
        self.assertTrue(t.alive)

    def test_keywords(self):
        # S-4: keywords are allowed.
        self.spawn(self.record, "x")
        self.assertIsNone(stackless.run(timeout=0, threadblock=False,
                                        soft=False, ignore_nesting=False,
                                        totaltimeout=False))
        self.assertEqual(len(self.log), 1)
        self.spawn(self.record, "y")
        self.assertIsNone(stackless.run(0, False, False, False, False))
        self.assertEqual(len(self.log), 2)

    def test_exception_from_run(self):
        # S-4 (b), S-11: an uncaught exception is raised from run().
        exc = ValueError("in tasklet")

        def f():
            raise exc
        self.spawn(f)
        with self.assertRaises(ValueError) as cm:
            stackless.run()
        self.assertIs(cm.exception, exc)
        self.assertEqual(stackless.getruncount(), 1)


class NestedRunTest(StacklessTestCase):

    def test_run_in_tasklet(self):
        # S-4: run() is callable from any tasklet and nestable.
        main = stackless.getcurrent()
        seen = []

        def watchdog():
            self.record("w start")
            self.spawn(worker, "t2")
            result = stackless.run()
            self.record("w run returned", result)

        def worker(name):
            seen.append((w.paused, main.paused, stackless.getruncount()))
            self.record(name)
        w = self.spawn(watchdog)
        t1 = self.spawn(worker, "t1")
        self.assertIsNone(stackless.run())
        t2 = self.log[2][0]
        self.assertEqual(self.log, [(w, "w start"), (t1, "t1"), (t2, "t2"),
                                    (w, "w run returned", None)])
        self.assertEqual(seen, [(True, True, 2), (True, True, 1)])
        self.assertFalse(w.alive)

    def test_waking_outer_watchdog_requeues_inner(self):
        # S-4: running an outer watchdog explicitly wakes it and
        # re-queues the inner ones.
        main = stackless.getcurrent()

        def waker():
            self.record("waker")
            main.run()
            self.record("waker resumed")

        def watchdog():
            self.spawn(waker)
            self.record("inner run returned", stackless.run())
        w = self.spawn(watchdog)
        self.assertIsNone(stackless.run())
        t = self.log[0][0]
        self.assertEqual(self.log, [(t, "waker")])
        self.assertTrue(w.scheduled)
        self.assertFalse(w.paused)
        self.assertTrue(t.scheduled)
        self.assertEqual(stackless.getruncount(), 3)
        stackless.run()
        self.assertIn((w, "inner run returned", None), self.log)
        self.assertIn((t, "waker resumed"), self.log)
        self.assertFalse(w.alive or t.alive)

    def test_exception_raised_in_innermost_run(self):
        # S-4 (b), S-11: the innermost run() raises the exception.
        def failing():
            raise KeyError("inner")

        def watchdog():
            self.spawn(failing)
            try:
                stackless.run()
            except KeyError as e:
                self.record("caught", e.args)
        w = self.spawn(watchdog)
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [(w, "caught", ("inner",))])

    def test_running_outer_watchdog_explicitly(self):
        # S-4: main.run() from a tasklet wakes the paused watchdog; its
        # run() returns None and the tasklet stays runnable.
        main = stackless.getcurrent()

        def f():
            self.record("f")
            main.run()
            self.record("f resumed")
        t = self.spawn(f)
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [(t, "f")])
        self.assertTrue(t.scheduled)
        self.assertFalse(t.blocked)
        stackless.schedule()
        self.assertEqual(self.log, [(t, "f"), (t, "f resumed")])

    def test_nested_run_with_timeout(self):
        # S-5: with no timed run() outside, a nested run(timeout) arms
        # the timer; the interrupted tasklet is returned by that run().
        counter = [0]
        spin = self.spinner("spin", counter=counter)
        results = []

        def watchdog():
            s = self.spawn(spin)
            results.append((stackless.run(TIMEOUT), s))
            results.append((s.paused, s.alive))
        self.spawn(watchdog)
        self.assertIsNone(stackless.run())
        [(interrupted, s), state] = results
        self.assertIs(interrupted, s)
        self.assertEqual(state, (True, True))
        self.assertLess(counter[0], SPIN_LIMIT)
        self.assertEqual(self.log, [])

    def test_nested_timeout_acts_as_zero(self):
        # S-5: inside a timed run(), a nested run(timeout) arms no timer
        # of its own; the outer timer interrupts, and the outer run()
        # returns the interrupted tasklet.
        counter = [0]
        spin = self.spinner("spin", counter=counter)
        spinners = []

        def watchdog():
            spinners.append(self.spawn(spin))
            self.record("inner run returned", stackless.run(10 ** 9))
        self.spawn(watchdog)
        result = stackless.run(TIMEOUT)
        self.assertEqual(len(spinners), 1)
        self.assertIs(result, spinners[0])
        self.assertTrue(result.paused)
        self.assertLess(counter[0], SPIN_LIMIT)
        self.assertEqual(self.log, [])


class PreemptionTest(StacklessTestCase):

    def test_timeout_interrupts_endless_loop(self):
        # S-5, S-6: run(timeout) removes the running tasklet (paused) and
        # returns it; t.frame shows where it was.
        counter = [0]
        spin = self.spinner("spin", counter=counter)
        t = self.spawn(spin)
        result = stackless.run(TIMEOUT)
        self.assertIs(result, t)
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.blocked)
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.assertIs(t.frame.f_code, spin.__code__)
        first = counter[0]
        self.assertGreater(first, 0)
        self.assertLess(first, SPIN_LIMIT)
        # Inserted again, it goes on from where it was.
        t.insert()
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertGreater(counter[0], first)
        self.assertLess(counter[0], SPIN_LIMIT)
        self.assertEqual(self.log, [])

    def test_while_true_pass(self):
        # S-5: even `while True: pass` is interrupted.
        def endless():
            while True:
                pass
        t = self.spawn(endless)
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertTrue(t.paused)
        t.kill()
        self.assertFalse(t.alive)

    def test_finished_before_timeout(self):
        # S-4 (a): a timed run() whose tasklets end returns None.
        self.spawn(self.record, "quick")
        self.assertIsNone(stackless.run(10 ** 6))
        self.assertEqual(len(self.log), 1)

    def test_uncooperative_detection_idiom(self):
        # S-6: `t = run(N); if t: t.insert()` until all are done.  Two
        # spinners take turns, each interrupted in its timeslice.
        limit = 20000
        a = self.spawn(self.spinner("a", limit))
        b = self.spawn(self.spinner("b", limit))
        interrupted = []
        for _ in range(10 ** 5):
            t = stackless.run(TIMEOUT)
            if t is None:
                break
            interrupted.append(t)
            t.insert()
        else:
            self.fail("run() never returned None")
        self.assertCountEqual(self.log, [("a", "finished"),
                                         ("b", "finished")])
        self.assertGreaterEqual(len(interrupted), 4)
        self.assertEqual(interrupted[:4], [a, b, a, b])
        self.assertFalse(a.alive or b.alive)

    def test_preemption_deferred_while_atomic(self):
        # S-5, M-9, T-11: no preemption inside `with stackless.atomic()`.
        counter = [0]
        inside = []

        def f():
            with stackless.atomic():
                inside.append(stackless.getcurrent().atomic)
                for i in range(50 * TIMEOUT):
                    pass
                self.log.append("atomic section done")
            inside.append(stackless.getcurrent().atomic)
            while counter[0] < SPIN_LIMIT:
                counter[0] += 1
        t = self.spawn(f)
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertEqual(self.log, ["atomic section done"])
        # The preemption due inside comes as soon as the block is left.
        self.assertEqual(inside[:1], [True])
        self.assertFalse(t.atomic)
        self.assertLess(counter[0], SPIN_LIMIT)

    def test_preemption_deferred_with_set_atomic(self):
        # S-5, T-11: likewise with set_atomic().
        counter = [0]

        def f():
            old = stackless.getcurrent().set_atomic(True)
            for i in range(50 * TIMEOUT):
                pass
            self.log.append("atomic section done")
            stackless.getcurrent().set_atomic(old)
            while counter[0] < SPIN_LIMIT:
                counter[0] += 1
        t = self.spawn(f)
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertEqual(self.log, ["atomic section done"])
        self.assertLess(counter[0], SPIN_LIMIT)

    def test_deferred_preemption_fires_when_atomic_cleared(self):
        # S-5, T-11: a preemption that was due fires as soon as atomic is
        # cleared, not a full timeout later.
        counter = [0]
        timeout = 1000

        def f():
            stackless.getcurrent().set_atomic(True)
            for i in range(50 * timeout):
                pass
            stackless.getcurrent().set_atomic(False)
            while counter[0] < SPIN_LIMIT:
                counter[0] += 1
        t = self.spawn(f)
        self.assertIs(stackless.run(timeout), t)
        # A timeout of 1000 ticks would allow hundreds of iterations.
        self.assertLess(counter[0], 10)

    def test_preemption_deferred_under_switch_trap(self):
        # S-5, M-11: no preemption while switch_trap > 0.
        counter = [0]

        def f():
            stackless.switch_trap(1)
            try:
                for i in range(50 * TIMEOUT):
                    pass
                self.log.append("trapped section done")
            finally:
                stackless.switch_trap(-1)
            while counter[0] < SPIN_LIMIT:
                counter[0] += 1
        t = self.spawn(f)
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertEqual(self.log, ["trapped section done"])
        self.assertEqual(stackless.switch_trap(0), 0)

    def nested_spinner(self, counter):
        """A tasklet function that works for a while at nesting level 1
        (a Python function called from C), then spins at level 0."""
        def nested(x):
            n = 0
            while n < 50 * TIMEOUT:
                n += 1
            self.log.append("nested done")
            return x

        def f():
            list(map(nested, [0]))
            while counter[0] < SPIN_LIMIT:
                counter[0] += 1
        return f, nested

    def test_preemption_deferred_at_nesting_level(self):
        # S-5: no interruption at nesting level > 0 without ignore_nesting.
        counter = [0]
        f, nested = self.nested_spinner(counter)
        t = self.spawn(f)
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertEqual(self.log, ["nested done"])
        self.assertIs(t.frame.f_code, f.__code__)
        self.assertLess(counter[0], SPIN_LIMIT)

    def test_ignore_nesting_flag_of_run(self):
        # S-5: run(ignore_nesting=True) interrupts at any nesting level.
        counter = [0]
        f, nested = self.nested_spinner(counter)
        t = self.spawn(f)
        self.assertIs(stackless.run(TIMEOUT, ignore_nesting=True), t)
        self.assertEqual(self.log, [])
        self.assertIs(t.frame.f_code, nested.__code__)

    def test_ignore_nesting_flag_of_tasklet(self):
        # S-5, T-12: so does the tasklet's ignore_nesting flag.
        counter = [0]
        f, nested = self.nested_spinner(counter)

        def g():
            stackless.getcurrent().set_ignore_nesting(True)
            f()
        t = self.spawn(g)
        self.assertIs(stackless.run(TIMEOUT), t)
        self.assertEqual(self.log, [])
        self.assertIs(t.frame.f_code, nested.__code__)
        self.assertTrue(t.ignore_nesting)

    def cooperative(self, name, rounds):
        """A tasklet function with short timeslices."""
        def f():
            for i in range(rounds):
                stackless.schedule()
            self.log.append((name, "finished"))
        return f

    def test_budget_restarts_at_each_switch(self):
        # S-5: by default the budget is per timeslice: tasklets that
        # switch often are never interrupted.
        self.spawn(self.cooperative("a", 2000))
        self.spawn(self.cooperative("b", 2000))
        self.assertIsNone(stackless.run(1000))
        self.assertEqual(self.log, [("a", "finished"), ("b", "finished")])

    def test_totaltimeout(self):
        # S-5: with totaltimeout the budget counts all ticks since run()
        # began.
        a = self.spawn(self.cooperative("a", 2000))
        b = self.spawn(self.cooperative("b", 2000))
        t = stackless.run(1000, totaltimeout=True)
        self.assertIn(t, (a, b))
        self.assertTrue(t.paused)
        self.assertEqual(self.log, [])

    def test_soft(self):
        # S-5: with soft, nothing is interrupted: at the next voluntary
        # switch after expiry the watchdog resumes instead of the next
        # tasklet; run() returns None and the tasklets stay runnable.
        def f(name):
            for i in range(3):
                n = 0
                while n < 50 * TIMEOUT:     # a long timeslice
                    n += 1
                self.log.append((name, i))
                stackless.schedule()
        a = self.spawn(f, "a")
        b = self.spawn(f, "b")
        self.assertIsNone(stackless.run(TIMEOUT, soft=True))
        self.assertEqual(self.log, [("a", 0)])
        self.assertTrue(a.scheduled)
        self.assertTrue(b.scheduled)
        self.assertFalse(a.paused or b.paused)
        self.assertEqual(stackless.getruncount(), 3)


class PumpingIdiomTest(StacklessTestCase):

    def test_pumping(self):
        # S-6: the main loop calls run() per frame; tasklets wait on a
        # channel with preference 1 and are woken with
        # `while ch.balance < 0: ch.send(None)`.
        ch = stackless.channel()
        ch.preference = 1

        def actor(name, frames):
            for i in range(frames):
                self.log.append((name, i))
                ch.receive()
            self.log.append((name, "done"))

        self.spawn(actor, "a", 2)
        self.spawn(actor, "b", 3)
        for frame in range(4):
            self.assertIsNone(stackless.run())
            self.log.append(("frame", frame))
            woken = 0
            while ch.balance < 0:
                ch.send(None)
                woken += 1
            self.log.append(("woken", woken))
        self.assertEqual(self.log, [
            ("a", 0), ("b", 0), ("frame", 0), ("woken", 2),
            ("a", 1), ("b", 1), ("frame", 1), ("woken", 2),
            ("a", "done"), ("b", 2), ("frame", 2), ("woken", 1),
            ("b", "done"), ("frame", 3), ("woken", 0)])

    def test_send_does_not_switch(self):
        # S-6, C-13: with preference 1 the sends only append: the woken
        # tasklets run at the next run().
        ch = stackless.channel()
        ch.preference = 1
        for i in range(3):
            self.spawn(lambda: self.log.append(ch.receive()))
        stackless.run()
        self.assertEqual(ch.balance, -3)
        for i in range(3):
            ch.send(i)
        self.assertEqual(self.log, [])
        self.assertEqual(stackless.getruncount(), 4)
        stackless.run()
        self.assertEqual(self.log, [0, 1, 2])


class TaskletEndTest(StacklessTestCase):

    def test_result_discarded(self):
        # S-9, T-16: the result is discarded, tempval None.
        t = self.spawn(lambda: "result")
        stackless.run()
        self.assertFalse(t.alive)
        self.assertFalse(t.scheduled)
        self.assertIsNone(t.tempval)
        self.assertIsNone(t.frame)

    def test_next_runnable_runs(self):
        # S-9: the tasklet after the dead one runs next.
        def first():
            self.record("first")
        a = self.spawn(first)
        b = self.spawn(self.record, "second")
        a.run()
        self.record("main")
        self.assertEqual(self.log, [(a, "first"), (b, "second"),
                                    (stackless.getcurrent(), "main")])

    def test_main_receiving_without_sender(self):
        # S-9 (T): main blocked in a channel when the last tasklet ends.
        ch = stackless.channel()
        main = stackless.getcurrent()
        t = self.spawn(self.record, "t")
        with self.assertRaises(RuntimeError) as cm:
            ch.receive()
        self.assertEqual(str(cm.exception),
                         "the main tasklet is receiving without a sender "
                         "available.")
        self.assertEqual(self.log, [(t, "t")])
        self.assertFalse(main.blocked)
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(ch.queue)
        self.assertEqual(stackless.getruncount(), 1)

    def test_main_sending_without_receiver(self):
        # S-9 (T): the sending variant.
        ch = stackless.channel()
        main = stackless.getcurrent()
        self.spawn(self.record, "t")
        with self.assertRaises(RuntimeError) as cm:
            ch.send("lost")
        self.assertEqual(str(cm.exception),
                         "the main tasklet is sending without a receiver "
                         "available.")
        self.assertFalse(main.blocked)
        self.assertEqual(ch.balance, 0)
        self.assertEqual(stackless.getruncount(), 1)

    def test_main_pulled_out_others_stay_blocked(self):
        # S-9: only main is pulled out of its channel.
        ch = stackless.channel()
        other = stackless.channel()
        waiter = self.spawn(other.receive)
        self.spawn(self.record, "t")
        with self.assertRaisesRegex(RuntimeError, "receiving without"):
            ch.receive()
        self.assertTrue(waiter.blocked)
        self.assertEqual(other.balance, -1)


class UncaughtExceptionTest(StacklessTestCase):

    def test_tasklet_exit_ends_silently(self):
        # S-11 (1): TaskletExit, and subclasses, end the tasklet silently.
        class MyExit(TaskletExit):
            pass

        def f(exc):
            self.record("start")
            raise exc
        a = self.spawn(f, TaskletExit)
        b = self.spawn(f, MyExit("sub"))
        c = self.spawn(self.record, "after")
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [(a, "start"), (b, "start"), (c, "after")])
        self.assertFalse(a.alive or b.alive)

    def test_tasklet_exit_does_not_reach_error_handler(self):
        # S-11 (1): the error handler is not called for TaskletExit.
        calls = []
        stackless.set_error_handler(lambda *args: calls.append(args))

        def f():
            raise TaskletExit
        self.spawn(f)
        self.assertIsNone(stackless.run())
        self.assertEqual(calls, [])

    def test_killed_tasklet_ends_silently(self):
        # S-11 (1), T-10: kill() raises TaskletExit in the victim.
        ch = stackless.channel()

        def f():
            try:
                ch.receive()
            finally:
                self.record("finally")
        t = self.spawn(f)
        stackless.run()
        t.kill()
        self.assertEqual(self.log, [(t, "finally")])
        self.assertFalse(t.alive)
        self.assertEqual(ch.balance, 0)

    def test_system_exit_exits_process(self):
        # S-11 (2): SystemExit escaping a tasklet in the initial thread
        # of the main interpreter exits the process like sys.exit().
        code = textwrap.dedent("""
            import stackless
            def f():
                raise SystemExit(7)
            stackless.tasklet(f)()
            stackless.run()
            print("still running")
            """)
        rc, out, err = script_helper.assert_python_failure("-c", code)
        self.assertEqual(rc, 7)
        self.assertNotIn(b"still running", out)

    def test_exception_raised_from_schedule(self):
        # S-11 (3): without a handler the exception is raised in main,
        # here from schedule(); others keep their state.
        exc = ZeroDivisionError("boom")

        def f():
            raise exc
        self.spawn(f)
        later = self.spawn(self.record, "later")
        with self.assertRaises(ZeroDivisionError) as cm:
            stackless.schedule()
        self.assertIs(cm.exception, exc)
        self.assertEqual(self.log, [])
        self.assertTrue(later.scheduled)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.schedule()
        self.assertEqual(self.log, [(later, "later")])

    def test_exception_raised_from_run_others_keep_state(self):
        # S-11 (3): main resumes at once even if others are runnable.
        ch = stackless.channel()

        def f():
            raise ValueError("x")
        blocked = self.spawn(ch.receive)
        self.spawn(f)
        later = self.spawn(self.record, "later")
        with self.assertRaisesRegex(ValueError, "x"):
            stackless.run()
        self.assertTrue(blocked.blocked)
        self.assertTrue(later.scheduled)
        self.assertEqual(self.log, [])

    def test_exception_reaches_blocked_main(self):
        # S-11 (3): main blocked in a channel is pulled out and raises.
        ch = stackless.channel()
        main = stackless.getcurrent()

        def f():
            raise KeyError("k")
        self.spawn(f)
        later = self.spawn(self.record, "later")
        with self.assertRaises(KeyError):
            ch.receive()
        self.assertFalse(main.blocked)
        self.assertEqual(ch.balance, 0)
        self.assertTrue(later.scheduled)
        self.assertEqual(self.log, [])

    def test_exception_reaches_paused_main(self):
        # S-11 (3): main paused by schedule_remove() resumes and raises.
        def f():
            raise KeyError("k")
        self.spawn(f)
        with self.assertRaises(KeyError):
            stackless.schedule_remove()
        self.assertTrue(stackless.getcurrent().scheduled)

    def test_traceback_kept(self):
        # S-11 (3): the exception raised in main has the tasklet's
        # traceback.
        def failing_function():
            raise IndexError
        self.spawn(failing_function)
        try:
            stackless.run()
        except IndexError as e:
            tb = e.__traceback__
        else:
            self.fail("IndexError not raised")
        names = []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        self.assertIn("failing_function", names)

    def test_error_handler_swallows(self):
        # S-11 (3), M-18: the handler gets (type, value, tb); a normal
        # return swallows the exception.
        calls = []

        def handler(*args):
            calls.append(args)
        self.assertIsNone(stackless.set_error_handler(handler))
        exc = ValueError("handled")

        def failing():
            raise exc
        self.spawn(failing)
        after = self.spawn(self.record, "after")
        self.assertIsNone(stackless.run())
        self.assertEqual(len(calls), 1)
        typ, value, tb = calls[0]
        self.assertIs(typ, ValueError)
        self.assertIs(value, exc)
        self.assertIsInstance(tb, types.TracebackType)
        self.assertEqual(self.log, [(after, "after")])
        self.assertIs(stackless.set_error_handler(None), handler)
        self.assertIsNone(stackless.set_error_handler(None))

    def test_error_handler_raising_replaces(self):
        # S-11 (3): an exception of the handler replaces the original.
        def handler(typ, value, tb):
            raise KeyError("from handler")
        stackless.set_error_handler(handler)

        def failing():
            raise ValueError("original")
        self.spawn(failing)
        with self.assertRaises(KeyError) as cm:
            stackless.run()
        self.assertEqual(cm.exception.args, ("from handler",))

    def test_set_error_handler_returns_previous(self):
        # M-18: returns the previous handler or None.
        def h1(*args):
            pass

        def h2(*args):
            pass
        self.assertIsNone(stackless.set_error_handler(h1))
        self.assertIs(stackless.set_error_handler(h2), h1)
        self.assertIs(stackless.set_error_handler(), h2)
        self.assertIsNone(stackless.set_error_handler(None))


class DeadlockTest(StacklessTestCase):

    @single_thread
    def test_main_receiving_alone(self):
        # S-12 (4) (T): main receiving alone.
        ch = stackless.channel()
        main = stackless.getcurrent()
        with self.assertRaises(RuntimeError) as cm:
            ch.receive()
        self.assertEqual(str(cm.exception), DEADLOCK_TEXT)
        self.assertFalse(main.blocked)
        self.assertTrue(main.scheduled)
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(ch.queue)
        self.assertEqual(stackless.getruncount(), 1)

    @single_thread
    def test_main_sending_alone(self):
        # S-12 (4): main sending alone.
        ch = stackless.channel()
        with self.assertRaises(RuntimeError) as cm:
            ch.send(1)
        self.assertEqual(str(cm.exception), DEADLOCK_TEXT)
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.getcurrent().blocked)
        self.assertIsNone(stackless.getcurrent().tempval)

    @single_thread
    def test_channel_usable_after_deadlock(self):
        # S-12: the channel is left as it was.
        ch = stackless.channel()
        with self.assertRaises(RuntimeError):
            ch.receive()
        got = []
        self.spawn(lambda: got.append(ch.receive()))
        stackless.run()
        ch.send("ok")
        self.assertEqual(got, ["ok"])

    @single_thread
    def test_deadlock_in_tasklet_reaches_main(self):
        # S-12 (4), S-11: main is blocked, the last runnable tasklet
        # blocks too: it gets the Deadlock error; uncaught, it is raised
        # in main.
        ch1 = stackless.channel()
        ch2 = stackless.channel()
        t = self.spawn(ch2.receive)
        with self.assertRaises(RuntimeError) as cm:
            ch1.receive()
        self.assertEqual(str(cm.exception), DEADLOCK_TEXT)
        self.assertFalse(t.alive)
        self.assertEqual(ch1.balance, 0)
        self.assertEqual(ch2.balance, 0)

    @single_thread
    def test_deadlock_in_tasklet_caught(self):
        # S-12 (4), S-9: the tasklet catches the error and ends; main,
        # still blocked, is then pulled out of its channel.
        ch1 = stackless.channel()
        ch2 = stackless.channel()

        def f():
            try:
                ch2.receive()
            except RuntimeError as e:
                self.record(str(e), stackless.getcurrent().blocked)
        t = self.spawn(f)
        with self.assertRaisesRegex(RuntimeError,
                                    "receiving without a sender"):
            ch1.receive()
        self.assertEqual(self.log, [(t, DEADLOCK_TEXT, False)])
        self.assertEqual(ch2.balance, 0)


class SwitchTrapTest(StacklessTestCase):

    def test_switch_trap_levels(self):
        # M-11: switch_trap(change) returns the old level.
        self.assertEqual(stackless.switch_trap(0), 0)
        self.assertEqual(stackless.switch_trap(1), 0)
        self.assertEqual(stackless.switch_trap(2), 1)
        self.assertEqual(stackless.switch_trap(-2), 3)
        self.assertEqual(stackless.switch_trap(-1), 1)
        self.assertEqual(stackless.switch_trap(0), 0)

    def test_switches_refused(self):
        # M-11: every local switch raises RuntimeError("switch_trap"),
        # with no state change.
        t = self.spawn(self.record, "t")
        stackless.switch_trap(1)
        try:
            for op in (stackless.schedule, stackless.schedule_remove,
                       stackless.run, t.run):
                with self.subTest(op=op):
                    with self.assertRaises(RuntimeError) as cm:
                        op()
                    self.assertEqual(str(cm.exception), "switch_trap")
                    self.assertEqual(stackless.getruncount(), 2)
                    self.assertTrue(stackless.getcurrent().scheduled)
        finally:
            stackless.switch_trap(-1)
        self.assertEqual(self.log, [])
        stackless.run()
        self.assertEqual(self.log, [(t, "t")])


class AtomicTest(StacklessTestCase):

    def test_atomic_context_manager(self):
        # M-9: __enter__ sets current.atomic, __exit__ restores it;
        # nesting works; exceptions are not suppressed.
        cur = stackless.getcurrent()
        self.assertFalse(cur.atomic)
        with stackless.atomic():
            self.assertTrue(cur.atomic)
            with stackless.atomic():
                self.assertTrue(cur.atomic)
            self.assertTrue(cur.atomic)
        self.assertFalse(cur.atomic)
        with self.assertRaises(KeyError):
            with stackless.atomic():
                raise KeyError
        self.assertFalse(cur.atomic)

    def test_atomic_is_per_tasklet(self):
        # T-11: saved per tasklet; explicit switches still work.
        seen = []
        self.spawn(lambda: seen.append(stackless.getcurrent().atomic))
        with stackless.atomic():
            stackless.schedule()
            self.assertTrue(stackless.getcurrent().atomic)
        self.assertEqual(seen, [False])


def recurse(n, at_bottom):
    if n:
        return recurse(n - 1, at_bottom)
    return at_bottom()


class RecursionDepthTest(StacklessTestCase):

    def test_starts_at_zero(self):
        # S-8, T-26: a new tasklet's recursion depth is 0.
        self.assertEqual(stackless.tasklet().recursion_depth, 0)
        self.assertEqual(stackless.tasklet(len).recursion_depth, 0)
        t = self.spawn(len, ())
        self.assertEqual(t.recursion_depth, 0)
        stackless.run()

    def test_independent_of_creator_depth(self):
        # S-8: a tasklet's depth does not depend on where it was started;
        # a call adds one.
        depths = []

        def f():
            cur = stackless.getcurrent()
            depths.append((cur.recursion_depth,
                           recurse(3, lambda: cur.recursion_depth)))

        def start():
            self.spawn(f)
            stackless.schedule()
        start()
        recurse(50, start)
        self.assertEqual(len(depths), 2)
        self.assertEqual(depths[0], depths[1])
        shallow, deeper = depths[0]
        self.assertEqual(deeper, shallow + 5)   # 4 x recurse + lambda
        self.assertLessEqual(shallow, 2)

    def test_saved_and_restored(self):
        # S-8: the depth is saved with the tasklet.
        main = stackless.getcurrent()
        seen = []

        def f():
            seen.append(main.recursion_depth)
        self.spawn(f)
        before = main.recursion_depth
        stackless.schedule()
        self.assertEqual(main.recursion_depth, before)

        def at_bottom():
            self.spawn(f)
            depth = main.recursion_depth
            stackless.schedule()
            return depth
        deep = recurse(20, at_bottom)
        self.assertEqual(seen, [before, deep])
        self.assertGreater(deep, before)

    def test_limit_per_tasklet(self):
        # S-8: the recursion limit applies per tasklet.
        main = stackless.getcurrent()
        results = []

        def f():
            try:
                recurse(120, lambda: None)
            except RecursionError:
                results.append("RecursionError")
            else:
                results.append("ok")

        def at_bottom():
            self.spawn(f)
            stackless.schedule()

        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(main.recursion_depth + 160)
        try:
            recurse(120, at_bottom)
        finally:
            sys.setrecursionlimit(old_limit)
        self.assertEqual(results, ["ok"])


@unittest.skipUnless(sys.platform.startswith("linux"),
                     "needs RLIMIT_AS and /proc/self/status")
class OutOfMemoryInSwitchTest(unittest.TestCase):
    """Issue 18: no memory to save a C stack in a hard switch raises
    MemoryError in the tasklet that switches, which stays current and
    runnable, with the runqueue and channels as they were."""
    both_modes = False      # main always switches hard

    SCRIPT = textwrap.dedent("""
        import resource, sys, stackless

        def vmsize():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) * 1024

        out = []
        ch = stackless.channel()

        def other():
            out.append("other")

        def attempt(what, op):
            limit = vmsize() + 64 * 1024    # no room for a large malloc
            resource.setrlimit(resource.RLIMIT_AS,
                               (limit, resource.RLIM_INFINITY))
            try:
                op()
            except MemoryError:
                out.append((what, "MemoryError"))
            finally:
                resource.setrlimit(resource.RLIMIT_AS,
                                   (resource.RLIM_INFINITY,
                                    resource.RLIM_INFINITY))
            main = stackless.getmain()
            out.append((what, stackless.getcurrent() is main, main.scheduled,
                        stackless.getruncount(), ch.balance))

        def deep(n):
            # A C stack of some megabytes: recursion through sorted().
            if n:
                return sorted([0], key=lambda x: deep(n - 1))
            t = stackless.tasklet(other)()
            attempt("schedule", stackless.schedule)
            attempt("receive", ch.receive)
            t.kill()
            return [0]

        stackless.getcurrent()              # the stack base is up here
        sys.setrecursionlimit(100000)
        deep(50)
        stackless.run()
        print(out)
        """)

    def test_memory_error_in_hard_switch(self):
        rc, out, err = script_helper.assert_python_ok("-c", self.SCRIPT)
        self.assertEqual(
            out.decode().strip(),
            str([("schedule", "MemoryError"), ("schedule", True, True, 2, 0),
                 ("receive", "MemoryError"), ("receive", True, True, 2, 0)]))


if __name__ == "__main__":
    unittest.main()
