"""The C API of stackless_api.h (spec A), through _teststackless.

Each function of the API has a wrapper of the same name in _teststackless
(None for a NULL pointer).  Called from Python, the caller is inside: a
tasklet runs Python code.  run_outside() calls the API from a C thread
that runs no Python code."""

import os
import subprocess
import sys
import sysconfig
import traceback
import unittest

import stackless
from test import support
from test.support import catch_unraisable_exception, import_helper

from .helpers import StacklessTestCase, load_tests  # noqa: F401

T = import_helper.import_module("_teststackless")


class _SubTasklet(stackless.tasklet):
    def run(self):
        raise AssertionError("the API calls the base type's run()")


class _SubChannel(stackless.channel):
    def __init__(self):
        raise AssertionError("PyChannel_New() calls no __init__")

    def send(self, value):
        raise AssertionError("the API calls the base type's send()")


class TaskletAPITest(StacklessTestCase):
    """A-1 .. A-19."""

    both_modes = False

    def test_new(self):
        def f():
            pass
        t = T.PyTasklet_New(None, f)
        self.assertIs(type(t), stackless.tasklet)
        self.assertFalse(t.alive)
        self.assertIs(T.PyTasklet_New(None).alive, False)
        self.assertIs(type(T.PyTasklet_New(_SubTasklet, f)), _SubTasklet)
        self.assertIsInstance(T.PyTasklet_New(None, None), stackless.tasklet)
        with self.assertRaises(TypeError):
            T.PyTasklet_New(int, f)
        with self.assertRaises(TypeError):
            T.PyTasklet_New(None, 42)          # not callable, as tasklet(42)

    def test_setup_bind_and_state(self):
        got = []

        def f(*args, **kwargs):
            got.append((args, kwargs))
            stackless.schedule()

        t = self.track(T.PyTasklet_New(None, f))
        self.assertIsNone(T.PyTasklet_BindEx(t, None, (1,), {"k": 2}))
        # Bound with its arguments: alive and paused (as t.bind()).
        self.assertEqual((T.PyTasklet_Alive(t), T.PyTasklet_Scheduled(t),
                          T.PyTasklet_Paused(t)), (t.alive, 0, t.paused))
        self.assertIsNone(T.PyTasklet_Insert(t))
        self.assertEqual(T.PyTasklet_Scheduled(t), 1)
        self.assertIsNone(T.PyTasklet_Remove(t))
        self.assertEqual((T.PyTasklet_Scheduled(t), T.PyTasklet_Paused(t)),
                         (0, 1))
        self.assertIsNone(T.PyTasklet_Run(t))
        self.assertEqual(got, [((1,), {"k": 2})])
        self.assertEqual((T.PyTasklet_Alive(t), T.PyTasklet_Scheduled(t),
                          T.PyTasklet_Restorable(t)), (1, 1, 1))
        self.assertIsNone(T.PyTasklet_Remove(t))
        self.assertEqual(T.PyTasklet_Paused(t), 1)
        self.assertIsNone(T.PyTasklet_Insert(t))
        stackless.run()
        self.assertEqual(T.PyTasklet_Alive(t), 0)
        with self.assertRaises(RuntimeError):
            T.PyTasklet_Run(t)                  # dead
        with self.assertRaises(RuntimeError):
            T.PyTasklet_Insert(t)

        t2 = self.track(T.PyTasklet_New(None, f))
        self.assertIsNone(T.PyTasklet_Setup(t2, (3,), {"a": 4}))
        self.assertEqual(T.PyTasklet_Scheduled(t2), 1)
        self.assertIsNone(T.PyTasklet_Run_nr(t2))
        self.assertIsNone(T.PyTasklet_Switch_nr(t2))
        self.assertEqual(got[1:], [((3,), {"a": 4})])
        stackless.run()
        with self.assertRaises(TypeError):
            T.PyTasklet_Setup(T.PyTasklet_New(None, f), [1])

    def test_switch(self):
        log = []

        def f():
            log.append(stackless.current.is_main)

        t = T.PyTasklet_New(None, f)
        T.PyTasklet_Setup(t)
        T.PyTasklet_Switch(t)       # main is paused, then resumed by...
        self.assertEqual(log, [False])

    def test_base_type_implementation(self):
        t = T.PyTasklet_New(_SubTasklet, lambda: None)
        T.PyTasklet_Setup(t)
        self.assertIsNone(T.PyTasklet_Run(t))
        self.assertFalse(t.alive)

    def test_bind_thread(self):
        t = T.PyTasklet_New(None, lambda: None)
        self.assertIsNone(T.PyTasklet_BindThread(t, -1))
        self.assertEqual(t.thread_id, stackless.current.thread_id)
        with self.assertRaises(ValueError):
            T.PyTasklet_BindThread(t, 123456789)    # no such thread

    def test_raise_throw_kill(self):
        seen = []

        def f():
            while True:
                try:
                    stackless.schedule_remove()
                except Exception as e:
                    seen.append((type(e), e.args))
                except stackless.TaskletExit:
                    seen.append("exit")
                    raise

        t = self.track(stackless.tasklet(f)())
        t.run()
        T.PyTasklet_RaiseException(t, ValueError, (1, 2))
        T.PyTasklet_RaiseException(t, KeyError)
        T.PyTasklet_Throw(t, False, TypeError("x"))
        T.PyTasklet_Throw(t, False, IndexError, IndexError(3))
        self.assertEqual(seen, [(ValueError, (1, 2)), (KeyError, ()),
                                (TypeError, ("x",)), (IndexError, (3,))])
        T.PyTasklet_Throw(t, True, OSError)
        self.assertTrue(t.scheduled)
        self.assertEqual(len(seen), 4)
        stackless.schedule()
        self.assertEqual(seen[4][0], OSError)
        T.PyTasklet_KillEx(t, True)
        self.assertTrue(t.alive)
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(seen[-1], "exit")
        t2 = self.track(stackless.tasklet(f)())
        t2.run()
        self.assertIsNone(T.PyTasklet_Kill(t2))
        self.assertFalse(t2.alive)
        with self.assertRaises(TypeError):
            T.PyTasklet_RaiseException(t2, ValueError, [1])
        with self.assertRaises(RuntimeError):
            T.PyTasklet_RaiseException(t2, ValueError)   # dead

    def test_flags(self):
        t = T.PyTasklet_New(None, lambda: None)
        self.assertEqual(T.PyTasklet_GetAtomic(t), 0)
        self.assertEqual(T.PyTasklet_SetAtomic(t, 1), 0)
        self.assertEqual(T.PyTasklet_SetAtomic(t, 0), 1)
        self.assertEqual(T.PyTasklet_GetIgnoreNesting(t), 0)
        self.assertEqual(T.PyTasklet_SetIgnoreNesting(t, 1), 0)
        self.assertEqual(T.PyTasklet_GetIgnoreNesting(t), 1)
        self.assertEqual(T.PyTasklet_GetBlockTrap(t), 0)
        T.PyTasklet_SetBlockTrap(t, 1)
        self.assertTrue(t.block_trap)
        self.assertEqual(T.PyTasklet_GetBlockTrap(t), 1)
        self.assertEqual(T.PyTasklet_GetPendingIrq(t), 0)
        main = stackless.current
        self.assertEqual((T.PyTasklet_IsMain(main), T.PyTasklet_IsCurrent(main)),
                         (1, 1))
        self.assertEqual((T.PyTasklet_IsMain(t), T.PyTasklet_IsCurrent(t)),
                         (0, 0))

    def test_frame_depth_and_nesting(self):
        ch = stackless.channel()

        def deep(n):
            if n:
                return deep(n - 1)
            ch.receive()

        t = self.track(stackless.tasklet(deep)(5))
        self.assertIsNone(T.PyTasklet_GetFrame(t))
        t.run()
        frame = T.PyTasklet_GetFrame(t)
        self.assertEqual(frame.f_code, deep.__code__)
        self.assertEqual(T.PyTasklet_GetRecursionDepth(t), t.recursion_depth)
        self.assertGreaterEqual(T.PyTasklet_GetRecursionDepth(t), 6)
        self.assertEqual(T.PyTasklet_GetNestingLevel(t), 0)
        self.assertEqual(T.PyTasklet_Restorable(t), 1)
        ch.send(None)

        t = self.track(stackless.tasklet(T.test_cstate)(ch.receive))
        t.run()
        self.assertEqual(T.PyTasklet_Restorable(t), 0)
        ch.send(None)
        self.assertFalse(t.alive)

    def test_pending_irq(self):
        # A preemption due while the tasklet is atomic waits.
        def busy():
            stackless.current.set_atomic(True)
            for i in range(2000):
                pass
            result.append(T.PyTasklet_GetPendingIrq(stackless.current))
            stackless.current.set_atomic(False)

        result = []
        self.track(stackless.tasklet(busy)())
        stackless.run(10)
        stackless.run()
        self.assertEqual(result, [1])


