"""A suspended tasklet saved to a file, resumed by another process.

A user session is a tasklet that asks questions and waits for each
answer: the state of the conversation is just where its code stands and
its local variables.  The first process answers two questions, saves the
waiting session with pickle, and exits; a new process loads it and answers
the rest, and the session ends as if nothing had happened.

    ./python examples/persist.py               # both steps, two processes
    ./python examples/persist.py save FILE     # answer two, save, exit
    ./python examples/persist.py resume FILE   # load, answer the rest
"""

import os
import pickle
import subprocess
import sys
import tempfile

import stackless

QUESTIONS = ["name", "quest", "favourite colour", "airspeed"]


def session(io):
    answers = {}
    pids = set()
    for question in QUESTIONS:
        io.send(question)               # ask, and wait for the answer
        answers[question] = io.receive()
        pids.add(os.getpid())
    summary = ", ".join(f"{q}: {a}" for q, a in answers.items())
    io.send(f"thank you ({summary}); processes used: {len(pids)}")


def answer(io, replies):
    for reply in replies:
        question = io.receive()
        print(f"  {question}? {reply}")
        io.send(reply)


def save(path):
    io = stackless.channel()
    t = stackless.tasklet(session)(io)
    answer(io, ["Arthur", "the Grail"])
    stackless.run()                     # it asks the next question, waits
    with open(path, "wb") as f:
        pickle.dump((t, io), f)
    print(f"saved the session, waiting to send its question, to {path}")
    t.kill()


def resume(path):
    with open(path, "rb") as f:
        t, io = pickle.load(f)
    print(f"loaded the session in process {os.getpid()}")
    answer(io, ["blue", "what do you mean?"])
    print(" ", io.receive())
    stackless.run()                     # the session ends
    return 0 if not t.alive else 1


def main(argv):
    if len(argv) == 2 and argv[0] == "save":
        return save(argv[1])
    if len(argv) == 2 and argv[0] == "resume":
        return resume(argv[1])
    fd, path = tempfile.mkstemp(suffix=".pickle")
    os.close(fd)
    try:
        for step in ("save", "resume"):
            rc = subprocess.call([sys.executable, __file__, step, path])
            if rc:
                return rc
    finally:
        os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
