"""The pickling hooks of the original's unit tests (spec M-21.7 to M-21.9):
stackless.cframe, stackless._wrap (frame, set_reduce_frame, reduce_frame,
generator, async_generator_asend/athrow) and the tasklet state of 3.7's
layout (flag bits, 8 items, __del__ and zombies)."""

import gc
import inspect
import io
import pickle
import sys
import types
import unittest

import _stackless
import stackless
from stackless import _wrap

from test.test_stackless.helpers import StacklessTestCase, load_tests  # noqa: F401


PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def dumps_py(obj, protocol):
    f = io.BytesIO()
    pickle._Pickler(f, protocol).dump(obj)
    return f.getvalue()


def loads_py(data):
    return pickle._Unpickler(io.BytesIO(data)).load()


PICKLERS = [("C", pickle.dumps, pickle.loads), ("Python", dumps_py, loads_py)]

RESULTS = []


def receiver(ch, x):
    y = ch.receive()
    RESULTS.append(x + y)
    return x + y


def two_deep(ch, x):
    return receiver(ch, x * 2) + 1


def sender(ch, x):
    ch.send(x)
    RESULTS.append("sent")


def handling(ch):
    try:
        raise KeyError("handled")
    except KeyError:
        v = ch.receive()
        exc = sys.exc_info()[1]
        RESULTS.append((v, type(exc), exc.args,
                        exc.__traceback__ is not None))


def counting(n):
    # A loop long enough to be preempted in.
    total = 0
    for i in range(n):
        total += i
    RESULTS.append(total)


def sort_blocking(ch):
    # The key function runs under sorted(), C code: it blocks with its C
    # stack, and its frames cannot be restored.
    return sorted([3, 1, 2], key=lambda x: ch.receive() if x == 3 else x)


def catch_invalid(ch):
    try:
        sort_blocking(ch)
    except RuntimeError as e:
        RESULTS.append(str(e))


def quiet_tracer(frame, event, arg):
    return None


def seq_sender(ch, items):
    n = ch.send_sequence(items)
    RESULTS.append(n)


def sequence_gen(ch):
    yield 1
    yield 2
    yield 3


