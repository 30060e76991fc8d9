"""Randomized stress of tasklets across OS threads, with an invariant
checker.  A tool for long runs, and the engine of test_stress's short
one:

    python -m test.test_stackless.stress [--seconds S] [--threads N]
                                         [--seed SEED] [--tasklets N]

Runs one round after another, with seeds SEED, SEED + 1, ..., for S
seconds (default 60), and prints a line per round; it stops at the first
round that breaks an invariant, printing the seed (--seed SEED --rounds 1
replays its programs; the interleaving of the threads is not
reproducible).  Exit status 0 if every round passed.

A round: N threads (default 3) each run tasklets with random programs
(seeded) of channel operations -- send, receive, send_exception, close
and reopen -- schedule(), pauses, throw() and kill() of tasklets of the
same thread, kills and throws of tasklets of other threads parked on a
private channel, bind_thread() to another thread, atomic blocks,
generators and with blocks in the call chain, busy loops, and gc.collect().
Each thread's main tasklet drives with run(budget), a random small tick
budget (preemption), serves the channels and wakes paused tasklets until
all tasklets of the round are done.  Channel and schedule callbacks are
installed in some rounds.  Each round also starts a thread that ends
with tasklets alive (blocked, paused, runnable): they must be killed
with it, their finally clauses run.

Invariants checked after each round:

* every message whose send() returned was received exactly once, and
  nothing else was received (a send that raised delivered nothing);
* every tasklet finished or was killed, exactly once, and none is alive
  or referenced any more (weak references, after a collection);
* every channel has balance 0; every runqueue holds its main tasklet
  alone;
* every throw() into a tasklet was caught by it;
* the tasklets of the ended thread all ran their finally.
"""

import argparse
import collections
import contextlib
import gc
import itertools
import queue
import random
import sys
import threading
import time
import weakref

import stackless

DEADLINE = 60.0             # seconds for one round: past it, a failure


class Poke(Exception):
    """Thrown into a tasklet by another, or sent with send_exception."""


class Migrate(Exception):
    pass


class InvariantError(AssertionError):
    pass


