"""The Python side of examples/embed/host.c: agents that live as tasklets
in a C program's frame loop.

The host creates the agents from C (make_agent() gives it their
functions), pumps its input events into `events` each frame, and gives
the tasklets a budget of instructions per frame.  Agents walk and share
the events; one of them, a "hog", loops without yielding, and the host
kills it when it keeps using whole frames.
"""

import random

import stackless

events = stackless.channel()
events.preference = 1           # the host's send returns at once
stats = {"steps": 0, "events": 0, "handled": {}}
world = {}


def agent(name, seed):
    """Walk one step per turn of the scheduler."""
    rng = random.Random(seed)
    x = y = 0
    while True:
        x += rng.choice((-1, 0, 1))
        y += rng.choice((-1, 0, 1))
        world[name] = (x, y)
        stats["steps"] += 1
        stackless.schedule()


def dispatcher():
    """Receive the host's events and hand each to a handler tasklet."""
    while True:
        kind, value = events.receive()
        stats["events"] += 1
        stackless.tasklet(handle)(kind, value)


def handle(kind, value):
    handled = stats["handled"]
    handled[kind] = handled.get(kind, 0) + value


def hog():
    """Never yields: only the host's budget stops it."""
    n = 0
    while True:
        n += 1


def make_agent(i):
    return agent


def summary():
    return (f"{len(world)} agents, {stats['steps']} steps, "
            f"{stats['events']} events, handled {sorted(stats['handled'].items())}")
