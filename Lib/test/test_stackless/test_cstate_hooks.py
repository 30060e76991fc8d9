"""Test and introspection hooks of the C state (spec M-21.1, M-21.2,
M-21.3, M-21.5, M-21.6).

get_thread_info() flags (serials, initial stub, watchdog list), the cstack
type and its ring, the "bad stack reference in transfer" check through
test_cframe_nr(cstate_add_addr=...), and test_outside().  The original
tests' harness walks the cstack ring to find the tasklets that hold C
state: that walk is reproduced here (cstate_tasklets()).
"""

import gc
import struct
import sys
import threading
import unittest

import _stackless
import stackless
from test.support import import_helper
from test.test_stackless.helpers import StacklessTestCase, load_tests  # noqa: F401

T = import_helper.import_module("_teststackless")

SERIALS = 1 << 30
WATCHDOG = 1 << 31
WORD = struct.calcsize("P")
TIMEOUT = 10.0


def cstate_tasklets():
    """The walk of the original harness: every tasklet but the current
    one holding C state, found through the ring of cstacks by identity."""
    found = []
    start = stackless.current.cstate
    cs = start.next
    steps = 0
    while cs is not start:
        steps += 1
        if steps > 1000000:
            raise AssertionError("the cstack ring does not close")
        t = cs.task
        if t is not None and t.cstate is cs and t.alive \
                and t.nesting_level > 0:
            found.append(t)
        cs = cs.next
    return found


def ring():
    """The members of the ring, from the current tasklet's cstate."""
    start = stackless.current.cstate
    members = [start]
    cs = start.next
    while cs is not start:
        members.append(cs)
        cs = cs.next
        if len(members) > 1000000:
            raise AssertionError("the cstack ring does not close")
    return members


def in_thread(func):
    """func() in a new thread; its result, or its exception raised here."""
    out = {}

    def run():
        try:
            out["result"] = func()
        except BaseException as e:
            out["error"] = e

    th = threading.Thread(target=run)
    th.start()
    th.join(TIMEOUT)
    if th.is_alive():
        raise AssertionError("the thread did not end")
    if "error" in out:
        raise out["error"]
    return out["result"]


def soft_on():
    return stackless.enable_softswitch(None)


class TestNames(unittest.TestCase):

    def test_reexported(self):
        for name in ("cstack", "get_thread_info", "test_cframe_nr",
                     "test_outside"):
            self.assertIs(getattr(stackless, name), getattr(_stackless, name),
                          name)

    def test_cstack_not_instantiable(self):
        with self.assertRaises(TypeError):
            stackless.cstack()