class ChannelAPITest(StacklessTestCase):
    """A-20 .. A-25."""

    both_modes = False

    def test_new(self):
        ch = T.PyChannel_New(None)
        self.assertIs(type(ch), stackless.channel)
        sub = T.PyChannel_New(_SubChannel)      # no __init__ call
        self.assertIs(type(sub), _SubChannel)
        with self.assertRaises(TypeError):
            T.PyChannel_New(stackless.tasklet)

    def test_send_receive(self):
        ch = T.PyChannel_New(None)
        got = []

        def receiver():
            got.append(T.PyChannel_Receive(ch))
            got.append(T.PyChannel_Receive_nr(ch))
            got.append(ch.receive())

        t = self.track(stackless.tasklet(receiver)())
        t.run()
        self.assertEqual(T.PyChannel_GetBalance(ch), -1)
        self.assertIs(T.PyChannel_GetQueue(ch), t)
        self.assertIsNone(T.PyChannel_Send(ch, 1))
        self.assertIsNone(T.PyChannel_Send_nr(ch, 2))
        self.assertIsNone(T.PyChannel_Send(ch, 3))
        self.assertEqual(got, [1, 2, 3])
        self.assertIsNone(T.PyChannel_GetQueue(ch))
        self.assertEqual(T.PyChannel_GetBalance(ch), 0)

        sub = T.PyChannel_New(_SubChannel)      # base send, not the override
        t = self.track(stackless.tasklet(lambda: got.append(sub.receive()))())
        t.run()
        T.PyChannel_Send(sub, 4)
        self.assertEqual(got[-1], 4)
        with self.assertRaises(RuntimeError):
            T.PyChannel_Receive(ch)             # deadlock: nobody sends

    def test_send_exception_and_throw(self):
        ch = T.PyChannel_New(None)
        seen = []

        def receiver():
            for _ in range(3):
                try:
                    ch.receive()
                except Exception as e:
                    seen.append((type(e), e.args))

        self.track(stackless.tasklet(receiver)()).run()
        T.PyChannel_SendException(ch, ValueError, (1,))
        T.PyChannel_SendThrow(ch, KeyError("k"))
        T.PyChannel_SendThrow(ch, IndexError, None, None)
        self.assertEqual(seen, [(ValueError, (1,)), (KeyError, ("k",)),
                                (IndexError, ())])
        with self.assertRaises(TypeError):
            T.PyChannel_SendException(ch, ValueError, [1])

    def test_close_open_and_settings(self):
        ch = T.PyChannel_New(None)
        self.assertEqual((T.PyChannel_GetClosing(ch),
                          T.PyChannel_GetClosed(ch)), (0, 0))
        T.PyChannel_Close(ch)
        self.assertEqual((T.PyChannel_GetClosing(ch),
                          T.PyChannel_GetClosed(ch)), (1, 1))
        with self.assertRaises(ValueError):
            T.PyChannel_Send(ch, 1)
        T.PyChannel_Open(ch)
        self.assertEqual(T.PyChannel_GetClosed(ch), 0)
        self.assertEqual(T.PyChannel_GetPreference(ch), -1)
        T.PyChannel_SetPreference(ch, 5)        # clamped, as in Python
        self.assertEqual(T.PyChannel_GetPreference(ch), 1)
        T.PyChannel_SetPreference(ch, -7)
        self.assertEqual(T.PyChannel_GetPreference(ch), -1)
        T.PyChannel_SetPreference(ch, 0)
        self.assertEqual(ch.preference, 0)
        self.assertEqual(T.PyChannel_GetScheduleAll(ch), 0)
        T.PyChannel_SetScheduleAll(ch, 3)
        self.assertEqual(T.PyChannel_GetScheduleAll(ch), 1)
        self.assertTrue(ch.schedule_all)


