"""Pickling tasklets, their frames and channels (spec P-2 .. P-5, P-13).

A tasklet pickled in the middle of its work and unpickled resumes where
it stopped and ends with the results of a run that was never interrupted.
A state that does not fit its code is refused before anything runs.
"""

import copy
import copyreg
import io
import os
import pickle
import subprocess
import sys
import traceback
import types
import unittest

import stackless
from stackless import _wrap

from test.test_stackless.helpers import StacklessTestCase, load_tests  # noqa: F401

LOG = []
RESULTS = []


class Manager:
    def __enter__(self):
        LOG.append("enter")
        return self

    def __exit__(self, tp, value, tb):
        LOG.append(("exit", tp))
        return False


def body(ch):
    """Blocks on ch at eleven places: in a with block, a finally, an
    except clause, a dict and a list comprehension, an f-string."""
    total = 0
    for i in range(3):
        try:
            with Manager():
                total += ch.receive() * i
        finally:
            LOG.append(("finally", i))
    try:
        raise KeyError("k")
    except KeyError:
        try:
            ch.receive()
        except ValueError:
            pass
        LOG.append(("handled", sys.exc_info()[0]))
    d = {k: ch.receive() for k in "ab"}
    squares = [ch.receive() + j for j in range(2)]
    s = f"{ch.receive()}-{total}"
    return total, d, squares, s


def runner(ch):
    r = body(ch)
    RESULTS.append(r)


def receiver(ch, n):
    x = n * 2
    v = ch.receive()
    return x + v


def two_deep(ch, n):
    r = receiver(ch, n)
    RESULTS.append(r)


def count_to(n):
    total = 0
    for i in range(n):
        total += i
        if i % 7 == 0:
            total -= 1
    RESULTS.append(total)


def recurse(ch, n):
    if n == 0:
        return ch.receive()
    return recurse(ch, n - 1) + 1


def collect(ch, n):
    # Not RESULTS.append(recurse(...)): the list would be on the stack
    # while the tasklet waits, and a pickle holds a copy of it.
    r = recurse(ch, n)
    RESULTS.append(r)


def sort_blocking(ch):
    # The key function runs under sorted(), C code: it blocks with its
    # C stack, and its frames cannot be restored.
    return sorted([3, 1, 2], key=lambda x: ch.receive() if x == 3 else x)


def catch_invalid(ch):
    try:
        sort_blocking(ch)
    except RuntimeError as e:
        RESULTS.append(str(e))


def quiet_tracer(frame, event, arg):
    return None


def dumps_c(obj, proto):
    return pickle.dumps(obj, proto)


def dumps_py(obj, proto):
    f = io.BytesIO()
    pickle._Pickler(f, proto).dump(obj)
    return f.getvalue()


def loads_py(data):
    return pickle._Unpickler(io.BytesIO(data)).load()


PICKLERS = [("C", dumps_c, pickle.loads), ("Python", dumps_py, loads_py)]


class PickleTestCase(StacklessTestCase):
    # Only frames that switched softly can be restored.
    both_modes = False

    def setUp(self):
        super().setUp()
        LOG.clear()
        RESULTS.clear()

    def round_trip(self, obj, proto=pickle.HIGHEST_PROTOCOL, which=0):
        _, dumps, loads = PICKLERS[which]
        return loads(dumps(obj, proto))


