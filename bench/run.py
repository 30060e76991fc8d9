"""The benchmark suite: tasklet switching, spawning and memory, and plain
Python speed against other interpreters.

    python3 bench/run.py [--quick] [--memory] [--only=A,B,...] [PYTHON ...]

PYTHON: interpreters to measure; the default is ./python (ours) and
build/stock/python (stock CPython of the pinned release, built with the
same flags, `make stock`). Each benchmark runs TURNS (6) times per
interpreter, the interpreters taking turns, each time in a fresh process
(bench/workloads.py) that makes 7 timed runs after a warm-up; the table
gives min and median of all runs, in ns per operation, and the ratio of
its min to the min of a plain Python function call on the same
interpreter. Every timed benchmark loops as timeit does (over
itertools.repeat) and counts its loop: the call is what `python -m
timeit -s "def f(): pass" "f()"` reports, and a ping-pong message
includes an iteration of each tasklet's loop. For reference, a row gives
the call net of its loop (the loop with the call minus the empty loop),
and one the ping-pong loops without tasklets. Ratios use the min: the
speed of this machine drifts by up to 2x over seconds, and the min of
each is its speed when undisturbed. The pure-Python workloads are also
compared with the first other interpreter (ratio of minima, and their
geometric mean). Tasklet benchmarks run only where `stackless` imports.
--memory adds RSS per blocked tasklet at 100,000 and 1,000,000.
"""

import json
import math
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
WORKLOADS = os.path.join(HERE, "workloads.py")

TASKLET = [("pingpong", "channel ping-pong, per message"),
           ("pingpong_cached", "the same, send/receive kept in locals"),
           ("method_ex_tasklet", "obj.m(*args, **kwargs) in a tasklet"),
           ("call_shapes_tasklet",
            "__call__, Cls(*a), m(*a) in a tasklet, per round"),
           ("ring", "1,000-tasklet ring, per hop"),
           ("spawn_run", "spawn+run, per tasklet (1,000 alive)")]
# Not targets: the call without its loop, and the part of ping-pong that
# is not tasklets (any Python).
REFERENCE = [("call_net", "Python function call, net of its loop"),
             ("pingpong_loops",
              "ping-pong's loops, C calls for send/receive, per message")]
TURNS = 6

PURE = [("recursive", "recursive calls (fib), per call"),
        ("pipeline", "generator pipeline, per item"),
        ("scheduler", "object-heavy scheduler loop, per step"),
        ("numeric", "numeric loop, per iteration"),
        ("gen_send", "g.send(v), per value"),
        ("gen_throw", "g.throw(exc) caught inside, per exception"),
        ("gen_next", "next(g), per item"),
        ("with_block", "with block of a Python manager, per block"),
        ("method_ex", "obj.m(*args, **kwargs), per call"),
        ("call_shapes", "__call__, Cls(*a), m(*a), per round"),
        ("c_callbacks", "a Python function called by C (key, map)")]


def measure(python, name, scale):
    out = subprocess.run([python, WORKLOADS, name, str(scale)],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{python} {name}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def has_stackless(python):
    return subprocess.run([python, "-c", "import stackless"],
                          capture_output=True).returncode == 0


def label(python):
    out = subprocess.run([python, "-c", "import sys; print(sys.version)"],
                         capture_output=True, text=True)
    return f"{python}: {out.stdout.split(chr(10))[0]}"


def main(argv):
    quick = "--quick" in argv
    memory = "--memory" in argv
    only = None
    for a in argv:
        if a.startswith("--only="):
            only = set(a[len("--only="):].split(","))
    pythons = [a for a in argv if not a.startswith("--")]
    if not pythons:
        pythons = [os.path.join(TOP, "python")]
        stock = os.path.join(TOP, "build", "stock", "python")
        if os.path.exists(stock):
            pythons.append(stock)
    scale = 0.2 if quick else 1.0
    results = {py: {} for py in pythons}
    stackless = {}
    for py in pythons:
        print(label(py), file=sys.stderr)
        stackless[py] = has_stackless(py)
    names = ["call"] + [n for n, _ in TASKLET] + [n for n, _ in REFERENCE] \
        + [n for n, _ in PURE]
    if only is not None:
        names = ["call"] + [n for n in names if n in only]
    tasklet_names = {n for n, _ in TASKLET}
    # The interpreters take turns on each benchmark: the speed of this
    # machine drifts over seconds, and turns spread the drift.
    for name in names:
        for _ in range(TURNS):
            for py in pythons:
                if name in tasklet_names and not stackless[py]:
                    continue
                runs = measure(py, name, scale / TURNS)["runs"]
                results[py].setdefault(name, []).extend(runs)
    for py in pythons:
        if memory and stackless[py]:
            for n in (100_000, 1_000_000):
                r = measure(py, f"memory{n}", 1)
                results[py][f"memory{n}"] = r

    print("| interpreter | benchmark | min ns | median ns | x call "
          "| vs " + (os.path.relpath(pythons[1], TOP)
                     if len(pythons) > 1 else "-") + " |")
    print("|---|---|---:|---:|---:|---:|")
    base = results[pythons[1]] if len(pythons) > 1 else None
    for py in pythons:
        res = results[py]
        unit = min(res["call"])
        name = os.path.relpath(py, TOP)
        ratios = []
        for key, desc in [("call", "Python function call (the unit)")] \
                + TASKLET \
                + REFERENCE + PURE:
            if key not in res:
                continue
            runs = res[key]
            med = statistics.median(runs)
            vs = ""
            if base is not None and py != pythons[1] and key in base \
                    and dict(PURE).get(key):
                r = min(runs) / min(base[key])
                ratios.append(r)
                vs = f"{r:.3f}"
            print(f"| {name} | {desc} | {min(runs):.1f} | {med:.1f} "
                  f"| {min(runs) / unit:.2f} | {vs} |")
        if ratios:
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
            print(f"| {name} | pure-Python geometric mean | | | | "
                  f"{geo:.3f} |")
        for n in (100_000, 1_000_000):
            r = res.get(f"memory{n}")
            if r is not None:
                print(f"| {name} | RSS per blocked tasklet at {n:,} "
                      f"| | {r['runs'][0]:.0f} B | | +{r['maps']} maps |")


if __name__ == "__main__":
    main(sys.argv[1:])
