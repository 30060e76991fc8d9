"""Sockets whose blocking calls block only the calling tasklet.

This module has the API of the standard `socket` module: it re-exports
its constants, exceptions and functions, and replaces what blocks:

- `socket`, a subclass of the standard `socket.socket`.  The real socket
  is always non-blocking; connect(), accept(), recv(), recv_into(),
  recvfrom(), recvfrom_into(), recvmsg(), send(), sendall(), sendto(),
  sendmsg(), sendfile() and the reads and writes of makefile() objects
  wait in the thread's hub (stacklesslib) when the socket is not ready,
  so that the other tasklets of the thread run meanwhile.
  settimeout(), gettimeout(), setblocking() and getblocking() behave as
  in the standard module: a timeout of None blocks (the tasklet), 0.0
  raises BlockingIOError at once, a positive timeout raises
  TimeoutError ("timed out"; socket.timeout is TimeoutError) when the
  call overruns.  The default is getdefaulttimeout().
- create_connection(), create_server(), socketpair(), fromfd(),
  has_dualstack_ipv6() and getfqdn() make and use such sockets.
- getaddrinfo(), gethostbyname(), gethostbyname_ex(), gethostbyaddr()
  and getnameinfo() resolve names in a worker thread
  (stacklesslib.run_in_thread()) while the tasklet waits; numeric
  addresses are converted at once, without a thread.  connect() and
  sendto() resolve a host name of an AF_INET/AF_INET6 address the same
  way.

Closing a socket (close(), or the with block ending) wakes every tasklet
that waits on it, in any thread, with OSError(EBADF).

Example, an echo server with one tasklet per connection:

    import stackless
    from stacklesslib import socket

    def handle(conn):
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def serve(server):
        while True:
            conn, addr = server.accept()
            stackless.tasklet(handle)(conn)

    server = socket.create_server(("127.0.0.1", 8007))
    stackless.tasklet(serve)(server)
    stackless.run()

Limits: TLS (the ssl module) is not covered: an ssl.SSLSocket blocks
its thread.  The object is a `socket.socket`, so isinstance() checks of
code written for the standard module pass.
"""

import errno as _errno
import os as _os
import socket as _std
import types as _types
import _socket

from socket import *                     # noqa: F401,F403 (the API)
from socket import (SocketIO, SocketType, error, herror, gaierror,  # noqa
                    timeout, _GLOBAL_DEFAULT_TIMEOUT)

from stacklesslib._hub import (get_hub, monotonic, cancel_wait_all,
                               run_in_thread, EVENT_READ, EVENT_WRITE)

__all__ = list(_std.__all__)

# The standard objects, as they are before any monkey-patching.
_StdSocket = _std.socket
_ss = _socket.socket
_std_getaddrinfo = _std.getaddrinfo
_c_gethostbyname = _socket.gethostbyname
_c_gethostbyname_ex = _socket.gethostbyname_ex
_c_gethostbyaddr = _socket.gethostbyaddr
_c_getnameinfo = _socket.getnameinfo
_c_socketpair = getattr(_socket, "socketpair", None)
_std_socketpair = getattr(_std, "socketpair", None)

_INET_FAMILIES = (AF_INET, AF_INET6) if _std.has_ipv6 else (AF_INET,)


_WOULD_BLOCK = object()


def _attempt(op, sock, args):
    try:
        return op(sock, *args)
    except BlockingIOError:
        return _WOULD_BLOCK


def _wait(fd, event, deadline, owner):
    """Wait in the hub until fd is ready; TimeoutError at deadline."""
    if deadline is None:
        get_hub().wait_fd(fd, event, None, owner)
        return
    remaining = deadline - monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out")
    get_hub().wait_fd(fd, event, remaining, owner)


def _is_numeric_host(host):
    if host is None:
        return True
    if isinstance(host, (bytes, bytearray)):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return True             # let the C function raise its TypeError
    if host in ("", "<broadcast>"):
        return True
    for family in _INET_FAMILIES:
        try:
            inet_pton(family, host)
            return True
        except (OSError, ValueError):
            pass
    return False


