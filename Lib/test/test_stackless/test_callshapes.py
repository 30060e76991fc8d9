"""Soft switching through every Python-to-Python call shape (issue 15).

A tasklet that blocks below a chain of Python calls holds no C state,
whatever shape the calls take (bound methods called with *args and
**kwargs, instances with a Python __call__, classes with a Python
__init__, super().__init__(), functools.partial, generators resumed by
`for` or __next__()), and whether the code ran before or not: the
unspecialized instructions push the frames as the specialized ones do.
Calls that C slots make (special methods called by operators, key
functions of builtins) stay hard, as in Stackless 3.7: they still work.
"""

import functools
import sys
import types
import unittest

import stackless

from .helpers import StacklessTestCase


# --- the callees: each ends in ch.receive() and returns what it got --------

def receive(ch):
    return ch.receive()


def forwarding(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper


class Obj:
    def m(self, ch, tag=None):
        return ch.receive() if tag is None else (tag, ch.receive())

    def __call__(self, ch, tag=None):
        return self.m(ch, tag)

    @classmethod
    def cm(cls, ch):
        return ch.receive()

    @forwarding
    def decorated(self, ch):
        return ch.receive()


class Init:
    def __init__(self, ch, tag=None):
        self.got = ch.receive()


class VarInit:
    def __init__(self, *args, **kwargs):
        self.got = kwargs["ch"].receive() if "ch" in kwargs \
            else args[0].receive()


class SuperInit(Init):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)


class SuperSuperInit(SuperInit):
    def __init__(self, ch):
        super().__init__(ch)


class Meta(type):
    def __call__(cls, ch):
        return ch.receive()


class WithMeta(metaclass=Meta):
    pass


def gen(ch):
    yield ch.receive()


# --- C slots: Python code called by C --------------------------------------

class Eq:
    def __init__(self, ch):
        self.ch = ch

    def __eq__(self, other):
        self.got = self.ch.receive()
        return True

    __hash__ = None


class GetAttr:
    def __init__(self, ch):
        self.ch = ch

    def __getattr__(self, name):
        return self.ch.receive()


# --- the shapes: module functions, whose code is copied cold ---------------

def s_method_star(ch):
    args = (ch,)
    return Obj().m(*args)


def s_method_starstar(ch):
    kw = {"ch": ch}
    return Obj().m(**kw)


def s_method_star_starstar(ch):
    args, kw = (ch,), {"tag": "t"}
    return Obj().m(*args, **kw)


def s_cached_method_star(ch):
    m = Obj().m
    return m(*(ch,))


def s_classmethod_star(ch):
    return Obj.cm(*(ch,))


def s_decorated_method(ch):
    return Obj().decorated(ch)


def s_decorated_method_star(ch):
    return Obj().decorated(*(ch,))


def s_dunder_call(ch):
    return Obj()(ch)


def s_dunder_call_kw(ch):
    return Obj()(ch=ch, tag="t")


def s_dunder_call_star(ch):
    return Obj()(*(ch,), **{"tag": "t"})


def s_class_init(ch):
    return Init(ch).got


def s_class_init_kw(ch):
    return Init(ch=ch, tag=1).got


def s_class_init_star(ch):
    return Init(*(ch,)).got


def s_class_varargs_init(ch):
    return VarInit(ch).got


def s_class_varargs_init_kw(ch):
    return VarInit(ch=ch).got


def s_super_init(ch):
    return SuperInit(ch).got


def s_super_init_star(ch):
    return SuperInit(*(ch,), **{"tag": 2}).got


def s_super_super_init(ch):
    return SuperSuperInit(ch).got


def s_metaclass_call(ch):
    return WithMeta(ch)


def s_for_generator(ch):
    for x in gen(ch):
        return x


def s_next_method(ch):
    return gen(ch).__next__()


def s_next_builtin(ch):
    return next(gen(ch))


def s_send_method(ch):
    g = gen(ch)
    return g.send(None)


def s_partial(ch):
    return functools.partial(receive, ch)()


def s_partial_kw(ch):
    return functools.partial(receive, ch=ch)()


def s_partial_call_kw(ch):
    return functools.partial(receive)(ch=ch)


def s_partial_star(ch):
    return functools.partial(receive)(*(ch,))


def s_partial_of_method(ch):
    return functools.partial(Obj().m, ch, tag="p")()


def s_partial_of_class(ch):
    return functools.partial(Init, ch)().got