class CframeTest(StacklessTestCase):
    """M-21.7: stackless.cframe, the non-Python entries of a reduced
    frame list."""

    both_modes = False      # pickles of hard-switched tasklets do not run

    def setUp(self):
        super().setUp()
        RESULTS.clear()
        old = stackless.pickle_flags()
        self.addCleanup(stackless.pickle_flags, old, -1)

    def test_names(self):
        self.assertIs(stackless.cframe, _stackless.cframe)
        self.assertEqual(stackless.cframe.__name__, "cframe")

    def blocked(self, func=two_deep, *args):
        ch = stackless.channel()
        t = self.spawn(func, ch, *args)
        stackless.run()
        self.assertTrue(t.blocked)
        return ch, t

    def test_tracing_entry(self):
        ch, t = self.blocked(two_deep, 1)
        t.trace_function = quiet_tracer
        self.addCleanup(setattr, t, "trace_function", None)
        # Without flag 1, no tracing entry.
        stackless.pickle_flags(0, stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE)
        frames = t.__reduce__()[2][3]
        self.assertFalse(any(isinstance(f, stackless.cframe)
                             for f in frames))
        stackless.pickle_flags(stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE,
                               stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE)
        frames = t.__reduce__()[2][3]
        cf = frames[-1]
        self.assertIsInstance(cf, stackless.cframe)
        callable_, args, state = cf.__reduce__()
        self.assertIs(callable_, stackless.cframe)
        self.assertEqual(args, ())
        self.assertEqual(len(state), 5)
        valid, exec_name, params, i, n = state
        self.assertEqual(valid, 1)
        self.assertEqual(exec_name, "slp_restore_tracing")
        self.assertIs(params[1], quiet_tracer)
        # Absent slots: None in the tuple, their indexes in nulls.
        self.assertEqual(params[0], (1, 2))
        self.assertEqual(params[2:], (None, None))
        self.assertIsInstance(i, int)
        self.assertIsInstance(n, int)
        # It restores the trace function.
        for name, dumps, loads in PICKLERS:
            with self.subTest(pickler=name):
                t2 = loads(dumps(t, 2))
                self.assertIs(t2.trace_function, quiet_tracer)
                t2.trace_function = None
                t2.kill()
        ch.send(1)

    def test_cframe_round_trip(self):
        ch, t = self.blocked(two_deep, 1)
        t.trace_function = quiet_tracer
        t.profile_function = quiet_tracer
        self.addCleanup(setattr, t, "trace_function", None)
        self.addCleanup(setattr, t, "profile_function", None)
        stackless.pickle_flags(1, 1)
        cf = t.__reduce__()[2][3][-1]
        for proto in PROTOCOLS:
            for name, dumps, loads in PICKLERS:
                with self.subTest(protocol=proto, pickler=name):
                    cf2 = loads(dumps(cf, proto))
                    self.assertIsInstance(cf2, stackless.cframe)
                    self.assertEqual(cf2.__reduce__(), cf.__reduce__())
                    self.assertEqual(cf2.exec_name, "slp_restore_tracing")
        ch.send(1)

    def test_bound_tasklet_is_a_run_cframe(self):
        t = stackless.tasklet(receiver, (None, 1))
        frames = t.__reduce__()[2][3]
        self.assertEqual(len(frames), 1)
        state = frames[0].__reduce__()[2]
        self.assertEqual(state[1], "run_cframe")
        self.assertEqual(state[2], ((2,), receiver, (None, 1), None))
        t2 = pickle.loads(pickle.dumps(t))
        self.assertTrue(t2.alive)
        self.assertTrue(t2.paused)
        t2.bind(None)

    def test_send_sequence_state(self):
        # C-6: a tasklet stopped in send_sequence pickles mid-way; the
        # loop's state is a cframe.
        ch = stackless.channel()
        ch.preference = 1
        received = []
        t = self.spawn(seq_sender, ch, [10, 20, 30])
        stackless.run()
        received.append(ch.receive())
        self.assertTrue(t.blocked)
        frames = t.__reduce__()[2][3]
        seq = [f for f in frames if isinstance(f, stackless.cframe)]
        self.assertEqual(len(seq), 1)
        valid, exec_name, params, i, n = seq[0].__reduce__()[2]
        self.assertEqual((valid, exec_name), (1, "channel_seq_callback"))
        self.assertIs(params[1], ch)
        self.assertEqual(n, 1)          # sent so far
        ch2, t2 = pickle.loads(pickle.dumps((ch, t)))
        t.kill()
        ch2.preference = 1
        self.assertEqual([ch2.receive(), ch2.receive()], [20, 30])
        stackless.run()
        self.assertFalse(t2.alive)
        self.assertEqual(RESULTS, [3])

    def test_corrupt_states(self):
        good = (1, "slp_restore_tracing", ((1, 2), quiet_tracer, None, None),
                0, 0)
        for state, exc in [
            (None, TypeError),
            (good[:4], TypeError),
            (("x",) + good[1:], TypeError),
            ((2,) + good[1:], ValueError),
            ((1, 42) + good[2:], TypeError),
            ((1, "no such function") + good[2:], ValueError),
            (good[:2] + ([(), 1, 2, 3],) + good[3:], TypeError),
            (good[:2] + (((), 1, 2),) + good[3:], ValueError),
            (good[:2] + (((7,), 1, 2, 3),) + good[3:], ValueError),
            (good[:2] + ((("a",), None, None, None),) + good[3:], TypeError),
            (good[:2] + (((), 42, None, None),) + good[3:], TypeError),
            (good[:3] + ("i", 0), TypeError),
            (good[:3] + (1 << 100, 0), ValueError),
            ((1, "run_cframe", ((2,), 42, (), None), 0, 0), TypeError),
            ((1, "run_cframe", ((2,), len, [], None), 0, 0), TypeError),
            ((1, "channel_seq_callback", ((), 1, 2, 3), 99, 0), ValueError),
            ((1, "channel_seq_callback", ((2,), 1, 2, None), 6, 0),
             ValueError),
        ]:
            with self.subTest(state=state):
                cf = stackless.cframe()
                with self.assertRaises(exc):
                    cf.__setstate__(state)
                self.assertIsNone(cf.exec_name)
        cf = stackless.cframe()
        cf.__setstate__(good)
        with self.assertRaises(RuntimeError):
            cf.__setstate__(good)
        with self.assertRaises(TypeError):
            stackless.cframe(1)
        with self.assertRaises(ValueError):
            stackless.cframe().__reduce__()

    def test_corrupt_cframe_in_tasklet(self):
        ch = stackless.channel()
        t = self.spawn(seq_sender, ch, sequence_gen(ch))
        stackless.run()
        self.assertTrue(t.blocked)
        state = t.__reduce__()[2]
        frames = state[3]
        k = next(i for i, f in enumerate(frames)
                 if isinstance(f, stackless.cframe))
        red = frames[k].__reduce__()[2]

        def with_cframe(cf_state, where=k):
            cf = stackless.cframe()
            cf.__setstate__(cf_state)
            fr = list(frames)
            fr[where] = cf
            return state[:3] + (fr,) + state[4:]

        # What the loop iterates must be an iterator: the verifier sees it.
        params = list(red[2])
        params[2] = 42
        bad = [with_cframe(red[:2] + (tuple(params),) + red[3:])]
        # Tasklet-level entries under the chain's frames.
        self.assertEqual(k, len(frames) - 1)
        bad.append(with_cframe((1, "slp_restore_tracing",
                                ((0, 1, 2), None, None, None), 0, 0), 0))
        bad.append(with_cframe((1, "run_cframe",
                                ((2,), len, ((),), None), 0, 0), 0))
        empty = list(frames)
        empty[k] = stackless.cframe()
        bad.append(state[:3] + (empty,) + state[4:])
        for st in bad:
            with self.subTest(state=st):
                t2 = stackless.tasklet()
                with self.assertRaises((TypeError, ValueError)):
                    t2.__setstate__(st)
                self.assertFalse(t2.alive)
        # The good one goes on.
        t3 = stackless.tasklet()
        t3.__setstate__(with_cframe(red))
        self.assertTrue(t3.alive)
        t3.kill()


