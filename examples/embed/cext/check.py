"""Run by tools/test-embed in a venv where pip installed this package: a
tasklet's callback, called by the extension's C code, blocks on a channel
(a hard switch across the C frame) and resumes with what it is sent."""

import stackless

import slp_cext

ch = stackless.channel()
got = []


def callback():
    state = (stackless.current.nesting_level, stackless.current.restorable)
    return ch.receive(), state


def worker():
    got.append(slp_cext.call_back(callback))


t = stackless.tasklet(worker)()
t.run()
assert t.blocked and not t.restorable and t.nesting_level == 1, \
    (t.blocked, t.restorable, t.nesting_level)
ch.send("resumed")
assert not t.alive
(value, state), runcount = got[0]
assert (value, state) == ("resumed", (1, False)), got
print("ok", got)
