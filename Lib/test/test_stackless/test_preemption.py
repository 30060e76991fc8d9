"""Where a tasklet stopped by run(timeout) resumes (spec S-5, T-5, T-7).

A frame stops at a tick of the eval breaker: before the work of RESUME
and of every backward jump (JUMP_BACKWARD, with or without an EXTENDED_ARG
prefix), after that of a call.  Wherever it stopped, the tasklet must go
on as if it had never stopped, every run(n) with n >= 1 must make
progress, and an exception thrown into it (kill(), throw()) must be raised
there, so that the `finally`, `except` and `with` blocks around the point
run.  The tests slice functions with run(n) for many budgets n, which
stops them at every kind of place, and check that they stopped at each
kind (so that a test cannot pass by never stopping there).
"""

import collections
import dis
import sys
import unittest

import stackless
from . import helpers
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


RUN_LIMIT = 200_000      # run() calls a sliced function may take


def long_loops_source(name, lines=120):
    """A function whose loops have bodies long enough for their
    JUMP_BACKWARD to need an EXTENDED_ARG prefix."""
    body = "\n".join("        x = x + %d" % (i % 7) for i in range(lines))
    return (f"def {name}(n):\n"
            f"    x = 0\n"
            f"    for i in range(n):\n{body}\n"
            f"    j = 0\n"
            f"    while j < n:\n{body}\n"
            f"        j += 1\n"
            f"    return x\n")


def make(source, name, **namespace):
    exec(source, namespace)
    return namespace[name]


long_loops = make(long_loops_source("long_loops"), "long_loops")


def short_loops(n):
    total = 0
    for i in range(n):
        total += i
    k = 0
    while k < n:
        k += 1
        total += square(k)
    total += sum(x for x in range(n))
    return total


def square(k):
    return k * k


Stop = collections.namedtuple("Stop", "name code prefixed arg offset")


def where(t):
    """Where the tasklet `t` stopped: the name of the instruction's opcode
    and its oparg, its code, whether it has an EXTENDED_ARG prefix, and its
    offset (past the prefix)."""
    f = t.frame
    code = f.f_code.co_code
    i = f.f_lasti
    prefixed = False
    while dis.opname[code[i]] == "EXTENDED_ARG":
        prefixed = True
        i += 2
    if i >= 2 and dis.opname[code[i - 2]] == "EXTENDED_ARG":
        prefixed = True
    return Stop(dis.opname[code[i]], f.f_code, prefixed, code[i + 1], i)


class PreemptionTestCase(helpers.StacklessTestCase):

    def slice(self, func, args, budget, stops=None):
        """Run func(*args) in a tasklet with run(budget) until it ends;
        return its result.  `stops` collects where() of each stop."""
        result = []
        t = self.spawn(lambda: result.append(func(*args)))
        calls = 0
        while t.alive:
            calls += 1
            if calls > RUN_LIMIT:
                self.fail(f"run({budget}) makes no progress")
            r = stackless.run(budget)
            if r is not None:
                self.assertIs(r, t)
                if stops is not None:
                    stops.append(where(r))
                r.insert()
        self.assertEqual(len(result), 1)
        return result[0]

    def stop_at(self, t, budget, count):
        """Run the new tasklet t with run(budget) until it has stopped
        `count` times; return where() of the last stop, or None if it
        ended first."""
        stop = None
        for _ in range(count):
            if stop is not None:
                t.insert()
            r = stackless.run(budget)
            if r is None:
                return None
            self.assertIs(r, t)
            stop = where(r)
        return stop


