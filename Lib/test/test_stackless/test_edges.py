"""Faults at the edges: interpreter shutdown with tasklets in every state
and thread kind, os.fork() with tasklets, signals while blocked or
atomic, recursion exhaustion in tasklets, and recursion-limit changes
while tasklets are suspended.  Misuse and bad luck get an exception or a
clean end, never a crash or a hang."""

import os
import signal
import sys
import textwrap
import threading
import unittest
from test.support import script_helper

import stackless
from test.test_stackless import helpers


def run_script(code, **kwargs):
    """Run code in a fresh interpreter; returns (rc, stdout, stderr)."""
    res = script_helper.run_python_until_end("-c", textwrap.dedent(code),
                                             **kwargs)[0]
    return res.rc, res.out.decode(), res.err.decode()


class ShutdownTest(unittest.TestCase):
    """The interpreter exits with tasklets alive everywhere: blocked,
    paused, runnable, hard-switched (C state below their frames), atomic;
    in the main thread, in non-daemon and in daemon threads."""

    SETUP = """
        import stackless, sys, threading, time

        def log(msg):
            print(msg, flush=True)

        ch = stackless.channel()

        def blocked(name):
            try:
                ch.receive()
            finally:
                log(f"finally {name} blocked")

        def paused(name):
            try:
                stackless.schedule_remove()
            finally:
                log(f"finally {name} paused")

        def hard(name):
            # C state below the frame: a Python function called by C
            # (sorted's key) that blocks.
            def key(x):
                ch.receive()
                return x
            try:
                sorted([1, 2], key=key)
            finally:
                log(f"finally {name} hard")

        def atomic_blocked(name):
            try:
                with stackless.atomic():
                    ch.receive()
            finally:
                log(f"finally {name} atomic")

        def start_all(name):
            for f in (blocked, paused, hard, atomic_blocked):
                stackless.tasklet(f)(name)
            stackless.run()
    """

    def check(self, code, expect_finally):
        rc, out, err = run_script(textwrap.dedent(self.SETUP) + textwrap.dedent(code))
        self.assertEqual(rc, 0, err)
        self.assertNotIn("Fatal Python error", err)
        # A thread whose tasklets are killed at shutdown ends quietly.
        self.assertNotIn("TaskletExit", err)
        self.assertNotIn("Exception in thread", err)
        for line in expect_finally:
            self.assertIn(line, out)
        return out, err

    def test_main_thread(self):
        self.check("""
            start_all("main")
            log("exit")
        """, [f"finally main {k}" for k in
              ("blocked", "paused", "hard", "atomic")])

    def test_non_daemon_thread(self):
        # The thread ends before the interpreter: its tasklets are
        # killed at its end, finally clauses run.
        self.check("""
            th = threading.Thread(target=start_all, args=("thread",))
            th.start()
            th.join()
            log("exit")
        """, [f"finally thread {k}" for k in
              ("blocked", "paused", "hard", "atomic")])

    def test_daemon_thread_still_running(self):
        # A daemon thread whose main tasklet waits for ever when the
        # interpreter exits: no crash, no hang.
        out, err = self.check("""
            def daemon_main():
                start_all("daemon")
                ch2 = stackless.channel()
                ch2.receive()       # waits for ever
            th = threading.Thread(target=daemon_main, daemon=True)
            th.start()
            time.sleep(0.3)
            start_all("main")
            log("exit")
        """, ["exit", "finally main blocked"])

    def test_daemon_thread_running_python_code(self):
        # A daemon thread that used stackless and runs Python code (in
        # its main tasklet) at exit gets TaskletExit there, which its
        # excepthook ignores as it ignores SystemExit.
        self.check("""
            def daemon_main():
                stackless.getcurrent()
                try:
                    while True:
                        time.sleep(0.01)
                finally:
                    log("finally daemon main")
            th = threading.Thread(target=daemon_main, daemon=True)
            th.start()
            time.sleep(0.3)
            log("exit")
        """, ["exit", "finally daemon main"])

    def test_daemon_thread_spinning(self):
        # Tasklets of a daemon thread that keep running (not atomic: an
        # atomic tasklet keeps the GIL, as in the original, and a loop
        # in one stops every thread), and an atomic one blocked.
        self.check("""
            def spin():
                while True:
                    stackless.schedule()
            def daemon_main():
                stackless.tasklet(spin)()
                stackless.tasklet(spin)()
                stackless.tasklet(atomic_blocked)("daemon")
                stackless.run()
            th = threading.Thread(target=daemon_main, daemon=True)
            th.start()
            time.sleep(0.3)
            log("exit")
        """, ["exit"])

    def test_exit_from_a_tasklet(self):
        # sys.exit() in a tasklet other than main ends the program (as
        # in the original, the SystemExit goes to main).
        rc, out, err = run_script(textwrap.dedent(self.SETUP) + textwrap.dedent("""
            def quitter():
                sys.exit(3)
            stackless.tasklet(blocked)("q")
            stackless.tasklet(quitter)()
            stackless.run()
            log("not reached")
        """))
        self.assertEqual(rc, 3, err)
        self.assertNotIn("not reached", out)
        self.assertIn("finally q blocked", out)


