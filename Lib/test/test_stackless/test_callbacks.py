"""Schedule and channel callbacks, error handler (spec D-3, D-4, M-18,
S-11).

The callbacks are per interpreter.  Every test removes them again in its
cleanup, together with the error handler, and checks that the runqueue
holds the main tasklet alone.
"""

import threading
import time
import types
import unittest
from test import support

import stackless
from stackless import channel, tasklet
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


TIMEOUT = 10.0


class CallbackTestCase(unittest.TestCase):

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.main = stackless.getmain()
        self.tasklets = []
        self.log = []
        self.addCleanup(self.clean_up)

    def spawn(self, func, *args):
        t = tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def clean_up(self):
        stackless.set_schedule_callback(None)
        stackless.set_channel_callback(None)
        stackless.set_error_handler(None)
        for t in self.tasklets:
            for _ in range(5):
                if not t.alive or t.is_current:
                    break
                try:
                    t.kill()
                except Exception:
                    pass
        self.assertIsNone(stackless.get_schedule_callback())
        self.assertIsNone(stackless.get_channel_callback())
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)

    def name(self, t):
        """Readable name of a tasklet in the logs."""
        if t is None:
            return None
        if t is self.main:
            return "main"
        for i, x in enumerate(self.tasklets):
            if t is x:
                return "t%d" % i
        return t