class ProgressTest(PreemptionTestCase):

    def test_run_1_makes_progress(self):
        # The livelock: with run(1), a tasklet stopped before RESUME or
        # JUMP_BACKWARD must not stop there again before it executes it.
        stops = []
        self.assertEqual(self.slice(short_loops, (5,), 1, stops),
                         short_loops(5))
        names = {stop.name for stop in stops}
        self.assertIn("RESUME", names)
        self.assertIn("JUMP_BACKWARD", names)

    def test_every_budget_resumes_exactly(self):
        expected = short_loops(30)
        for budget in range(1, 40):
            with self.subTest(budget=budget):
                self.assertEqual(self.slice(short_loops, (30,), budget),
                                 expected)

    def test_extended_arg_jump(self):
        # The crash: a JUMP_BACKWARD with an EXTENDED_ARG prefix resumed
        # without its high byte jumped into the middle of the code.
        ops = [(i.opname, i.arg) for i in dis.get_instructions(long_loops)]
        self.assertTrue(any(name == "JUMP_BACKWARD" and arg > 255
                            for name, arg in ops))
        expected = long_loops(4)
        prefixed_stops = 0
        for budget in (1, 2, 3, 5, 8, 13, 200):
            with self.subTest(budget=budget):
                stops = []
                self.assertEqual(self.slice(long_loops, (4,), budget, stops),
                                 expected)
                prefixed_stops += sum(
                    1 for stop in stops
                    if stop.name == "JUMP_BACKWARD" and stop.prefixed)
        self.assertGreater(prefixed_stops, 0)

    def test_generators_and_nested_calls(self):
        def gen(n):
            for i in range(n):
                yield square(i)

        def consume(n):
            return [v for v in gen(n)] + list(map(square, range(n)))

        stops = []
        for budget in range(1, 12):
            self.assertEqual(self.slice(consume, (10,), budget, stops),
                             consume(10))
        codes = {(stop.name, stop.code.co_name) for stop in stops}
        self.assertIn(("RESUME", "gen"), codes)
        self.assertIn(("RESUME", "square"), codes)

    def test_total_timeout_makes_progress(self):
        result = []

        def work():
            result.append(short_loops(10))

        t = self.spawn(work)
        calls = 0
        while t.alive:
            calls += 1
            self.assertLess(calls, RUN_LIMIT)
            r = stackless.run(1, totaltimeout=True)
            if r is not None:
                r.insert()
        self.assertEqual(result, [short_loops(10)])

    def test_budget_spent_in_a_schedule_callback(self):
        # Tasklets that loop on schedule() with a schedule callback: a
        # tick in the callback (C state below the frame) defers the
        # preemption.  It was then retried after a whole budget, which,
        # ticks falling in and out of the callback in step, ran out in
        # the callback again, for ever: run() never returned.
        calls = []
        spins = []

        def spin():
            for i in range(20000):
                stackless.schedule()
            spins.append(i)

        stackless.set_schedule_callback(lambda *args: calls.append(1))
        try:
            for budget in range(1, 60):
                with self.subTest(budget=budget):
                    ch = stackless.channel()
                    blocked = self.spawn(ch.receive)
                    spinners = [self.spawn(spin), self.spawn(spin)]
                    r = stackless.run(budget, totaltimeout=True)
                    self.assertIn(r, spinners + [blocked])
                    self.assertEqual(spins, [])   # preempted, not ended
                    for t in spinners + [blocked]:
                        t.kill()
                    del calls[:]
        finally:
            stackless.set_schedule_callback(None)

    def test_trace_events_unchanged_by_preemption(self):
        # The instruction stopped before runs whole when the tasklet
        # resumes: the events of its instrumented form ('call' of RESUME,
        # the 'line' of a backward jump) come once each, as unsliced.
        def traced(n):
            events = []

            def tracer(frame, event, arg):
                if frame.f_code in (short_loops.__code__, square.__code__):
                    events.append((event, frame.f_code.co_name,
                                   frame.f_lineno))
                return tracer

            sys.settrace(tracer)
            try:
                short_loops(n)
            finally:
                sys.settrace(None)
            return events

        expected = self.slice(traced, (4,), 10 ** 9)
        self.assertIn(("call", "square", square.__code__.co_firstlineno),
                      expected)
        for budget in (1, 2, 3, 7):
            with self.subTest(budget=budget):
                stops = []
                self.assertEqual(self.slice(traced, (4,), budget, stops),
                                 expected)
                self.assertTrue(stops)