class WrapFrameTest(StacklessTestCase):
    """M-21.8: _wrap.frame.__reduce__(frame), __setstate__ in place."""

    both_modes = False      # pickles of hard-switched tasklets do not run

    def setUp(self):
        super().setUp()
        RESULTS.clear()
        old = stackless.pickle_flags()
        self.addCleanup(stackless.pickle_flags, old, -1)

    def suspended(self):
        ch = stackless.channel()
        t = self.spawn(two_deep, ch, 4)
        stackless.run()
        return ch, t

    def test_reduce_running_frame(self):
        a_local = [1, 2]
        frame = sys._getframe()
        callable_, args, state = _wrap.frame.__reduce__(frame)
        here = frame.f_lineno - 1           # the line above
        self.assertIs(callable_, _wrap.frame)
        self.assertEqual(args, (frame.f_code,))
        self.assertEqual(len(state), 11)
        (code, valid, exec_name, globals_, have_locals, locals_, f_trace,
         lasti, lineno, blockstack, localsplus) = state
        self.assertIs(code, frame.f_code)
        self.assertEqual(valid, 0)      # it runs: no stack known
        self.assertIsInstance(exec_name, str)
        self.assertIs(globals_, globals())
        self.assertEqual(have_locals, 0)
        self.assertIsNone(locals_)
        self.assertIsNone(f_trace)
        self.assertIsInstance(lasti, int)
        self.assertEqual(lineno, here)
        self.assertEqual(blockstack, ())
        nulls, *slots = localsplus
        self.assertIsInstance(nulls, tuple)
        # Its locals only (no cells here): the stack of a running frame
        # is not known.
        self.assertEqual(len(slots), len(code.co_varnames))
        self.assertEqual(code.co_cellvars + code.co_freevars, ())
        names = code.co_varnames
        self.assertIs(slots[names.index("a_local")], a_local)
        self.assertIn(names.index("callable_"), nulls)
        with self.assertRaises(TypeError):
            _wrap.frame.__reduce__(42)

    def test_f_trace_with_flag_1(self):
        frame = sys._getframe()
        frame.f_trace = quiet_tracer
        self.addCleanup(setattr, frame, "f_trace", None)
        stackless.pickle_flags(0, 1)
        self.assertIsNone(_wrap.frame.__reduce__(frame)[2][6])
        stackless.pickle_flags(1, 1)
        self.assertIs(_wrap.frame.__reduce__(frame)[2][6], quiet_tracer)
        f = _wrap.frame(frame.f_code)
        f.__setstate__(_wrap.frame.__reduce__(frame)[2])
        self.assertIs(f.f_trace, quiet_tracer)

    def test_setstate_makes_a_frame_in_place(self):
        ch, t = self.suspended()
        frame = t.frame
        self.assertEqual(frame.f_code.co_name, "receiver")
        callable_, args, state = _wrap.frame.__reduce__(frame)
        self.assertEqual(state[1], 1)
        self.assertEqual(state[2], "eval_frame_value")
        f = callable_(*args)
        self.assertIs(type(f), _wrap.frame)
        self.assertNotIsInstance(f, types.FrameType)
        self.assertIsNone(f.__setstate__(state))
        self.assertIs(type(f), types.FrameType)
        self.assertIs(f.f_code, frame.f_code)
        self.assertEqual(f.f_lineno, frame.f_lineno)
        self.assertEqual(f.f_locals["x"], 8)
        self.assertIs(f.f_locals["ch"], ch)
        self.assertIs(f.f_globals, globals())
        self.assertIsNone(f.f_back)
        f.clear()
        # Pickled, the same.
        for name, dumps, loads in PICKLERS:
            with self.subTest(pickler=name):
                data = dumps((callable_, args, state), 2)
                c2, a2, s2 = loads(data)
                f2 = c2(*a2)
                f2.__setstate__(s2)
                self.assertIs(type(f2), types.FrameType)
                self.assertEqual(f2.f_locals["x"], 8)
        ch.send(0)

    def test_block_stack_is_checked(self):
        ch, t = self.suspended()
        callable_, args, state = _wrap.frame.__reduce__(t.frame)
        for blockstack, exc, msg in [
            (((1, 2, "x"),), TypeError, "an integer is required"),
            (((1, 2, None),), TypeError, "an integer is required"),
            (((1, 2),), TypeError, "block"),
            ((1,), TypeError, "block"),
            ([], TypeError, "block stack"),
        ]:
            with self.subTest(blockstack=blockstack):
                f = callable_(*args)
                with self.assertRaisesRegex(exc, msg):
                    f.__setstate__(state[:9] + (blockstack,) + state[10:])
                self.assertIs(type(f), _wrap.frame)
        f = callable_(*args)
        f.__setstate__(state[:9] + (((1, 2, 3), (4, 5, 6)),) + state[10:])
        self.assertIs(type(f), types.FrameType)
        ch.send(0)

    def test_corrupt_states(self):
        ch, t = self.suspended()
        callable_, args, state = _wrap.frame.__reduce__(t.frame)
        nulls, *slots = state[10]

        def at(i, value):
            return state[:i] + (value,) + state[i + 1:]

        for bad, exc in [
            (None, TypeError),
            (state[:10], TypeError),
            (at(0, 42), TypeError),
            (at(0, two_deep.__code__), ValueError),
            (at(1, 2), ValueError),
            (at(1, "1"), TypeError),
            (at(2, "no such function"), ValueError),
            (at(2, 42), ValueError),
            (at(3, 42), TypeError),
            (at(4, 2), ValueError),
            (at(4, 0)[:5] + (42,) + state[6:], TypeError),
            (at(6, 42), TypeError),
            (at(7, -1), ValueError),
            (at(7, 10 ** 6), ValueError),
            (at(7, "0"), TypeError),
            (at(8, None), TypeError),
            (at(10, None), TypeError),
            (at(10, ((),)), ValueError),          # fewer slots than locals
            (at(10, (nulls,) + tuple(slots) + (None,) * 100), ValueError),
            (at(10, ((99,),) + tuple(slots)), ValueError),
            (at(10, (("0",),) + tuple(slots)), TypeError),
        ]:
            with self.subTest(state=bad):
                f = callable_(*args)
                with self.assertRaises(exc):
                    f.__setstate__(bad)
                self.assertIs(type(f), _wrap.frame)
        with self.assertRaises(TypeError):
            _wrap.frame(42)
        with self.assertRaises(TypeError):
            _wrap.frame()
        ch.send(0)

    def test_cells_must_be_cells(self):
        def outer():
            v = 1

            def inner():
                return v
            return sys._getframe(), inner
        frame, inner = outer()
        callable_, args, state = _wrap.frame.__reduce__(frame)
        nulls, *slots = state[10]
        i = frame.f_code.co_varnames.__len__()     # v, the first cell
        self.assertEqual(frame.f_code.co_cellvars, ("v",))
        slots = list(slots)
        slots[i] = "not a cell"
        f = callable_(*args)
        with self.assertRaisesRegex(ValueError, "holds no cell"):
            f.__setstate__(state[:10] + ((nulls,) + tuple(slots),))

    def test_tasklet_takes_frames_made_by_wrap_frame(self):
        # A reducer that pickles the frames of a tasklet in 3.7's layout;
        # the globals of this module by reference (P-9), as the Python
        # pickler of stackless does for any module's dict.
        class ModuleDict:
            def __reduce__(self):
                return (getattr, (sys.modules[__name__], "__dict__"))

        class SpecFrame:
            def __init__(self, frame):
                self.frame = frame

            def __reduce__(self):
                c, a, state = _wrap.frame.__reduce__(self.frame)
                self.state = state
                if state[3] is globals():
                    state = state[:3] + (ModuleDict(),) + state[4:]
                return c, a, state

        ch, t = self.suspended()
        old = _wrap.set_reduce_frame(SpecFrame)
        self.addCleanup(_wrap.set_reduce_frame, old)
        self.assertIs(_wrap.reduce_frame, SpecFrame)
        frames = t.__reduce__()[2][3]
        self.assertEqual([type(f) for f in frames], [SpecFrame] * 2)
        self.assertEqual([f.frame.f_code.co_name for f in frames],
                         ["two_deep", "receiver"])
        for proto in PROTOCOLS:
            for name, dumps, loads in PICKLERS:
                with self.subTest(protocol=proto, pickler=name):
                    RESULTS.clear()
                    ch2, t2 = loads(dumps((ch, t), proto))
                    self.assertTrue(t2.blocked)
                    ch2.send(1)
                    self.assertFalse(t2.alive)
                    self.assertEqual(RESULTS, [9])
        ch.send(0)

    def test_invalid_frames_through_wrap_frame(self):
        # Frames that ran C code (valid 0) stay invalid as frame objects
        # of _wrap.frame: the tasklet raises where they were.
        ch = stackless.channel()
        t = self.spawn(catch_invalid, ch)
        stackless.run()
        self.assertFalse(t.restorable)
        states = [_wrap.frame.__reduce__(f) for f in self.frames_of(t)]
        self.assertEqual([s[2][1] for s in states], [1, 0, 0])
        frames = []
        for c, a, st in states:
            f = c(*a)
            f.__setstate__(st)
            frames.append(f)
        self.assertEqual([_wrap.frame_state_of(f).valid for f in frames],
                         [True, False, False])
        state = t.__reduce__()[2]
        t2 = stackless.tasklet()
        t2.__setstate__(state[:3] + (frames,) + state[4:])
        t2.insert()
        stackless.run()
        self.assertFalse(t2.alive)
        self.assertEqual(len(RESULTS), 1)
        self.assertRegex(RESULTS[0], "cannot execute invalid frame with "
                         "'(sort_blocking|<lambda>)'")
        t.kill()

    @staticmethod
    def frames_of(t):
        frames = []
        f = t.frame
        while f is not None:
            frames.append(f)
            f = f.f_back
        return frames[::-1]

    def test_reduce_frame_attribute(self):
        # stackless installs a default at import.
        self.assertIsNotNone(_wrap.reduce_frame)
        self.assertIs(_stackless._wrap, _wrap)
        old = _wrap.reduce_frame
        self.addCleanup(_wrap.set_reduce_frame, old)
        _wrap.set_reduce_frame(None)
        self.assertIsNone(_wrap.reduce_frame)
        # Without a reducer, the frames pickle as their states.
        ch, t = self.suspended()
        frames = t.__reduce__()[2][3]
        self.assertEqual([type(f) for f in frames], [_wrap.frame_state] * 2)
        ch2, t2 = pickle.loads(pickle.dumps((ch, t)))
        ch2.send(2)
        self.assertEqual(RESULTS, [10])
        seen = []

        def reducer(frame):
            seen.append(frame)
            return _wrap.frame_state_of(frame)
        _wrap.set_reduce_frame(reducer)
        self.assertIs(_wrap.reduce_frame, reducer)
        pickle.dumps(t)
        self.assertEqual([type(f) for f in seen], [types.FrameType] * 2)
        with self.assertRaises(TypeError):
            _wrap.set_reduce_frame(42)
        self.assertIs(_wrap.reduce_frame, reducer)
        ch.send(0)


