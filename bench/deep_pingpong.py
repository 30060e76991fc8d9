"""Channel ping-pong between two tasklets that block at a recursion depth.

    python bench/deep_pingpong.py [PYTHON ...]

ns per message, best of 5 runs of 200,000 messages, with the sender and
the receiver each DEPTH Python calls deep (0, 10, 50, 200).  A switch
should cost the same at any depth: whether a switch can be soft is
decided without walking the frames.
"""

import subprocess
import sys

CODE = r"""
import stackless, time

def bench(depth, n=200_000):
    ch = stackless.channel()

    def rec(k, f):
        if k:
            return rec(k - 1, f)
        return f()

    def ping():
        for i in range(n):
            ch.send(i)

    def pong():
        for i in range(n):
            ch.receive()

    stackless.tasklet(rec)(depth, ping)
    stackless.tasklet(rec)(depth, pong)
    t = time.perf_counter()
    stackless.run()
    return (time.perf_counter() - t) / n * 1e9

print(" ".join(f"{min(bench(d) for _ in range(5)):.1f}"
               for d in (0, 10, 50, 200)))
"""


def main():
    pythons = sys.argv[1:] or [sys.executable]
    print("| interpreter | depth 0 | 10 | 50 | 200 |")
    print("|---|---:|---:|---:|---:|")
    for python in pythons:
        out = subprocess.run([python, "-c", CODE], capture_output=True,
                             text=True, check=True).stdout.split()
        print(f"| {python} | " + " | ".join(out) + " |")


if __name__ == "__main__":
    main()
