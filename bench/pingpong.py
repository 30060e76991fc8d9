"""Channel ping-pong: the cost of one message between two tasklets.

    ./python bench/pingpong.py [messages] [runs]

Prints min and median over the runs, in ns per message; each message is
one send, one receive and one tasklet switch.  The full benchmark suite
(issue 4) will compare against a plain call and other interpreters.
"""

import statistics
import sys
import time

import stackless


def one_run(n):
    ch = stackless.channel()

    def pinger():
        for i in range(n):
            ch.send(i)

    def ponger():
        for i in range(n):
            ch.receive()

    stackless.tasklet(pinger)()
    stackless.tasklet(ponger)()
    t0 = time.perf_counter()
    stackless.run()
    return (time.perf_counter() - t0) / n * 1e9


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    times = [one_run(n) for _ in range(runs)]
    print("ping-pong: min %.0f ns, median %.0f ns per message "
          "(%d messages, %d runs)"
          % (min(times), statistics.median(times), n, runs))


if __name__ == "__main__":
    main()