class SchedulerAPITest(StacklessTestCase):
    """A-26, A-28 .. A-31, A-35 .. A-37."""

    both_modes = False

    def test_schedule(self):
        log = []

        def f(name):
            log.append(name)

        self.track(stackless.tasklet(f)("a"))
        self.assertEqual(T.PyStackless_GetRunCount(), 2)
        self.assertIs(T.PyStackless_Schedule(), stackless.current)
        self.assertEqual(T.PyStackless_Schedule(None), None)
        self.assertEqual(T.PyStackless_Schedule(7), 7)
        self.assertEqual(log, ["a"])
        self.track(stackless.tasklet(f)("b"))
        self.assertEqual(T.PyStackless_Schedule_nr(8), 8)
        self.assertEqual(log, ["a", "b"])
        self.assertEqual(T.PyStackless_GetRunCount(), 1)

    def test_schedule_remove(self):
        main = stackless.current

        def waker():
            main.tempval = "woken"
            main.insert()

        self.track(stackless.tasklet(waker)())
        self.assertEqual(T.PyStackless_Schedule(None, True), "woken")

    def test_current(self):
        self.assertIs(T.PyStackless_GetCurrent(), stackless.current)
        self.assertEqual(T.PyStackless_GetCurrentId(),
                         stackless.getcurrentid())
        ids = []

        def f():
            ids.append((T.PyStackless_GetCurrentId(),
                        stackless.getcurrentid(),
                        T.PyStackless_GetCurrent() is stackless.current))

        self.track(stackless.tasklet(f)())
        stackless.run()
        self.assertEqual(ids[0][0], ids[0][1])
        self.assertTrue(ids[0][2])

    def test_run_watchdog(self):
        log = []

        def busy():
            for i in range(100_000):
                pass
            log.append("done")

        t = self.track(stackless.tasklet(busy)())
        self.assertIsNone(T.PyStackless_RunWatchdog(0))
        self.assertEqual(log, ["done"])
        t = self.track(stackless.tasklet(busy)())
        self.assertIs(T.PyStackless_RunWatchdogEx(100, 0), t)
        self.assertTrue(t.alive)
        t.insert()              # an interrupted tasklet is out of the queue
        self.assertIsNone(T.PyStackless_RunWatchdogEx(
            100, T.PY_WATCHDOG_SOFT | T.PY_WATCHDOG_TOTALTIMEOUT))
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual((T.Py_WATCHDOG_THREADBLOCK, T.PY_WATCHDOG_SOFT,
                          T.PY_WATCHDOG_IGNORE_NESTING,
                          T.PY_WATCHDOG_TOTALTIMEOUT), (1, 2, 4, 8))
        for flags in (-1, 256, 1 << 20):
            with self.subTest(flags=flags):
                with self.assertRaisesRegex(ValueError, r"\[0\.\.255\]"):
                    T.PyStackless_RunWatchdogEx(100, flags)

    def test_callbacks(self):
        seen = []

        def cb(*args):
            seen.append(args)

        T.PyStackless_SetChannelCallback(cb)
        self.addCleanup(stackless.set_channel_callback, None)
        self.assertIs(stackless.get_channel_callback(), cb)
        T.PyStackless_SetChannelCallback(None)
        self.assertIsNone(stackless.get_channel_callback())
        T.PyStackless_SetScheduleCallback(cb)
        self.addCleanup(stackless.set_schedule_callback, None)
        self.assertIs(stackless.get_schedule_callback(), cb)
        self.track(stackless.tasklet(lambda: None)())
        stackless.run()
        self.assertTrue(seen)
        T.PyStackless_SetScheduleCallback(None)
        self.assertIsNone(stackless.get_schedule_callback())
        with self.assertRaises(TypeError):
            T.PyStackless_SetScheduleCallback(42)
        with self.assertRaises(TypeError):
            T.PyStackless_SetChannelCallback(42)

    def test_fast_callback(self):
        self.addCleanup(T.PyStackless_SetScheduleFastcallback, 0)
        stackless.set_schedule_callback(print)
        log = T.PyStackless_SetScheduleFastcallback(1)
        # It replaces the Python callback, which shows as None.
        self.assertIsNone(stackless.get_schedule_callback())
        t = self.track(stackless.tasklet(lambda: None)())
        stackless.run()
        main = stackless.current
        self.assertEqual(log, [(main, t), (t, main)])
        T.PyStackless_SetScheduleFastcallback(0)
        self.track(stackless.tasklet(lambda: None)())
        stackless.run()
        self.assertEqual(len(log), 2)
        # A failing hook is reported.
        T.PyStackless_SetScheduleFastcallback(2)
        with catch_unraisable_exception() as cm:
            self.track(stackless.tasklet(lambda: None)())
            stackless.run()
            self.assertIsNotNone(cm.unraisable)
        # A Python callback set later replaces the hook; set_* returns
        # None for it.
        self.assertIsNone(stackless.set_schedule_callback(None))

    def test_unwind_token_and_type_checks(self):
        self.assertEqual(T.unwind_token(), "<Py_UnwindToken>")
        t = stackless.tasklet()
        checks = T.check_types(t)
        self.assertEqual(checks["PyTasklet_Check"], 1)
        self.assertEqual(checks["PyTasklet_CheckExact"], 1)
        self.assertEqual(checks["PyChannel_Check"], 0)
        self.assertEqual(checks["STACKLESS_UNWINDING"], 0)
        sub = T.check_types(_SubTasklet())
        self.assertEqual((sub["PyTasklet_Check"],
                          sub["PyTasklet_CheckExact"]), (1, 0))
        ch = T.check_types(_SubChannel.__new__(_SubChannel))
        self.assertEqual((ch["PyChannel_Check"], ch["PyChannel_CheckExact"]),
                         (1, 0))
        self.assertEqual(T.check_types(stackless.bomb())["PyBomb_Check"], 1)
        self.assertEqual(T.check_types(stackless.current.cstate)
                         ["PyCStack_Check"], 1)
        # __version__ adds the commit, as a local version label.
        self.assertEqual(T.STACKLESS_VERSION,
                         stackless.__version__.partition("+")[0])
        self.assertEqual(T.METH_STACKLESS, 0x100)
        self.assertEqual(T.Py_TPFLAGS_HAVE_STACKLESS_CALL, 1 << 15)


