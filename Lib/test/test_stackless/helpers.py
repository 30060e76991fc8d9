"""Helpers shared by the test modules of test_stackless."""

import unittest

import stackless


def nop(*args, **kwargs):
    pass


def kill_all(t):
    """Kill t; a victim may catch TaskletExit once, so insist a few times."""
    for _ in range(5):
        if not t.alive or t.is_current:
            break
        try:
            t.kill()
        except Exception:
            pass


def flush_runqueue():
    """Kill whatever is left in the runqueue but main; return it."""
    main = stackless.getmain()
    leftover = []
    while main.next is not main and main.next is not None:
        t = main.next
        leftover.append(t)
        kill_all(t)
        if main.next is t:
            t.remove()
    return leftover


class StacklessTestCase(unittest.TestCase):
    """Each test starts and ends in the main tasklet, alone in the
    runqueue, with the per-thread and per-interpreter settings reset:
    tasklets it made with new()/spawn()/track() are killed, and what is
    left in the runqueue too."""

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.assertEqual(stackless.getruncount(), 1)
        self.tasklets = []
        self.log = []
        self.addCleanup(self.clean_scheduler)

    def track(self, t):
        self.tasklets.append(t)
        return t

    def new(self, *args, **kwargs):
        """tasklet(*args, **kwargs), killed at cleanup if still alive."""
        return self.track(stackless.tasklet(*args, **kwargs))

    def spawn(self, func, *args, **kwargs):
        """A tasklet running func(*args, **kwargs), appended to the
        runqueue; killed at cleanup if still alive."""
        return self.track(stackless.tasklet(func)(*args, **kwargs))

    def started(self, func, *args, **kwargs):
        """Like spawn(), but run the tasklet now until it suspends."""
        t = self.spawn(func, *args, **kwargs)
        t.run()
        return t

    def record(self, *event):
        """Log an event with the tasklet that saw it."""
        self.log.append((stackless.getcurrent(),) + event)

    def clean_scheduler(self):
        stackless.set_error_handler(None)
        while stackless.switch_trap(0) > 0:
            stackless.switch_trap(-1)
        main = stackless.getcurrent()
        self.assertIs(main, stackless.getmain())
        main.set_atomic(False)
        main.block_trap = False
        for t in self.tasklets:
            kill_all(t)
        leftover = flush_runqueue()
        self.assertFalse(any(t.alive for t in self.tasklets + leftover))
        self.tasklets = []
        self.assertEqual(stackless.getruncount(), 1)
        self.assertIs(main.next, main)
        self.assertIs(main.prev, main)


def _hard_variant(cls):
    def setUp(self):
        old = stackless.enable_softswitch(False)
        self.addCleanup(stackless.enable_softswitch, old)
        cls.setUp(self)

    return type(cls.__name__ + "_Hard", (cls,),
                {"setUp": setUp, "__module__": cls.__module__,
                 "__qualname__": cls.__qualname__ + "_Hard",
                 "__doc__": cls.__doc__})


def load_tests(loader, tests, pattern):
    """Each test runs twice (spec M-10): with soft switching, the default,
    then with enable_softswitch(False), where every switch is hard.  A
    class with `both_modes = False` runs once.  Test modules import this
    as their load_tests."""
    classes = []

    def walk(suite):
        for test in suite:
            if isinstance(test, unittest.TestSuite):
                walk(test)
            elif (type(test) not in classes
                  and not type(test).__module__.startswith("unittest")):
                classes.append(type(test))

    walk(tests)
    suite = unittest.TestSuite([tests])
    for cls in classes:
        if getattr(cls, "both_modes", True):
            suite.addTests(loader.loadTestsFromTestCase(_hard_variant(cls)))
    return suite


def drive_hub(limit=10.0):
    """Run the other tasklets and stacklesslib's hub of this thread until
    the hub has nothing pending and the caller (main) is alone again;
    AssertionError after `limit` seconds."""
    import time
    from stacklesslib import _hub
    hub = _hub.get_hub()
    deadline = time.monotonic() + limit
    while hub._pending() or stackless.getruncount() > 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"the hub does not settle: {hub!r}")
        stackless.schedule()
