"""Which interpreter this is, and two tasklets talking over a channel."""

import sys

import stackless

print("Python    ", sys.version)
print("Stackless ", stackless.__version__)

ch = stackless.channel()


def ping(n):
    for i in range(n):
        ch.send("ping %d" % i)
    ch.send(None)


def pong():
    while (msg := ch.receive()) is not None:
        print("%s from %s, pong from %s"
              % (msg, "a tasklet", "another tasklet"))


stackless.tasklet(ping)(3)
stackless.tasklet(pong)()
stackless.run()
print("runcount after run():", stackless.getruncount())
