"""The functions and attributes of the stackless module (spec M-1 .. M-19).

The module layout and the version are tested in test_module; tasklets in
test_tasklets.  Threads (X) are out of scope here: everything runs in the
main tasklet of the calling thread.  Each test leaves the scheduler and
the per-thread and per-interpreter settings as it found them.
"""

import builtins
import pickle
import sys
import threading
import types
import unittest

from test import support
from test.support import script_helper

import stackless
from . import helpers
from .helpers import nop
from stackless import bomb, channel, tasklet
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)

# M-1: what `from stackless import *` must give.
REQUIRED_NAMES = {
    "atomic", "channel", "tasklet", "run", "schedule", "schedule_remove",
    "getcurrent", "getmain", "getruncount", "get_thread_info", "stackless",
}
# M-1: the rest of the original __all__.
ORIGINAL_ALL = REQUIRED_NAMES | {
    "enable_softswitch", "get_channel_callback", "set_channel_callback",
    "get_schedule_callback", "set_schedule_callback", "getcurrentid",
    "getdebug", "getthreads", "getuncollectables",
    "pickle_with_tracing_state", "set_error_handler", "switch_trap",
}


class StacklessTestCase(helpers.StacklessTestCase):

    def in_tasklet(self, func, *args):
        """Run func(*args) in a new tasklet now; return its result."""
        result = []
        self.new(lambda: result.append(func(*args)), ()).run()
        self.assertEqual(len(result), 1)
        return result[0]


class StarImportTest(unittest.TestCase):
    """M-1: `from stackless import *` and the module attributes."""

    def star_import(self):
        ns = {}
        exec("from stackless import *", ns)
        return ns

    def test_required_names(self):
        ns = self.star_import()
        self.assertLessEqual(REQUIRED_NAMES, set(ns))
        self.assertIs(ns["stackless"], stackless)
        self.assertIs(ns["tasklet"], stackless.tasklet)
        self.assertIs(ns["channel"], stackless.channel)
        self.assertIs(ns["atomic"], stackless.atomic)

    def test_original_all(self):
        self.assertLessEqual(ORIGINAL_ALL, set(self.star_import()))

    def test_all_names_exist(self):
        for name in stackless.__all__:
            with self.subTest(name=name):
                self.assertTrue(hasattr(stackless, name))

    def test_attributes(self):
        for name in ("bomb", "pickle_flags", "pickle_flags_default",
                     "PICKLEFLAGS_PRESERVE_TRACING_STATE",
                     "PICKLEFLAGS_PRESERVE_AG_FINALIZER",
                     "PICKLEFLAGS_RESET_AG_FINALIZER"):
            with self.subTest(name=name):
                self.assertTrue(hasattr(stackless, name))

    def test_self_reference(self):
        self.assertIs(stackless.stackless, stackless)


class ComputedAttributeTest(StacklessTestCase):
    """M-2: current, main, runcount, threads, debug, uncollectables,
    pickle_with_tracing_state are computed per access."""

    def test_equal_to_functions(self):
        self.assertIs(stackless.current, stackless.getcurrent())
        self.assertIs(stackless.main, stackless.getmain())
        self.assertEqual(stackless.runcount, stackless.getruncount())
        self.assertEqual(stackless.threads, stackless.getthreads())
        self.assertEqual(stackless.debug, stackless.getdebug())
        self.assertEqual(stackless.uncollectables,
                         stackless.getuncollectables())
        self.assertEqual(stackless.pickle_with_tracing_state,
                         bool(stackless.pickle_flags() & 1))

    def test_evaluated_per_access(self):
        self.assertEqual(stackless.runcount, 1)
        self.new(nop)()
        self.assertEqual(stackless.runcount, 2)
        stackless.run()
        self.assertEqual(stackless.runcount, 1)

    def test_inside_tasklet(self):
        main = stackless.getmain()
        seen = self.in_tasklet(lambda: (stackless.current, stackless.main,
                                        stackless.runcount))
        t = self.tasklets[-1]
        self.assertEqual(seen, (t, main, 2))
        self.assertIs(seen[0], t)
        self.assertIs(seen[1], main)

    def test_read_only(self):
        for name in ("current", "main", "runcount", "threads"):
            with self.subTest(name=name):
                with self.assertRaises(AttributeError):
                    setattr(stackless, name, None)


