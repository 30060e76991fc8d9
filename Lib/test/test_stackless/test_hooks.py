"""Test and introspection hooks of _stackless (spec M-21.4, M-21.10,
M-21.11): _test_nostacklesscall, the stackless call flag of classes,
_pickle_moduledict, _gc_track/_gc_untrack, stackless.__reduce__,
switch_trap(0), and no additions to sys."""

import copy
import functools
import gc
import io
import pickle
import subprocess
import sys
import types
import unittest

import _stackless
import stackless
from _stackless import _test_nostacklesscall

from .helpers import StacklessTestCase
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)

try:
    import _teststackless
except ImportError:
    _teststackless = None

# Py_TPFLAGS_HAVE_STACKLESS_CALL (spec M-21.10).
STACKLESS_CALL = 1 << 15


def level():
    return stackless.current.nesting_level


class NoStacklessCallTest(StacklessTestCase):
    """_test_nostacklesscall(f, *args, **kw) calls f from C (M-21.4)."""

    def test_type(self):
        obj = _test_nostacklesscall
        self.assertIs(type(obj), _stackless.test_nostacklesscall_type)
        self.assertIs(stackless._test_nostacklesscall, obj)
        self.assertIs(stackless.test_nostacklesscall_type, type(obj))
        self.assertTrue(callable(obj))
        # No __get__: as a class attribute it stays itself.
        self.assertFalse(hasattr(type(obj), "__get__"))
        self.assertEqual(type(obj).__flags__ & STACKLESS_CALL, 0)
        with self.assertRaises(TypeError):
            type(obj)()

    def test_none_returns_args(self):
        self.assertEqual(_test_nostacklesscall(None), ())
        self.assertEqual(_test_nostacklesscall(None, 1, "a"), (1, "a"))

    def test_calls_f_with_args_and_keywords(self):
        def f(*args, **kw):
            return args, kw

        self.assertEqual(_test_nostacklesscall(f), ((), {}))
        self.assertEqual(_test_nostacklesscall(f, 1, 2, a=3),
                         ((1, 2), {"a": 3}))
        # The keywords of the hook are not passed on.
        self.assertEqual(_test_nostacklesscall(f, 1, set_try_stackless=False,
                                               b=4),
                         ((1,), {"b": 4}))
        self.assertEqual(_test_nostacklesscall(len, "abc"), 3)

    def test_needs_a_function(self):
        with self.assertRaises(TypeError):
            _test_nostacklesscall()
        with self.assertRaises(TypeError):
            _test_nostacklesscall(post_callback=print)
        with self.assertRaises(TypeError):
            _test_nostacklesscall(42)

    def test_caller_keywords_unchanged(self):
        kw = {"post_callback": lambda r, e, n, **kw: r, "x": 1}
        self.assertEqual(_test_nostacklesscall(lambda x: x * 2, **kw), 2)
        self.assertEqual(set(kw), {"post_callback", "x"})

    def test_one_nesting_level_deeper(self):
        def body():
            outer = level()
            inner = _test_nostacklesscall(level)
            self.record(outer, inner)

        self.spawn(body)
        stackless.run()
        [(t, outer, inner)] = self.log
        self.assertEqual(inner, outer + 1)
        if stackless.enable_softswitch(None):
            self.assertEqual((outer, inner), (0, 1))

    def test_nesting_in_main(self):
        outer = level()
        self.assertEqual(_test_nostacklesscall(level), outer + 1)
        # Deeper by the eval loop of a Python function, not by the hook.
        self.assertEqual(_test_nostacklesscall(_test_nostacklesscall, level),
                         outer + 1)
        self.assertEqual(
            _test_nostacklesscall(lambda: _test_nostacklesscall(level)),
            outer + 2)

    def test_switch_inside_python_function_is_hard(self):
        def f():
            self.record("in f", level())
            stackless.schedule()
            return "done"

        def body():
            self.record("result", _test_nostacklesscall(f))

        t = self.spawn(body)
        t.run()
        # Suspended inside f: with C state, one level deeper.
        self.assertTrue(t.alive)
        self.assertFalse(t.restorable)
        self.assertGreaterEqual(t.nesting_level, 1)
        if stackless.enable_softswitch(None):
            self.assertEqual(t.nesting_level, 1)
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual([e[1:] for e in self.log],
                         [("in f", self.log[0][2]), ("result", "done")])

    def test_switch_in_c_is_hard(self):
        ch = stackless.channel()

        def body():
            self.record(_test_nostacklesscall(ch.receive))

        t = self.spawn(body)
        t.run()
        self.assertTrue(t.blocked)
        self.assertFalse(t.restorable)
        ch.send("value")
        stackless.run()
        self.assertEqual([e[1:] for e in self.log], [("value",)])

    def test_without_hook_the_switch_is_soft(self):
        # The control of the two tests above: blocked the same way
        # without the hook, a tasklet is restorable when soft switching
        # is on.
        if not stackless.enable_softswitch(None):
            self.skipTest("soft switching is off")
        ch = stackless.channel()
        t = self.spawn(lambda: ch.receive())
        t.run()
        self.assertTrue(t.blocked)
        self.assertTrue(t.restorable)
        t2 = self.spawn(lambda: stackless.schedule())
        t2.run()
        self.assertTrue(t2.restorable)
        self.assertEqual(t2.nesting_level, 0)

    def test_post_callback(self):
        calls = []

        def cb(*args, **kw):
            calls.append((args, kw))
            return "from cb"

        def f(*args, **kw):
            return ("f", args, kw)

        self.assertEqual(
            _test_nostacklesscall(f, 1, post_callback=cb, k=2), "from cb")
        # result, entry_flag, flag_now; the keywords again.
        self.assertEqual(calls, [((("f", (1,), {"k": 2}), 0, 0), {"k": 2})])
        calls.clear()
        self.assertEqual(
            _test_nostacklesscall(None, 1, 2, post_callback=cb), "from cb")
        self.assertEqual(calls, [(((1, 2), 0, 0), {})])

    @unittest.skipIf(_teststackless is None, "needs _teststackless")
    def test_set_try_stackless(self):
        # The permission is granted to f; a function of the stackless
        # protocol takes it, so that it is gone after f returned.
        def cb(result, entry_flag, flag_now):
            return result, entry_flag, flag_now

        self.assertEqual(
            _test_nostacklesscall(_teststackless.softswitchablefunc, 0,
                                  "x", set_try_stackless=True,
                                  post_callback=cb),
            (2, 0, 0))
        self.assertEqual(
            _test_nostacklesscall(len, "ab", set_try_stackless=False,
                                  post_callback=cb),
            (2, 0, 0))

    def test_exceptions_propagate(self):
        called = []

        def f():
            raise ValueError("from f")

        def cb(*args):
            called.append(args)

        with self.assertRaisesRegex(ValueError, "from f"):
            _test_nostacklesscall(f, post_callback=cb)
        self.assertEqual(called, [])

        def bad_cb(*args):
            raise KeyError("from cb")

        with self.assertRaises(KeyError):
            _test_nostacklesscall(None, post_callback=bad_cb)
        with self.assertRaises(TypeError):
            _test_nostacklesscall(None, post_callback=42)
        # set_try_stackless must have a truth value.

        class NoBool:
            def __bool__(self):
                raise ZeroDivisionError

        with self.assertRaises(ZeroDivisionError):
            _test_nostacklesscall(None, set_try_stackless=NoBool())

    def test_as_class_call(self):
        # Called through a Python-level __call__ but still in C, without
        # the instance.
        class C:
            __call__ = _test_nostacklesscall

        outer = level()
        self.assertEqual(C()(None, 1), (1,))
        self.assertEqual(C()(level), outer + 1)
        self.assertTrue(C.__flags__ & STACKLESS_CALL)

        def body():
            C()(stackless.schedule)

        t = self.spawn(body)
        t.run()
        self.assertTrue(t.alive)
        self.assertFalse(t.restorable)

    def test_as_init(self):
        # As __init__, without the instance: the result must be None.
        class C:
            __init__ = _test_nostacklesscall

        args = []
        self.assertIsInstance(C(lambda *a: args.append(a), 1, 2), C)
        self.assertEqual(args, [(1, 2)])
        with self.assertRaises(TypeError):
            C(None, 1)          # __init__ returned (1,)


