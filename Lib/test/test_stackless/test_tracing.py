"""Per-tasklet tracing and profiling (spec D-1, D-2).

sys.settrace() and sys.setprofile() act on the current tasklet only.
Tracer functions here record (code name, event) pairs of the helper
functions below and ignore every other frame, so that the test
machinery itself does not show up in the logs.  Each test restores the
trace and profile functions it found.
"""

import cProfile
import io
import pstats
import sys
import threading
import unittest

import stackless
from stackless import channel, tasklet
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


TIMEOUT = 10.0
WATCHED = {"helper", "helper2", "body", "worker"}


def helper():
    return 1


def helper2():
    return 2


class Recorder:
    """A trace or profile function logging events of WATCHED code."""

    def __init__(self, tag="r"):
        self.tag = tag
        self.events = []

    def __call__(self, frame, event, arg):
        name = frame.f_code.co_name
        if name in WATCHED:
            self.events.append((name, event))
        return self

    def names(self):
        return {name for name, _ in self.events}

    def calls(self):
        return [name for name, event in self.events if event == "call"]


class TracingTestCase(unittest.TestCase):

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.old_trace = sys.gettrace()
        self.old_profile = sys.getprofile()
        self.tasklets = []
        self.addCleanup(self.clean_up)

    def spawn(self, func, *args):
        t = tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def clean_up(self):
        sys.settrace(self.old_trace)
        sys.setprofile(self.old_profile)
        stackless.set_schedule_callback(None)
        stackless.set_channel_callback(None)
        stackless.set_error_handler(None)
        for t in self.tasklets:
            for _ in range(5):
                if not t.alive or t.is_current:
                    break
                try:
                    t.kill()
                except Exception:
                    pass
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)


class PerTaskletHooksTest(TracingTestCase):
    """D-1: trace and profile hooks belong to one tasklet."""

    def test_new_tasklet_starts_untraced(self):
        # D-1: a tasklet does not inherit the hooks of its creator.
        rec = Recorder()
        seen = []

        def body():
            seen.append((sys.gettrace(), sys.getprofile()))
            helper()

        self.spawn(body)
        sys.settrace(rec)
        sys.setprofile(rec)
        try:
            stackless.run()
        finally:
            sys.settrace(None)
            sys.setprofile(None)
        self.assertEqual(seen, [(None, None)])
        self.assertNotIn("helper", rec.names())
        self.assertNotIn("body", rec.names())

    def test_tasklet_created_by_traced_tasklet(self):
        # D-1: also when the creator is a traced non-main tasklet.
        rec = Recorder()
        seen = []

        def child():
            seen.append(sys.gettrace())
            helper2()

        def parent():
            sys.settrace(rec)
            t = tasklet(child)()
            self.tasklets.append(t)
            t.run()
            helper()
            sys.settrace(None)

        self.spawn(parent)
        stackless.run()
        self.assertEqual(seen, [None])
        self.assertIn("helper", rec.calls())
        self.assertNotIn("helper2", rec.names())

    def test_settrace_in_tasklet_not_seen_by_main(self):
        # D-1: a hook set in a tasklet does not apply to main; it comes
        # back when the tasklet resumes.
        rec = Recorder()
        seen = []

        def body():
            sys.settrace(rec)
            seen.append(("t", sys.gettrace()))
            stackless.schedule()
            seen.append(("t", sys.gettrace()))
            helper()
            sys.settrace(None)

        t = self.spawn(body)
        t.run()                     # body sets the hook, yields to us
        seen.append(("main", sys.gettrace()))
        helper2()                   # not traced
        t.run()
        self.assertFalse(t.alive)
        self.assertEqual(seen, [("t", rec), ("main", self.old_trace),
                                ("t", rec)])
        self.assertEqual(rec.calls(), ["helper"])

    def test_setprofile_in_tasklet_not_seen_by_main(self):
        # D-1: the same for sys.setprofile().
        rec = Recorder()
        seen = []

        def body():
            sys.setprofile(rec)
            stackless.schedule()
            seen.append(sys.getprofile())
            helper()
            sys.setprofile(None)

        t = self.spawn(body)
        t.run()
        seen.append(sys.getprofile())
        helper2()
        t.run()
        self.assertEqual(seen, [self.old_profile, rec])
        self.assertEqual(rec.calls(), ["helper"])

    def test_hook_of_ending_tasklet_does_not_leak(self):
        # D-1: a tasklet that ends with a hook installed leaves main
        # untouched.
        rec = Recorder()

        def body():
            sys.settrace(rec)
            sys.setprofile(rec)

        self.spawn(body)
        stackless.run()
        self.assertIs(sys.gettrace(), self.old_trace)
        self.assertIs(sys.getprofile(), self.old_profile)
        helper()
        self.assertNotIn("helper", rec.names())

    def test_main_hooks_come_back(self):
        # D-1: main's hooks are saved over the switches and restored when
        # it resumes.
        rec = Recorder("main")
        prof = Recorder("prof")
        inside = []

        def body():
            inside.append((sys.gettrace(), sys.getprofile()))
            helper()
            stackless.schedule()
            helper()

        for _ in range(2):
            self.spawn(body)
        sys.settrace(rec)
        sys.setprofile(prof)
        try:
            stackless.run()
            after = (sys.gettrace(), sys.getprofile())
            helper2()
        finally:
            sys.settrace(None)
            sys.setprofile(None)
        self.assertEqual(after, (rec, prof))
        self.assertEqual(inside, [(None, None)] * 2)
        self.assertEqual(rec.calls(), ["helper2"])
        self.assertEqual(prof.calls(), ["helper2"])

    def test_two_tasklets_two_tracers(self):
        # D-1: two tasklets with different tracers, interleaved.
        recs = [Recorder("a"), Recorder("b")]

        def body(i):
            sys.settrace(recs[i])
            for _ in range(3):
                (helper if i == 0 else helper2)()
                stackless.schedule()
            sys.settrace(None)

        self.spawn(body, 0)
        self.spawn(body, 1)
        stackless.run()
        self.assertEqual(recs[0].calls(), ["helper"] * 3)
        self.assertEqual(recs[1].calls(), ["helper2"] * 3)

    def test_hooks_over_channel_switches(self):
        # D-1: hooks survive blocking on a channel.
        rec = Recorder()
        ch = channel()
        seen = []

        def body():
            sys.settrace(rec)
            v = ch.receive()
            seen.append((v, sys.gettrace()))
            helper()
            sys.settrace(None)

        self.spawn(body)
        stackless.run()
        self.assertIs(sys.gettrace(), self.old_trace)
        ch.send("x")
        self.assertEqual(seen, [("x", rec)])
        self.assertEqual(rec.calls(), ["helper"])

    def test_install_from_schedule_callback(self):
        # D-1, D-2, D-3: the debugger idiom: a schedule callback installs
        # the tracer in every tasklet about to run; main stays untraced.
        rec = Recorder()
        main = stackless.getmain()

        def cb(prev, next):
            if next is not None and next is not main and next.alive:
                next.trace_function = rec

        def body():
            helper()
            stackless.schedule()
            helper2()

        for _ in range(2):
            self.spawn(body)
        stackless.set_schedule_callback(cb)
        try:
            stackless.run()
        finally:
            stackless.set_schedule_callback(None)
        self.assertIs(sys.gettrace(), self.old_trace)
        self.assertEqual(sorted(rec.calls()),
                         sorted(["helper", "helper2"] * 2 + ["body"] * 2))