def s_partial_of_partial_instance(ch):
    p = functools.partial(functools.partial(Obj(), tag="q"), ch)
    return p()


SOFT_SHAPES = {
    # name: what the shape returns when sent "v"
    "s_method_star": "v",
    "s_method_starstar": "v",
    "s_method_star_starstar": ("t", "v"),
    "s_cached_method_star": "v",
    "s_classmethod_star": "v",
    "s_decorated_method": "v",
    "s_decorated_method_star": "v",
    "s_dunder_call": "v",
    "s_dunder_call_kw": ("t", "v"),
    "s_dunder_call_star": ("t", "v"),
    "s_class_init": "v",
    "s_class_init_kw": "v",
    "s_class_init_star": "v",
    "s_class_varargs_init": "v",
    "s_class_varargs_init_kw": "v",
    "s_super_init": "v",
    "s_super_init_star": "v",
    "s_super_super_init": "v",
    "s_metaclass_call": "v",
    "s_for_generator": "v",
    "s_next_method": "v",
    "s_next_builtin": "v",
    "s_send_method": "v",
    "s_partial": "v",
    "s_partial_kw": "v",
    "s_partial_call_kw": "v",
    "s_partial_star": "v",
    "s_partial_of_method": ("p", "v"),
    "s_partial_of_class": "v",
    "s_partial_of_partial_instance": ("q", "v"),
}


def h_eq(ch):
    e = Eq(ch)
    e == 1
    return e.got


def h_getattr(ch):
    return GetAttr(ch).anything


def h_sorted_key(ch):
    return sorted([1], key=lambda x: ch.receive())[0] and "v"


def h_map(ch):
    return list(map(receive, [ch]))[0]


HARD_SHAPES = {
    "h_eq": "v",
    "h_getattr": "v",
    "h_sorted_key": "v",
    "h_map": "v",
}


def cold_copy(func):
    """A copy of func with a code object of its own, never run, so that
    none of its instructions is specialized."""
    return types.FunctionType(func.__code__.replace(), func.__globals__,
                              func.__name__, func.__defaults__,
                              func.__closure__)


class CallShapeTest(StacklessTestCase):

    both_modes = False
    WARM_RUNS = 8

    def setUp(self):
        super().setUp()
        self.addCleanup(stackless.enable_softswitch,
                        stackless.enable_softswitch(None))

    def block_in(self, func):
        """Run func(ch) in a tasklet until it blocks; return
        (nesting_level, restorable, what func returned once sent "v")."""
        ch = stackless.channel()
        result = []
        t = self.spawn(lambda: result.append(func(ch)))
        stackless.run()
        self.assertTrue(t.blocked, func.__name__)
        state = (t.nesting_level, t.restorable)
        ch.send("v")
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(len(result), 1, func.__name__)
        return state + (result[0],)

    def check_shape(self, name, expected, soft):
        func = globals()[name]
        cold = cold_copy(func)
        with self.subTest(shape=name, run="cold"):
            level, restorable, value = self.block_in(cold)
            self.assertEqual(value, expected)
            if soft:
                self.assertEqual((level, restorable), (0, True))
            else:
                self.assertFalse(restorable)
        for _ in range(self.WARM_RUNS):
            self.block_in(cold)
        with self.subTest(shape=name, run="warm"):
            level, restorable, value = self.block_in(cold)
            self.assertEqual(value, expected)
            if soft:
                self.assertEqual((level, restorable), (0, True))
            else:
                self.assertFalse(restorable)

    def test_python_shapes_are_soft_cold_and_warm(self):
        stackless.enable_softswitch(True)
        for name, expected in SOFT_SHAPES.items():
            self.check_shape(name, expected, soft=True)

    def test_python_shapes_in_hard_mode(self):
        # Without soft switching, the same calls work, through C.
        stackless.enable_softswitch(False)
        for name, expected in SOFT_SHAPES.items():
            self.check_shape(name, expected, soft=False)
        # And they show their C calls in the nesting level.
        self.assertGreater(self.block_in(cold_copy(s_super_init))[0], 0)

    def test_c_slot_shapes_are_hard_and_work(self):
        for mode in (True, False):
            stackless.enable_softswitch(mode)
            for name, expected in HARD_SHAPES.items():
                self.check_shape(name, expected, soft=False)
            self.assertGreater(self.block_in(cold_copy(h_eq))[0], 0)

    def test_all_shapes_are_in_the_tables(self):
        names = {n for n in globals() if n[:2] in ("s_", "h_")}
        self.assertEqual(names, set(SOFT_SHAPES) | set(HARD_SHAPES))


