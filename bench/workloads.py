"""The workloads of the benchmark suite, each run in a fresh process by
bench/run.py:

    python bench/workloads.py NAME [SCALE]

Prints one JSON object: {"name", "unit", "runs": [value per run]}.
Timings are ns per operation; memory is bytes of RSS per tasklet.
"""

import json
import os
import sys
import time
from itertools import repeat

RUNS = 7


def timed(fn, n, runs=RUNS):
    """ns per operation of fn(n), for each of `runs` runs (one warm-up)."""
    fn(min(n, 1000))
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn(n)
        out.append((time.perf_counter_ns() - t0) / n)
    return out


# --- the unit: a plain Python function call ---------------------------
#
# Every timed benchmark loops as timeit does, over itertools.repeat(), and
# is timed per iteration of its loop, the loop included: the unit is the
# figure `python -m timeit -s "def f(): pass" "f()"` gives.

def call_loop(n):
    def f():
        pass
    for _ in repeat(None, n):
        f()


def empty_loop(n):
    for _ in repeat(None, n):
        pass


def call_net(n, runs=RUNS, rounds=50):
    """ns per call, net of the loop around it (for reference).  Each run
    alternates the loop with the call and the empty loop in `rounds`
    slices, and takes the fastest slice of each: the speed of the machine
    drifts over seconds, and a difference of two times is only as good as
    both."""
    call_loop(1000)
    empty_loop(1000)
    m = max(1000, n // rounds)
    out = []
    for _ in range(runs):
        best_call = best_empty = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            call_loop(m)
            t1 = time.perf_counter_ns()
            empty_loop(m)
            t2 = time.perf_counter_ns()
            best_call = min(best_call, t1 - t0)
            best_empty = min(best_empty, t2 - t1)
        out.append((best_call - best_empty) / m)
    return out


# --- tasklets ---------------------------------------------------------

def pingpong(n):
    """n messages between two tasklets: a send, a receive, two switches
    (the receiver runs first, then blocks again), and an iteration of
    each tasklet's loop."""
    import stackless
    ch = stackless.channel()

    def ping():
        for _ in repeat(None, n):
            ch.send(None)

    def pong():
        for _ in repeat(None, n):
            ch.receive()

    stackless.tasklet(ping)()
    stackless.tasklet(pong)()
    stackless.run()


def pingpong_cached(n):
    """The same, with send and receive bound once and kept in locals (a
    classic speed idiom)."""
    import stackless
    ch = stackless.channel()

    def ping():
        send = ch.send
        for _ in repeat(None, n):
            send(None)

    def pong():
        receive = ch.receive
        for _ in repeat(None, n):
            receive()

    stackless.tasklet(ping)()
    stackless.tasklet(pong)()
    stackless.run()


def pingpong_loops(n):
    """What ping-pong costs without tasklets: its two loops, each with a
    call of a C method where ping-pong sends or receives, run one after
    the other (per message: an iteration of each)."""
    ch = {}
    done = []

    def ping():
        for _ in repeat(None, n):
            ch.get(None)

    def pong():
        for _ in repeat(None, n):
            done.clear()

    ping()
    pong()


def ring(n, size=1000):
    """A token passed n times from tasklet to tasklet in a chain of
    `size` (n // size laps): ns per hop."""
    import stackless
    chans = [stackless.channel() for _ in range(size + 1)]

    def node(inp, out):
        while True:
            out.send(inp.receive() + 1)

    nodes = [stackless.tasklet(node)(chans[i], chans[i + 1])
             for i in range(size)]
    stackless.run()
    first, last = chans[0], chans[size]
    laps = max(1, n // size)

    def feeder():
        for _ in range(laps):
            first.send(0)

    def sink():
        for _ in range(laps):
            last.receive()

    stackless.tasklet(feeder)()
    stackless.tasklet(sink)()
    stackless.run()
    for t in nodes:
        t.kill()


def spawn_run(n, alive=1000):
    """n tasklets created and run to their end, `alive` at a time."""
    import stackless

    def f(a, b):
        return a + b

    tasklet = stackless.tasklet
    run = stackless.run
    for _ in range(max(1, n // alive)):
        for i in range(alive):
            tasklet(f)(i, 1)
        run()


# --- memory -----------------------------------------------------------

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def memory(n):
    """RSS per tasklet blocked in receive() inside a function with two
    locals, and the number of memory mappings that added."""
    import gc
    import stackless
    ch = stackless.channel()

    def blocked(a):
        b = a
        ch.receive()
        return b

    gc.collect()
    before, maps_before = rss(), mappings()
    for _ in range(n):
        stackless.tasklet(blocked)(None)
    stackless.run()
    assert ch.balance == -n, ch.balance
    return (rss() - before) / n, mappings() - maps_before


# --- pure Python ------------------------------------------------------

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def recursive(n):
    """fib(18): 8361 calls each."""
    for _ in range(max(1, n // 8361)):
        fib(18)


def pipeline(n):
    """n items through three chained generators."""
    def source(k):
        for i in range(k):
            yield i

    def square(it):
        for x in it:
            yield x * x

    def evens(it):
        for x in it:
            if not x & 1:
                yield x

    total = 0
    for x in evens(square(source(n))):
        total += x
    return total


class Job:
    __slots__ = ("id", "left", "prio")

    def __init__(self, id, left, prio):
        self.id, self.left, self.prio = id, left, prio

    def step(self):
        self.left -= 1
        return self.left > 0


def scheduler(n):
    """n steps of a round-robin loop over Python job objects."""
    import collections
    queue = collections.deque(Job(i, 5 + i % 7, i % 3) for i in range(500))
    done = 0
    for _ in range(n):
        job = queue.popleft()
        if job.step():
            queue.append(job)
        else:
            done += 1
            queue.append(Job(done, 5 + done % 7, done % 3))
    return done


def numeric(n):
    """n iterations of float and integer arithmetic."""
    x = 0.0
    acc = 0
    for i in range(n):
        x = x * 0.5 + i
        acc = (acc + i * i) % 1000003
    return x, acc


# --- Python calls that 3.13 makes through C (issue 15) -----------------
#
# Pure Python: run without stackless, they must cost what they cost on
# stock CPython.  The *_tasklet variants run the same loop in a tasklet,
# where these calls push frames in the eval loop instead.

def gen_send(n):
    """n values sent into a generator (g.send)."""
    def consumer():
        total = 0
        while True:
            total += yield total

    g = consumer()
    next(g)
    send = g.send
    for _ in repeat(None, n):
        send(1)


def gen_throw(n):
    """n exceptions thrown into a generator that catches them."""
    def catcher():
        while True:
            try:
                yield
            except ValueError:
                pass

    g = catcher()
    next(g)
    exc = ValueError()
    for _ in repeat(None, n):
        g.throw(exc)


def gen_next(n):
    """n items taken with next(g)."""
    def counter():
        i = 0
        while True:
            yield i
            i += 1

    g = counter()
    for _ in repeat(None, n):
        next(g)


class _Managed:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def with_block(n):
    """n with blocks of a Python context manager."""
    cm = _Managed()
    for _ in repeat(None, n):
        with cm:
            pass


class _Target:
    def m(self, a, b=0, **kw):
        return a

    def __call__(self, a):
        return a


def method_ex(n):
    """n calls obj.m(*args, **kwargs) of a bound method."""
    obj = _Target()
    args, kwargs = (1,), {"b": 2}
    for _ in repeat(None, n):
        obj.m(*args, **kwargs)


def call_shapes(n):
    """n rounds of three calls: an instance with a Python __call__, a
    class with an __init__ taking *args, a bound method through *args."""
    class Init:
        def __init__(self, *args):
            pass

    obj = _Target()
    m = obj.m
    args = (1,)
    for _ in repeat(None, n):
        obj(1)
        Init(1)
        m(*args)


def c_callbacks(n):
    """n Python functions called by C code: a key function of sorted()
    and the function of map() (through _PyFunction_Vectorcall, where the
    stackless protocol's permission is looked at)."""
    def key(x):
        return x

    data = list(range(1000))
    for _ in repeat(None, n // 2000):
        sorted(data, key=key)
        for _ in map(key, data):
            pass


def in_tasklet(fn):
    def run(n):
        import stackless
        stackless.tasklet(fn)(n)
        stackless.run()
    return run


BENCHES = {
    "call": (call_loop, 5_000_000),
    "call_net": (call_net, 5_000_000),
    "pingpong": (pingpong, 1_000_000),
    "pingpong_cached": (pingpong_cached, 1_000_000),
    "pingpong_loops": (pingpong_loops, 1_000_000),
    "ring": (ring, 1_000_000),
    "spawn_run": (spawn_run, 300_000),
    "recursive": (recursive, 2_000_000),
    "pipeline": (pipeline, 1_000_000),
    "scheduler": (scheduler, 1_000_000),
    "numeric": (numeric, 2_000_000),
    "gen_send": (gen_send, 3_000_000),
    "gen_throw": (gen_throw, 1_000_000),
    "gen_next": (gen_next, 3_000_000),
    "with_block": (with_block, 3_000_000),
    "method_ex": (method_ex, 3_000_000),
    "call_shapes": (call_shapes, 1_000_000),
    "c_callbacks": (c_callbacks, 4_000_000),
    "method_ex_tasklet": (in_tasklet(method_ex), 3_000_000),
    "call_shapes_tasklet": (in_tasklet(call_shapes), 1_000_000),
}


def main():
    name = sys.argv[1]
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    if name.startswith("memory"):
        per, maps = memory(int(name[len("memory"):]))
        print(json.dumps({"name": name, "unit": "B", "runs": [per],
                          "maps": maps}))
        return
    fn, n = BENCHES[name]
    n = max(1000, int(n * scale))
    runs = fn(n) if name == "call_net" else timed(fn, n)
    print(json.dumps({"name": name, "unit": "ns", "runs": runs}))


if __name__ == "__main__":
    main()