class TestGetThreadInfo(StacklessTestCase):

    def test_plain(self):
        info = stackless.get_thread_info()
        self.assertEqual(info, (stackless.main, stackless.current, 1))
        self.assertEqual(stackless.get_thread_info(-1, 0), info)

    def test_bit31_is_accepted(self):
        info = stackless.get_thread_info(-1, 1 << 31)
        self.assertEqual(len(info), 4)
        self.assertEqual(info[:3], (stackless.main, stackless.current, 1))
        self.assertTrue(info[3] is None or type(info[3]) is list)

    def test_bit30(self):
        info = stackless.get_thread_info(-1, SERIALS)
        self.assertEqual(len(info), 6)
        serial, last, stub = info[3:]
        self.assertIs(type(serial), int)
        self.assertIs(type(last), int)
        self.assertGreaterEqual(serial, 1)
        self.assertIs(type(stub), stackless.cstack)
        self.assertIsNone(stub.task)
        self.assertLessEqual(stub.serial, serial)

    def test_both_bits(self):
        info = stackless.get_thread_info(-1, SERIALS | WATCHDOG)
        self.assertEqual(len(info), 7)
        self.assertEqual(info[:6], stackless.get_thread_info(-1, SERIALS))
        self.assertIs(info[6], stackless.get_thread_info(-1, WATCHDOG)[3])

    def test_unknown_bits_ignored(self):
        flags = (1 << 40) | (1 << 29) | 7 | (1 << 64) | (1 << 94)
        self.assertEqual(stackless.get_thread_info(-1, flags),
                         stackless.get_thread_info())
        self.assertEqual(len(stackless.get_thread_info(-1, (1 << 62) | SERIALS)),
                         6)

    def test_bad_flags(self):
        with self.assertRaises(ValueError):
            stackless.get_thread_info(-1, -1)
        with self.assertRaises(TypeError):
            stackless.get_thread_info(-1, 1.0)
        with self.assertRaises(TypeError):
            stackless.get_thread_info(-1, "1")

    def test_thread_that_never_used_stackless(self):
        ready = threading.Event()
        done = threading.Event()

        def body():
            ready.set()
            done.wait(TIMEOUT)

        th = threading.Thread(target=body)
        th.start()
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            tid = th.ident
            self.assertEqual(stackless.get_thread_info(tid), (None, None, 0))
            self.assertEqual(
                stackless.get_thread_info(tid, SERIALS | WATCHDOG),
                (None, None, 0, 0, 0, None, None))
            self.assertEqual(stackless.get_thread_info(tid, WATCHDOG),
                             (None, None, 0, None))
        finally:
            done.set()
            th.join(TIMEOUT)

    def test_new_thread(self):
        def body():
            info = stackless.get_thread_info(-1, SERIALS | WATCHDOG)
            return info, stackless.current

        info, cur = in_thread(body)
        main, current, runcount, serial, last, stub, watchdogs = info
        self.assertIs(main, cur)
        self.assertIs(current, cur)
        self.assertEqual(runcount, 1)
        self.assertEqual(serial, last)
        self.assertEqual(stub.serial, serial)
        self.assertIsNone(stub.task)
        self.assertIsNone(watchdogs)

    def test_other_thread_seen_from_here(self):
        ready = threading.Event()
        done = threading.Event()
        seen = {}

        def body():
            seen["main"] = stackless.main
            seen["info"] = stackless.get_thread_info(-1, SERIALS | WATCHDOG)
            ready.set()
            done.wait(TIMEOUT)

        th = threading.Thread(target=body)
        th.start()
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            info = stackless.get_thread_info(th.ident, SERIALS | WATCHDOG)
            self.assertIs(info[0], seen["main"])
            self.assertEqual(info[3:5], seen["info"][3:5])
            self.assertIs(info[5], seen["info"][5])
        finally:
            done.set()
            th.join(TIMEOUT)


class TestWatchdogList(StacklessTestCase):

    def test_none_until_first_run(self):
        def body():
            before = stackless.get_thread_info(-1, WATCHDOG)[3]
            stackless.run()             # an emptied queue: nothing runs
            first = stackless.get_thread_info(-1, WATCHDOG)[3]
            second = stackless.get_thread_info(-1, WATCHDOG)[3]
            return before, first, second

        before, first, second = in_thread(body)
        self.assertIsNone(before)
        self.assertEqual(first, [None])
        self.assertIs(first, second)

    def test_same_object(self):
        stackless.run()
        wl = stackless.get_thread_info(-1, WATCHDOG)[3]
        self.assertIs(type(wl), list)
        self.assertEqual(wl, [None])
        stackless.tasklet(lambda: None)()
        stackless.run()
        self.assertIs(stackless.get_thread_info(-1, WATCHDOG)[3], wl)
        self.assertEqual(wl, [None])

    def test_nested_runs(self):
        stackless.run()
        wl = stackless.get_thread_info(-1, WATCHDOG)[3]
        seen = []
        main = stackless.main

        def inner():
            seen.append(("inner", list(wl)))

        def outer():
            seen.append(("outer", list(wl)))
            self.spawn(inner)
            stackless.run()
            seen.append(("outer after", list(wl)))

        a = self.spawn(outer)
        stackless.run()
        self.assertEqual(seen, [
            ("outer", [None, main]),
            ("inner", [None, main, a]),
            ("outer after", [None, main]),
        ])
        self.assertEqual(wl, [None])

    def test_timer_slot(self):
        stackless.run()
        wl = stackless.get_thread_info(-1, WATCHDOG)[3]
        seen = []
        main = stackless.main

        def inner():
            seen.append(list(wl))

        def outer():
            seen.append(list(wl))
            self.spawn(inner)
            # An inner run() with a timeout does not re-arm the timer.
            stackless.run(10000000)
            seen.append(list(wl))

        a = self.spawn(outer)
        self.assertIsNone(stackless.run(10000000))
        self.assertEqual(seen, [[main, main], [main, main, a], [main, main]])
        self.assertEqual(wl, [None])

    def test_repaired_by_slice_assignment(self):
        stackless.run()
        wl = stackless.get_thread_info(-1, WATCHDOG)[3]
        wl[:] = [None, 42, "junk"]
        ran = []
        self.spawn(ran.append, 1)
        stackless.run()             # junk is not taken for a tasklet
        self.assertEqual(ran, [1])
        wl[:] = []
        self.spawn(ran.append, 2)
        stackless.run()
        self.assertEqual(ran, [1, 2])
        wl[:] = [None]
        self.assertIs(stackless.get_thread_info(-1, WATCHDOG)[3], wl)


