"""python -m stacklesslib.ps PID [SIGNAL]

Ask the running program PID to print its tasklets (stacklesslib.ps()) on
its standard error: sends it SIGNAL (default SIGUSR1), which the
program must have registered with stacklesslib.ps.install(SIGNAL).
"""

import os
import signal
import sys


def main(argv):
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        pid = int(argv[1])
    except ValueError:
        print(f"not a process id: {argv[1]!r}", file=sys.stderr)
        return 2
    name = argv[2] if len(argv) == 3 else "SIGUSR1"
    if name.isdigit():
        signum = int(name)
    else:
        if not name.startswith("SIG"):
            name = "SIG" + name
        signum = getattr(signal, name.upper(), None)
        if not isinstance(signum, int):
            print(f"unknown signal: {argv[2]!r}", file=sys.stderr)
            return 2
    try:
        os.kill(pid, signum)
    except OSError as exc:
        print(f"cannot signal {pid}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
