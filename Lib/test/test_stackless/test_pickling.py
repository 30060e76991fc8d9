"""Pickling of what sits on frames and CPython cannot pickle (spec P-1,
P-6 .. P-9, P-12): code objects, functions by value, cells, modules and
dict views, rebuilt by the helpers of stackless._wrap, with both picklers
and every protocol.
"""

import copy
import copyreg
import importlib.util
import io
import pickle
import subprocess
import sys
import textwrap
import types
import unittest
from test.support import script_helper

import stackless

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def c_round_trip(obj, proto):
    return pickle.loads(pickle.dumps(obj, proto))


def py_round_trip(obj, proto):
    f = io.BytesIO()
    pickle._Pickler(f, proto).dump(obj)
    f.seek(0)
    return pickle._Unpickler(f).load()


ROUND_TRIPS = (c_round_trip, py_round_trip)


def every_round_trip(test, obj):
    """obj through each pickler and protocol: the copies, labelled."""
    for trip in ROUND_TRIPS:
        for proto in PROTOCOLS:
            with test.subTest(pickler=trip.__name__, protocol=proto):
                yield trip(obj, proto)


def make_closure(a, b=2):
    x = [a]

    def inner(*args, k=3, **kw):
        nonlocal x
        x = x + [k]
        return a, b, x, args, kw

    return inner


class WrapTest(unittest.TestCase):

    def test_wrap_is_importable_by_name(self):
        # P-1: pickles name the helpers stackless._wrap.<name>.
        import stackless._wrap as wrap
        self.assertIs(wrap, stackless._wrap)
        for name in ("code", "cell", "cell_set", "module", "function",
                     "function_setstate", "dict_view"):
            helper = getattr(wrap, name)
            self.assertEqual(helper.__module__, "stackless._wrap")
            self.assertEqual(helper.__qualname__, name)

    def test_unpickling_imports_stackless(self):
        # A process that never imported stackless loads such a pickle.
        data = pickle.dumps(make_closure.__code__)
        code = ("import pickle, sys\n"
                "assert 'stackless' not in sys.modules\n"
                f"co = pickle.loads({data!r})\n"
                "print(co.co_name)\n")
        rc, out, err = script_helper.assert_python_ok("-c", code)
        self.assertEqual(out.strip(), b"make_closure")

    def test_stock_behaviour_without_stackless(self):
        # Only `import stackless` registers the reducers.
        code = ("import pickle\n"
                "try:\n"
                "    pickle.dumps(compile('1', '', 'eval'))\n"
                "except TypeError:\n"
                "    print('refused')\n")
        rc, out, err = script_helper.assert_python_ok("-c", code)
        self.assertEqual(out.strip(), b"refused")


