"""Randomized stress test of tasklets, channels and threads.

Spec ids exercised: T-4, T-6, T-8, T-10, S-2, S-3, S-4, S-12, C-2, C-3,
C-9, C-10, C-11, C-13, X-3, X-4, M-9.

Many tasklets run short random programs (seeded, so each tasklet's
program is the same on every run) of channel sends and receives,
schedule(), schedule_remove(), and insert/run/throw/kill (pending or
not) of other tasklets.  The main
tasklet of every thread involved acts as a drainer: whenever its
runqueue has emptied it serves the channels (receives from blocked
senders, sends to blocked receivers) and re-inserts paused tasklets,
until all tasklets are done.  All loops are bounded by an iteration
count and a deadline.

Victims of throws and kills are only tasklets that are blocked or
paused, checked and hit inside stackless.atomic() (X-4), so that no
exchanged value can be lost in a runnable victim; under that rule every
message is delivered exactly once.  At the end:

* every tasklet either finished or was killed (never both, never none),
  and none is alive;
* every message that a send() completed was received exactly once and
  nothing else was received;
* every channel has balance 0 and every runqueue holds its main
  tasklet alone.
"""

import collections
import itertools
import random
import sys
import threading
import time
import unittest

import stackless
from stackless import channel, tasklet
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


SEED = 20240611
SEEDS = 3               # stress runs per test, with seeds SEED, SEED + 1...
DEADLINE = 20.0         # seconds: a failure, not a normal duration
MAX_ROUNDS = 100000     # drain rounds per thread


class Poke(Exception):
    """Thrown into tasklets by other tasklets."""


class Stress:
    """Shared state of one stress run."""

    def __init__(self, n_channels, seed):
        rnd = random.Random(seed)
        self.channels = []
        for _ in range(n_channels):
            ch = channel()
            ch.preference = rnd.choice((-1, 0, 1))
            ch.schedule_all = rnd.random() < 0.2
            self.channels.append(ch)
        self.tasklets = []      # (tasklet, owner thread id)
        self.status = {}        # tasklet index -> list of outcomes
        self.sent = []          # messages whose send() returned
        self.withdrawn = []     # messages whose send() was killed
        self.received = []
        self.kills = 0
        self.pokes = 0
        self.pokes_caught = 0
        self.errors = []
        self.serial = itertools.count()   # next() is thread-safe

    def message(self, tag):
        return (tag, next(self.serial))

    def program(self, index, seed, length):
        rnd = random.Random(seed)
        ops = []
        for _ in range(length):
            r = rnd.random()
            ch = rnd.randrange(len(self.channels))
            victim = rnd.randrange(1 << 30)
            pending = rnd.random() < 0.5
            if r < 0.34:
                ops.append(("send", ch, None))
            elif r < 0.68:
                ops.append(("receive", ch, None))
            elif r < 0.8:
                ops.append(("schedule", None, None))
            elif r < 0.87:
                ops.append(("pause", None, None))
            elif r < 0.92:
                ops.append(("wake", victim, pending))
            elif r < 0.96:
                ops.append(("poke", victim, pending))
            else:
                ops.append(("kill", victim, pending))
        return ops

    def body(self, index, ops):
        """The code of tasklet number `index`."""
        outcome = self.status[index]
        try:
            for op, arg, flag in ops:
                msg = None
                try:
                    if op == "send":
                        msg = self.message(index)
                        try:
                            self.channels[arg].send(msg)
                        except TaskletExit:
                            self.withdrawn.append(msg)
                            raise
                        self.sent.append(msg)
                    elif op == "receive":
                        self.received.append(self.channels[arg].receive())
                    elif op == "schedule":
                        stackless.schedule()
                    elif op == "pause":
                        stackless.schedule_remove()
                    elif op == "wake":
                        self.wake(arg, flag)
                    elif op == "poke":
                        self.poke(arg, flag)
                    elif op == "kill":
                        self.kill(arg, flag)
                except Poke:
                    # Thrown in while blocked or paused (T-8): a blocked
                    # send is withdrawn; go on with the next operation.
                    self.pokes_caught += 1
                    if msg is not None:
                        self.withdrawn.append(msg)
        except TaskletExit:
            outcome.append("killed")
            raise
        except BaseException as e:
            self.errors.append((index, repr(e)))
            outcome.append("error")
            raise
        outcome.append("finished")

    def pick(self, arg):
        return self.tasklets[arg % len(self.tasklets)][0]

    def wake(self, arg, run):
        # T-4 / T-6: insert() or run() a paused tasklet (ours or not).
        with stackless.atomic():
            t = self.pick(arg)
            if t.paused:
                if run:
                    t.run()
                else:
                    t.insert()

    def victim(self, arg):
        """A blocked or paused tasklet other than us, or None."""
        t = self.pick(arg)
        if t is stackless.getcurrent():
            return None
        if t.alive and (t.blocked or t.paused):
            return t
        return None

    def poke(self, arg, pending):
        # T-8: throw into a blocked or paused tasklet.
        with stackless.atomic():
            t = self.victim(arg)
            if t is not None:
                self.pokes += 1
                t.throw(Poke, pending=pending)

    def kill(self, arg, pending):
        # T-10: kill a blocked or paused tasklet.
        with stackless.atomic():
            t = self.victim(arg)
            if t is not None:
                self.kills += 1
                t.kill(pending=pending)

    def all_done(self, owner=None):
        return all(self.status[i] for i, (t, tid) in enumerate(self.tasklets)
                   if owner is None or tid == owner)

    def drain_once(self):
        """Serve every channel and wake the paused tasklets of this
        thread once; True if anything was done."""
        acted = False
        me = threading.get_ident()
        for ch in self.channels:
            while True:
                with stackless.atomic():
                    if ch.balance > 0:
                        self.received.append(ch.receive())
                    elif ch.balance < 0:
                        msg = self.message("drain")
                        ch.send(msg)
                        self.sent.append(msg)
                    else:
                        break
                acted = True
        for t, tid in self.tasklets:
            with stackless.atomic():
                if tid == me and t.paused:
                    t.insert()
                    acted = True
        return acted

    def drive(self, owner):
        """Main loop of a thread: run, drain, repeat until this thread's
        tasklets are all done.  Returns the number of rounds."""
        deadline = time.monotonic() + DEADLINE
        for rounds in range(MAX_ROUNDS):
            r = stackless.run()
            if r is not None:
                raise AssertionError("run() returned %r" % (r,))
            if self.all_done(owner):
                return rounds
            if not self.drain_once() and stackless.getruncount() == 1:
                # Our tasklets wait for the other thread: let it run.
                time.sleep(0.0005)
            if time.monotonic() > deadline:
                break
        raise AssertionError("stress run did not finish")