class TaskletHookAttributesTest(TracingTestCase):
    """D-2: tasklet.trace_function and tasklet.profile_function."""

    def test_current_matches_sys(self):
        # D-2: for the current tasklet the attributes are
        # sys.gettrace()/getprofile().
        rec = Recorder()
        prof = Recorder()
        cur = stackless.getcurrent()
        self.assertIs(cur.trace_function, sys.gettrace())
        self.assertIs(cur.profile_function, sys.getprofile())
        sys.settrace(rec)
        sys.setprofile(prof)
        try:
            tf, pf = cur.trace_function, cur.profile_function
        finally:
            sys.settrace(None)
            sys.setprofile(None)
        self.assertIs(tf, rec)
        self.assertIs(pf, prof)
        self.assertIsNone(cur.trace_function)
        self.assertIsNone(cur.profile_function)

    def test_current_in_tasklet(self):
        # D-2: the same in a non-main tasklet.
        rec = Recorder()
        seen = []

        def body():
            me = stackless.getcurrent()
            sys.settrace(rec)
            seen.append(me.trace_function)
            sys.settrace(None)
            seen.append(me.trace_function)
            sys.setprofile(rec)
            seen.append(me.profile_function)
            sys.setprofile(None)
            seen.append(me.profile_function)

        self.spawn(body)
        stackless.run()
        self.assertEqual(seen, [rec, None, rec, None])

    def test_set_on_current(self):
        # D-2: setting the attribute on the current tasklet is
        # sys.settrace()/sys.setprofile().
        rec = Recorder()
        cur = stackless.getcurrent()
        try:
            cur.trace_function = rec
            cur.profile_function = rec
            got = (sys.gettrace(), sys.getprofile())
            helper()
        finally:
            sys.settrace(None)
            sys.setprofile(None)
        self.assertEqual(got, (rec, rec))
        self.assertIn("helper", rec.calls())

    def test_read_suspended(self):
        # D-2: reading the saved hooks of a suspended tasklet.
        rec = Recorder()
        prof = Recorder()

        def body():
            sys.settrace(rec)
            sys.setprofile(prof)
            stackless.schedule_remove()
            sys.settrace(None)
            sys.setprofile(None)

        t = self.spawn(body)
        stackless.run()
        self.assertTrue(t.paused)
        self.assertIs(t.trace_function, rec)
        self.assertIs(t.profile_function, prof)
        t.run()
        self.assertFalse(t.alive)

    def test_set_trace_on_suspended(self):
        # D-2: setting trace_function on a suspended tasklet makes the
        # functions it calls after resuming traced.
        rec = Recorder()
        seen = []

        def body():
            helper2()
            stackless.schedule_remove()
            seen.append(sys.gettrace())
            helper()

        t = self.spawn(body)
        stackless.run()
        self.assertIsNone(t.trace_function)
        t.trace_function = rec
        self.assertIs(t.trace_function, rec)
        self.assertIs(sys.gettrace(), self.old_trace)
        t.run()
        self.assertFalse(t.alive)
        self.assertEqual(seen, [rec])
        self.assertEqual(rec.calls(), ["helper"])
        self.assertIn(("helper", "line"), rec.events)

    def test_set_profile_on_suspended(self):
        # D-2: the same for profile_function.
        rec = Recorder()

        def body():
            helper2()
            stackless.schedule_remove()
            helper()

        t = self.spawn(body)
        stackless.run()
        self.assertIsNone(t.profile_function)
        t.profile_function = rec
        self.assertIs(t.profile_function, rec)
        self.assertIs(sys.getprofile(), self.old_profile)
        t.run()
        self.assertEqual(rec.calls(), ["helper"])
        self.assertIn(("helper", "return"), rec.events)

    def test_clear_on_suspended(self):
        # D-2: setting None on a suspended tasklet removes its hook.
        rec = Recorder()

        def body():
            sys.settrace(rec)
            stackless.schedule_remove()
            helper()
            sys.settrace(None)

        t = self.spawn(body)
        stackless.run()
        t.trace_function = None
        self.assertIsNone(t.trace_function)
        t.run()
        self.assertEqual(rec.calls(), [])

    def test_not_alive(self):
        # D-2: non-None on a tasklet that is not alive raises
        # RuntimeError("tasklet is not alive"); None is accepted.
        rec = Recorder()
        dead = self.spawn(helper)
        stackless.run()
        for t in (tasklet(), tasklet(helper), dead):
            self.assertFalse(t.alive)
            for attr in ("trace_function", "profile_function"):
                with self.subTest(t=t, attr=attr):
                    with self.assertRaisesRegex(
                            RuntimeError, r"^tasklet is not alive$"):
                        setattr(t, attr, rec)
                    setattr(t, attr, None)
                    self.assertIsNone(getattr(t, attr))

    def test_current_of_other_thread(self):
        # D-2: the current tasklet of another thread can't be inspected.
        box = {}
        ready = threading.Event()
        go = threading.Event()

        def body():
            box['main'] = stackless.getcurrent()
            ready.set()
            go.wait(TIMEOUT)

        th = threading.Thread(target=body)
        th.start()
        try:
            self.assertTrue(ready.wait(TIMEOUT))
            other = box['main']
            with self.assertRaises(RuntimeError):
                other.trace_function
            with self.assertRaises(RuntimeError):
                other.profile_function
            with self.assertRaises(RuntimeError):
                other.trace_function = None
        finally:
            go.set()
            th.join(TIMEOUT)
        self.assertFalse(th.is_alive())