class socket(_StdSocket):
    """socket(family=AF_INET, type=SOCK_STREAM, proto=0, fileno=None)

    A standard socket.socket whose blocking calls block only the calling
    tasklet (see the module's docstring).  The underlying file
    descriptor is non-blocking; the timeout is kept by this object.
    """

    __slots__ = ["_timeout", "_hub_entry", "_drained"]

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        _StdSocket.__init__(self, family, type, proto, fileno)
        # The C socket took getdefaulttimeout(); keep it, go non-blocking.
        self._timeout = _ss.gettimeout(self)
        _ss.settimeout(self, 0.0)
        # The hub's registration of the fd, kept between waits (see
        # Hub.wait_fd()).
        self._hub_entry = None
        # A stream socket: whether the last recv() read less than asked,
        # so that the receive buffer is likely empty and the next read
        # waits for the fd to be readable before it tries (a try that
        # fails costs a system call and an exception).  None: not a
        # stream socket, try first.
        self._drained = (False if _ss.type.__get__(self) == SOCK_STREAM
                         else None)

    # --- the timeout ------------------------------------------------------

    def settimeout(self, value):
        """settimeout(timeout)

        Set the timeout of the blocking operations: None blocks the
        tasklet until the operation completes, 0.0 makes them raise
        BlockingIOError instead of blocking, a positive number of
        seconds makes them raise TimeoutError when it passes.
        """
        # The C socket checks the value (same errors as the standard
        # module) and says what it means; the fd stays non-blocking.
        _ss.settimeout(self, value)
        self._timeout = _ss.gettimeout(self)
        _ss.settimeout(self, 0.0)

    def gettimeout(self):
        """gettimeout() -> timeout

        The timeout in seconds (float) of the blocking operations, or
        None if they block without a limit.
        """
        return self._timeout

    @property
    def timeout(self):
        """The timeout, as gettimeout() returns it."""
        return self._timeout

    def setblocking(self, flag):
        """setblocking(flag)

        setblocking(True) is settimeout(None), setblocking(False) is
        settimeout(0.0).
        """
        self._timeout = None if flag else 0.0

    def getblocking(self):
        """getblocking() -> bool

        False if the socket is non-blocking (timeout 0.0), else True.
        """
        return self._timeout != 0.0

    # --- blocking operations --------------------------------------------

    def _deadline(self):
        t = self._timeout
        return None if t is None else monotonic() + t

    def _io(self, op, event, *args):
        # Try op; while it would block, wait in the hub and retry.  The
        # tries are made by _attempt(): a BlockingIOError caught here
        # would leave this frame with a frame object (made for the
        # traceback) for as long as the tasklet waits, some 200 bytes
        # per idle connection.
        if self._timeout == 0.0:
            return op(self, *args)
        if not (self._drained and event == EVENT_READ):
            result = _attempt(op, self, args)
            if result is not _WOULD_BLOCK:
                return result
        deadline = self._deadline()
        fd = _ss.fileno(self)
        if fd < 0:
            # Closed (or detached) since the read that drained it: the
            # operation says so, as on a closed socket (EBADF).
            return op(self, *args)
        hub = get_hub()
        while True:
            # hub.wait_fd(), inline: a tasklet blocked here is two frames
            # deep (recv() and this), which is most of the memory an idle
            # connection costs.
            remaining = None
            if deadline is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out")
            waiter = hub._fd_wait_begin(fd, event, remaining, self)
            try:
                waiter.receive()
            except BaseException:
                hub._fd_wait_abort(fd, waiter)
                raise
            if waiter.timer is not None:
                waiter.timer.cancel()
            result = _attempt(op, self, args)
            if result is not _WOULD_BLOCK:
                return result

    def _resolve(self, address):
        # A host name in an inet address: resolve it off the thread.
        if (self.family in _INET_FAMILIES and isinstance(address, tuple)
                and len(address) >= 2
                and not _is_numeric_host(address[0])):
            infos = getaddrinfo(address[0], address[1], self.family,
                                self.type, self.proto)
            if not infos:
                raise gaierror(_socket.EAI_NONAME,
                               "getaddrinfo returned no address")
            return infos[0][4]
        return address

    def connect(self, address):
        """connect(address)

        Connect the socket to a remote address, blocking the tasklet
        until the connection is made (or the timeout passes).
        """
        address = self._resolve(address)
        try:
            _ss.connect(self, address)
            return
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
        except InterruptedError:
            # The connection goes on in the background (POSIX).
            if self._timeout == 0.0:
                raise
        fd = _ss.fileno(self)
        _wait(fd, EVENT_WRITE, self._deadline(), self)
        err = _ss.getsockopt(self, SOL_SOCKET, SO_ERROR)
        if err:
            raise OSError(err, _os.strerror(err))

    def connect_ex(self, address):
        """connect_ex(address) -> errno

        As connect(), but return an error code (0 for success) instead
        of raising OSError; a timeout gives EWOULDBLOCK, as in the
        standard module.
        """
        try:
            self.connect(address)
        except TimeoutError as exc:
            return exc.errno or _errno.EWOULDBLOCK
        except gaierror:
            raise
        except OSError as exc:
            if exc.errno is None:
                raise
            return exc.errno
        return 0

    def accept(self):
        """accept() -> (socket object, address info)

        Wait (the tasklet) for an incoming connection.  Return a new
        socket of this module for the connection and the address of the
        client.
        """
        fd, addr = self._io(_ss._accept, EVENT_READ)
        return socket(self.family, self.type, self.proto, fileno=fd), addr

    def recv(self, bufsize, flags=0):
        """recv(buffersize[, flags]) -> data

        Receive up to buffersize bytes; b"" when the peer has closed the
        connection.  Blocks the tasklet until data is there.
        """
        data = self._io(_ss.recv, EVENT_READ, bufsize, flags)
        if self._drained is not None and not flags:
            self._drained = len(data) < bufsize
        return data

    def recv_into(self, buffer, nbytes=0, flags=0):
        """recv_into(buffer, [nbytes[, flags]]) -> nbytes_read

        As recv(), into a writable buffer.
        """
        n = self._io(_ss.recv_into, EVENT_READ, buffer, nbytes, flags)
        if self._drained is not None and not flags:
            if not nbytes and type(buffer) in (bytearray, memoryview):
                nbytes = memoryview(buffer).nbytes
            self._drained = n < nbytes
        return n

    def recvfrom(self, bufsize, flags=0):
        """recvfrom(buffersize[, flags]) -> (data, address info)"""
        return self._io(_ss.recvfrom, EVENT_READ, bufsize, flags)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        """recvfrom_into(buffer[, nbytes[, flags]]) -> (nbytes, address)"""
        return self._io(_ss.recvfrom_into, EVENT_READ, buffer, nbytes,
                        flags)

    if hasattr(_ss, "recvmsg"):
        def recvmsg(self, *args):
            """recvmsg(bufsize[, ancbufsize[, flags]]) -> (data, ancdata,
            msg_flags, address); blocks only the tasklet."""
            return self._io(_ss.recvmsg, EVENT_READ, *args)

        def recvmsg_into(self, *args):
            """recvmsg_into(buffers[, ancbufsize[, flags]]) -> (nbytes,
            ancdata, msg_flags, address); blocks only the tasklet."""
            return self._io(_ss.recvmsg_into, EVENT_READ, *args)

    if hasattr(_ss, "sendmsg"):
        def sendmsg(self, *args):
            """sendmsg(buffers[, ancdata[, flags[, address]]]) -> count;
            blocks only the tasklet."""
            return self._io(_ss.sendmsg, EVENT_WRITE, *args)

    def send(self, data, flags=0):
        """send(data[, flags]) -> count

        Send data; return the number of bytes sent (possibly fewer than
        len(data)).  Blocks the tasklet until some can be sent.
        """
        return self._io(_ss.send, EVENT_WRITE, data, flags)

    def sendall(self, data, flags=0):
        """sendall(data[, flags])

        Send all of data, blocking the tasklet as often as needed.  The
        timeout applies to the whole call.  On an error it is unknown
        how much was sent.
        """
        timeout = self._timeout
        if type(data) is bytes and timeout != 0.0:
            # The usual case, in one call: all of it goes at once.
            sent = _attempt(_ss.send, self, (data, flags))
            if sent is not _WOULD_BLOCK:
                if sent == len(data):
                    return None
                data = memoryview(data)[sent:]
        with memoryview(data) as view, view.cast("B") as view:
            total = len(view)
            sent = 0
            if timeout == 0.0:
                while sent < total:
                    sent += _ss.send(self, view[sent:], flags)
                return None
            deadline = None
            fd = _ss.fileno(self)
            while sent < total:
                try:
                    sent += _ss.send(self, view[sent:], flags)
                    continue
                except BlockingIOError:
                    pass
                if deadline is None and timeout is not None:
                    deadline = monotonic() + timeout
                _wait(fd, EVENT_WRITE, deadline, self)
        return None

    def sendto(self, data, flags_or_address, address=None):
        """sendto(data[, flags], address) -> count"""
        if address is None:
            return self._io(_ss.sendto, EVENT_WRITE, data,
                            self._resolve(flags_or_address))
        return self._io(_ss.sendto, EVENT_WRITE, data, flags_or_address,
                        self._resolve(address))

    def sendfile(self, file, offset=0, count=None):
        """sendfile(file[, offset[, count]]) -> sent

        Send a file (opened in binary mode) until EOF, with send() (so
        that it blocks only the tasklet); see socket.socket.sendfile().
        """
        return self._sendfile_use_send(file, offset, count)

    # --- closing ------------------------------------------------------------

    def detach(self):
        """detach() -> file descriptor

        Close the socket object without closing the fd, and return the
        fd.  Tasklets that wait on it are woken with OSError EBADF.
        """
        fd = _ss.fileno(self)
        if fd >= 0:
            cancel_wait_all(fd)
        return _StdSocket.detach(self)

    def _real_close(self, _ss=_socket.socket, _cancel=cancel_wait_all):
        fd = _ss.fileno(self)
        if fd >= 0:
            # Wake the tasklets that wait on it (OSError EBADF).
            _cancel(fd)
        _ss.close(self)