class TestCstack(StacklessTestCase):

    def blocked_hard(self, ch):
        """A tasklet blocked in ch.receive() called from C (C state)."""
        t = self.spawn(lambda: T.test_cstate(lambda: ch.receive()))
        t.run()
        self.assertTrue(t.blocked)
        return t

    def test_identity_and_refcount(self):
        t = stackless.tasklet(lambda: None)
        cs = t.cstate
        self.assertIs(type(cs), stackless.cstack)
        self.assertIs(t.cstate, cs)
        self.assertIs(cs.task, t)
        del cs
        self.assertEqual(sys.getrefcount(t.cstate)
                         - sys.getrefcount(object()), 1)

    def test_attributes_of_a_fresh_tasklet(self):
        t = stackless.tasklet(lambda: None)
        cs = t.cstate
        self.assertEqual(cs.size, 0)
        self.assertEqual(str(cs), "")
        self.assertNotEqual(cs.startaddr, 0)
        self.assertEqual(cs.startaddr, stackless.current.cstate.startaddr)
        self.assertEqual(cs.nesting_level, 0)
        self.assertEqual(cs.serial,
                         stackless.get_thread_info(-1, SERIALS)[4])
        for name in ("task", "next", "prev", "size", "startaddr",
                     "nesting_level", "serial"):
            with self.assertRaises(AttributeError):
                setattr(cs, name, None)

    def test_ring(self):
        members = ring()
        self.assertIn(stackless.current.cstate, members)
        stub = stackless.get_thread_info(-1, SERIALS)[5]
        self.assertTrue(any(cs is stub for cs in members))
        for cs in members:
            self.assertIs(cs.next.prev, cs)
            self.assertIs(cs.prev.next, cs)
        n = len(members)
        t = stackless.tasklet(lambda: None)
        cs = t.cstate
        self.assertEqual(len(ring()), n + 1)
        self.assertTrue(any(c is cs for c in ring()))
        del cs, t
        gc.collect()
        self.assertEqual(len(ring()), n)

    def test_cstack_outlives_its_tasklet(self):
        t = stackless.tasklet(lambda: None)
        cs = t.cstate
        n = len(ring())
        del t
        gc.collect()
        self.assertIsNone(cs.task)
        self.assertEqual(cs.size, 0)
        self.assertEqual(len(ring()), n)
        self.assertTrue(any(c is cs for c in ring()))
        del cs
        self.assertEqual(len(ring()), n - 1)

    def test_walk_finds_hard_blocked(self):
        ch = stackless.channel()
        hard = [self.blocked_hard(ch) for _ in range(3)]
        soft = self.spawn(lambda: ch.receive())
        soft.run()
        self.assertTrue(soft.blocked)
        found = cstate_tasklets()
        for t in hard:
            self.assertIn(t, found)
            self.assertGreater(t.nesting_level, 0)
        if soft_on():
            self.assertNotIn(soft, found)
            self.assertEqual(soft.cstate.size, 0)
        else:
            # Hard mode: every switch is hard, the C stack is kept, and
            # the cstack is in the ring.  (Its nesting_level stays 0: the
            # N-3 rule that every such tasklet reports >= 1 is not made
            # here, so the harness's filter does not take it.)
            self.assertGreater(soft.cstate.size, 0)
            self.assertTrue(any(cs is soft.cstate for cs in ring()))
        for t in found:
            t.kill()
        self.assertEqual(cstate_tasklets(), [])

    def test_walk_terminates_with_many(self):
        ch = stackless.channel()
        ts = [self.spawn(ch.receive) for _ in range(50)]
        stackless.run()
        for t in ts:
            t.cstate                    # a cstack each
        self.assertGreaterEqual(len(ring()), 52)
        cstate_tasklets()

    def test_size_and_str(self):
        ch = stackless.channel()
        t = self.blocked_hard(ch)
        cs = t.cstate
        self.assertGreater(cs.size, 0)
        self.assertEqual(len(str(cs)), cs.size * WORD)
        self.assertEqual(cs.startaddr, stackless.current.cstate.startaddr)
        self.assertEqual(cs.nesting_level, t.nesting_level)
        ch.send(None)
        self.assertFalse(t.alive)
        self.assertEqual(cs.size, 0)
        self.assertEqual(str(cs), "")

    def test_same_object_while_same_lineage(self):
        ch = stackless.channel()
        t = self.blocked_hard(ch)
        cs = t.cstate
        t2 = self.spawn(lambda: T.test_cstate(
            lambda: (ch.receive(), ch.receive())))
        t2.run()
        ch.send(1)                      # t ends
        ch.send(2)                      # t2 hard-switched out twice
        self.assertIs(t.cstate, cs)
        cs2 = t2.cstate
        ch.send(3)
        self.assertIs(t2.cstate, cs2)

    def test_new_stack_in_another_thread(self):
        # A cstack asked for in one thread, of a tasklet that then moves
        # to another and is switched out there with its C stack: the
        # tasklet gets a cstack of that thread, and resumes.
        t = stackless.tasklet()
        old = t.cstate
        log = []

        def body():
            ch = stackless.channel()

            def f():
                T.test_cstate(lambda: ch.receive())
                log.append("resumed")

            t.bind(f, ())
            t.bind_thread()
            t.insert()
            stackless.run()
            cs = t.cstate
            log.append((cs is not old, cs.task is t, cs.size > 0,
                        old.task is None, cs.startaddr != old.startaddr))
            ch.send(None)

        in_thread(body)
        self.assertEqual(log, [(True, True, True, True, True), "resumed"])

    def test_main_has_one(self):
        cs = stackless.main.cstate
        self.assertIs(cs.task, stackless.main)
        self.assertIs(stackless.main.cstate, cs)