class TaskletStates(PickleTestCase):
    """P-2, P-3: every state of a tasklet, both picklers, all protocols."""

    def test_current_refused(self):
        with self.assertRaisesRegex(
                RuntimeError,
                "You cannot __reduce__ the tasklet which is current."):
            pickle.dumps(stackless.current)

    def test_new(self):
        t = self.round_trip(stackless.tasklet())
        self.assertIsInstance(t, stackless.tasklet)
        self.assertFalse(t.alive)
        self.assertIsNone(t.frame)

    def test_bound_to_function_only(self):
        t = self.round_trip(stackless.tasklet(count_to))
        self.assertFalse(t.alive)
        t(10)
        stackless.run()
        self.assertEqual(RESULTS, [43])

    def test_bound_not_started(self):
        orig = stackless.tasklet(count_to)(10)
        orig.remove()
        t = self.round_trip(orig)
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        t.insert()
        stackless.run()
        self.assertEqual(RESULTS, [43])

    def test_dead(self):
        t = stackless.tasklet(count_to)(3)
        stackless.run()
        self.assertFalse(t.alive)
        t2 = self.round_trip(t)
        self.assertFalse(t2.alive)

    def test_blocked_all_picklers_and_protocols(self):
        for name, dumps, loads in PICKLERS:
            for proto in range(pickle.HIGHEST_PROTOCOL + 1):
                with self.subTest(pickler=name, protocol=proto):
                    RESULTS.clear()
                    ch = stackless.channel()
                    t = stackless.tasklet(two_deep)(ch, 5)
                    stackless.run()
                    self.assertTrue(t.blocked)
                    ch2, t2 = loads(dumps((ch, t), proto))
                    self.assertIsNot(t2, t)
                    self.assertTrue(t2.blocked)
                    self.assertEqual(ch2.balance, -1)
                    self.assertEqual(t2.frame.f_code.co_name, "receiver")
                    self.assertEqual(t2.frame.f_back.f_code.co_name,
                                     "two_deep")
                    self.assertEqual(t2.frame.f_locals["x"], 10)
                    ch2.send(7)
                    self.assertFalse(t2.alive)
                    self.assertEqual(RESULTS, [17])
                    # The original is untouched.
                    ch.send(1)
                    self.assertEqual(RESULTS, [17, 11])

    def test_paused_tasklet_alone_is_not_blocked(self):
        # A tasklet whose frames do not refer to its channel comes back
        # paused; resumed, it takes its tempval as the result.
        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 1)
        stackless.run()
        state = t.__reduce__()[2]
        frames = state[3]
        self.assertEqual([type(f) for f in frames], [_wrap.frame_state] * 2)
        t2 = stackless.tasklet()
        # Replace the channel in the frames' slots with a new one.
        other = stackless.channel()
        new_frames = []
        for fs in frames:
            cls, args = fs.__reduce__()
            args = tuple(other if a is ch else a for a in args)
            new_frames.append(cls(*args))
        t2.__setstate__(state[:3] + (new_frames,) + state[4:])
        self.assertFalse(t2.blocked)
        self.assertTrue(t2.paused)
        t2.tempval = 30
        t2.insert()
        stackless.run()
        self.assertEqual(RESULTS, [32])
        ch.send(0)

    def test_copy_and_deepcopy(self):
        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 2)
        stackless.run()
        for f in (copy.copy, copy.deepcopy):
            with self.subTest(f=f.__name__):
                RESULTS.clear()
                t2 = f(t)
                self.assertIsNot(t2, t)
                self.assertTrue(t2.alive)
                t2.frame.f_locals  # inspectable
        ch.send(0)
        self.assertEqual(RESULTS, [4])

    def test_flags_and_tempval(self):
        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 2)
        stackless.run()
        t.remove() if t.scheduled and not t.blocked else None
        t.set_ignore_nesting(True)
        t.block_trap = True
        t2 = self.round_trip(t)
        self.assertTrue(t2.ignore_nesting)
        self.assertTrue(t2.block_trap)
        ch.send(0)

    def test_tracing_state(self):
        # P-2: trace and profile functions only with
        # PICKLEFLAGS_PRESERVE_TRACING_STATE.
        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 2)
        stackless.run()
        t.trace_function = quiet_tracer
        t.profile_function = quiet_tracer
        old = stackless.pickle_flags()
        self.addCleanup(stackless.pickle_flags, old, -1)
        t2 = self.round_trip(t)
        self.assertIsNone(t2.trace_function)
        stackless.pickle_flags(stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE,
                               -1)
        t3 = self.round_trip(t)
        self.assertIs(t3.trace_function, quiet_tracer)
        self.assertIs(t3.profile_function, quiet_tracer)
        for x in (t, t3):
            x.trace_function = x.profile_function = None
        ch.send(0)

    def test_setstate_only_on_new(self):
        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 2)
        stackless.run()
        state = t.__reduce__()[2]
        with self.assertRaises(RuntimeError):
            t.__setstate__(state)
        with self.assertRaises(RuntimeError):
            stackless.current.__setstate__(state)
        ch.send(0)


