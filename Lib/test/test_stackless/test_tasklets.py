"""Tasklets: creation, binding, scheduling, exceptions, flags, attributes.

Spec section 2 (T-1 .. T-30), with the parts of S-2, S-3, S-9 and S-11
that describe what happens to a tasklet.  Threads (X), pickling (P),
tracing (D) and channels (C) are tested elsewhere; channels appear here
only to block tasklets.

Every test runs in the main tasklet of the main thread and leaves the
scheduler as it found it: the tearDown of StacklessTestCase kills what
is left of the tasklets a test made and checks that the runqueue holds
the main tasklet alone.
"""

import contextvars
import gc
import sys
import textwrap
import threading
import unittest
import weakref

from test import support
from test.support import script_helper

import stackless
from . import helpers
from .helpers import flush_runqueue, nop
from stackless import bomb, channel, tasklet
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


def suspend():
    """Body of a tasklet that stops once in schedule_remove()."""
    stackless.schedule_remove()


class StacklessTestCase(helpers.StacklessTestCase):

    def assertNotAlive(self, t):
        """The flags of a tasklet without frames (T-17 .. T-25)."""
        self.assertFalse(t.alive)
        self.assertFalse(t.paused)
        self.assertFalse(t.blocked)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.is_current)
        self.assertFalse(t.is_main)
        self.assertIsNone(t.frame)
        self.assertIsNone(t.next)
        self.assertIsNone(t.prev)
        self.assertTrue(t.restorable)

    def assertPaused(self, t):
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        self.assertFalse(t.blocked)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.is_current)
        self.assertIsNone(t.next)
        self.assertIsNone(t.prev)

    def assertRunnable(self, t):
        self.assertTrue(t.alive)
        self.assertFalse(t.paused)
        self.assertFalse(t.blocked)
        self.assertTrue(t.scheduled)
        self.assertIsNotNone(t.next)
        self.assertIsNotNone(t.prev)

    def assertBlocked(self, t):
        self.assertTrue(t.alive)
        self.assertFalse(t.paused)
        self.assertTrue(t.blocked)
        self.assertTrue(t.scheduled)
        self.assertFalse(t.is_current)

    def blocked_receiver(self, ch, log=None):
        """A tasklet blocked in ch.receive(); what it gets goes to log."""
        def receiver():
            try:
                log.append(("got", ch.receive()))
            except BaseException as e:
                log.append(("raised", type(e), e.args))
                raise
        if log is None:
            log = []
        t = self.new(receiver)()
        t.run()
        self.assertBlocked(t)
        return t

    def suspended(self, func=suspend, *args):
        """A started tasklet, paused where func suspends it."""
        t = self.new(func, args)
        t.run()
        self.assertPaused(t)
        return t


class CreationTest(StacklessTestCase):
    """T-1: tasklet(func=None, args=None, kwargs=None)."""

    def test_unbound(self):
        # T-1: __new__ makes an unbound tasklet, all flags False.
        t = tasklet()
        self.assertNotAlive(t)
        self.assertIsNone(t.tempval)
        self.assertFalse(t.atomic)
        self.assertFalse(t.ignore_nesting)
        self.assertFalse(t.block_trap)
        self.assertEqual(t.nesting_level, 0)
        self.assertEqual(t.recursion_depth, 0)
        self.assertEqual(t.thread_id, threading.get_ident())
        self.assertIsNone(t._channel)

    def test_new_ignores_arguments(self):
        # T-1: __new__ ignores its arguments; __init__ binds.
        t = tasklet.__new__(tasklet, nop, (1,), {"a": 1})
        self.assertNotAlive(t)
        self.assertIsNone(t.tempval)
        t.__init__(nop)
        self.assertIs(t.tempval, nop)

    def test_bound_to_function(self):
        # T-1: tasklet(f) is bound, not alive; tempval is f (T-16).
        t = tasklet(nop)
        self.assertNotAlive(t)
        self.assertIs(t.tempval, nop)

    def test_bound_with_args_is_paused(self):
        # T-1: tasklet(f, (1,)) is alive and paused.
        for args, kwargs in [((1,), None), ((), None), (None, {"a": 1}),
                             ((1,), {"a": 1})]:
            with self.subTest(args=args, kwargs=kwargs):
                t = self.new(nop, args, kwargs)
                self.assertPaused(t)
                self.assertIsNone(t.tempval)

    def test_keyword_arguments(self):
        # T-1: the signature is tasklet(func=None, args=None, kwargs=None).
        log = []
        t = self.new(func=lambda *a, **k: log.append((a, k)),
                     args=(1,), kwargs={"b": 2})
        self.assertPaused(t)
        t.run()
        self.assertEqual(log, [((1,), {"b": 2})])

    def test_call_schedules(self):
        # T-1: tasklet(f)(1) is scheduled and runs f(1).
        log = []
        t = self.new(log.append)(1)
        self.assertRunnable(t)
        self.assertEqual(stackless.getruncount(), 2)
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, [1])
        self.assertNotAlive(t)

    def test_runqueue_keeps_tasklet_alive(self):
        # T-1: a scheduled tasklet needs no other reference.
        log = []
        ref = weakref.ref(tasklet(log.append)("ran"))
        gc.collect()
        self.assertIsNotNone(ref())
        stackless.run()
        self.assertEqual(log, ["ran"])
        gc.collect()
        self.assertIsNone(ref())

    def test_atomic_not_inherited(self):
        # T-1: atomic starts False, also when the creator is atomic.
        with stackless.atomic():
            t = tasklet(nop)
            self.assertTrue(stackless.getcurrent().atomic)
        self.assertFalse(t.atomic)

    def test_not_callable(self):
        # T-1, T-2: func must be callable or None.
        with self.assertRaises(TypeError):
            tasklet(42)
        with self.assertRaises(TypeError):
            tasklet("nop", ())

    def test_too_many_arguments(self):
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 3 argument"):
            tasklet(nop, (), {}, 1)

    def test_owner_is_creator_thread(self):
        # T-1, T-23: owned by the calling thread.
        t = tasklet(nop, ())
        self.assertEqual(t.thread_id, threading.get_ident())
        self.assertEqual(t.thread_id, stackless.getmain().thread_id)

    def test_gc_tracked(self):
        # T-1: tasklets are tracked by the garbage collector.
        self.assertTrue(gc.is_tracked(tasklet()))
        self.assertTrue(gc.is_tracked(tasklet(nop, ())))

    def test_reference_cycle_collected(self):
        # T-1: a never-started tasklet in a cycle with its function goes.
        def f(x):
            pass
        t = tasklet(f, ())
        f.t = t                     # cycle: t -> f -> f.__dict__ -> t
        ref = weakref.ref(t)
        del t, f
        gc.collect()
        self.assertIsNone(ref())


class WeakrefTest(StacklessTestCase):
    """T-1: tasklets are weakref-able."""

    def test_weakref(self):
        t = tasklet(nop)
        ref = weakref.ref(t)
        self.assertIs(ref(), t)
        del t
        gc.collect()
        self.assertIsNone(ref())

    def test_weakref_callback(self):
        log = []
        t = tasklet(nop, ())
        ref = weakref.ref(t, log.append)
        del t
        gc.collect()
        self.assertEqual(log, [ref])

    def test_weak_value_dictionary(self):
        d = weakref.WeakValueDictionary()
        t = tasklet(nop)
        d["t"] = t
        self.assertIs(d["t"], t)
        del t
        gc.collect()
        self.assertNotIn("t", d)

    def test_weakref_to_finished_tasklet(self):
        t = self.new(nop)()
        ref = weakref.ref(t)
        stackless.run()
        self.assertIs(ref(), t)
        self.tasklets.clear()
        del t
        gc.collect()
        self.assertIsNone(ref())

    def test_proxy(self):
        t = tasklet(nop)
        p = weakref.proxy(t)
        self.assertIs(p.tempval, nop)
        self.assertFalse(p.alive)


class SubclassTest(StacklessTestCase):
    """T-1: tasklet is subclassable."""

    def test_subclass_runs(self):
        class MyTasklet(tasklet):
            pass
        log = []

        def f(x):
            log.append((x, type(stackless.getcurrent())))
        t = self.track(MyTasklet(f)(1))
        self.assertIsInstance(t, tasklet)
        self.assertIs(type(t), MyTasklet)
        stackless.run()
        self.assertEqual(log, [(1, MyTasklet)])

    def test_current_is_the_subclass_instance(self):
        class MyTasklet(tasklet):
            pass
        seen = []
        t = self.track(MyTasklet(lambda: seen.append(stackless.getcurrent())))
        t()
        stackless.run()
        self.assertEqual(len(seen), 1)
        self.assertIs(seen[0], t)

    def test_subclass_with_init_and_attributes(self):
        # __new__ ignores the arguments, so a subclass may have its own.
        class Named(tasklet):
            def __init__(self, name, func):
                super().__init__(func)
                self.name = name
        log = []
        t = self.track(Named("worker", log.append))
        self.assertEqual(t.name, "worker")
        self.assertEqual(t.tempval, log.append)
        t.setup("x")
        stackless.run()
        self.assertEqual(log, ["x"])
        self.assertEqual(t.name, "worker")

    def test_subclass_without_init_call(self):
        # __init__ not called: the tasklet is unbound (T-1).
        class Lazy(tasklet):
            def __init__(self, *args):
                pass
        t = Lazy(nop, (1,))
        self.assertNotAlive(t)
        self.assertIsNone(t.tempval)

    def test_subclass_overriding_methods(self):
        calls = []

        class Logged(tasklet):
            def insert(self):
                calls.append("insert")
                return super().insert()
        t = self.track(Logged(nop, ()))
        self.assertIs(t.insert(), t)
        self.assertEqual(calls, ["insert"])
        self.assertRunnable(t)
        stackless.run()
        self.assertNotAlive(t)

    def test_subclass_weakref_and_dict(self):
        class Sub(tasklet):
            pass
        t = Sub()
        t.extra = 1
        self.assertIs(weakref.ref(t)(), t)
        self.assertEqual(t.__dict__, {"extra": 1})