class CallFlagTest(unittest.TestCase):
    """Bit 15 of __flags__ is set exactly while a class's instances are
    called through a Python-level __call__ (M-21.10)."""

    both_modes = False

    def flag(self, cls):
        return bool(cls.__flags__ & STACKLESS_CALL)

    @unittest.skipIf(_teststackless is None, "needs _teststackless")
    def test_constant(self):
        self.assertEqual(_teststackless.Py_TPFLAGS_HAVE_STACKLESS_CALL,
                         STACKLESS_CALL)

    def test_without_call(self):
        class A:
            pass

        for cls in (A, object, type, int, types.FunctionType,
                    type(_test_nostacklesscall), stackless.tasklet,
                    functools.partial, types.SimpleNamespace):
            with self.subTest(cls=cls):
                self.assertFalse(self.flag(cls))

    def test_with_call(self):
        class A:
            def __call__(self):
                return "A"

        class B:
            __call__ = _test_nostacklesscall

        class C:
            __call__ = staticmethod(lambda: "C")

        class N:
            __call__ = None

        for cls in (A, B, C, N):
            with self.subTest(cls=cls):
                self.assertTrue(self.flag(cls))
        self.assertEqual(A()(), "A")
        self.assertEqual(C()(), "C")
        with self.assertRaises(TypeError):
            N()()

    def test_other_flags_unchanged(self):
        class A:
            pass

        class B:
            def __call__(self):
                pass

        self.assertEqual(B.__flags__ & ~STACKLESS_CALL, A.__flags__)

    def test_inherited(self):
        class A:
            def __call__(self):
                return "A"

        class B(A):
            pass

        class C(B):
            pass

        for cls in (A, B, C):
            with self.subTest(cls=cls):
                self.assertTrue(self.flag(cls))
        self.assertEqual(C()(), "A")

    def test_assign_and_delete(self):
        class A:
            pass

        class B(A):
            pass

        class C(A):
            def __call__(self):
                return "C"

        self.assertEqual([self.flag(c) for c in (A, B, C)],
                         [False, False, True])
        A.__call__ = lambda self: "A"
        self.assertEqual([self.flag(c) for c in (A, B, C)],
                         [True, True, True])
        self.assertEqual(B()(), "A")
        del A.__call__
        self.assertEqual([self.flag(c) for c in (A, B, C)],
                         [False, False, True])
        with self.assertRaises(TypeError):
            B()()
        del C.__call__
        self.assertFalse(self.flag(C))
        B.__call__ = _test_nostacklesscall
        self.assertEqual([self.flag(c) for c in (A, B, C)],
                         [False, True, False])
        self.assertEqual(B()(None, 5), (5,))
        # A new subclass of B inherits the flag.
        self.assertTrue(self.flag(type("D", (B,), {})))

    def test_over_a_c_callable(self):
        # A subclass of a type with a C tp_call calls it in C, unless it
        # gets a Python __call__.
        class P(functools.partial):
            pass

        self.assertFalse(self.flag(P))
        self.assertEqual(P(len, "abc")(), 3)
        P.__call__ = lambda self: "P"
        self.assertTrue(self.flag(P))
        self.assertEqual(P(len, "abc")(), "P")
        del P.__call__
        self.assertFalse(self.flag(P))
        self.assertEqual(P(len, "abc")(), 3)

    def test_bases_assignment(self):
        class A:
            def __call__(self):
                return "A"

        class B:
            pass

        class C(B):
            pass

        self.assertFalse(self.flag(C))
        C.__bases__ = (A,)
        self.assertTrue(self.flag(C))
        self.assertEqual(C()(), "A")
        C.__bases__ = (B,)
        self.assertFalse(self.flag(C))

    def test_metaclass(self):
        class M(type):
            def __call__(cls, *args):
                return ("M", cls.__name__, args)

        class X(metaclass=M):
            pass

        class Plain(type):
            pass

        class Y(metaclass=Plain):
            def __call__(self):
                return "Y"

        self.assertTrue(self.flag(M))
        self.assertFalse(self.flag(X))
        self.assertEqual(X(1), ("M", "X", (1,)))
        self.assertFalse(self.flag(Plain))
        self.assertTrue(self.flag(Y))
        self.assertEqual(Y()(), "Y")
        del M.__call__
        self.assertFalse(self.flag(M))
        self.assertIsInstance(X(), X)
        Plain.__call__ = lambda cls: "Plain"
        self.assertTrue(self.flag(Plain))
        self.assertEqual(Y(), "Plain")

    def test_all_classes(self):
        # For every class alive: the flag says whether __call__ comes
        # from anything but a slot wrapper of CPython.
        def expected(cls):
            for klass in cls.__mro__:
                if "__call__" in vars(klass):
                    d = vars(klass)["__call__"]
                    return not (isinstance(d, types.WrapperDescriptorType)
                                and d.__objclass__ in cls.__mro__)
            return False

        seen = set()
        todo = [object]
        while todo:
            cls = todo.pop()
            if cls in seen:
                continue
            seen.add(cls)
            try:
                todo.extend(type.__subclasses__(cls))
            except TypeError:
                pass
            with self.subTest(cls=cls):
                self.assertEqual(self.flag(cls), expected(cls))
        self.assertGreater(len(seen), 100)