class ResumeExactly(PickleTestCase):
    """Resumed after a round trip, a tasklet ends as an uninterrupted run
    does: locals, value stack, with and try blocks, handled exceptions."""

    def run_body(self, pickle_at=None, which=0):
        LOG.clear()
        RESULTS.clear()
        ch = stackless.channel()
        t = stackless.tasklet(runner)(ch)
        v = 1
        while True:
            stackless.run()
            if not t.alive:
                break
            if v == pickle_at:
                ch, t2 = self.round_trip((ch, t), which=which)
                t.kill()
                t = t2
            ch.send(v)
            v += 1
        log = [x for x in LOG if x != ("exit", stackless.TaskletExit)]
        if pickle_at is not None:
            # The killed original ran its finally clause once more.
            log.remove(("finally", min(pickle_at - 1, 2))) \
                if pickle_at <= 3 else None
        return list(RESULTS), log

    def test_every_stop(self):
        reference = self.run_body()
        self.assertEqual(reference[0], [(8, {"a": 5, "b": 6}, [7, 9],
                                         "9-8")])
        for which in (0, 1):
            for at in range(1, 12):
                with self.subTest(pickler=PICKLERS[which][0], stop=at):
                    self.assertEqual(self.run_body(at, which), reference)

    def test_preempted(self):
        # run(n) stops the tasklet in its loop, before a JUMP_BACKWARD or
        # a RESUME; pickled there, it goes on with the instruction.
        t = stackless.tasklet(count_to)(20000)
        interruptions = 0
        while t.alive:
            t2 = stackless.run(50)
            if t2 is None:
                break
            interruptions += 1
            if interruptions % 25 == 0:
                t3 = self.round_trip(t2)
                t2.kill()
                t3.insert()
                t = t3
            else:
                t2.insert()
        self.assertGreater(interruptions, 25)
        self.assertEqual(RESULTS, [199987142])

    def test_deep_chain(self):
        # 10,000 frames: pickled flat, rebuilt in one data stack.
        depth = 10_000
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(depth + 1000)
        try:
            ch = stackless.channel()
            t = stackless.tasklet(collect)(ch, depth)
            stackless.run()
            self.assertTrue(t.restorable)
            ch2, t2 = self.round_trip((ch, t))
            self.assertEqual(t2.recursion_depth, depth + 2)
            ch2.send(0)
            self.assertEqual(RESULTS, [depth])
            t.kill()
        finally:
            sys.setrecursionlimit(old)

    def test_many_tasklets(self):
        n = 100_000
        ch = stackless.channel()
        tasklets = [stackless.tasklet(two_deep)(ch, i) for i in range(n)]
        stackless.run()
        self.assertEqual(ch.balance, -n)
        data = pickle.dumps((ch, tasklets))
        ch2, tasklets2 = pickle.loads(data)
        self.assertEqual(ch2.balance, -n)
        for i in range(n):
            ch2.send(i)
        self.assertEqual(RESULTS, [3 * i for i in range(n)])
        del tasklets2
        for t in tasklets:
            t.kill()


def numbers(n):
    total = 0
    for i in range(n):
        x = yield i
        total += x or 0
    return total


def delegate(n):
    r = yield from numbers(n)
    yield ("done", r)


@types.coroutine
def pause():
    v = yield "paused"
    return v


async def awaiting():
    a = await pause()
    b = await pause()
    return a + b


async def agen_numbers(n):
    for i in range(n):
        yield i


def gen_with_exc(ch):
    try:
        raise KeyError("inner")
    except KeyError:
        v = ch.receive()
        LOG.append(("in gen", sys.exc_info()[0], v))
        yield v
    LOG.append(("after", sys.exc_info()[0]))
    yield 0


def loop_over_gen(ch):
    try:
        raise ValueError("outer")
    except ValueError:
        for x in gen_with_exc(ch):
            LOG.append(("loop", sys.exc_info()[0], x))
    LOG.append(("end", sys.exc_info()[0]))


async def awaited(ch):
    try:
        return ch.receive() * 2
    finally:
        LOG.append("awaited finally")


async def awaiting_twice(ch):
    a = await awaited(ch)
    b = await awaited(ch)
    return a + b


def drive_coroutine(ch):
    c = awaiting_twice(ch)
    try:
        c.send(None)
    except StopIteration as e:
        RESULTS.append(e.value)