class BindTest(StacklessTestCase):
    """T-2: bind(func=None, args=None, kwargs=None) -> self."""

    def test_returns_self(self):
        t = tasklet()
        self.assertIs(t.bind(nop), t)
        self.assertIs(t.bind(None), t)
        self.assertIs(t.bind(nop, ()), t)

    def test_bind_function_only(self):
        # T-2, T-30: NOT_ALIVE --bind(f)--> BOUND --bind(None)--> NOT_ALIVE
        t = tasklet()
        t.bind(nop)
        self.assertNotAlive(t)
        self.assertIs(t.tempval, nop)
        t.bind(None)
        self.assertNotAlive(t)
        self.assertIsNone(t.tempval)
        t.bind()
        self.assertIsNone(t.tempval)

    def test_bind_with_args(self):
        # T-2: with args or kwargs the tasklet is alive and paused.
        log = []

        def f(*args, **kwargs):
            log.append((args, kwargs))
        cases = [
            (((1, 2),), {}, ((1, 2), {})),
            (((), {"a": 1}), {}, ((), {"a": 1})),
            ((None, {"a": 1}), {}, ((), {"a": 1})),
            (((3,), None), {}, ((3,), {})),
            ((), {"args": (4,)}, ((4,), {})),
            ((), {"kwargs": {"b": 5}}, ((), {"b": 5})),
        ]
        for args, kwargs, expected in cases:
            with self.subTest(args=args, kwargs=kwargs):
                log.clear()
                t = self.new()
                self.assertIs(t.bind(f, *args, **kwargs), t)
                self.assertPaused(t)
                self.assertIsNone(t.tempval)
                t.run()
                self.assertEqual(log, [expected])
                self.assertNotAlive(t)

    def test_bind_args_uses_bound_function(self):
        # T-2: bind(None, args) calls the function bound before.
        log = []
        t = self.new(log.append)
        t.bind(None, ("x",))
        self.assertPaused(t)
        self.assertIsNone(t.tempval)
        t.run()
        self.assertEqual(log, ["x"])

    def test_bind_args_without_function(self):
        # T-2: no function to call.
        t = tasklet()
        with self.assertRaisesRegex(RuntimeError,
                                    r"^the tasklet was not bound to a "
                                    r"function$"):
            t.bind(None, ())
        self.assertNotAlive(t)
        with self.assertRaisesRegex(RuntimeError,
                                    "the tasklet was not bound to a function"):
            t.bind(None, None, {})

    def test_not_callable(self):
        # T-2: func callable or None, else TypeError; nothing changes.
        t = tasklet(nop)
        for bad in (1, "nop", (nop,)):
            with self.subTest(func=bad):
                with self.assertRaises(TypeError):
                    t.bind(bad)
                with self.assertRaises(TypeError):
                    t.bind(bad, ())
                self.assertIs(t.tempval, nop)
                self.assertNotAlive(t)

    def test_rebind_paused_unstarted(self):
        # T-2, T-30: PAUSED --bind(None)--> NOT_ALIVE; a new call replaces
        # the old one, which never runs.
        log = []
        t = self.new(log.append, ("old",))
        t.bind(None)
        self.assertNotAlive(t)
        self.assertIsNone(t.tempval)
        t.bind(log.append, ("new",))
        self.assertPaused(t)
        t.bind(log.append)
        self.assertNotAlive(t)
        self.assertEqual(t.tempval, log.append)
        t.bind(log.append, ("newer",))
        t.run()
        self.assertEqual(log, ["newer"])

    def test_rebind_dead(self):
        # T-2: a finished tasklet can be bound and run again.
        log = []
        t = self.new(log.append, (1,))
        t.run()
        self.assertNotAlive(t)
        t.bind(log.append, (2,))
        self.assertPaused(t)
        t.run()
        t.bind(log.append)
        t.setup(3)
        stackless.run()
        self.assertEqual(log, [1, 2, 3])

    def test_bind_current(self):
        # T-2: "can't (re)bind the current tasklet", for main and others.
        with self.assertRaisesRegex(RuntimeError,
                                    r"^can't \(re\)bind the current tasklet$"):
            stackless.getcurrent().bind(nop)
        with self.assertRaisesRegex(RuntimeError,
                                    r"can't \(re\)bind the current tasklet"):
            stackless.getcurrent().bind(None)
        log = []

        def f():
            try:
                stackless.getcurrent().bind(nop, ())
            except RuntimeError as e:
                log.append(str(e))
        self.new(f)()
        stackless.run()
        self.assertEqual(log, ["can't (re)bind the current tasklet"])

    def test_bind_current_not_callable_first(self):
        # T-2: the callable check comes first.
        with self.assertRaises(TypeError):
            stackless.getcurrent().bind(42)

    def test_bind_scheduled(self):
        # T-2: "tasklet is scheduled" for a runnable tasklet.
        t = self.new(nop)()
        for args in [(nop,), (None,), (nop, ()), (None, ())]:
            with self.subTest(args=args):
                with self.assertRaisesRegex(RuntimeError,
                                            r"^tasklet is scheduled$"):
                    t.bind(*args)
                self.assertRunnable(t)
        stackless.run()
        self.assertNotAlive(t)

    def test_bind_blocked(self):
        # T-2: a blocked tasklet is scheduled too.
        ch = channel()
        t = self.blocked_receiver(ch)
        with self.assertRaisesRegex(RuntimeError, r"^tasklet is scheduled$"):
            t.bind(None)
        with self.assertRaisesRegex(RuntimeError, "tasklet is scheduled"):
            t.bind(nop, ())
        self.assertBlocked(t)
        self.assertEqual(ch.balance, -1)

    def test_bind_paused_started(self):
        # T-2: a started, paused tasklet with C state refuses; without it,
        # its frames are dropped and its code never resumes.
        log = []

        def f():
            try:
                stackless.schedule_remove()
                log.append("resumed")
            finally:
                log.append("finally")
        t = self.suspended(f)
        if stackless.enable_softswitch(None):
            self.assertEqual(t.nesting_level, 0)    # switched softly
        if t.nesting_level:
            with self.assertRaisesRegex(
                    RuntimeError, r"^tasklet has C state on its stack$"):
                t.bind(None)
            self.assertPaused(t)
            self.assertIs(t.frame.f_code, f.__code__)
        else:
            t.bind(None)
            self.assertNotAlive(t)
            self.assertIsNone(t.frame)
            self.assertEqual(t.recursion_depth, 0)
            self.assertEqual(log, [])
            # It can be bound anew and run.
            t.bind(log.append, ("again",))
            t.insert()
            stackless.run()
            self.assertEqual(log, ["again"])

    def test_bind_main_tasklet(self):
        # T-2: the main tasklet cannot be unbound; the C state check
        # comes first.
        main = stackless.getmain()
        expected = ("tasklet has C state on its stack"
                    if main.nesting_level else "can't unbind the main tasklet")
        log = []

        def f():
            self.assertTrue(main.paused)
            try:
                main.bind(None)
            except RuntimeError as e:
                log.append(str(e))
        t = self.new(f, ())
        t.switch()
        self.assertEqual(log, [expected])
        self.assertTrue(main.alive)
        self.assertTrue(main.is_main)


class SetupTest(StacklessTestCase):
    """T-3: setup(*args, **kwargs) and __call__."""

    def test_setup_returns_self_and_schedules(self):
        log = []

        def f(*args, **kwargs):
            log.append((args, kwargs))
        t = self.new(f)
        self.assertIs(t.setup(1, 2, a=3), t)
        self.assertRunnable(t)
        self.assertIsNone(t.tempval)
        self.assertEqual(stackless.getruncount(), 2)
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, [((1, 2), {"a": 3})])

    def test_call(self):
        log = []

        def f(*args, **kwargs):
            log.append((args, kwargs))
        t = self.new(f)
        self.assertIs(t(4, b=5), t)
        self.assertRunnable(t)
        u = self.new(f)
        self.assertIs(u(), u)
        stackless.run()
        self.assertEqual(log, [((4,), {"b": 5}), ((), {})])

    def test_setup_alive(self):
        # T-3: "tasklet is alive" for paused and scheduled tasklets.
        t = self.new(nop, ())
        for method in (t.setup, t):
            with self.subTest(method=method):
                with self.assertRaisesRegex(RuntimeError,
                                            r"^tasklet is alive$"):
                    method()
                self.assertPaused(t)
        t.insert()
        with self.assertRaisesRegex(RuntimeError, r"^tasklet is alive$"):
            t.setup(1)
        with self.assertRaisesRegex(RuntimeError, r"^tasklet is alive$"):
            t(1)
        self.assertRunnable(t)

    def test_setup_current(self):
        with self.assertRaisesRegex(RuntimeError, r"^tasklet is alive$"):
            stackless.getcurrent().setup()

    def test_setup_unbound(self):
        t = tasklet()
        with self.assertRaisesRegex(RuntimeError,
                                    "the tasklet was not bound to a function"):
            t.setup()
        with self.assertRaisesRegex(RuntimeError,
                                    "the tasklet was not bound to a function"):
            t()
        self.assertNotAlive(t)
        self.assertEqual(stackless.getruncount(), 1)

    def test_setup_dead(self):
        # A dead tasklet has tempval None (T-16): nothing to call.
        t = self.new(nop)()
        stackless.run()
        with self.assertRaisesRegex(RuntimeError,
                                    "the tasklet was not bound to a function"):
            t()


class InsertTest(StacklessTestCase):
    """T-4: insert() -> self."""

    def test_insert_paused(self):
        log = []
        t = self.new(log.append, (1,))
        self.assertIs(t.insert(), t)
        self.assertRunnable(t)
        self.assertEqual(stackless.getruncount(), 2)
        self.assertEqual(log, [])       # never switches
        stackless.run()
        self.assertEqual(log, [1])

    def test_insert_appends(self):
        # T-4, S-1: appended just before current, so FIFO.
        log = []
        ts = [self.new(log.append, (i,)) for i in range(3)]
        for t in ts:
            t.insert()
        main = stackless.getcurrent()
        self.assertIs(main.next, ts[0])
        self.assertIs(ts[0].next, ts[1])
        self.assertIs(ts[1].next, ts[2])
        self.assertIs(ts[2].next, main)
        self.assertIs(main.prev, ts[2])
        self.assertIs(ts[0].prev, main)
        stackless.run()
        self.assertEqual(log, [0, 1, 2])

    def test_insert_scheduled_is_noop(self):
        a = self.new(nop)()
        b = self.new(nop)()
        self.assertIs(a.insert(), a)
        self.assertEqual(stackless.getruncount(), 3)
        self.assertIs(stackless.getcurrent().next, a)
        self.assertIs(a.next, b)
        stackless.getcurrent().insert()     # current is scheduled too
        self.assertEqual(stackless.getruncount(), 3)
        stackless.run()

    def test_insert_blocked(self):
        ch = channel()
        t = self.blocked_receiver(ch)
        with self.assertRaisesRegex(RuntimeError,
                                    r"^You cannot run a blocked tasklet$"):
            t.insert()
        self.assertBlocked(t)
        self.assertEqual(stackless.getruncount(), 1)

    def test_insert_without_frame(self):
        msg = r"^You cannot run an unbound\(dead\) tasklet$"
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), dead):
            with self.subTest(t=t):
                with self.assertRaisesRegex(RuntimeError, msg):
                    t.insert()
                self.assertNotAlive(t)
        self.assertEqual(stackless.getruncount(), 1)

    def test_insert_from_tasklet(self):
        # T-4: the inserted tasklet runs after the others of this cycle.
        log = []
        b = self.new(log.append, ("b",))

        def a():
            log.append("a1")
            b.insert()
            log.append("a2")
        self.new(a)()
        self.new(log.append)("c")
        stackless.run()
        self.assertEqual(log, ["a1", "a2", "c", "b"])