class SameBehaviourTest(StacklessTestCase):
    """What the frames pushed by the eval loop do is what the calls
    through C did: the same errors, the same objects."""

    both_modes = False

    def in_tasklet(self, func, soft=True):
        old = stackless.enable_softswitch(soft)
        try:
            result = []

            def body():
                try:
                    result.append(("ok", func()))
                except BaseException as e:
                    result.append(("raised", type(e), str(e)))
            self.spawn(body)
            stackless.run()
            return result[0]
        finally:
            stackless.enable_softswitch(old)

    def assertSameAsThroughC(self, func):
        soft = self.in_tasklet(cold_copy(func), soft=True)
        hard = self.in_tasklet(cold_copy(func), soft=False)
        self.assertEqual(soft, hard)
        try:
            direct = ("ok", func())
        except BaseException as e:
            direct = ("raised", type(e), str(e))
        self.assertEqual(soft, direct)
        return soft

    def test_argument_errors(self):
        def f1():
            return Obj().m(*(1, 2, 3, 4))

        def f2():
            return Obj()(**{"nope": 1})

        def f3():
            return Init(*())

        def f4():
            return functools.partial(receive, 1, 2)()

        def f5():
            return SuperInit(1, 2, 3)

        def f6():
            return Obj().m(1, ch=2)

        for f in (f1, f2, f3, f4, f5, f6):
            with self.subTest(f=f.__name__):
                r = self.assertSameAsThroughC(f)
                self.assertEqual(r[:2], ("raised", TypeError))

    def test_init_must_return_none(self):
        class Bad:
            def __init__(self, *args):
                return 1

        def f():
            return Bad(*())
        r = self.assertSameAsThroughC(f)
        self.assertEqual(r, ("raised", TypeError,
                             "__init__() should return None, not 'int'"))

    def test_abstract_class(self):
        import abc

        class A(abc.ABC):
            def __init__(self, *args):
                pass

            @abc.abstractmethod
            def f(self):
                pass

        def f():
            return A(*())
        r = self.assertSameAsThroughC(f)
        self.assertEqual(r[:2], ("raised", TypeError))

    def test_object_made_once(self):
        made = []

        class C:
            def __init__(self, a):
                pass

            def __del__(self):
                made.append(1)

        def f():
            C(*(1, 2))
        self.in_tasklet(f)
        self.assertEqual(made, [1])
        made.clear()
        self.in_tasklet(lambda: C(*(1,)))
        self.assertEqual(made, [1])

    def test_keywords_override_partial_keywords(self):
        def f(*args, **kwargs):
            return args, kwargs
        p = functools.partial(f, 1, a=1, b=2)
        q = functools.partial(p, 2, b=3, c=4)

        def call():
            return q(3, *(4,), c=5, **{"d": 6})
        r = self.assertSameAsThroughC(call)
        self.assertEqual(r, ("ok", ((1, 2, 3, 4),
                                    {"a": 1, "b": 3, "c": 5, "d": 6})))
        self.assertEqual(list(r[1][1]), ["a", "b", "c", "d"])

    def test_dunder_call_replaced_on_the_class(self):
        class C:
            def __call__(self, x):
                return ("first", x)
        c = C()

        def f():
            return c(*(1,))
        self.assertEqual(self.in_tasklet(f), ("ok", ("first", 1)))
        C.__call__ = lambda self, x: ("second", x)
        self.assertEqual(self.in_tasklet(f), ("ok", ("second", 1)))
        C.__call__ = staticmethod(lambda x: ("static", x))
        self.assertEqual(self.in_tasklet(f), ("ok", ("static", 1)))

    def test_running_generator(self):
        def f():
            def g():
                yield it.__next__()
            it = g()
            return next(it)
        r = self.assertSameAsThroughC(f)
        self.assertEqual(r, ("raised", ValueError,
                             "generator already executing"))

    def test_generator_return_ends_the_loop(self):
        def g():
            yield 1
            yield 2
            return 3

        def f():
            return [x for x in g()] + [g().__next__()]
        self.assertEqual(self.assertSameAsThroughC(f), ("ok", [1, 2, 1]))

    def test_traceback_frames(self):
        def f():
            try:
                SuperInit(*(None,))
            except AttributeError as e:
                tb = e.__traceback__
                names = []
                while tb is not None:
                    names.append(tb.tb_frame.f_code.co_name)
                    tb = tb.tb_next
                return names
        r = self.assertSameAsThroughC(f)
        self.assertEqual(r, ("ok", ["f", "__init__", "__init__"]))