class Generators(PickleTestCase):
    """P-10: generators, coroutines and async generators, on their own
    and in a tasklet's chain."""

    def each_pickler(self):
        for name, dumps, loads in PICKLERS:
            for proto in range(pickle.HIGHEST_PROTOCOL + 1):
                with self.subTest(pickler=name, protocol=proto):
                    yield lambda obj: loads(dumps(obj, proto))

    def test_suspended(self):
        for rt in self.each_pickler():
            g = numbers(5)
            self.assertEqual((next(g), g.send(10)), (0, 1))
            g2 = rt(g)
            self.assertIsNot(g2, g)
            self.assertEqual(g2.gi_frame.f_locals["total"], 10)
            self.assertEqual((g2.send(1), list(g2)), (2, [3, 4]))
            self.assertEqual(list(g), [2, 3, 4])

    def test_not_started_and_finished(self):
        g = numbers(3)
        self.assertEqual(list(self.round_trip(g)), [0, 1, 2])
        self.assertEqual(list(g), [0, 1, 2])
        g2 = self.round_trip(g)
        self.assertEqual(list(g2), [])
        with self.assertRaises(StopIteration):
            next(g2)

    def test_return_value(self):
        g = numbers(2)
        next(g)
        g.send(3)
        g2 = self.round_trip(g)
        with self.assertRaises(StopIteration) as cm:
            g2.send(4)
        self.assertEqual(cm.exception.value, 7)

    def test_yield_from(self):
        # A shallow copy shares the generator delegated to.
        for f in (self.round_trip, copy.deepcopy, copy.copy):
            with self.subTest(f=f):
                g = delegate(3)
                self.assertEqual((next(g), g.send(5)), (0, 1))
                g2 = f(g)
                self.assertIsNotNone(g2.gi_yieldfrom)
                self.assertEqual(list(g2), [2, ("done", 5)])
                self.assertEqual(list(g), [("done", None)] if f is copy.copy
                                 else [2, ("done", 5)])
        g = delegate(3)
        next(g)
        g3 = self.round_trip(g)
        g3.close()
        self.assertIsNone(g3.gi_frame)

    def test_throw_into_restored(self):
        g = numbers(5)
        next(g)
        g2 = self.round_trip(g)
        with self.assertRaises(ZeroDivisionError):
            g2.throw(ZeroDivisionError)

    def test_coroutine(self):
        c = awaiting()
        self.assertEqual(c.send(None), "paused")
        c2 = self.round_trip(c)
        self.assertEqual(c2.send(2), "paused")
        with self.assertRaises(StopIteration) as cm:
            c2.send(3)
        self.assertEqual(cm.exception.value, 5)
        c.close()

    def test_async_generator(self):
        ag = agen_numbers(3)
        with self.assertRaises(StopIteration) as cm:
            ag.asend(None).send(None)
        self.assertEqual(cm.exception.value, 0)
        ag2 = self.round_trip(ag)
        with self.assertRaises(StopIteration) as cm:
            ag2.asend(None).send(None)
        self.assertEqual(cm.exception.value, 1)

    def test_coroutine_wrapper(self):
        c = awaiting()
        w = c.__await__()
        self.assertEqual(next(w), "paused")
        w2 = self.round_trip(w)
        self.assertEqual(w2.send(1), "paused")
        with self.assertRaises(StopIteration) as cm:
            w2.send(2)
        self.assertEqual(cm.exception.value, 3)
        c.close()

    def test_async_generator_awaitables(self):
        ag = agen_numbers(3)
        aw = ag.asend(None)
        aw2 = self.round_trip(aw)
        aw.close()
        self.assertIsNot(aw2, aw)
        with self.assertRaises(StopIteration) as cm:
            aw2.send(None)
        self.assertEqual(cm.exception.value, 0)
        # Each on its own generator: closing the original closes it.
        original = agen_numbers(3).aclose()
        closing = self.round_trip(original)
        original.close()
        with self.assertRaises(StopIteration):
            closing.send(None)
        original = agen_numbers(3).athrow(KeyError("k"))
        thrower = self.round_trip(original)
        original.close()
        with self.assertRaises(KeyError):
            thrower.send(None)
        for state, exc in [((ag, None, 7, 0), ValueError),
                           ((42, None, 0, 0), TypeError),
                           ((ag, 1, 0, 0), ValueError),
                           ((ag, None, 0), TypeError)]:
            with self.subTest(state=state):
                with self.assertRaises(exc):
                    _wrap.async_generator_asend().__setstate__(state)

    def test_async_generator_hooks(self):
        # P-11: by default the hooks of the unpickling thread; with
        # PICKLEFLAGS_PRESERVE_AG_FINALIZER the finalizer pickled; with
        # PICKLEFLAGS_RESET_AG_FINALIZER none until it is iterated.
        calls = []
        old_hooks = sys.get_asyncgen_hooks()
        self.addCleanup(sys.set_asyncgen_hooks, *old_hooks)
        old_flags = stackless.pickle_flags()
        self.addCleanup(stackless.pickle_flags, old_flags, -1)
        sys.set_asyncgen_hooks(firstiter=lambda ag: calls.append("first"),
                               finalizer=len)
        ag = agen_numbers(3)
        with self.assertRaises(StopIteration):
            ag.asend(None).send(None)
        self.assertEqual(calls, ["first"])
        ag2 = self.round_trip(ag)
        self.assertEqual(calls, ["first", "first"])
        stackless.pickle_flags(stackless.PICKLEFLAGS_PRESERVE_AG_FINALIZER,
                               -1)
        ag3 = self.round_trip(ag)
        self.assertEqual(calls, ["first", "first"])
        stackless.pickle_flags(stackless.PICKLEFLAGS_RESET_AG_FINALIZER, -1)
        ag4 = self.round_trip(ag)
        self.assertEqual(calls, ["first", "first"])
        with self.assertRaises(StopIteration):
            ag4.asend(None).send(None)
        self.assertEqual(calls, ["first", "first", "first"])
        for a in (ag, ag2, ag3, ag4):
            with self.assertRaises(StopIteration):
                a.aclose().send(None)

    def test_tasklet_inside_generator(self):
        # The FOR_ITER over the generator switches softly once it is
        # specialized: run the loop to its end twice first.
        for warm in range(3):
            LOG.clear()
            ch = stackless.channel()
            t = stackless.tasklet(loop_over_gen)(ch)
            stackless.run()
            if warm < 2:
                ch.send(0)
        self.assertTrue(t.restorable)
        state = t.__reduce__()[2]
        self.assertEqual([type(f).__name__ for f in state[3]],
                         ["frame_state", "generator"])
        ch2, t2 = self.round_trip((ch, t))
        t.kill()
        LOG.clear()
        ch2.send(42)
        self.assertEqual(LOG, [
            ("in gen", KeyError, 42), ("loop", ValueError, 42),
            ("after", ValueError), ("loop", ValueError, 0),
            ("end", None)])

    def test_tasklet_inside_coroutines(self):
        # drive_coroutine() -> send() (a shim) -> awaiting_twice() -> awaited()
        # -> receive(): a chain of two coroutines.
        for warm in range(3):
            ch = stackless.channel()
            t = stackless.tasklet(drive_coroutine)(ch)
            stackless.run()
            if warm < 2:
                ch.send(1)
                ch.send(2)
        self.assertTrue(t.restorable)
        kinds = [type(f).__name__ for f in t.__reduce__()[2][3]]
        self.assertEqual(kinds, ["frame_state", "cframe", "coroutine",
                                 "coroutine"])
        ch2, t2 = self.round_trip((ch, t))
        t.kill()
        LOG.clear()
        RESULTS.clear()
        ch2.send(5)
        ch2.send(6)
        self.assertEqual(LOG, ["awaited finally", "awaited finally"])
        self.assertEqual(RESULTS, [22])

    def test_running_generator_not_linked(self):
        # A running generator whose tasklet is not unpickled stays
        # running: nothing can resume or close it.
        for warm in range(3):
            ch = stackless.channel()
            t = stackless.tasklet(loop_over_gen)(ch)
            stackless.run()
            if warm < 2:
                ch.send(0)
        gen = t.__reduce__()[2][3][1]
        g2 = self.round_trip(gen)
        self.assertTrue(g2.gi_running)
        with self.assertRaisesRegex(ValueError, "already executing"):
            next(g2)
        t.kill()

    def test_bad_states(self):
        g = numbers(5)
        next(g)
        new, (code, state) = g.__reduce__() if False else \
            copyreg.dispatch_table[types.GeneratorType](g)
        frame = state[2]
        fargs = list(frame.__reduce__()[1])
        other = _wrap.frame_state(*([delegate.__code__] + fargs[1:])) \
            if False else None
        bad = [
            ((state[0] + 1,) + state[1:], ValueError),
            (state[:1] + (5,) + state[2:], ValueError),
            (state[:1] + ("x",) + state[2:], ValueError),
            (state[:2] + (None,) + state[3:], TypeError),
            (state[:3] + (1,) + state[4:], TypeError),
            (state[:5] + (42,), TypeError),
            (state[:5], TypeError),
            (state[:1] + (2,) + state[2:], ValueError),
        ]
        for offset in (0, fargs[3] - 1, fargs[3] + 1):
            f2 = _wrap.frame_state(*(fargs[:3] + [offset] + fargs[4:]))
            bad.append((state[:2] + (f2,) + state[3:], ValueError))
        for st, exc in bad:
            with self.subTest(state=st):
                with self.assertRaises(exc):
                    new(code, st)
        with self.assertRaises(ValueError):
            new(receiver.__code__, state)
        with self.assertRaises(ValueError):
            new(delegate.__code__, state)
        self.assertEqual(list(new(code, state)), [1, 2, 3, 4])


