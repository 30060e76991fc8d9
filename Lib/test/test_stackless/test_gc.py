"""Suspended tasklets and the garbage collector.

The collector sees what a suspended tasklet's frames hold, their value
stacks included, so that cycles through a blocked tasklet are collected;
collecting a tasklet with a C stack kills it, so that its finally clauses
run (issue: "Memory and lifetime"; spec T-15, C-1).
"""

import gc
import operator
import threading
import unittest
import weakref

import stackless
from .helpers import StacklessTestCase
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


class Marker:
    """An object the test can find among a tasklet's referents."""


def combine(*args):
    return args


def referent_markers(t):
    return [o for o in gc.get_referents(t) if isinstance(o, Marker)]


class TraverseTest(StacklessTestCase):
    """The collector sees the locals and value stacks of suspended frames."""

    def blocked(self, func, *args):
        ch = stackless.channel()
        t = self.spawn(func, ch, *args)
        t.run()
        self.assertTrue(t.blocked)
        return t, ch

    def test_locals(self):
        def body(ch):
            m = Marker()
            ch.receive()
            return m
        t, ch = self.blocked(body)
        self.assertEqual(len(referent_markers(t)), 1)

    def test_value_stack_of_a_call(self):
        # The Marker is only on the value stack: an argument of a call
        # that waits for ch.receive(), the next argument.
        def body(ch):
            return combine(Marker(), ch.receive())
        t, ch = self.blocked(body)
        self.assertEqual(len(referent_markers(t)), 1)

    def test_value_stack_in_nested_frames(self):
        def inner(ch):
            return combine(Marker(), ch.receive())

        def outer(ch):
            return combine(Marker(), Marker(), inner(ch))
        t, ch = self.blocked(outer)
        self.assertEqual(len(referent_markers(t)), 3)

    def test_iterator_of_a_for_loop(self):
        def body(ch):
            for m in iter([Marker(), Marker()]):
                ch.receive()
        t, ch = self.blocked(body)
        # The loop variable and the list iterator on the stack.
        self.assertEqual(len(referent_markers(t)), 1)
        self.assertTrue(any(type(o).__name__ == "list_iterator"
                            for o in gc.get_referents(t)))

    def test_with_block_and_handler(self):
        class Manager:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        def body(ch):
            try:
                raise ValueError
            except ValueError:
                with Manager():
                    return combine(Marker(), ch.receive())
        t, ch = self.blocked(body)
        self.assertEqual(len(referent_markers(t)), 1)

    def test_comprehension(self):
        def body(ch):
            return [combine(Marker(), ch.receive()) for i in range(1)]
        t, ch = self.blocked(body)
        self.assertEqual(len(referent_markers(t)), 1)

    def test_collect_with_many_suspended_points(self):
        # A full collection over tasklets suspended everywhere above.
        def body(ch, n):
            values = [Marker() for i in range(n)]
            for v in values:
                combine(v, {v: v}, ch.receive())
        chans = []
        for n in range(1, 6):
            t, ch = self.blocked(body, n)
            chans.append(ch)
        gc.collect()
        for ch in chans:
            while ch.balance < 0:
                ch.send(None)


class CollectTest(StacklessTestCase):
    """Cycles through blocked tasklets are collected; the tasklets are
    killed, so their finally clauses run."""

    def test_blocked_on_a_channel_only_it_knows(self):
        log = []

        def worker():
            ch = stackless.channel()
            try:
                ch.receive()
            finally:
                log.append("finally")
        t = stackless.tasklet(worker)()
        t.run()
        ref = weakref.ref(t)
        del t
        gc.collect()
        self.assertEqual(log, ["finally"])
        gc.collect()
        self.assertIsNone(ref())
        self.assertEqual(stackless.getruncount(), 1)

    def test_cycle_through_objects(self):
        class Node:
            pass

        def worker(node):
            node.ch.receive()
        node = Node()
        node.ch = stackless.channel()
        node.me = node
        t = stackless.tasklet(worker)(node)
        t.run()
        refs = [weakref.ref(t), weakref.ref(node), weakref.ref(node.ch)]
        del t, node
        gc.collect()
        gc.collect()
        self.assertEqual([r() for r in refs], [None, None, None])

    def test_reachable_tasklet_survives(self):
        ch = stackless.channel()
        t = self.spawn(ch.receive)
        t.run()
        gc.collect()
        self.assertTrue(t.blocked)
        self.assertEqual(ch.balance, -1)
        ch.send("done")
        self.assertFalse(t.alive)

    def test_paused_tasklet_dropped_is_killed(self):
        # T-15: released without a collection, it is killed at once.
        log = []

        def worker():
            try:
                stackless.schedule_remove(None)
            finally:
                log.append("finally")
        t = stackless.tasklet(worker)()
        t.run()
        self.assertTrue(t.paused)
        del t
        self.assertEqual(log, ["finally"])

    def test_tasklet_that_will_not_die_goes_to_gc_garbage(self):
        # T-15: killed up to 10 times; if it still owns its C stack, its
        # tempval becomes None and it is appended to gc.garbage.
        state = {"stubborn": True, "kills": 0}

        def stubborn():
            while True:
                try:
                    stackless.schedule_remove("x")
                except TaskletExit:
                    state["kills"] += 1
                    if not state["stubborn"]:
                        raise
        t = stackless.tasklet(stubborn)()
        t.run()
        ident = id(t)
        del t
        try:
            self.assertEqual(state["kills"], 10)
            found = [o for o in gc.garbage if id(o) == ident]
            self.assertEqual(len(found), 1)
            t = found[0]
            self.assertTrue(t.paused)
            self.assertIsNone(t.tempval)
        finally:
            gc.garbage[:] = [o for o in gc.garbage if id(o) != ident]
        state["stubborn"] = False
        t.kill()
        self.assertFalse(t.alive)