# Pickled by name, with the list (a pickled frame's locals and stack
# would hold copies).
_PICKLED_RESULTS = []


def _pickled_demo():
    result = T.softswitchablefunc(1, "r")
    _PICKLED_RESULTS.append(result)


class ProtocolMisuseTest(StacklessTestCase):
    """A function with METH_STACKLESS that does not take the permission
    of the protocol passes it on to the Python function it calls, whose
    frame goes to the eval loop, and keeps Py_UnwindToken as a value:
    SystemError, not the token in Python data, nor a function that
    silently never ran.  Runs in both modes."""

    def test_forgotten_getarg(self):
        ran = []

        def f():
            ran.append(1)
            return 1

        out = []

        def body():
            try:
                out.append(T.forgets_getarg(f))
            except SystemError as e:
                out.append(str(e))

        self.spawn(body)
        stackless.run()
        self.assertEqual(len(out), 1)
        if out[0] != (1,):
            # The permission reached f's call: its frame was pushed.
            self.assertTrue(stackless.enable_softswitch(None))
            self.assertIn("did not return Py_UnwindToken", out[0])
            self.assertEqual(ran, [])
        else:
            self.assertEqual(ran, [1])
        if stackless.enable_softswitch(None):
            self.assertNotEqual(out[0], (1,))
        # Outside the protocol (from main, called by C) it just works.
        self.assertEqual(T.forgets_getarg(f), (1,))