class RemoveTest(StacklessTestCase):
    """T-5: remove() -> self."""

    def test_remove_scheduled(self):
        log = []
        t = self.new(log.append)(1)
        self.assertIs(t.remove(), t)
        self.assertPaused(t)
        self.assertEqual(stackless.getruncount(), 1)
        stackless.run()
        self.assertEqual(log, [])
        t.insert()
        stackless.run()
        self.assertEqual(log, [1])

    def test_remove_middle(self):
        a, b, c = (self.new(nop)() for _ in range(3))
        b.remove()
        self.assertIs(a.next, c)
        self.assertIs(c.prev, a)
        self.assertEqual(stackless.getruncount(), 3)

    def test_remove_unscheduled_is_noop(self):
        for t in (tasklet(), tasklet(nop), self.new(nop, ())):
            with self.subTest(t=t):
                self.assertIs(t.remove(), t)
                self.assertFalse(t.scheduled)
        self.assertEqual(stackless.getruncount(), 1)

    def test_remove_started(self):
        # T-5: a tasklet that yielded can be removed and run later.
        log = []

        def f():
            log.append(1)
            stackless.schedule()
            log.append(2)
        t = self.new(f)()
        t.run()
        self.assertRunnable(t)
        t.remove()
        self.assertPaused(t)
        stackless.run()
        self.assertEqual(log, [1])
        t.run()
        self.assertEqual(log, [1, 2])
        self.assertNotAlive(t)

    def test_remove_blocked(self):
        ch = channel()
        t = self.blocked_receiver(ch)
        with self.assertRaisesRegex(RuntimeError,
                                    r"^You cannot remove a blocked "
                                    r"tasklet\.$"):
            t.remove()
        self.assertBlocked(t)
        self.assertEqual(ch.balance, -1)

    def test_remove_current(self):
        msg = r"^The current tasklet cannot be removed\.$"
        with self.assertRaisesRegex(RuntimeError, msg):
            stackless.getcurrent().remove()
        log = []

        def f():
            try:
                stackless.getcurrent().remove()
            except RuntimeError as e:
                log.append(str(e))
        self.new(f)()
        stackless.run()
        self.assertEqual(log, ["The current tasklet cannot be removed."])
        self.assertEqual(stackless.getruncount(), 1)


class RunTest(StacklessTestCase):
    """T-6: run()."""

    def test_run_paused(self):
        # T-6: the target runs now; the caller resumes when it ends.
        log = []
        t = self.new(log.append, (1,))
        self.assertIsNone(t.run())
        self.assertEqual(log, [1])
        self.assertNotAlive(t)

    def test_caller_resumes_after_new_target_yields(self):
        # T-6: a newly inserted target sits just before the caller.
        log = []

        def f(name):
            log.append(name + "1")
            stackless.schedule()
            log.append(name + "2")
        self.new(f)("a")
        b = self.new(f, ("b",))
        b.run()
        log.append("main")
        stackless.run()
        self.assertEqual(log, ["b1", "main", "a1", "b2", "a2"])

    def test_run_scheduled_target(self):
        # T-6: for a scheduled target, the tasklets between it and the
        # caller run first; the caller keeps its queue position.
        log = []

        def f(name):
            log.append(name)
            stackless.schedule()
            log.append(name + "2")
        a = self.new(f)("a")
        self.new(f)("b")
        self.new(f)("c")
        a.run()
        self.assertEqual(log, ["a", "b", "c"])
        log.clear()
        stackless.run()
        self.assertEqual(log, ["a2", "b2", "c2"])

    def test_run_last_target(self):
        log = []

        def f(name):
            log.append(name)
            stackless.schedule()
            log.append(name + "2")
        self.new(f)("a")
        self.new(f)("b")
        c = self.new(f)("c")
        c.run()
        self.assertEqual(log, ["c"])
        log.clear()
        stackless.run()
        self.assertEqual(log, ["a", "b", "c2", "a2", "b2"])

    def test_caller_stays_scheduled(self):
        seen = []
        main = stackless.getcurrent()

        def f():
            seen.append((main.scheduled, main.paused,
                         stackless.getruncount()))
        self.new(f, ()).run()
        self.assertEqual(seen, [(True, False, 2)])

    def test_run_returns_callers_tempval(self):
        # T-6: run() returns the caller's tempval at resumption.
        main = stackless.getcurrent()

        def f():
            main.tempval = "for main"
        t = self.new(f, ())
        self.assertEqual(t.run(), "for main")
        self.assertIsNone(main.tempval)

    def test_run_current(self):
        # T-6: current.run() returns at once.
        stackless.getcurrent().run()
        log = []

        def f():
            log.append(1)
            stackless.getcurrent().run()
            log.append(2)
        self.new(f)()
        self.new(log.append)(3)
        stackless.run()
        self.assertEqual(log, [1, 2, 3])

    def test_run_blocked(self):
        ch = channel()
        t = self.blocked_receiver(ch)
        with self.assertRaisesRegex(RuntimeError,
                                    r"^You cannot run a blocked tasklet$"):
            t.run()
        self.assertBlocked(t)

    def test_run_without_frame(self):
        msg = r"^You cannot run an unbound\(dead\) tasklet$"
        for t in (tasklet(), tasklet(nop)):
            with self.subTest(t=t):
                with self.assertRaisesRegex(RuntimeError, msg):
                    t.run()

    def test_run_from_tasklet(self):
        log = []
        b = self.new(log.append, ("b",))

        def a():
            log.append("a1")
            b.run()
            log.append("a2")
        self.new(a)()
        stackless.run()
        self.assertEqual(log, ["a1", "b", "a2"])


class SwitchTest(StacklessTestCase):
    """T-7: switch()."""

    def test_caller_is_paused(self):
        # T-7: the caller leaves the runqueue; main resumes when the
        # runqueue empties.
        seen = []
        main = stackless.getcurrent()

        def f():
            seen.append((main.paused, main.scheduled, main.alive,
                         stackless.getruncount(), main.next))
        t = self.new(f, ())
        self.assertIsNone(t.switch())
        self.assertEqual(seen, [(True, False, True, 1, None)])
        self.assertNotAlive(t)

    def test_switch_between_tasklets(self):
        # T-7: a non-main caller stays paused until it is inserted again.
        log = []

        def a():
            log.append("a1")
            b.switch()
            log.append("a2")

        def b_func():
            log.append("b")
        b = self.new(b_func, ())
        t = self.new(a)()
        stackless.run()
        self.assertEqual(log, ["a1", "b"])
        self.assertPaused(t)
        t.insert()
        stackless.run()
        self.assertEqual(log, ["a1", "b", "a2"])
        self.assertNotAlive(t)

    def test_switch_scheduled_target(self):
        log = []

        def f(name):
            log.append(name)
            stackless.schedule()
            log.append(name + "2")
        a = self.new(f)("a")
        self.new(f)("b")
        a.switch()
        # main was paused, so it came back only when the queue emptied.
        self.assertEqual(log, ["a", "b", "a2", "b2"])

    def test_switch_blocked(self):
        ch = channel()
        t = self.blocked_receiver(ch)
        with self.assertRaisesRegex(RuntimeError,
                                    "You cannot run a blocked tasklet"):
            t.switch()
        self.assertBlocked(t)
        self.assertTrue(stackless.getcurrent().scheduled)

    def test_switch_without_frame(self):
        with self.assertRaisesRegex(RuntimeError,
                                    r"You cannot run an unbound\(dead\) "
                                    r"tasklet"):
            tasklet(nop).switch()
        self.assertTrue(stackless.getcurrent().scheduled)