class ProfilerTest(TracingTestCase):
    """D-1: cProfile must tolerate tasklet switches."""

    def driver(self, n, rounds):
        ch = channel()

        def worker(i):
            for _ in range(rounds):
                helper()
                stackless.schedule()
            if i % 2:
                ch.send(i)
            else:
                ch.receive()

        for i in range(n):
            self.spawn(worker, i)
        return stackless.run()

    def test_runcall_around_run(self):
        # D-1: cProfile.Profile().runcall() around stackless.run() with
        # switching tasklets completes and gives usable stats.
        prof = cProfile.Profile()
        self.assertIsNone(prof.runcall(self.driver, 6, 5))
        self.assertTrue(all(not t.alive for t in self.tasklets))
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("calls").print_stats()
        self.assertIn("driver", out.getvalue())
        self.assertIs(sys.getprofile(), self.old_profile)

    def test_enable_disable_across_switches(self):
        # D-1: enable() in main, tasklets switch, disable() in main.
        prof = cProfile.Profile()
        prof.enable()
        try:
            self.driver(4, 3)
        finally:
            prof.disable()
        self.assertIsInstance(prof.getstats(), list)
        self.assertTrue(all(not t.alive for t in self.tasklets))

    def test_profiler_inside_tasklet(self):
        # D-1: a profiler enabled in one tasklet while others switch.
        def body():
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(3):
                helper()
                stackless.schedule()
            prof.disable()
            return prof

        results = []
        self.spawn(lambda: results.append(body()))
        self.spawn(lambda: [stackless.schedule() for _ in range(3)])
        stackless.run()
        self.assertEqual(len(results), 1)
        out = io.StringIO()
        pstats.Stats(results[0], stream=out).print_stats()
        self.assertIn("helper", out.getvalue())


if __name__ == "__main__":
    unittest.main()