class DeepRecursionTest(StacklessTestCase):
    """Recursion through these shapes is bounded by the recursion limit,
    not by the C stack."""

    both_modes = False

    def setUp(self):
        super().setUp()
        self.addCleanup(stackless.enable_softswitch,
                        stackless.enable_softswitch(True))
        self.addCleanup(sys.setrecursionlimit, sys.getrecursionlimit())

    def run_deep(self, func, n):
        result = []
        self.spawn(lambda: result.append(func(n)))
        stackless.run()
        return result

    def test_method_with_star_args_100000_deep(self):
        class R:
            def m(self, n, *args):
                if n == 0:
                    stackless.schedule()
                    return stackless.current.nesting_level
                return self.m(n - 1, *args)
        sys.setrecursionlimit(110_000)
        self.assertEqual(self.run_deep(lambda n: R().m(n, *()), 100_000),
                         [0])

    def test_dunder_call_and_class_init_deep(self):
        class C:
            def __call__(self, n):
                return D(n).v

        class D:
            def __init__(self, n):
                self.v = c(n - 1) if n else 0

        c = C()
        sys.setrecursionlimit(40_000)
        self.assertEqual(self.run_deep(c, 10_000), [0])

    def test_recursion_limit_still_holds(self):
        class R:
            def m(self, *args):
                return self.m(*args)

        def f(n):
            try:
                R().m(*())
            except RecursionError:
                return "limit"
        sys.setrecursionlimit(500)
        self.assertEqual(self.run_deep(f, 0), ["limit"])


if __name__ == "__main__":
    unittest.main()


