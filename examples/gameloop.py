"""A game loop with Stackless: agents are tasklets, the world is a loop.

Each frame, the main loop wakes every agent that waits for the next frame
and runs the scheduler with stackless.run(timeout): agents run until they
wait again, and one that computes too long is preempted and resumed in a
later frame.  Agents talk over channels: hunters ask the radar where the
nearest prey is; a hunter that catches its prey tells the referee.

    ./python examples/gameloop.py [frames]
"""

import random
import sys

import stackless

# Agents wait here for the next frame: preference 1 makes send() return at
# once to the main loop, which wakes them all before running them.
next_frame = stackless.channel()
next_frame.preference = 1


def wait_frame():
    next_frame.receive()


class World:
    def __init__(self, size, seed):
        self.size = size
        self.rng = random.Random(seed)
        self.prey = {}
        self.caught = []
        self.frame = 0

    def random_spot(self):
        return (self.rng.randrange(self.size), self.rng.randrange(self.size))


def prey(world, name):
    """Wanders at random until caught (then killed by the referee)."""
    world.prey[name] = world.random_spot()
    while True:
        x, y = world.prey[name]
        dx, dy = world.rng.choice([(0, 1), (1, 0), (0, -1), (-1, 0), (0, 0)])
        world.prey[name] = (min(max(x + dx, 0), world.size - 1),
                            min(max(y + dy, 0), world.size - 1))
        wait_frame()


def radar(world, requests):
    """Answers (position, reply channel) with the nearest prey."""
    for (x, y), reply in requests:
        best = None
        for name, (px, py) in world.prey.items():
            dist = abs(px - x) + abs(py - y)
            if best is None or dist < best[0]:
                best = (dist, name, (px, py))
        reply.send(best)


def hunter(world, name, requests, referee):
    pos = world.random_spot()
    reply = stackless.channel()
    while True:
        requests.send((pos, reply))
        found = reply.receive()
        if found is None:
            return
        dist, target, (tx, ty) = found
        if dist == 0:
            referee.send((name, target))
        else:
            x, y = pos
            if x != tx:
                x += 1 if tx > x else -1
            elif y != ty:
                y += 1 if ty > y else -1
            pos = (x, y)
        wait_frame()


def referee(world, reports, tasklets):
    for hunter_name, target in reports:
        if target in world.prey:
            del world.prey[target]
            world.caught.append((world.frame, hunter_name, target))
            tasklets[target].kill()


def daydreamer():
    """Computes for long stretches: preemption shares the frame."""
    n = 0
    while True:
        for i in range(20000):
            n += i
        wait_frame()


def main(frames=200, seed=1):
    world = World(size=12, seed=seed)
    requests = stackless.channel()
    reports = stackless.channel()
    tasklets = {}
    for i in range(20):
        name = "prey%d" % i
        tasklets[name] = stackless.tasklet(prey)(world, name)
    stackless.tasklet(radar)(world, requests)
    stackless.tasklet(referee)(world, reports, tasklets)
    for i in range(4):
        stackless.tasklet(hunter)(world, "hunter%d" % i, requests, reports)
    stackless.tasklet(daydreamer)()

    preempted = 0
    for frame in range(frames):
        world.frame = frame
        while next_frame.balance < 0:
            next_frame.send(None)
        while True:
            interrupted = stackless.run(5000)
            if interrupted is None:
                break
            preempted += 1
            interrupted.insert()
        if not world.prey:
            break

    print("frames: %d, prey caught: %d of 20, preemptions: %d"
          % (world.frame + 1, len(world.caught), preempted))
    for frame, hunter_name, target in world.caught[:5]:
        print("  frame %3d: %s caught %s" % (frame, hunter_name, target))
    # End every tasklet still waiting, so that the program ends cleanly.
    for t in list(tasklets.values()):
        t.kill()
    while next_frame.balance < 0:
        next_frame.queue.kill()
    while requests.balance < 0:
        requests.queue.kill()
    while reports.balance < 0:
        reports.queue.kill()
    return world


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