class GetCurrentTest(StacklessTestCase):
    """M-3: getcurrent(); M-4: getmain()."""

    def test_in_main(self):
        cur = stackless.getcurrent()
        self.assertIsInstance(cur, tasklet)
        self.assertIs(cur, stackless.getmain())
        self.assertTrue(cur.is_current)
        self.assertTrue(cur.is_main)
        self.assertIs(stackless.getcurrent(), cur)

    def test_in_tasklet(self):
        main = stackless.getmain()
        cur, m = self.in_tasklet(lambda: (stackless.getcurrent(),
                                          stackless.getmain()))
        self.assertIs(cur, self.tasklets[-1])
        self.assertIs(m, main)
        self.assertIsNot(cur, main)

    def test_subclass_instance(self):
        class Sub(tasklet):
            pass
        t = Sub(lambda: seen.append(stackless.getcurrent()))
        self.tasklets.append(t)
        seen = []
        t()
        stackless.run()
        self.assertIs(seen[0], t)


class GetRunCountTest(StacklessTestCase):
    """M-5: getruncount()."""

    def test_counts_runnable(self):
        self.assertEqual(stackless.getruncount(), 1)
        a = self.new(nop)()
        self.assertEqual(stackless.getruncount(), 2)
        self.new(nop)()
        self.assertEqual(stackless.getruncount(), 3)
        a.remove()
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()
        self.assertEqual(stackless.getruncount(), 1)

    def test_paused_and_blocked_not_counted(self):
        ch = channel()
        self.new(ch.receive)().run()       # blocked
        self.new(nop, ())                  # paused
        self.assertEqual(stackless.getruncount(), 1)
        ch.send(None)

    def test_watchdog_not_counted(self):
        # main is paused while in run().
        self.new(lambda: seen.append(stackless.getruncount()))()
        self.new(nop)()
        seen = []
        stackless.run()
        self.assertEqual(seen, [2])


class GetCurrentIdTest(StacklessTestCase):
    """M-6: getcurrentid()."""

    def test_main_reports_thread_id(self):
        self.assertIsInstance(stackless.getcurrentid(), int)
        self.assertEqual(stackless.getcurrentid(), threading.get_ident())

    def test_tasklets(self):
        ids = []

        def f():
            ids.append(stackless.getcurrentid())
            stackless.schedule()
            ids.append(stackless.getcurrentid())
        self.new(f)()
        self.new(f)()
        stackless.run()
        a1, b1, a2, b2 = ids
        self.assertEqual(a1, a2)
        self.assertEqual(b1, b2)
        self.assertNotEqual(a1, b1)
        self.assertNotIn(threading.get_ident(), ids)
        for i in ids:
            self.assertIsInstance(i, int)