class WrapGeneratorTest(unittest.TestCase):
    """M-21.8: _wrap.generator()."""

    both_modes = False      # pickles of hard-switched tasklets do not run

    def test_exhausted_generator(self):
        g0 = _wrap.generator()
        g1 = _wrap.generator()
        self.assertIsInstance(g0, types.GeneratorType)
        self.assertIsNot(type(g0), types.GeneratorType)
        self.assertIs(type(g0), _wrap.generator)
        self.assertEqual(type(g0).__name__, "exhausted_generator")
        self.assertEqual(g0.__name__, "exhausted_generator")
        self.assertEqual(inspect.getgeneratorstate(g0), "GEN_CREATED")
        self.assertIs(g0.gi_code, g1.gi_code)
        self.assertIsInstance(g0.gi_frame, types.FrameType)
        self.assertIsNot(g0.gi_frame, g1.gi_frame)
        with self.assertRaises(StopIteration):
            next(g0)
        self.assertEqual(list(g1), [])
        self.assertEqual(inspect.getgeneratorstate(g0), "GEN_CLOSED")
        with self.assertRaises(TypeError):
            _wrap.generator(1)

    def test_generators_still_pickle(self):
        def numbers():
            yield 1
            yield 2
        g = numbers()
        next(g)
        reduced = pickle.dumps(g)
        self.assertIn(b"restore_generator", reduced)
        self.assertEqual(list(pickle.loads(reduced)), [2])


