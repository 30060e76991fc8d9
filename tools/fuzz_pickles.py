"""Fuzz the unpickling of tasklets, frames and channels (spec P, issue 14).

    ./python tools/fuzz_pickles.py [--cases N] [--jobs J] [--batch B]
                                   [--seed S] [--case K]

Real pickles of tasklets stopped at many places (with blocks, finally
clauses, handlers, comprehensions, loops preempted by run(n), deep
recursion, frames that ran C code, channels with blocked tasklets) are
mutated, then unpickled and, where the state is taken, run: inserted,
fed through their channels, preempted, and killed.  Mutations are made on
the pickle's bytes (bit flips, truncation, bytes dropped or repeated) and
on the reduced state (fields swapped or given another type, offsets,
return offsets, NULL masks and stack depths out of range, values swapped
for others, foreign code objects and shim names, frames dropped,
duplicated or reordered).  A Python exception is the expected end of a
bad state; a crash, an abort or a hang is a failure.

Cases run in child processes, B (2,000) per child, J (2) children at a
time.  A child writes the number of the case it is at to a file before
running it: if it dies, the case is known, and reported with the seed
and its number; --case K --seed S runs that one case alone, in this
process.  The exit status is 1 if any case crashed or hung.
"""

import argparse
import io
import os
import pickle
import random
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)


# --- the corpus: real tasklets, stopped --------------------------------------

LOG = []
STATS = {"taken": 0}
VERBOSE = bool(os.environ.get("FUZZ_VERBOSE"))


def show(state):
    print("state", state[:3], state[4:], file=sys.stderr)
    if isinstance(state[3], list):
        for f in state[3]:
            r = getattr(f, "__reduce__", None)
            print("  frame", r()[1:] if r else f, file=sys.stderr)


class Manager:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        LOG.append(exc[0])
        return False


def body(ch):
    total = 0
    for i in range(3):
        try:
            with Manager():
                total += ch.receive() * i
        finally:
            LOG.append(i)
    try:
        raise KeyError("k")
    except KeyError:
        try:
            ch.receive()
        except ValueError:
            pass
    d = {k: ch.receive() for k in "ab"}
    squares = [ch.receive() + j for j in range(2)]
    return total, d, squares, f"{ch.receive()}-{total}"


def counting(n):
    total = 0
    for i in range(n):
        total += i
        if i % 7 == 0:
            total -= 1
    return total


def recurse(ch, n):
    if n == 0:
        return ch.receive()
    return recurse(ch, n - 1) + 1


def in_c(ch):
    return sorted([3, 1, 2], key=lambda x: ch.receive() if x == 3 else x)


def closure(ch):
    cell = [0]

    def step():
        cell[0] += ch.receive()
        return cell[0]
    return step() + step()


def numbers(n):
    total = 0
    for i in range(n):
        x = yield i
        total += x or 0
    return total


def delegate(n):
    r = yield from numbers(n)
    yield r


def gen_receiving(ch):
    try:
        raise KeyError
    except KeyError:
        while True:
            v = ch.receive()
            if v is None:
                return
            yield v


def loop_over(ch):
    total = 0
    for v in gen_receiving(ch):
        total += v
    return total


def corpus(stackless):
    """Pickles (bytes) of tasklets, channels and generators in many
    states."""
    out = []
    g = numbers(5)
    out.append(pickle.dumps(g))
    next(g)
    g.send(3)
    out.append(pickle.dumps(g))
    d = delegate(4)
    next(d)
    out.append(pickle.dumps(d))

    def stops(func, *args, limit=12):
        ch = stackless.channel()
        t = stackless.tasklet(func)(ch, *args)
        for v in range(limit):
            stackless.run()
            if not t.alive:
                break
            out.append(pickle.dumps((ch, t), random.choice([2, 4, 5])))
            if t.blocked:
                ch.send(v)
        if t.alive:
            t.kill()

    stops(body)
    for _ in range(3):              # specialized: soft in the generator
        stops(loop_over, limit=3)
    stops(recurse, 30, limit=2)
    stops(in_c, limit=2)
    stops(closure, limit=3)
    t = stackless.tasklet(counting)(100_000)
    for _ in range(6):
        t2 = stackless.run(97)
        if t2 is None:
            break
        out.append(pickle.dumps(t2))
        t2.insert()
    if t.alive:
        t.kill()
    ch = stackless.channel()
    senders = [stackless.tasklet(ch.send)(i) for i in range(3)]
    stackless.run()
    out.append(pickle.dumps(ch))
    for s in senders:
        s.kill()
    out.append(pickle.dumps(stackless.tasklet(counting)))
    bound = stackless.tasklet(counting)(5)
    bound.remove()
    out.append(pickle.dumps(bound))
    return out