class ThrowIntoStoppedTest(PreemptionTestCase):
    """kill() and throw() into a tasklet wherever run(n) stopped it."""

    def kill_at_every_stop(self, func, max_stops=60, budgets=(1, 2, 3)):
        """For each budget and each k, start func(log) in a tasklet, let
        run(budget) stop it k times, kill it; return [(stop, log)]."""
        seen = []
        for budget in budgets:
            for k in range(1, max_stops):
                log = []
                t = self.spawn(func, log)
                stop = self.stop_at(t, budget, k)
                if stop is None:
                    break
                t.kill()
                self.assertFalse(t.alive)
                seen.append((stop, log))
        self.assertTrue(seen)
        return seen

    def test_kill_runs_finally_of_infinite_loop(self):
        def spin(log):
            try:
                while True:
                    pass
            finally:
                log.append("finally")

        for budget in (1, 2, 3, 100):
            with self.subTest(budget=budget):
                log = []
                t = self.spawn(spin, log)
                stop = self.stop_at(t, budget, 3)
                self.assertEqual(stop.name, "JUMP_BACKWARD")
                t.kill()
                self.assertFalse(t.alive)
                self.assertEqual(log, ["finally"])

    def test_kill_in_try_finally_at_every_stop(self):
        def f(log):
            try:
                log.append("try")
                for i in range(1000):
                    square(i)
                while True:
                    pass
            finally:
                log.append("finally")

        seen = self.kill_at_every_stop(f)
        for stop, log in seen:
            if stop.code is f.__code__ and stop.name == "RESUME":
                # Stopped before f's first instruction: the try has not
                # begun, as with an exception raised there on stock.
                self.assertEqual(log, [])
            else:
                self.assertEqual(log, ["try", "finally"], stop)
        names = {(stop.name, stop.code.co_name) for stop, _ in seen}
        self.assertIn(("JUMP_BACKWARD", "f"), names)
        self.assertIn(("RESUME", "square"), names)

    def test_kill_in_try_finally_with_extended_arg(self):
        # A loop inside try:, whose jump needs a prefix.
        body = "\n".join("            x = x + %d" % (i % 7) for i in range(100))
        source = ("def body(log):\n"
                  "    x = 0\n"
                  "    try:\n"
                  "        while True:\n" + body + "\n"
                  "    finally:\n"
                  "        log.append('finally')\n")
        f = make(source, "body")
        self.assertTrue(any(i.opname == "JUMP_BACKWARD" and i.arg > 255
                            for i in dis.get_instructions(f)))
        seen = self.kill_at_every_stop(f, max_stops=12,
                                       budgets=(1, 2, 3, 5, 8))
        prefixed = 0
        for stop, log in seen:
            if stop.name == "JUMP_BACKWARD" and stop.prefixed:
                prefixed += 1
            if stop.name == "RESUME":
                self.assertEqual(log, [])
            else:
                self.assertEqual(log, ["finally"], stop)
        self.assertGreater(prefixed, 0)

    def test_kill_in_with_at_every_stop(self):
        class CM:
            def __init__(self, log):
                self.log = log

            def __enter__(self):
                self.log.append("enter")

            def __exit__(self, tp, value, tb):
                self.log.append(("exit", tp))

        def f(log):
            with CM(log):
                for i in range(500):
                    square(i)
                while True:
                    pass

        entered = next(i.offset for i in dis.get_instructions(f)
                       if i.opname == "BEFORE_WITH")
        seen = self.kill_at_every_stop(f)
        for stop, log in seen:
            if (stop.code is square.__code__
                    or stop.code is f.__code__ and stop.offset > entered):
                self.assertEqual(log, ["enter", ("exit", TaskletExit)], stop)
            else:
                # Before the block was entered: no __exit__.
                self.assertIn(log, ([], ["enter"]), stop)
        self.assertTrue(any(stop.name == "JUMP_BACKWARD"
                            and stop.code is f.__code__
                            for stop, _ in seen))

    def test_throw_caught_by_except_base_exception(self):
        def f(log):
            while True:
                try:
                    while True:
                        pass
                except BaseException as e:
                    log.append(type(e))
                    return

        for budget in (1, 2, 3, 50):
            with self.subTest(budget=budget):
                log = []
                t = self.spawn(f, log)
                stop = self.stop_at(t, budget, 4)
                self.assertEqual(stop.name, "JUMP_BACKWARD")
                t.throw(ValueError)
                self.assertFalse(t.alive)
                self.assertEqual(log, [ValueError])

    def test_throw_pending_into_generator_stopped_at_resume(self):
        # A generator stopped at the RESUME after its yield (oparg 1),
        # inside its try.
        def gen(log):
            try:
                while True:
                    yield 1
            finally:
                log.append("gen finally")

        def f(log):
            try:
                for _ in gen(log):
                    pass
            except ValueError:
                log.append("caught")

        found = False
        for k in range(1, 40):
            log = []
            t = self.spawn(f, log)
            stop = self.stop_at(t, 1, k)
            if (stop.name, stop.code.co_name, stop.arg) == ("RESUME", "gen", 1):
                t.throw(ValueError, pending=True)
                stackless.run()
                self.assertEqual(log, ["gen finally", "caught"])
                found = True
                break
            t.kill()
        self.assertTrue(found)

    def test_collected_stopped_tasklet_runs_finally(self):
        import gc

        log = []

        def spin():
            try:
                while True:
                    pass
            finally:
                log.append("finally")

        t = stackless.tasklet(spin)()
        self.assertIs(stackless.run(20), t)
        del t
        gc.collect()
        self.assertEqual(log, ["finally"])


if __name__ == "__main__":
    unittest.main()