class TestSerials(StacklessTestCase):

    def serials(self):
        return stackless.get_thread_info(-1, SERIALS)[3:]

    def test_switches_keep_serial_last_jump(self):
        before = self.serials()
        ch = stackless.channel()
        t = self.spawn(lambda: T.test_cstate(lambda: ch.receive()))
        t.run()
        u = self.spawn(ch.receive)
        u.run()
        ch.send(1)
        ch.send(2)
        stackless.schedule()
        self.assertEqual(self.serials()[:2], before[:2])
        self.assertIs(self.serials()[2], before[2])

    def test_cstack_records_serial_last_jump(self):
        ch = stackless.channel()
        t = self.spawn(lambda: T.test_cstate(lambda: ch.receive()))
        t.run()
        self.assertEqual(t.cstate.serial, self.serials()[1])
        ch.send(None)

    def test_outside_makes_new_stubs(self):
        serial, last, stub = self.serials()
        seen = []

        def f():
            seen.append(self.serials())
            stackless.schedule()
            seen.append(self.serials())

        self.spawn(f)
        stackless.test_outside()
        # Two rounds: one stub each, with serial_last_jump = its serial.
        self.assertEqual(len(seen), 2)
        self.assertEqual(seen[0][0], serial + 1)
        self.assertEqual(seen[0][1], serial + 1)
        self.assertEqual(seen[0][2].serial, serial + 1)
        self.assertEqual(seen[1][0], serial + 2)
        self.assertEqual(seen[1][2].serial, serial + 2)
        self.assertIsNot(seen[0][2], stub)
        self.assertEqual(self.serials()[:2], (serial + 2, last))
        self.assertIs(self.serials()[2], stub)

    def test_main_exit_with_serial_mismatch(self):
        # The scenario of the original test_outside: a tasklet
        # hard-switched out under test_outside gets a cstack with a new
        # serial; once t.run() finishes it, serial_last_jump is that
        # serial (soft switching) or the stub's (hard).
        soft = soft_on()

        def body():
            stackless.enable_softswitch(soft)
            t = stackless.tasklet(lambda: T.test_cstate(
                lambda: stackless.schedule_remove()))()
            old_cs = t.cstate
            stackless.test_outside()
            serial, last, stub = stackless.get_thread_info(-1, SERIALS)[3:]
            cs = t.cstate
            res = {"serial": serial, "last": last, "stub": stub.serial,
                   "cs": cs.serial, "new": cs is not old_cs,
                   "old_task": old_cs.task, "paused": t.paused,
                   "nesting": t.nesting_level}
            t.run()
            res["alive"] = t.alive
            res["after"] = stackless.get_thread_info(-1, SERIALS)[4]
            return res

        res = in_thread(body)
        self.assertTrue(res["paused"])
        self.assertGreater(res["nesting"], 0)
        self.assertEqual(res["cs"], res["serial"])
        self.assertNotEqual(res["cs"], res["last"])
        self.assertEqual(res["last"], res["stub"])
        self.assertTrue(res["new"])
        self.assertIsNone(res["old_task"])
        self.assertFalse(res["alive"])
        self.assertEqual(res["after"], res["cs"] if soft else res["stub"])