class Round:
    """The shared state of one round."""

    def __init__(self, seed, n_threads, n_tasklets, length=40):
        self.seed = seed
        rnd = self.rnd = random.Random(seed)
        self.n_threads = n_threads
        self.n_tasklets = n_tasklets
        self.length = length
        self.channels = []
        for _ in range(8):
            ch = stackless.channel()
            ch.preference = rnd.choice((-1, 0, 1))
            ch.schedule_all = rnd.random() < 0.15
            self.channels.append(ch)
        self.lock = threading.Lock()
        self.serial = itertools.count()
        self.sent = []              # messages whose send() returned
        self.refused = []           # messages whose send() raised
        self.received = []
        # tasklet index -> list of outcomes; every index from the start
        # (threads spawn theirs concurrently).
        per = n_tasklets // n_threads
        self.outcome = {i: [] for i in range(per * n_threads)}
        self.refs = []              # weak references to every tasklet
        self.tasklets = {}          # index -> tasklet (until the end)
        self.throws = 0
        self.caught = 0
        self.errors = []
        self.thread_ids = []
        self.inbox = {}             # thread id -> SimpleQueue of migrants
        self.parking = {}           # thread id -> channel nobody sends on
        self.parked = set()         # tasklets in op_park()
        self.callbacks = rnd.random() < 0.5
        self.callback_calls = 0
        self.ended_finally = 0
        self.ended_count = 0

    # --- the programs --------------------------------------------------

    OPS = (("send", 22), ("receive", 22), ("send_exception", 3),
           ("close", 1), ("schedule", 8), ("pause", 5), ("wake", 4),
           ("throw", 3), ("kill", 2), ("park", 2), ("foreign", 2),
           ("migrate", 2), ("atomic", 4), ("gen", 4), ("with", 4),
           ("busy", 6), ("gc", 0.3))

    def program(self, seed):
        rnd = random.Random(seed)
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        return [(rnd.choices(names, weights)[0], rnd.randrange(1 << 30),
                 rnd.random() < 0.5) for _ in range(self.length)]

    def message(self, index):
        return (index, next(self.serial))

    def body(self, index, ops):
        outcome = self.outcome[index]
        try:
            self.run_ops(index, ops)
        except TaskletExit:
            outcome.append("killed")
            raise
        except BaseException as exc:
            self.errors.append((index, repr(exc)))
            outcome.append("error")
            raise
        outcome.append("finished")

    def run_ops(self, index, ops):
        it = iter(ops)
        for op in it:
            name = op[0]
            if name == "atomic":
                with stackless.atomic():
                    for sub in itertools.islice(it, 2):
                        self.do(index, sub)
            elif name == "gen":
                for _ in self.in_generator(index, itertools.islice(it, 2)):
                    pass
            elif name == "with":
                with Manager(self, index):
                    for sub in itertools.islice(it, 1):
                        self.do(index, sub)
            else:
                self.do(index, op)

    def in_generator(self, index, ops):
        for op in ops:
            self.do(index, op)
            yield

    def do(self, index, op):
        name, arg, flag = op
        try:
            getattr(self, "op_" + name)(index, arg, flag)
        except Poke:
            # Thrown in (or sent) while blocked or paused: counted where
            # it was thrown; go on with the next operation.
            self.note_caught()

    @contextlib.contextmanager
    def locked(self):
        # The lock of the shared counters, taken atomically: a tasklet
        # preempted while it holds it would block its whole thread on
        # the next tasklet that takes it.
        with stackless.atomic():
            with self.lock:
                yield

    def note_caught(self):
        with self.locked():
            self.caught += 1

    def channel(self, arg):
        return self.channels[arg % len(self.channels)]

    def send_recorded(self, msg, send, *args):
        # send(*args) of msg, recorded as sent or refused; True if sent.
        # The caller holds atomic: no preemption between the send and its
        # records (a preempted tasklet is paused, and could be chosen as a
        # victim), its own included.
        try:
            send(*args)
        except ValueError:
            self.refused.append(msg)        # closed
            return False
        except (Poke, TaskletExit):
            self.refused.append(msg)
            raise
        self.sent.append(msg)
        return True

    def op_send(self, index, arg, flag):
        ch = self.channel(arg)
        msg = self.message(index)
        with stackless.atomic():
            self.send_recorded(msg, ch.send, msg)

    def op_send_exception(self, index, arg, flag):
        ch = self.channel(arg)
        msg = self.message(index)
        with stackless.atomic():
            if self.send_recorded(msg, ch.send_exception, Poke, msg):
                with self.locked():
                    self.throws += 1        # the receiver catches it

    def op_receive(self, index, arg, flag):
        ch = self.channel(arg)
        with stackless.atomic():
            try:
                value = ch.receive()
            except Poke as exc:
                if exc.args and isinstance(exc.args[0], tuple):
                    self.received.append(exc.args[0])
                raise
            except ValueError:
                return                  # closed
            self.received.append(value)

    def op_close(self, index, arg, flag):
        # Closed for a moment: operations that find nobody raise
        # ValueError meanwhile; the drainer reopens it.
        self.channel(arg).close()

    # Nested in a composite operation (run_ops() handles the outer one).
    def op_atomic(self, index, arg, flag):
        with stackless.atomic():
            self.op_busy(index, arg, flag)

    def op_gen(self, index, arg, flag):
        for _ in self.in_generator(index, [("schedule", arg, flag)]):
            pass

    def op_with(self, index, arg, flag):
        with Manager(self, index):
            pass

    def op_schedule(self, index, arg, flag):
        stackless.schedule()

    def op_pause(self, index, arg, flag):
        stackless.schedule_remove()

    def op_busy(self, index, arg, flag):
        total = 0
        for i in range(arg % 200):
            total += i * i
        return total

    def op_gc(self, index, arg, flag):
        gc.collect(arg % 3)

    def same_thread_victim(self, arg):
        # A tasklet of this thread, not us, blocked or paused.  Checked
        # and hit within atomic: it cannot become runnable meanwhile
        # (only tasklets of this thread wake it... or a partner of
        # another thread, which is why a blocked one is hit only when it
        # waits on the parking channel of this thread).
        me = stackless.getcurrent()
        t = self.tasklets.get(arg % max(1, len(self.tasklets)))
        if t is None or t is me or not t.alive or t.thread_id != me.thread_id:
            return None
        if t.paused and not t.blocked:
            return t
        if t.blocked and t in self.parked:
            return t
        return None

    def op_wake(self, index, arg, flag):
        with stackless.atomic():
            t = self.same_thread_victim(arg)
            if t is not None and t.paused and not t.blocked:
                t.run() if flag else t.insert()

    def op_throw(self, index, arg, flag):
        with stackless.atomic():
            t = self.same_thread_victim(arg)
            if t is not None:
                with self.locked():
                    self.throws += 1
                t.throw(Poke, pending=flag)

    def op_kill(self, index, arg, flag):
        with stackless.atomic():
            t = self.same_thread_victim(arg)
            if t is not None:
                t.kill(pending=flag)

    def op_park(self, index, arg, flag):
        # Wait on this thread's parking channel, where only the drainer
        # (at the end) or a foreign throw/kill gets us out.
        ch = self.parking[threading.get_ident()]
        me = stackless.getcurrent()
        self.parked.add(me)
        try:
            value = ch.receive()
        finally:
            self.parked.discard(me)
        if value != "release":
            raise InvariantError(f"parking got {value!r}")

    def op_foreign(self, index, arg, flag):
        # Throw into or kill a tasklet of another thread parked there.
        tids = [t for t in self.thread_ids if t != threading.get_ident()]
        if not tids:
            return
        ch = self.parking[tids[arg % len(tids)]]
        with self.locked():
            t = ch.queue
            if t is None:
                return
            if flag:
                self.throws += 1
                t.throw(Poke, pending=True)
            else:
                t.kill(pending=True)

    def op_migrate(self, index, arg, flag):
        # Pause; our thread's main tasklet binds us to another thread.
        me = stackless.getcurrent()
        tids = [t for t in self.thread_ids if t != me.thread_id]
        if not tids:
            return
        self.migrants[me.thread_id].put((me, tids[arg % len(tids)]))
        stackless.schedule_remove()

    # --- the drivers ------------------------------------------------------

    @staticmethod
    def parking_channel():
        ch = stackless.channel()
        ch.preference = 1
        return ch

    def spawn(self, index):
        ops = self.program(self.seed * 100003 + index)
        t = stackless.tasklet(self.body)(index, ops)
        self.tasklets[index] = t
        self.refs.append(weakref.ref(t))
        return t

    def mine(self):
        me = threading.get_ident()
        return [t for t in list(self.tasklets.values())
                if t.thread_id == me]

    def all_done(self):
        return all(self.outcome[i] for i in self.outcome)

    def drain(self, rnd):
        """Serve the channels and wake this thread's paused tasklets."""
        me = threading.get_ident()
        acted = False
        for ch in self.channels:
            while True:
                with stackless.atomic():
                    if ch.closing and ch.balance == 0:
                        ch.open()
                    if ch.balance > 0:
                        try:
                            value = ch.receive()
                        except Poke as exc:
                            value = exc.args[0]
                            self.note_caught()
                        self.received.append(value)
                    elif ch.balance < 0:
                        msg = self.message("drain")
                        ch.send(msg)
                        self.sent.append(msg)
                    else:
                        break
                acted = True
        q = self.migrants[me]
        while True:
            try:
                t, target = q.get_nowait()
            except queue.Empty:
                break
            with stackless.atomic():
                if t.alive and t.paused and not t.blocked:
                    try:
                        t.bind_thread(target)
                    except (RuntimeError, ValueError):
                        # A C stack, or a thread that does not run
                        # tasklets yet: it cannot move there.
                        t.insert()
                    else:
                        self.inbox[target].put(t)
            acted = True
        inbox = self.inbox[me]
        while True:
            try:
                t = inbox.get_nowait()
            except queue.Empty:
                break
            with stackless.atomic():
                if t.alive and t.paused and not t.blocked:
                    t.insert()
            acted = True
        for t in self.mine():
            with stackless.atomic():
                if t.alive and t.paused and not t.blocked:
                    t.insert()
                    acted = True
        if self.quiet_since is not None and time.monotonic() > \
                self.quiet_since + 0.05:
            # Everything else is done: release the parked tasklets.  The
            # lock: a foreign kill must not take the receiver between the
            # look and the send (which would block).  Preference 1: the
            # send does not switch while the lock is held.
            ch = self.parking[me]
            while True:
                with self.locked():
                    if ch.balance >= 0:
                        break
                    ch.send("release")
                acted = True
        return acted

    def drive(self, rnd):
        """The main loop of a thread: run with preemption and drain until
        every tasklet of the round is done."""
        deadline = time.monotonic() + DEADLINE
        me = threading.get_ident()
        idle_rounds = 0
        while True:
            budget = rnd.choice((1, 2, 5, 20, 100, 1000, 0))
            t = stackless.run(budget) if budget else stackless.run()
            if t is not None and t.alive and not t.scheduled:
                t.insert()              # preempted
            if self.all_done():
                return
            acted = self.drain(rnd)
            if not acted and stackless.getruncount() == 1:
                idle_rounds += 1
                if idle_rounds > 50 and self.quiet_since is None:
                    self.quiet_since = time.monotonic()
                time.sleep(0.0005)
            else:
                idle_rounds = 0
            failed = [e for e in self.errors if str(e[0]).startswith("thread")]
            if time.monotonic() > deadline or failed:
                alive = [(i, self.tasklets.get(i)) for i in self.outcome
                         if not self.outcome[i]]
                raise InvariantError(
                    f"round did not finish: thread {me}, not done: "
                    f"{alive[:10]}; errors: {self.errors[:5]}")

    def thread_main(self, k, ready, go, failures):
        try:
            me = threading.get_ident()
            rnd = random.Random(self.seed * 31 + k)
            self.parking[me] = self.parking_channel()
            self.inbox[me] = queue.SimpleQueue()
            self.migrants[me] = queue.SimpleQueue()
            self.thread_ids.append(me)
            ready.release()
            go.wait()
            per = self.n_tasklets // self.n_threads
            for i in range(k * per, (k + 1) * per):
                self.spawn(i)
            self.drive(rnd)
        except BaseException as exc:
            failures.append((k, exc))
            self.errors.append((f"thread {k}", repr(exc)))

    def ending_thread(self):
        """A thread that ends with tasklets alive in several states (and
        some never started): the started ones must run their finally."""
        ch = stackless.channel()

        def blocked():
            ch.receive()

        def paused():
            stackless.schedule_remove()

        def runnable():
            while True:
                stackless.schedule()

        def wrap(f):
            # Counted under atomic, with the flag: a kill may come at any
            # tick, before the count or after it.
            counted = False
            try:
                with self.locked():
                    self.ended_count += 1
                    counted = True
                f()
            finally:
                if counted:
                    with self.locked():
                        self.ended_finally += 1

        def main():
            for f in (blocked, paused, runnable) * 3:
                stackless.tasklet(wrap)(f)
            # Some start; the runnable ones spin, yielding, so only a
            # total budget stops run().
            stackless.run(50, totaltimeout=True)

        th = threading.Thread(target=main)
        th.start()
        return th

    def run(self):
        cb_old = (None, None)
        if self.callbacks:
            def count(*args):
                self.callback_calls += 1
            cb_old = (stackless.set_schedule_callback(count),
                      stackless.set_channel_callback(count))
        self.migrants = {}
        self.quiet_since = None
        failures = []
        ready = threading.Semaphore(0)
        go = threading.Event()
        main_id = threading.get_ident()
        threads = []
        try:
            # Thread 0 is the calling thread.
            self.parking[main_id] = self.parking_channel()
            self.inbox[main_id] = queue.SimpleQueue()
            self.migrants[main_id] = queue.SimpleQueue()
            self.thread_ids.append(main_id)
            for k in range(1, self.n_threads):
                th = threading.Thread(target=self.thread_main,
                                      args=(k, ready, go, failures))
                th.start()
                threads.append(th)
            for _ in threads:
                ready.acquire()
            ender = self.ending_thread()
            go.set()
            per = self.n_tasklets // self.n_threads
            for i in range(per):
                self.spawn(i)
            self.drive(random.Random(self.seed * 31))
            # Keep serving the others until they are done.
            deadline = time.monotonic() + DEADLINE
            while any(th.is_alive() for th in threads):
                self.drain(self.rnd)
                stackless.run()
                for th in threads:
                    th.join(0.001)
                if time.monotonic() > deadline:
                    raise InvariantError("threads did not finish")
            ender.join(DEADLINE)
        finally:
            go.set()
            for th in threads:
                th.join(DEADLINE)
            if self.callbacks:
                stackless.set_schedule_callback(cb_old[0])
                stackless.set_channel_callback(cb_old[1])
        if failures:
            raise InvariantError(f"thread failures: {failures}")
        self.check()

    def check(self):
        if self.errors:
            raise InvariantError(f"errors in tasklets: {self.errors[:5]}")
        for i, outcome in self.outcome.items():
            if outcome not in (["finished"], ["killed"]):
                raise InvariantError(f"tasklet {i}: outcome {outcome}")
        sent = collections.Counter(self.sent)
        received = collections.Counter(self.received)
        if sent and max(sent.values()) > 1:
            raise InvariantError("a message was sent twice")
        if received and max(received.values()) > 1:
            dup = [m for m, n in received.items() if n > 1]
            raise InvariantError(f"received twice: {dup[:5]}")
        if received != sent:
            lost = list((sent - received).elements())
            extra = list((received - sent).elements())
            raise InvariantError(f"lost {lost[:5]} ({len(lost)}), "
                                 f"not sent {extra[:5]} ({len(extra)})")
        if set(self.refused) & set(self.received):
            raise InvariantError("a refused message was received")
        if self.throws != self.caught:
            raise InvariantError(f"{self.throws} throws, "
                                 f"{self.caught} caught")
        for i, ch in enumerate(self.channels):
            if ch.balance != 0:
                raise InvariantError(f"channel {i}: balance {ch.balance}")
        for tid, ch in self.parking.items():
            if ch.balance != 0:
                raise InvariantError(f"parking of {tid}: {ch.balance}")
        if stackless.getruncount() != 1:
            raise InvariantError(f"runcount {stackless.getruncount()}")
        if self.ended_finally != self.ended_count:
            raise InvariantError(f"ended thread: {self.ended_finally} of "
                                 f"{self.ended_count} finally clauses")
        # A migrant that died before its thread's drainer came to it may
        # still sit in a queue.
        for q in list(self.migrants.values()) + list(self.inbox.values()):
            while True:
                try:
                    t = q.get_nowait()[0] if q in self.migrants.values() \
                        else q.get_nowait()
                except queue.Empty:
                    break
                if isinstance(t, stackless.tasklet) and t.alive:
                    raise InvariantError(f"a migrant is alive: {t}")
        # (The last migrant taken must not stay referenced by this frame,
        # whose locals the collector's referrers do not show.)
        t = q = None
        self.tasklets.clear()
        gc.collect()
        alive = [r() for r in self.refs if r() is not None]
        if alive:
            holders = [type(r).__name__ + (f" {r!r:.80}" if isinstance(
                r, (list, dict, tuple)) else "")
                for r in gc.get_referrers(alive[0])]
            raise InvariantError(f"{len(alive)} tasklets still referenced:"
                                 f" {alive[:3]}, by {holders[:5]}")

    def summary(self):
        kinds = collections.Counter(o[0] for o in self.outcome.values())
        return (f"{len(self.outcome)} tasklets ({kinds['finished']} "
                f"finished, {kinds['killed']} killed), {len(self.sent)} "
                f"messages, {self.throws} throws, callbacks "
                f"{'on' if self.callbacks else 'off'}")


class Manager:
    """A with block whose __enter__ and __exit__ switch."""

    def __init__(self, round_, index):
        self.round = round_

    def __enter__(self):
        stackless.schedule()
        return self

    def __exit__(self, *exc):
        stackless.schedule()
        return False


def run_round(seed, n_threads=3, n_tasklets=150):
    r = Round(seed, n_threads, n_tasklets)
    r.run()
    return r


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--tasklets", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)         # many GIL hand-offs
    start = time.monotonic()
    n = 0
    try:
        for seed in itertools.count(args.seed):
            if args.rounds is not None and n >= args.rounds:
                break
            if args.rounds is None and time.monotonic() - start > \
                    args.seconds:
                break
            t0 = time.monotonic()
            try:
                r = run_round(seed, args.threads, args.tasklets)
            except InvariantError as exc:
                print(f"seed {seed}: FAILED: {exc}", flush=True)
                return 1
            n += 1
            print(f"seed {seed}: ok in {time.monotonic() - t0:.2f} s: "
                  f"{r.summary()}", flush=True)
    finally:
        sys.setswitchinterval(old)
    print(f"{n} rounds in {time.monotonic() - start:.0f} s, seeds "
          f"{args.seed}..{args.seed + n - 1}: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
