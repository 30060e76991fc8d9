"""stacklesslib.asyncio: tasklets and an asyncio loop in one thread."""

import asyncio
import time
import unittest

import stackless
import stacklesslib
from stacklesslib import _hub
from stacklesslib import asyncio as sasyncio
from stacklesslib import socket as ssocket

from test.test_stackless.helpers import drive_hub, kill_all


drive = drive_hub


class BridgeTestCase(unittest.TestCase):

    def setUp(self):
        self.tasklets = []
        self.addCleanup(self.check_clean)

    def spawn(self, func, *args):
        t = stackless.tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def check_clean(self):
        for t in self.tasklets:
            kill_all(t)
        sasyncio.close_loop()
        drive()
        hub = _hub.get_hub()
        self.assertEqual(hub._nwaiters, 0)
        self.assertEqual(hub._fds, {})
        self.assertEqual(sasyncio._joins, {})
        self.assertIsNone(stackless.get_schedule_callback())
        with self.assertRaises(RuntimeError):
            asyncio.get_running_loop()


class TestWait(BridgeTestCase):

    def test_wait_result_and_exception(self):
        async def add(a, b):
            await asyncio.sleep(0.01)
            return a + b

        async def fail():
            await asyncio.sleep(0)
            raise KeyError("k")

        self.assertEqual(sasyncio.wait(add(1, 2)), 3)
        self.assertRaises(KeyError, sasyncio.wait, fail())
        fut = sasyncio.get_loop().create_future()
        sasyncio.get_loop().call_soon(fut.set_result, "f")
        self.assertEqual(sasyncio.wait(fut), "f")

    def test_tasklets_run_while_asyncio_waits(self):
        log = []

        def ticker():
            for i in range(3):
                log.append(("tick", i))
                stacklesslib.sleep(0.01)

        async def slow():
            await asyncio.sleep(0.1)
            log.append("slow done")
            return "ok"

        self.spawn(ticker)
        self.assertEqual(sasyncio.wait(slow()), "ok")
        self.assertEqual(log, [("tick", 0), ("tick", 1), ("tick", 2),
                               "slow done"])

    def test_many_tasklets_wait_concurrently(self):
        results = {}

        async def job(i):
            await asyncio.sleep(0.01 * (10 - i))
            return i * i

        def body(i):
            results[i] = sasyncio.wait(job(i))

        for i in range(10):
            self.spawn(body, i)
        stackless.run()
        drive()
        self.assertEqual(results, {i: i * i for i in range(10)})

    def test_timeout_cancels(self):
        cancelled = []

        async def forever():
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        with self.assertRaises(TimeoutError):
            sasyncio.wait(forever(), timeout=0.02)
        sasyncio.wait(asyncio.sleep(0))
        self.assertEqual(cancelled, [True])

    def test_kill_waiting_tasklet_cancels(self):
        cancelled = []

        async def forever():
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        t = self.spawn(sasyncio.wait, forever())
        stackless.schedule()
        sasyncio.wait(asyncio.sleep(0.01))
        self.assertTrue(t.alive)
        t.kill()
        sasyncio.wait(asyncio.sleep(0))
        self.assertEqual(cancelled, [True])

    def test_idle_loop_does_not_keep_run_going(self):
        sasyncio.wait(asyncio.sleep(0))
        # Nothing for asyncio to do: run() returns, and main blocking on
        # a channel is a deadlock as without the bridge.
        stackless.run()
        self.assertRaises(RuntimeError, stackless.channel().receive)

    def test_asyncio_streams_server_used_from_tasklets(self):
        # An asyncio library (streams) serves; tasklets are its clients
        # through stacklesslib.socket, and also through asyncio streams.
        async def handle(reader, writer):
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = sasyncio.wait(asyncio.start_server(handle, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        results = {}

        def socket_client(i):
            with ssocket.create_connection(("127.0.0.1", port)) as c, \
                    c.makefile("rwb") as f:
                f.write(b"hello %d\n" % i)
                f.flush()
                results[("socket", i)] = f.readline()

        def stream_client(i):
            reader, writer = sasyncio.wait(
                asyncio.open_connection("127.0.0.1", port))
            writer.write(b"stream %d\n" % i)
            results[("stream", i)] = sasyncio.wait(reader.readline())
            writer.close()
            sasyncio.wait(writer.wait_closed())

        for i in range(5):
            self.spawn(socket_client, i)
            self.spawn(stream_client, i)
        while len(results) < 10:
            stackless.schedule()
        for i in range(5):
            self.assertEqual(results[("socket", i)], b"HELLO %d\n" % i)
            self.assertEqual(results[("stream", i)], b"STREAM %d\n" % i)
        server.close()
        sasyncio.wait(server.wait_closed())

    def test_wait_from_loop_tasklet_refused(self):
        async def inner():
            sasyncio.wait(asyncio.sleep(0))

        self.assertRaises(RuntimeError, sasyncio.wait, inner())


class TestFromCoroutines(BridgeTestCase):

    def test_receive_and_send(self):
        ch = stackless.channel()

        def producer():
            for i in range(3):
                ch.send(i)

        async def consumer():
            return [await sasyncio.receive(ch) for _ in range(3)]

        self.spawn(producer)
        self.assertEqual(sasyncio.wait(consumer()), [0, 1, 2])

        got = []
        self.spawn(lambda: got.extend([ch.receive(), ch.receive()]))

        async def sender():
            await sasyncio.send(ch, "a")
            await sasyncio.send(ch, "b")

        sasyncio.wait(sender())
        drive()
        self.assertEqual(got, ["a", "b"])

    def test_receive_exception_from_send_throw(self):
        ch = stackless.channel()
        self.spawn(lambda: ch.send_exception(ValueError, "bad"))

        async def consumer():
            return await sasyncio.receive(ch)

        with self.assertRaises(ValueError):
            sasyncio.wait(consumer())

    def test_cancelled_receive_leaves_channel_and_loses_nothing(self):
        ch = stackless.channel()

        async def consumer():
            return await sasyncio.receive(ch)

        with self.assertRaises(TimeoutError):
            sasyncio.wait(consumer(), timeout=0.02)
        drive()
        self.assertEqual(ch.balance, 0)
        # The value goes to the next receiver.
        self.spawn(ch.send, "v")
        self.assertEqual(ch.receive(), "v")

    def test_receive_from_other_thread(self):
        import threading
        ch = stackless.channel()

        def other():
            ch.send("from thread")

        async def consumer():
            return await sasyncio.receive(ch)

        th = threading.Thread(target=other)
        th.start()
        try:
            self.assertEqual(sasyncio.wait(consumer()), "from thread")
        finally:
            th.join()

    def test_join(self):
        log = []

        def worker(n):
            for i in range(n):
                stacklesslib.sleep(0.005)
            log.append(("worker done", n))

        async def joiner(t):
            await sasyncio.join(t)
            log.append(("joined", t.alive))

        t = self.spawn(worker, 3)
        sasyncio.wait(joiner(t))
        self.assertEqual(log, [("worker done", 3), ("joined", False)])
        # Not alive: at once.
        sasyncio.wait(joiner(t))
        self.assertEqual(log[-1], ("joined", False))
        self.assertRaises(TypeError, sasyncio.wait, sasyncio.join(42))

    def test_join_killed_and_blocked_tasklet(self):
        ch = stackless.channel()
        t = self.spawn(ch.receive)
        stackless.schedule()

        async def joiner():
            await sasyncio.join(t)
            return "joined"

        def killer():
            stacklesslib.sleep(0.02)
            t.kill()

        self.spawn(killer)
        self.assertEqual(sasyncio.wait(joiner()), "joined")
        self.assertFalse(t.alive)

    def test_run_with_loop_factory_in_main(self):
        log = []

        def ticker():
            for i in range(3):
                log.append(i)
                stacklesslib.sleep(0.005)

        async def main():
            stackless.tasklet(ticker)()
            await asyncio.sleep(0.05)
            return "main"

        self.assertEqual(asyncio.run(main(),
                                     loop_factory=sasyncio.HubEventLoop),
                         "main")
        self.assertEqual(log, [0, 1, 2])


if __name__ == "__main__":
    unittest.main()
