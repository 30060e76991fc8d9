"""stacklesslib.monkey: patch_all() makes code written for the standard
socket, time, select and selectors modules block only the tasklet."""

import os
import select
import selectors
import socket
import threading
import time
import unittest

import stackless
import stacklesslib
from stacklesslib import _hub, monkey
from stacklesslib import socket as ssocket

from test.test_stackless.helpers import drive_hub, kill_all


drive = drive_hub


# Plain code, written for the standard modules; it looks the names up
# through the modules at call time, as most libraries do.

def plain_echo_client(addr, msg, log):
    with socket.create_connection(addr) as c:
        c.sendall(msg)
        log.append(("sent", msg))
        reply = b""
        while len(reply) < len(msg):
            reply += c.recv(100)
        log.append(("got", reply))
        return reply


def plain_sleeper(seconds, log, name):
    time.sleep(seconds)
    log.append(name)


class MonkeyTestCase(unittest.TestCase):

    def setUp(self):
        self.originals = (socket.socket, socket.create_connection,
                          socket.getaddrinfo, time.sleep, select.select,
                          selectors.DefaultSelector)
        self.addCleanup(self.check_clean)
        monkey.patch_all()
        self.addCleanup(monkey.unpatch_all)
        self.tasklets = []

    def spawn(self, func, *args):
        t = stackless.tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def check_clean(self):
        self.assertEqual(monkey.patched(), [])
        self.assertEqual((socket.socket, socket.create_connection,
                          socket.getaddrinfo, time.sleep, select.select,
                          selectors.DefaultSelector), self.originals)
        for t in self.tasklets:
            kill_all(t)
        drive()
        hub = _hub.get_hub()
        self.assertEqual(hub._nwaiters, 0)
        self.assertEqual(hub._fds, {})


class TestPatch(MonkeyTestCase):

    def test_what_is_patched_and_unpatch(self):
        self.assertIs(socket.socket, ssocket.socket)
        self.assertIs(socket.create_connection, ssocket.create_connection)
        self.assertIs(time.sleep, monkey.sleep)
        self.assertIs(select.select, monkey.select)
        self.assertIs(selectors.DefaultSelector, monkey.TaskletSelector)
        self.assertIn("socket.socket", monkey.patched())
        self.assertIn("time.sleep", monkey.patched())
        monkey.patch_all()          # twice: still restorable
        monkey.unpatch_all()
        self.assertEqual(monkey.patched(), [])
        self.assertIsNot(socket.socket, ssocket.socket)
        self.assertIs(socket.socket, self.originals[0])

    def test_selective(self):
        monkey.unpatch_all()
        monkey.patch_all(socket=False, select=False, selectors=False)
        self.assertEqual(monkey.patched(), ["time.sleep"])
        self.assertIs(socket.socket, self.originals[0])

    def test_plain_clients_run_concurrently(self):
        server = ssocket.create_server(("127.0.0.1", 0))
        self.addCleanup(server.close)
        addr = server.getsockname()
        log = []

        def handle(conn):
            with conn:
                # Answer only when every client has sent: clients that
                # blocked the thread could never all send.
                data = conn.recv(100)
                while sum(1 for e in log if e[0] == "sent") < 5:
                    time.sleep(0.001)
                conn.sendall(data)

        def serve():
            for _ in range(5):
                conn, _ = server.accept()
                self.spawn(handle, conn)

        self.spawn(serve)
        results = []
        for i in range(5):
            self.spawn(lambda i=i: results.append(
                plain_echo_client(addr, b"msg%d" % i, log)))
        while len(results) < 5:
            stackless.schedule()
        self.assertEqual(sorted(results), [b"msg%d" % i for i in range(5)])
        kinds = [kind for kind, _ in log]
        self.assertEqual(kinds, ["sent"] * 5 + ["got"] * 5)

    def test_sockets_made_by_stdlib_code_are_ours(self):
        a, b = socket.socketpair()
        with a, b:
            self.assertIsInstance(a, ssocket.socket)
        with socket.socket() as s:
            self.assertIsInstance(s, ssocket.socket)
            self.assertFalse(os.get_blocking(s.fileno()))

    def test_time_sleep_blocks_only_the_tasklet(self):
        log = []
        self.spawn(plain_sleeper, 0.05, log, "long")
        self.spawn(plain_sleeper, 0.01, log, "short")
        self.spawn(log.append, "other")
        stackless.run()
        drive()
        self.assertEqual(log, ["other", "short", "long"])

    def test_select_select(self):
        a, b = ssocket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        results = []
        ticks = []

        def selector():
            results.append(select.select([b], [], [], 5))

        def ticker():
            for _ in range(3):
                ticks.append(None)
                time.sleep(0.005)
            a.sendall(b"x")

        self.spawn(selector)
        self.spawn(ticker)
        stackless.run()
        drive()
        self.assertEqual(results, [([b], [], [])])
        self.assertEqual(len(ticks), 3)
        # At once: writable; a timeout with nothing ready.
        self.assertEqual(select.select([], [a], [], 5), ([], [a], []))
        b.recv(1)
        start = time.monotonic()
        self.assertEqual(select.select([b], [], [], 0.05), ([], [], []))
        self.assertGreaterEqual(time.monotonic() - start, 0.05)
        self.assertRaises(ValueError, select.select, [b], [], [], -1)

    def test_select_lets_stacklesslib_timeout_through(self):
        a, b = ssocket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.02):
                select.select([b], [], [], 10)
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)
        sel.register(b, selectors.EVENT_READ)
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.02):
                sel.select(10)

    def test_default_selector(self):
        a, b = ssocket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        sel = selectors.DefaultSelector()
        self.addCleanup(sel.close)
        self.assertIsInstance(sel, monkey.TaskletSelector)
        sel.register(b, selectors.EVENT_READ, "data of b")
        got = []

        def waiter():
            got.append([(key.data, ev) for key, ev in sel.select()])

        self.spawn(waiter)
        stackless.schedule()
        self.assertEqual(got, [])
        a.sendall(b"x")
        stackless.run()
        drive()
        self.assertEqual(got, [[("data of b", selectors.EVENT_READ)]])
        b.recv(1)
        self.assertEqual(sel.select(0.02), [])
        self.assertEqual(sel.select(0), [])

    def test_patched_calls_in_a_thread_without_tasklets(self):
        # A thread gets a hub of its own; time.sleep still sleeps.
        out = []

        def work():
            start = time.monotonic()
            time.sleep(0.02)
            out.append(time.monotonic() - start)

        th = threading.Thread(target=work)
        th.start()
        th.join()
        self.assertGreaterEqual(out[0], 0.02)


if __name__ == "__main__":
    unittest.main()