class GetThreadInfoTest(StacklessTestCase):
    """M-7: get_thread_info(thread_id=-1, flags=0)."""

    def expected(self):
        return (stackless.getmain(), stackless.getcurrent(),
                stackless.getruncount())

    def check(self, info, expected):
        self.assertIsInstance(info, tuple)
        self.assertEqual(len(info), 3)
        self.assertIs(info[0], expected[0])
        self.assertIs(info[1], expected[1])
        self.assertEqual(info[2], expected[2])

    def test_zero_one_two_args(self):
        me = threading.get_ident()
        for args in [(), (-1,), (me,), (-1, 0), (me, 0)]:
            with self.subTest(args=args):
                self.check(stackless.get_thread_info(*args), self.expected())

    def test_runcount(self):
        self.new(nop)()
        self.check(stackless.get_thread_info(), self.expected())
        self.assertEqual(stackless.get_thread_info()[2], 2)
        stackless.run()

    def test_inside_tasklet(self):
        info = self.in_tasklet(stackless.get_thread_info)
        self.check(info, (stackless.getmain(), self.tasklets[-1], 2))

    def test_not_an_int(self):
        for bad in ("x", 1.5, b"1"):
            with self.subTest(thread_id=bad):
                with self.assertRaises(TypeError):
                    stackless.get_thread_info(bad)

    def test_unknown_thread(self):
        bad = 12345
        while bad in stackless.getthreads():
            bad += 1
        with self.assertRaisesRegex(RuntimeError, r"^Thread id not found$"):
            stackless.get_thread_info(bad)
        with self.assertRaisesRegex(RuntimeError, r"^Thread id not found$"):
            stackless.get_thread_info(bad, 0)

    def test_too_many_arguments(self):
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 2 argument"):
            stackless.get_thread_info(-1, 0, 0)


class GetThreadsTest(unittest.TestCase):
    """M-8: getthreads()."""

    def test_threads(self):
        threads = stackless.getthreads()
        self.assertIsInstance(threads, list)
        self.assertIn(threading.get_ident(), threads)
        self.assertEqual(threads[0], threading.main_thread().ident)
        self.assertEqual(len(threads), len(set(threads)))
        for t in threads:
            self.assertIsInstance(t, int)


class AtomicTest(StacklessTestCase):
    """M-9: class atomic(), a context manager."""

    def test_is_a_class(self):
        self.assertIsInstance(stackless.atomic, type)

    def test_sets_and_restores(self):
        cur = stackless.getcurrent()
        self.assertFalse(cur.atomic)
        with stackless.atomic():
            self.assertTrue(cur.atomic)
        self.assertFalse(cur.atomic)

    def test_nesting(self):
        cur = stackless.getcurrent()
        with stackless.atomic():
            with stackless.atomic():
                self.assertTrue(cur.atomic)
            self.assertTrue(cur.atomic)
            a = stackless.atomic()
            with a:
                with a:
                    self.assertTrue(cur.atomic)
                self.assertTrue(cur.atomic)
            self.assertTrue(cur.atomic)
        self.assertFalse(cur.atomic)

    def test_already_atomic(self):
        cur = stackless.getcurrent()
        cur.set_atomic(True)
        try:
            with stackless.atomic():
                self.assertTrue(cur.atomic)
            self.assertTrue(cur.atomic)
        finally:
            cur.set_atomic(False)

    def test_inner_change_undone(self):
        # __exit__ restores the value saved by __enter__.
        cur = stackless.getcurrent()
        with stackless.atomic():
            cur.set_atomic(False)
        self.assertFalse(cur.atomic)
        cur.set_atomic(True)
        try:
            with stackless.atomic():
                cur.set_atomic(False)
            self.assertTrue(cur.atomic)
        finally:
            cur.set_atomic(False)

    def test_exception_passes_through(self):
        cur = stackless.getcurrent()
        with self.assertRaisesRegex(KeyError, "inside"):
            with stackless.atomic():
                raise KeyError("inside")
        self.assertFalse(cur.atomic)
        with self.assertRaises(TaskletExit):
            with stackless.atomic():
                with stackless.atomic():
                    raise TaskletExit
        self.assertFalse(cur.atomic)

    def test_exit_return_value(self):
        a = stackless.atomic()
        a.__enter__()
        self.assertTrue(stackless.getcurrent().atomic)
        self.assertFalse(a.__exit__(KeyError, KeyError(), None))
        self.assertFalse(stackless.getcurrent().atomic)

    def test_in_tasklet(self):
        # M-9: it acts on the current tasklet only.
        main = stackless.getmain()

        def f():
            with stackless.atomic():
                return (stackless.getcurrent().atomic, main.atomic)
        self.assertEqual(self.in_tasklet(f), (True, False))
        self.assertFalse(self.tasklets[-1].atomic)

    def test_switch_inside(self):
        # Explicit switches still work inside (T-11); the flag is saved
        # per tasklet.
        log = []

        def f():
            log.append(stackless.getcurrent().atomic)
        self.new(f)()
        with stackless.atomic():
            stackless.schedule()
            self.assertTrue(stackless.getcurrent().atomic)
        self.assertEqual(log, [False])