def raiser(n):
    x = n * 3
    raise ValueError(x)


def catcher():
    try:
        raiser(4)
    except ValueError as e:
        return e.__traceback__


class Tracebacks(PickleTestCase):
    """P-12: a traceback pickles with its chain; its frames come back as
    frame objects to look at, each the f_back of the next."""

    def test_round_trip(self):
        tb = catcher()
        for rt in (self.round_trip, copy.deepcopy,
                   lambda tb: self.round_trip(tb, which=1)):
            with self.subTest(rt=rt):
                tb2 = rt(tb)
                self.assertIsInstance(tb2, types.TracebackType)
                self.assertEqual(traceback.format_tb(tb2),
                                 traceback.format_tb(tb))
                inner = tb2.tb_next.tb_frame
                self.assertEqual(inner.f_code, raiser.__code__)
                self.assertEqual(inner.f_locals["x"], 12)
                self.assertIs(inner.f_back, tb2.tb_frame)
                self.assertEqual(tb2.tb_lineno, tb.tb_lineno)
                inner.clear()

    def test_bad_states(self):
        tb = catcher()
        func, (states, lastis, linenos) = copyreg.dispatch_table[
            types.TracebackType](tb)
        for args in [([], [], []), (states, lastis[:1], linenos),
                     (states, lastis, None), ([1, 2], lastis, linenos)]:
            with self.subTest(args=args):
                with self.assertRaises((TypeError, ValueError)):
                    func(*args)