class OtherThreadDuringCollectionTest(StacklessTestCase):
    """Only the thread that runs a collection cannot switch tasklets:
    another thread, which a finalizer lets run by releasing the GIL,
    switches its tasklets, and ends with its tasklets killed and their
    finally clauses run."""

    def test_other_thread_switches_and_ends_while_collecting(self):
        in_collection = threading.Event()
        log = []
        errors = []

        def thread_main():
            in_collection.wait(30)
            try:
                ch = stackless.channel()

                def receiver():
                    log.append(("received", ch.receive()))

                def waiter():
                    try:
                        stackless.channel().receive()
                    finally:
                        log.append("finally")

                stackless.tasklet(receiver)()
                stackless.tasklet(waiter)()
                stackless.run()
                ch.send(1)
                log.append(("scheduled", stackless.schedule(2)))
            except BaseException as exc:
                errors.append(exc)
            # The thread ends with waiter blocked: it is killed.

        thread = threading.Thread(target=thread_main)

        class Finalized:
            def __del__(self):
                log.append("__del__")
                in_collection.set()
                # Releases the GIL until the thread has ended.
                thread.join(30)

        thread.start()
        try:
            a = Finalized()
            a.cycle = a
            del a
            gc.collect()
        finally:
            in_collection.set()
            thread.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(log, ["__del__", ("received", 1), ("scheduled", 2),
                               "finally"])


class SwitchMidInstructionTest(StacklessTestCase):
    """Issue 18: a frame hard-switched in the middle of an instruction,
    by a __del__ or __enter__ that its instruction ran, shows the
    collector no slot that instruction already dropped: neither a
    dangling one nor a stale copy (the debug build asserts on both)."""

    class Switcher:
        def __del__(self):
            stackless.schedule()      # hard: called from a deallocation

    def suspend(self, func):
        t = self.spawn(func)
        t.run()                       # until the switch back to us
        self.assertTrue(t.alive)
        return t

    def finish(self, t):
        gc.collect()
        stackless.run()
        self.assertFalse(t.alive)

    def test_call_dropping_its_inputs(self):
        # CALL drops its inputs after the call; the second one's __del__
        # switches: the first one's slot is stale (here it stays alive
        # through the cell, elsewhere it may be freed).
        m = Marker()

        def victim():
            operator.is_(m, self.Switcher())
        t = self.suspend(victim)
        self.assertEqual(referent_markers(t), [])
        self.finish(t)

    def test_call_dropping_a_freed_input(self):
        class Plain:
            pass

        def victim():
            operator.is_(Plain(), self.Switcher())
        self.finish(self.suspend(victim))

    def test_store_fast(self):
        # STORE_FAST stores the new value, then drops the old one, whose
        # __del__ switches: the new value is not counted twice.
        out = []

        def victim():
            x = self.Switcher()
            x = [Marker()]
            out.append(x)
        t = self.suspend(victim)
        lists = [o for o in gc.get_referents(t)
                 if type(o) is list and len(o) == 1
                 and isinstance(o[0], Marker)]
        self.assertEqual(len(lists), 1)
        self.finish(t)
        self.assertEqual(len(out), 1)

    def test_with_enter(self):
        # BEFORE_WITH drops the manager, then calls __enter__, which
        # switches (hard in the hard mode): the manager is counted once,
        # as __enter__'s self.
        class Manager:
            def __enter__(self):
                stackless.schedule()
                return self

            def __exit__(self, *exc):
                return False

        def victim():
            with Manager():
                pass
        t = self.suspend(victim)
        managers = [o for o in gc.get_referents(t)
                    if isinstance(o, Manager)]
        self.assertLessEqual(len(managers), 1)
        self.finish(t)


class CStateTest(StacklessTestCase):
    """T-28, M-20: tasklet.cstate, a cstack object."""

    def test_suspended_tasklet_keeps_a_stack_slice(self):
        t = self.spawn(stackless.schedule_remove, None)
        self.assertEqual(t.cstate.size, 0)
        t.run()
        cs = t.cstate
        self.assertIsInstance(cs, stackless.cstack)
        self.assertIs(cs.task, t)
        self.assertGreater(cs.size, 0)
        self.assertNotEqual(cs.startaddr, 0)
        self.assertEqual(cs.nesting_level, t.nesting_level)
        t.kill()
        self.assertEqual(cs.size, 0)

    def test_current_tasklet_keeps_none(self):
        cs = stackless.getcurrent().cstate
        self.assertEqual(cs.size, 0)
        # M-21.3: startaddr is the stack base the slices of the thread
        # belong to, that of its initial stub too.
        stub = stackless.get_thread_info(-1, 1 << 30)[5]
        self.assertNotEqual(cs.startaddr, 0)
        self.assertEqual(cs.startaddr, stub.startaddr)


if __name__ == "__main__":
    unittest.main()
