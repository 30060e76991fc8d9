"""Soft switching (spec S-7, M-10): tasklets that block or yield from
Python code switch without C recursion, their frames are all their state,
and they interoperate with hard-switched tasklets."""

import cProfile
import dis
import io
import pstats
import sys
import traceback
import unittest
import weakref

import stackless
from test.support import import_helper, threading_helper

from .helpers import StacklessTestCase
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)

_testcapi = import_helper.import_module("_testcapi")
_testinternalcapi = import_helper.import_module("_testinternalcapi")


class _Blocker:
    def __init__(self, ch):
        ch.receive()


def _make_blocker(ch):
    _Blocker(ch)


class SoftTestCase(StacklessTestCase):
    """Runs with soft switching on, whatever the package's mode."""

    both_modes = False

    def setUp(self):
        super().setUp()
        old = stackless.enable_softswitch(True)
        self.addCleanup(stackless.enable_softswitch, old)

    def spawn_sender(self, ch, n):
        """A tasklet that sends 0 .. n-1 on ch."""
        def sender():
            for i in range(n):
                ch.send(i)
        return self.spawn(sender)


class SoftSwitchIsSoftTest(SoftTestCase):

    def test_blocked_tasklet_has_no_c_state(self):
        # S-7: a tasklet blocked in receive() from Python code is frames
        # only: nesting level 0, restorable.
        ch = stackless.channel()
        seen = []

        def body():
            seen.append((stackless.current.nesting_level,
                         stackless.current.restorable))
            ch.receive()

        t = self.spawn(body)
        stackless.run()
        self.assertTrue(t.blocked)
        self.assertEqual(seen, [(0, True)])
        self.assertEqual(t.nesting_level, 0)
        self.assertTrue(t.restorable)
        ch.send(None)
        self.assertFalse(t.alive)

    def test_c_code_that_hides_its_recursion_is_seen(self):
        # Whether a tasklet's frames run in the runner's eval loop alone is
        # told by its frame links, not only by the counters of C
        # recursion, which C code may keep as it pleases (greenlet saves
        # and restores them): a C call whose counters read as those of the
        # runner's eval loop still makes the switch inside it hard.
        _teststackless = import_helper.import_module("_teststackless")
        get_budget = _testinternalcapi.get_c_recursion_remaining
        budgets = []

        def probe():
            budgets.append(get_budget())

        def measure():
            probe()
            _teststackless.call_hiding_c_recursion(probe, 0)

        self.spawn(measure)
        stackless.run()
        hidden = budgets[0] - budgets[1]
        self.assertGreater(hidden, 0)
        for units in (hidden - 1, hidden, hidden + 1):
            with self.subTest(units=units):
                ch = stackless.channel()
                seen = []

                def inner():
                    if units == hidden:
                        # The counters read as in the runner's eval loop.
                        self.assertEqual(get_budget(), budgets[0])
                    return ch.receive() * 2

                def body():
                    seen.append(
                        _teststackless.call_hiding_c_recursion(inner, units))

                t = self.spawn(body)
                stackless.run()
                self.assertTrue(t.blocked)
                self.assertEqual(t.nesting_level, 1)
                self.assertFalse(t.restorable)
                ch.send(21)
                self.assertEqual(seen, [42])
                self.assertFalse(t.alive)

    def test_hard_mode_keeps_c_state(self):
        # M-10: enable_softswitch(False) makes every switch hard.
        stackless.enable_softswitch(False)
        ch = stackless.channel()
        t = self.spawn(ch.receive)
        t2 = self.spawn(lambda: ch.receive())
        stackless.run()
        self.assertTrue(t2.blocked)
        self.assertFalse(t2.restorable)
        ch.send(1)
        ch.send(2)

    def test_c_stack_unchanged_over_100000_switches(self):
        # S-7: the stack pointer and C recursion budget seen by Python code
        # in a tasklet are the same after every switch: no C recursion.
        n = 100_000
        ch = stackless.channel()
        depths = set()
        budgets = set()

        def ping():
            for i in range(n // 2):
                ch.send(i)
                depths.add(_testcapi.stack_pointer())
                budgets.add(_testinternalcapi.get_c_recursion_remaining())

        def pong():
            for i in range(n // 2):
                ch.receive()
                depths.add(_testcapi.stack_pointer())
                budgets.add(_testinternalcapi.get_c_recursion_remaining())

        self.spawn(ping)
        self.spawn(pong)
        stackless.run()
        self.assertEqual(len(depths), 1)
        self.assertEqual(len(budgets), 1)

    def test_switching_builtins_are_soft_callables(self):
        # S-7: the builtins that switch have their own type, which the eval
        # loop calls so that they may switch softly.
        ftype = type(stackless.schedule)
        ch = stackless.channel()
        t = stackless.tasklet()
        for f in (stackless.schedule, stackless.schedule_remove, ch.send,
                  ch.receive, ch.send_exception, ch.send_throw, t.run,
                  t.switch, t.kill, t.throw, t.raise_exception):
            self.assertIs(type(f), ftype)
        self.assertEqual(ch.send.__name__, "send")
        self.assertIs(ch.send.__self__, ch)
        self.assertEqual(stackless.channel.send.__qualname__, "channel.send")
        self.assertIn("receive", repr(ch.receive))
        self.assertEqual(ch.send, ch.send)

    def test_every_soft_path(self):
        # S-7: each switching operation from Python code is soft.
        ch = stackless.channel()
        log = []

        def check(what):
            log.append((what, stackless.current.restorable))

        def a():
            stackless.schedule()
            check("schedule")
            ch.send(1)
            check("send")
            v = ch.receive()
            check("receive")
            try:
                ch.receive()
            except ValueError:
                check("send_exception")
            try:
                ch.receive()
            except KeyError:
                check("send_throw")
            stackless.schedule_remove()
            check("schedule_remove")

        def b():
            ch.receive()
            ch.send(2)
            ch.send_exception(ValueError)
            ch.send_throw(KeyError)
            stackless.schedule()
            ta.run()

        ta = self.spawn(a)
        self.spawn(b)
        stackless.run()
        self.assertEqual([w for w, _ in log],
                         ["schedule", "send", "receive", "send_exception",
                          "send_throw", "schedule_remove"])
        self.assertTrue(all(r for _, r in log), log)

    def test_switching_builtins_check_their_arguments(self):
        ch = stackless.channel()
        errors = []

        def check():
            for call in (lambda: ch.send(), lambda: ch.send(1, 2),
                         lambda: ch.send(valu=1), lambda: ch.receive(1),
                         lambda: stackless.channel.send(42, 1),
                         lambda: stackless.channel.receive()):
                try:
                    call()
                except TypeError as e:
                    errors.append(str(e))

        self.spawn(check)
        stackless.run()
        self.assertEqual(len(errors), 6, errors)
        self.assertIn("takes exactly one argument (0 given)", errors[0])
        self.assertIn("takes exactly one argument (2 given)", errors[1])
        self.assertIn("unexpected keyword argument 'valu'", errors[2])
        self.assertIn("takes no arguments (1 given)", errors[3])
        self.assertIn("doesn't apply to a 'int' object", errors[4])
        self.assertIn("needs an argument", errors[5])

    def test_channel_subclass_switches(self):
        class Channel(stackless.channel):
            pass

        ch = Channel()
        got = []
        t = self.spawn(lambda: got.append(ch.receive()))
        stackless.run()
        self.assertTrue(t.restorable)
        ch.send("x")
        self.assertEqual(got, ["x"])

    def test_builtin_called_from_c_is_hard(self):
        # S-7: called from C code (here map()), a switch is hard: the C
        # caller gets its result.
        ch = stackless.channel()
        got = []

        def receiver():
            got.extend(map(lambda _: ch.receive(), range(3)))

        self.spawn(receiver)
        self.spawn_sender(ch, 3)
        stackless.run()
        self.assertEqual(got, [0, 1, 2])

    def test_method_called_through_c_is_hard(self):
        ch = stackless.channel()
        got = []

        def receiver():
            got.append(list(map(ch.receive.__call__, [])))
            got.append(sorted([3, 1, 2], key=lambda x: (ch.receive(), x)[1]))

        self.spawn(receiver)
        self.spawn_sender(ch, 3)
        stackless.run()
        self.assertEqual(got, [[], [1, 2, 3]])


class CallsFromTaskletFunctionTest(SoftTestCase):
    """A tasklet's function runs in a chunk of frame data stack that fits
    it exactly; the specialized instructions that push a frame make room
    for it in a new chunk rather than deoptimize (patch
    data-stack-growth)."""

    def block_in(self, func, reps=6):
        """Run func in `reps` tasklets, one after the other, each blocked
        in a receive until sent to; the (nesting_level, restorable) of
        each while blocked."""
        ch = stackless.channel()
        states = []
        for _ in range(reps):
            t = self.spawn(func, ch)
            stackless.run()
            self.assertTrue(t.blocked)
            states.append((t.nesting_level, t.restorable))
            ch.send(None)
            stackless.run()
            self.assertFalse(t.alive)
        return states

    def test_class_call_in_tasklet_function_is_soft(self):
        # S-7: __init__ through a class call.  The first runs of the
        # CALL are not yet specialized and go through C.  (The class is
        # the module's, so that a new one does not deoptimize the CALL
        # when the test runs again.)
        states = self.block_in(_make_blocker)
        self.assertEqual(states[-3:], [(0, True)] * 3)

    def test_specialized_pushes_from_tasklet_function(self):
        # Function calls, a property, __getitem__ and a class call, each
        # specialized, made from the frame of the tasklet's function;
        # the tasklet blocks in between and after, and ends.
        class Box:
            def __init__(self, v):
                self.v = v

            @property
            def value(self):
                return self.v

            def __getitem__(self, i):
                return self.v + i

        def add(a, b):
            return a + b

        results = []

        def func(ch):
            total = 0
            for i in range(50):
                total = add(total, Box(i).value + Box(i)[1])
                if i % 10 == 0:
                    ch.receive()
            results.append(total)

        ch = stackless.channel()
        t = self.spawn(func, ch)
        stackless.run()
        while t.alive:
            self.assertTrue(t.restorable)
            ch.send(None)
            stackless.run()
        self.assertEqual(results, [sum(2 * i + 1 for i in range(50))])

    def test_errors_through_grown_chunk(self):
        # A call made from the tasklet's function raises; the frame of
        # that function handles it, blocks, and returns.
        def fails(n):
            if n % 2:
                raise ValueError(n)
            return n

        caught = []

        def func(ch):
            for i in range(20):
                try:
                    fails(i)
                except ValueError as e:
                    caught.append(e.args[0])
            ch.receive()
            return fails(1)

        ch = stackless.channel()
        t = self.spawn(func, ch)
        stackless.run()
        self.assertTrue(t.restorable)
        self.assertEqual(caught, list(range(1, 20, 2)))
        with self.assertRaises(ValueError):
            # The tasklet runs at once, and its error goes to main (S-9).
            ch.send(None)
            stackless.run()
        self.assertFalse(t.alive)

    def test_deep_calls_from_tasklet_function(self):
        def depth(n):
            return 0 if n == 0 else 1 + depth(n - 1)

        out = []

        def func(ch):
            out.append(depth(300))
            ch.receive()
            out.append(depth(600))

        ch = stackless.channel()
        self.spawn(func, ch)
        stackless.run()
        ch.send(None)
        stackless.run()
        self.assertEqual(out, [300, 600])


class WithStatementTest(SoftTestCase):
    """S-7: __enter__ and __exit__ written in Python run in the eval loop
    of a tasklet that switches softly: a switch in them is soft."""

    def run_blocked(self, func):
        """Run func(ch) in a tasklet until it blocks; its (nesting_level,
        restorable); then let it finish."""
        ch = stackless.channel()
        t = self.spawn(func, ch)
        stackless.run()
        self.assertTrue(t.blocked)
        state = (t.nesting_level, t.restorable)
        ch.send("sent")
        stackless.run()
        self.assertFalse(t.alive)
        return state

    def test_enter_and_exit_switch_softly(self):
        log = []

        class Manager:
            def __init__(self, ch, where):
                self.ch, self.where = ch, where

            def __enter__(self):
                if self.where == "enter":
                    log.append(self.ch.receive())
                return "value"

            def __exit__(self, *exc):
                if self.where == "exit":
                    log.append(self.ch.receive())
                log.append(exc)

        for where in ("enter", "exit"):
            def func(ch):
                with Manager(ch, where) as v:
                    log.append(v)

            with self.subTest(where=where):
                log.clear()
                self.assertEqual(self.run_blocked(func), (0, True))
                if where == "enter":
                    self.assertEqual(log, ["sent", "value",
                                           (None, None, None)])
                else:
                    self.assertEqual(log, ["value", "sent",
                                           (None, None, None)])

    def test_errors_and_other_signatures(self):
        class Raises:
            def __enter__(self):
                raise KeyError("enter")

            def __exit__(self, *exc):
                return False

        class Defaults:
            # Called through C: an argument with a default.
            def __enter__(self, extra=2):
                return extra

            def __exit__(self, exc_type, exc, tb):
                # The exception path: suppressed.
                return exc_type is ValueError

        got = []

        def func():
            try:
                with Raises():
                    got.append("body")
            except KeyError as e:
                got.append(e.args)
            with Defaults() as d:
                got.append(d)
                raise ValueError
            got.append("after")

        self.spawn(func)
        stackless.run()
        self.assertEqual(got, [("enter",), 2, "after"])

    def test_exit_with_exception_blocks(self):
        # The __exit__ of an exception (WITH_EXCEPT_START) runs in the eval
        # loop too; what it returns suppresses the exception or not, and
        # what it raises replaces it.
        got = []

        class Manager:
            def __init__(self, ch, result):
                self.ch, self.result = ch, result

            def __enter__(self):
                return self

            def __exit__(self, exc_type, exc, tb):
                got.append((exc_type, sys.exception() is exc,
                            self.ch.receive()))
                if self.result == "raise":
                    raise KeyError("exit")
                return self.result

        def suppressed(ch):
            with Manager(ch, True):
                raise ValueError
            got.append("after")

        def propagated(ch):
            try:
                with Manager(ch, False):
                    raise ValueError("body")
            except ValueError as e:
                got.append(e.args)

        def replaced(ch):
            try:
                with Manager(ch, "raise"):
                    raise ValueError("body")
            except KeyError as e:
                got.append((e.args, type(e.__context__)))
                got.append([f.name for f in traceback.extract_tb(
                    e.__traceback__)])

        for func in (suppressed, propagated, replaced):
            self.assertEqual(self.run_blocked(func), (0, True))
        self.assertEqual(got, [
            (ValueError, True, "sent"), "after",
            (ValueError, True, "sent"), ("body",),
            (ValueError, True, "sent"), (("exit",), ValueError),
            ["replaced", "__exit__"]])


class ChannelIterationTest(SoftTestCase):
    """S-7: `for x in channel` receives as receive() does, and switches
    softly (FOR_ITER goes through _PyStackless_IterNext)."""

    @staticmethod
    def consumer(ch, got):
        """A function that loops over ch, then says so."""
        def consumer():
            for x in ch:
                got.append(x)
            got.append("after")
        return consumer

    def test_iteration_is_soft_and_ends_with_stop_iteration(self):
        ch = stackless.channel()
        got = []
        t = self.spawn(self.consumer(ch, got))
        stackless.run()
        for i in range(3):
            self.assertTrue(t.blocked)
            self.assertEqual((t.nesting_level, t.restorable), (0, True))
            ch.send(i)
        ch.send_exception(StopIteration)
        stackless.run()
        self.assertEqual(got, [0, 1, 2, "after"])
        self.assertFalse(t.alive)

    def test_iteration_ends_in_a_long_loop(self):
        # The loop's FOR_ITER jumps over a body long enough to need an
        # EXTENDED_ARG: the end of the iteration reads its whole oparg.
        ch = stackless.channel()
        body = "\n".join("        n = n + %d" % (i % 5) for i in range(150))
        ns = {"ch": ch}
        exec("def consumer(got):\n    n = 0\n    for x in ch:\n"
             + body + "\n        got.append(x)\n    got.append('after')\n", ns)
        self.assertTrue(any(i.opname == "FOR_ITER" and i.arg > 255
                            for i in dis.get_instructions(ns["consumer"])))
        got = []
        t = self.spawn(ns["consumer"], got)
        stackless.run()
        ch.send(1)
        ch.send_exception(StopIteration)
        stackless.run()
        self.assertEqual(got, [1, "after"])
        self.assertFalse(t.alive)

    def test_loop_in_nested_frames_and_with_else(self):
        ch = stackless.channel()
        got = []

        def inner(n):
            for x in ch:
                got.append(x)
                if x == n:
                    break
            else:
                got.append("exhausted")
            return n

        def consumer():
            got.append(inner(1))
            got.append(inner(99))

        t = self.spawn(consumer)
        stackless.run()
        for i in range(3):
            self.assertTrue(t.restorable)
            ch.send(i)
        ch.send_exception(StopIteration)
        stackless.run()
        self.assertEqual(got, [0, 1, 1, 2, "exhausted", 99])

    def test_errors_and_kill_reach_the_loop(self):
        ch = stackless.channel()
        got = []

        def consumer():
            try:
                for x in ch:
                    got.append(x)
            except ValueError as e:
                got.append(e.args)
            try:
                for x in ch:
                    got.append(x)
            finally:
                got.append("finally")

        t = self.spawn(consumer)
        stackless.run()
        ch.send_exception(ValueError, "bad")
        self.assertTrue(t.blocked and t.restorable)
        t.kill()
        self.assertEqual(got, [("bad",), "finally"])
        self.assertFalse(t.alive)

    def test_closed_channel(self):
        # C-8: close() does not wake a blocked receiver, which a partner
        # still serves; then the channel is closed, and the loop ends.
        ch = stackless.channel()
        got = []
        consumer = self.consumer(ch, got)
        t = self.spawn(consumer)
        stackless.run()
        ch.close()
        self.assertTrue(t.blocked and t.restorable)
        ch.send("last")
        stackless.run()
        self.assertTrue(ch.closed)
        self.assertEqual(got, ["last", "after"])
        self.assertFalse(t.alive)
        self.spawn(consumer)
        stackless.run()
        self.assertEqual(got, ["last", "after", "after"])


class GeneratorNextTest(StacklessTestCase):
    """next(gen) in a tasklet: in soft mode the generator's frame runs in
    the tasklet's eval loop, below a shim frame that no frame walker
    sees; in both modes it behaves as next() does."""

    def run_blocked(self, body, ch, sends):
        """Run body in a tasklet; send each of `sends` on ch while it is
        blocked; the (nesting_level, restorable) of each block."""
        t = self.spawn(body)
        stackless.run()
        states = []
        for v in sends:
            self.assertTrue(t.blocked)
            states.append((t.nesting_level, t.restorable))
            ch.send(v)
        stackless.run()
        self.assertFalse(t.alive)
        return states

    def test_blocking_generator_values(self):
        ch = stackless.channel()
        got = []

        def gen():
            x = ch.receive()
            yield x
            yield ch.receive() * 2

        def body():
            g = gen()
            got.append(next(g))
            got.append(next(g))

        states = self.run_blocked(body, ch, [1, 21])
        self.assertEqual(got, [1, 42])
        if stackless.enable_softswitch(None):
            self.assertEqual(states, [(0, True)] * 2)
        else:
            self.assertEqual([r for _, r in states], [False] * 2)

    def test_return_raises_stop_iteration(self):
        ch = stackless.channel()
        caught = []

        def gen(value):
            ch.receive()
            return value
            yield

        def body():
            for value in (5, (1, 2), None, ValueError("v")):
                g = gen(value)
                try:
                    next(g)
                except StopIteration as e:
                    caught.append((e.value, e.args))
                try:
                    next(g)
                except StopIteration as e:
                    caught.append(e.args)

        self.run_blocked(body, ch, [None] * 4)
        self.assertEqual(caught[:6], [(5, (5,)), (), ((1, 2), ((1, 2),)), (),
                                      (None, ()), ()])
        self.assertIsInstance(caught[6][0], ValueError)
        self.assertEqual(caught[6][1], (caught[6][0],))

    def test_exception_traceback_has_no_shim(self):
        ch = stackless.channel()
        frames = []

        def gen():
            ch.receive()
            raise KeyError("k")
            yield

        def body():
            try:
                next(gen())
            except KeyError as e:
                frames.extend(f.name for f in traceback.extract_tb(
                    e.__traceback__))

        self.run_blocked(body, ch, [None])
        self.assertEqual(frames, ["body", "gen"])

    def test_generator_frame_backs_to_caller(self):
        ch = stackless.channel()
        chains = []

        def gen():
            ch.receive()
            f = sys._getframe()
            chain = []
            while f is not None:
                chain.append(f.f_code.co_name)
                f = f.f_back
            chains.append(chain)
            chains.append([f.name for f in traceback.extract_stack()])
            yield 1

        def body():
            next(gen())

        self.run_blocked(body, ch, [None])
        self.assertEqual(chains[0], ["gen", "body"])
        self.assertEqual(chains[1], ["body", "gen"])

    def test_handled_exception_is_seen_and_kept(self):
        ch = stackless.channel()
        seen = []

        def gen():
            seen.append(repr(sys.exception()))
            ch.receive()
            seen.append(repr(sys.exception()))
            try:
                raise ValueError
            except ValueError:
                yield 1

        def body():
            try:
                raise KeyError("outer")
            except KeyError:
                g = gen()
                next(g)
                seen.append(repr(sys.exception()))
            seen.append(repr(sys.exception()))
            g.close()

        self.run_blocked(body, ch, [None])
        self.assertEqual(seen, ["KeyError('outer')"] * 3 + ["None"])

    def test_running_exhausted_and_default(self):
        ch = stackless.channel()
        errors = []

        def selfish():
            ch.receive()
            try:
                next(g)
            except ValueError as e:
                errors.append(str(e))
            yield 1

        g = selfish()

        def body():
            self.assertEqual(next(g), 1)
            self.assertIsNone(next(g, None))
            self.assertEqual(next(g, "d"), "d")
            with self.assertRaises(StopIteration):
                next(g)

        self.run_blocked(body, ch, [None])
        self.assertEqual(errors, ["generator already executing"])

    def test_default_blocking_values_and_return(self):
        ch = stackless.channel()
        got = []

        def gen():
            yield ch.receive()
            yield ch.receive() * 2
            ch.receive()
            return "ignored"

        def body():
            g = gen()
            for _ in range(4):
                got.append(next(g, "d"))

        states = self.run_blocked(body, ch, [1, 21, None])
        self.assertEqual(got, [1, 42, "d", "d"])
        if stackless.enable_softswitch(None):
            self.assertEqual(states, [(0, True)] * 3)
        else:
            self.assertEqual([r for _, r in states], [False] * 3)

    def test_default_exception_goes_through(self):
        ch = stackless.channel()
        caught = []

        def gen(exc):
            ch.receive()
            raise exc
            yield

        def body():
            try:
                next(gen(KeyError("k")), "d")
            except KeyError as e:
                caught.append([f.name for f in traceback.extract_tb(
                    e.__traceback__)])
            # PEP 479: a StopIteration of the generator's own is no end.
            try:
                next(gen(StopIteration("s")), "d")
            except RuntimeError as e:
                caught.append(repr(e.__cause__))

        self.run_blocked(body, ch, [None, None])
        self.assertEqual(caught, [["body", "gen"], "StopIteration('s')"])

    def test_default_frame_backs_to_caller(self):
        ch = stackless.channel()
        chains = []

        def gen():
            ch.receive()
            chains.append([f.name for f in traceback.extract_stack()])
            f = sys._getframe().f_back
            chains.append(f.f_code.co_name)
            yield 1

        def body():
            self.assertEqual(next(gen(), None), 1)

        self.run_blocked(body, ch, [None])
        self.assertEqual(chains, [["body", "gen"], "body"])

    def test_kill_tasklet_blocked_in_generator(self):
        ch = stackless.channel()
        log = []

        def gen():
            try:
                ch.receive()
                yield 1
            finally:
                log.append("gen finally")

        def body():
            try:
                next(gen())
            finally:
                log.append("body finally")

        t = self.spawn(body)
        stackless.run()
        self.assertTrue(t.blocked)
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(log, ["gen finally", "body finally"])

    def test_nested_generators_and_recursion_limit(self):
        ch = stackless.channel()
        results = []

        def nest(n):
            if n == 0:
                yield ch.receive()
            else:
                yield next(nest(n - 1)) + 1

        def body():
            results.append(next(nest(200)))
            try:
                next(nest(sys.getrecursionlimit()))
            except RecursionError:
                results.append("RecursionError")

        self.run_blocked(body, ch, [0])
        self.assertEqual(results, [200, "RecursionError"])

    def test_traced_tasklet_sees_no_shim(self):
        ch = stackless.channel()
        events = []

        def tracer(frame, event, arg):
            if event in ("call", "return"):
                events.append((event, frame.f_code.co_name))
            return tracer

        def gen(block):
            if block:
                ch.receive()
            yield 1

        def body(block=True):
            sys.settrace(tracer)
            try:
                next(gen(block))
            finally:
                sys.settrace(None)

        # What CPython shows without a switch (its close() of the dropped
        # generator is traced too from 3.13.15 on), then with one.
        body(block=False)
        expected = events[:]
        del events[:]
        self.assertEqual(expected[:2], [("call", "gen"), ("return", "gen")])
        self.run_blocked(body, ch, [None])
        self.assertEqual(events, expected)


class GeneratorSendThrowTest(StacklessTestCase):
    """gen.send(), gen.throw() and the same of coroutines in a tasklet:
    soft in soft mode, as in CPython in both."""

    run_blocked = GeneratorNextTest.run_blocked

    def assert_soft(self, states):
        if stackless.enable_softswitch(None):
            self.assertEqual(states, [(0, True)] * len(states))
        else:
            self.assertEqual([r for _, r in states], [False] * len(states))

    def test_send_and_throw(self):
        ch = stackless.channel()
        got = []

        def gen():
            x = yield 1
            y = yield (x, ch.receive())
            try:
                yield y
            except KeyError as e:
                yield ("caught", e.args[0], ch.receive())
            return "done"

        def body():
            g = gen()
            got.append(g.send(None))
            got.append(g.send("x"))
            got.append(g.send("y"))
            got.append(g.throw(KeyError("k")))
            try:
                g.send(None)
            except StopIteration as e:
                got.append(("stop", e.value))
            try:
                g.send(None)
            except StopIteration as e:
                got.append(("again", e.args))

        states = self.run_blocked(body, ch, ["a", "b"])
        self.assertEqual(got, [1, ("x", "a"), "y", ("caught", "k", "b"),
                               ("stop", "done"), ("again", ())])
        self.assert_soft(states)

    def test_bound_methods(self):
        ch = stackless.channel()
        got = []

        def gen():
            while True:
                try:
                    got.append((yield ch.receive()))
                except ValueError:
                    got.append("thrown")

        def body():
            g = gen()
            send, throw = g.send, g.throw
            got.append(send(None))
            got.append(send("s"))
            got.append(throw(ValueError))

        states = self.run_blocked(body, ch, [1, 2, 3])
        self.assertEqual(got, [1, "s", 2, "thrown", 3])
        self.assert_soft(states)

    def test_throw_uncaught_and_errors(self):
        ch = stackless.channel()
        got = []

        def gen():
            ch.receive()
            yield 1

        def body():
            g = gen()
            next(g)
            try:
                g.throw(KeyError("k"))
            except KeyError as e:
                got.append([f.name for f in traceback.extract_tb(
                    e.__traceback__)])
            self.assertIsNone(g.gi_frame)
            h = gen()
            next(h)
            try:
                h.throw(1)
            except TypeError as e:
                got.append("TypeError")
            with self.assertRaises(TypeError):
                gen().send(1)       # to a just-started generator
            try:
                h.send(None)        # the bad throw left it as it was
            except StopIteration:
                got.append("stop")

        self.run_blocked(body, ch, [None, None])
        self.assertEqual(got, [["body", "gen"], "TypeError", "stop"])

    def test_coroutine_send_and_throw(self):
        import types
        ch = stackless.channel()
        got = []

        @types.coroutine
        def wait():
            v = yield "waiting"
            return ch.receive() + v

        async def coro():
            try:
                return await wait() * 2
            except KeyError:
                return "caught " + str(ch.receive())

        def body():
            c = coro()
            got.append(c.send(None))
            try:
                c.send(10)
            except StopIteration as e:
                got.append(e.value)
            c = coro()
            c.send(None)
            try:
                c.throw(KeyError)
            except StopIteration as e:
                got.append(e.value)
            with self.assertRaisesRegex(RuntimeError, "cannot reuse"):
                c.send(None)

        states = self.run_blocked(body, ch, [1, 2])
        self.assertEqual(got, ["waiting", 22, "caught 2"])
        self.assert_soft(states[:1])
        # A throw() into an `await` goes to the awaited generator in C
        # (as gen_throw() delegates): that switch is hard.
        self.assertFalse(states[1][1])

    def test_send_through_c_is_not_taken_for_a_call(self):
        # gen.send called by C code (map) under a CALL of the same
        # arguments: it must run through C and give list() its values.
        ch = stackless.channel()
        got = []

        def gen():
            while True:
                yield (yield)

        def body():
            g = gen()
            next(g)
            got.append(list(map(g.send, [1, None, 2, None])))
            got.append(ch.receive())

        self.run_blocked(body, ch, ["end"])
        self.assertEqual(got, [[1, None, 2, None], "end"])

    def test_throw_with_deprecated_signature_warns(self):
        import warnings
        ch = stackless.channel()
        got = []

        def gen():
            try:
                yield ch.receive()
            except ValueError as e:
                yield str(e)

        def body():
            g = gen()
            next(g)
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                got.append(g.throw(ValueError, ValueError("v"), None))
            got.append(len(w))

        self.run_blocked(body, ch, [None])
        self.assertEqual(got, ["v", 1])


class AsyncWithTest(StacklessTestCase):
    """`async with` and `await` in a coroutine driven by send() in a
    tasklet: __aenter__ and __aexit__ return coroutines, which SEND runs
    in the eval loop: soft in soft mode."""

    run_blocked = GeneratorNextTest.run_blocked
    assert_soft = GeneratorSendThrowTest.assert_soft

    def test_async_with_blocks_softly(self):
        ch = stackless.channel()
        got = []

        class CM:
            async def __aenter__(self):
                return ch.receive()

            async def __aexit__(self, *exc_info):
                got.append((exc_info[0], ch.receive()))

        async def main():
            async with CM() as v:
                got.append(v)
            try:
                async with CM():
                    raise KeyError
            except KeyError:
                got.append("raised")

        def body():
            try:
                main().send(None)
            except StopIteration:
                got.append("done")

        states = self.run_blocked(body, ch, [1, 2, 3, 4])
        self.assertEqual(got, [1, (None, 2), (KeyError, 4), "raised",
                               "done"])
        self.assert_soft(states)


class ContextRunTest(StacklessTestCase):
    """contextvars.Context.run() in a tasklet: in soft mode a Python
    function runs in the tasklet's eval loop over a shim frame that exits
    the context after it; in both modes as in CPython."""

    run_blocked = GeneratorNextTest.run_blocked
    assert_soft = GeneratorSendThrowTest.assert_soft

    def setUp(self):
        super().setUp()
        import contextvars
        self.var = contextvars.ContextVar("var", default="outer")
        self.ctx = contextvars.copy_context()

    def test_values_and_context(self):
        ch = stackless.channel()
        var, ctx = self.var, self.ctx
        got = []

        def f(a, b=0):
            var.set("inner")
            got.append((var.get(), ch.receive(), a, b))
            return a + b

        class C:
            def m(self, x):
                return ch.receive() * x

        def body():
            got.append(ctx.run(f, 1, b=2))
            got.append((var.get(), ctx[var]))
            run = ctx.run
            got.append(run(C().m, 3))
            got.append(var.get())

        states = self.run_blocked(body, ch, [10, 30])
        self.assertEqual(got, [("inner", 10, 1, 2), 3, ("outer", "inner"),
                               90, "outer"])
        self.assert_soft(states)

    def test_exception_exits_context(self):
        ch = stackless.channel()
        var, ctx = self.var, self.ctx
        got = []

        def g():
            var.set("g")
            ch.receive()
            raise KeyError("k")

        def body():
            try:
                ctx.run(g)
            except KeyError as e:
                got.append([f.name for f in traceback.extract_tb(
                    e.__traceback__)])
            got.append(var.get())
            got.append(ctx.run(var.get))    # entered again: it was exited

        states = self.run_blocked(body, ch, [None])
        self.assertEqual(got, [["body", "g"], "outer", "g"])
        self.assert_soft(states)

    def test_bad_arguments_and_reentry(self):
        ch = stackless.channel()
        ctx = self.ctx
        got = []

        def f(a):
            ch.receive()
            try:
                ctx.run(f, 1)
            except RuntimeError as e:
                got.append("already entered" in str(e))
            return a

        def body():
            try:
                ctx.run(f)
            except TypeError as e:
                got.append(str(e))
            got.append(ctx.run(f, 5))

        self.run_blocked(body, ch, [None])
        self.assertEqual(len(got), 3)
        self.assertTrue(got[0].endswith(
            "f() missing 1 required positional argument: 'a'"), got[0])
        self.assertEqual(got[1:], [True, 5])

    def test_kill_blocked_in_run_exits_context(self):
        ch = stackless.channel()
        var, ctx = self.var, self.ctx

        def f():
            var.set("f")
            ch.receive()

        t = self.spawn(lambda: ctx.run(f))
        stackless.run()
        self.assertTrue(t.blocked)
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(ctx.run(var.get), "f")


class CPythonTestsInTaskletTest(SoftTestCase):
    """CPython's own tests of generators, coroutines and `with`, run in a
    tasklet: their next(), send() and throw() calls, and the __exit__ of
    their with blocks, made from the tasklet's eval loop, run there
    (GeneratorNextTest, WithStatementTest), and must behave as in
    CPython."""

    # With stackless imported, generators and coroutines pickle and copy
    # (spec P-10): CPython's tests that they do not are left out.
    PICKLE_TESTS = {"test_copy", "test_pickle"}

    @staticmethod
    def flatten(suite):
        for t in suite:
            if isinstance(t, unittest.TestSuite):
                yield from CPythonTestsInTaskletTest.flatten(t)
            else:
                yield t

    def run_in_tasklet(self, name, min_tests=40):
        import importlib
        mod = importlib.import_module("test." + name)
        suite = unittest.TestLoader().loadTestsFromModule(mod)
        result = unittest.TestResult()

        def main():
            # TestCase.run() is called from Python, so that the tests run
            # in this tasklet's eval loop (a suite is called through C).
            classes = set()
            for test in self.flatten(suite):
                if test.id().rsplit(".", 1)[-1] in self.PICKLE_TESTS:
                    continue
                cls = type(test)
                if cls not in classes:
                    classes.add(cls)
                    cls.setUpClass()
                    self.addCleanup(cls.tearDownClass)
                test.run(result)

        self.spawn(main)
        stackless.run()
        problems = [f"{test}: {tb}"
                    for test, tb in result.failures + result.errors]
        self.assertEqual(problems, [])
        self.assertGreaterEqual(result.testsRun, min_tests)

    def test_generators(self):
        self.run_in_tasklet("test_generators")

    def test_yield_from(self):
        self.run_in_tasklet("test_yield_from")

    def test_coroutines(self):
        self.run_in_tasklet("test_coroutines")

    def test_contextlib(self):
        self.run_in_tasklet("test_contextlib")

    def test_with(self):
        self.run_in_tasklet("test_with")

    # The calls that pycall.c runs in the eval loop (test_callshapes).
    def test_extcall(self):
        self.run_in_tasklet("test_extcall", 1)     # one doctest

    def test_call(self):
        self.run_in_tasklet("test_call")

    def test_class(self):
        self.run_in_tasklet("test_class", 30)

    def test_super(self):
        self.run_in_tasklet("test_super", 30)

    def test_functools(self):
        self.run_in_tasklet("test_functools")

    def test_descr(self):
        self.run_in_tasklet("test_descr")

    def test_dataclasses(self):
        self.run_in_tasklet("test_dataclasses")


class _SubChannel(stackless.channel):
    pass


class QuickChannelSwitchTest(SoftTestCase):
    """Channel operations called by Python code take a short way to their
    soft switch when nothing stands in it (no callbacks, no timed run(),
    the plain channel type).  Whichever way they take, they do what they
    do with hard switching: the same values, the same order, the same
    exceptions."""

    def exchange(self, ch, log, bound=False):
        """Two receivers and a sender on ch: values, an exception sent,
        and a receive that blocks; every tasklet logs what it sees.
        `bound`: send and receive are bound once, kept in locals."""
        def receiver(name):
            receive = ch.receive
            for _ in range(3):
                try:
                    v = receive() if bound else ch.receive()
                except ValueError as e:
                    v = ("error", e.args)
                log.append((name, "got", v))

        def sender():
            send = ch.send
            for i in range(6):
                log.append(("s", "send", i))
                if i == 4:
                    ch.send_exception(ValueError, i)
                elif bound:
                    send(i)
                else:
                    ch.send(i)
                log.append(("s", "sent", i))

        rs = [stackless.tasklet(receiver)(name) for name in "ab"]
        s = stackless.tasklet(sender)()
        return rs + [s]

    def run_exchange(self, soft, setup=lambda ch: None, cls=None,
                     runner=stackless.run, bound=False):
        stackless.enable_softswitch(soft)
        ch = (cls or stackless.channel)()
        setup(ch)
        log = []
        ts = self.exchange(ch, log, bound)
        for t in ts:
            self.track(t)
        levels = []

        def watch():
            # Runs while the others are blocked or runnable, softly.
            for _ in range(8):
                levels.extend(t.nesting_level for t in ts
                              if t.alive and not t.is_current)
                stackless.schedule()

        self.spawn(watch)
        runner()
        self.assertFalse(any(t.alive for t in ts))
        return log, levels

    def check_same_as_hard(self, **kwds):
        hard, _ = self.run_exchange(False, **kwds)
        soft, levels = self.run_exchange(True, **kwds)
        self.assertEqual(soft, hard)
        self.assertEqual(len(soft), 18)
        self.assertTrue(levels)
        self.assertEqual(set(levels), {0})
        return soft

    def test_default_preference(self):
        # The receiver runs first: each send switches to it, and its next
        # receive switches back.
        log = self.check_same_as_hard()
        self.assertEqual(log[:6], [
            ("s", "send", 0), ("a", "got", 0), ("s", "sent", 0),
            ("s", "send", 1), ("b", "got", 1), ("s", "sent", 1)])
        self.assertIn(("a", "got", ("error", (4,))), log)

    def test_bound_methods(self):
        # send = ch.send, then send(x): the bound method's own entry.
        self.assertEqual(self.check_same_as_hard(bound=True),
                         self.check_same_as_hard())
        for pref in (-1, 1):
            def setup(ch, pref=pref):
                ch.preference = pref
            self.check_same_as_hard(setup=setup, bound=True)
        self.check_same_as_hard(cls=_SubChannel, bound=True)

    def test_other_preferences(self):
        for pref in (0, 1):
            with self.subTest(preference=pref):
                def setup(ch, pref=pref):
                    ch.preference = pref
                self.check_same_as_hard(setup=setup)

    def test_schedule_all(self):
        def setup(ch):
            ch.schedule_all = True
        self.check_same_as_hard(setup=setup)

    def test_channel_subclass(self):
        self.check_same_as_hard(cls=_SubChannel)

    def test_callbacks(self):
        for which in ("schedule", "channel"):
            with self.subTest(callback=which):
                seen = []
                setter = getattr(stackless, f"set_{which}_callback")
                setter(lambda *args: seen.append(len(args)))
                self.addCleanup(setter, None)
                self.check_same_as_hard()
                setter(None)
                self.assertTrue(seen)

    def test_timed_run(self):
        # run(timeout) counts ticks: every switch restarts the timeslice.
        def runner():
            while stackless.getruncount() > 1:
                self.assertIsNone(stackless.run(1_000_000))
        self.check_same_as_hard(runner=runner)

    def test_bomb_waiting_with_sender_first(self):
        # preference 1: a receive finds the sender's exception waiting and
        # switches to the sender first, then raises it.
        def setup(ch):
            ch.preference = 1
        log = self.check_same_as_hard(setup=setup)
        self.assertEqual(
            sum(1 for e in log if e[1:] == ("got", ("error", (4,)))), 1)


    def test_calls_specialize(self):
        # Once warm, a CALL of a switching builtin is CALL_STACKLESS: the
        # methods of a channel, and a function of the module.
        ch = stackless.channel()
        levels = []

        def sender():
            for i in range(10):
                ch.send(i)
                stackless.schedule()

        def receiver():
            for _ in range(10):
                levels.append(stackless.current.nesting_level)
                ch.receive()

        self.spawn(sender)
        self.spawn(receiver)
        stackless.run()
        self.assertEqual(levels, [0] * 10)
        for fn, n in ((sender, 2), (receiver, 1)):
            calls = [i.opname for i in
                     dis.get_instructions(fn, adaptive=True)
                     if i.opname.startswith("CALL")]
            with self.subTest(fn=fn.__name__):
                self.assertEqual(calls.count("CALL_STACKLESS"), n)

    def test_channel_freed_by_the_call(self):
        # Once the receiver has left the channel, the sender's call holds
        # the last reference to it: the call drops it in the sender,
        # before the switch or after it returns, not in the middle of it
        # (a quick switch made by send() itself would let it go there).
        # Its weakref callback runs in the sender, and may try to switch.
        # The first sends warm the call up, the later ones are
        # CALL_STACKLESS.
        for soft in (False, True):
            with self.subTest(soft=soft):
                stackless.enable_softswitch(soft)
                chans = [stackless.channel() for _ in range(6)]
                log = []
                s = None

                def freed(ref):
                    log.append(("freed", stackless.current is s))
                    try:
                        # Runs other tasklets, where it can.
                        stackless.schedule()
                    except RuntimeError:
                        pass

                refs = [weakref.ref(ch, freed) for ch in chans]

                def receiver(i):
                    log.append(("got", refs[i]().receive()))

                def sender():
                    for i in range(len(refs)):
                        chans.pop(0).send(i)
                    log.append("sent")

                for i in range(len(chans)):
                    self.spawn(receiver, i)
                s = self.spawn(sender)
                stackless.run()
                self.assertEqual([r() for r in refs], [None] * len(refs))
                self.assertCountEqual(
                    log, [("freed", True)] * 6
                    + [("got", i) for i in range(6)] + ["sent"])

    def test_bomb_sent_to_waiting_receiver(self):
        # A bomb sent with send() to a receiver that waits, which runs
        # first, is raised in the receiver, as with hard switching.
        def run(soft):
            stackless.enable_softswitch(soft)
            ch = stackless.channel()
            log = []

            def receiver():
                for _ in range(6):
                    try:
                        log.append(("got", ch.receive()))
                    except ValueError as e:
                        log.append(("raised", e.args))

            def sender():
                for i in range(6):
                    item = stackless.bomb(ValueError, i) if i % 2 else i
                    ch.send(item)
                    log.append(("sent", i))

            self.spawn(receiver)
            self.spawn(sender)
            stackless.run()
            return log

        hard = run(False)
        self.assertEqual(run(True), hard)
        self.assertIn(("raised", (3,)), hard)
        self.assertIn(("got", 4), hard)

    def test_tempvals_set_by_hand(self):
        # What a tempval set by hand holds is dropped where the switch
        # replaces it, as with hard switching: the blocking tasklet's own,
        # that of a receiver that waits, that of a sender that resumes.
        class Obj:
            pass

        def run(soft):
            stackless.enable_softswitch(soft)
            ch = stackless.channel()
            log = []
            refs = []

            def held():
                o = Obj()
                refs.append(weakref.ref(o))
                return o

            def receiver():
                for i in range(8):
                    if i % 4 == 1:
                        stackless.current.tempval = held()
                    log.append(("got", ch.receive()))

            def sender():
                for i in range(8):
                    if i % 4 == 2:
                        r.tempval = held()
                    elif i % 4 == 3:
                        stackless.current.tempval = held()
                    ch.send(i)
                    log.append(("sent", i, [ref() for ref in refs]))
                    if i % 4 == 0:
                        s.tempval = held()

            r = self.spawn(receiver)
            s = self.spawn(sender)
            stackless.run()
            return log, [ref() for ref in refs]

        hard, hard_left = run(False)
        soft, soft_left = run(True)
        self.assertEqual(soft, hard)
        self.assertEqual(len(soft), 16)
        self.assertEqual(len(soft_left), 8)
        self.assertEqual(soft_left, [None] * 8)

    def test_call_site_of_other_callables(self):
        # A CALL that found a switching builtin and then finds another
        # callable (or a bound send) calls that one.
        ch = stackless.channel()
        got = []

        def receiver():
            while True:
                got.append(ch.receive())

        def sender():
            bound = ch.send
            funcs = [ch.send] * 4 + [got.append, bound, len, bound]
            for f in funcs:
                if f is len:
                    got.append(f("abc"))
                else:
                    f(len(got))

        r = self.spawn(receiver)
        self.spawn(sender)
        stackless.run()
        r.kill()
        self.assertEqual(got, [0, 1, 2, 3, 4, 5, 3, 7])


class SendSequenceTest(SoftTestCase):
    """channel.send_sequence() called by Python code sends its items from
    the eval loop, where each send switches softly, as send() does.  The
    frame that sends them is invisible, and it does what the builtin does
    with hard switching."""

    def sending(self, soft, items, ch=None):
        """A tasklet sends items with send_sequence(), and blocks before
        each (nobody waits); main receives them.  Returns what main got,
        the sender's (nesting_level, restorable) then, and what
        send_sequence() returned or raised."""
        stackless.enable_softswitch(soft)
        ch = ch or stackless.channel()
        result = []

        def sender():
            try:
                result.append(ch.send_sequence(items))
            except Exception as e:
                result.append(e)

        s = self.started(sender)
        got = []
        levels = []
        while s.alive:
            if s.blocked:
                levels.append((s.nesting_level, s.restorable))
                got.append(ch.receive())
            else:
                stackless.schedule()
        return got, levels, result

    def test_sender_blocks_softly(self):
        got, levels, result = self.sending(True, iter(range(5)))
        self.assertEqual(got, [0, 1, 2, 3, 4])
        self.assertEqual(result, [5])
        self.assertEqual(levels, [(0, True)] * 5)
        hard = self.sending(False, iter(range(5)))
        self.assertEqual(hard[0], got)
        self.assertEqual(hard[2], result)
        self.assertEqual([r for _, r in hard[1]], [False] * 5)

    def test_items_from_a_generator(self):
        # The generator runs in the eval loop too, and its frame's f_back
        # is the frame that called send_sequence().
        backs = []

        def items():
            for i in range(3):
                backs.append(sys._getframe(1).f_code.co_name)
                yield i

        for soft in (True, False):
            with self.subTest(soft=soft):
                backs.clear()
                got, levels, result = self.sending(soft, items())
                self.assertEqual((got, result), ([0, 1, 2], [3]))
                self.assertEqual(backs, ["sender"] * 3)
                if soft:
                    self.assertEqual(levels, [(0, True)] * 3)

    def test_errors_go_through(self):
        # An error of the iteration, or of a send, reaches the caller after
        # the items before it were sent; the traceback has no frame of
        # send_sequence().
        def items():
            yield "a"
            yield "b"
            raise ZeroDivisionError("items")

        for soft in (True, False):
            with self.subTest(soft=soft):
                got, _, result = self.sending(soft, items())
                self.assertEqual(got, ["a", "b"])
                [exc] = result
                self.assertIsInstance(exc, ZeroDivisionError)
                files = [f.filename for f in
                         traceback.extract_tb(exc.__traceback__)]
                self.assertNotIn("<stackless>", files)
                self.assertEqual(files[0], __file__)

                ch = stackless.channel()
                ch.close()
                got, _, result = self.sending(soft, [1, 2], ch)
                self.assertEqual(got, [])
                self.assertIsInstance(result[0], ValueError)

    def test_not_seen_by_tracing(self):
        # sys.settrace() sees the calls and lines of the sender and of the
        # generator, none of the frame that sends.
        def items():
            yield 1
            yield 2

        def run(soft):
            seen = []

            def tracer(frame, event, arg):
                seen.append((frame.f_code.co_filename, event))
                return tracer

            ch = stackless.channel()
            stackless.enable_softswitch(soft)

            def sender():
                sys.settrace(tracer)
                try:
                    return ch.send_sequence(items())
                finally:
                    sys.settrace(None)

            s = self.spawn(sender)
            got = [ch.receive(), ch.receive()]
            stackless.run()
            self.assertEqual(got, [1, 2])
            return seen

        soft = run(True)
        self.assertTrue(soft)
        self.assertNotIn("<stackless>", {f for f, _ in soft})
        self.assertEqual(soft, run(False))

    def test_called_from_c(self):
        # Called through C (map()), it sends from C, switching hard: the
        # sender is not restorable while it waits.
        ch = stackless.channel()
        levels = []
        result = []

        def sender():
            result.extend(map(ch.send_sequence, [[1, 2], [3]]))

        s = self.started(sender)
        got = []
        while s.alive:
            if s.blocked:
                levels.append(s.restorable)
                got.append(ch.receive())
            else:
                stackless.schedule()
        self.assertEqual((got, result), ([1, 2, 3], [2, 1]))
        self.assertEqual(levels, [False] * 3)


class MonitoredCallTest(SoftTestCase):
    """A CALL that sys.monitoring watches reports the C_RETURN of the
    builtin it calls when that returns, with its result: channel
    operations and the resumption of a generator by next() switch hard
    there, and the tool sees what it sees with hard switching."""

    TOOL = 4

    def watch(self, soft, body):
        stackless.enable_softswitch(soft)
        mon = sys.monitoring
        events = {"call": mon.events.CALL, "return": mon.events.C_RETURN,
                  "raise": mon.events.C_RAISE}
        log = []
        levels = []

        def event(kind):
            def callback(code, offset, callable, arg0):
                name = getattr(callable, "__name__", "")
                if name in ("send", "receive", "next"):
                    log.append((kind, name))
            return callback

        mon.use_tool_id(self.TOOL, "test_softswitch")
        try:
            for kind, ev in events.items():
                mon.register_callback(self.TOOL, ev, event(kind))
            mon.set_events(self.TOOL, sum(events.values()))
            body(log, levels)
        finally:
            mon.set_events(self.TOOL, 0)
            for ev in events.values():
                mon.register_callback(self.TOOL, ev, None)
            mon.free_tool_id(self.TOOL)
        return log, levels

    def channel_body(self, log, levels):
        ch = stackless.channel()

        def sender():
            for i in range(3):
                ch.send(i)

        def receiver():
            for _ in range(3):
                log.append(("got", ch.receive()))
                levels.append(stackless.current.nesting_level)

        self.spawn(sender)
        self.spawn(receiver)
        stackless.run()

    def test_channel_operations(self):
        hard, _ = self.watch(False, self.channel_body)
        soft, levels = self.watch(True, self.channel_body)
        self.assertEqual(soft, hard)
        kinds = [e[0] for e in soft]
        self.assertNotIn("raise", kinds)
        self.assertEqual(kinds.count("return"), kinds.count("call"))
        self.assertEqual(kinds.count("call"), 6)
        self.assertEqual([e for e in soft if e[0] == "got"],
                         [("got", 0), ("got", 1), ("got", 2)])

    def generator_body(self, log, levels):
        ch = stackless.channel()

        def gen():
            for _ in range(2):
                yield ch.receive()

        def consumer():
            g = gen()
            for _ in range(2):
                log.append(("got", next(g)))

        def producer():
            for i in range(2):
                ch.send(i)

        self.spawn(consumer)
        self.spawn(producer)
        stackless.run()

    def test_generator_resumed_by_next(self):
        hard, _ = self.watch(False, self.generator_body)
        soft, _ = self.watch(True, self.generator_body)
        self.assertEqual(soft, hard)
        kinds = [e[0] for e in soft]
        self.assertNotIn("raise", kinds)
        self.assertEqual(kinds.count("return"), kinds.count("call"))

    def test_unwatched_again(self):
        # Without the tool, the same code switches softly again.
        self.watch(True, self.channel_body)
        levels = []
        self.channel_body([], levels)
        self.assertEqual(levels, [0, 0, 0])


class InteroperationTest(SoftTestCase):
    """Hard- and soft-switched tasklets resume each other."""

    def test_hard_resumed_by_soft_and_soft_by_hard(self):
        ch = stackless.channel()
        log = []

        def hard():
            # Blocks under a C call (map): has C state there.
            def get(_):
                v = ch.receive()
                log.append(("hard got", v, stackless.current.restorable))

            list(map(get, range(2)))

        def soft():
            ch.send("a")        # resumes the hard one softly
            log.append(("soft", stackless.current.restorable))
            ch.send("b")

        th = self.spawn(hard)
        self.spawn(soft)
        stackless.run()
        self.assertFalse(th.alive)
        self.assertEqual(log, [("hard got", "a", False), ("soft", True),
                               ("hard got", "b", False)])

    def test_main_and_tasklets(self):
        # Main is switched hard; the tasklets it runs, softly among them.
        ch = stackless.channel()
        out = []

        def producer():
            for i in range(5):
                ch.send(i)

        self.spawn(producer)
        for _ in range(5):
            out.append(ch.receive())
        self.assertEqual(out, list(range(5)))

    def test_started_from_c_callable(self):
        # A tasklet whose function is not a Python function starts with a
        # C call: it is hard, and still ends and switches properly.
        ch = stackless.channel()
        t = self.spawn(ch.send, 5)
        t2 = self.spawn(lambda: ch.receive())
        stackless.run()
        self.assertFalse(t.alive)
        self.assertFalse(t2.alive)

    def test_kill_throw_parked(self):
        ch = stackless.channel()
        log = []

        def body():
            try:
                ch.receive()
            except ZeroDivisionError:
                log.append("zde")
            try:
                ch.receive()
            except stackless.TaskletExit:
                log.append("exit")
                raise

        t = self.spawn(body)
        stackless.run()
        self.assertTrue(t.restorable)
        t.throw(ZeroDivisionError)
        self.assertTrue(t.blocked)
        t.kill()
        self.assertEqual(log, ["zde", "exit"])
        self.assertFalse(t.alive)

    def test_bad_arguments_end_the_tasklet(self):
        # A soft start that cannot bind its arguments raises in the tasklet,
        # and the error goes to main (S-11).
        def f(a):
            pass

        def g():
            stackless.schedule()

        self.spawn(g)
        self.spawn(f, 1, 2)
        with self.assertRaises(TypeError):
            stackless.run()

    def test_preemption_is_soft(self):
        # S-5: a tasklet interrupted by run(timeout) in a loop resumes
        # exactly where it was.
        counts = []

        def spin(n):
            total = 0
            for i in range(n):
                total += i
            counts.append(total)

        t = self.spawn(spin, 20000)
        interrupted = 0
        while t.alive:
            r = stackless.run(100)
            if r is not None:
                interrupted += 1
                self.assertTrue(r.restorable)
                r.insert()
        self.assertGreater(interrupted, 5)
        self.assertEqual(counts, [sum(range(20000))])


class FrameChainTest(SoftTestCase):
    """A suspended tasklet's frames are seen from no other tasklet."""

    def test_getframe_and_f_back(self):
        ch = stackless.channel()
        seen = {}

        def inner(name):
            f = sys._getframe()
            chain = []
            while f is not None:
                chain.append(f.f_code.co_name)
                f = f.f_back
            seen[name] = chain
            ch.receive()

        def a():
            inner("a")

        def b():
            inner("b")

        ta = self.spawn(a)
        tb = self.spawn(b)
        stackless.run()
        self.assertEqual(seen["a"], ["inner", "a"])
        self.assertEqual(seen["b"], ["inner", "b"])
        # The parked chains end at the tasklet's function.
        f = ta.frame
        self.assertEqual(f.f_code.co_name, "inner")
        self.assertEqual(f.f_back.f_code.co_name, "a")
        self.assertIsNone(f.f_back.f_back)
        self.assertNotIn(ta.frame, sys._current_frames().values())
        ch.send(None)
        ch.send(None)

    def test_traceback_of_tasklet(self):
        caught = []

        def body():
            stackless.schedule()
            try:
                1 / 0
            except ZeroDivisionError as e:
                caught.append([f.name for f in traceback.extract_stack()])

        self.spawn(body)
        self.spawn(stackless.schedule)
        stackless.run()
        self.assertEqual(caught, [["body"]])

    def test_deep_recursion(self):
        # 100,000-deep Python recursion in a tasklet is limited by the
        # recursion limit and the heap, not by the C stack.
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(150_000)
        self.addCleanup(sys.setrecursionlimit, old)
        ch = stackless.channel()
        result = []

        def down(n):
            if n == 0:
                return ch.receive()
            return down(n - 1) + 1

        def body():
            result.append(down(100_000))

        t = self.spawn(body)
        stackless.run()
        self.assertTrue(t.blocked)
        self.assertTrue(t.restorable)
        ch.send(0)
        self.assertEqual(result, [100_000])

    def test_recursion_limit_in_tasklet(self):
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(200)
        self.addCleanup(sys.setrecursionlimit, old)
        caught = []

        def down(n):
            return down(n + 1)

        def body():
            try:
                down(0)
            except RecursionError:
                caught.append(True)

        self.spawn(body)
        stackless.run()
        self.assertEqual(caught, [True])


class ToolsInTaskletsTest(SoftTestCase):

    def test_cprofile(self):
        # D-2: a profiler used inside tasklets that switch softly.
        ch = stackless.channel()

        def work():
            return sum(range(100))

        def a():
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(3):
                work()
                ch.send(None)
            prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).print_stats()
            out.append(s.getvalue())

        def b():
            for _ in range(3):
                ch.receive()

        out = []
        self.spawn(a)
        self.spawn(b)
        stackless.run()
        self.assertIn("work", out[0])

    def test_settrace_in_tasklet(self):
        ch = stackless.channel()
        events = []

        def tracer(frame, event, arg):
            events.append((event, frame.f_code.co_name))
            return tracer

        def helper():
            return 1

        def a():
            sys.settrace(tracer)
            ch.receive()
            helper()
            sys.settrace(None)

        def b():
            ch.send(None)
            helper()

        self.spawn(a)
        self.spawn(b)
        stackless.run()
        names = {name for _, name in events}
        self.assertIn("helper", names)
        # b's frames ran untraced.
        self.assertNotIn("b", names)


if __name__ == "__main__":
    unittest.main()