class ReduceFrameHook(PickleTestCase):
    """P-5: _wrap.set_reduce_frame(func) replaces what a tasklet's frames
    pickle as."""

    def test_hook(self):
        seen = []

        class Wrapped:
            def __init__(self, state):
                self.state = state

            def __reduce__(self):
                return (_wrap.frame_state, self.state.__reduce__()[1])

        def hook(frame):
            seen.append(frame)
            return Wrapped(_wrap.frame_state_of(frame))

        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 3)
        stackless.run()
        old = _wrap.set_reduce_frame(hook)
        try:
            self.assertIs(old, _wrap.frame_state_of)
            self.assertIs(_wrap.reduce_frame, hook)
            data = pickle.dumps((ch, t))
        finally:
            self.assertIs(_wrap.set_reduce_frame(old), hook)
        self.assertEqual(len(seen), 2)
        self.assertTrue(all(isinstance(f, types.FrameType) for f in seen))
        ch2, t2 = pickle.loads(data)
        ch2.send(1)
        self.assertEqual(RESULTS, [7])
        with self.assertRaises(TypeError):
            _wrap.set_reduce_frame(42)
        t.kill()


class InvalidFrames(PickleTestCase):
    """P-3: frames that ran C code come back invalid, and raise."""

    def test_invalid_frame_raises_and_handlers_below_run(self):
        ch = stackless.channel()
        t = stackless.tasklet(catch_invalid)(ch)
        stackless.run()
        self.assertFalse(t.restorable)
        state = t.__reduce__()[2]
        valid = [fs.valid for fs in state[3]]
        self.assertEqual(valid, [True, False, False])
        ch2, t2 = self.round_trip((ch, t))
        ch2.send(3)
        self.assertFalse(t2.alive)
        self.assertEqual(len(RESULTS), 1)
        self.assertRegex(RESULTS[0],
                         r"cannot execute invalid frame with '<lambda>'")
        t.kill()

    def test_module_code_keeps_its_globals_by_name(self):
        # Module code (run by exec(), through C) has its globals for
        # locals: its frame pickles them as its function's, by name.
        ch = stackless.channel()
        ns = globals()
        t = stackless.tasklet(exec)("CHANNEL.receive()", ns)
        ns["CHANNEL"] = ch
        self.addCleanup(ns.pop, "CHANNEL", None)
        stackless.run()
        frames = t.__reduce__()[2][3]
        module_frame = frames[-1].__reduce__()[1]
        self.assertEqual(module_frame[0].co_name, "<module>")
        self.assertIs(module_frame[2], Ellipsis)
        t2 = self.round_trip(t)
        self.assertTrue(t2.alive)
        t.kill()