class CodeTest(unittest.TestCase):
    """P-6: a code object pickles with all its constructor fields."""

    def test_round_trip(self):
        co = make_closure.__code__
        for copy_ in every_round_trip(self, co):
            self.assertIsNot(copy_, co)
            self.assertEqual(copy_, co)
            self.assertEqual(copy_.co_qualname, co.co_qualname)
            self.assertEqual(copy_.co_exceptiontable, co.co_exceptiontable)
            self.assertEqual(copy_.co_linetable, co.co_linetable)
            self.assertEqual(list(copy_.co_positions()),
                             list(co.co_positions()))

    def test_nested_code_in_constants(self):
        co = make_closure.__code__
        inner = [c for c in co.co_consts if isinstance(c, types.CodeType)]
        self.assertEqual(len(inner), 1)
        copy_ = c_round_trip(co, pickle.HIGHEST_PROTOCOL)
        [copied_inner] = [c for c in copy_.co_consts
                          if isinstance(c, types.CodeType)]
        self.assertEqual(copied_inner, inner[0])
        self.assertEqual(copied_inner.co_freevars, ("a", "b", "x"))

    def test_rebuilt_code_runs(self):
        f = make_closure(5)
        for co in every_round_trip(self, f.__code__):
            g = types.FunctionType(co, f.__globals__, f.__name__,
                                   f.__defaults__,
                                   tuple(types.CellType(c.cell_contents)
                                         for c in f.__closure__))
            g.__kwdefaults__ = f.__kwdefaults__
            self.assertEqual(g(1, z=2), (5, 2, [5, 3], (1,), {"z": 2}))

    def test_shared_code_is_stored_once(self):
        co = make_closure.__code__
        a, b = c_round_trip([co, co], pickle.HIGHEST_PROTOCOL)
        self.assertIs(a, b)

    def test_other_bytecode_is_refused(self):
        # The pickle names the bytecode it holds; another Python's is
        # refused, and the error names both.
        co = make_closure.__code__
        rebuild, args = copyreg.dispatch_table[types.CodeType](co)
        self.assertIs(rebuild, stackless._wrap.code)
        self.assertEqual(args[0], importlib.util.MAGIC_NUMBER)
        other = b"\x00\x01\r\n"
        with self.assertRaises(ValueError) as cm:
            rebuild(other, *args[1:])
        self.assertIn(repr(other), str(cm.exception))
        self.assertIn(repr(importlib.util.MAGIC_NUMBER), str(cm.exception))

    def test_copy_keeps_the_object(self):
        # copy treats code as immutable, as on stock CPython.
        co = make_closure.__code__
        self.assertIs(copy.copy(co), co)
        self.assertIs(copy.deepcopy(co), co)


class CellTest(unittest.TestCase):
    """P-8: cells, empty or full, also in a cycle through their
    contents."""

    def test_full(self):
        cell = types.CellType([1, 2])
        for copy_ in every_round_trip(self, cell):
            self.assertIsInstance(copy_, types.CellType)
            self.assertEqual(copy_.cell_contents, [1, 2])

    def test_none_contents(self):
        for copy_ in every_round_trip(self, types.CellType(None)):
            self.assertIsNone(copy_.cell_contents)

    def test_empty(self):
        for copy_ in every_round_trip(self, types.CellType()):
            with self.assertRaises(ValueError):
                copy_.cell_contents

    def test_cycle(self):
        cell = types.CellType()
        cell.cell_contents = [cell]
        for copy_ in every_round_trip(self, cell):
            self.assertIs(copy_.cell_contents[0], copy_)

    def test_closure_tuple_shares_cells(self):
        f = make_closure(1)
        closure = f.__closure__
        a, b = c_round_trip([closure, closure[2]], pickle.HIGHEST_PROTOCOL)
        self.assertIs(a[2], b)
        self.assertEqual([c.cell_contents for c in a],
                         [c.cell_contents for c in closure])


def module_level(x):
    return x + 1


def make_pair():
    shared = [0]

    def inc():
        shared[0] += 1
        return shared[0]

    def get():
        return shared[0]

    return inc, get


def make_recursive():
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)
    return fact


