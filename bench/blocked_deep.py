"""RSS and time per tasklet blocked a few calls deep: in a channel
receive three calls down, and in stacklesslib.sleep().

    ./python bench/blocked_deep.py [N]

A tasklet's first chunk of frame data stack fits its function's frame;
the calls below it grow the data stack (Stackless/core/softcall.c,
_PyStackless_ChunkSize), which is most of what these cost."""

import os
import sys
import time

import stackless


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(label, func, n, settle):
    r0 = rss()
    t0 = time.perf_counter()
    for _ in range(n):
        stackless.tasklet(func)()
    settle()
    t1 = time.perf_counter()
    print(f"{label}: {(rss() - r0) / n:.0f} B and "
          f"{(t1 - t0) / n * 1e6:.2f} us per tasklet")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    ch = stackless.channel()

    def inner():
        return ch.receive()

    def middle():
        return inner()

    def outer():
        return middle()

    for _ in range(1000):           # warm-up
        stackless.tasklet(outer)()
    stackless.run()
    measure("blocked in receive() 3 calls deep", outer, n, stackless.run)

    import stacklesslib

    def sleeper():
        stacklesslib.sleep(100)

    def settle():
        while stackless.getruncount() > 2:      # main and the hub
            stackless.schedule()

    measure("sleeping in stacklesslib.sleep()", sleeper, n, settle)
    sys.stdout.flush()
    os._exit(0)                     # no need to unwind them all


if __name__ == "__main__":
    main()
