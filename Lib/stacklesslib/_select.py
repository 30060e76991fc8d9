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
threads at the same time: exactly one case is performed.  A 'send' case
that was not chosen has not delivered its value.  A 'recv' case that was
not chosen has taken nothing from anybody -- with one qualification:
while select() blocks, a helper tasklet waits on each 'recv' channel,
and when two of them are handed a value before the first can claim the
win (two senders in a row, e.g. from two threads), the loser sends its
value again on its channel (from a helper tasklet that lives until a
receiver takes it).  So no value is ever lost or received twice, but
that value may arrive after values sent later on the same channel.

A blocking select() may have any number of 'recv' cases and at most one
'send' case (ValueError otherwise): the tasklet blocks in that send
itself, which cannot be performed by accident after another case won.
A 'recv' case on the channel of that 'send' case is ready only at
once (a sender waits); while select() blocks it could only receive its
own value, so it is not waited for.  Timeouts, kill() and throw() while
select() blocks leave no case
performed (or, if a case was already performed, the value it received
is sent back on its channel before the exception propagates).
"""

import stackless as _stackless

from ._hub import get_hub as _get_hub, _check_seconds

__all__ = ["select"]

_atomic = _stackless.atomic
_channel = _stackless.channel
_TaskletExit = _stackless.TaskletExit


class _Won(Exception):
    """Thrown into a blocked selecting tasklet: a helper's case won."""


class _State:
    __slots__ = ("selector", "won", "result", "waiting")

    def __init__(self, selector):
        self.selector = selector
        self.won = False
        self.result = None          # (index, value) of a winning helper
        self.waiting = set()        # helpers blocked in their receive()


def _resend(channel, value):
    # A value that was received but cannot be returned goes back.
    channel.send(value)


def _recv_helper(state, index, channel):
    me = _stackless.getcurrent()
    with _atomic():
        if state.won:
            return
        state.waiting.add(me)
        try:
            value = channel.receive()
        except _TaskletExit:
            return                  # cancelled: nothing was received
        except BaseException as exc:
            state.waiting.discard(me)
            if not state.won and state.selector.blocked:
                state.won = True
                state.selector.throw(exc, pending=True)
            return
        state.waiting.discard(me)
        if not state.won and state.selector.blocked:
            # The selector waits (in its send case or on its private
            # channel): pulling it out there performs nothing.
            state.won = True
            state.result = (index, value)
            state.selector.throw(_Won(), pending=True)
            return
        # Lost: another case won, or the selector is leaving.
        state.won = True
        channel.send(value)


def _expire(state):
    with _atomic():
        if not state.won and state.selector.blocked:
            state.won = True
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
        sends = [i for i, c in enumerate(parsed) if c[1]]
        if len(sends) > 1:
            raise ValueError("a blocking select() can have at most one "
                             "'send' case")
        if timeout is not None and timeout <= 0:
            raise TimeoutError("select() timed out")
        me = _stackless.getcurrent()
        state = _State(me)
        helpers = []
        send_channel = parsed[sends[0]][0] if sends else None
        for index, (channel, is_send, _) in enumerate(parsed):
            # A receiver on our own send channel could only take our
            # own value: such a case waits for nothing while we block.
            if not is_send and channel is not send_channel:
                helpers.append(
                    _stackless.tasklet(_recv_helper)(state, index, channel))
        timer = None
        if timeout is not None:
            timer = _get_hub().call_later(timeout, _expire, state)
        try:
            if sends:
                index = sends[0]
                channel, _, value = parsed[index]
                channel.send(value)
                state.won = True
                result = (index, None)
            else:
                _channel().receive()    # only a helper or timer wakes us
                raise AssertionError("select(): woken without a result")
        except _Won:
            result = state.result
        except BaseException:
            state.won = True
            if state.result is not None:
                # A helper's case won, but we cannot return its value.
                index, value = state.result
                state.result = None
                _stackless.tasklet(_resend)(parsed[index][0], value)
            _cancel(state)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        state.result = None
        _cancel(state)
        return result


def _cancel(state):
    # Under atomic: stop the helpers still blocked in their receive.
    for helper in list(state.waiting):
        state.waiting.discard(helper)
        if helper.blocked:
            helper.kill(pending=True)
