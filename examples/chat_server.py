"""A line-based chat server: one tasklet per connection.

    python examples/chat_server.py [PORT]     (default 8023; 0: any)

Listens on 127.0.0.1:PORT and prints "listening on 127.0.0.1:PORT".
A client (try `nc 127.0.0.1 8023`) first sends its name on a line; the
server greets it with "* welcome NAME, N online" and tells the others
"* NAME joined".  Each line it then sends reaches the other clients as
"NAME: line"; when it disconnects (or sends "/quit") the others get
"* NAME left".

Every connection has a reader tasklet (the handler) and a writer
tasklet with an outbox, so that a slow client slows only itself; a
client whose outbox overflows (it does not read) is dropped.
"""

import collections
import sys

import stackless
from stacklesslib import socket

MAX_LINE = 4096
MAX_OUTBOX = 1000


class Client:
    """A connection: its name, its socket and an outbox drained by a
    writer tasklet."""

    def __init__(self, conn):
        self.conn = conn
        self.name = None
        self.outbox = collections.deque()
        self.wakeup = stackless.channel()
        self.wakeup.preference = 0     # the sender goes on running
        self.closed = False
        self.writer = stackless.tasklet(self._write_loop)()

    def send_line(self, text):
        if self.closed:
            return
        if len(self.outbox) >= MAX_OUTBOX:
            self.close()               # too slow: drop it
            return
        self.outbox.append((text + "\n").encode("utf-8", "replace"))
        if self.wakeup.balance < 0:
            self.wakeup.send(None)

    def _write_loop(self):
        try:
            while not self.closed:
                if not self.outbox:
                    self.wakeup.receive()
                    continue
                self.conn.sendall(self.outbox.popleft())
        except OSError:
            self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.outbox.clear()
            if self.wakeup.balance < 0:
                self.wakeup.send(None)
            try:
                # Wakes the reader (end of file) even while its makefile()
                # keeps the socket open.
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()


class ChatServer:
    def __init__(self, host="127.0.0.1", port=8023):
        self.listener = socket.create_server((host, port), backlog=1024)
        self.clients = set()

    @property
    def address(self):
        return self.listener.getsockname()

    def broadcast(self, text, sender=None):
        for client in list(self.clients):
            if client is not sender:
                client.send_line(text)

    def serve_forever(self):
        while True:
            conn, _ = self.listener.accept()
            stackless.tasklet(self.handle)(conn)

    def handle(self, conn):
        client = Client(conn)
        lines = conn.makefile("rb")
        try:
            name = self._read_line(lines)
            if not name:
                return
            client.name = name
            self.clients.add(client)
            client.send_line(f"* welcome {name}, {len(self.clients)} online")
            self.broadcast(f"* {name} joined", client)
            while (line := self._read_line(lines)) is not None:
                if line == "/quit":
                    break
                if line:
                    self.broadcast(f"{name}: {line}", client)
        except OSError:
            pass                       # reset by the peer, or dropped
        finally:
            if client in self.clients:
                self.clients.discard(client)
                self.broadcast(f"* {client.name} left")
            lines.close()
            client.close()

    @staticmethod
    def _read_line(lines):
        raw = lines.readline(MAX_LINE + 1)
        if not raw or not raw.endswith(b"\n"):
            return None                # end of file, or a line too long
        return raw.decode("utf-8", "replace").rstrip("\r\n")


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else 8023
    server = ChatServer(port=port)
    host, port = server.address
    print(f"listening on {host}:{port}", flush=True)
    stackless.tasklet(server.serve_forever)()
    try:
        stackless.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv)