class ThrowTest(StacklessTestCase):
    """T-8: throw(exc, val=None, tb=None, pending=False) -> None."""

    def catcher(self, log):
        """A suspended tasklet that logs what it catches, then ends."""
        def f():
            try:
                stackless.schedule_remove()
                log.append("resumed")
            except BaseException as e:
                log.append((type(e), e.args,
                            stackless.getmain().scheduled))
        return self.suspended(f)

    def test_throw_class(self):
        log = []
        t = self.catcher(log)
        self.assertIsNone(t.throw(ValueError))
        self.assertEqual(log, [(ValueError, (), True)])
        self.assertNotAlive(t)

    def test_throw_class_and_value(self):
        log = []
        t = self.catcher(log)
        t.throw(ValueError, "text")
        self.assertEqual(log, [(ValueError, ("text",), True)])

    def test_throw_class_and_instance(self):
        log = []
        t = self.catcher(log)
        t.throw(ValueError, ValueError(1, 2))
        self.assertEqual(log, [(ValueError, (1, 2), True)])

    def test_throw_instance(self):
        log = []
        t = self.catcher(log)
        e = KeyError("k")
        t.throw(e)
        self.assertEqual(log, [(KeyError, ("k",), True)])

    def test_throw_keyword_arguments(self):
        log = []
        t = self.catcher(log)
        t.throw(exc=IndexError, val="i", tb=None, pending=False)
        self.assertEqual(log, [(IndexError, ("i",), True)])

    def test_throw_traceback(self):
        # T-8: the traceback goes with the exception.
        def origin():
            raise ValueError("origin")
        try:
            origin()
        except ValueError:
            info = sys.exc_info()
        names = []

        def f():
            try:
                stackless.schedule_remove()
            except ValueError as e:
                tb = e.__traceback__
                while tb is not None:
                    names.append(tb.tb_frame.f_code.co_name)
                    tb = tb.tb_next
        t = self.suspended(f)
        t.throw(*info)
        self.assertIn("origin", names)

    def test_instance_with_value(self):
        t = self.suspended()
        with self.assertRaisesRegex(TypeError,
                                    r"^instance exception may not have a "
                                    r"separate value$"):
            t.throw(ValueError("x"), "y")
        self.assertPaused(t)

    def test_bad_traceback(self):
        t = self.suspended()
        for tb in (1, "tb", sys._getframe()):
            with self.subTest(tb=tb):
                with self.assertRaises(TypeError):
                    t.throw(ValueError, None, tb)
                self.assertPaused(t)

    def test_bad_exception(self):
        t = self.suspended()
        for exc in (42, "ValueError", int, object(), None):
            with self.subTest(exc=exc):
                with self.assertRaises(TypeError):
                    t.throw(exc)
                self.assertPaused(t)

    def test_no_arguments(self):
        t = self.suspended()
        with self.assertRaises(TypeError):
            t.throw()
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 4 argument"):
            t.throw(ValueError, None, None, False, 5)

    def test_throw_to_current(self):
        # T-8: raised in the caller at once.
        with self.assertRaisesRegex(ValueError, "^now$"):
            stackless.getcurrent().throw(ValueError, "now")
        with self.assertRaisesRegex(KeyError, "now"):
            stackless.getcurrent().throw(KeyError("now"), pending=True)
        log = []

        def f():
            try:
                stackless.getcurrent().throw(IndexError)
            except IndexError:
                log.append("caught")
        self.new(f)()
        stackless.run()
        self.assertEqual(log, ["caught"])

    def test_taskletexit_to_tasklet_without_frames(self):
        # T-8: succeeds silently for never-started or finished targets.
        class MyExit(TaskletExit):
            pass
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), dead):
            for exc in (TaskletExit, TaskletExit(), MyExit):
                for pending in (False, True):
                    with self.subTest(t=t, exc=exc, pending=pending):
                        self.assertIsNone(t.throw(exc, pending=pending))
                        self.assertNotAlive(t)
        self.assertEqual(stackless.getruncount(), 1)

    def test_throw_to_dead_tasklet(self):
        # T-8: other exceptions to a tasklet without frames.
        msg = r"^You cannot throw to a dead tasklet$"
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), dead):
            for pending in (False, True):
                with self.subTest(t=t, pending=pending):
                    with self.assertRaisesRegex(RuntimeError, msg):
                        t.throw(ValueError, pending=pending)
                    with self.assertRaisesRegex(RuntimeError, msg):
                        t.throw(SystemExit)
                    self.assertNotAlive(t)

    def test_uncaught_in_target(self):
        # T-8, S-11: an exception that ends the target is raised in main,
        # from the throw() call.
        log = []

        def f():
            try:
                stackless.schedule_remove()
            finally:
                log.append("finally")
        t = self.suspended(f)
        with self.assertRaisesRegex(ValueError, "^escaped$"):
            t.throw(ValueError("escaped"))
        self.assertEqual(log, ["finally"])
        self.assertNotAlive(t)

    def test_throw_to_unstarted(self):
        # T-8, M-13: the bomb explodes before the function's code runs.
        log = []
        t = self.new(log.append, ("body",))
        with self.assertRaises(KeyError):
            t.throw(KeyError)
        self.assertEqual(log, [])
        self.assertNotAlive(t)

    def test_throw_to_scheduled(self):
        # T-8, T-30: a scheduled target becomes current now; the others
        # keep their places.
        log = []

        def f(name):
            try:
                log.append(name)
                stackless.schedule()
                log.append(name + " resumed")
            except ZeroDivisionError:
                log.append(name + " caught")
        a = self.new(f)("a")
        b = self.new(f)("b")
        stackless.schedule()
        self.assertEqual(log, ["a", "b"])
        b.throw(ZeroDivisionError)
        self.assertEqual(log, ["a", "b", "b caught"])
        self.assertNotAlive(b)
        self.assertRunnable(a)
        stackless.run()
        self.assertEqual(log, ["a", "b", "b caught", "a resumed"])

    def test_throw_to_blocked(self):
        # T-8: the target leaves its channel and runs now.
        ch = channel()
        log = []
        t = self.blocked_receiver(ch, log)
        self.assertEqual(ch.balance, -1)
        self.assertIs(t._channel, ch)
        with self.assertRaisesRegex(OSError, "^blocked$"):
            t.throw(OSError, "blocked")     # the target re-raises it
        self.assertEqual(log, [("raised", OSError, ("blocked",))])
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(ch.queue)
        self.assertFalse(t.blocked)

    def test_throw_pending_to_paused(self):
        # T-8, T-30: PAUSED --throw(pending=True)--> SCHEDULED
        log = []
        t = self.catcher(log)
        self.assertIsNone(t.throw(ValueError, "later", pending=True))
        self.assertRunnable(t)
        self.assertEqual(stackless.getruncount(), 2)
        self.assertEqual(log, [])
        self.assertIsInstance(t.tempval, bomb)
        stackless.run()
        self.assertEqual(log, [(ValueError, ("later",), False)])
        self.assertNotAlive(t)

    def test_throw_pending_to_blocked(self):
        # T-8, T-30: BLOCKED --throw(pending=True)--> SCHEDULED
        ch = channel()
        log = []
        t = self.blocked_receiver(ch, log)
        t.throw(OSError, pending=True)
        self.assertRunnable(t)
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(t._channel)
        self.assertEqual(log, [])
        with self.assertRaises(OSError):
            stackless.run()
        self.assertEqual(log, [("raised", OSError, ())])

    def test_throw_pending_to_scheduled(self):
        log = []

        def f():
            try:
                stackless.schedule()
            except KeyError:
                log.append("caught")
        t = self.new(f)()
        t.run()
        t.throw(KeyError, pending=True)
        self.assertEqual(stackless.getruncount(), 2)
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, ["caught"])

    def test_throw_from_tasklet(self):
        # T-30: CURRENT --other.throw()--> SCHEDULED
        log = []
        victim = self.catcher(log)
        seen = []

        def thrower():
            victim.throw(ValueError)
            seen.append("thrower resumed")
        t = self.new(thrower, ())
        t.run()
        self.assertEqual(log, [(ValueError, (), True)])
        self.assertEqual(seen, ["thrower resumed"])


class RaiseExceptionTest(StacklessTestCase):
    """T-9: raise_exception(exc_class, *args) -> None."""

    def catcher(self, log):
        def f():
            try:
                stackless.schedule_remove()
            except BaseException as e:
                log.append((type(e), e.args))
        return self.suspended(f)

    def test_raise_exception(self):
        log = []
        t = self.catcher(log)
        self.assertIsNone(t.raise_exception(ValueError, 1, 2))
        self.assertEqual(log, [(ValueError, (1, 2))])
        self.assertNotAlive(t)

    def test_no_args(self):
        log = []
        t = self.catcher(log)
        t.raise_exception(KeyError)
        self.assertEqual(log, [(KeyError, ())])

    def test_instantiated_in_target(self):
        made = []

        class MyError(Exception):
            def __init__(self, *args):
                made.append(stackless.getcurrent())
                super().__init__(*args)
        log = []
        t = self.catcher(log)
        t.raise_exception(MyError, "x")
        self.assertEqual(log, [(MyError, ("x",))])
        # "instantiated in the target": at least not before the switch.
        self.assertEqual(len(made), 1)

    def test_base_exception_subclasses(self):
        log = []
        t = self.catcher(log)
        t.raise_exception(KeyboardInterrupt)
        self.assertEqual(log, [(KeyboardInterrupt, ())])

    def test_bad_class(self):
        t = self.suspended()
        for bad in (int, object, 42, "ValueError", ValueError("x")):
            with self.subTest(exc_class=bad):
                with self.assertRaises(TypeError):
                    t.raise_exception(bad)
                self.assertPaused(t)

    def test_missing_class(self):
        t = self.suspended()
        with self.assertRaisesRegex(TypeError, r"at least 1 argument"):
            t.raise_exception()
        self.assertPaused(t)

    def test_dead_target(self):
        msg = r"^You cannot throw to a dead tasklet$"
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), dead):
            with self.subTest(t=t):
                with self.assertRaisesRegex(RuntimeError, msg):
                    t.raise_exception(ValueError, "x")
                self.assertIsNone(t.raise_exception(TaskletExit))
                self.assertNotAlive(t)

    def test_raise_in_current(self):
        with self.assertRaisesRegex(OSError, "mine"):
            stackless.getcurrent().raise_exception(OSError, "mine")

    def test_blocked_target(self):
        ch = channel()
        log = []
        t = self.blocked_receiver(ch, log)
        with self.assertRaises(IndexError):
            t.raise_exception(IndexError, 7)
        self.assertEqual(log, [("raised", IndexError, (7,))])
        self.assertEqual(ch.balance, 0)


class KillTest(StacklessTestCase):
    """T-10: kill(pending=False) -> None."""

    def victim(self, log, func=None):
        def f():
            try:
                stackless.schedule_remove()
                log.append("resumed")
            except TaskletExit as e:
                log.append(("exit", type(e)))
                raise
            finally:
                log.append("finally")
        return self.suspended(func or f)

    def test_kill_paused(self):
        log = []
        t = self.victim(log)
        self.assertIsNone(t.kill())
        self.assertEqual(log, [("exit", TaskletExit), "finally"])
        self.assertNotAlive(t)
        self.assertIsNone(t.tempval)

    def test_kill_scheduled(self):
        log = []

        def f():
            try:
                stackless.schedule()
                log.append("resumed")
            finally:
                log.append("finally")
        t = self.new(f)()
        t.run()
        self.assertRunnable(t)
        t.kill()
        self.assertEqual(log, ["finally"])
        self.assertNotAlive(t)
        self.assertEqual(stackless.getruncount(), 1)

    def test_kill_unstarted(self):
        # A bound, never started tasklet ends without running its code.
        log = []
        for t in (self.new(log.append, ("paused",)),
                  self.new(log.append)("scheduled")):
            with self.subTest(t=t):
                self.assertIsNone(t.kill())
                self.assertNotAlive(t)
        self.assertEqual(log, [])
        self.assertEqual(stackless.getruncount(), 1)

    def test_kill_without_frames_is_noop(self):
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), dead):
            for pending in (False, True):
                with self.subTest(t=t, pending=pending):
                    self.assertIsNone(t.kill(pending=pending))
                    self.assertNotAlive(t)
        self.assertEqual(stackless.getruncount(), 1)

    def test_kill_pending(self):
        # T-30: PAUSED --kill(pending=True)--> SCHEDULED
        log = []
        t = self.victim(log)
        self.assertIsNone(t.kill(pending=True))
        self.assertRunnable(t)
        self.assertTrue(t.alive)
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, [("exit", TaskletExit), "finally"])
        self.assertNotAlive(t)

    def test_kill_pending_positional(self):
        log = []
        t = self.victim(log)
        t.kill(True)
        self.assertRunnable(t)
        stackless.run()
        self.assertNotAlive(t)

    def test_kill_blocked(self):
        # T-10: the victim leaves the channel and gets TaskletExit in
        # receive().
        ch = channel()
        log = []
        t = self.blocked_receiver(ch, log)
        t.kill()
        self.assertEqual(log, [("raised", TaskletExit, ())])
        self.assertEqual(ch.balance, 0)
        self.assertNotAlive(t)

    def test_kill_blocked_sender(self):
        ch = channel()
        log = []

        def sender():
            try:
                ch.send("value")
            except TaskletExit:
                log.append("exit")
                raise
        t = self.new(sender)()
        t.run()
        self.assertBlocked(t)
        self.assertEqual(ch.balance, 1)
        t.kill()
        self.assertEqual(log, ["exit"])
        self.assertEqual(ch.balance, 0)

    def test_kill_blocked_pending(self):
        # T-30: BLOCKED --kill(pending=True)--> SCHEDULED
        ch = channel()
        log = []
        t = self.blocked_receiver(ch, log)
        t.kill(pending=True)
        self.assertRunnable(t)
        self.assertEqual(ch.balance, 0)
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, [("raised", TaskletExit, ())])
        self.assertNotAlive(t)

    def test_victim_catches_taskletexit(self):
        # T-10: inside the victim TaskletExit is an ordinary exception.
        log = []

        def f():
            try:
                stackless.schedule_remove()
            except TaskletExit:
                log.append("caught")
            stackless.schedule_remove()
            log.append("resumed again")
        t = self.suspended(f)
        t.kill()
        self.assertEqual(log, ["caught"])
        self.assertPaused(t)
        t.run()
        self.assertEqual(log, ["caught", "resumed again"])
        self.assertNotAlive(t)

    def test_kill_main_propagates(self):
        # T-10, S-11: TaskletExit in a main tasklet is not swallowed.
        with self.assertRaises(TaskletExit):
            stackless.getcurrent().kill()
        with self.assertRaises(TaskletExit):
            stackless.getmain().kill(pending=True)
        self.assertTrue(stackless.getcurrent().alive)

    def test_kill_self(self):
        # Killing the current (non-main) tasklet ends it silently.
        log = []

        def f():
            try:
                stackless.getcurrent().kill()
            finally:
                log.append("finally")
            log.append("not reached")
        t = self.new(f)()
        stackless.run()
        self.assertEqual(log, ["finally"])
        self.assertNotAlive(t)

    def test_kill_from_tasklet(self):
        log = []
        v = self.victim(log)

        def killer():
            v.kill()
            log.append("killer resumed")
        self.new(killer)()
        stackless.run()
        self.assertEqual(log, [("exit", TaskletExit), "finally",
                               "killer resumed"])

    def test_kill_taskletexit_subclass(self):
        class MyExit(TaskletExit):
            pass
        log = []
        t = self.victim(log)
        t.throw(MyExit)
        self.assertEqual(log, [("exit", MyExit), "finally"])
        self.assertNotAlive(t)

    def test_kill_replaced_by_other_exception(self):
        # T-10, S-11: an exception raised while handling TaskletExit ends
        # the victim and is raised in main, from kill().
        def f():
            try:
                stackless.schedule_remove()
            except TaskletExit:
                raise LookupError("instead")
        t = self.suspended(f)
        with self.assertRaisesRegex(LookupError, "instead"):
            t.kill()
        self.assertNotAlive(t)

    def test_kill_too_many_arguments(self):
        t = self.suspended()
        with self.assertRaisesRegex(TypeError,
                                    r"(takes|expected) at most 1 argument"):
            t.kill(False, 1)