class CCallsTest(StacklessTestCase):
    """tasklet.c_calls says which C calls hold a tasklet's C state."""

    both_modes = False

    def setUp(self):
        super().setUp()
        self.addCleanup(stackless.enable_softswitch,
                        stackless.enable_softswitch(True))

    def blocked(self, func):
        ch = stackless.channel()
        t = self.spawn(func, ch)
        stackless.run()
        self.assertTrue(t.blocked)
        self.addCleanup(lambda: t.alive and ch.send(None))
        return t

    def test_soft_tasklet_has_none(self):
        for name in SOFT_SHAPES:
            with self.subTest(shape=name):
                t = self.blocked(cold_copy(globals()[name]))
                self.assertTrue(t.restorable)
                self.assertEqual(t.c_calls, [])
        self.assertEqual(stackless.tasklet().c_calls, [])
        self.assertEqual(stackless.tasklet(receive).c_calls, [])

    def test_special_method_called_by_an_operator(self):
        t = self.blocked(h_eq)
        frame, instruction, callee = t.c_calls[-1]
        self.assertIs(frame.f_code, h_eq.__code__)
        self.assertEqual(instruction, "COMPARE_OP")
        self.assertIs(callee, Eq.__eq__.__code__)
        self.assertEqual(len(t.c_calls), t.nesting_level)

    def test_key_function_and_nested_calls_outermost_first(self):
        def body(ch):
            return sorted([Eq(ch)], key=lambda e: e == 1)

        t = self.blocked(body)
        calls = t.c_calls
        self.assertEqual(len(calls), 2)
        self.assertEqual(len(calls), t.nesting_level)
        (f1, i1, c1), (f2, i2, c2) = calls
        self.assertIs(f1.f_code, body.__code__)
        self.assertEqual(i1, "CALL_KW")
        self.assertEqual(c1.co_name, "<lambda>")
        self.assertIs(f2.f_code, c1)
        self.assertEqual(i2, "COMPARE_OP")
        self.assertIs(c2, Eq.__eq__.__code__)

    def test_builtin_called_by_c(self):
        def body(ch):
            return list(map(stackless.schedule, [None]))

        t = self.spawn(body, None)
        t.run()
        self.assertTrue(t.scheduled)
        self.assertFalse(t.restorable)
        # Suspended with C state: one level deep in C (spec N-3), though
        # map() runs no eval loop of its own.
        self.assertEqual(t.nesting_level, 1)
        (frame, instruction, callee), = t.c_calls
        self.assertIs(frame.f_code, body.__code__)
        self.assertEqual(instruction, "CALL")
        self.assertIsNone(callee)
        stackless.run()
        self.assertFalse(t.alive)

    def test_current_tasklet(self):
        seen = []

        def body():
            seen.append(stackless.current.c_calls)
            sorted([1], key=lambda x: seen.append(stackless.current.c_calls))
        t = self.spawn(body)
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(seen[0], [])
        (frame, instruction, callee), = seen[1]
        self.assertEqual(frame.f_code.co_name, "body")
        self.assertEqual(instruction, "CALL_KW")
        self.assertEqual(callee.co_name, "<lambda>")

    def test_builtin_as_the_tasklet_function(self):
        # A builtin is the tasklet's function, and it switched: its call is
        # the C state, with no frame.
        ch = stackless.channel()
        t = self.spawn(ch.receive)
        stackless.run()
        self.addCleanup(lambda: t.alive and ch.send(None))
        self.assertTrue(t.blocked)
        self.assertFalse(t.restorable)
        self.assertEqual(t.c_calls, [(None, None, None)])

    def test_tasklet_started_through_c(self):
        # A class with a Python __new__ is called through C.
        class New:
            def __new__(cls, ch):
                ch.receive()
                return object.__new__(cls)

        t = self.blocked(New)
        self.assertFalse(t.restorable)
        self.assertEqual(t.nesting_level, 1)
        self.assertEqual(t.c_calls, [(None, None, New.__new__.__code__)])

        def body(ch):
            return New(ch)
        t = self.blocked(body)
        (frame, instruction, callee), = t.c_calls
        self.assertEqual((frame.f_code, instruction, callee),
                         (body.__code__, "CALL", New.__new__.__code__))

    def test_tasklet_functions_that_start_softly(self):
        # Partials and instances with a Python __call__ start softly, as
        # functions and bound methods do.
        for func, args, kwargs in [
                (functools.partial(receive), (), {}),
                (functools.partial(Obj().m, tag="t"), (), {}),
                (Obj(), (), {"tag": "u"}),
                (WithMeta, (), {})]:
            with self.subTest(func=func):
                ch = stackless.channel()
                result = []
                t = self.spawn(lambda *a, **k: result.append(func(*a, **k)),
                               ch, *args, **kwargs)
                stackless.run()
                t2 = self.spawn(func, ch, *args, **kwargs)
                stackless.run()
                self.assertTrue(t2.blocked)
                self.assertEqual((t2.nesting_level, t2.restorable, t2.c_calls),
                                 (0, True, []))
                ch.send("v")
                ch.send("w")
                self.assertFalse(t.alive or t2.alive)
                self.assertIn(result[0], ("v", ("t", "v"), ("u", "v")))

    def test_hard_mode(self):
        # Without soft switching, tasklets start through C, and switch
        # hard where no C call is in the way.
        stackless.enable_softswitch(False)
        t = self.blocked(receive)
        self.assertFalse(t.restorable)
        self.assertEqual(t.c_calls, [(None, None, receive.__code__)])


RESULTS = []


def run_shape(name, ch):
    # RESULTS is loaded after the call: a pickled frame would copy it.
    result = globals()[name](ch)
    RESULTS.append(result)


class PickleShapesTest(StacklessTestCase):
    """Without C state, a tasklet blocked below any of these shapes
    pickles, and the copy resumes where it stopped, cold or warm."""

    both_modes = False

    def setUp(self):
        super().setUp()
        self.addCleanup(stackless.enable_softswitch,
                        stackless.enable_softswitch(True))
        RESULTS.clear()
        self.addCleanup(RESULTS.clear)

    def test_pickle_blocked_in_every_shape(self):
        import pickle
        for name, expected in SOFT_SHAPES.items():
            func = globals()[name]
            for run in ("cold", "warm"):
                if run == "cold":
                    # A new code object: nothing specialized.
                    func.__code__ = func.__code__.replace()
                else:
                    for _ in range(8):
                        ch = stackless.channel()
                        self.spawn(run_shape, name, ch)
                        stackless.run()
                        ch.send("v")
                    RESULTS.clear()
                with self.subTest(shape=name, run=run):
                    ch = stackless.channel()
                    t = self.spawn(run_shape, name, ch)
                    stackless.run()
                    self.assertTrue(t.restorable)
                    data = pickle.dumps((t, ch))
                    t.kill()
                    t2, ch2 = pickle.loads(data)
                    self.track(t2)
                    self.assertTrue(t2.blocked)
                    ch2.send("v")
                    stackless.run()
                    self.assertFalse(t2.alive)
                    self.assertEqual(RESULTS, [expected])
                    RESULTS.clear()