SocketType = _std.SocketType


def _rebind(func):
    """The standard function func, looking up its globals (socket,
    getaddrinfo, ...) in this module."""
    new = _types.FunctionType(func.__code__, globals(), func.__name__,
                              func.__defaults__, func.__closure__)
    new.__kwdefaults__ = func.__kwdefaults__
    new.__doc__ = func.__doc__
    new.__qualname__ = func.__qualname__
    new.__module__ = __name__
    return new


# Module-level helpers of the standard functions rebound here.
os = _os

create_connection = _rebind(_std.create_connection)
create_connection.__doc__ += """
    The socket is one of stacklesslib.socket: connecting blocks only the
    tasklet, and the name is resolved in a worker thread.
    """
create_server = _rebind(_std.create_server)
has_dualstack_ipv6 = _rebind(_std.has_dualstack_ipv6)
getfqdn = _rebind(_std.getfqdn)


def fromfd(fd, family, type, proto=0):
    """fromfd(fd, family, type[, proto]) -> socket object

    A socket of this module on a duplicate of the file descriptor fd.
    """
    return socket(family, type, proto, _os.dup(fd))


if _std_socketpair is not None:
    def socketpair(family=None, type=SOCK_STREAM, proto=0):
        """socketpair([family[, type[, proto]]]) -> (socket, socket)

        A pair of connected sockets of this module (AF_UNIX by default
        where it exists, else AF_INET).
        """
        pair = _std_socketpair(family, type, proto)
        try:
            return tuple(socket(s.family, s.type, s.proto, s.detach())
                         for s in pair)
        finally:
            for s in pair:
                s.close()


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """getaddrinfo(host, port, family=0, type=0, proto=0, flags=0)

    As socket.getaddrinfo().  A host name is resolved in a worker thread
    while the tasklet waits; a numeric address (or None) at once.
    """
    if _is_numeric_host(host) or flags & AI_NUMERICHOST:
        return _std_getaddrinfo(host, port, family, type, proto, flags)
    return run_in_thread(_std_getaddrinfo, host, port, family, type,
                         proto, flags)


def gethostbyname(hostname):
    """gethostbyname(host) -> address

    As socket.gethostbyname(), resolving in a worker thread.
    """
    if _is_numeric_host(hostname):
        return _c_gethostbyname(hostname)
    return run_in_thread(_c_gethostbyname, hostname)


def gethostbyname_ex(hostname):
    """gethostbyname_ex(host) -> (name, aliaslist, addresslist)

    As socket.gethostbyname_ex(), resolving in a worker thread.
    """
    return run_in_thread(_c_gethostbyname_ex, hostname)


def gethostbyaddr(ip_address):
    """gethostbyaddr(host) -> (name, aliaslist, addresslist)

    As socket.gethostbyaddr(), resolving in a worker thread.
    """
    return run_in_thread(_c_gethostbyaddr, ip_address)


def getnameinfo(sockaddr, flags):
    """getnameinfo(sockaddr, flags) -> (host, port)

    As socket.getnameinfo(), in a worker thread.
    """
    return run_in_thread(_c_getnameinfo, sockaddr, flags)