class TestTransferErrors(StacklessTestCase):

    def paused_hard(self, log):
        """A tasklet paused with C state, resumable into log."""
        def body():
            T.test_cstate(lambda: stackless.schedule_remove())
            log.append("resumed")

        t = self.spawn(body)
        t.run()
        self.assertTrue(t.paused)
        self.assertGreater(t.nesting_level, 0)
        return t

    def check_unchanged(self, t, scheduled):
        self.assertIs(stackless.current, stackless.main)
        self.assertTrue(t.alive)
        self.assertEqual(t.scheduled, scheduled)
        self.assertEqual(stackless.runcount, 2 if scheduled else 1)
        self.assertIs(stackless.main.next, t if scheduled else stackless.main)

    def corrupt(self, t, words=1000):
        addr = t.cstate.startaddr
        self.assertIsNone(stackless.test_cframe_nr(words,
                                                   cstate_add_addr=t.cstate))
        self.assertEqual(t.cstate.startaddr, addr + words * WORD)
        return addr

    def test_run(self):
        log = []
        t = self.paused_hard(log)
        addr = self.corrupt(t)
        with self.assertRaisesRegex(SystemError,
                                    "^bad stack reference in transfer$"):
            t.run()
        self.check_unchanged(t, False)
        stackless.test_cframe_nr(-1000, cstate_add_addr=t.cstate)
        self.assertEqual(t.cstate.startaddr, addr)
        t.run()
        self.assertEqual(log, ["resumed"])
        self.assertFalse(t.alive)

    def test_switch(self):
        log = []
        t = self.paused_hard(log)
        self.corrupt(t, 3)
        with self.assertRaisesRegex(SystemError,
                                    "bad stack reference in transfer"):
            t.switch()
        self.check_unchanged(t, False)
        self.assertTrue(stackless.main.scheduled)
        stackless.test_cframe_nr(-3, cstate_add_addr=t.cstate)
        t.switch()
        self.assertEqual(log, ["resumed"])

    def test_kill(self):
        log = []
        t = self.paused_hard(log)
        tempval = t.tempval
        self.corrupt(t)
        with self.assertRaisesRegex(SystemError,
                                    "bad stack reference in transfer"):
            t.kill()
        self.check_unchanged(t, False)
        self.assertIs(t.tempval, tempval)
        stackless.test_cframe_nr(-1000, cstate_add_addr=t.cstate)
        t.run()             # no TaskletExit was left pending
        self.assertEqual(log, ["resumed"])

    def test_scheduler(self):
        log = []
        t = self.paused_hard(log)
        t.insert()
        self.corrupt(t)
        with self.assertRaisesRegex(SystemError,
                                    "bad stack reference in transfer"):
            stackless.schedule()
        self.check_unchanged(t, True)
        with self.assertRaisesRegex(SystemError,
                                    "bad stack reference in transfer"):
            stackless.schedule_remove()
        self.check_unchanged(t, True)
        self.assertTrue(stackless.main.scheduled)
        stackless.test_cframe_nr(-1000, cstate_add_addr=t.cstate)
        stackless.schedule()
        self.assertEqual(log, ["resumed"])

    def test_from_a_soft_tasklet(self):
        # The switch from a tasklet that could park softly fails too, and
        # that tasklet stays runnable.
        log = []
        t = self.paused_hard(log)
        self.corrupt(t)
        seen = []

        def other():
            t.insert()
            try:
                stackless.schedule()
            except SystemError as e:
                seen.append(str(e))
            seen.append((stackless.current is u, u.scheduled, t.scheduled))
            t.remove()

        u = self.spawn(other)
        u.switch()              # main is paused: t is next after u
        self.assertEqual(seen, ["bad stack reference in transfer",
                                (True, True, True)])
        self.assertFalse(u.alive)
        stackless.test_cframe_nr(-1000, cstate_add_addr=t.cstate)
        t.run()
        self.assertEqual(log, ["resumed"])

    def test_add_addr_type_error(self):
        for bad in (42, "x", stackless.current, object()):
            with self.assertRaises(TypeError):
                stackless.test_cframe_nr(1, cstate_add_addr=bad)
        with self.assertRaises(TypeError):
            stackless.test_cframe_nr("1")
        with self.assertRaises(TypeError):
            stackless.test_cframe_nr()

    def test_add_addr_does_not_switch(self):
        ran = []
        self.spawn(ran.append, 1)
        cs = stackless.current.cstate
        addr = cs.startaddr
        self.assertIsNone(stackless.test_cframe_nr(5, cstate_add_addr=cs))
        self.assertEqual(ran, [])
        self.assertEqual(cs.startaddr, addr + 5 * WORD)
        stackless.test_cframe_nr(-5, cstate_add_addr=cs)
        self.assertEqual(cs.startaddr, addr)