class Pickler:
    """Stands for a pickler: an object with attributes."""


class PickleModuleDictTest(unittest.TestCase):
    """_pickle_moduledict(pickler, d) (M-21.11, P-9)."""

    both_modes = False

    def test_module_dict(self):
        p = Pickler()
        for mod in (sys, stackless, types):
            with self.subTest(module=mod.__name__):
                self.assertEqual(_stackless._pickle_moduledict(p,
                                                               mod.__dict__),
                                 (getattr, (mod, "__dict__")))
        self.assertIs(stackless._pickle_moduledict,
                      _stackless._pickle_moduledict)

    def test_other_dict(self):
        p = Pickler()
        self.assertIsNone(_stackless._pickle_moduledict(p, {}))
        self.assertIsNone(_stackless._pickle_moduledict(p, vars(Pickler())))
        mod = types.ModuleType("not_in_sys_modules")
        self.assertIsNone(_stackless._pickle_moduledict(p, mod.__dict__))

    def test_cache(self):
        p = Pickler()
        self.assertIsNone(_stackless._pickle_moduledict(p, {}))
        ids = p.module_dict_ids
        self.assertIs(type(ids), dict)
        for key, mod in ids.items():
            self.assertIsInstance(mod, types.ModuleType)
            self.assertEqual(key, id(mod.__dict__))
        self.assertIs(ids[id(sys.__dict__)], sys)
        # Looked up once: the cache answers.
        d = {}
        ids[id(d)] = types
        self.assertEqual(_stackless._pickle_moduledict(p, d),
                         (getattr, (types, "__dict__")))
        del ids[id(sys.__dict__)]
        self.assertIsNone(_stackless._pickle_moduledict(p, sys.__dict__))
        self.assertIs(p.module_dict_ids, ids)

    def test_only_modules(self):
        name = "test_hooks_not_a_module"
        fake = Pickler()
        sys.modules[name] = fake
        try:
            p = Pickler()
            self.assertIsNone(_stackless._pickle_moduledict(p, vars(fake)))
            self.assertNotIn(id(vars(fake)), p.module_dict_ids)
        finally:
            del sys.modules[name]

    def test_type_errors(self):
        p = Pickler()
        for bad in (None, [], sys, types.MappingProxyType({})):
            with self.subTest(d=bad):
                with self.assertRaises(TypeError):
                    _stackless._pickle_moduledict(p, bad)
        p.module_dict_ids = [1, 2]
        with self.assertRaisesRegex(TypeError, "module_dict_ids"):
            _stackless._pickle_moduledict(p, sys.__dict__)
        with self.assertRaises(TypeError):
            _stackless._pickle_moduledict(p)
        # A pickler that has no room for the cache.
        with self.assertRaises(AttributeError):
            _stackless._pickle_moduledict(object(), {})

    def test_python_pickler(self):
        # pickle's Python pickler saves the dict of a module by reference.
        import json
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            with self.subTest(proto=proto):
                data = pickle._dumps([json.__dict__, {"a": 1}], proto)
                mdict, plain = pickle.loads(data)
                self.assertIs(mdict, json.__dict__)
                self.assertEqual(plain, {"a": 1})
                f = io.BytesIO()
                pickler = pickle._Pickler(f, proto)
                pickler.dump(json.__dict__)
                self.assertIs(pickler.module_dict_ids[id(json.__dict__)],
                              json)