class FunctionTest(unittest.TestCase):
    """P-7: functions by reference first, else by value, with all their
    attributes."""

    def test_module_level_function_by_reference(self):
        for trip in ROUND_TRIPS:
            for proto in PROTOCOLS:
                with self.subTest(pickler=trip.__name__, protocol=proto):
                    self.assertIs(trip(module_level, proto), module_level)
        self.assertNotIn(b"stackless._wrap", pickle.dumps(module_level))

    def test_lambda_by_value(self):
        f = lambda x, *, k=2: (x, k)            # noqa: E731
        f.attr = [5]
        f.__doc__ = "doc"
        for g in every_round_trip(self, f):
            self.assertIsNot(g, f)
            self.assertEqual(g(1), (1, 2))
            self.assertEqual(g.attr, [5])
            self.assertEqual(g.__doc__, "doc")
            self.assertEqual(g.__qualname__, f.__qualname__)
            self.assertEqual(g.__module__, f.__module__)
            self.assertEqual(g.__kwdefaults__, {"k": 2})
            self.assertIs(g.__globals__, globals())

    def test_closure_by_value(self):
        f = make_closure(4, 7)
        for g in every_round_trip(self, f):
            self.assertEqual(g(9), (4, 7, [4, 3], (9,), {}))
            self.assertEqual(g.__defaults__, f.__defaults__)

    def test_annotations(self):
        def annotated(a: int, b: "list[int]" = None) -> list:
            return [a, b]
        for g in every_round_trip(self, annotated):
            self.assertEqual(g.__annotations__, annotated.__annotations__)
            self.assertEqual(g(1), [1, None])

    def test_closures_share_their_cells(self):
        inc, get = make_pair()
        inc()
        inc2, get2 = c_round_trip((inc, get), pickle.HIGHEST_PROTOCOL)
        self.assertIs(inc2.__closure__[0], get2.__closure__[0])
        self.assertEqual(inc2(), 2)
        self.assertEqual(get2(), 2)
        self.assertEqual(get(), 1)

    def test_recursive_closure(self):
        fact = make_recursive()
        for g in every_round_trip(self, fact):
            self.assertEqual(g(5), 120)

    def test_globals_of_no_module_by_value(self):
        ns = {"y": 10}
        exec("def h(x):\n    return x + y\n", ns)
        for g in every_round_trip(self, ns["h"]):
            self.assertEqual(g(1), 11)
            self.assertIsNot(g.__globals__, ns)
            self.assertEqual(g.__globals__["y"], 10)

    def test_pickler_dispatch_table_without_functions(self):
        # The fallback asks the pickler's own table: none, no by value.
        f = lambda: None                        # noqa: E731
        for cls in (pickle.Pickler, pickle._Pickler):
            with self.subTest(pickler=cls):
                p = cls(io.BytesIO())
                p.dispatch_table = {}
                # As on stock: the C pickler's lookup error is an
                # AttributeError, the Python one's a PicklingError.
                with self.assertRaises((pickle.PicklingError,
                                        AttributeError)):
                    p.dump(f)

    def test_stock_behaviour_without_stackless(self):
        code = ("import pickle\n"
                "try:\n"
                "    pickle.dumps(lambda: None)\n"
                "except pickle.PicklingError:\n"
                "    print('refused')\n")
        rc, out, err = script_helper.assert_python_ok("-c", code)
        self.assertEqual(out.strip(), b"refused")


class DictSubclass(dict):
    def keys(self):
        raise AssertionError("not called")


class DictViewTest(unittest.TestCase):
    """P-12: dict views, by their dict."""

    def test_views(self):
        d = {"a": 1, "b": [2]}
        for kind in ("keys", "values", "items"):
            view = getattr(d, kind)()
            for copy_ in every_round_trip(self, view):
                self.assertIs(type(copy_), type(view))
                self.assertEqual(list(copy_), list(view))

    def test_view_shares_its_dict(self):
        d = {"a": 1}
        for d2, keys, items in every_round_trip(self, (d, d.keys(),
                                                       d.items())):
            d2["b"] = 2
            self.assertEqual(sorted(keys), ["a", "b"])
            self.assertEqual(sorted(items), [("a", 1), ("b", 2)])

    def test_view_of_dict_subclass(self):
        d = DictSubclass(x=1)
        copy_ = c_round_trip(dict.keys(d), pickle.HIGHEST_PROTOCOL)
        self.assertEqual(list(copy_), ["x"])

    def test_bad_kind(self):
        with self.assertRaises(ValueError):
            stackless._wrap.dict_view({}, "clear")