# --- mutations --------------------------------------------------------------

def palette(stackless):
    def gen():
        yield 1
    return [None, 0, -1, 1, 2 ** 70, 3, 4, 17, 255, 65535, 65536, "s", b"b",
            (), (1, 2), [], [1], {}, {1: 2}, set(), iter([]), iter(range(3)),
            ValueError("v"), KeyError, stackless.channel(),
            stackless.tasklet(), gen(), gen.__code__, counting.__code__,
            body.__code__, recurse.__code__, in_c.__code__, counting,
            body, "gen_next", "gen_next_default", "context_run",
            "send_sequence", "init_cleanup", "invalid_frame", "nonsense",
            type(gen.__code__).replace, object(), 1.5, True]


def mutate_bytes(rng, data):
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[rng.randrange(len(data)):]
    elif kind == 2:
        i = rng.randrange(len(data))
        del data[i:i + rng.randint(1, 8)]
    else:
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 8))
        data[i:i] = data[i:j]
    return bytes(data)


def mutate_frame_args(rng, args, pal):
    args = list(args)
    # Mostly the slots: those mutations keep the state's shape, and reach
    # the verifier (see verify.c) rather than the constructor's checks.
    kind = rng.choices(range(9), weights=[2, 2, 1, 4, 6, 2, 1, 1, 4])[0]
    if kind == 0:                           # offset
        args[3] = rng.choice([args[3] + rng.randint(-6, 6), 0, -1,
                              rng.randrange(1 << 16)])
    elif kind == 1:                         # return offset
        args[4] = rng.choice([0, 1, 2, 4, 5, rng.randrange(70000), -3])
    elif kind == 2:                         # validity
        args[5] = rng.choice([0, 1, 2, -1])
    elif kind == 3:                         # NULL mask
        if type(args[6]) is int:
            args[6] ^= 1 << rng.randrange(max(1, len(args) - 6))
    elif kind == 4 and len(args) > 7:       # a value replaced
        args[rng.randrange(7, len(args))] = rng.choice(pal)
    elif kind == 5 and len(args) > 7:       # a value dropped or repeated
        i = rng.randrange(7, len(args))
        if rng.random() < 0.5:
            del args[i]
        else:
            args.insert(i, args[i])
    elif kind == 6:                         # the code, or the function
        args[rng.randrange(2)] = rng.choice(pal)
    elif kind == 7:                         # any field retyped
        args[rng.randrange(len(args))] = rng.choice(pal)
    else:                                   # two values swapped
        if len(args) > 8:
            i, j = rng.sample(range(7, len(args)), 2)
            args[i], args[j] = args[j], args[i]
    return args


def mutate_gen_state(rng, state, pal):
    from stackless import _wrap
    state = list(state)
    kind = rng.randrange(4)
    if kind <= 1 and isinstance(state[2], _wrap.frame_state):
        args = state[2].__reduce__()[1]
        for _ in range(rng.randint(1, 3)):
            args = mutate_frame_args(rng, args, pal)
        try:
            state[2] = _wrap.frame_state(*args)
        except (TypeError, ValueError, OverflowError):
            return None
    elif kind == 2:
        state[1] = rng.choice([0, 1, 2, 3, -1])
    else:
        state[rng.randrange(len(state))] = rng.choice(pal)
    return tuple(state)


def fresh_generators(frames):
    """The running generators of a tasklet's frames, copied: those of a
    tasklet that is unpickled are linked to it, and no other takes them."""
    import copyreg
    out = []
    for f in frames:
        if type(f).__name__ in ("generator", "coroutine", "async_generator"):
            new, args = copyreg.dispatch_table[type(f)](f)
            f = new(*args)
        out.append(f)
    return out