class EnableSoftswitchTest(unittest.TestCase):
    """M-10: enable_softswitch(flag)."""

    def setUp(self):
        saved = stackless.enable_softswitch(None)
        self.addCleanup(stackless.enable_softswitch, saved)

    @support.requires_subprocess()
    def test_default_true(self):
        code = "import stackless; print(stackless.enable_softswitch(None))"
        rc, out, err = script_helper.assert_python_ok("-c", code)
        self.assertEqual(out.strip(), b"True")

    def test_returns_previous(self):
        stackless.enable_softswitch(True)
        self.assertIs(stackless.enable_softswitch(False), True)
        self.assertIs(stackless.enable_softswitch(None), False)
        self.assertIs(stackless.enable_softswitch(None), False)
        self.assertIs(stackless.enable_softswitch(True), False)
        self.assertIs(stackless.enable_softswitch(None), True)

    def test_stores_bool(self):
        for flag, expected in [(0, False), ("yes", True), ([], False),
                               ([0], True), (2, True)]:
            with self.subTest(flag=flag):
                stackless.enable_softswitch(flag)
                self.assertIs(stackless.enable_softswitch(None), expected)

    def test_argument_required(self):
        with self.assertRaisesRegex(TypeError,
                                    r"takes exactly one argument|"
                                    r"(takes|expected) at most 1 argument|"
                                    r"at least 1 argument"):
            stackless.enable_softswitch()
        with self.assertRaisesRegex(TypeError,
                                    r"takes exactly one argument|"
                                    r"(takes|expected) at most 1 argument"):
            stackless.enable_softswitch(True, True)

    def test_switching_works_when_disabled(self):
        stackless.enable_softswitch(False)
        log = []

        def f():
            log.append(1)
            stackless.schedule()
            log.append(2)
        tasklet(f)()
        stackless.run()
        self.assertEqual(log, [1, 2])
        self.assertEqual(stackless.getruncount(), 1)