class Channels(PickleTestCase):
    """P-4: a channel with its settings and blocked tasklets."""

    def test_settings(self):
        ch = stackless.channel()
        ch.preference = 1
        ch.schedule_all = True
        ch.close()
        ch2 = self.round_trip(ch)
        self.assertEqual(ch2.preference, 1)
        self.assertTrue(ch2.schedule_all)
        self.assertTrue(ch2.closing)
        self.assertEqual(ch2.balance, 0)

    def test_blocked_senders_in_order(self):
        ch = stackless.channel()
        senders = [stackless.tasklet(ch.send)(i) for i in range(3)]
        stackless.run()
        self.assertEqual(ch.balance, 3)
        # ch.send is C code under the tasklet: its frames... there are
        # none; bound tasklets blocked in C pickle their (empty) chains.
        ch2 = self.round_trip(ch)
        self.assertEqual(ch2.balance, 3)
        for t in senders:
            t.kill()

    def test_bad_states(self):
        ch = stackless.channel()
        for state, exc in [
            (None, TypeError),
            ((1, 0), TypeError),
            ((1, 0, [1]), TypeError),
            ((2, 0, []), ValueError),
            ((0, 99, []), ValueError),
            ((1, 0, [stackless.current]), ValueError),
        ]:
            with self.subTest(state=state):
                with self.assertRaises(exc):
                    ch.__setstate__(state)
        self.assertEqual(ch.balance, 0)