def mutate_state(rng, stackless, state, pal):
    from stackless import _wrap
    state = list(state)
    kind = rng.randrange(6)
    frames = state[3] if isinstance(state[3], list) else None
    if frames:
        frames = state[3] = fresh_generators(frames)
    if kind <= 2 and frames:
        frames = list(frames)
        i = rng.randrange(len(frames))
        f = frames[i]
        if isinstance(f, _wrap.frame_state):
            args = f.__reduce__()[1]
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                args = mutate_frame_args(rng, args, pal)
            try:
                frames[i] = _wrap.frame_state(*args)
            except (TypeError, ValueError, OverflowError):
                return None
        elif isinstance(f, stackless.cframe):
            # A cframe's slots and ints (spec M-21.7).
            valid, name, params, ci, cn = f.__reduce__()[2]
            params = list(params)
            j = rng.randrange(1, 4)
            params[j] = rng.choice(pal)
            params[0] = tuple(k for k in params[0] if k != j - 1)
            ci, cn = rng.choice([(ci, cn), (ci + 1, cn), (ci, cn + 1),
                                 (0, -1), (ci, 1 << 40)])
            try:
                cf = stackless.cframe()
                cf.__setstate__((valid, name, tuple(params), ci, cn))
            except (TypeError, ValueError, OverflowError):
                return None
            frames[i] = cf
        state[3] = frames
    elif kind == 3 and frames:
        frames = list(frames)
        op = rng.randrange(3)
        i = rng.randrange(len(frames))
        if op == 0:
            del frames[i]
        elif op == 1:
            frames.insert(i, frames[i])
        else:
            rng.shuffle(frames)
        state[3] = frames
    elif kind == 4:
        state[rng.randrange(len(state))] = rng.choice(pal)
    else:
        # The flags (spec M-21.9): blocked bits, the others, out of range.
        state[0] = rng.choice([0, 1, 2, 3, 4, 8, 32, 64, 128, 256, 511, 512,
                               -1, rng.randrange(1024)])
    return tuple(state)


# --- running a case -----------------------------------------------------------

def drive(stackless, objs):
    """Run whatever the case produced, bounded, then end it."""
    for g in [o for o in objs if type(o).__name__ == "generator"]:
        try:
            for _ in range(5):
                g.send(None)
            g.throw(ValueError)
        except BaseException:
            pass
        try:
            g.close()
        except BaseException:
            pass
    tasklets = [o for o in objs if isinstance(o, stackless.tasklet)]
    channels = [o for o in objs if isinstance(o, stackless.channel)]
    for t in tasklets:
        if t.alive and not t.scheduled and not t.is_current:
            try:
                t.insert()
            except RuntimeError:
                pass
    for _ in range(20):
        try:
            stackless.run(2000)
        except Exception:
            pass
        for ch in channels:
            try:
                if ch.balance < 0:
                    ch.send(1)
                elif ch.balance > 0:
                    ch.receive()
            except Exception:
                pass
    for ch in channels:
        t = ch.queue
        while t is not None:
            tasklets.append(t)
            t = t.next
    for t in tasklets:
        try:
            t.kill()
        except Exception:
            pass


def note(e):
    if VERBOSE:
        key = type(e).__name__ + " " + str(e)[:60]
        STATS[key] = STATS.get(key, 0) + 1


def mutated(rng, stackless, obj, pal, tasklets):
    """A mutated copy of obj, an object of a loaded pickle, or None."""
    import copyreg
    if isinstance(obj, stackless.tasklet):
        state = mutate_state(rng, stackless, obj.__reduce__()[2], pal)
        if state is None:
            return None
        t = stackless.tasklet()
        tasklets.append(t)
        t.__setstate__(state)
        STATS["taken"] += 1
        return t
    if type(obj).__name__ in ("generator", "coroutine", "async_generator"):
        new, (code, state) = copyreg.dispatch_table[type(obj)](obj)
        state = mutate_gen_state(rng, state, pal)
        if state is None:
            return None
        return new(rng.choice([code, code, code] + pal[26:30]), state)
    if isinstance(obj, stackless.channel):
        # Its state, with the mutated tasklets made so far.
        state = list(obj.__reduce__()[2])
        new = [t for t in tasklets if t.alive and not t.blocked]
        state[2] = new[:abs(state[0])]
        state[0] = len(state[2]) * (1 if state[0] > 0 else -1)
        if rng.random() < 0.5:
            state[rng.randrange(3)] = rng.choice(pal)
        c = stackless.channel()
        c.__setstate__(tuple(state))
        return c
    return None