class AtomicTest(StacklessTestCase):
    """T-11: set_atomic(flag) -> old bool; attribute atomic."""

    def test_set_atomic(self):
        t = tasklet()
        self.assertIs(t.atomic, False)
        self.assertIs(t.set_atomic(True), False)
        self.assertIs(t.atomic, True)
        self.assertIs(t.set_atomic(0), True)
        self.assertIs(t.atomic, False)
        self.assertIs(t.set_atomic(5), False)
        self.assertIs(t.atomic, True)
        self.assertIs(t.set_atomic(False), True)

    def test_bad_flag(self):
        t = tasklet()
        for bad in ("yes", None, 1.0, []):
            with self.subTest(flag=bad):
                with self.assertRaises(TypeError):
                    t.set_atomic(bad)
                self.assertFalse(t.atomic)
        with self.assertRaises(TypeError):
            t.set_atomic()

    def test_read_only(self):
        with self.assertRaises(AttributeError):
            tasklet().atomic = True

    def test_current(self):
        cur = stackless.getcurrent()
        try:
            self.assertIs(cur.set_atomic(True), False)
            self.assertTrue(cur.atomic)
        finally:
            cur.set_atomic(False)

    def test_saved_per_tasklet(self):
        # T-11: each tasklet has its own flag; explicit switches work.
        seen = []
        main = stackless.getcurrent()

        def f():
            stackless.getcurrent().set_atomic(True)
            seen.append(main.atomic)
            stackless.schedule()
            seen.append(stackless.getcurrent().atomic)
        t = self.new(f)()
        t.run()
        self.assertTrue(t.atomic)
        self.assertFalse(main.atomic)
        stackless.run()
        self.assertEqual(seen, [False, True])

    def test_atomic_prevents_preemption(self):
        # T-11, S-5: an atomic tasklet is not preempted.
        log = []

        def f():
            stackless.getcurrent().set_atomic(True)
            for i in range(20000):
                pass
            log.append("done")
        self.new(f)()
        self.assertIsNone(stackless.run(100))
        self.assertEqual(log, ["done"])

    def test_preemption_when_atomic_cleared(self):
        # T-11: deferred preemption fires once atomic is cleared.
        log = []

        def f():
            cur = stackless.getcurrent()
            cur.set_atomic(True)
            for i in range(20000):
                pass
            log.append("atomic part done")
            cur.set_atomic(False)
            for i in range(10 ** 7):
                pass
            log.append("done")
        t = self.new(f)()
        interrupted = stackless.run(100)
        self.assertIs(interrupted, t)
        self.assertEqual(log, ["atomic part done"])
        self.assertPaused(t)
        self.assertIs(t.frame.f_code, f.__code__)


class IgnoreNestingTest(StacklessTestCase):
    """T-12: set_ignore_nesting(flag) -> old bool; ignore_nesting."""

    def test_set_ignore_nesting(self):
        t = tasklet()
        self.assertIs(t.ignore_nesting, False)
        self.assertIs(t.set_ignore_nesting(1), False)
        self.assertIs(t.ignore_nesting, True)
        self.assertIs(t.set_ignore_nesting(False), True)
        self.assertIs(t.ignore_nesting, False)

    def test_read_only(self):
        with self.assertRaises(AttributeError):
            tasklet().ignore_nesting = True

    def test_per_tasklet(self):
        t = tasklet()
        t.set_ignore_nesting(True)
        self.assertFalse(stackless.getcurrent().ignore_nesting)
        self.assertFalse(tasklet().ignore_nesting)


class BlockTrapTest(StacklessTestCase):
    """T-13: block_trap."""

    def test_attribute(self):
        t = tasklet()
        self.assertIs(t.block_trap, False)
        t.block_trap = True
        self.assertIs(t.block_trap, True)
        t.block_trap = 0
        self.assertIs(t.block_trap, False)
        t.block_trap = 7
        self.assertIs(t.block_trap, True)

    def test_bad_value(self):
        t = tasklet()
        for bad in ("yes", None, 1.0):
            with self.subTest(value=bad):
                with self.assertRaisesRegex(TypeError,
                                            r"^block_trap must be set to a "
                                            r"bool or integer$"):
                    t.block_trap = bad
        self.assertFalse(t.block_trap)

    def test_blocking_receive_raises(self):
        ch = channel()
        log = []

        def f():
            stackless.getcurrent().block_trap = True
            try:
                ch.receive()
            except RuntimeError as e:
                log.append(str(e))
        t = self.new(f)()
        stackless.run()
        self.assertEqual(log, ["this tasklet does not like to be blocked."])
        self.assertEqual(ch.balance, 0)
        self.assertNotAlive(t)

    def test_main_blocking_send_raises(self):
        ch = channel()
        main = stackless.getcurrent()
        self.new(nop)()     # something that could run
        main.block_trap = True
        try:
            with self.assertRaisesRegex(RuntimeError,
                                        r"^this tasklet does not like to be "
                                        r"blocked\.$"):
                ch.send(1)
        finally:
            main.block_trap = False
        self.assertEqual(ch.balance, 0)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()

    def test_non_blocking_operation_works(self):
        ch = channel()

        def sender():
            ch.send("v")
        self.new(sender)().run()
        self.assertEqual(ch.balance, 1)
        main = stackless.getcurrent()
        main.block_trap = True
        try:
            self.assertEqual(ch.receive(), "v")
        finally:
            main.block_trap = False
        stackless.run()

    def test_schedule_remove_ignores_block_trap(self):
        # T-13, S-3: schedule_remove bypasses block_trap.
        log = []

        def f():
            stackless.getcurrent().block_trap = True
            stackless.schedule_remove()
            log.append("resumed")
        t = self.new(f)()
        stackless.run()
        self.assertPaused(t)
        self.assertTrue(t.block_trap)
        t.run()
        self.assertEqual(log, ["resumed"])


class BindThreadTest(StacklessTestCase):
    """T-14: bind_thread(thread_id=-1), single-thread cases only."""

    def test_same_thread(self):
        t = self.new(nop, ())
        self.assertIsNone(t.bind_thread())
        self.assertIsNone(t.bind_thread(-1))
        self.assertIsNone(t.bind_thread(threading.get_ident()))
        self.assertEqual(t.thread_id, threading.get_ident())
        self.assertPaused(t)
        t.run()
        self.assertNotAlive(t)

    def test_fresh_and_blocked(self):
        # T-14: fine for fresh and blocked tasklets (blocked stay blocked).
        tasklet().bind_thread(threading.get_ident())
        tasklet(nop).bind_thread(threading.get_ident())
        ch = channel()
        t = self.blocked_receiver(ch)
        self.assertIsNone(t.bind_thread(threading.get_ident()))
        self.assertBlocked(t)
        self.assertIs(ch.queue, t)

    def test_runnable_omitted(self):
        # T-14: no-op if omitted and already ours.
        t = self.new(nop)()
        self.assertIsNone(t.bind_thread())
        self.assertRunnable(t)

    def test_runnable(self):
        t = self.new(nop)()
        with self.assertRaisesRegex(RuntimeError,
                                    r"^can't \(re\)bind a runnable "
                                    r"tasklet$"):
            t.bind_thread(threading.get_ident())
        self.assertRunnable(t)

    def test_bad_thread(self):
        bad = 1
        while bad in stackless.getthreads():
            bad += 1
        with self.assertRaisesRegex(ValueError, r"^bad thread$"):
            tasklet(nop, ()).bind_thread(bad)