class SoftSwitchableFunctionTest(StacklessTestCase):
    """A-27, A-32 .. A-34, A-38: a soft-switchable C function, called by
    the eval loop under the stackless protocol, runs step after step in a
    frame of the eval loop (soft switching on), or once, switching hard
    (off); both give the same results.  Runs in both modes."""

    def soft(self):
        return stackless.enable_softswitch(None)

    def call(self, how, *args):
        if how == "method":
            return T.SoftSwitchableDemo().demo(*args)
        if how == "subclass":
            class Demo(T.SoftSwitchableDemo):
                pass
            return Demo().demo(*args)
        return T.softswitchablefunc(*args)

    def test_actions(self):
        for how in ("function", "method", "subclass"):
            with self.subTest(how=how):
                self.assertEqual(self.call(how, 0, "r"), 2)
                got = []

                def f(action):
                    got.append(self.call(how, action, "r"))

                for action in (1, 2):
                    t = self.track(stackless.tasklet(f)(action))
                    t.run()
                    self.assertTrue(t.alive)
                    for _ in range(2):
                        # action 2: schedule_remove() twice.
                        self.assertEqual(t.paused, action == 2)
                        if t.alive:
                            # No C state while it waits, when soft.
                            self.assertEqual(t.restorable, self.soft())
                            self.assertEqual(t.nesting_level,
                                             0 if self.soft() else 1)
                        if t.paused:
                            t.insert()
                        stackless.run()
                    self.assertFalse(t.alive)
                self.assertEqual(got, [2, 2])

    def test_value_is_the_tempval(self):
        def f():
            T.softswitchablefunc(1, "first")

        t = self.track(stackless.tasklet(f)())
        t.run()
        self.assertEqual(t.tempval, "first")
        t.tempval = "second"
        t.run()
        # Step 1 switched with what the first switch returned.
        self.assertEqual(t.tempval, "second")
        t.run()
        self.assertFalse(t.alive)

    def test_kill_and_throw_while_it_waits(self):
        seen = []

        def f():
            try:
                T.softswitchablefunc(1, "r")
            except BaseException as e:
                seen.append(type(e))
                raise

        t = self.track(stackless.tasklet(f)())
        t.run()
        t.kill()
        self.assertFalse(t.alive)
        t = self.track(stackless.tasklet(f)())
        t.run()
        with self.assertRaisesRegex(ValueError, "thrown"):
            t.throw(ValueError("thrown"))
        self.assertEqual(seen, [stackless.TaskletExit, ValueError])

    def test_callback(self):
        self.assertEqual(T.softswitchablefunc(100, lambda: 5), 5)
        with self.assertRaises(RuntimeError) as cm:
            T.softswitchablefunc(100, lambda: 1 / 0)
        self.assertEqual(str(cm.exception),
                         "demo_soft_switchable callback failed")
        self.assertIsInstance(cm.exception.__context__, ZeroDivisionError)
        with self.assertRaises(KeyboardInterrupt):
            def interrupt():
                raise KeyboardInterrupt
            T.softswitchablefunc(100, interrupt)

    def test_callback_nesting_level(self):
        levels = []

        def callback():
            levels.append(stackless.current.nesting_level)
            stackless.schedule()
            return "done"

        def f():
            levels.append(T.softswitchablefunc(100, callback))
            levels.append(T.SoftSwitchableDemo().demo(100, callback))
            levels.append(T.softswitchablefunc(100, (lambda: 1 / 0)
                                               .__call__))

        t = self.track(stackless.tasklet(f)())
        with self.assertRaises(RuntimeError):
            stackless.run()
        # Called softly, the callback runs in the tasklet's eval loop.
        level = 0 if self.soft() else 1
        self.assertEqual(levels, [level, "done", level, "done"])
        self.assertFalse(t.alive)

    def test_callback_from_other_c_code_stays_hard(self):
        # The permission reaches a Python __init__ through type's call:
        # it is undone, and the class is called as usual.
        made = []

        class C:
            def __init__(self):
                made.append(stackless.current.nesting_level)

        def f():
            made.append(type(T.softswitchablefunc(100, C)).__name__)

        self.track(stackless.tasklet(f)())
        stackless.run()
        self.assertEqual(made[1], "C")
        self.assertEqual(len(made), 2)

    def test_pickled_where_it_waits(self):
        if not self.soft():
            self.skipTest("a hard-switched call does not pickle")
        import pickle
        results = _PICKLED_RESULTS
        del results[:]

        t = self.track(stackless.tasklet(_pickled_demo)())
        t.run()
        step1 = pickle.dumps(t)             # private state allocated
        t.run()
        step2 = pickle.dumps(t)             # private state freed
        t.run()
        self.assertEqual(results, [2])
        u = self.track(pickle.loads(step1))
        self.assertTrue(u.restorable)
        with self.assertRaisesRegex(RuntimeError,
                                    "execute_soft_switchable_func"):
            u.run()
        self.assertFalse(u.alive)
        u = self.track(pickle.loads(step2))
        u.run()
        self.assertFalse(u.alive)
        self.assertEqual(results, [2, 2])

    def test_corrupt_call_state(self):
        call = stackless._stackless.soft_switchable_call
        with self.assertRaisesRegex(ValueError, "no soft-switchable"):
            call("_teststackless", "nothing")
        with self.assertRaises(ValueError):
            call("no_such_module_at_all", "f")
        c = call("_teststackless", "demo_soft_switchable")
        self.assertTrue(c)
        with self.assertRaises(TypeError):
            c.__setstate__("no tuple")
        with self.assertRaises(TypeError):
            c.__setstate__((0, 0, None, None, None, 0))
        with self.assertRaises(ValueError):
            c.__setstate__((-1, 0, None, None, None, 0, 1))
        c.__setstate__((2, 2, None, None, None, 0, 1))
        with self.assertRaisesRegex(RuntimeError, "set already"):
            c.__setstate__((2, 2, None, None, None, 0, 1))
        self.assertIn("demo_soft_switchable at step 2", repr(c))