class ScheduleCallbackTest(CallbackTestCase):
    """D-3: set_schedule_callback() / get_schedule_callback()."""

    def record(self, prev, next):
        self.log.append((self.name(prev), self.name(next)))

    def test_set_get(self):
        # D-3: set returns the previous callback (or None); get returns
        # the installed one; None removes it.
        def other(prev, next):
            pass

        self.assertIsNone(stackless.get_schedule_callback())
        self.assertIsNone(stackless.set_schedule_callback(self.record))
        self.assertEqual(stackless.get_schedule_callback(), self.record)
        self.assertEqual(stackless.set_schedule_callback(other), self.record)
        self.assertIs(stackless.get_schedule_callback(), other)
        self.assertIs(stackless.set_schedule_callback(None), other)
        self.assertIsNone(stackless.get_schedule_callback())
        self.assertIsNone(stackless.set_schedule_callback(None))

    def test_not_callable(self):
        # D-3: a non-callable is a TypeError; the old callback stays.
        stackless.set_schedule_callback(self.record)
        for bad in (1, "x", object()):
            with self.assertRaises(TypeError):
                stackless.set_schedule_callback(bad)
        self.assertEqual(stackless.get_schedule_callback(), self.record)

    def test_removed_callback_not_called(self):
        # D-3: after set_schedule_callback(None) nothing is reported.
        stackless.set_schedule_callback(self.record)
        stackless.set_schedule_callback(None)
        self.spawn(stackless.schedule)
        stackless.run()
        self.assertEqual(self.log, [])

    def test_switches_and_tasklet_end(self):
        # D-3: cb(prev, next) on every real switch, tasklet end included.
        def body():
            stackless.schedule()

        self.spawn(body)
        self.spawn(body)
        stackless.set_schedule_callback(self.record)
        stackless.run()
        stackless.set_schedule_callback(None)
        self.assertEqual(self.log, [
            ("main", "t0"), ("t0", "t1"), ("t1", "t0"),
            ("t0", "t1"), ("t1", "main")])

    def test_no_call_without_real_switch(self):
        # D-3: schedule() with nothing else runnable switches nothing.
        stackless.set_schedule_callback(self.record)
        self.assertIs(stackless.schedule(), self.main)
        stackless.set_schedule_callback(None)
        self.assertEqual(self.log, [])

    def test_run_and_switch_methods(self):
        # D-3: t.run(), t.switch() and schedule_remove() are switches.
        def body():
            stackless.schedule_remove()

        t = self.spawn(body)
        t.remove()
        stackless.set_schedule_callback(self.record)
        t.run()                     # main -> t, t pauses: t -> main
        t.switch()                  # main -> t; t ends -> main
        stackless.set_schedule_callback(None)
        self.assertFalse(t.alive)
        self.assertEqual(self.log, [
            ("main", "t0"), ("t0", "main"), ("main", "t0"), ("t0", "main")])

    def test_channel_switches(self):
        # D-3: blocking and preferred partners switch too.
        ch = channel()
        got = []

        def receiver():
            got.append(ch.receive())

        t = self.spawn(receiver)
        t.remove()
        stackless.set_schedule_callback(self.record)
        t.run()                     # main -> t; t blocks: t -> main
        ch.send("v")                # preference -1: main -> t; t ends
        stackless.set_schedule_callback(None)
        self.assertEqual(got, ["v"])
        self.assertEqual(self.log, [
            ("main", "t0"), ("t0", "main"), ("main", "t0"), ("t0", "main")])

    def test_kill_switches(self):
        # D-3: kill() switches to the victim, which then ends.
        t = self.spawn(stackless.schedule_remove)
        stackless.run()
        self.assertTrue(t.paused)
        stackless.set_schedule_callback(self.record)
        t.kill()
        stackless.set_schedule_callback(None)
        self.assertFalse(t.alive)
        self.assertEqual(self.log, [("main", "t0"), ("t0", "main")])

    def test_tasklet_dying_of_error(self):
        # D-3, S-11: the switch after an uncaught error is reported.
        def fail():
            raise KeyError("k")

        self.spawn(fail)
        stackless.set_schedule_callback(self.record)
        with self.assertRaises(KeyError):
            stackless.run()
        stackless.set_schedule_callback(None)
        self.assertEqual(self.log, [("main", "t0"), ("t0", "main")])

    def test_preemption(self):
        # D-3, S-5: preemption is a switch too.
        def spin():
            for _ in range(10 ** 6):
                pass

        t = self.spawn(spin)
        stackless.set_schedule_callback(self.record)
        r = stackless.run(100)
        stackless.set_schedule_callback(None)
        self.assertIs(r, t)
        self.assertTrue(t.alive)
        self.assertEqual(self.log, [("main", "t0"), ("t0", "main")])

    def test_arguments_are_tasklets(self):
        # D-3: prev and next are the tasklet objects themselves.
        seen = []

        def cb(prev, next):
            seen.append((prev, next))

        t = self.spawn(lambda: None)
        stackless.set_schedule_callback(cb)
        stackless.run()
        stackless.set_schedule_callback(None)
        self.assertEqual(len(seen), 2)
        self.assertIs(seen[0][0], self.main)
        self.assertIs(seen[0][1], t)
        self.assertIs(seen[1][0], t)
        self.assertIs(seen[1][1], self.main)

    def test_callback_error_is_unraisable(self):
        # D-3: an exception in the callback is reported as unraisable
        # ("Error in scheduling callback"); the switch still happens.
        def bad(prev, next):
            raise ZeroDivisionError("in callback")

        ran = []
        self.spawn(ran.append, 1)
        stackless.set_schedule_callback(bad)
        try:
            with support.catch_unraisable_exception() as cm:
                stackless.run()
                self.assertIsNotNone(cm.unraisable)
                self.assertIs(cm.unraisable.exc_type, ZeroDivisionError)
                self.assertEqual(str(cm.unraisable.exc_value),
                                 "in callback")
                self.assertTrue(cm.unraisable.err_msg.startswith(
                    "Error in scheduling callback"), cm.unraisable.err_msg)
        finally:
            stackless.set_schedule_callback(None)
        self.assertEqual(ran, [1])

    def test_callback_error_not_raised_in_tasklets(self):
        # D-3: every switch still works while the callback fails; no
        # exception leaks into the tasklets or run().
        calls = []

        def bad(prev, next):
            calls.append(1)
            raise ValueError("cb")

        out = []

        def body(i):
            stackless.schedule()
            out.append(i)

        for i in range(3):
            self.spawn(body, i)
        stackless.set_schedule_callback(bad)
        try:
            with support.catch_unraisable_exception():
                self.assertIsNone(stackless.run())
        finally:
            stackless.set_schedule_callback(None)
        self.assertEqual(out, [0, 1, 2])
        self.assertEqual(len(calls), 7)

    def test_callback_cannot_remove_next(self):
        # Issue 18: the tasklet being switched to stays in the runqueue
        # until it runs: remove() in the callback raises RuntimeError,
        # and the switch goes on (the runqueue holds the only reference).
        errors = []
        runs = []

        def cb(prev, nxt):
            if (nxt is not None and not nxt.is_main and nxt.scheduled
                    and not nxt.is_current):
                try:
                    nxt.remove()
                except RuntimeError as e:
                    errors.append(str(e))

        stackless.set_schedule_callback(cb)
        tasklet(lambda: runs.append(stackless.getcurrent().scheduled))()
        stackless.schedule()
        stackless.set_schedule_callback(None)
        self.assertEqual(runs, [True])
        self.assertEqual(
            errors, ["The tasklet being switched to cannot be removed."])

    def test_foreign_remove_of_next_during_callback(self):
        # Issue 18: another thread, which runs while the callback waits
        # without the GIL, cannot remove the tasklet being switched to
        # either; it stays in the runqueue and runs.
        entered = threading.Event()
        removed = threading.Event()
        errors = []
        out = []

        def f():
            out.append(("f", stackless.getcurrent().scheduled))

        t = self.spawn(f)

        def cb(prev, nxt):
            if nxt is t and not entered.is_set():
                entered.set()
                removed.wait(TIMEOUT)           # the GIL is released

        def other_thread():
            entered.wait(TIMEOUT)
            try:
                t.remove()
            except RuntimeError as e:
                errors.append(str(e))
            removed.set()

        def a():
            stackless.schedule()                # soft, in a tasklet
            out.append("a")

        self.spawn(a)
        t.remove()
        t.insert()                              # runqueue: main, a, t
        stackless.set_schedule_callback(cb)
        th = threading.Thread(target=other_thread)
        th.start()
        try:
            stackless.run()
        finally:
            removed.set()
            th.join(TIMEOUT)
            stackless.set_schedule_callback(None)
        self.assertFalse(th.is_alive())
        self.assertEqual(out, [("f", True), "a"])
        self.assertEqual(
            errors, ["The tasklet being switched to cannot be removed."])

    def test_main_start_in_new_thread(self):
        # D-3: cb(None, main) when the main tasklet of a thread starts,
        # before any switch of that thread; switches of other threads are
        # reported in those threads.
        seen = []

        def cb(prev, next):
            seen.append((threading.get_ident(), prev, next))

        box = {}

        def body():
            box['main'] = stackless.getmain()
            box['t'] = tasklet(lambda: None)()
            stackless.run()

        stackless.set_schedule_callback(cb)
        try:
            th = threading.Thread(target=body)
            th.start()
            th.join(TIMEOUT)
            self.assertFalse(th.is_alive())
        finally:
            stackless.set_schedule_callback(None)
        there = [(p, n) for (i, p, n) in seen if i == th.ident]
        main, t = box['main'], box['t']
        self.assertEqual(there, [(None, main), (main, t), (t, main)])