@unittest.skipUnless(hasattr(os, "fork"), "needs os.fork()")
class ForkTest(unittest.TestCase):
    """os.fork() in a process with tasklets.  What survives in the
    child: the forking thread's tasklets (all of them, in their states,
    runnable and blocked, with their frames); the other threads' tasklets
    do not run there (their threads are gone), as for threads in CPython;
    channels keep the tasklets of the forking thread that wait on them."""

    def test_child_runs_the_forking_threads_tasklets(self):
        rc, out, err = run_script("""
            import os, stackless, threading
            ch = stackless.channel()
            got = []
            def receiver():
                got.append(ch.receive())
            def counter():
                for i in range(3):
                    got.append(i)
                    stackless.schedule()
            stackless.tasklet(receiver)()
            stackless.run()                    # the receiver blocks
            stackless.tasklet(counter)()
            # A thread with a blocked tasklet of its own.
            other_ch = stackless.channel()
            ready = threading.Event()
            def other():
                stackless.tasklet(other_ch.receive)()
                stackless.run()
                ready.set()
                other_ch.receive()             # main waits for ever
            th = threading.Thread(target=other, daemon=True)
            th.start()
            ready.wait()
            pid = os.fork()
            if pid == 0:
                ch.send("child")
                stackless.run()
                print("child", got, ch.balance, flush=True)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            ch.send("parent")
            stackless.run()
            print("parent", got, os.waitstatus_to_exitcode(status),
                  flush=True)
        """)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("Fatal", err)
        self.assertIn("child ['child', 0, 1, 2] 0", out)
        self.assertIn("parent ['parent', 0, 1, 2] 0", out)


class SignalTest(helpers.StacklessTestCase):

    @unittest.skipUnless(hasattr(signal, "pthread_kill"), "pthread_kill")
    def test_keyboard_interrupt_while_atomic_and_blocked(self):
        # SIGINT while the main tasklet waits, atomic, in a channel for a
        # tasklet of another thread: KeyboardInterrupt comes out of the
        # receive; the channel is as before.
        ch = stackless.channel()
        main_id = threading.get_ident()

        def poke():
            import time
            time.sleep(0.2)
            signal.pthread_kill(main_id, signal.SIGINT)

        th = threading.Thread(target=poke)
        th.start()
        try:
            with self.assertRaises(KeyboardInterrupt):
                with stackless.atomic():
                    ch.receive()
        finally:
            th.join()
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.getcurrent().atomic)

    def test_keyboard_interrupt_in_atomic_tasklet(self):
        # A signal handler's exception raised in an atomic tasklet other
        # than main: it propagates there (main gets it), nothing hangs.
        ch = stackless.channel()
        got = []

        def victim():
            with stackless.atomic():
                try:
                    signal.raise_signal(signal.SIGINT)
                except KeyboardInterrupt:
                    got.append("caught")
                    ch.send("after")

        self.spawn(victim)
        self.assertEqual(ch.receive(), "after")
        self.assertEqual(got, ["caught"])


class RecursionTest(helpers.StacklessTestCase):

    def recurse(self, n):
        return self.recurse(n + 1) + 1

    def test_recursion_exhausted_in_tasklet(self):
        # RecursionError in a tasklet, soft (Python calls only) and with
        # C state (calls through a builtin); the tasklet ends with it and
        # the next one runs normally.
        results = []

        def soft():
            try:
                self.recurse(0)
            except RecursionError:
                results.append("soft")

        def through_c():
            def f(x):
                return sorted([x], key=f)
            try:
                f(0)
            except RecursionError:
                results.append("c")

        for func in (soft, through_c, soft):
            self.spawn(func)
        stackless.run()
        self.assertEqual(results, ["soft", "c", "soft"])

    def test_recursion_exhausted_then_switch(self):
        # Deep in the recursion the tasklet blocks; others run; it comes
        # back and unwinds.
        ch = stackless.channel()
        depth = []

        def deep(n):
            if n == 0:
                ch.receive()
                return 0
            return deep(n - 1) + 1

        def worker():
            depth.append(deep(sys.getrecursionlimit() // 2))

        self.spawn(worker)
        stackless.run()
        self.spawn(lambda: self.assertRaises(RecursionError,
                                             self.recurse, 0))
        stackless.run()
        ch.send(None)
        self.assertEqual(depth, [sys.getrecursionlimit() // 2])

    def test_limit_changed_while_suspended(self):
        # A tasklet suspended 300 frames deep; the limit is lowered
        # below its depth, then raised again: it resumes and unwinds; new
        # calls in it obey the limit in force.
        ch = stackless.channel()
        out = []

        def deep(n):
            if n == 0:
                ch.receive()
                try:
                    self.recurse(0)
                except RecursionError:
                    out.append("limit")
                return 0
            return deep(n - 1) + 1

        old = sys.getrecursionlimit()
        self.spawn(lambda: out.append(deep(300)))
        stackless.run()
        try:
            sys.setrecursionlimit(200)
            ch.send(None)
        finally:
            sys.setrecursionlimit(old)
        self.assertEqual(out, ["limit", 300])


if __name__ == "__main__":
    unittest.main()
