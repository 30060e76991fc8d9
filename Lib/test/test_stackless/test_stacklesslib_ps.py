"""stacklesslib.ps(): every tasklet of every thread, its state, what it
waits on and its stack; install() and python -m stacklesslib.ps."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import stackless
import stacklesslib
from stacklesslib import _hub
from stacklesslib import ps as psmod

from test.test_stackless.helpers import drive_hub, kill_all


drive = drive_hub


class Gate:
    """A lock-like object of the user's that owns a channel."""

    def __init__(self):
        self.channel = stackless.channel()

    def wait(self):
        return self.channel.receive()


def sleeping_function():
    stacklesslib.sleep(30)


def fd_waiting_function(fd):
    stacklesslib.wait_readable(fd, timeout=40)


def gate_waiting_function(gate):
    gate.wait()


def bare_channel_function(ch):
    ch.receive()


def timed_channel_function(ch):
    with stacklesslib.timeout(50):
        ch.receive()


def runnable_function():
    stackless.schedule()


class TestPs(unittest.TestCase):

    def setUp(self):
        self.tasklets = []
        self.addCleanup(self.cleanup)

    def spawn(self, func, *args):
        t = stackless.tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def cleanup(self):
        for t in self.tasklets:
            kill_all(t)
        drive()

    def info_of(self, infos, t):
        found = [i for i in infos if i.tasklet is t]
        self.assertEqual(len(found), 1, infos)
        return found[0]

    def stack_names(self, info):
        return [f.name for f in info.stack]

    def test_states_waits_and_stacks(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        gate = Gate()
        ch = stackless.channel()
        ch2 = stackless.channel()
        sleeper = self.spawn(sleeping_function)
        fdwaiter = self.spawn(fd_waiting_function, r)
        gated = self.spawn(gate_waiting_function, gate)
        bare = self.spawn(bare_channel_function, ch)
        timed = self.spawn(timed_channel_function, ch2)
        paused = stackless.tasklet(runnable_function)()
        self.tasklets.append(paused)
        stackless.schedule()        # all of them block
        paused.remove()
        runnable = self.spawn(runnable_function)
        now = time.monotonic()
        infos = stacklesslib.ps()
        me = self.info_of(infos, stackless.getcurrent())
        self.assertEqual(me.state, "running")
        self.assertTrue(me.is_main)
        self.assertEqual(me.thread_id, threading.get_ident())
        self.assertEqual(self.stack_names(me)[-1],
                         "test_states_waits_and_stacks")

        i = self.info_of(infos, sleeper)
        self.assertEqual(i.state, "blocked")
        self.assertEqual(i.waits_on, "sleep")
        self.assertTrue(now + 25 < i.deadline <= now + 30.1)
        self.assertIn("sleeping_function", self.stack_names(i))

        i = self.info_of(infos, fdwaiter)
        self.assertEqual(i.waits_on, f"fd {r} readable with a timeout")
        self.assertTrue(now + 35 < i.deadline <= now + 40.1)
        self.assertIn("fd_waiting_function", self.stack_names(i))

        i = self.info_of(infos, gated)
        self.assertIn(f"{__name__}.Gate at {id(gate):#x}", i.waits_on)
        self.assertIsNone(i.deadline)
        self.assertEqual(self.stack_names(i)[-2:],
                         ["gate_waiting_function", "wait"])

        i = self.info_of(infos, bare)
        self.assertEqual(i.waits_on, repr(ch))

        i = self.info_of(infos, timed)
        self.assertIn("stacklesslib.timeout(50)", i.waits_on)
        self.assertTrue(now + 45 < i.deadline <= now + 50.1)

        self.assertEqual(self.info_of(infos, paused).state, "paused")
        i = self.info_of(infos, runnable)
        self.assertEqual(i.state, "runnable")
        self.assertIsNone(i.waits_on)

        i = self.info_of(infos, _hub.get_hub().tasklet)
        self.assertEqual(i.waits_on, "(it is the hub of its thread)")

        text = psmod.format()
        self.assertIn("sleeping_function", text)
        self.assertIn(f"waits on fd {r} readable", text)
        self.assertIn("(main)", text)

    def test_waits_on_the_package_locks_and_queues(self):
        # A tasklet blocked in a lock, queue, event, semaphore or condition
        # of the package waits on that object, not on the waiter object
        # that holds its channel.
        lock = stacklesslib.Lock()
        lock.acquire()
        self.addCleanup(lock.release)
        cond = stacklesslib.Condition()

        def cond_wait():
            with cond:
                cond.wait()

        objs = {
            "Lock": lock,
            "Queue": stacklesslib.Queue(),
            "Event": stacklesslib.Event(),
            "Semaphore": stacklesslib.Semaphore(0),
            "Condition": cond,
        }
        waits = {
            "Lock": lock.acquire,
            "Queue": objs["Queue"].get,
            "Event": objs["Event"].wait,
            "Semaphore": objs["Semaphore"].acquire,
            "Condition": cond_wait,
        }
        ts = {name: self.spawn(f) for name, f in waits.items()}
        stackless.schedule()
        infos = stacklesslib.ps()
        for name, t in ts.items():
            with self.subTest(name=name):
                i = self.info_of(infos, t)
                self.assertEqual(i.state, "blocked")
                self.assertIn(f".{name} at {id(objs[name]):#x}", i.waits_on)

    def test_other_thread(self):
        ch = stackless.channel()
        ready = threading.Event()
        info = {}

        def thread_main():
            # The thread's main tasklet blocks, until main here sends.
            info["id"] = threading.get_ident()
            info["t"] = stackless.getcurrent()
            ready.set()
            bare_channel_function(ch)

        th = threading.Thread(target=thread_main)
        th.start()
        try:
            self.assertTrue(ready.wait(30))
            deadline = time.monotonic() + 30
            while not info["t"].blocked:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.001)
            infos = stacklesslib.ps()
            i = self.info_of(infos, info["t"])
            self.assertEqual(i.thread_id, info["id"])
            self.assertEqual(i.state, "blocked")
            self.assertTrue(i.is_main)
            self.assertEqual(i.waits_on, repr(ch))
            self.assertIn("bare_channel_function", self.stack_names(i))
        finally:
            ch.send(None)
            th.join()

    def test_install_and_command(self):
        program = textwrap.dedent("""
            import signal, sys, stackless, stacklesslib
            def napping_tasklet():
                stacklesslib.sleep(600)
            stacklesslib.ps.install(signal.SIGUSR1, file=sys.stdout)
            stackless.tasklet(napping_tasklet)()
            print("ready", flush=True)
            stacklesslib.sleep(600)
            """)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON")}
        proc = subprocess.Popen([sys.executable, "-c", program],
                                stdout=subprocess.PIPE, text=True, env=env)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.assertEqual(proc.stdout.readline(), "ready\n")
        out = subprocess.run([sys.executable, "-m", "stacklesslib.ps",
                              str(proc.pid)], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = []
        timer = threading.Timer(60, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                if "napping_tasklet" in line:
                    break
        finally:
            timer.cancel()
        text = "".join(lines)
        self.assertIn("3 tasklets", text)     # main, napping, the hub
        self.assertIn("waits on sleep", text)
        self.assertIn("napping_tasklet", text)

    def test_command_bad_input(self):
        for args in ([], ["notapid"], ["1", "SIGNOSUCH"]):
            out = subprocess.run([sys.executable, "-m", "stacklesslib.ps",
                                  *args], capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(out.returncode, 2, args)
            self.assertTrue(out.stderr)

    def test_install_uninstall(self):
        before = signal.getsignal(signal.SIGUSR2)
        psmod.install(signal.SIGUSR2)
        self.assertIsNot(signal.getsignal(signal.SIGUSR2), before)
        psmod.uninstall(signal.SIGUSR2)
        self.assertIs(signal.getsignal(signal.SIGUSR2), before)


if __name__ == "__main__":
    unittest.main()