class GcTrackTest(unittest.TestCase):
    """_gc_track(obj), _gc_untrack(obj) (M-21.11)."""

    both_modes = False

    def test_track_untrack(self):
        x = [[]]
        self.assertTrue(gc.is_tracked(x))
        self.assertIsNone(_stackless._gc_untrack(x))
        self.assertFalse(gc.is_tracked(x))
        self.assertIsNone(_stackless._gc_untrack(x))       # again
        self.assertFalse(gc.is_tracked(x))
        self.assertIsNone(_stackless._gc_track(x))
        self.assertTrue(gc.is_tracked(x))
        self.assertIsNone(_stackless._gc_track(x))         # again
        self.assertTrue(gc.is_tracked(x))
        gc.collect()
        self.assertEqual(x, [[]])

    def test_untracked_container(self):
        d = {}
        self.assertFalse(gc.is_tracked(d))
        _stackless._gc_track(d)
        self.assertTrue(gc.is_tracked(d))
        d["self"] = d
        del d
        gc.collect()

    def test_untracked_cycle_is_not_collected(self):
        class Node:
            pass

        import weakref
        n = Node()
        n.me = n
        ref = weakref.ref(n)
        _stackless._gc_untrack(n)
        del n
        gc.collect()
        self.assertIsNotNone(ref())
        _stackless._gc_track(ref())
        gc.collect()
        self.assertIsNone(ref())

    def test_untracked_objects_stay_alive(self):
        # CPython frees objects of many types on the assumption that they
        # are tracked: what _gc_untrack() untracked lives until
        # _gc_track().
        import weakref

        class C:
            def m(self):
                pass

        objs = [lambda: 0, C(), C().m, type("T", (), {})]
        for obj in objs:
            _stackless._gc_untrack(obj)
            self.assertFalse(gc.is_tracked(obj))
        refs = [weakref.ref(obj) for obj in objs]
        del objs, obj
        gc.collect()
        for ref in refs:
            self.assertIsNotNone(ref())
            self.assertFalse(gc.is_tracked(ref()))
        for ref in refs:
            _stackless._gc_track(ref())
        gc.collect()
        for ref in refs:
            self.assertIsNone(ref())

    def test_untracked_at_exit(self):
        # At the end the objects are tracked again before they go; so
        # when the holder is dropped.
        code = ("import _stackless, gc\n"
                "class C:\n"
                "    def m(self): pass\n"
                "keep = [lambda: 0, C(), C().m, KeyError(1), (1, [])]\n"
                "for o in keep: _stackless._gc_untrack(o)\n"
                "for o in [lambda: 1, C().m]: _stackless._gc_untrack(o)\n"
                "del o\n"
                "{}\n"
                "gc.collect()\n"
                "print('ok')\n")
        for extra in ("", "del _stackless._gc_untracked", "del keep"):
            with self.subTest(extra=extra):
                out = subprocess.run(
                    [sys.executable, "-I", "-c", code.format(extra)],
                    capture_output=True, text=True)
                self.assertEqual((out.returncode, out.stdout.strip()),
                                 (0, "ok"), out.stderr)

    def test_non_gc_objects(self):
        for obj in (1, 2 ** 100, "text", b"bytes", 1.5, None, True, (),
                    Ellipsis, int, object, _test_nostacklesscall):
            with self.subTest(obj=obj):
                for func in (_stackless._gc_track, _stackless._gc_untrack,
                             _stackless._gc_track):
                    self.assertIsNone(func(obj))
                self.assertFalse(gc.is_tracked(obj))
        gc.collect()

    def test_arguments(self):
        for func in (_stackless._gc_track, _stackless._gc_untrack):
            with self.subTest(func=func):
                self.assertIs(getattr(stackless, func.__name__), func)
                with self.assertRaises(TypeError):
                    func()
                with self.assertRaises(TypeError):
                    func(1, 2)