class SwitchTrapTest(StacklessTestCase):
    """M-11: switch_trap(change=0)."""

    def tearDown(self):
        stackless.switch_trap(-stackless.switch_trap(0))
        super().tearDown()

    def test_levels(self):
        self.assertEqual(stackless.switch_trap(), 0)
        self.assertEqual(stackless.switch_trap(0), 0)
        self.assertEqual(stackless.switch_trap(1), 0)
        self.assertEqual(stackless.switch_trap(1), 1)
        self.assertEqual(stackless.switch_trap(0), 2)
        self.assertEqual(stackless.switch_trap(-1), 2)
        self.assertEqual(stackless.switch_trap(-1), 1)
        self.assertEqual(stackless.switch_trap(), 0)

    def trapped(self, func, *args):
        with self.assertRaisesRegex(RuntimeError, r"^switch_trap$"):
            func(*args)

    def test_run_and_switch_trapped(self):
        log = []
        t = self.new(log.append, ("ran",))
        stackless.switch_trap(1)
        self.trapped(t.run)
        self.assertTrue(t.paused)
        self.trapped(t.switch)
        self.assertTrue(t.paused)
        self.assertEqual(stackless.getruncount(), 1)
        self.assertTrue(stackless.getcurrent().scheduled)
        stackless.switch_trap(-1)
        self.assertEqual(log, [])
        t.run()
        self.assertEqual(log, ["ran"])

    def test_schedule_trapped(self):
        log = []
        self.new(log.append)("ran")
        stackless.switch_trap(1)
        self.trapped(stackless.schedule)
        self.trapped(stackless.schedule_remove)
        self.trapped(stackless.run)
        self.assertEqual(stackless.getruncount(), 2)
        self.assertTrue(stackless.getcurrent().scheduled)
        stackless.switch_trap(-1)
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, ["ran"])

    def test_throw_and_kill_trapped(self):
        def f():
            stackless.schedule_remove()
        t = self.new(f, ())
        t.run()
        tempval = t.tempval
        stackless.switch_trap(1)
        self.trapped(t.kill)
        self.trapped(t.throw, ValueError)
        self.trapped(t.raise_exception, ValueError)
        self.assertTrue(t.paused)
        self.assertIs(t.tempval, tempval)
        stackless.switch_trap(-1)
        t.kill()
        self.assertFalse(t.alive)

    def test_channel_trapped(self):
        ch = channel()
        self.new(nop)()
        stackless.switch_trap(1)
        self.trapped(ch.receive)
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.getcurrent().blocked)
        self.assertIsNone(ch.queue)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.switch_trap(-1)
        stackless.run()

    def test_non_switching_operations_work(self):
        t = self.new(nop, ())
        stackless.switch_trap(1)
        t.insert()
        t.remove()
        t.throw(ValueError, pending=True)
        self.assertTrue(t.scheduled)
        stackless.switch_trap(-1)
        with self.assertRaises(ValueError):
            stackless.run()

    def test_trap_inside_tasklet(self):
        def f():
            stackless.switch_trap(1)
            try:
                stackless.schedule()
            except RuntimeError as e:
                return str(e)
            finally:
                stackless.switch_trap(-1)
        self.assertEqual(self.in_tasklet(f), "switch_trap")

    def test_too_many_arguments(self):
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 1 argument"):
            stackless.switch_trap(1, 2)


class TaskletExitTest(unittest.TestCase):
    """M-12: TaskletExit."""

    def test_uncaught_in_main_is_printed_not_an_exit(self):
        # Spec 9.1: PyErr_Print does not exit on TaskletExit; a killed
        # main tasklet ends the program with a traceback and status 1.
        rc, out, err = script_helper.assert_python_failure(
            "-c", "import stackless\n"
                  "t = stackless.tasklet(stackless.getmain().kill)()\n"
                  "stackless.schedule()\n"
                  "print('not reached')\n")
        self.assertEqual(rc, 1)
        self.assertNotIn(b"not reached", out)
        self.assertIn(b"TaskletExit", err)
        self.assertIn(b"Traceback", err)

    def test_other_system_exit_still_exits(self):
        rc, out, err = script_helper.assert_python_failure(
            "-c", "raise SystemExit(3)")
        self.assertEqual(rc, 3)
        self.assertEqual(err, b"")

    def test_builtin(self):
        self.assertIs(builtins.TaskletExit, TaskletExit)
        self.assertEqual(TaskletExit.__name__, "TaskletExit")
        if hasattr(stackless, "TaskletExit"):
            self.assertIs(stackless.TaskletExit, TaskletExit)

    def test_direct_subclass_of_system_exit(self):
        self.assertEqual(TaskletExit.__bases__, (SystemExit,))
        self.assertTrue(issubclass(TaskletExit, SystemExit))
        self.assertFalse(issubclass(TaskletExit, Exception))

    def test_raise_and_catch(self):
        with self.assertRaises(SystemExit) as cm:
            raise TaskletExit("bye")
        self.assertIs(type(cm.exception), TaskletExit)
        self.assertEqual(cm.exception.args, ("bye",))

    def test_subclassable(self):
        class MyExit(TaskletExit):
            pass
        self.assertTrue(issubclass(MyExit, SystemExit))