class TestCframeNr(StacklessTestCase):

    def test_switches(self):
        log = []

        def other():
            for i in range(5):
                log.append(i)
                stackless.schedule()

        self.spawn(other)
        self.assertIsNone(stackless.test_cframe_nr(3))
        self.assertEqual(log, [0, 1, 2])
        self.assertIsNone(stackless.test_cframe_nr(0))
        self.assertEqual(log, [0, 1, 2])

    def test_in_tasklets(self):
        log = []

        def f(n):
            log.append(("start", n))
            stackless.test_cframe_nr(n)
            log.append(("end", n))

        self.spawn(f, 2)
        self.spawn(f, 3)
        stackless.run()
        self.assertEqual(log, [("start", 2), ("start", 3), ("end", 2),
                               ("end", 3)])

    def test_kill_inside(self):
        log = []

        def f():
            try:
                stackless.test_cframe_nr(100)
            except TaskletExit:
                log.append("killed")
                raise

        t = self.spawn(f)
        t.run()
        self.assertTrue(t.scheduled)
        t.kill()
        self.assertEqual(log, ["killed"])
        self.assertFalse(t.alive)


class TestCframeNrSoft(StacklessTestCase):
    both_modes = False      # soft switching on

    def test_no_c_state_with_soft_switching(self):
        # Spec M-21.5: called from Python in a tasklet with soft switching
        # on, it leaves no C state, switch after switch.
        self.assertTrue(soft_on())
        seen = []

        def f():
            stackless.test_cframe_nr(3)

        t = self.spawn(f)
        t.run()
        while t.alive:
            seen.append((t.nesting_level, t.restorable,
                         t in cstate_tasklets()))
            t.run()
        self.assertEqual(seen, [(0, True, False)] * 3)