class OtherHooksTest(StacklessTestCase):
    """The rest of M-21.11."""

    def test_module_reduce(self):
        self.assertEqual(stackless.__reduce__(), "stackless")
        for proto in range(6):
            self.assertEqual(stackless.__reduce_ex__(proto), "stackless")
        self.assertIs(copy.copy(stackless), stackless)
        self.assertIs(copy.deepcopy(stackless), stackless)
        self.assertIs(pickle.loads(pickle.dumps(stackless)), stackless)

    def test_switch_trap_level(self):
        self.assertEqual(stackless.switch_trap(0), 0)
        self.assertEqual(stackless.switch_trap(1), 0)
        try:
            self.assertEqual(stackless.switch_trap(0), 1)
            self.assertEqual(stackless.switch_trap(1), 1)
            self.assertEqual(stackless.switch_trap(0), 2)
            self.spawn(lambda: None)
            with self.assertRaisesRegex(RuntimeError, "switch_trap"):
                stackless.schedule()
            self.assertEqual(stackless.switch_trap(-1), 2)
        finally:
            stackless.switch_trap(-stackless.switch_trap(0))
        self.assertEqual(stackless.switch_trap(0), 0)

    def test_import(self):
        import importlib
        self.assertIs(importlib.import_module("_stackless"), _stackless)
        self.assertIs(_stackless._wrap, stackless._wrap)
        for name in ("_test_nostacklesscall", "test_nostacklesscall_type",
                     "_pickle_moduledict", "_gc_track", "_gc_untrack"):
            with self.subTest(name=name):
                self.assertIs(getattr(stackless, name),
                              getattr(_stackless, name))