class StressTest(unittest.TestCase):

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.addCleanup(self.clean_up)
        self.stress = None

    def clean_up(self):
        stackless.set_schedule_callback(None)
        stackless.set_channel_callback(None)
        stackless.set_error_handler(None)
        if self.stress is not None:
            me = threading.get_ident()
            for t, tid in self.stress.tasklets:
                for _ in range(5):
                    if not t.alive or tid != me or t.is_current:
                        break
                    try:
                        t.kill()
                    except Exception:
                        pass
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)

    def spawn(self, stress, index, seed, length):
        stress.status[index] = []
        ops = stress.program(index, seed, length)
        t = tasklet(stress.body)(index, ops)
        stress.tasklets.append((t, threading.get_ident()))
        return t

    def check_invariants(self, stress):
        self.assertEqual(stress.errors, [])
        for i, (t, tid) in enumerate(stress.tasklets):
            self.assertIn(stress.status[i], (["finished"], ["killed"]),
                          "tasklet %d" % i)
            self.assertFalse(t.alive, "tasklet %d" % i)
            self.assertFalse(t.scheduled, "tasklet %d" % i)
        sent = collections.Counter(stress.sent)
        received = collections.Counter(stress.received)
        self.assertEqual(max(received.values(), default=1), 1)
        self.assertEqual(max(sent.values(), default=1), 1)
        self.assertEqual(received, sent)
        self.assertFalse(set(stress.withdrawn) & set(stress.received))
        self.assertEqual(stress.pokes, stress.pokes_caught)
        for i, ch in enumerate(stress.channels):
            self.assertEqual(ch.balance, 0, "channel %d" % i)
            self.assertIsNone(ch.queue, "channel %d" % i)
        self.assertEqual(stackless.getruncount(), 1)

    def test_one_thread(self):
        # C-13, S-2, S-3, T-8, T-10: random operations in one thread.
        for k in range(SEEDS):
            with self.subTest(seed=SEED + k):
                self.one_thread(SEED + k)

    def one_thread(self, seed):
        stress = self.stress = Stress(12, seed)
        for i in range(300):
            self.spawn(stress, i, seed * 1000 + i, 40)
        start = time.monotonic()
        stress.drive(threading.get_ident())
        self.assertLess(time.monotonic() - start, DEADLINE)
        self.check_invariants(stress)
        # The seeded programs do kill some tasklets and finish others.
        statuses = collections.Counter(s[0] for s in stress.status.values())
        self.assertGreater(statuses["finished"], 0)
        self.assertGreater(statuses["killed"], 0)
        self.assertGreater(stress.pokes, 0)
        self.assertGreater(len(stress.sent), 100)

    def test_many_short_tasklets(self):
        # T-1, S-9: many tasklets that only send and receive in pairs.
        ch = channel()
        got = []
        n = 2000

        def sender(i):
            ch.send(i)

        def receiver():
            got.append(ch.receive())

        rnd = random.Random(SEED)
        order = [sender] * n + [receiver] * n
        rnd.shuffle(order)
        i = 0
        for f in order:
            if f is sender:
                tasklet(f)(i)
                i += 1
            else:
                tasklet(f)()
        stackless.run()
        self.assertEqual(sorted(got), list(range(n)))
        self.assertEqual(ch.balance, 0)
        self.assertEqual(stackless.getruncount(), 1)

    def test_two_threads(self):
        # C-14, S-12: the same with tasklets of two threads
        # sharing the channels and waking, throwing into and killing
        # each other.
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)     # many GIL hand-offs
        try:
            for k in range(SEEDS):
                with self.subTest(seed=SEED + k):
                    self.two_threads(SEED + k)
        finally:
            sys.setswitchinterval(old_interval)

    def two_threads(self, seed):
        n = 150
        stress = self.stress = Stress(8, seed)
        ready = threading.Event()
        go = threading.Event()
        outcome = {}

        def thread_main():
            try:
                for i in range(n, 2 * n):
                    self.spawn(stress, i, seed * 1000 + i, 30)
                ready.set()
                if not go.wait(DEADLINE):
                    raise AssertionError("not started")
                outcome['rounds'] = stress.drive(threading.get_ident())
                outcome['runcount'] = stackless.getruncount()
            except BaseException as e:
                outcome['error'] = e
            finally:
                ready.set()

        for i in range(n):
            self.spawn(stress, i, seed * 1000 + i, 30)
        th = threading.Thread(target=thread_main)
        th.start()
        try:
            self.assertTrue(ready.wait(DEADLINE))
            self.assertNotIn('error', outcome)
            self.assertEqual(len(stress.tasklets), 2 * n)
        finally:
            go.set()
        try:
            stress.drive(threading.get_ident())
            # Keep serving the other thread until it is done too.
            deadline = time.monotonic() + DEADLINE
            while th.is_alive() and time.monotonic() < deadline:
                stress.drain_once()
                stackless.run()
                th.join(0.001)
        finally:
            th.join(DEADLINE)
        self.assertFalse(th.is_alive())
        if 'error' in outcome:
            raise outcome['error']
        self.assertEqual(outcome['runcount'], 1)
        self.check_invariants(stress)
        owners = {tid for _, tid in stress.tasklets}
        self.assertEqual(len(owners), 2)


class ThreadsStressTest(unittest.TestCase):
    """A short run of the stress tool (test.test_stackless.stress): three
    threads, random channel operations, kills and throws, bind_thread,
    preemption, callbacks, generators and with blocks, collections, a
    thread that ends with live tasklets; its invariant checker raises.
    Long runs: python -m test.test_stackless.stress --seconds 3600."""

    def test_rounds(self):
        from test.test_stackless import stress
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            for seed in range(SEED, SEED + 6):
                with self.subTest(seed=seed):
                    r = stress.run_round(seed, n_threads=3, n_tasklets=120)
                    self.assertGreater(len(r.sent), 100)
        finally:
            sys.setswitchinterval(old)
        self.assertEqual(stackless.getruncount(), 1)


if __name__ == "__main__":
    unittest.main()
