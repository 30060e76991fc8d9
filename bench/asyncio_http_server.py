"""examples/http_server.py written on asyncio streams, for comparison.

    python bench/asyncio_http_server.py [PORT]

The same behaviour (GET / -> 200 with a short fixed body, keep-alive,
pipelining, 400/404/405/411/431), one asyncio task per connection,
using only the standard library (run it on stock CPython).
"""

import asyncio
import sys

BODY = b"Hello, world!\n"
MAX_HEADER = 64 * 1024


def _response(status, body, keep_alive, head=False):
    lines = [f"HTTP/1.1 {status}", "Content-Type: text/plain",
             f"Content-Length: {len(body)}"]
    if not keep_alive:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return data if head else data + body


OK = _response("200 OK", BODY, True)
OK_CLOSE = _response("200 OK", BODY, False)


def parse_head(head):
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


async def handle(reader, writer):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                writer.write(_response("431 Request Header Fields Too "
                                       "Large", b"", False))
                await writer.drain()
                return
            try:
                method, target, version, headers = parse_head(head[:-4])
                length = int(headers.get("content-length", "0"))
                if length < 0:
                    raise ValueError("negative Content-Length")
            except ValueError:
                writer.write(_response("400 Bad Request", b"", False))
                await writer.drain()
                return
            if "chunked" in headers.get("transfer-encoding", "").lower():
                writer.write(_response("411 Length Required", b"", False))
                await writer.drain()
                return
            if length:
                try:
                    await reader.readexactly(length)
                except asyncio.IncompleteReadError:
                    return
            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.0":
                keep_alive = connection == "keep-alive"
            else:
                keep_alive = connection != "close"
            if method not in ("GET", "HEAD"):
                writer.write(_response("405 Method Not Allowed", b"",
                                       keep_alive))
            elif target != "/":
                writer.write(_response("404 Not Found", b"Not found\n",
                                       keep_alive, method == "HEAD"))
            elif method == "HEAD":
                writer.write(_response("200 OK", BODY, keep_alive, True))
            else:
                writer.write(OK if keep_alive else OK_CLOSE)
            await writer.drain()
            if not keep_alive:
                return
    except OSError:
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port,
                                        backlog=4096, limit=MAX_HEADER)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8081))
    except KeyboardInterrupt:
        pass
