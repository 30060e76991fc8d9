"""Migrating running tasklets to another process.

A worker runs agents, each a tasklet with a loop, a generator and a
`with` block, fed by the world over channels.  Halfway through, it
pickles the agents where they wait, with their channels, and sends them
to a second process over multiprocessing.connection (with an authkey).
That process unpickles them and runs the rest of the world: the agents
resume in the middle of their loops and finish with the same results as
an uninterrupted run, which the worker checks.

    ./python examples/migrate.py [agents] [rounds]
"""

import os
import pickle
import subprocess
import sys
from multiprocessing.connection import Client, Listener

import stackless

RESULTS = {}


class Span:
    """A with block around each step: it logs where the step began and
    ended, wherever that happens."""

    def __init__(self, log, step):
        self.log = log
        self.step = step

    def __enter__(self):
        self.log.append(("begin", self.step, os.getpid()))
        return self

    def __exit__(self, *exc):
        self.log.append(("end", self.step, os.getpid()))
        return False


def readings(seed):
    """A sensor: a generator, suspended between readings."""
    x = seed
    while True:
        x = (x * 1103515245 + 12345) % 2 ** 31
        yield x % 100


def agent(name, inbox, rounds):
    log = []
    total = 0
    sensor = readings(len(name) * 7919)
    for step in range(rounds):
        with Span(log, step):
            total += next(sensor)
            # Waits for the world: where it is pickled, in one process,
            # and resumes, in the other.
            total += inbox.receive() * (step + 1)
    RESULTS[name] = (total, [(what, step) for what, step, _ in log])
    pids = {pid for _, _, pid in log}
    RESULTS[name + " pids"] = len(pids)


def make_world(n, rounds):
    inboxes = [stackless.channel() for _ in range(n)]
    agents = [stackless.tasklet(agent)(f"agent{i}", inboxes[i], rounds)
              for i in range(n)]
    stackless.run()             # each runs to its first receive()
    return agents, inboxes


def play(inboxes, first, last):
    """The world: rounds first..last-1; each feeds every agent."""
    for r in range(first, last):
        for i, inbox in enumerate(inboxes):
            inbox.send(r * 10 + i)


def uninterrupted(n, rounds):
    RESULTS.clear()
    agents, inboxes = make_world(n, rounds)
    play(inboxes, 0, rounds)
    return {k: v for k, v in RESULTS.items() if not k.endswith("pids")}


def receiver():
    """The second process: takes the agents, runs the rest, replies."""
    key = bytes.fromhex(sys.stdin.readline().strip())
    with Listener(("127.0.0.1", 0), authkey=key) as listener:
        print(listener.address[1], flush=True)
        with listener.accept() as conn:
            first, rounds, data = conn.recv_bytes(), None, None
            first, rounds = pickle.loads(first)
            agents, inboxes = pickle.loads(conn.recv_bytes())
            assert all(a.alive and a.blocked for a in agents)
            play(inboxes, first, rounds)
            assert not any(a.alive for a in agents)
            conn.send(RESULTS)


def main(argv):
    if argv[:1] == ["--receive"]:
        return receiver()
    n = int(argv[0]) if argv else 50
    rounds = int(argv[1]) if len(argv) > 1 else 10
    reference = uninterrupted(n, rounds)

    key = os.urandom(16)
    proc = subprocess.Popen([sys.executable, __file__, "--receive"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    proc.stdin.write(key.hex() + "\n")
    proc.stdin.flush()
    port = int(proc.stdout.readline())

    RESULTS.clear()
    agents, inboxes = make_world(n, rounds)
    half = rounds // 2
    play(inboxes, 0, half)
    data = pickle.dumps((agents, inboxes))
    with Client(("127.0.0.1", port), authkey=key) as conn:
        conn.send_bytes(pickle.dumps((half, rounds)))
        conn.send_bytes(data)
        results = conn.recv()
    proc.wait()
    for a in agents:            # the originals are not needed here
        a.kill()

    migrated = {k: v for k, v in results.items() if not k.endswith("pids")}
    both = sum(1 for k, v in results.items()
               if k.endswith("pids") and v == 2)
    print(f"{n} agents, {rounds} rounds, pickled after {half}: "
          f"{len(data):,} bytes, {len(data) / n:.0f} per agent")
    print(f"agents that ran in two processes: {both} of {n}")
    if migrated != reference:
        print("results differ from an uninterrupted run")
        return 1
    print("results: the same as an uninterrupted run")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
