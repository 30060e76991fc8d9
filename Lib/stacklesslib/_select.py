"""select(): wait for the first of several channel operations (Go's select).

    index, value = stacklesslib.select([(ch1, 'recv'),
                                        (ch2, 'send', 42)])

A case is a tuple ``(channel, 'recv')`` or ``(channel, 'send', value)``
(a list of the same shape works too).  select() performs exactly one of
the cases and returns ``(index, value)``: the index of that case in
`cases`, and the value received (None for a send).

- If cases are ready (a sender waits on a 'recv' channel, a receiver on
  a 'send' channel), the first ready one in list order is performed, at
  once.
- Else, with default=True, select() returns ``(-1, None)`` at once.
- Else the tasklet blocks until one case can be performed; with a
  `timeout` in seconds it raises TimeoutError when none could.

The guarantee, also when the channels are used by tasklets of other
threads at the same time: exactly one case is performed.  While
select() blocks, a helper tasklet waits in each case's operation; the
helpers share a latch (_stackless.latch), and the first operation that
goes through withdraws the others in the same step, before any of them
sent or received anything.  A 'send' case that was not chosen has not
delivered its value; a 'recv' case that was not chosen has taken
nothing.

A 'recv' case on the channel of a 'send' case of the same select() is
ready only at once (a sender waits): while select() blocks it could only
receive its own value, so it is not waited for.  A timeout, kill() or
throw() while select() blocks leaves no case performed; if a case went
through in the same instant, a 'send' stays performed and the value of
a 'recv' is sent back on its channel (from a helper tasklet that lives
until a receiver takes it) before the exception propagates.
"""

import stackless as _stackless

from ._hub import get_hub as _get_hub, _check_seconds

__all__ = ["select"]

_atomic = _stackless.atomic
_channel = _stackless.channel
_TaskletExit = _stackless.TaskletExit


class _Won(Exception):
    """Thrown into a blocked selecting tasklet: a helper's case won."""


_WITHDRAWN = object()       # the latch's marker


class _State:
    __slots__ = ("selector", "latch", "result")

    def __init__(self, selector):
        self.selector = selector
        self.latch = _stackless.latch(_WITHDRAWN)
        self.result = None          # (index, value) of the winning case


def _resend(channel, value):
    # A value that was received but cannot be returned goes back.
    channel.send(value)


def _helper(state, index, channel, is_send, value):
    # Wait in one case's operation, as a member of the select's latch.
    try:
        result = state.latch.action(channel, 1 if is_send else -1, value)
    except _TaskletExit:
        return
    except BaseException as exc:
        # The operation raised: an exception sent to this case (its
        # operation went through and fired the latch for it) or a closed
        # channel (it fires the latch here).  That is the select's
        # outcome, unless another case won.
        with _atomic():
            won = (state.latch.winner is _stackless.getcurrent()
                   or state.latch.fire())
            if won and state.selector.blocked:
                state.selector.throw(exc, pending=True)
        return
    if result is _WITHDRAWN:
        return                      # another case won, or no case
    # This case went through and fired the latch.
    with _atomic():
        if state.selector.blocked:
            state.result = (index, None if is_send else result)
            state.selector.throw(_Won(), pending=True)
        elif not is_send:
            # The selector is leaving (killed in the same instant).
            _stackless.tasklet(_resend)(channel, result)


def _expire(state):
    with _atomic():
        if state.latch.fire() and state.selector.blocked:
            state.selector.throw(TimeoutError("select() timed out"),
                                 pending=True)


def _parse(cases):
    parsed = []
    for case in cases:
        if not isinstance(case, (tuple, list)) or len(case) not in (2, 3):
            raise TypeError("a select() case is (channel, 'recv') or "
                            f"(channel, 'send', value), not {case!r}")
        channel, op = case[0], case[1]
        if not isinstance(channel, _channel):
            raise TypeError("a select() case needs a stackless.channel, "
                            f"not {type(channel).__name__!r}")
        if op == "recv" and len(case) == 2:
            parsed.append((channel, False, None))
        elif op == "send" and len(case) == 3:
            parsed.append((channel, True, case[2]))
        else:
            raise ValueError("a select() case is (channel, 'recv') or "
                             f"(channel, 'send', value), not {case!r}")
    return parsed


def select(cases, timeout=None, default=False):
    """Perform the first channel operation of `cases` that can proceed.

    Returns (index, value); (-1, None) if default is true and none was
    ready; raises TimeoutError after `timeout` seconds.  See the module
    docstring for the cases and the guarantees.
    """
    parsed = _parse(cases)
    if timeout is not None:
        timeout = _check_seconds(timeout, "timeout")
    with _atomic():
        for index, (channel, is_send, value) in enumerate(parsed):
            if is_send:
                if channel.balance < 0 or channel.closed:
                    channel.send(value)
                    return index, None
            elif channel.balance > 0 or channel.closed:
                return index, channel.receive()
        if default:
            return -1, None
        if not parsed:
            raise ValueError("select() without cases would wait forever")
        if timeout is not None and timeout <= 0:
            raise TimeoutError("select() timed out")
        me = _stackless.getcurrent()
        state = _State(me)
        sends = {c[0] for c in parsed if c[1]}
        for index, (channel, is_send, value) in enumerate(parsed):
            # A receiver on our own send channel could only take our
            # own value: such a case waits for nothing while we block.
            if is_send or channel not in sends:
                _stackless.tasklet(_helper)(state, index, channel, is_send,
                                            value)
        timer = None
        if timeout is not None:
            timer = _get_hub().call_later(timeout, _expire, state)
        try:
            _channel().receive()        # only a helper or timer wakes us
            raise AssertionError("select(): woken without a result")
        except _Won:
            result = state.result
        except BaseException:
            if not state.latch.fire() and state.result is not None:
                # A 'recv' case won, but we cannot return its value.
                index, value = state.result
                if not parsed[index][1]:
                    _stackless.tasklet(_resend)(parsed[index][0], value)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            state.result = None
        return result