class BombTest(StacklessTestCase):
    """M-13: bomb(type=None, value=None, traceback=None)."""

    def exc_info(self):
        try:
            raise KeyError("k")
        except KeyError:
            return sys.exc_info()

    def test_empty(self):
        b = bomb()
        self.assertIsNone(b.type)
        self.assertIsNone(b.value)
        self.assertIsNone(b.traceback)

    def test_fields(self):
        info = self.exc_info()
        b = bomb(*info)
        self.assertIs(b.type, info[0])
        self.assertIs(b.value, info[1])
        self.assertIs(b.traceback, info[2])
        self.assertIsInstance(b.traceback, types.TracebackType)

    def test_keywords(self):
        e = ValueError("v")
        b = bomb(type=ValueError, value=e, traceback=None)
        self.assertIs(b.type, ValueError)
        self.assertIs(b.value, e)
        self.assertIsNone(b.traceback)

    def test_partial(self):
        b = bomb(ValueError)
        self.assertIs(b.type, ValueError)
        self.assertIsNone(b.traceback)

    def test_tuple_unpacked(self):
        info = self.exc_info()
        b = bomb(info)
        self.assertIs(b.type, info[0])
        self.assertIs(b.value, info[1])
        self.assertIs(b.traceback, info[2])

    def test_exc_info(self):
        try:
            1 / 0
        except ZeroDivisionError:
            b = bomb(sys.exc_info())
        self.assertIs(b.type, ZeroDivisionError)
        self.assertIsInstance(b.value, ZeroDivisionError)
        self.assertIsInstance(b.traceback, types.TracebackType)

    def test_read_only(self):
        b = bomb(ValueError, ValueError(), None)
        for name in ("type", "value", "traceback"):
            with self.subTest(name=name):
                with self.assertRaises(AttributeError):
                    setattr(b, name, None)

    def test_too_many_arguments(self):
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 3 argument"):
            bomb(ValueError, None, None, None)

    def test_pickle(self):
        b = bomb(ValueError, ValueError("pickled"), None)
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            with self.subTest(proto=proto):
                c = pickle.loads(pickle.dumps(b, proto))
                self.assertIs(type(c), bomb)
                self.assertIs(c.type, ValueError)
                self.assertIsInstance(c.value, ValueError)
                self.assertEqual(c.value.args, ("pickled",))
                self.assertIsNone(c.traceback)

    def test_explodes_in_resumed_tasklet(self):
        # M-13: a tasklet resuming with a bomb in tempval raises it.
        log = []

        def f():
            try:
                stackless.schedule_remove()
            except KeyError as e:
                log.append(e.args)
        t = self.new(f, ())
        t.run()
        t.tempval = bomb(*self.exc_info())
        t.run()
        self.assertEqual(log, [("k",)])

    def test_sent_over_channel(self):
        # M-13: a bomb sent over a channel is raised in the receiver.
        ch = channel()
        log = []

        def receiver():
            try:
                ch.receive()
            except KeyError as e:
                log.append(e.args)
        self.new(receiver)().run()
        ch.send(bomb(*self.exc_info()))
        self.assertEqual(log, [("k",)])

    def test_traceback_kept(self):
        names = []

        def receiver():
            try:
                stackless.schedule_remove()
            except KeyError as e:
                tb = e.__traceback__
                while tb is not None:
                    names.append(tb.tb_frame.f_code.co_name)
                    tb = tb.tb_next
        t = self.new(receiver, ())
        t.run()
        t.tempval = bomb(*self.exc_info())
        t.run()
        self.assertIn("exc_info", names)


class PickleFlagsConstantsTest(unittest.TestCase):
    """M-14: PICKLEFLAGS_*."""

    def test_values(self):
        self.assertEqual(stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE, 1)
        self.assertEqual(stackless.PICKLEFLAGS_PRESERVE_AG_FINALIZER, 2)
        self.assertEqual(stackless.PICKLEFLAGS_RESET_AG_FINALIZER, 4)


