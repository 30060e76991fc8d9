"""stacklesslib.socket: sockets whose blocking calls block only the
tasklet, over real TCP (and UDP) on 127.0.0.1."""

import errno
import os
import socket as stdsocket
import threading
import time
import unittest

import stackless
import stacklesslib
from stacklesslib import _hub
from stacklesslib import socket as ssocket

from test.test_stackless.helpers import drive_hub, kill_all


drive = drive_hub


def drive_until(cond, limit=10.0):
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        stackless.schedule()


def open_fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class SocketTestCase(unittest.TestCase):

    def setUp(self):
        self.assertIs(stackless.getcurrent(), stackless.getmain())
        self.hub = _hub.get_hub()
        drive()
        self.tasklets = []
        self.sockets = []
        self.fds_before = open_fds()
        self.addCleanup(self.check_clean)

    def spawn(self, func, *args):
        t = stackless.tasklet(func)(*args)
        self.tasklets.append(t)
        return t

    def track(self, sock):
        self.sockets.append(sock)
        return sock

    def server(self, backlog=128):
        return self.track(ssocket.create_server(("127.0.0.1", 0),
                                                backlog=backlog))

    def check_clean(self):
        for t in self.tasklets:
            kill_all(t)
        for s in self.sockets:
            s.close()
        drive()
        self.assertEqual(self.hub._nwaiters, 0)
        self.assertEqual(self.hub._fds, {})
        self.assertEqual(self.hub._ntimers, 0)
        self.assertEqual(stackless.getruncount(), 1)
        # The worker threads of run_in_thread() (name resolution).
        _hub._pool.shutdown()
        if self.fds_before is not None:
            self.assertEqual(open_fds(), self.fds_before)


class TestModule(unittest.TestCase):

    def test_api_of_the_standard_module(self):
        for name in stdsocket.__all__:
            self.assertTrue(hasattr(ssocket, name), name)
        self.assertEqual(ssocket.AF_INET, stdsocket.AF_INET)
        self.assertIs(ssocket.timeout, TimeoutError)
        self.assertIs(ssocket.error, OSError)
        self.assertIs(ssocket.gaierror, stdsocket.gaierror)
        self.assertTrue(issubclass(ssocket.socket, stdsocket.socket))
        for name in ("socket", "create_connection", "create_server",
                     "socketpair", "fromfd", "getaddrinfo",
                     "gethostbyname"):
            self.assertIsNot(getattr(ssocket, name),
                             getattr(stdsocket, name), name)

    def test_timeout_settings(self):
        with ssocket.socket() as s:
            self.assertIsNone(s.gettimeout())
            self.assertTrue(s.getblocking())
            # The real socket never blocks.
            self.assertFalse(os.get_blocking(s.fileno()))
            s.settimeout(1.5)
            self.assertEqual(s.gettimeout(), 1.5)
            self.assertEqual(s.timeout, 1.5)
            self.assertTrue(s.getblocking())
            s.setblocking(False)
            self.assertEqual(s.gettimeout(), 0.0)
            self.assertFalse(s.getblocking())
            s.setblocking(True)
            self.assertIsNone(s.gettimeout())
            s.settimeout(3)
            self.assertEqual(s.gettimeout(), 3.0)
            self.assertRaises(ValueError, s.settimeout, -1)
            self.assertRaises(TypeError, s.settimeout, "1")
            self.assertEqual(s.gettimeout(), 3.0)
            self.assertFalse(os.get_blocking(s.fileno()))

    def test_default_timeout(self):
        old = ssocket.getdefaulttimeout()
        ssocket.setdefaulttimeout(2.5)
        try:
            with ssocket.socket() as s:
                self.assertEqual(s.gettimeout(), 2.5)
                self.assertFalse(os.get_blocking(s.fileno()))
        finally:
            ssocket.setdefaulttimeout(old)

    def test_not_picklable_and_repr(self):
        import pickle
        with ssocket.socket() as s:
            self.assertRaises(TypeError, pickle.dumps, s)
            self.assertIn("stacklesslib.socket.socket", repr(s))

    def test_numeric_resolution_without_thread(self):
        infos = ssocket.getaddrinfo("127.0.0.1", 80, ssocket.AF_INET,
                                    ssocket.SOCK_STREAM)
        self.assertEqual(infos[0][4], ("127.0.0.1", 80))
        self.assertIs(infos[0][0], ssocket.AF_INET)
        self.assertEqual(ssocket.gethostbyname("127.0.0.1"), "127.0.0.1")