async def agen_values():
    v = yield 1
    yield v


@types.coroutine
def suspend():
    yield "suspended"


async def agen_awaiting():
    await suspend()
    yield 10


def discard(aw):
    """Drop an awaitable without a "never awaited" warning, and without
    closing its async generator (which close() would)."""
    _stackless._async_gen_awaitable_set_state(aw, 2)


class WrapAsyncGenAwaitablesTest(unittest.TestCase):
    """M-21.8: _wrap.async_generator_asend/_athrow."""

    both_modes = False      # pickles of hard-switched tasklets do not run

    def check(self, wrap, aw, gen, value, state, present):
        reduced = wrap.__reduce__(aw)
        self.assertIs(reduced[0], wrap)
        self.assertEqual(reduced[1], ())
        self.assertEqual(len(reduced[2]), 4)
        self.assertIs(reduced[2][0], gen)
        self.assertEqual(reduced[2][1:], (value, state, present))
        # Rebuilt as pickle does: the type of the original.
        aw2 = reduced[0](*reduced[1])
        aw2.__setstate__(reduced[2])
        self.assertIs(type(aw2), type(aw))
        self.assertEqual(wrap.__reduce__(aw2)[2], reduced[2])
        discard(aw2)
        for proto in PROTOCOLS:
            for name, dumps, loads in PICKLERS:
                with self.subTest(protocol=proto, pickler=name):
                    aw3, gen3 = loads(dumps((aw, gen), proto))
                    self.assertIs(type(aw3), type(aw))
                    st = wrap.__reduce__(aw3)[2]
                    self.assertIs(st[0], gen3)
                    self.assertEqual(st[2:], (state, present))
                    discard(aw3)

    def new(self, aw):
        self.addCleanup(discard, aw)
        return aw

    def test_asend_states(self):
        wrap = _wrap.async_generator_asend
        ag = agen_values()
        aw = self.new(ag.asend(None))
        self.check(wrap, aw, ag, None, 0, 1)
        self.check(wrap, self.new(ag.__anext__()), ag, None, 0, 0)
        self.check(wrap, self.new(ag.asend(5)), ag, 5, 0, 1)
        with self.assertRaises(StopIteration):
            aw.send(None)
        self.check(wrap, aw, ag, None, 2, 1)
        ag2 = agen_awaiting()
        aw = ag2.asend(None)
        self.assertEqual(aw.send(None), "suspended")
        self.check(wrap, aw, ag2, None, 1, 1)
        aw.close()

    def test_athrow_states(self):
        wrap = _wrap.async_generator_athrow
        ag = agen_values()
        self.check(wrap, self.new(ag.aclose()), ag, None, 0, 0)
        self.check(wrap, self.new(ag.athrow(ValueError)), ag, (ValueError,),
                   0, 1)
        aw = ag.aclose()
        with self.assertRaises(StopIteration):
            aw.send(None)
        self.check(wrap, aw, ag, None, 2, 0)

    def test_restored_awaitable_runs(self):
        ag = agen_values()
        with self.assertRaises(StopIteration) as cm:
            ag.asend(None).send(None)
        self.assertEqual(cm.exception.value, 1)
        aw = self.new(ag.asend(7))
        ag2, aw2 = pickle.loads(pickle.dumps((ag, aw)))
        with self.assertRaises(StopIteration) as cm:
            aw2.send(None)
        self.assertEqual(cm.exception.value, 7)

    def test_corrupt_states(self):
        ag = agen_values()
        for wrap in (_wrap.async_generator_asend,
                     _wrap.async_generator_athrow):
            for state, exc in [
                (None, TypeError),
                ((ag, None, 0), TypeError),
                ((42, None, 0, 0), TypeError),
                ((ag, None, "0", 0), TypeError),
                ((ag, None, 3, 0), ValueError),
                ((ag, None, -1, 0), ValueError),
                ((ag, None, 0, 2), ValueError),
                ((ag, 1, 0, 0), ValueError),
            ]:
                with self.subTest(wrap=wrap.__name__, state=state):
                    with self.assertRaises(exc):
                        wrap().__setstate__(state)
        with self.assertRaises(TypeError):
            _wrap.async_generator_athrow().__setstate__((ag, 42, 0, 1))
        with self.assertRaises(TypeError):
            _wrap.async_generator_athrow().__setstate__((ag, (), 0, 1))
        # Only a new awaitable takes a state.
        live = ag.asend(None)
        with self.assertRaises(RuntimeError):
            live.__setstate__((ag, None, 0, 0))
        live.close()
        with self.assertRaises(TypeError):
            _wrap.async_generator_asend.__reduce__(self.new(ag.aclose()))
        with self.assertRaises(TypeError):
            _wrap.async_generator_asend.__reduce__(42)


