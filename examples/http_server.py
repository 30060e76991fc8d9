"""A minimal HTTP/1.1 keep-alive server: one tasklet per connection.

    python examples/http_server.py [PORT]     (default 8080; 0: any)

Listens on 127.0.0.1:PORT and prints "listening on 127.0.0.1:PORT".
GET (or HEAD) / answers 200 with a short fixed body; other paths 404,
other methods 405; a malformed request gets 400 and the connection is
closed.  Connections are kept alive (HTTP/1.1 default, or HTTP/1.0 with
"Connection: keep-alive") and pipelined requests are answered in order.
Request bodies (Content-Length) are read and dropped; chunked request
bodies are refused with 411.  A header section larger than 64 KiB gets
431.  A client idle for IDLE_TIMEOUT seconds between requests is
disconnected (None: never).

It is the server of bench/http_bench.py; bench/asyncio_http_server.py
is the same server on asyncio streams.
"""

import sys

import stackless
import stacklesslib
from stacklesslib import socket

BODY = b"Hello, world!\n"
MAX_HEADER = 64 * 1024
IDLE_TIMEOUT = None


def _response(status, body, keep_alive, head=False):
    lines = [f"HTTP/1.1 {status}",
             "Content-Type: text/plain",
             f"Content-Length: {len(body)}"]
    if not keep_alive:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return data if head else data + body


OK = _response("200 OK", BODY, True)
OK_CLOSE = _response("200 OK", BODY, False)


def parse_head(head):
    """Return (method, target, version, headers) of a request head
    (bytes without the final blank line); ValueError if malformed."""
    lines = head.split(b"\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise ValueError("bad request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ValueError("bad header line")
        headers[name.decode("latin-1").lower()] = \
            value.strip().decode("latin-1")
    return method, target, version, headers


def refuse(conn, status):
    """Answer an error and close, reading what the client still sends
    for a moment (a lingering close: the answer is not lost to a
    reset)."""
    conn.sendall(_response(status, b"", False))
    conn.shutdown(socket.SHUT_WR)
    conn.settimeout(1.0)
    for _ in range(64):
        if not conn.recv(65536):
            break


def handle(conn):
    """Serve the requests of one connection until it closes."""
    conn.settimeout(IDLE_TIMEOUT)
    buf = b""
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                if len(buf) > MAX_HEADER:
                    refuse(conn, "431 Request Header Fields Too Large")
                    return
                data = conn.recv(65536)
                if not data:
                    return                  # closed, maybe mid-request
                buf += data
                end = buf.find(b"\r\n\r\n", max(0, len(buf) - len(data) - 3))
            head, buf = buf[:end], buf[end + 4:]
            try:
                method, target, version, headers = parse_head(head)
                length = int(headers.get("content-length", "0"))
                if length < 0:
                    raise ValueError("negative Content-Length")
            except ValueError:
                refuse(conn, "400 Bad Request")
                return
            if "chunked" in headers.get("transfer-encoding", "").lower():
                refuse(conn, "411 Length Required")
                return
            # Read and drop the body.
            while len(buf) < length:
                data = conn.recv(min(65536, length - len(buf)))
                if not data:
                    return
                buf += data
            buf = buf[length:]
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.0":
                keep_alive = connection == "keep-alive"
            else:
                keep_alive = connection != "close"
            if method not in ("GET", "HEAD"):
                conn.sendall(_response("405 Method Not Allowed", b"",
                                       keep_alive))
            elif target != "/":
                conn.sendall(_response("404 Not Found", b"Not found\n",
                                       keep_alive, method == "HEAD"))
            elif method == "HEAD":
                conn.sendall(_response("200 OK", BODY, keep_alive, True))
            else:
                conn.sendall(OK if keep_alive else OK_CLOSE)
            if not keep_alive:
                return
    except OSError:
        pass                                # reset, timeout, closed
    finally:
        conn.close()


def serve_forever(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            if listener.fileno() < 0:
                return                      # the listener was closed
            # EMFILE and the like: wait a little for fds to be freed.
            print(f"accept: {exc}", file=sys.stderr)
            stacklesslib.sleep(0.1)
            continue
        stackless.tasklet(handle)(conn)


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else 8080
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    host, port = listener.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    stackless.tasklet(serve_forever)(listener)
    try:
        stackless.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv)