class EvalFrameTest(StacklessTestCase):
    """_teststackless.test_PyEval_EvalFrameEx(): a frame run by a C-level
    entry of the eval loop (spec A-2)."""

    both_modes = False

    def globals(self):
        return {"stackless": stackless, "__builtins__": __builtins__}

    def test_arguments_and_nesting(self):
        def f(a, b=5):
            return a, stackless.current.nesting_level

        run = T.test_PyEval_EvalFrameEx
        # A C-level entry of the eval loop: one level deeper.
        level = stackless.current.nesting_level + 1
        self.assertEqual(run(f.__code__, self.globals(), (1,)), (1, level))
        with self.assertRaisesRegex(UnboundLocalError, "'a'"):
            run(f.__code__, self.globals())
        addr, _ = run(f.__code__, self.globals(), ("x",), alloca=64)
        self.assertIsInstance(addr, int)
        self.assertNotEqual(addr, 0)
        with self.assertRaisesRegex(ValueError,
                                    "too many items in tuple 'args'"):
            run(f.__code__, self.globals(), (1, 2, 3))

    def test_types(self):
        def f():
            pass

        run = T.test_PyEval_EvalFrameEx
        with self.assertRaises(TypeError):
            run("code", {})
        with self.assertRaises(TypeError):
            run(f.__code__, [])
        with self.assertRaises(TypeError):
            run(f.__code__, {}, [1])
        with self.assertRaisesRegex(TypeError,
                                    "exc must be an exception instance"):
            run(f.__code__, self.globals(), throw=3)

        def outer():
            x = 1

            def inner():
                return x
            return inner

        with self.assertRaisesRegex(ValueError,
                                    "code requires cell variables"):
            run(outer().__code__, self.globals())
        self.assertEqual(run(outer.__code__, self.globals())(), 1)

    def test_throw(self):
        def f():
            return "not reached"

        try:
            T.test_PyEval_EvalFrameEx(f.__code__, self.globals(),
                                      throw=KeyError("k"))
        except KeyError as e:
            last = traceback.extract_tb(e.__traceback__)[-1]
        else:
            self.fail("no KeyError")
        self.assertEqual(last.name, "f")

    def test_oldcython_and_code2(self):
        def f(a):
            return a

        def g(a):
            return ("g", a)

        run = T.test_PyEval_EvalFrameEx
        code = f.__code__
        with self.assertRaises(UnboundLocalError):
            run(code, self.globals(), (code,), oldcython=True)
        self.assertIs(run(code, self.globals(), (code,), oldcython=False),
                      code)
        self.assertEqual(run(code, self.globals(), (1,), oldcython=True), 1)
        self.assertEqual(run(code, self.globals(), (1,), code2=g.__code__),
                         ("g", 1))

    def test_switches_in_a_tasklet_and_a_bare_thread(self):
        def sw():
            stackless.schedule()
            return "switched"

        out = []
        self.track(stackless.tasklet(lambda: out.append(
            T.test_PyEval_EvalFrameEx(sw.__code__, self.globals())))())
        stackless.run()
        self.assertEqual(out, ["switched"])
        import _thread
        import threading
        done = threading.Event()

        def target():
            out.append(T.test_PyEval_EvalFrameEx(sw.__code__,
                                                 self.globals()))
            done.set()

        _thread.start_new_thread(target, ())
        self.assertTrue(done.wait(support.SHORT_TIMEOUT))
        self.assertEqual(out, ["switched", "switched"])