class TaskletStateTest(StacklessTestCase):
    """M-21.9: the tasklet state of 3.7's layout."""

    both_modes = False      # pickles of hard-switched tasklets do not run

    def setUp(self):
        super().setUp()
        RESULTS.clear()

    def test_blocked_bits(self):
        ch = stackless.channel()
        r = self.spawn(receiver, ch, 1)
        stackless.run()
        self.assertEqual(r.__reduce__()[2][0] & 3, 3)      # -1: receiving
        r.kill()
        s = self.spawn(sender, ch, 1)
        stackless.run()
        self.assertEqual(s.__reduce__()[2][0] & 3, 1)      # +1: sending
        s.kill()
        t = self.spawn(receiver, ch, 1)
        self.assertEqual(t.__reduce__()[2][0] & 3, 0)

    def test_flag_bits(self):
        ch = stackless.channel()
        t = self.spawn(receiver, ch, 1)
        stackless.run()
        flags = t.__reduce__()[2][0]
        self.assertEqual(flags & ~3, 0)
        t.set_atomic(True)
        self.assertEqual(t.__reduce__()[2][0] & ~3, 1 << 2)
        t.set_atomic(False)
        t.set_ignore_nesting(True)
        self.assertEqual(t.__reduce__()[2][0] & ~3, 1 << 3)
        t.set_ignore_nesting(False)
        t.block_trap = True
        self.assertEqual(t.__reduce__()[2][0] & ~3, 1 << 5)
        t.set_atomic(True)
        t.set_ignore_nesting(True)
        t2 = pickle.loads(pickle.dumps(t))
        self.assertTrue(t2.atomic)
        self.assertTrue(t2.ignore_nesting)
        self.assertTrue(t2.block_trap)
        t2.kill()
        t.set_atomic(False)
        t.block_trap = False
        ch.send(1)

    def test_eight_items(self):
        ch = stackless.channel()
        t = self.spawn(two_deep, ch, 1)
        stackless.run()
        state = t.__reduce__()[2]
        self.assertEqual(len(state), 8)
        self.assertTupleEqual(state[-4:], (None,) * 4)
        self.assertIsNone(state[1])             # tempval
        self.assertEqual(state[2], 0)           # nesting level
        self.assertIsInstance(state[3], list)
        self.assertEqual(len(state[3]), 2)
        for t0 in (stackless.tasklet(), stackless.tasklet(receiver)):
            state = t0.__reduce__()[2]
            self.assertEqual(len(state), 8)
            self.assertEqual(state[3], [])
            self.assertTupleEqual(state[-4:], (None,) * 4)
        self.assertIs(stackless.tasklet(receiver).__reduce__()[2][1],
                      receiver)
        ch.send(1)

    def test_handled_exception(self):
        ch = stackless.channel()
        t = self.spawn(handling, ch)
        stackless.run()
        state = t.__reduce__()[2]
        self.assertEqual(len(state), 8)
        self.assertIs(state[4], KeyError)
        self.assertIsInstance(state[5], KeyError)
        self.assertIsInstance(state[6], types.TracebackType)
        self.assertIsNone(state[7])
        ch2, t2 = pickle.loads(pickle.dumps((ch, t)))
        ch2.send("v")
        self.assertEqual(RESULTS, [("v", KeyError, ("handled",), True)])
        ch.send("w")

    def test_current_is_refused(self):
        with self.assertRaisesRegex(RuntimeError, "current"):
            stackless.current.__reduce__()

    def test_corrupt_states(self):
        ch = stackless.channel()
        t = self.spawn(handling, ch)
        stackless.run()
        state = t.__reduce__()[2]

        def at(i, value):
            return state[:i] + (value,) + state[i + 1:]

        for bad, exc in [
            (None, TypeError),
            (state[:6], TypeError),
            (state + (None,), TypeError),
            (at(0, "flags"), TypeError),
            (at(0, -1), ValueError),
            (at(0, 2), ValueError),             # blocked -2
            (at(0, 1 << 9), ValueError),
            (at(2, "0"), TypeError),
            (at(2, -1), ValueError),
            (at(3, ()), TypeError),
            (at(3, [42]), TypeError),
            (at(4, 42), TypeError),
            (at(4, ValueError), TypeError),     # not the value's type
            (at(5, 42), TypeError),
            (at(6, 42), TypeError),
            (at(7, 42), TypeError),
        ]:
            with self.subTest(state=bad):
                t2 = stackless.tasklet()
                with self.assertRaises(exc):
                    t2.__setstate__(bad)
                self.assertFalse(t2.alive)
        ch.send(0)

    def round_trips(self, t, check):
        for proto in PROTOCOLS:
            for name, dumps, loads in PICKLERS:
                with self.subTest(protocol=proto, pickler=name):
                    RESULTS.clear()
                    check(loads(dumps(t, proto)))

    def test_round_trip_blocked(self):
        ch = stackless.channel()
        t = self.spawn(two_deep, ch, 3)
        stackless.run()

        def check(pair):
            ch2, t2 = pair
            self.assertTrue(t2.blocked)
            self.assertEqual(t2.__reduce__()[2][0] & 3, 3)
            ch2.send(1)
            self.assertEqual(RESULTS, [7])
            self.assertFalse(t2.alive)
        self.round_trips((ch, t), check)
        ch.send(0)

    def test_round_trip_paused(self):
        def body():
            x = 5
            v = stackless.schedule_remove(None)
            RESULTS.append(x + v)
        t = self.spawn(body)
        stackless.run()
        self.assertTrue(t.paused)

        def check(t3):
            self.assertTrue(t3.paused)
            self.assertEqual(t3.__reduce__()[2][0] & 3, 0)
            t3.tempval = 10
            t3.run()
            self.assertEqual(RESULTS, [15])
        self.round_trips(t, check)
        self.assertTrue(t.paused)

    def test_round_trip_handled_exception(self):
        ch = stackless.channel()
        t = self.spawn(handling, ch)
        stackless.run()

        def check(pair):
            ch2, t2 = pair
            self.assertIs(t2.__reduce__()[2][4], KeyError)
            ch2.send("v")
            self.assertEqual(RESULTS,
                             [("v", KeyError, ("handled",), True)])
        self.round_trips((ch, t), check)
        ch.send("w")

    def test_round_trip_preempted(self):
        t = self.spawn(counting, 10 ** 6)
        while True:
            victim = stackless.run(100)
            if victim is not None:
                break
        self.assertIs(victim, t)
        self.assertTrue(t.paused)

        def check(t2):
            self.assertTrue(t2.paused)
            t2.insert()
            stackless.run()
            self.assertEqual(RESULTS, [sum(range(10 ** 6))])
        for proto in (0, pickle.HIGHEST_PROTOCOL):
            for name, dumps, loads in PICKLERS:
                with self.subTest(protocol=proto, pickler=name):
                    RESULTS.clear()
                    check(loads(dumps(t, proto)))
        t.kill()

    def test_result_of_its_own(self):
        # A sender whose receiver ran at once resumes with send()'s
        # result, which it holds: a cframe slp_resume_value at the top.
        ch = stackless.channel()

        def receiver_then_main():
            RESULTS.append(ch.receive())
            stackless.getmain().run()

        def sending():
            x = ch.send(5)
            RESULTS.append(("sent", x))
        r = self.spawn(receiver_then_main)
        s = self.spawn(sending)
        stackless.run()
        self.assertEqual(RESULTS, [5])
        self.assertTrue(s.scheduled)
        frames = s.__reduce__()[2][3]
        top = frames[-1]
        self.assertIsInstance(top, stackless.cframe)
        self.assertEqual(top.__reduce__()[2][:3],
                         (1, "slp_resume_value", ((1, 2), None, None, None)))
        s.remove()
        for name, dumps, loads in PICKLERS:
            with self.subTest(pickler=name):
                del RESULTS[1:]
                s2 = loads(dumps(s, 2))
                s2.tempval = "not the result"
                s2.insert()
                stackless.run()
                self.assertEqual(RESULTS, [5, ("sent", None)])
        r.kill()

    def test_del_and_zombie(self):
        # T-15, M-21.9: t.__del__() kills a tasklet; one that survives the
        # kills, paused, is a zombie: bit 6, in gc.garbage.
        state = {"stubborn": True}

        def stubborn():
            while True:
                try:
                    stackless.schedule_remove(None)
                except TaskletExit:
                    if not state["stubborn"]:
                        raise
        t = self.spawn(stubborn)
        t.run()
        self.assertTrue(t.paused)
        self.assertFalse(t.__reduce__()[2][0] & (1 << 6))
        try:
            self.assertIsNone(t.__del__())
            self.assertTrue(t.__reduce__()[2][0] & (1 << 6))
            self.assertIn(t, gc.garbage)
            self.assertTrue(t.alive)
        finally:
            gc.garbage[:] = [o for o in gc.garbage if o is not t]
        state["stubborn"] = False
        t.kill()
        self.assertFalse(t.alive)

    def test_del_ends_a_tasklet(self):
        def body():
            try:
                stackless.schedule_remove(None)
            finally:
                RESULTS.append("finally")
        t = self.spawn(body)
        t.run()
        t.__del__()
        self.assertFalse(t.alive)
        self.assertEqual(RESULTS, ["finally"])
        self.assertFalse(t.__reduce__()[2][0] & (1 << 6))


if __name__ == "__main__":
    unittest.main()