# The names of sys on stock CPython 3.13 (python -I, Linux, release
# build), and those that depend on how and where CPython was built.
STOCK_SYS = {
    "__breakpointhook__", "__displayhook__", "__doc__", "__excepthook__",
    "__loader__", "__name__", "__package__", "__spec__", "__stderr__",
    "__stdin__", "__stdout__", "__unraisablehook__", "_base_executable",
    "_baserepl", "_clear_internal_caches", "_clear_type_cache",
    "_current_exceptions", "_current_frames", "_debugmallocstats",
    "_framework", "_get_cpu_count_config", "_getframe",
    "_getframemodulename", "_git", "_home", "_is_gil_enabled",
    "_is_interned", "_setprofileallthreads", "_settraceallthreads",
    "_stdlib_dir", "_xoptions", "abiflags", "activate_stack_trampoline",
    "addaudithook", "api_version", "argv", "audit", "base_exec_prefix",
    "base_prefix", "breakpointhook", "builtin_module_names", "byteorder",
    "call_tracing", "copyright", "deactivate_stack_trampoline",
    "displayhook", "dont_write_bytecode", "exc_info", "excepthook",
    "exception", "exec_prefix", "executable", "exit", "flags", "float_info",
    "float_repr_style", "get_asyncgen_hooks",
    "get_coroutine_origin_tracking_depth", "get_int_max_str_digits",
    "getallocatedblocks", "getdefaultencoding", "getdlopenflags",
    "getfilesystemencodeerrors", "getfilesystemencoding", "getprofile",
    "getrecursionlimit", "getrefcount", "getsizeof", "getswitchinterval",
    "gettrace", "getunicodeinternedsize", "hash_info", "hexversion",
    "implementation", "int_info", "intern", "is_finalizing",
    "is_stack_trampoline_active", "maxsize", "maxunicode", "meta_path",
    "modules", "monitoring", "orig_argv", "path", "path_hooks",
    "path_importer_cache", "platform", "platlibdir", "prefix",
    "pycache_prefix", "set_asyncgen_hooks",
    "set_coroutine_origin_tracking_depth", "set_int_max_str_digits",
    "setdlopenflags", "setprofile", "setrecursionlimit",
    "setswitchinterval", "settrace", "stderr", "stdin",
    "stdlib_module_names", "stdout", "thread_info", "unraisablehook",
    "version", "version_info", "warnoptions",
}
BUILD_DEPENDENT_SYS = {
    "gettotalrefcount", "getobjects", "_stats_on", "_stats_off",
    "_stats_clear", "_stats_dump", "getdlopenflags", "setdlopenflags",
    "getwindowsversion", "_enablelegacywindowsfsencoding", "mdebug",
    "getandroidapilevel", "activate_stack_trampoline",
    "deactivate_stack_trampoline", "is_stack_trampoline_active",
    "abiflags", "_multiarch", "dllhandle", "winver", "_vpath",
    "_emscripten_info",
}


class SysTest(unittest.TestCase):
    """Stackless adds nothing to sys (M-21.11)."""

    both_modes = False

    def test_no_sys_additions(self):
        code = ("import stackless, sys\n"
                "ch = stackless.channel()\n"
                "stackless.tasklet(ch.send)(1)\n"
                "stackless.tasklet(ch.receive)()\n"
                "stackless.run()\n"
                "print(' '.join(sorted(dir(sys))))\n")
        out = subprocess.run([sys.executable, "-I", "-c", code],
                             check=True, capture_output=True,
                             text=True).stdout
        names = set(out.split())
        self.assertEqual(names - STOCK_SYS - BUILD_DEPENDENT_SYS, set())
        self.assertEqual(STOCK_SYS - BUILD_DEPENDENT_SYS - names, set())


if __name__ == "__main__":
    unittest.main()
