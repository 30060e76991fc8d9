"""HTTP keep-alive benchmark: examples/http_server.py (tasklets) against
the same server on asyncio streams (bench/asyncio_http_server.py on stock
CPython), with wrk.

    python bench/http_bench.py [--stock PYTHON] [--duration S]
                               [--conns 100,10000] [--idle 10000]
                               [--soak ROUNDS]

For each server and each number of concurrent keep-alive connections it
runs `wrk -tT -cN -dS --latency http://127.0.0.1:PORT/` and reports
requests/s, p99 latency and errors (socket errors and non-2xx answers).
On a machine with several CPUs the server is pinned to the first and
wrk to the others (T = their number): unpinned, the two fight for the
same CPUs and the figures of one server vary by a third between runs.
Then it opens --idle idle connections to a fresh server and reports the
growth of the server's RSS divided by the number of connections.  Last,
the soak: --idle connections opened at once and dropped (a third after
half a request, a third reset), --soak times; the server must get back
to its fds and keep its RSS flat.

Needs wrk (apt-get install wrk) and a file descriptor limit above the
number of connections (the script raises its soft limit to the hard
one; the servers and wrk inherit it).  Not a test: numbers depend on
the machine.
"""

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


SERVER_CPUS = CLIENT_CPUS = None


def pin_cpus():
    """Split the CPUs: the first for the server, the rest for wrk."""
    global SERVER_CPUS, CLIENT_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        SERVER_CPUS, CLIENT_CPUS = {cpus[0]}, set(cpus[1:])


def _affinity(cpus):
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start(cmd):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON")}
    proc = subprocess.Popen(cmd + ["0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env,
                            preexec_fn=_affinity(SERVER_CPUS))
    line = proc.stdout.readline()
    m = re.search(r"listening on ([\d.]+):(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"{cmd}: no 'listening on' line: {line!r}")
    return proc, int(m.group(2))


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def run_wrk(port, conns, duration, threads):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s",
           "--timeout", "10s", "--latency", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration + 120,
                         preexec_fn=_affinity(CLIENT_CPUS)).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    return rps, p99, errors


def idle_rss(cmd, n):
    proc, port = start(cmd)
    try:
        # Warm up: one request, so that lazy imports are done.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1000)
        time.sleep(0.5)
        base_fds = fd_count(proc.pid)
        before = rss_kb(proc.pid)
        socks = []
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        deadline = time.monotonic() + 60
        while fd_count(proc.pid) < base_fds + n:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not accept them all")
            time.sleep(0.1)
        time.sleep(1.0)
        after = rss_kb(proc.pid)
        # Still alive and answering?
        socks[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = socks[0].recv(1000).startswith(b"HTTP/1.1 200")
        for s in socks:
            s.close()
        return (after - before) * 1024 / n, ok
    finally:
        stop(proc)


def soak(cmd, n, rounds):
    """Open n connections at once and drop them all, `rounds` times: a
    third send half a request first, a third are reset (SO_LINGER 0).
    Returns the server's fds over its baseline after the last round and
    its RSS after the first and the last round, in KB."""
    import struct
    proc, port = start(cmd)
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1000)
        time.sleep(0.5)
        base_fds = fd_count(proc.pid)
        rss = []
        for _ in range(rounds):
            socks = [socket.create_connection(("127.0.0.1", port))
                     for _ in range(n)]
            for i, s in enumerate(socks):
                if i % 3 == 1:
                    s.sendall(b"GET / HTTP/1.1\r\nHo")
                elif i % 3 == 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
            for s in socks:
                s.close()
            deadline = time.monotonic() + 60
            while fd_count(proc.pid) > base_fds:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            rss.append(rss_kb(proc.pid))
        left = fd_count(proc.pid) - base_fds
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            ok = s.recv(1000).startswith(b"HTTP/1.1 200")
        return left, rss[0], rss[-1], ok
    finally:
        stop(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_stock = os.path.join(TOP, "build", "stock", "python")
    parser.add_argument("--stackless",
                        default=os.path.join(TOP, "build", "stackless",
                                             "python"))
    parser.add_argument("--stock", default=default_stock if os.path.exists(
        default_stock) else sys.executable)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="wrk threads (default: the CPUs left to wrk)")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server and wrk to CPUs")
    parser.add_argument("--conns", default="100,10000")
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--soak", type=int, default=5, metavar="ROUNDS",
                        help="rounds of --idle connections opened and "
                        "dropped at once (0: none)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    if not args.no_pin:
        pin_cpus()
    if args.threads is None:
        args.threads = len(CLIENT_CPUS) if CLIENT_CPUS else 2
    limit = raise_fd_limit()
    conns = [int(c) for c in args.conns.split(",")]
    if max(conns + [args.idle]) + 100 > limit:
        sys.exit(f"the fd limit {limit} is too low")

    servers = [
        ("stackless tasklets", [args.stackless,
                                os.path.join(TOP, "examples",
                                             "http_server.py")]),
        ("asyncio streams", [args.stock,
                             os.path.join(TOP, "bench",
                                          "asyncio_http_server.py")]),
    ]
    pinned = (f"server on CPU {sorted(SERVER_CPUS)}, wrk on "
              f"{sorted(CLIENT_CPUS)}" if SERVER_CPUS else "not pinned")
    print(f"wrk -t{args.threads} -cN -d{args.duration}s --latency "
          f"({pinned}); stackless: {args.stackless}; asyncio on: "
          f"{args.stock}")
    print()
    print(f"| server | connections | req/s | p99 ms | errors |")
    print(f"|---|---:|---:|---:|---:|")
    for name, cmd in servers:
        for n in conns:
            proc, port = start(cmd)
            try:
                rps, p99, errors = run_wrk(port, n, args.duration,
                                           args.threads)
            finally:
                stop(proc)
            print(f"| {name} | {n} | {rps:.0f} | {p99:.1f} | {errors} |",
                  flush=True)
    if args.idle:
        print()
        print(f"| server | idle connections | RSS per connection | "
              f"answers after |")
        print(f"|---|---:|---:|---|")
        for name, cmd in servers:
            per, ok = idle_rss(cmd, args.idle)
            print(f"| {name} | {args.idle} | {per:.0f} B | "
                  f"{'yes' if ok else 'NO'} |", flush=True)
    if args.idle and args.soak:
        print()
        print(f"| server | {args.soak} x {args.idle} connections opened "
              f"and dropped | fds left | RSS after round 1 | after round "
              f"{args.soak} | answers after |")
        print(f"|---|---|---:|---:|---:|---|")
        for name, cmd in servers:
            left, first, last, ok = soak(cmd, args.idle, args.soak)
            print(f"| {name} | | {left} | {first} KB | {last} KB | "
                  f"{'yes' if ok else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