class TestOutside(StacklessTestCase):

    def test_runs_the_queue(self):
        log = []
        self.spawn(log.append, 1)
        self.spawn(log.append, 2)
        self.assertIsNone(stackless.test_outside())
        self.assertEqual(log, [1, 2])
        self.assertIs(stackless.current, stackless.main)
        self.assertEqual(stackless.runcount, 1)

    def test_empty_queue(self):
        serial = stackless.get_thread_info(-1, SERIALS)[3]
        self.assertIsNone(stackless.test_outside())
        self.assertEqual(stackless.get_thread_info(-1, SERIALS)[3], serial)

    def test_until_done(self):
        log = []

        def f(name):
            for i in range(3):
                log.append((name, i))
                stackless.schedule()

        self.spawn(f, "a")
        self.spawn(f, "b")
        stackless.test_outside()
        self.assertEqual(sorted(log), [(n, i) for n in "ab" for i in range(3)])
        self.assertEqual(stackless.runcount, 1)

    def test_temporary_main(self):
        outer = stackless.main
        seen = []

        def f():
            seen.append((stackless.main, stackless.current,
                         stackless.main.is_main, stackless.runcount))

        t = self.spawn(f)
        stackless.test_outside()
        (m, cur, is_main, runcount), = seen
        self.assertIsNot(m, outer)
        self.assertIs(cur, t)
        self.assertTrue(is_main)
        self.assertEqual(runcount, 2)
        self.assertFalse(m.alive)
        self.assertFalse(m.is_main)
        self.assertIs(stackless.main, outer)
        # The dead temporary main is an ordinary tasklet now.
        m.bind(seen.append, (1,))
        m.run()
        self.assertEqual(seen[-1], 1)

    def test_caller_is_kept_apart(self):
        outer = stackless.main
        seen = []

        def f():
            seen.append(outer.frame.f_code.co_name)
            seen.append(outer.scheduled)
            for op in (outer.run, outer.switch, outer.kill, outer.insert):
                try:
                    op()
                except RuntimeError as e:
                    seen.append(str(e))

        self.spawn(f)
        stackless.test_outside()
        self.assertEqual(seen[0], "test_caller_is_kept_apart")
        self.assertFalse(seen[1])
        self.assertEqual(len(seen), 6)
        for msg in seen[2:]:
            self.assertIn("test_outside", msg)
        self.assertIs(stackless.current, outer)

    def test_blocked_stay_blocked(self):
        ch = stackless.channel()
        got = []
        t = self.spawn(lambda: got.append(ch.receive()))
        stackless.test_outside()
        self.assertTrue(t.blocked)
        self.assertEqual(ch.balance, -1)
        ch.send(7)
        self.assertEqual(got, [7])

    def test_hard_switched_inside(self):
        log = []

        def f():
            T.test_cframe(2)
            stackless.test_cframe_nr(2)
            log.append("done")

        self.spawn(f)
        self.spawn(f)
        stackless.test_outside()
        self.assertEqual(log, ["done", "done"])

    def test_error_propagates(self):
        class Boom(Exception):
            pass

        def f():
            raise Boom("x")

        later = []
        self.spawn(f)
        self.spawn(later.append, 1)
        with self.assertRaises(Boom):
            stackless.test_outside()
        self.assertIs(stackless.current, stackless.main)
        self.assertTrue(stackless.main.scheduled)
        stackless.run()
        self.assertEqual(later, [1])

    def test_from_a_tasklet(self):
        log = []

        def worker():
            log.append("worker")

        def caller():
            self.spawn(worker)
            stackless.test_outside()
            log.append(("caller back", stackless.current is me[0]))

        me = [self.spawn(caller)]
        stackless.run()
        self.assertEqual(log, ["worker", ("caller back", True)])

    def test_restores_watchdog_list_and_depth(self):
        stackless.run()
        wl = stackless.get_thread_info(-1, WATCHDOG)[3]
        seen = []

        def f():
            seen.append(stackless.get_thread_info(-1, WATCHDOG)[3])
            seen.append(stackless.current.recursion_depth)

        self.spawn(f)
        depth = stackless.current.recursion_depth
        nesting = stackless.current.nesting_level
        stackless.test_outside()
        self.assertIsNot(seen[0], wl)
        self.assertLess(seen[1], depth + 5)
        self.assertIs(stackless.get_thread_info(-1, WATCHDOG)[3], wl)
        self.assertEqual(wl, [None])
        self.assertEqual(stackless.current.recursion_depth, depth)
        self.assertEqual(stackless.current.nesting_level, nesting)

    def test_switch_trap(self):
        stackless.switch_trap(1)
        try:
            with self.assertRaisesRegex(RuntimeError, "switch_trap"):
                stackless.test_outside()
        finally:
            stackless.switch_trap(-1)


if __name__ == "__main__":
    unittest.main()