class CframeAndCstateTest(StacklessTestCase):
    """test_cframe() and test_cstate(): C code that switches hard."""

    both_modes = False

    def test_cframe_and_cstate(self):
        def f():
            T.test_cframe(3, 100)

        t = self.track(stackless.tasklet(f)())
        t.run()
        self.assertFalse(t.restorable)
        stackless.run()
        self.assertFalse(t.alive)
        self.assertIsNone(T.test_cframe(0))
        with self.assertRaisesRegex(ValueError, "limited by 0 and 64000"):
            T.test_cframe(1, 64001)
        levels = []

        def nested():
            levels.append(stackless.current.nesting_level)
            T.test_cstate(lambda: levels.append(
                stackless.current.nesting_level))

        self.track(stackless.tasklet(nested)())
        stackless.run()
        self.assertEqual(levels, [0, 1])


class OutsideTest(StacklessTestCase):
    """The API called by C code that runs no Python code (a host)."""

    both_modes = False

    def test_call_main(self):
        with self.assertRaisesRegex(RuntimeError,
                                    "Call_Main cannot run within a main "
                                    "tasklet"):
            T.PyStackless_Call_Main(print)

        def body(*args):
            return args, stackless.current.is_main, stackless.getruncount()

        self.assertEqual(T.run_outside(T.OUTSIDE_CALL_MAIN, body, (1, 2)),
                         ((1, 2), True, 1))
        with self.assertRaises(ZeroDivisionError):
            T.run_outside(T.OUTSIDE_CALL_MAIN, lambda: 1 / 0)

    def test_call_method_main(self):
        class Obj:
            def m(self, *args):
                return ("m", args, stackless.current.is_main)

        self.assertEqual(T.run_outside(T.OUTSIDE_CALLMETHOD_MAIN,
                                       (Obj(), "m")),
                         ("m", (7, "x"), True))
        self.assertEqual(T.run_outside(T.OUTSIDE_CALLCMETHOD_MAIN,
                                       lambda *a: ("c", a)),
                         ("c", (7, "x")))

    def test_channel_and_tasklet_from_c(self):
        got = []

        def receiver(ch):
            for _ in range(3):
                got.append((ch.receive(), stackless.current.is_main))

        log = T.run_outside(T.OUTSIDE_API, receiver)
        self.assertEqual(log, [("before", 2, 1, 1), ("after", 1, 0, 0)])
        self.assertEqual(got, [(0, False), (1, False), (2, False)])

    def test_schedule_from_c(self):
        # spec M-21.6: tasklets made by Python code, scheduled by C code
        # until none is left.
        log = []

        def make():
            for name in "ab":
                stackless.tasklet(self.stepper)(name, log)

        self.assertEqual(T.run_outside(T.OUTSIDE_SCHEDULE_ALL, make), 1)
        self.assertEqual(log, ["a0", "b0", "a1", "b1", "a2", "b2"])

    @staticmethod
    def stepper(name, log):
        for i in range(3):
            log.append(f"{name}{i}")
            stackless.schedule()