class ReleaseTest(StacklessTestCase):
    """T-15: what happens to a tasklet that is released."""

    def test_unstarted_never_runs(self):
        log = []
        t = tasklet(log.append, ("ran",))
        ref = weakref.ref(t)
        del t
        gc.collect()
        self.assertIsNone(ref())
        self.assertEqual(log, [])

    def test_suspended_tasklet_does_not_resume(self):
        # T-15: with C state it is killed (its handlers run, with
        # TaskletExit, during the collection); without, it is released
        # silently.  Either way it is gone and its code never goes on.
        log = []

        def f():
            try:
                stackless.schedule_remove()
                log.append("resumed")
            except BaseException as e:
                log.append(type(e))
                raise
        t = tasklet(f, ())
        t.run()
        self.assertTrue(t.paused)
        ref = weakref.ref(t)
        del t
        try:
            gc.collect()
            self.assertIsNone(ref())
            self.assertEqual(stackless.getruncount(), 1)
            self.assertIn(log, ([], [TaskletExit]))
        finally:
            flush_runqueue()
            gc.collect()


    def test_finalizer_kill_in_schedule_remove(self):
        # Issue 18: the caller's old tempval is the last reference to a
        # suspended tasklet, whose finalizer kills it (and runs the
        # scheduler): schedule_remove() drops it before it chooses the
        # tasklet to switch to, which has not ended meanwhile.
        out = []

        def victim():
            try:
                stackless.schedule_remove(None)
            finally:
                out.append("victim finally")

        def other():
            out.append("other runs")

        v = tasklet(victim)()
        v.run()
        stackless.getcurrent().tempval = v
        del v
        tasklet(other)()
        stackless.schedule_remove(None)
        self.assertEqual(out, ["victim finally", "other runs"])
        self.assertIsNone(stackless.getcurrent().tempval)

    def test_finalizer_kill_in_channel_action(self):
        # Issue 18: the same for a channel operation that blocks.
        out = []
        ch = channel()

        def victim():
            try:
                stackless.schedule_remove(None)
            finally:
                out.append("victim finally")

        def sender():
            ch.send("value")

        v = tasklet(victim)()
        v.run()
        stackless.getcurrent().tempval = v
        del v
        tasklet(sender)()
        out.append(ch.receive())
        self.assertEqual(out, ["victim finally", "value"])
        self.assertEqual(ch.balance, 0)

    def test_finalizer_kill_keeps_sent_value(self):
        # Issue 18: the last reference to a suspended tasklet goes when a
        # switch from it is made; its finalizer kills it in the tasklet
        # that resumes, whose value received must not go to that kill.
        ch = channel()
        ch.preference = 1                    # the sender goes on
        out = []

        def receiver():
            out.append(("received", ch.receive()))

        def parker():
            try:
                stackless.schedule_remove(None)
            finally:
                out.append("parker finally")

        tasklet(receiver)()
        stackless.run()                      # the receiver blocks
        tasklet(parker)()
        ch.send(42)                          # main, parker, receiver
        stackless.run()
        self.assertEqual(out, ["parker finally", ("received", 42)])

    # Issue 18: a value whose finalizer switches (kills a tasklet) is
    # dropped by the end of a tasklet or by throw(): not between the
    # choice of the next tasklet and the switch to it, nor in a tasklet
    # that has ended.

    def victim_and_killer(self, out, kill=None):
        """A suspended tasklet, and a class whose finalizer kills it (or
        the tasklet `kill` returns)."""
        def victim():
            try:
                stackless.schedule_remove(None)
            finally:
                out.append("victim finally")

        v = tasklet(victim)()
        v.run()

        class Killer:
            def __del__(self):
                out.append("del")
                (v if kill is None else kill()).kill()
                out.append("del done")

        self.addCleanup(v.kill)
        return v, Killer

    def test_finalizer_kill_in_ending_context(self):
        # The context of a tasklet that ends holds the last reference.
        var = contextvars.ContextVar("var")
        out = []
        v, Killer = self.victim_and_killer(out)

        def ender():
            var.set(Killer())

        tasklet(ender)()
        tasklet(out.append)("other")
        stackless.run()
        self.assertEqual(out, ["del", "victim finally", "del done", "other"])
        self.assertFalse(v.alive)

    def test_finalizer_schedules_in_ending_context(self):
        var = contextvars.ContextVar("var")
        out = []

        class Scheduler:
            def __del__(self):
                out.append("del")
                stackless.schedule()
                out.append("del done")

        def ender():
            var.set(Scheduler())

        tasklet(ender)()
        tasklet(out.append)("other")
        stackless.run()
        self.assertEqual(sorted(out), ["del", "del done", "other"])
        self.assertEqual(stackless.getruncount(), 1)

    def test_finalizer_kill_in_ending_tempval(self):
        # The tempval of a tasklet that ends holds the last reference.
        out = []
        v, Killer = self.victim_and_killer(out)

        def ender():
            stackless.current.tempval = Killer()

        tasklet(ender)()
        tasklet(out.append)("other")
        stackless.run()
        self.assertEqual(out, ["del", "victim finally", "del done", "other"])
        self.assertFalse(v.alive)

    def test_finalizer_kill_in_ending_bomb(self):
        # A tasklet ends with an exception, which goes to main (the
        # watchdog), chosen to run next: its tempval, a value sent to it
        # and not received yet, holds the last reference.
        ch = channel()
        ch.preference = 1                    # the sender goes on
        out = []
        v, Killer = self.victim_and_killer(out)

        def sender():
            ch.send(Killer())
            raise ValueError("ends")

        tasklet(sender)()
        with self.assertRaisesRegex(ValueError, "ends"):
            ch.receive()
        self.assertEqual(out, ["del", "victim finally", "del done"])
        self.assertFalse(v.alive)

    def test_finalizer_kill_in_throw(self):
        # throw() replaces the tempval of its target, a value sent to it
        # and not received yet; its finalizer kills the target: the throw
        # finds it dead.
        ch = channel()
        ch.preference = 1                    # the sender goes on
        out = []

        def receiver():
            try:
                ch.receive()
                out.append("received")
            finally:
                out.append("receiver finally")

        r = tasklet(receiver)()
        r.run()                              # blocks receiving
        _, Killer = self.victim_and_killer(out, kill=lambda: r)
        ch.send(Killer())
        with self.assertRaisesRegex(RuntimeError, "dead tasklet"):
            r.throw(ValueError)
        self.assertEqual(out, ["del", "receiver finally", "del done"])
        self.assertFalse(r.alive)
        self.assertEqual(stackless.getruncount(), 1)


class TempvalTest(StacklessTestCase):
    """T-16: tempval."""

    def test_values_by_state(self):
        t = tasklet()
        self.assertIsNone(t.tempval)
        t.bind(nop)
        self.assertIs(t.tempval, nop)
        t.bind(nop, ())
        self.assertIsNone(t.tempval)
        t.run()
        self.assertIsNone(t.tempval)

    def test_any_object(self):
        t = tasklet()
        for value in (1, "x", None, [1], t):
            t.tempval = value
            self.assertIs(t.tempval, value)
        t.tempval = None

    def test_return_value_discarded(self):
        t = self.new(lambda: 42)()
        stackless.run()
        self.assertIsNone(t.tempval)

    def test_schedule_retval(self):
        # T-16, S-2: schedule(retval) stores retval while the tasklet waits
        # and returns it; taken on resumption.
        log = []

        def f():
            log.append(stackless.schedule(42))
            log.append(stackless.getcurrent().tempval)
        t = self.new(f)()
        t.run()
        self.assertEqual(t.tempval, 42)
        stackless.run()
        self.assertEqual(log, [42, None])

    def test_schedule_default_retval(self):
        # S-2, S-3: the default retval is the current tasklet.
        log = []

        def f():
            log.append(stackless.schedule())
            log.append(stackless.schedule_remove())
        t = self.new(f)()
        t.run()
        self.assertIs(t.tempval, t)
        stackless.run()
        self.assertIs(t.tempval, t)
        t.run()
        self.assertEqual(log, [t, t])

    def test_schedule_value_changed_meanwhile(self):
        # S-2: returns the tempval, which others may change.
        log = []

        def f():
            log.append(stackless.schedule("mine"))
        t = self.new(f)()
        t.run()
        t.tempval = "changed"
        stackless.run()
        self.assertEqual(log, ["changed"])

    def test_schedule_remove_custom_primitive(self):
        # S-3: someone sets tempval and inserts; schedule_remove returns it.
        log = []

        def f():
            log.append(stackless.schedule_remove(None))
        t = self.new(f)()
        stackless.run()
        self.assertPaused(t)
        self.assertIsNone(t.tempval)
        t.tempval = "woken"
        t.insert()
        stackless.run()
        self.assertEqual(log, ["woken"])
        self.assertIsNone(t.tempval)

    def test_schedule_alone(self):
        # S-2: alone in the runqueue, schedule() returns at once.
        self.assertEqual(stackless.schedule("x"), "x")
        self.assertIs(stackless.schedule(), stackless.getcurrent())
        self.assertIsNone(stackless.getcurrent().tempval)

    def test_blocked_sender_value(self):
        ch = channel()

        def sender():
            ch.send("payload")
        t = self.new(sender)()
        t.run()
        self.assertBlocked(t)
        self.assertEqual(t.tempval, "payload")
        self.assertEqual(ch.receive(), "payload")
        stackless.run()
        self.assertIsNone(t.tempval)

    def test_bomb_by_hand(self):
        # T-16, M-13: a bomb placed in tempval explodes on resumption.
        log = []

        def f():
            try:
                stackless.schedule_remove()
            except ValueError as e:
                log.append(e.args)
        t = self.suspended(f)
        t.tempval = bomb(ValueError, ValueError("boom"), None)
        self.assertIsInstance(t.tempval, bomb)
        t.run()
        self.assertEqual(log, [("boom",)])
        self.assertIsNone(t.tempval)

    def test_bomb_by_hand_unstarted(self):
        log = []
        t = self.new(log.append, ("body",))
        t.tempval = bomb(KeyError, KeyError("k"))
        with self.assertRaises(KeyError):
            t.run()
        self.assertEqual(log, [])
        self.assertNotAlive(t)