def run_case(stackless, seeds, pal, seed, k):
    rng = random.Random(seed * 1_000_003 + k)
    data = rng.choice(seeds)
    objs = []
    LOG.clear()
    try:
        if rng.random() < 0.2:
            objs.append(pickle.loads(mutate_bytes(rng, data)))
        else:
            loaded = pickle.loads(data)
            items = loaded if isinstance(loaded, tuple) else (loaded,)
            # Originals of the loaded pickle are still blocked: they are
            # ended too.
            objs.extend(items)
            tasklets = []
            for obj in sorted(items, key=lambda o: isinstance(
                    o, stackless.channel)):
                if rng.random() < 0.1:
                    continue
                try:
                    m = mutated(rng, stackless, obj, pal, tasklets)
                except Exception as e:
                    note(e)
                    m = None
                if m is not None:
                    objs.append(m)
            objs.extend(tasklets)
    except Exception as e:
        note(e)
    flat = []
    for o in objs:
        flat.extend(o if isinstance(o, tuple) else (o,))
    drive(stackless, flat)


def child(args):
    import resource
    import stackless
    # A mutated count may ask for any amount of memory: MemoryError, not
    # the machine's OOM killer.  Under AddressSanitizer, which reserves
    # terabytes of address space, its own options cap the allocations
    # (tools/run-tests: max_allocation_size_mb, allocator_may_return_null).
    import sysconfig
    if "sanitizer" not in (sysconfig.get_config_var("CONFIG_ARGS") or ""):
        limit = 2 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    random.seed(args.seed)
    seeds = corpus(stackless)
    pal = palette(stackless)
    fd = os.open(args.progress, os.O_WRONLY) if args.progress else None
    for k in range(args.first, args.first + args.count):
        if fd is not None:
            os.pwrite(fd, struct.pack("q", k), 0)
        run_case(stackless, seeds, pal, args.seed, k)
    print(f"STATS {args.count} {STATS['taken']}", file=sys.stderr)
    if VERBOSE:
        for k, v in sorted(STATS.items(), key=lambda kv: -kv[1])[:25]:
            print(v, k, file=sys.stderr)
    return 0


def parent(args):
    first = 0
    failures = []
    running = []
    start = time.monotonic()
    done = 0
    taken = [0]

    def launch(first, count):
        fd, path = tempfile.mkstemp(prefix="fuzz-progress-")
        os.write(fd, struct.pack("q", -1))
        os.close(fd)
        cmd = [sys.executable, "-X", "faulthandler", HERE, "--child",
               "--seed", str(args.seed), "--first", str(first),
               "--count", str(count), "--progress", path]
        # Its stderr goes to a file: a pipe, read at the end, would fill.
        err = tempfile.TemporaryFile()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        p.errfile = err
        return (p, path, first, count, time.monotonic())

    def finish(item):
        nonlocal done
        p, path, first, count, t0 = item
        with open(path, "rb") as f:
            at = struct.unpack("q", f.read(8))[0]
        os.unlink(path)
        p.errfile.seek(0)
        err = p.errfile.read().decode(errors="replace")
        p.errfile.close()
        for line in err.splitlines():
            if line.startswith("STATS "):
                taken[0] += int(line.split()[2])
        if p.returncode != 0:
            failures.append((at, p.returncode, err[-2000:]))
            print(f"case {at} (seed {args.seed}) ended the child with "
                  f"status {p.returncode}:\n{err[-2000:]}", file=sys.stderr)
            # The cases after it in the batch run again.
            rest = first + count - at - 1
            done += at - first + 1
            return (at + 1, rest) if rest > 0 else None
        done += count
        return None

    pending = []
    while first < args.cases or running or pending:
        while len(running) < args.jobs and (pending or first < args.cases):
            if pending:
                f, c = pending.pop()
            else:
                f, c = first, min(args.batch, args.cases - first)
                first += c
            running.append(launch(f, c))
        time.sleep(0.05)
        for item in list(running):
            p = item[0]
            timeout = item[3] * 0.05 + 120
            if p.poll() is None and time.monotonic() - item[4] > timeout:
                p.kill()
                p.wait()
            if p.poll() is not None:
                running.remove(item)
                again = finish(item)
                if again is not None:
                    pending.append(again)
    secs = time.monotonic() - start
    print(f"fuzz: {done:,} mutated pickles in {secs:.0f} s, seed "
          f"{args.seed} ({taken[0]:,} mutated tasklet states taken and "
          f"run): {len(failures)} crashed or hung")
    return 1 if failures else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--case", type=int, default=None)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--progress", default=None)
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.case is not None:
        args.first, args.count, args.progress = args.case, 1, None
        return child(args)
    if args.child:
        return child(args)
    return parent(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