class TestEcho(SocketTestCase):

    def test_many_tasklets_echo_concurrently(self):
        # Every client sends, gets its echo and then waits until all
        # clients are at that point: with sockets that blocked the
        # thread, the first client would never let the others in.
        n = 40
        server = self.server()
        addr = server.getsockname()
        gate = stackless.channel()
        arrived = []
        results = {}

        def handle(conn):
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

        def serve():
            while True:
                conn, _ = server.accept()
                self.spawn(handle, conn)

        def client(i):
            with ssocket.create_connection(addr) as c:
                got = []
                for round in range(3):
                    msg = f"client {i} round {round}\n".encode()
                    c.sendall(msg)
                    buf = b""
                    while len(buf) < len(msg):
                        chunk = c.recv(1024)
                        self.assertTrue(chunk)
                        buf += chunk
                    got.append(buf)
                    if round == 0:
                        arrived.append(i)
                        gate.receive()
                results[i] = got

        self.spawn(serve)
        for i in range(n):
            self.spawn(client, i)
        while len(arrived) < n:
            stackless.schedule()
        self.assertEqual(sorted(arrived), list(range(n)))
        self.assertEqual(results, {})
        for i in range(n):
            gate.send(None)
        while len(results) < n:
            stackless.schedule()
        for i in range(n):
            self.assertEqual(results[i], [
                f"client {i} round {r}\n".encode() for r in range(3)])

    def test_main_blocks_alone_on_accept_and_recv(self):
        # Main is the only tasklet; a thread connects: main waits in the
        # hub (epoll), not in Deadlock.
        server = self.server()
        addr = server.getsockname()

        def other_thread():
            with stdsocket.create_connection(addr) as c:
                c.sendall(b"hello")
                self.assertEqual(c.recv(5), b"world")

        th = threading.Thread(target=other_thread)
        th.start()
        try:
            conn, peer = server.accept()
            with conn:
                self.assertIsInstance(conn, ssocket.socket)
                self.assertEqual(peer, conn.getpeername())
                self.assertEqual(conn.recv(5), b"hello")
                conn.sendall(b"world")
        finally:
            th.join()

    def test_sendall_large_to_slow_reader(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        data = os.urandom(4 * 1024 * 1024)
        received = bytearray()
        done = []

        def reader():
            while len(received) < len(data):
                received.extend(b.recv(65536))
                stacklesslib.sleep(0)
            done.append(True)

        self.spawn(reader)
        a.sendall(data)
        while not done:
            stackless.schedule()
        self.assertEqual(bytes(received), data)

    def test_recv_into_recvfrom_and_send(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        buf = bytearray(10)

        def writer():
            stacklesslib.sleep(0.01)
            self.assertEqual(a.send(b"0123456789"), 10)

        self.spawn(writer)
        self.assertEqual(b.recv_into(buf), 10)
        self.assertEqual(buf, b"0123456789")
        self.spawn(writer)
        data, _ = b.recvfrom(4)
        self.assertEqual(data, b"0123")

    def test_udp(self):
        r = self.track(ssocket.socket(ssocket.AF_INET, ssocket.SOCK_DGRAM))
        r.bind(("127.0.0.1", 0))
        s = self.track(ssocket.socket(ssocket.AF_INET, ssocket.SOCK_DGRAM))
        got = []

        def receiver():
            got.append(r.recvfrom(100))

        self.spawn(receiver)
        stackless.schedule()
        self.assertEqual(got, [])
        s.sendto(b"datagram", r.getsockname())
        while not got:
            stackless.schedule()
        self.assertEqual(got[0][0], b"datagram")
        self.assertEqual(got[0][1][1], s.getsockname()[1])
        buf = bytearray(20)
        s.sendto(b"again", 0, r.getsockname())
        n, addr = r.recvfrom_into(buf)
        self.assertEqual(buf[:n], b"again")

    def test_create_connection_by_name(self):
        # "localhost" is resolved in a worker thread.
        server = self.server()
        port = server.getsockname()[1]
        accepted = []
        self.spawn(lambda: accepted.append(server.accept()[0]))
        with ssocket.create_connection(("localhost", port),
                                       timeout=10) as c:
            self.assertEqual(c.gettimeout(), 10)
            self.assertIsInstance(c, ssocket.socket)
            while not accepted:
                stackless.schedule()
            accepted[0].close()
            self.assertEqual(c.recv(10), b"")
        self.assertIn(ssocket.gethostbyname("localhost"),
                      ("127.0.0.1", "::1"))

    def test_connect_by_name(self):
        server = self.server()
        port = server.getsockname()[1]
        with ssocket.socket() as c:
            c.connect(("localhost", port))
            conn, _ = server.accept()
            conn.close()
            self.assertEqual(c.getpeername()[1], port)

    def test_connect_refused(self):
        with ssocket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            addr = probe.getsockname()
        with ssocket.socket() as c:
            self.assertRaises(ConnectionRefusedError, c.connect, addr)
        with ssocket.socket() as c:
            self.assertEqual(c.connect_ex(addr), errno.ECONNREFUSED)
        self.assertRaises(ConnectionRefusedError,
                          ssocket.create_connection, addr)

    def test_non_blocking_mode(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        b.setblocking(False)
        self.assertRaises(BlockingIOError, b.recv, 10)
        server = self.server()
        server.setblocking(False)
        self.assertRaises(BlockingIOError, server.accept)

    def test_dup_fromfd_and_sendfile(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        a.settimeout(5)
        d = self.track(a.dup())
        self.assertIsInstance(d, ssocket.socket)
        self.assertEqual(d.gettimeout(), 5)
        f = self.track(ssocket.fromfd(b.fileno(), b.family, b.type))
        self.assertIsInstance(f, ssocket.socket)
        self.assertFalse(os.get_blocking(f.fileno()))
        import tempfile
        with tempfile.TemporaryFile() as tmp:
            tmp.write(b"file contents")
            tmp.seek(0)
            self.assertEqual(d.sendfile(tmp), 13)
        self.assertEqual(f.recv(100), b"file contents")


class TestTimeouts(SocketTestCase):

    def test_recv_timeout_while_others_run(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        b.settimeout(0.1)
        ticks = []

        def ticker():
            while True:
                ticks.append(None)
                stacklesslib.sleep(0.01)

        self.spawn(ticker)
        start = time.monotonic()
        with self.assertRaises(ssocket.timeout) as cm:
            b.recv(10)
        self.assertGreaterEqual(time.monotonic() - start, 0.1)
        self.assertEqual(str(cm.exception), "timed out")
        self.assertGreater(len(ticks), 1)
        # The socket still works.
        a.sendall(b"late")
        self.assertEqual(b.recv(10), b"late")

    def test_accept_timeout(self):
        server = self.server()
        server.settimeout(0.05)
        self.assertRaises(TimeoutError, server.accept)

    def test_sendall_timeout_is_for_the_whole_call(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        a.settimeout(0.1)
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            a.sendall(b"x" * (64 * 1024 * 1024))
        self.assertGreaterEqual(time.monotonic() - start, 0.1)

    def test_stacklesslib_timeout_around_recv(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        with self.assertRaises(TimeoutError):
            with stacklesslib.timeout(0.05):
                b.recv(10)
        a.sendall(b"ok")
        self.assertEqual(b.recv(10), b"ok")

    def test_makefile_timeout(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        b.settimeout(0.05)
        with b.makefile("rb") as f:
            self.assertRaises(TimeoutError, f.readline)


class TestCloseAndFaults(SocketTestCase):

    def test_close_wakes_waiting_reader(self):
        a, b = ssocket.socketpair()
        self.track(a)
        errors = []

        def reader():
            try:
                b.recv(10)
            except OSError as exc:
                errors.append(exc)

        self.spawn(reader)
        stackless.schedule()
        self.assertEqual(self.hub._nwaiters, 1)
        b.close()
        while not errors:
            stackless.schedule()
        self.assertEqual(errors[0].errno, errno.EBADF)
        self.assertEqual(self.hub._nwaiters, 0)

    def test_read_after_close_of_drained_socket(self):
        # A read that got less than asked marks the socket drained (the
        # next read waits first); closed meanwhile, the next read raises
        # EBADF as on any closed socket, without waiting for fd -1.
        a, b = ssocket.socketpair()
        self.track(b)
        b.send(b"x")
        self.assertEqual(a.recv(100), b"x")
        a.close()
        with self.assertRaises(OSError) as cm:
            a.recv(100)
        self.assertEqual(cm.exception.errno, errno.EBADF)
        self.assertEqual(self.hub._nwaiters, 0)

    def test_close_wakes_waiting_accept_and_writer(self):
        server = self.server()
        a, b = ssocket.socketpair()
        self.track(b)
        errors = []

        def acceptor():
            try:
                server.accept()
            except OSError as exc:
                errors.append(("accept", exc.errno))

        def writer():
            try:
                a.sendall(b"x" * (64 * 1024 * 1024))
            except OSError as exc:
                errors.append(("sendall", exc.errno))

        self.spawn(acceptor)
        self.spawn(writer)
        stackless.schedule()
        stackless.schedule()
        self.assertEqual(self.hub._nwaiters, 2)
        server.close()
        a.close()
        while len(errors) < 2:
            stackless.schedule()
        self.assertEqual(sorted(errors), [("accept", errno.EBADF),
                                          ("sendall", errno.EBADF)])

    def test_close_from_other_thread_wakes_waiter(self):
        a, b = ssocket.socketpair()
        self.track(a)
        started = threading.Event()

        def closer():
            started.wait()
            time.sleep(0.05)
            b.close()

        th = threading.Thread(target=closer)
        th.start()
        try:
            started.set()
            with self.assertRaises(OSError) as cm:
                b.recv(10)
            self.assertEqual(cm.exception.errno, errno.EBADF)
        finally:
            th.join()

    def test_kill_waiting_tasklet_cleans_up(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        t = self.spawn(b.recv, 10)
        stackless.schedule()
        self.assertEqual(self.hub._nwaiters, 1)
        t.kill()
        self.assertEqual(self.hub._nwaiters, 0)
        # The fd stays registered for its socket (no waiter), until the
        # socket is closed.
        entry = self.hub._fds[b.fileno()]
        self.assertEqual((entry.readers, entry.writers), ((), ()))
        b.close()
        self.assertEqual(self.hub._fds, {})

    def selector_fds(self):
        return {key.fd for key in self.hub.selector.get_map().values()
                if key.fd != self.hub._rfd}

    def test_registration_kept_between_waits(self):
        # A socket's fd stays registered with epoll between its reads:
        # the second wait registers nothing anew.
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        got = []

        def reader():
            got.append(b.recv(10))
            got.append(b.recv(10))

        self.spawn(reader)
        stackless.schedule()
        entry = self.hub._fds[b.fileno()]
        self.assertIs(b._hub_entry, entry)
        a.sendall(b"one")
        drive_until(lambda: len(got) == 1)
        # Between the waits: no waiter, still registered.
        self.assertIn(b.fileno(), self.selector_fds())
        stackless.schedule()
        self.assertIs(self.hub._fds[b.fileno()], entry)
        a.sendall(b"two")
        drive()
        self.assertEqual(got, [b"one", b"two"])
        self.assertIn(b.fileno(), self.selector_fds())
        fd = b.fileno()
        b.close()
        self.assertNotIn(fd, self.hub._fds)
        self.assertNotIn(fd, self.selector_fds())

    def test_ready_without_waiter_is_unregistered(self):
        # Data that comes while nobody waits does not make the hub spin:
        # the kept registration is dropped, and the next wait makes it
        # again.
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        got = []

        def reader():
            got.append(b.recv(10))

        self.spawn(reader)
        stackless.schedule()
        a.sendall(b"x")
        drive()
        self.assertEqual(got, [b"x"])
        a.sendall(b"y")                 # nobody reads
        self.hub._dispatch(self.hub.selector.select(0))
        self.assertNotIn(b.fileno(), self.hub._fds)
        self.assertNotIn(b.fileno(), self.selector_fds())
        self.spawn(reader)
        drive()
        self.assertEqual(got, [b"x", b"y"])

    def test_fd_number_reused_after_collected_socket(self):
        # A socket collected without close() leaves its registration
        # behind; the kernel dropped it with the file.  Another socket
        # that gets the same fd number must be registered anew, or its
        # reader would wait for ever.
        import gc
        import warnings
        a, b = ssocket.socketpair()
        self.track(a)
        got = []

        def reader(sock):
            got.append(sock.recv(10))

        self.spawn(reader, b)
        stackless.schedule()
        a.sendall(b"1")
        drive()
        fd = b.fileno()
        self.assertIn(fd, self.hub._fds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del b
            gc.collect()
        c, d = ssocket.socketpair()
        self.track(c)
        self.track(d)
        fds = {c.fileno(), d.fileno()}
        self.assertIn(fd, fds)          # the number came back
        other = d if d.fileno() == fd else c
        peer = c if other is d else d
        self.spawn(reader, other)
        stackless.schedule()
        peer.sendall(b"2")
        drive()
        self.assertEqual(got, [b"1", b"2"])

    def test_drained_stream_waits_before_reading(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)
        self.assertIs(b._drained, False)
        a.sendall(b"abc")
        self.assertEqual(b.recv(10), b"abc")      # short: drained
        self.assertIs(b._drained, True)
        a.sendall(b"defgh")
        # Drained, so it waits in the hub first; the data is there, so
        # the hub wakes it at once.
        self.assertEqual(b.recv(3), b"def")        # full: not drained
        self.assertIs(b._drained, False)
        self.assertEqual(b.recv(2), b"gh")
        buf = bytearray(10)
        a.sendall(b"ij")
        self.assertEqual(b.recv_into(buf), 2)
        self.assertIs(b._drained, True)
        u = self.track(ssocket.socket(ssocket.AF_INET, ssocket.SOCK_DGRAM))
        self.assertIsNone(u._drained)

    def test_detach_drops_registration(self):
        a, b = ssocket.socketpair()
        self.track(a)
        got = []
        self.spawn(lambda: got.append(b.recv(10)))
        stackless.schedule()
        a.sendall(b"z")
        drive()
        fd = b.fileno()
        self.assertIn(fd, self.hub._fds)
        self.assertEqual(b.detach(), fd)
        self.assertNotIn(fd, self.hub._fds)
        os.close(fd)

    def test_peer_disconnects_mid_read(self):
        server = self.server()
        addr = server.getsockname()
        got = []

        def handle():
            conn, _ = server.accept()
            with conn, conn.makefile("rb") as f:
                got.append(f.readline())
                got.append(f.readline())
                got.append(conn.recv(10))

        self.spawn(handle)
        c = ssocket.create_connection(addr)
        c.sendall(b"complete line\npartial")
        stacklesslib.sleep(0.01)
        c.close()
        while len(got) < 3:
            stackless.schedule()
        self.assertEqual(got, [b"complete line\n", b"partial", b""])

    def test_peer_reset(self):
        server = self.server()
        addr = server.getsockname()
        errors = []

        def handle():
            conn, _ = server.accept()
            with conn:
                try:
                    conn.recv(10)
                    conn.recv(10)
                except ConnectionResetError as exc:
                    errors.append(exc)

        self.spawn(handle)
        c = ssocket.create_connection(addr)
        c.sendall(b"x")
        stacklesslib.sleep(0.01)
        import struct
        c.setsockopt(ssocket.SOL_SOCKET, ssocket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()
        while not errors:
            stackless.schedule()
        self.assertIsInstance(errors[0], ConnectionResetError)

    def test_many_connections_opened_and_dropped(self):
        n = 300
        server = self.server(backlog=n)
        addr = server.getsockname()
        handled = []

        def handle(conn):
            with conn:
                handled.append(conn.recv(10))

        def serve():
            while True:
                conn, _ = server.accept()
                self.spawn(handle, conn)

        self.spawn(serve)
        clients = [ssocket.create_connection(addr) for _ in range(n)]
        for c in clients:
            c.close()
        while len(handled) < n:
            stackless.schedule()
        self.assertEqual(handled, [b""] * n)


class TestMakefile(SocketTestCase):

    def test_line_reading_of_pieces(self):
        a, b = ssocket.socketpair()
        self.track(a)
        self.track(b)

        def writer():
            for piece in (b"first ", b"line\nsecond", b" line\n", b"th",
                          b"ird\n"):
                a.sendall(piece)
                stacklesslib.sleep(0.005)
            a.shutdown(ssocket.SHUT_WR)

        self.spawn(writer)
        with b.makefile("r", encoding="ascii", newline="\n") as f:
            self.assertEqual(list(f), ["first line\n", "second line\n",
                                       "third\n"])

    def test_write_and_read_text(self):
        server = self.server()
        addr = server.getsockname()

        def upper_server():
            conn, _ = server.accept()
            with conn, conn.makefile("rw", encoding="utf-8",
                                     newline="\n") as f:
                for line in f:
                    f.write(line.upper())
                    f.flush()

        self.spawn(upper_server)
        with ssocket.create_connection(addr) as c, \
                c.makefile("rw", encoding="utf-8", newline="\n") as f:
            for word in ("alpha", "beta", "gamma"):
                f.write(word + "\n")
                f.flush()
                self.assertEqual(f.readline(), word.upper() + "\n")


if __name__ == "__main__":
    unittest.main()
