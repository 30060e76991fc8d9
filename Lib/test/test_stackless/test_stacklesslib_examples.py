"""The stacklesslib examples, run as servers in subprocesses and used by
real clients over TCP on 127.0.0.1: examples/chat_server.py and
examples/http_server.py."""

import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

EXAMPLES = os.path.join(os.path.dirname(os.path.realpath(__file__)),
                        "..", "..", "..", "examples")


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class ServerTestCase(unittest.TestCase):
    script = None

    def setUp(self):
        path = os.path.join(EXAMPLES, self.script)
        if not os.path.exists(path):
            self.skipTest("the repository's examples are not here")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON")}
        self.proc = subprocess.Popen(
            [sys.executable, path, "0"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env)
        self.addCleanup(self.stop)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on ([\d.]+):(\d+)$", line.strip())
        if m is None:
            self.proc.kill()
            self.fail(f"no 'listening on' line: {line!r} "
                      f"{self.proc.stderr.read()}")
        self.addr = (m.group(1), int(m.group(2)))

    def stop(self):
        alive = self.proc.poll() is None
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.assertTrue(alive, "the server died: " + err)
        self.assertNotIn("Traceback", err)

    def connect(self):
        s = socket.create_connection(self.addr, timeout=30)
        self.addCleanup(s.close)
        return s

    def wait_for_fds(self, expected, limit=30.0):
        """Wait until the server has `expected` fds open (it closes the
        dropped connections as it gets to them)."""
        deadline = time.monotonic() + limit
        while fd_count(self.proc.pid) != expected:
            if time.monotonic() > deadline:
                self.fail(f"the server has {fd_count(self.proc.pid)} fds, "
                          f"expected {expected}")
            time.sleep(0.02)


class ChatClient:
    def __init__(self, test, name):
        self.sock = test.connect()
        self.file = self.sock.makefile("rwb")
        test.addCleanup(self.file.close)
        if name is not None:
            self.say(name)

    def say(self, line):
        self.file.write(line.encode() + b"\n")
        self.file.flush()

    def hear(self):
        return self.file.readline().decode().rstrip("\n")


class TestChatServer(ServerTestCase):
    script = "chat_server.py"

    def test_join_broadcast_and_leave(self):
        alice = ChatClient(self, "alice")
        self.assertEqual(alice.hear(), "* welcome alice, 1 online")
        bob = ChatClient(self, "bob")
        self.assertEqual(bob.hear(), "* welcome bob, 2 online")
        self.assertEqual(alice.hear(), "* bob joined")
        carol = ChatClient(self, "carol")
        self.assertEqual(carol.hear(), "* welcome carol, 3 online")
        self.assertEqual(alice.hear(), "* carol joined")
        self.assertEqual(bob.hear(), "* carol joined")
        alice.say("hello all")
        self.assertEqual(bob.hear(), "alice: hello all")
        self.assertEqual(carol.hear(), "alice: hello all")
        bob.say("hi alice")
        self.assertEqual(alice.hear(), "bob: hi alice")
        self.assertEqual(carol.hear(), "bob: hi alice")
        # bob disconnects abruptly, carol says goodbye.
        bob.file.close()
        bob.sock.close()
        self.assertEqual(alice.hear(), "* bob left")
        self.assertEqual(carol.hear(), "* bob left")
        carol.say("/quit")
        self.assertEqual(alice.hear(), "* carol left")
        self.assertEqual(carol.hear(), "")      # closed by the server
        alice.say("anyone?")
        dave = ChatClient(self, "dave")
        self.assertEqual(dave.hear(), "* welcome dave, 2 online")
        self.assertEqual(alice.hear(), "* dave joined")

    def test_disconnect_mid_line_and_many_drops(self):
        alice = ChatClient(self, "alice")
        self.assertEqual(alice.hear(), "* welcome alice, 1 online")
        base = fd_count(self.proc.pid)
        half = ChatClient(self, "half")
        self.assertEqual(alice.hear(), "* half joined")
        half.file.write(b"no newline here")
        half.file.flush()
        half.file.close()
        half.sock.close()
        self.assertEqual(alice.hear(), "* half left")
        # Many connections opened and dropped at once, some mid-name.
        socks = [socket.create_connection(self.addr, timeout=30)
                 for _ in range(200)]
        for i, s in enumerate(socks):
            if i % 2:
                s.sendall(b"partial")
            s.close()
        self.wait_for_fds(base)
        bob = ChatClient(self, "bob")
        self.assertEqual(bob.hear(), "* welcome bob, 2 online")
        self.assertEqual(alice.hear(), "* bob joined")


class TestHttpServer(ServerTestCase):
    script = "http_server.py"

    def test_keep_alive_requests(self):
        conn = http.client.HTTPConnection(*self.addr, timeout=30)
        self.addCleanup(conn.close)
        sock = None
        for i in range(5):
            conn.request("GET", "/")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.read(), b"Hello, world!\n")
            self.assertFalse(resp.will_close)
            if sock is None:
                sock = conn.sock
            self.assertIs(conn.sock, sock)      # the same connection
        conn.request("GET", "/nothing")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 404)
        resp.read()
        conn.request("POST", "/", body=b"x" * 100000)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 405)
        resp.read()
        conn.request("HEAD", "/")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Length"), "14")
        self.assertEqual(resp.read(), b"")
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        self.assertEqual(resp.read(), b"Hello, world!\n")
        self.assertTrue(resp.will_close)
        self.assertIsNone(conn.sock)        # http.client closed it

    def test_pipelined_and_bad_requests(self):
        s = self.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        f = s.makefile("rb")
        self.addCleanup(f.close)
        for _ in range(3):
            self.assertEqual(f.readline(), b"HTTP/1.1 200 OK\r\n")
            while f.readline() != b"\r\n":
                pass
            self.assertEqual(f.read(14), b"Hello, world!\n")
        s.sendall(b"NONSENSE\r\n\r\n")
        self.assertEqual(f.readline(), b"HTTP/1.1 400 Bad Request\r\n")
        while f.readline() != b"\r\n":
            pass
        self.assertEqual(f.read(), b"")         # closed by the server
        s2 = self.connect()
        s2.sendall(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 12000)
        f2 = s2.makefile("rb")
        self.addCleanup(f2.close)
        self.assertEqual(f2.readline(),
                         b"HTTP/1.1 431 Request Header Fields Too Large\r\n")

    def test_concurrent_clients_and_drops_without_leak(self):
        warm = http.client.HTTPConnection(*self.addr, timeout=30)
        warm.request("GET", "/")
        warm.getresponse().read()
        base = fd_count(self.proc.pid) - 1      # all but this connection
        warm.close()
        self.wait_for_fds(base)
        # A slow client: holds a half request while others are served.
        slow = self.connect()
        slow.sendall(b"GET / HT")
        errors = []
        done = []

        def client():
            try:
                conn = http.client.HTTPConnection(*self.addr, timeout=30)
                for _ in range(10):
                    conn.request("GET", "/")
                    resp = conn.getresponse()
                    if resp.status != 200 or resp.read() != \
                            b"Hello, world!\n":
                        errors.append(resp.status)
                conn.close()
                done.append(True)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(done), 20)
        slow.sendall(b"TP/1.1\r\n\r\n")
        self.assertTrue(slow.recv(100).startswith(b"HTTP/1.1 200 OK"))
        slow.close()
        # Connections opened and dropped at once, some mid-request.
        socks = [socket.create_connection(self.addr, timeout=30)
                 for _ in range(300)]
        for i, s in enumerate(socks):
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHo")
            s.close()
        self.wait_for_fds(base)


if __name__ == "__main__":
    unittest.main()