class ModuleTest(unittest.TestCase):
    """P-9: modules by name if sys.modules has them, else by name and
    dict."""

    def test_imported_module(self):
        for copy_ in every_round_trip(self, sys):
            self.assertIs(copy_, sys)
        for copy_ in every_round_trip(self, types):
            self.assertIs(copy_, types)

    def test_stackless_module(self):
        for copy_ in every_round_trip(self, stackless):
            self.assertIs(copy_, stackless)

    def test_module_not_in_sys_modules(self):
        m = types.ModuleType("stackless_test_unlisted", "doc")
        m.value = [1, 2]
        self.assertNotIn(m.__name__, sys.modules)
        for copy_ in every_round_trip(self, m):
            self.assertIsNot(copy_, m)
            self.assertIsInstance(copy_, types.ModuleType)
            self.assertEqual(copy_.__name__, m.__name__)
            self.assertEqual(copy_.__doc__, "doc")
            self.assertEqual(copy_.value, [1, 2])

    def test_module_in_a_cycle(self):
        m = types.ModuleType("stackless_test_cycle")
        m.me = m
        for copy_ in every_round_trip(self, m):
            self.assertIs(copy_.me, copy_)


class ModuleDictTest(unittest.TestCase):
    """P-9: with both picklers, the __dict__ of a module of sys.modules
    pickles by reference, other dicts as always."""

    def test_module_dict_by_reference_c_pickler(self):
        import json
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                data = pickle.dumps([json.__dict__, {"a": 1}, json.__dict__],
                                    proto)
                self.assertLess(len(data), 200)
                d, other, again = pickle.loads(data)
                self.assertIs(d, json.__dict__)
                self.assertIs(again, json.__dict__)
                self.assertEqual(other, {"a": 1})

    def test_c_pickler_other_dicts(self):
        # A dict that only looks like a module's (its __name__ names a
        # module), and the dict of a module not in sys.modules, by value.
        fake = {"__name__": "json", "x": 1}
        m = types.ModuleType("stackless_test_unlisted")
        m.x = 5
        for d in (fake, m.__dict__):
            back = pickle.loads(pickle.dumps(d))
            self.assertIsNot(back, d)
            self.assertEqual(back["x"], d["x"])

    def test_dispatch_table_without_module_reducer(self):
        # Both picklers agree: a dispatch table of the pickler's own that
        # does not reduce modules saves a module's dict as a dict.
        m = types.ModuleType("stackless_test_listed")
        m.x = 5
        sys.modules[m.__name__] = m
        self.addCleanup(sys.modules.pop, m.__name__)
        for cls in (pickle.Pickler, pickle._Pickler):
            for table, by_ref in (({}, False),
                                  (copyreg.dispatch_table, True)):
                with self.subTest(pickler=cls.__name__, by_ref=by_ref):
                    f = io.BytesIO()
                    p = cls(f)
                    p.dispatch_table = table
                    p.dump(m.__dict__)
                    back = pickle.loads(f.getvalue())
                    self.assertIs(back is m.__dict__, by_ref)
                    self.assertEqual(back["x"], 5)

    def test_c_pickler_without_stackless(self):
        # Nothing changes before import stackless registers the reducer
        # of modules: the dict goes by value, as in CPython.
        code = textwrap.dedent("""
            import pickle, sys, types
            m = types.ModuleType("plain")
            m.x = 5
            sys.modules["plain"] = m
            d = pickle.loads(pickle.dumps(m.__dict__))
            print(d is m.__dict__, d["x"], "stackless" in sys.modules)
        """)
        r = subprocess.run([sys.executable, "-I", "-c", code],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.split(), ["False", "5", "False"], r.stderr)

    def test_module_dict_by_reference(self):
        import json
        for proto in PROTOCOLS:
            with self.subTest(protocol=proto):
                f = io.BytesIO()
                pickle._Pickler(f, proto).dump([json.__dict__, {"a": 1}])
                self.assertLess(len(f.getvalue()), 200)
                f.seek(0)
                d, other = pickle._Unpickler(f).load()
                self.assertIs(d, json.__dict__)
                self.assertEqual(other, {"a": 1})

    def test_module_not_in_sys_modules(self):
        m = types.ModuleType("stackless_test_unlisted")
        m.x = 5
        f = io.BytesIO()
        pickle._Pickler(f).dump(m.__dict__)
        f.seek(0)
        d = pickle._Unpickler(f).load()
        self.assertIsNot(d, m.__dict__)
        self.assertEqual(d["x"], 5)


if __name__ == "__main__":
    unittest.main()