class ChannelCallbackTest(CallbackTestCase):
    """D-4: set_channel_callback() / get_channel_callback()."""

    def record(self, ch, t, sending, willblock):
        self.log.append((ch, self.name(t), sending, willblock, ch.balance))

    def test_set_get(self):
        # D-4: set returns the previous callback (or None); None removes.
        def other(*args):
            pass

        self.assertIsNone(stackless.get_channel_callback())
        self.assertIsNone(stackless.set_channel_callback(self.record))
        self.assertEqual(stackless.get_channel_callback(), self.record)
        self.assertEqual(stackless.set_channel_callback(other), self.record)
        self.assertIs(stackless.set_channel_callback(None), other)
        self.assertIsNone(stackless.get_channel_callback())

    def test_not_callable(self):
        # D-4: a non-callable is a TypeError; the old callback stays.
        stackless.set_channel_callback(self.record)
        with self.assertRaises(TypeError):
            stackless.set_channel_callback(42)
        self.assertEqual(stackless.get_channel_callback(), self.record)

    def test_receive_then_send(self):
        # D-4: cb(channel, tasklet, sending, willblock) before each
        # operation, with the channel still as it was (balance).
        ch = channel()
        got = []
        self.spawn(lambda: got.append(ch.receive()))
        stackless.set_channel_callback(self.record)
        stackless.run()             # t0 blocks receiving
        ch.send("x")
        stackless.set_channel_callback(None)
        self.assertEqual(got, ["x"])
        self.assertEqual(self.log, [(ch, "t0", 0, 1, 0),
                                    (ch, "main", 1, 0, -1)])

    def test_send_then_receive(self):
        # D-4: a blocking sender, then a receiver that finds it.
        ch = channel()
        self.spawn(ch.send, "y")
        stackless.set_channel_callback(self.record)
        stackless.run()             # t0 blocks sending
        self.assertEqual(ch.receive(), "y")
        stackless.set_channel_callback(None)
        stackless.run()
        self.assertEqual(self.log, [(ch, "t0", 1, 1, 0),
                                    (ch, "main", 0, 0, 1)])

    def test_flags_are_ints(self):
        # D-4: sending and willblock are the ints 0 and 1.
        seen = []

        def cb(ch, t, sending, willblock):
            seen.append((type(sending), type(willblock)))

        ch = channel()
        self.spawn(ch.receive)
        stackless.set_channel_callback(cb)
        stackless.run()
        ch.send(None)
        stackless.set_channel_callback(None)
        self.assertEqual(seen, [(int, int)] * 2)

    def test_send_variants(self):
        # D-4: send_exception, send_throw and send_sequence are sends.
        ch = channel()

        def receiver(n):
            for _ in range(n):
                try:
                    ch.receive()
                except ValueError:
                    pass

        self.spawn(receiver, 4)
        stackless.set_channel_callback(self.record)
        stackless.run()
        ch.send_exception(ValueError, "a")
        ch.send_throw(ValueError("b"))
        self.assertEqual(ch.send_sequence([1, 2]), 2)
        stackless.set_channel_callback(None)
        self.assertEqual(self.log, [(ch, "t0", 0, 1, 0),
                                    (ch, "main", 1, 0, -1)] * 4)

    def test_not_called_after_removal(self):
        # D-4: None removes the callback.
        ch = channel()
        stackless.set_channel_callback(self.record)
        stackless.set_channel_callback(None)
        self.spawn(ch.receive)
        stackless.run()
        ch.send(1)
        self.assertEqual(self.log, [])

    def test_recursive_channel_call(self):
        # D-4: a channel operation inside the callback raises
        # RuntimeError("Recursive channel call due to callbacks!"); the
        # outer operation goes on normally.
        ch = channel()
        other = channel()
        errors = []

        def cb(chan, t, sending, willblock):
            for op in (lambda: chan.send(1), chan.receive,
                       lambda: other.send(2), other.receive):
                try:
                    op()
                except RuntimeError as e:
                    errors.append(str(e))

        got = []
        self.spawn(lambda: got.append(ch.receive()))
        stackless.set_channel_callback(cb)
        stackless.run()
        ch.send("outer")
        stackless.set_channel_callback(None)
        self.assertEqual(got, ["outer"])
        self.assertEqual(
            errors, ["Recursive channel call due to callbacks!"] * 8)
        self.assertEqual((ch.balance, other.balance), (0, 0))

    def test_callback_running_in_another_thread(self):
        # D-4: the recursion guard is per thread: while the callback runs
        # in one thread (here it sleeps, the GIL released), channel
        # operations of another thread go on (they raised "Recursive
        # channel call" before).
        slow = channel()
        inside = threading.Event()

        def cb(chan, t, sending, willblock):
            if chan is slow and not inside.is_set():
                inside.set()
                time.sleep(0.3)

        def other_thread():
            stackless.tasklet(slow.receive)()
            stackless.run()                 # the receive: the callback

        stackless.set_channel_callback(cb)
        th = threading.Thread(target=other_thread)
        th.start()
        try:
            self.assertTrue(inside.wait(10))
            ch = channel()
            self.spawn(ch.send, "here")
            self.assertEqual(ch.receive(), "here")
        finally:
            th.join()
            stackless.set_channel_callback(None)
        # The other thread's receiver ended with its thread.
        self.assertEqual(slow.balance, 0)

    def test_callback_error_is_unraisable(self):
        # D-4: an exception in the callback is reported as unraisable and
        # not left pending; the operation still happens.
        def bad(*args):
            raise ZeroDivisionError("chan cb")

        ch = channel()
        got = []
        self.spawn(lambda: got.append(ch.receive()))
        stackless.set_channel_callback(bad)
        try:
            with support.catch_unraisable_exception() as cm:
                stackless.run()
                self.assertIsNotNone(cm.unraisable)
                self.assertIs(cm.unraisable.exc_type, ZeroDivisionError)
                cm.unraisable = None
                ch.send("still")
                self.assertIsNotNone(cm.unraisable)
                self.assertIs(cm.unraisable.exc_type, ZeroDivisionError)
        finally:
            stackless.set_channel_callback(None)
        self.assertEqual(got, ["still"])
        self.assertEqual(ch.balance, 0)

    def test_callback_kills_partner(self):
        # Issue 18: a callback that takes the partner the operation found
        # waiting out of the channel (kill(pending=True)).  The operation
        # goes by what it finds after the callback: the next receiver
        # gets the value; without one the sender blocks, and with nothing
        # else to run it gets the deadlock RuntimeError.
        ch = channel()
        got = []

        def receiver(tag):
            try:
                got.append((tag, ch.receive()))
            except TaskletExit:
                got.append((tag, "killed"))
                raise

        r1 = self.spawn(receiver, "r1")
        r2 = self.spawn(receiver, "r2")
        stackless.run()
        self.assertEqual(ch.balance, -2)

        def cb(chan, t, sending, willblock):
            if sending and not willblock and r1.blocked:
                r1.kill(pending=True)

        stackless.set_channel_callback(cb)
        ch.send(42)
        stackless.run()
        self.assertEqual(got, [("r2", 42), ("r1", "killed")])
        self.assertEqual(ch.balance, 0)

        got.clear()
        r3 = self.spawn(receiver, "r3")
        stackless.set_channel_callback(None)
        stackless.run()
        self.assertEqual(ch.balance, -1)

        def cb2(chan, t, sending, willblock):
            if sending and not willblock:
                r3.kill(pending=True)

        stackless.set_channel_callback(cb2)
        with self.assertRaisesRegex(RuntimeError, "without a receiver"):
            ch.send(43)
        stackless.set_channel_callback(None)
        self.assertEqual(got, [("r3", "killed")])
        self.assertFalse(r3.alive)
        self.assertEqual(ch.balance, 0)

    def test_cross_thread_partner(self):
        # D-4, X-4: operations of tasklets of other threads are reported
        # too, with the tasklet that does the operation.
        ch = channel()
        seen = []
        box = {}
        ready = threading.Event()

        def cb(chan, t, sending, willblock):
            if chan is ch:
                seen.append((t, sending, willblock))

        done = channel()

        def receiver():
            done.send(ch.receive())

        def body():
            box['t'] = tasklet(receiver)()
            stackless.run()
            ready.set()
            # Wait (S-12 (2)) until the main thread's send makes t
            # runnable; t passes the value on to us.
            box['got'] = done.receive()

        stackless.set_channel_callback(cb)
        try:
            th = threading.Thread(target=body)
            th.start()
            try:
                self.assertTrue(ready.wait(TIMEOUT))
                # Wait until A's main blocks in done.receive().
                for _ in range(int(TIMEOUT * 1000)):
                    if done.balance == -1:
                        break
                    time.sleep(0.001)
            finally:
                ch.send("over")
            th.join(TIMEOUT)
            self.assertFalse(th.is_alive())
        finally:
            stackless.set_channel_callback(None)
        self.assertEqual(box['got'], "over")
        self.assertEqual(seen, [(box['t'], 0, 1), (self.main, 1, 0)])