class PickleFlagsMixin:
    """Shared tests of M-15 and M-16; `func` is the function tested."""

    MSG = r"^you must not set an undefined pickle-flag$"

    def setUp(self):
        saved = self.func()
        self.addCleanup(self.func, saved)
        self.func(0)

    def test_query(self):
        self.assertEqual(self.func(), 0)
        self.assertEqual(self.func(-1), 0)
        self.assertEqual(self.func(-1, 1), 0)
        self.assertIsInstance(self.func(), int)

    def test_set_returns_old(self):
        self.assertEqual(self.func(1), 0)
        self.assertEqual(self.func(), 1)
        self.assertEqual(self.func(7), 1)
        self.assertEqual(self.func(0), 7)
        self.assertEqual(self.func(), 0)

    def test_mask(self):
        self.func(5)
        self.assertEqual(self.func(2, 2), 5)
        self.assertEqual(self.func(), 7)
        self.assertEqual(self.func(0, 1), 7)
        self.assertEqual(self.func(), 6)
        self.assertEqual(self.func(7, 0), 6)
        self.assertEqual(self.func(), 6)
        self.assertEqual(self.func(1, 8), 6)        # (1 & 8) == 0
        self.assertEqual(self.func(), 6)
        self.assertEqual(self.func(8, 7), 6)        # (8 & 7) == 0
        self.assertEqual(self.func(), 0)

    def test_undefined_flags(self):
        self.func(3)
        for args in [(-2,), (8,), (16,), (9,), (-5, 1), (8, 8), (15, -1)]:
            with self.subTest(args=args):
                with self.assertRaisesRegex(ValueError, self.MSG):
                    self.func(*args)
                self.assertEqual(self.func(), 3)

    def test_too_many_arguments(self):
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 2 argument"):
            self.func(0, 0, 0)


class PickleFlagsTest(PickleFlagsMixin, unittest.TestCase):
    """M-15: pickle_flags(new_flags=-1, mask=-1)."""

    func = staticmethod(stackless.pickle_flags)

    def test_independent_of_default(self):
        saved = stackless.pickle_flags_default()
        self.addCleanup(stackless.pickle_flags_default, saved)
        stackless.pickle_flags_default(0)
        stackless.pickle_flags(1)
        self.assertEqual(stackless.pickle_flags_default(), 0)


class PickleFlagsDefaultTest(PickleFlagsMixin, unittest.TestCase):
    """M-16: pickle_flags_default(new_default=-1, mask=-1)."""

    func = staticmethod(stackless.pickle_flags_default)

    def test_independent_of_thread_flags(self):
        saved = stackless.pickle_flags()
        self.addCleanup(stackless.pickle_flags, saved)
        stackless.pickle_flags(0)
        stackless.pickle_flags_default(1)
        self.assertEqual(stackless.pickle_flags(), 0)


class PickleWithTracingStateTest(unittest.TestCase):
    """M-17: the pickle_with_tracing_state property."""

    def setUp(self):
        flags = stackless.pickle_flags()
        default = stackless.pickle_flags_default()
        self.addCleanup(stackless.pickle_flags, flags)
        self.addCleanup(stackless.pickle_flags_default, default)

    def test_get(self):
        stackless.pickle_flags(1)
        self.assertIs(stackless.pickle_with_tracing_state, True)
        stackless.pickle_flags(6)
        self.assertIs(stackless.pickle_with_tracing_state, False)
        stackless.pickle_flags_default(1)
        self.assertIs(stackless.pickle_with_tracing_state, False)

    def test_set(self):
        stackless.pickle_flags(6)
        stackless.pickle_flags_default(4)
        stackless.pickle_with_tracing_state = True
        self.assertEqual(stackless.pickle_flags(), 7)
        self.assertEqual(stackless.pickle_flags_default(), 5)
        self.assertIs(stackless.pickle_with_tracing_state, True)
        stackless.pickle_with_tracing_state = False
        self.assertEqual(stackless.pickle_flags(), 6)
        self.assertEqual(stackless.pickle_flags_default(), 4)
        self.assertIs(stackless.pickle_with_tracing_state, False)