class Malformed(PickleTestCase):
    """A state that does not fit its code is refused before anything
    runs: ValueError or TypeError, never a crash."""

    def blocked_state(self):
        ch = stackless.channel()
        t = stackless.tasklet(two_deep)(ch, 5)
        stackless.run()
        self.addCleanup(t.kill)
        return ch, t.__reduce__()[2]

    def frame_args(self, fs):
        return list(fs.__reduce__()[1])

    def check_refused(self, state, exc=(ValueError, TypeError)):
        t = stackless.tasklet()
        with self.assertRaises(exc):
            t.__setstate__(state)
        self.assertFalse(t.alive)
        return t

    def with_top_frame(self, state, **changes):
        frames = list(state[3])
        args = self.frame_args(frames[-1])
        names = ["code", "func", "locals", "index", "return_offset",
                 "valid", "nullmask"]
        for key, value in changes.items():
            args[names.index(key)] = value
        frames[-1] = _wrap.frame_state(*args)
        return state[:3] + (frames,) + state[4:]

    def test_old_layout(self):
        # The layout before 3.7's (version first, 6 items) is refused.
        ch, state = self.blocked_state()
        self.check_refused((1,) + state[:3] + (None, None), TypeError)

    def test_shapes(self):
        ch, state = self.blocked_state()
        self.check_refused(state[:4])
        self.check_refused(("flags",) + state[1:])
        self.check_refused((1 << 10,) + state[1:])
        self.check_refused(state[:3] + ([1, 2],) + state[4:])
        self.check_refused(state[:3] + ("frames",) + state[4:])
        self.check_refused(state[:4] + (42,))

    def test_bad_offsets(self):
        ch, state = self.blocked_state()
        top = state[3][-1]
        good = top.__reduce__()[1][3]
        for index in (0, 1, good - 1, good + 1, good + 2):
            with self.subTest(index=index):
                self.check_refused(self.with_top_frame(state, index=index))
        for ro in (0, 1, 2, 5, 100):
            with self.subTest(return_offset=ro):
                self.check_refused(self.with_top_frame(state,
                                                       return_offset=ro))
        with self.assertRaises(ValueError):
            self.with_top_frame(state, index=10 ** 6)
        with self.assertRaises(ValueError):
            self.with_top_frame(state, return_offset=-1)

    def test_stack_depth(self):
        ch, state = self.blocked_state()
        args = self.frame_args(state[3][-1])
        co = args[0]
        # A value more on the stack than the code has there, or one where
        # a local should be.
        for bad in (args + [None], args[:-1]):
            with self.subTest(slots=len(bad) - 7):
                try:
                    frames = state[3][:-1] + [_wrap.frame_state(*bad)]
                except ValueError:
                    continue
                self.check_refused(state[:3] + (frames,) + state[4:])
        with self.assertRaises(ValueError):
            _wrap.frame_state(*args, *([None] * (co.co_stacksize + 1)))

    def test_null_local_read(self):
        ch, state = self.blocked_state()
        args = self.frame_args(state[3][-1])
        co, mask = args[0], args[6]
        # x is read by a LOAD_FAST after the receive: it must be bound.
        i = co.co_varnames.index("x")
        self.assertFalse(mask & (1 << i))
        values = args[7:]
        del values[sum(1 for j in range(i) if not mask & (1 << j))]
        frames = list(state[3])
        frames[-1] = _wrap.frame_state(*args[:6], mask | (1 << i), *values)
        self.check_refused(state[:3] + (frames,) + state[4:])

    def test_foreign_code(self):
        ch, state = self.blocked_state()
        args = self.frame_args(state[3][-1])
        frames = list(state[3])
        for other in (count_to.__code__, body.__code__,
                      collect.__code__):
            with self.subTest(code=other.co_name):
                args2 = [other] + args[1:]
                try:
                    frames[-1] = _wrap.frame_state(*args2)
                except (ValueError, TypeError):
                    continue
                self.check_refused(state[:3] + (frames,) + state[4:])

    def test_generator_code_outside_generator(self):
        def gen():
            yield 1
        ch, state = self.blocked_state()
        args = self.frame_args(state[3][-1])
        frames = list(state[3])
        try:
            frames[-1] = _wrap.frame_state(gen.__code__, *args[1:])
        except (ValueError, TypeError):
            return
        self.check_refused(state[:3] + (frames,) + state[4:])

    def test_iterator_slot(self):
        # A FOR_ITER resumes over what it takes for an iterator.
        ch = stackless.channel()

        def loop(ch):
            for _ in range(3):
                ch.receive()

        t = stackless.tasklet(loop)(ch)
        stackless.run()
        self.addCleanup(t.kill)
        state = t.__reduce__()[2]
        args = self.frame_args(state[3][-1])
        values = args[7:]
        it_index = next(i for i, v in enumerate(values)
                        if type(v).__name__ == "range_iterator")
        for bad in (42, [1, 2], None):
            with self.subTest(bad=bad):
                values2 = list(values)
                values2[it_index] = bad
                frames = [_wrap.frame_state(*args[:7], *values2)]
                self.check_refused(state[:3] + (frames,) + state[4:])

    def test_frame_constructor(self):
        code = receiver.__code__
        for args, exc in [
            ((), TypeError),
            ((1, receiver, None, 0, 0, 1, 0), TypeError),
            ((code, 1, None, 0, 0, 1, 0), TypeError),
            ((code, receiver, {}, 0, 0, 1, 0), ValueError),
            ((code, receiver, None, "0", 0, 1, 0), TypeError),
            ((code, receiver, None, 0, 0, 2, 0), ValueError),
            ((code, receiver, None, 0, 0, 1, -1), TypeError),
            ((code, receiver, None, 0, 0, 1, 1 << 100), ValueError),
            (("no such shim", None, None, 0, 0, 1, 0), ValueError),
            (("gen_next", receiver, None, 0, 0, 1, 0), TypeError),
        ]:
            with self.subTest(args=args):
                with self.assertRaises(exc):
                    _wrap.frame_state(*args)


EXAMPLES = os.path.join(os.path.dirname(os.path.realpath(__file__)),
                        "..", "..", "..", "examples")


@unittest.skipUnless(os.path.exists(os.path.join(EXAMPLES, "migrate.py")),
                     "the repository's examples are not here")
class Examples(unittest.TestCase):
    """The migration examples: tasklets pickled in one process finish in
    another with the results of an uninterrupted run."""

    def run_example(self, *args):
        out = subprocess.run([sys.executable, *args], cwd=EXAMPLES,
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out.stdout

    def test_migrate(self):
        out = self.run_example("migrate.py", "20", "6")
        self.assertIn("agents that ran in two processes: 20 of 20", out)
        self.assertIn("the same as an uninterrupted run", out)

    def test_persist(self):
        out = self.run_example("persist.py")
        self.assertIn("processes used: 2", out)


if __name__ == "__main__":
    unittest.main()