class AttributeTest(StacklessTestCase):
    """T-17 .. T-28: the read-only attributes."""

    READ_ONLY = ("alive", "paused", "blocked", "scheduled", "restorable",
                 "is_main", "is_current", "thread_id", "frame", "next",
                 "prev", "recursion_depth", "nesting_level", "_channel")

    def test_read_only(self):
        t = tasklet(nop, ())
        for name in self.READ_ONLY:
            with self.subTest(name=name):
                with self.assertRaises(AttributeError):
                    setattr(t, name, getattr(t, name))

    def test_types(self):
        t = tasklet()
        for name in ("alive", "paused", "blocked", "scheduled", "restorable",
                     "is_main", "is_current"):
            with self.subTest(name=name):
                self.assertIs(type(getattr(t, name)), bool)
        for name in ("thread_id", "recursion_depth", "nesting_level"):
            with self.subTest(name=name):
                self.assertIs(type(getattr(t, name)), int)

    def test_main_tasklet(self):
        # T-17 .. T-25 for the main tasklet, while it runs.
        main = stackless.getcurrent()
        self.assertIs(main, stackless.getmain())
        self.assertTrue(main.alive)
        self.assertFalse(main.paused)
        self.assertFalse(main.blocked)
        self.assertTrue(main.scheduled)
        self.assertTrue(main.is_main)
        self.assertTrue(main.is_current)
        self.assertEqual(main.thread_id, threading.get_ident())
        self.assertIs(main.frame, sys._getframe())
        self.assertIs(main.next, main)
        self.assertIs(main.prev, main)
        self.assertGreaterEqual(main.nesting_level, 0)
        self.assertIsNone(main._channel)

    def test_inside_tasklet(self):
        seen = {}
        main = stackless.getcurrent()

        def f():
            cur = stackless.getcurrent()
            seen.update(
                is_current=cur.is_current, is_main=cur.is_main,
                alive=cur.alive, scheduled=cur.scheduled, paused=cur.paused,
                frame_ok=cur.frame is sys._getframe(),
                main_is_current=main.is_current, main_is_main=main.is_main,
                main_scheduled=main.scheduled, thread_id=cur.thread_id,
                main_frame=main.frame.f_code)
        self.new(f)()
        stackless.run()
        self.assertEqual(seen, dict(
            is_current=True, is_main=False, alive=True, scheduled=True,
            paused=False, frame_ok=True, main_is_current=False,
            main_is_main=True, main_scheduled=False,
            thread_id=threading.get_ident(),
            main_frame=self.test_inside_tasklet.__code__))

    def test_frame_of_suspended_tasklet(self):
        # T-24: the innermost Python frame.
        def inner():
            stackless.schedule_remove()

        def outer():
            inner()
        t = self.suspended(outer)
        self.assertIs(t.frame.f_code, inner.__code__)
        self.assertIs(t.frame.f_back.f_code, outer.__code__)
        self.assertEqual(t.frame.f_locals, {})

    def test_frame_not_alive(self):
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), dead):
            with self.subTest(t=t):
                self.assertIsNone(t.frame)

    def test_blocked_and_channel(self):
        # T-19, T-20, T-28.
        ch = channel()
        t = self.blocked_receiver(ch)
        self.assertIs(t.blocked, True)
        self.assertTrue(t.scheduled)
        self.assertFalse(t.paused)
        self.assertTrue(t.alive)
        self.assertIs(t._channel, ch)
        ch.send(None)
        self.assertIs(t.blocked, False)
        self.assertIsNone(t._channel)

    def test_next_prev_in_channel(self):
        # T-25: channel queue ends give None.
        ch = channel()
        a = self.blocked_receiver(ch)
        b = self.blocked_receiver(ch)
        self.assertIs(ch.queue, a)
        self.assertIs(a.next, b)
        self.assertIsNone(a.prev)
        self.assertIsNone(b.next)
        self.assertIs(b.prev, a)

    def test_next_prev_unlinked(self):
        t = self.new(nop)()
        self.assertIsNotNone(t.next)
        t.remove()
        self.assertIsNone(t.next)
        self.assertIsNone(t.prev)

    def test_next_prev_circular(self):
        # T-25: the runqueue is circular; a lone tasklet is its own next.
        main = stackless.getcurrent()
        seen = []

        def f():
            cur = stackless.getcurrent()
            seen.append((cur.next is cur, cur.prev is cur))
        t = self.new(f, ())
        t.switch()
        self.assertEqual(seen, [(True, True)])
        a = self.new(nop)()
        self.assertIs(main.next, a)
        self.assertIs(a.next, main)
        self.assertIs(a.prev, main)
        self.assertIs(main.prev, a)

    def test_restorable_not_alive(self):
        # T-21: True for unborn and dead tasklets.
        dead = self.new(nop)()
        stackless.run()
        for t in (tasklet(), tasklet(nop), tasklet(nop, ()), dead):
            with self.subTest(t=t):
                self.assertIs(t.restorable, True)
                self.assertEqual(t.nesting_level, 0)

    def test_recursion_depth(self):
        # T-26: per tasklet, starting at 0; independent of the caller.
        depths = []

        def inner():
            depths.append(stackless.getcurrent().recursion_depth)

        def f():
            depths.append(stackless.getcurrent().recursion_depth)
            inner()

        def deep(n):
            if n:
                return deep(n - 1)
            self.new(f, ()).run()
        self.assertEqual(tasklet(nop, ()).recursion_depth, 0)
        deep(0)
        deep(50)
        self.assertEqual(depths[:2], depths[2:])
        self.assertIn(depths[0], (0, 1))
        self.assertEqual(depths[1], depths[0] + 1)

    def test_recursion_depth_of_suspended_tasklet(self):
        depth = []

        def inner():
            depth.append(stackless.getcurrent().recursion_depth)
            stackless.schedule_remove()

        def f():
            inner()
        t = self.suspended(f)
        self.assertEqual(t.recursion_depth, depth[0])

    def test_thread_id(self):
        t = self.new(nop, ())
        self.assertEqual(t.thread_id, threading.get_ident())
        t.run()
        self.assertEqual(t.thread_id, threading.get_ident())

    def state(self, t):
        """The state of t, after checking that its flags agree."""
        if t.is_current:
            self.assertTrue(t.alive)
            self.assertTrue(t.scheduled)
            self.assertFalse(t.paused)
            self.assertFalse(t.blocked)
            return "CURRENT"
        if t.blocked:
            self.assertBlocked(t)
            return "BLOCKED"
        if t.scheduled:
            self.assertRunnable(t)
            return "SCHEDULED"
        if t.alive:
            self.assertPaused(t)
            return "PAUSED"
        self.assertNotAlive(t)
        return "NOT_ALIVE" if t.tempval is None else "BOUND"

    def state_inside(self, t, action):
        """The state of t as seen by the tasklet that runs after action."""
        seen = []
        t_log = self.new(lambda: seen.append(self.state(t)), ())
        action(t_log)
        return seen

    def test_new(self):
        t = tasklet()
        self.assertEqual(self.state(t), "NOT_ALIVE")
        self.assertIsNone(t.tempval)

    def test_bind_function(self):
        t = tasklet()
        t.bind(nop)
        self.assertEqual(self.state(t), "BOUND")
        self.assertIs(t.tempval, nop)
        t.bind(None)
        self.assertEqual(self.state(t), "NOT_ALIVE")

    def test_setup_and_call(self):
        for start in (lambda t: t.setup(), lambda t: t()):
            t = self.new(nop)
            self.assertEqual(self.state(t), "BOUND")
            start(t)
            self.assertEqual(self.state(t), "SCHEDULED")
        stackless.run()

    def test_bind_with_args(self):
        for t in (tasklet(), tasklet(nop)):
            for args in [((),), ((1,), {}), (None, {"a": 1})]:
                with self.subTest(t=t, args=args):
                    self.assertIn(self.state(t), ("NOT_ALIVE", "BOUND"))
                    t.bind(nop, *args)
                    self.assertEqual(self.state(t), "PAUSED")
                    t.bind(None)

    def test_insert_remove(self):
        t = self.new(nop, ())
        t.insert()
        self.assertEqual(self.state(t), "SCHEDULED")
        t.remove()
        self.assertEqual(self.state(t), "PAUSED")

    def test_pending_kill_and_throw(self):
        ch = channel()
        for op in (lambda t: t.kill(pending=True),
                   lambda t: t.throw(TaskletExit, pending=True)):
            t = self.suspended()
            op(t)
            self.assertEqual(self.state(t), "SCHEDULED")
            t = self.blocked_receiver(ch)
            self.assertEqual(self.state(t), "BLOCKED")
            op(t)
            self.assertEqual(self.state(t), "SCHEDULED")
            stackless.run()

    def test_to_current(self):
        # PAUSED|SCHEDULED --run() / switch() / scheduler--> CURRENT
        seen = []

        def f():
            seen.append(self.state(stackless.getcurrent()))
            stackless.schedule_remove()
            seen.append(self.state(stackless.getcurrent()))
            stackless.schedule_remove()
            seen.append(self.state(stackless.getcurrent()))
            stackless.schedule()
            seen.append(self.state(stackless.getcurrent()))
        t = self.new(f, ())
        t.run()                             # PAUSED -> CURRENT
        self.assertEqual(self.state(t), "PAUSED")
        t.switch()                          # PAUSED -> CURRENT
        self.assertEqual(self.state(t), "PAUSED")
        t.insert()
        stackless.schedule()                # by the scheduler
        self.assertEqual(self.state(t), "SCHEDULED")
        t.run()                             # SCHEDULED -> CURRENT
        self.assertEqual(self.state(t), "NOT_ALIVE")
        self.assertEqual(seen, ["CURRENT"] * 4)

    def test_blocked_cannot_run(self):
        ch = channel()
        t = self.blocked_receiver(ch)
        for op in (t.run, t.insert, t.switch):
            with self.subTest(op=op):
                with self.assertRaisesRegex(RuntimeError,
                                            "You cannot run a blocked "
                                            "tasklet"):
                    op()
                self.assertEqual(self.state(t), "BLOCKED")

    def test_kill_throw_make_current(self):
        # PAUSED|SCHEDULED|BLOCKED --kill() / throw()--> CURRENT
        ch = channel()
        seen = []

        def f():
            try:
                ch.receive()
            except BaseException:
                seen.append(self.state(stackless.getcurrent()))
                try:
                    stackless.schedule_remove()
                except BaseException:
                    seen.append(self.state(stackless.getcurrent()))
                try:
                    stackless.schedule()
                except BaseException:
                    seen.append(self.state(stackless.getcurrent()))
        t = self.new(f)()
        t.run()
        self.assertEqual(self.state(t), "BLOCKED")
        t.throw(KeyError)
        self.assertEqual(self.state(t), "PAUSED")
        t.kill()
        self.assertEqual(self.state(t), "SCHEDULED")
        t.throw(TaskletExit)
        self.assertEqual(self.state(t), "NOT_ALIVE")
        self.assertEqual(seen, ["CURRENT"] * 3)

    def test_current_to_scheduled(self):
        # CURRENT --schedule() / other.run() / other.throw()--> SCHEDULED
        seen = []

        def look():
            seen.append(self.state(t))

        def other_func():
            try:
                stackless.schedule_remove()
            except KeyError:
                look()
        other = self.suspended(other_func)

        def f():
            stackless.schedule()
            self.new(look, ()).run()
            other.throw(KeyError)
        t = self.new(f)()
        t.run()
        self.assertEqual(self.state(t), "SCHEDULED")
        stackless.run()
        self.assertEqual(seen, ["SCHEDULED", "SCHEDULED"])
        self.assertEqual(self.state(other), "NOT_ALIVE")
        self.assertEqual(self.state(t), "NOT_ALIVE")

    def test_current_to_paused(self):
        # CURRENT --schedule_remove() / other.switch() / own run()--> PAUSED
        seen = []

        def look():
            seen.append(self.state(t))

        def f():
            stackless.schedule_remove()
            self.new(look, ()).switch()
            self.new(look)()
            stackless.run()
        t = self.new(f)()
        t.run()
        self.assertEqual(self.state(t), "PAUSED")
        t.run()
        self.assertEqual(seen, ["PAUSED"])
        self.assertEqual(self.state(t), "PAUSED")
        t.switch()      # main is paused, so only look() is runnable
        self.assertEqual(seen, ["PAUSED", "PAUSED"])
        self.assertEqual(self.state(t), "NOT_ALIVE")

    def test_preempted_is_paused(self):
        # CURRENT --preempted--> PAUSED
        def f():
            for i in range(10 ** 7):
                pass
        t = self.new(f)()
        self.assertIs(stackless.run(100), t)
        self.assertEqual(self.state(t), "PAUSED")

    def test_blocking_and_partner(self):
        # CURRENT --channel op--> BLOCKED --partner--> CURRENT/SCHEDULED
        ch = channel()
        seen = []

        def f():
            while True:
                ch.receive()
                seen.append(self.state(stackless.getcurrent()))
        t = self.new(f)()
        t.run()
        self.assertEqual(self.state(t), "BLOCKED")
        ch.preference = -1          # the receiver runs now
        ch.send(1)
        self.assertEqual(seen, ["CURRENT"])
        self.assertEqual(self.state(t), "BLOCKED")
        ch.preference = 1           # the sender continues
        ch.send(2)
        self.assertEqual(self.state(t), "SCHEDULED")
        stackless.run()
        self.assertEqual(seen, ["CURRENT", "CURRENT"])
        self.assertEqual(self.state(t), "BLOCKED")

    def test_function_returns(self):
        t = self.new(lambda: 1)()
        stackless.run()
        self.assertEqual(self.state(t), "NOT_ALIVE")
        self.assertIsNone(t.tempval)

    def test_exception_escapes(self):
        def f():
            raise ZeroDivisionError
        t = self.new(f)()
        with self.assertRaises(ZeroDivisionError):
            stackless.run()
        self.assertEqual(self.state(t), "NOT_ALIVE")
        self.assertIsNone(t.tempval)

    def test_paused_unbind(self):
        t = self.new(nop, ())
        t.bind(None)
        self.assertEqual(self.state(t), "NOT_ALIVE")