class ErrorHandlerTest(StacklessTestCase):
    """M-18: set_error_handler(handler=None); S-11 (3)."""

    def setUp(self):
        super().setUp()
        saved = stackless.set_error_handler(None)
        self.addCleanup(stackless.set_error_handler, saved)

    def test_returns_previous(self):
        def h1(*args):
            pass

        def h2(*args):
            pass
        self.assertIsNone(stackless.set_error_handler(h1))
        self.assertIs(stackless.set_error_handler(h2), h1)
        self.assertIs(stackless.set_error_handler(), h2)
        self.assertIsNone(stackless.set_error_handler(None))

    def test_handler_swallows(self):
        calls = []

        def handler(*args):
            calls.append(args)

        def bad():
            raise KeyError("bad")
        stackless.set_error_handler(handler)
        t = self.new(bad)()
        log = []
        self.new(log.append)("after")
        self.assertIsNone(stackless.run())
        self.assertEqual(log, ["after"])
        self.assertEqual(len(calls), 1)
        typ, value, tb = calls[0]
        self.assertIs(typ, KeyError)
        self.assertIsInstance(value, KeyError)
        self.assertEqual(value.args, ("bad",))
        self.assertIsInstance(tb, types.TracebackType)
        self.assertFalse(t.alive)

    def test_handler_exception_replaces(self):
        def handler(typ, value, tb):
            raise OSError("from handler")

        def bad():
            raise KeyError("bad")
        stackless.set_error_handler(handler)
        self.new(bad)()
        with self.assertRaisesRegex(OSError, "from handler"):
            stackless.run()

    def test_taskletexit_not_handled(self):
        calls = []
        stackless.set_error_handler(lambda *args: calls.append(args))

        def f():
            raise TaskletExit
        self.new(f)()
        stackless.run()
        self.assertEqual(calls, [])

    def test_default_restored(self):
        stackless.set_error_handler(lambda *args: None)
        stackless.set_error_handler(None)

        def bad():
            raise KeyError("bad")
        self.new(bad)()
        with self.assertRaises(KeyError):
            stackless.run()

    def test_too_many_arguments(self):
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 1 argument"):
            stackless.set_error_handler(None, None)


class DebugTest(StacklessTestCase):
    """M-19: getdebug(), getuncollectables()."""

    def test_getdebug(self):
        self.assertIs(stackless.getdebug(), hasattr(sys, "gettotalrefcount"))

    def test_getuncollectables(self):
        # M-19: the suspended tasklets that own a C stack (with hard
        # switching, every started one that is not current).
        self.assertEqual(stackless.getuncollectables(), [])
        t = self.new(stackless.schedule_remove, ())
        self.assertNotIn(t, stackless.getuncollectables())
        t.run()
        self.assertTrue(t.paused)
        self.assertEqual(stackless.getuncollectables(), [t])
        t.kill()
        self.assertEqual(stackless.getuncollectables(), [])


class ArgumentCountTest(unittest.TestCase):
    """Spec preamble: wrong argument counts raise TypeError (T)."""

    def test_at_most(self):
        cases = [
            (stackless.schedule, 2, 1),
            (stackless.schedule_remove, 2, 1),
            (stackless.switch_trap, 2, 1),
            (stackless.get_thread_info, 3, 2),
            (stackless.pickle_flags, 3, 2),
            (stackless.pickle_flags_default, 3, 2),
            (stackless.set_error_handler, 2, 1),
            (stackless.run, 6, 5),
        ]
        for func, given, most in cases:
            with self.subTest(func=func):
                with self.assertRaisesRegex(
                        TypeError,
                        r"(takes|expected) at most %d argument" % most):
                    func(*[0] * given)


if __name__ == "__main__":
    unittest.main()