class ErrorHandlerTest(CallbackTestCase):
    """M-18, S-11 (3): set_error_handler()."""

    def handler(self, typ, val, tb):
        self.log.append((typ, val, tb))

    @staticmethod
    def fail(exc):
        raise exc

    def test_set_returns_previous(self):
        # M-18: returns the previous handler or None; None = default.
        def other(*args):
            pass

        self.assertIsNone(stackless.set_error_handler(self.handler))
        self.assertEqual(stackless.set_error_handler(other), self.handler)
        self.assertIs(stackless.set_error_handler(None), other)
        self.assertIsNone(stackless.set_error_handler(None))

    def test_handler_swallows_error(self):
        # S-11 (3): the handler gets (type, value, tb); returning swallows
        # the error and the other tasklets keep running.
        err = KeyError("k")
        after = []
        self.spawn(self.fail, err)
        self.spawn(after.append, "after")
        stackless.set_error_handler(self.handler)
        self.assertIsNone(stackless.run())
        self.assertEqual(after, ["after"])
        self.assertEqual(len(self.log), 1)
        typ, val, tb = self.log[0]
        self.assertIs(typ, KeyError)
        self.assertIs(val, err)
        self.assertIsInstance(tb, types.TracebackType)

    def test_handler_not_called_for_tasklet_exit(self):
        # S-11 (1): TaskletExit ends a tasklet silently.
        self.spawn(self.fail, TaskletExit)
        t = self.spawn(stackless.schedule_remove)
        stackless.set_error_handler(self.handler)
        stackless.run()
        t.kill()
        self.assertEqual(self.log, [])

    def test_handler_raises(self):
        # S-11 (3): an exception raised by the handler replaces the
        # original and is raised from run(); the others keep their state.
        def handler(typ, val, tb):
            self.log.append(typ)
            raise IndexError("from handler")

        after = []
        self.spawn(self.fail, KeyError("k"))
        t = self.spawn(after.append, "after")
        stackless.set_error_handler(handler)
        with self.assertRaisesRegex(IndexError, "from handler"):
            stackless.run()
        self.assertEqual(self.log, [KeyError])
        self.assertTrue(t.scheduled)
        self.assertEqual(after, [])
        stackless.set_error_handler(None)
        stackless.run()
        self.assertEqual(after, ["after"])

    def test_default_without_handler(self):
        # S-11 (3), M-18: after set_error_handler(None) the error is
        # raised from run() again.
        stackless.set_error_handler(self.handler)
        stackless.set_error_handler(None)
        self.spawn(self.fail, KeyError("k2"))
        with self.assertRaisesRegex(KeyError, "k2"):
            stackless.run()
        self.assertEqual(self.log, [])

    def test_error_raised_in_main_schedule(self):
        # S-11 (3): without a handler the error is bombed into main,
        # which resumes at once and raises it from schedule().
        after = []
        self.spawn(self.fail, ValueError("v"))
        t = self.spawn(after.append, 1)
        with self.assertRaisesRegex(ValueError, "^v$"):
            stackless.schedule()
        self.assertTrue(t.scheduled)
        self.assertEqual(after, [])
        stackless.run()
        self.assertEqual(after, [1])

    def test_handler_called_for_each_error(self):
        # S-11 (3): once per failing tasklet, in order.
        for i in range(3):
            self.spawn(self.fail, ValueError(i))
        stackless.set_error_handler(self.handler)
        stackless.run()
        self.assertEqual([str(v) for _, v, _ in self.log], ["0", "1", "2"])


if __name__ == "__main__":
    unittest.main()