class TaskletEndTest(StacklessTestCase):
    """S-9, S-11: what happens when a tasklet ends."""

    def test_next_runs(self):
        log = []
        self.new(log.append)(1)
        self.new(log.append)(2)
        stackless.run()
        self.assertEqual(log, [1, 2])
        self.assertEqual(stackless.getruncount(), 1)

    def test_exception_raised_in_main(self):
        # S-11: raised from main's pending call, others keep their state.
        log = []

        def bad():
            raise KeyError("bad")

        def good():
            log.append("good1")
            stackless.schedule()
            log.append("good2")
        g = self.new(good)()
        self.new(bad)()
        with self.assertRaisesRegex(KeyError, "bad"):
            stackless.run()
        self.assertEqual(log, ["good1"])
        self.assertRunnable(g)

    def test_exception_raised_in_schedule(self):
        def bad():
            raise KeyError("bad")
        self.new(bad)()
        with self.assertRaises(KeyError):
            stackless.schedule()

    def test_exception_raised_from_run_method(self):
        # S-11: raised from main's tasklet.run() call.
        def bad():
            raise KeyError("bad")
        t = self.new(bad, ())
        with self.assertRaisesRegex(KeyError, "bad"):
            t.run()
        self.assertNotAlive(t)

    def test_exception_traceback(self):
        # S-11: the traceback shows where the tasklet failed.
        def bad():
            raise KeyError("bad")
        self.new(bad)()
        try:
            stackless.run()
        except KeyError as e:
            tb = e.__traceback__
        else:
            self.fail("KeyError not raised")
        names = []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        self.assertIn("bad", names)

    def test_exception_wakes_paused_main(self):
        # S-11: main resumes even if it is paused (here: in switch()).
        def bad():
            stackless.schedule()
            raise ValueError("from bad")
        self.new(bad)()
        t = self.new(nop, ())
        with self.assertRaisesRegex(ValueError, "from bad"):
            t.switch()

    @support.requires_subprocess()
    def test_system_exit_exits_process(self):
        # S-11 (2): SystemExit escaping a non-main tasklet in the initial
        # thread exits the process like sys.exit().
        code = textwrap.dedent("""
            import sys, stackless
            def f():
                sys.exit(3)
            stackless.tasklet(f)()
            stackless.run()
            print("not reached")
        """)
        rc, out, err = script_helper.assert_python_failure("-c", code)
        self.assertEqual(rc, 3)
        self.assertNotIn(b"not reached", out)

    def test_exception_wakes_blocked_main(self):
        # S-11: main blocked in a channel is pulled out and raises the
        # exception from receive().
        ch = channel()
        log = []

        def bad():
            raise KeyError("bad")

        def good():
            log.append(1)
            stackless.schedule()
            log.append(2)
        g = self.new(good)()
        self.new(bad)()
        with self.assertRaisesRegex(KeyError, "bad"):
            ch.receive()
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.getcurrent().blocked)
        self.assertEqual(log, [1])
        self.assertRunnable(g)

    def test_taskletexit_ends_silently(self):
        # S-11 (1)
        log = []

        def f():
            log.append(1)
            raise TaskletExit

        class MyExit(TaskletExit):
            pass

        def g():
            raise MyExit("bye")
        self.new(f)()
        self.new(g)()
        stackless.run()
        self.assertEqual(log, [1])

    def test_main_blocked_receiving(self):
        # S-9: main blocked in a channel is pulled out when nothing is left.
        ch = channel()
        self.new(nop)()
        with self.assertRaisesRegex(RuntimeError,
                                    r"^the main tasklet is receiving without "
                                    r"a sender available\.$"):
            ch.receive()
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.getcurrent().blocked)

    def test_main_blocked_sending(self):
        ch = channel()
        self.new(nop)()
        with self.assertRaisesRegex(RuntimeError,
                                    r"^the main tasklet is sending without "
                                    r"a receiver available\.$"):
            ch.send(1)
        self.assertEqual(ch.balance, 0)


class ScheduleTest(StacklessTestCase):
    """S-2: schedule(retval); S-3: schedule_remove(retval); see also
    TempvalTest for their return values."""

    def test_schedule_order(self):
        # S-2: the caller goes to the end of the cycle.
        log = []

        def f(name):
            for i in range(2):
                log.append(name + str(i))
                stackless.schedule()
        self.new(f)("a")
        self.new(f)("b")
        stackless.schedule()
        log.append("main")
        stackless.run()
        self.assertEqual(log, ["a0", "b0", "main", "a1", "b1"])

    def test_schedule_remove_pauses(self):
        # S-3: the caller leaves the runqueue.
        log = []

        def f():
            log.append(stackless.getruncount())
            stackless.schedule_remove()
            log.append("resumed")
        t = self.new(f)()
        t.run()
        self.assertEqual(log, [2])
        self.assertPaused(t)
        self.assertEqual(stackless.getruncount(), 1)
        t.insert()
        stackless.run()
        self.assertEqual(log, [2, "resumed"])

    def test_schedule_remove_wakes_paused_main(self):
        # S-3, S-12 (1): the runqueue empties and the paused main resumes.
        log = []

        def f():
            stackless.schedule_remove()
            log.append("resumed")
        t = self.new(f, ())
        self.assertIsNone(t.switch())
        self.assertPaused(t)
        self.assertEqual(log, [])
        self.assertEqual(stackless.getruncount(), 1)

    def test_schedule_remove_alone_in_main(self):
        # S-3, S-12 (1): main alone removes itself: it is the paused
        # watchdog W, so it resumes at once and schedule_remove() returns.
        try:
            self.assertEqual(stackless.schedule_remove("value"), "value")
        finally:
            main = stackless.getmain()
            if not main.scheduled:
                main.insert()
        self.assertEqual(stackless.getruncount(), 1)

    def test_too_many_arguments(self):
        for func in (stackless.schedule, stackless.schedule_remove):
            with self.subTest(func=func):
                with self.assertRaisesRegex(
                        TypeError, r"(takes|expected) at most 1 argument"):
                    func(None, None)


class ErrorTextTest(StacklessTestCase):
    """The exact error texts of section 2, collected (T-2 .. T-13)."""

    def check(self, msg, func, *args, **kwargs):
        with self.assertRaises(RuntimeError) as cm:
            func(*args, **kwargs)
        self.assertEqual(str(cm.exception), msg)

    def test_texts(self):
        ch = channel()
        blocked = self.blocked_receiver(ch)
        paused = self.new(nop, ())
        dead = self.new(nop)()
        stackless.run()
        cur = stackless.getcurrent()
        self.check("can't (re)bind the current tasklet", cur.bind, nop)
        self.check("tasklet is scheduled", blocked.bind, None)
        self.check("the tasklet was not bound to a function",
                   tasklet().bind, None, ())
        self.check("tasklet is alive", paused.setup)
        self.check("You cannot run a blocked tasklet", blocked.insert)
        self.check("You cannot run an unbound(dead) tasklet", dead.insert)
        self.check("You cannot remove a blocked tasklet.", blocked.remove)
        self.check("The current tasklet cannot be removed.", cur.remove)
        self.check("You cannot throw to a dead tasklet", dead.throw,
                   ValueError)
        with self.assertRaises(TypeError) as cm:
            paused.throw(ValueError(), 1)
        self.assertEqual(str(cm.exception),
                         "instance exception may not have a separate value")
        with self.assertRaises(TypeError) as cm:
            paused.block_trap = "x"
        self.assertEqual(str(cm.exception),
                         "block_trap must be set to a bool or integer")


class ContextTest(helpers.StacklessTestCase):
    """Each tasklet runs in a copy of its binder's contextvars context, as
    an asyncio task does: values are inherited at binding, changes stay
    the tasklet's own."""

    def run_in_context(self, func):
        """func() in a fresh context, as the binder."""
        return contextvars.Context().run(func)

    def test_inherits_values_at_binding(self):
        var = contextvars.ContextVar("var")

        def binder():
            var.set("bound")
            t = self.spawn(lambda: self.log.append(var.get("unset")))
            var.set("later")
            stackless.run()
            return var.get()

        self.assertEqual(self.run_in_context(binder), "later")
        self.assertEqual(self.log, ["bound"])

    def test_changes_stay_in_the_tasklet(self):
        var = contextvars.ContextVar("var")

        def worker(name):
            self.log.append((name, var.get("unset")))
            var.set(name)
            stackless.schedule()
            self.log.append((name, var.get("unset")))

        def binder():
            # An empty context: the tasklets get their own at first use.
            self.spawn(worker, "a")
            self.spawn(worker, "b")
            stackless.run()
            return var.get("unset")

        self.assertEqual(self.run_in_context(binder), "unset")
        self.assertEqual(self.log, [("a", "unset"), ("b", "unset"),
                                    ("a", "a"), ("b", "b")])

    def test_interleaved_reads_see_own_values(self):
        # The ContextVar cache must notice every switch of context.
        var = contextvars.ContextVar("var", default=0)
        ch = channel()

        def worker(n):
            var.set(n)
            for _ in range(3):
                ch.send(var.get())

        def binder():
            self.spawn(worker, 1)
            self.spawn(worker, 2)
            got = [ch.receive() for _ in range(6)]
            return got, var.get()

        got, own = self.run_in_context(binder)
        self.assertEqual(sorted(got), [1, 1, 1, 2, 2, 2])
        self.assertEqual(own, 0)


if __name__ == "__main__":
    unittest.main()