class PostToChannelTest(StacklessTestCase):
    """PyStackless_PostToChannel(): values from threads without the GIL."""

    both_modes = False

    def test_values_arrive_in_order(self):
        ch = stackless.channel()
        values = list(range(1000))
        T.post_from_thread(ch, values)
        got = [ch.receive() for _ in values]
        self.assertEqual(got, values)
        T.post_from_thread(ch, ["late"])
        self.assertEqual(ch.receive(), "late")

    def test_to_waiting_receiver(self):
        ch = stackless.channel()
        got = []

        def receiver():
            for _ in range(3):
                got.append(ch.receive())

        self.track(stackless.tasklet(receiver)()).run()
        T.post_from_thread(ch, ["a", "b", "c"])
        for _ in range(10):
            stackless.schedule()
            if len(got) == 3:
                break
        stackless.run()
        self.assertEqual(got, ["a", "b", "c"])

    def test_reaches_main_waiting_in_the_scheduler(self):
        # Main blocks with nothing runnable; another thread could still
        # make progress (it waits for an event), so main waits in the
        # scheduler instead of raising Deadlock, and takes the post.
        import threading
        go = threading.Event()
        other = threading.Thread(target=go.wait)
        other.start()
        try:
            ch = stackless.channel()
            T.post_later(ch, "posted", 100)
            self.assertEqual(ch.receive(), "posted")
        finally:
            go.set()
            other.join()
        stackless.run()

    def test_closed_channel_is_reported(self):
        ch = stackless.channel()
        ch.close()
        with catch_unraisable_exception() as cm:
            T.post_from_thread(ch, [1])
            for _ in range(10):
                stackless.schedule()
                if cm.unraisable is not None:
                    break
            stackless.run()
            self.assertIsInstance(cm.unraisable.exc_value, ValueError)


class EmbedTest(unittest.TestCase):
    """Programs/_testembed slp_schedule (spec A-2, N-6)."""

    both_modes = False

    def test_slp_schedule(self):
        builddir = sysconfig.get_config_var("abs_builddir") \
            or os.path.dirname(sys.executable)
        exe = os.path.join(builddir, "Programs", "_testembed")
        if not os.path.exists(exe):
            self.skipTest("Programs/_testembed is not built")
        out = subprocess.run([exe, "slp_schedule"], capture_output=True,
                             text=True, cwd=builddir, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "Hello, World!")


class TypeFlagsTest(unittest.TestCase):
    """The bits CPython keeps for Stackless (Py_TPFLAGS_HAVE_STACKLESS_*)
    are not in every type's flags, as they would be if the core were
    built with STACKLESS defined: __flags__ are stock CPython's."""

    both_modes = False

    def test_flags_as_stock(self):
        bits = 3 << 15
        for tp in (object, int, type, type("A", (), {}), stackless.tasklet,
                   stackless.channel):
            with self.subTest(type=tp):
                self.assertEqual(tp.__flags__ & bits, 0)


class SymbolTest(unittest.TestCase):
    """libpython exports no Stackless symbol without a Py or _Py prefix."""

    both_modes = False

    def test_exported_symbols(self):
        import re
        import shutil
        nm = shutil.which("nm")
        libdir = sysconfig.get_config_var("LIBDIR")
        builddir = sysconfig.get_config_var("abs_builddir")
        name = sysconfig.get_config_var("INSTSONAME") \
            or sysconfig.get_config_var("LDLIBRARY")
        if nm is None or not name or ".so" not in name:
            self.skipTest("no nm or no shared libpython")
        candidates = [os.path.join(d, name) for d in (builddir, libdir) if d]
        lib = next((p for p in candidates if os.path.exists(p)), None)
        if lib is None:
            self.skipTest("libpython not found")
        out = subprocess.run([nm, "-D", "--defined-only", lib],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        # (AddressSanitizer adds an __odr_asan.NAME for each global.)
        names = [line.split()[-1] for line in out.stdout.splitlines()
                 if line.strip()
                 and not line.split()[-1].startswith("__odr_asan")]
        ours = [n for n in names
                if re.search(r"slp|stackless|tasklet|channel|cstack", n,
                             re.IGNORECASE)]
        self.assertIn("PyTasklet_New", ours)
        self.assertEqual([n for n in ours
                          if not n.startswith(("Py", "_Py"))], [])


if __name__ == "__main__":
    unittest.main()
