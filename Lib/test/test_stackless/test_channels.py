"""Channels within one thread (spec C-1 .. C-14, with T-8, T-13, M-13).

The test methods run in the main tasklet.  Tasklet code runs when a test
switches: stackless.run(), schedule(), t.run() or a channel operation.
Tasklets record what they see in a log; the tests check it afterwards.
"""

import gc
import sys
import unittest
import weakref

import _stackless
import stackless
from . import helpers
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


BLOCKED_TEXT = "this tasklet does not like to be blocked."
CLOSED_TEXT = "Send/receive operation on a closed channel"


StacklessTestCase = helpers.StacklessTestCase


class ChannelObjectTest(StacklessTestCase):

    def test_initial_state(self):
        # C-1: balance 0, preference -1, schedule_all 0, not closing,
        # queue None.
        ch = stackless.channel()
        self.assertEqual(ch.balance, 0)
        self.assertEqual(ch.preference, -1)
        self.assertEqual(ch.schedule_all, 0)
        self.assertIs(ch.closing, False)
        self.assertIs(ch.closed, False)
        self.assertIsNone(ch.queue)

    def test_new_ignores_arguments(self):
        # C-1: __new__ ignores all arguments.
        ch = stackless.channel.__new__(stackless.channel, 1, 2, x=3)
        self.assertIsInstance(ch, stackless.channel)
        self.assertEqual(ch.balance, 0)

    def test_subclass(self):
        # C-1: subclassable; the methods of the base class work on the
        # subclass, and overriding them with super() works.
        class NamedChannel(stackless.channel):
            def __init__(self, name):
                super().__init__()
                self.name = name
                self.sent = []

            def send(self, value):
                self.sent.append(value)
                return super().send(value)

        ch = NamedChannel("pipe")
        self.assertEqual(ch.name, "pipe")
        self.assertEqual(ch.preference, -1)
        received = []
        self.started(lambda: received.append(ch.receive()))
        self.assertEqual(ch.balance, -1)
        self.assertIsNone(ch.send("x"))
        self.assertEqual(received, ["x"])
        self.assertEqual(ch.sent, ["x"])
        self.assertEqual(ch.balance, 0)
        ch.extra = 1
        self.assertEqual(ch.extra, 1)

    def test_weakref(self):
        # C-1: weakref-able.
        ch = stackless.channel()
        ref = weakref.ref(ch)
        self.assertIs(ref(), ch)
        del ch
        gc.collect()
        self.assertIsNone(ref())

    def test_weakref_subclass(self):
        # C-1
        class Sub(stackless.channel):
            pass
        ch = Sub()
        ref = weakref.ref(ch)
        self.assertIs(ref(), ch)
        del ch
        gc.collect()
        self.assertIsNone(ref())

    def test_subclass_instance_refers_to_its_class_once(self):
        # A static type's traverse must not visit Py_TYPE(): for a
        # subclass's instance subtype_traverse() does, and a second visit
        # made the collector count the class as referenced more often than
        # it is (a fatal assertion of the debug build's collector).
        class SubChannel(stackless.channel):
            pass

        class SubTasklet(stackless.tasklet):
            pass

        ch = SubChannel()
        t = SubTasklet(lambda: None)
        self.assertEqual(gc.get_referents(ch).count(SubChannel), 1)
        self.assertEqual(gc.get_referents(t).count(SubTasklet), 1)
        self.assertNotIn(stackless.channel,
                         gc.get_referents(stackless.channel()))
        chans = [SubChannel() for _ in range(50)]
        gc.collect()
        del chans
        gc.collect()

    def test_iter_is_self(self):
        # C-7: __iter__ returns the channel itself.
        ch = stackless.channel()
        self.assertIs(iter(ch), ch)
        self.assertIs(ch.__iter__(), ch)


class SendReceiveTest(StacklessTestCase):

    def test_receiver_blocks_then_gets_value(self):
        # C-2, C-3, C-13.3: a receiver without partner leaves the
        # runqueue and joins the channel; a send hands the value over.
        ch = stackless.channel()
        got = []
        r = self.started(lambda: got.append(ch.receive()))
        self.assertEqual(got, [])
        self.assertTrue(r.blocked)
        self.assertTrue(r.scheduled)
        self.assertFalse(r.paused)
        self.assertTrue(r.alive)
        self.assertEqual(ch.balance, -1)
        self.assertIs(ch.queue, r)
        self.assertIsNone(r.tempval)        # C-13.1
        self.assertEqual(stackless.getruncount(), 1)
        self.assertIsNone(ch.send("value"))
        self.assertEqual(got, ["value"])
        self.assertFalse(r.alive)
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(ch.queue)

    def test_sender_blocks_then_receiver_gets_value(self):
        # C-2, C-3, C-13.3, T-16: a blocked sender keeps its value in
        # its tempval until a receiver takes it.
        ch = stackless.channel()
        value = object()
        results = []
        s = self.started(lambda: results.append(ch.send(value)))
        self.assertTrue(s.blocked)
        self.assertEqual(ch.balance, 1)
        self.assertIs(ch.queue, s)
        self.assertIs(s.tempval, value)
        self.assertEqual(stackless.getruncount(), 1)
        self.assertIs(ch.receive(), value)
        self.assertFalse(s.blocked)
        self.assertEqual(ch.balance, 0)
        # preference -1: the receiver continues, the sender is appended.
        self.assertTrue(s.scheduled)
        self.assertIsNone(s.tempval)
        stackless.schedule()
        self.assertEqual(results, [None])
        self.assertFalse(s.alive)

    def test_ping_pong_between_tasklets(self):
        # C-2, C-3: two tasklets exchange values, main only runs them.
        ping = stackless.channel()
        pong = stackless.channel()

        def player(name, inbox, outbox, serve):
            if serve:
                outbox.send(0)
            while True:
                n = inbox.receive()
                self.log.append((name, n))
                if n >= 6:
                    break
                outbox.send(n + 1)

        self.spawn(player, "a", ping, pong, True)
        self.spawn(player, "b", pong, ping, False)
        self.assertIsNone(stackless.run())
        self.assertEqual(self.log, [("b", 0), ("a", 1), ("b", 2), ("a", 3),
                                    ("b", 4), ("a", 5), ("b", 6)])
        # "a" is left waiting for a seventh value.
        self.assertEqual(ping.balance, -1)
        self.assertEqual(pong.balance, 0)

    def test_balance_counts_senders_and_receivers(self):
        # C-11: blocked senders count > 0, blocked receivers < 0.
        ch = stackless.channel()
        for i in range(3):
            self.started(ch.send, i)
            self.assertEqual(ch.balance, i + 1)
        for i in range(3):
            self.assertEqual(ch.receive(), i)
            self.assertEqual(ch.balance, 2 - i)
        for i in range(2):
            self.started(ch.receive)
            self.assertEqual(ch.balance, -(i + 1))
        ch.send(None)
        self.assertEqual(ch.balance, -1)
        ch.send(None)
        self.assertEqual(ch.balance, 0)
        stackless.run()

    def test_queue_is_fifo_and_walks_with_next(self):
        # C-12, T-25: queue is the first blocked tasklet; .next walks the
        # queue and its ends give None; partners are served FIFO.
        ch = stackless.channel()
        got = []
        receivers = [self.started(lambda i=i: got.append((i, ch.receive())))
                     for i in range(3)]
        self.assertIs(ch.queue, receivers[0])
        walked = []
        t = ch.queue
        while t is not None:
            walked.append(t)
            t = t.next
        self.assertEqual(walked, receivers)
        self.assertIsNone(receivers[0].prev)
        self.assertIs(receivers[1].prev, receivers[0])
        self.assertIs(receivers[2].prev, receivers[1])
        self.assertIsNone(receivers[2].next)
        for r in receivers:
            self.assertTrue(r.blocked)
        ch.send("a")
        self.assertIs(ch.queue, receivers[1])
        self.assertIsNone(receivers[1].prev)
        ch.send("b")
        ch.send("c")
        self.assertIsNone(ch.queue)
        self.assertEqual(got, [(0, "a"), (1, "b"), (2, "c")])

    def test_queue_of_senders(self):
        # C-12: senders queue up FIFO too.
        ch = stackless.channel()
        senders = [self.started(ch.send, i) for i in range(3)]
        self.assertIs(ch.queue, senders[0])
        self.assertIs(ch.queue.next, senders[1])
        self.assertIs(ch.queue.next.next, senders[2])
        self.assertIsNone(ch.queue.next.next.next)
        self.assertEqual([ch.receive() for _ in range(3)], [0, 1, 2])
        self.assertIsNone(ch.queue)
        stackless.run()

    def test_receive_returns_any_object(self):
        # C-2, C-3: the very object is handed over, None included.
        ch = stackless.channel()
        for value in (None, 0, "", [1, 2], ch, stackless.getcurrent()):
            got = []
            self.started(lambda: got.append(ch.receive()))
            ch.send(value)
            self.assertEqual(len(got), 1)
            self.assertIs(got[0], value)

    def test_send_wrong_argument_count(self):
        # C-2, C-3: wrong argument counts raise TypeError.
        ch = stackless.channel()
        with self.assertRaises(TypeError):
            ch.send()
        with self.assertRaises(TypeError):
            ch.send(1, 2)
        with self.assertRaises(TypeError):
            ch.receive(1)
        self.assertEqual(ch.balance, 0)


class PreferenceTest(StacklessTestCase):
    """C-13.2: who runs first when the partner is waiting.

    The caller is main.  Besides the partner there is one more runnable
    tasklet, "other", so that the runqueue order after the operation can
    be seen from the order in which the tasklets run.
    """

    def setup_partner(self, ch, direction):
        """Block a partner on ch: a receiver (direction -1) or a sender
        (direction +1).  Then make "other" runnable.  When the partner
        resumes, it stores its neighbours and the caller's state in
        self.where."""
        main = stackless.getcurrent()
        self.where = []

        def resumed():
            p = stackless.getcurrent()
            self.where.append((p.prev, p.next, main.scheduled,
                               main.blocked, stackless.getruncount()))

        if direction < 0:
            def partner():
                value = ch.receive()
                resumed()
                self.record("partner got", value)
        else:
            def partner():
                value = ch.send("payload")
                resumed()
                self.record("partner sent", value)
        p = self.started(partner)
        self.assertTrue(p.blocked)
        other = self.spawn(self.record, "other")
        self.assertIs(main.next, other)
        self.assertEqual(stackless.getruncount(), 2)
        return p, other

    def check_caller_continues(self, main, p, other, partner_event):
        # The caller continued; the partner was appended, after "other".
        self.assertEqual(self.log, [(main, "caller continues")])
        self.assertFalse(p.blocked)
        self.assertTrue(p.scheduled)
        self.assertIs(main.next, other)
        self.assertIs(other.next, p)
        self.assertIs(p.next, main)
        self.assertIs(main.prev, p)
        self.assertEqual(stackless.getruncount(), 3)
        stackless.schedule()
        self.record("back in caller")
        self.assertEqual(self.log[1:], [(other, "other"), partner_event,
                                        (main, "back in caller")])

    def test_send_preference_minus_one(self):
        # C-13 table, -1 / send: the receiver runs now, inserted right
        # after the sender; the sender resumes after a full cycle.
        ch = stackless.channel()
        main = stackless.getcurrent()
        p, other = self.setup_partner(ch, -1)
        self.assertEqual(ch.preference, -1)
        self.assertIsNone(ch.send("payload"))
        self.record("caller continues")
        self.assertEqual(self.log, [(p, "partner got", "payload"),
                                    (other, "other"),
                                    (main, "caller continues")])
        # When the receiver ran: main -> p -> other, main runnable.
        self.assertEqual(self.where, [(main, other, True, False, 3)])
        self.assertEqual(ch.balance, 0)

    def test_send_preference_one(self):
        # C-13 table, 1 / send: the sender continues, the receiver is
        # appended.
        ch = stackless.channel()
        ch.preference = 1
        main = stackless.getcurrent()
        p, other = self.setup_partner(ch, -1)
        ch.send("payload")
        self.record("caller continues")
        self.assertEqual(ch.balance, 0)
        self.check_caller_continues(main, p, other,
                                    (p, "partner got", "payload"))

    def test_send_preference_zero(self):
        # C-13 table, 0 / send: the caller continues, the receiver is
        # appended.
        ch = stackless.channel()
        ch.preference = 0
        main = stackless.getcurrent()
        p, other = self.setup_partner(ch, -1)
        ch.send("payload")
        self.record("caller continues")
        self.check_caller_continues(main, p, other,
                                    (p, "partner got", "payload"))

    def test_receive_preference_minus_one(self):
        # C-13 table, -1 / receive: the receiver continues, the sender is
        # appended.
        ch = stackless.channel()
        main = stackless.getcurrent()
        p, other = self.setup_partner(ch, +1)
        self.assertEqual(ch.receive(), "payload")
        self.record("caller continues")
        self.assertEqual(ch.balance, 0)
        self.check_caller_continues(main, p, other, (p, "partner sent", None))

    def test_receive_preference_one(self):
        # C-13 table, 1 / receive: the sender runs now, inserted right
        # after the receiver; the receiver resumes after a full cycle.
        ch = stackless.channel()
        ch.preference = 1
        main = stackless.getcurrent()
        p, other = self.setup_partner(ch, +1)
        self.assertEqual(ch.receive(), "payload")
        self.record("caller continues")
        self.assertEqual(self.log, [(p, "partner sent", None),
                                    (other, "other"),
                                    (main, "caller continues")])
        self.assertEqual(self.where, [(main, other, True, False, 3)])
        self.assertEqual(ch.balance, 0)

    def test_receive_preference_zero(self):
        # C-13 table, 0 / receive: the caller continues, the sender is
        # appended.
        ch = stackless.channel()
        ch.preference = 0
        main = stackless.getcurrent()
        p, other = self.setup_partner(ch, +1)
        self.assertEqual(ch.receive(), "payload")
        self.record("caller continues")
        self.check_caller_continues(main, p, other, (p, "partner sent", None))

    def test_schedule_all_send(self):
        # C-10, C-13.2: schedule_all overrides the preference: the
        # partner is appended and the caller yields to its successor.
        for preference in (-1, 0, 1):
            with self.subTest(preference=preference):
                self.log.clear()
                ch = stackless.channel()
                ch.preference = preference
                ch.schedule_all = 1
                main = stackless.getcurrent()
                p, other = self.setup_partner(ch, -1)
                self.assertIsNone(ch.send("payload"))
                self.record("caller continues")
                self.assertEqual(self.log, [(other, "other"),
                                            (p, "partner got", "payload"),
                                            (main, "caller continues")])
                self.assertEqual(ch.balance, 0)
                self.assertEqual(stackless.getruncount(), 1)

    def test_schedule_all_receive(self):
        # C-10, C-13.2: as above, for a receiving caller.
        for preference in (-1, 0, 1):
            with self.subTest(preference=preference):
                self.log.clear()
                ch = stackless.channel()
                ch.preference = preference
                ch.schedule_all = True
                main = stackless.getcurrent()
                p, other = self.setup_partner(ch, +1)
                self.assertEqual(ch.receive(), "payload")
                self.record("caller continues")
                self.assertEqual(self.log, [(other, "other"),
                                            (p, "partner sent", None),
                                            (main, "caller continues")])
                self.assertEqual(stackless.getruncount(), 1)

    def test_schedule_all_caller_stays_runnable(self):
        # C-13.2: with schedule_all the caller yields but stays in the
        # runqueue; with nothing else runnable besides the appended
        # partner, the partner runs and the caller resumes after it.
        ch = stackless.channel()
        ch.schedule_all = 1
        main = stackless.getcurrent()
        seen = []

        def receiver():
            seen.append(ch.receive())
            seen.append((main.scheduled, main.blocked,
                         stackless.getruncount()))
        self.started(receiver)
        ch.send(7)
        self.assertEqual(seen, [7, (True, False, 2)])

    def test_main_as_waiting_partner(self):
        # C-13 table, send column, with main as the waiting receiver:
        # -1: main runs now, the sender resumes after a full cycle;
        # 1 and 0: the sender continues, main is appended.
        ch = stackless.channel()
        main = stackless.getcurrent()

        def sender():
            self.record("sending")
            ch.send("v")
            self.record("sent")

        def other():
            self.record("other")

        for preference, expected in (
                (-1, ["sending", "main got", "other", "sent"]),
                (1, ["sending", "sent", "other", "main got"]),
                (0, ["sending", "sent", "other", "main got"])):
            with self.subTest(preference=preference):
                ch.preference = preference
                self.log.clear()
                s = self.spawn(sender)
                o = self.spawn(other)
                self.record("main got", ch.receive())
                stackless.run()
                who = {"sending": s, "sent": s, "main got": main,
                       "other": o}
                self.assertEqual(self.log, [
                    (who[e], e, "v") if e == "main got" else (who[e], e)
                    for e in expected])
                self.assertEqual(ch.balance, 0)

    def test_preference_between_tasklets(self):
        # C-13: the table holds for any caller, not only main.
        ch = stackless.channel()

        def receiver():
            self.record("recv got", ch.receive())

        def sender():
            self.record("send start")
            ch.send(1)
            self.record("send done")

        for preference, expected in (
                (-1, ["send start", "recv got", "send done"]),
                (1, ["send start", "send done", "recv got"]),
                (0, ["send start", "send done", "recv got"])):
            with self.subTest(preference=preference):
                ch.preference = preference
                self.log.clear()
                self.spawn(receiver)
                self.spawn(sender)
                stackless.run()
                self.assertEqual([e[1] for e in self.log], expected)


class PreferenceAttributeTest(StacklessTestCase):

    def test_preference_stores_sign(self):
        # C-9: stores the sign of an int or bool.
        ch = stackless.channel()
        for value, expected in ((1, 1), (0, 0), (-1, -1), (2, 1), (-2, -1),
                                (100, 1), (-100, -1), (True, 1),
                                (False, 0)):
            with self.subTest(value=value):
                ch.preference = value
                self.assertEqual(ch.preference, expected)
                self.assertIs(type(ch.preference), int)

    def test_preference_type_error(self):
        # C-9 (T): non-int values raise TypeError with this text.
        ch = stackless.channel()
        for value in ("1", 1.0, None, [], object()):
            with self.subTest(value=value):
                with self.assertRaises(TypeError) as cm:
                    ch.preference = value
                self.assertEqual(str(cm.exception),
                                 "preference must be set to an integer")
                self.assertEqual(ch.preference, -1)

    def test_schedule_all_values(self):
        # C-10: any non-zero value stores 1.
        ch = stackless.channel()
        for value, expected in ((1, 1), (0, 0), (5, 1), (-3, 1),
                                (True, 1), (False, 0)):
            with self.subTest(value=value):
                ch.schedule_all = value
                self.assertEqual(ch.schedule_all, expected)

    def test_schedule_all_type_error(self):
        # C-10 (T): "...must be set to a bool or integer".
        ch = stackless.channel()
        for value in ("1", 1.5, None, object()):
            with self.subTest(value=value):
                with self.assertRaisesRegex(
                        TypeError, "must be set to a bool or integer"):
                    ch.schedule_all = value
                self.assertEqual(ch.schedule_all, 0)

    def test_read_only_attributes(self):
        # C-8, C-11: balance, closing and closed are read-only.
        ch = stackless.channel()
        for name in ("balance", "closing", "closed"):
            with self.subTest(name=name):
                with self.assertRaises(AttributeError):
                    setattr(ch, name, 0)


class CloseTest(StacklessTestCase):

    def test_close_and_open_flags(self):
        # C-8: close sets closing, open clears it; closed = closing and
        # balance 0.
        ch = stackless.channel()
        self.assertIsNone(ch.close())
        self.assertIs(ch.closing, True)
        self.assertIs(ch.closed, True)
        self.assertIsNone(ch.open())
        self.assertIs(ch.closing, False)
        self.assertIs(ch.closed, False)

    def test_closed_channel_refuses_blocking(self):
        # C-8: an operation that would block raises ValueError.
        ch = stackless.channel()
        ch.close()
        with self.assertRaises(ValueError) as cm:
            ch.receive()
        self.assertEqual(str(cm.exception), CLOSED_TEXT)
        with self.assertRaises(ValueError) as cm:
            ch.send(1)
        self.assertEqual(str(cm.exception), CLOSED_TEXT)
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.getcurrent().blocked)
        self.assertEqual(stackless.getruncount(), 1)
        ch.open()
        # Open again: operations work (here with a partner waiting).
        got = []
        self.started(lambda: got.append(ch.receive()))
        ch.send(2)
        self.assertEqual(got, [2])

    def test_closing_with_waiting_senders(self):
        # C-8: while closing, operations finding a partner succeed;
        # closed only once the balance is 0.
        ch = stackless.channel()
        self.started(ch.send, "a")
        self.started(ch.send, "b")
        ch.close()
        self.assertTrue(ch.closing)
        self.assertFalse(ch.closed)
        self.assertEqual(ch.receive(), "a")
        self.assertFalse(ch.closed)
        self.assertEqual(ch.receive(), "b")
        self.assertTrue(ch.closed)
        with self.assertRaisesRegex(ValueError, CLOSED_TEXT):
            ch.receive()
        stackless.run()

    def test_closing_with_waiting_receivers(self):
        # C-8: sending to a waiting receiver of a closing channel works.
        ch = stackless.channel()
        got = []
        self.started(lambda: got.append(ch.receive()))
        ch.close()
        self.assertFalse(ch.closed)
        self.assertEqual(ch.balance, -1)
        ch.send("x")
        self.assertEqual(got, ["x"])
        self.assertTrue(ch.closed)
        with self.assertRaisesRegex(ValueError, CLOSED_TEXT):
            ch.send("y")

    def test_close_in_tasklet(self):
        # C-8: a tasklet that would block on a closed channel gets the
        # ValueError; it can be caught there.
        ch = stackless.channel()
        ch.close()

        def f():
            try:
                ch.receive()
            except ValueError as e:
                self.log.append(str(e))
        self.spawn(f)
        stackless.run()
        self.assertEqual(self.log, [CLOSED_TEXT])

    def test_block_trap_checked_before_closing(self):
        # C-13.3: block_trap is checked before closing.
        ch = stackless.channel()
        ch.close()
        stackless.getcurrent().block_trap = True
        with self.assertRaises(RuntimeError) as cm:
            ch.receive()
        self.assertEqual(str(cm.exception), BLOCKED_TEXT)


class BlockTrapTest(StacklessTestCase):

    def test_block_trap_refuses_blocking(self):
        # T-13: an operation that would block raises RuntimeError.
        ch = stackless.channel()
        main = stackless.getcurrent()
        self.assertIs(main.block_trap, False)
        main.block_trap = True
        self.assertIs(main.block_trap, True)
        for op in (ch.receive, lambda: ch.send(1)):
            with self.assertRaises(RuntimeError) as cm:
                op()
            self.assertEqual(str(cm.exception), BLOCKED_TEXT)
        self.assertEqual(ch.balance, 0)
        self.assertFalse(main.blocked)

    def test_block_trap_allows_non_blocking(self):
        # T-13: operations that find a partner work.
        ch = stackless.channel()
        self.started(ch.send, 1)
        got = []
        other = stackless.channel()
        self.started(lambda: got.append(other.receive()))
        stackless.getcurrent().block_trap = True
        self.assertEqual(ch.receive(), 1)
        other.send(2)
        self.assertEqual(got, [2])
        stackless.getcurrent().block_trap = False
        stackless.run()

    def test_block_trap_in_tasklet(self):
        # T-13: in a tasklet.
        ch = stackless.channel()

        def f():
            stackless.getcurrent().block_trap = True
            try:
                ch.receive()
            except RuntimeError as e:
                self.log.append(str(e))
        self.spawn(f)
        stackless.run()
        self.assertEqual(self.log, [BLOCKED_TEXT])
        self.assertEqual(ch.balance, 0)

    def test_block_trap_type_error(self):
        # T-13: the setter wants a bool or integer.
        main = stackless.getcurrent()
        with self.assertRaises(TypeError) as cm:
            main.block_trap = "yes"
        self.assertEqual(str(cm.exception),
                         "block_trap must be set to a bool or integer")
        self.assertIs(main.block_trap, False)


class SwitchTrapTest(StacklessTestCase):

    def test_failed_switch_restores_channel(self):
        # C-13.4, M-11: a switch refused by switch_trap changes nothing.
        ch = stackless.channel()
        got = []
        r = self.started(lambda: got.append(ch.receive()))
        old = stackless.switch_trap(1)
        try:
            with self.assertRaisesRegex(RuntimeError, "switch_trap"):
                ch.send("refused")      # preference -1 would switch
        finally:
            stackless.switch_trap(-1)
        self.assertEqual(old, 0)
        self.assertEqual(ch.balance, -1)
        self.assertIs(ch.queue, r)
        self.assertTrue(r.blocked)
        self.assertIsNone(r.tempval)
        self.assertEqual(got, [])
        self.assertEqual(stackless.getruncount(), 1)
        ch.send("accepted")
        self.assertEqual(got, ["accepted"])

    def test_failed_block_restores_channel(self):
        # C-13.4, M-11: a blocking operation refused by switch_trap.
        ch = stackless.channel()
        self.spawn(lambda: None)
        stackless.switch_trap(1)
        try:
            with self.assertRaisesRegex(RuntimeError, "switch_trap"):
                ch.receive()
            with self.assertRaisesRegex(RuntimeError, "switch_trap"):
                ch.send(1)
        finally:
            stackless.switch_trap(-1)
        main = stackless.getcurrent()
        self.assertEqual(ch.balance, 0)
        self.assertIsNone(ch.queue)
        self.assertFalse(main.blocked)
        self.assertIsNone(main.tempval)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()

    def test_switch_trap_allows_non_switching_exchange(self):
        # C-13.2, M-11: with preference 1 a send to a waiting receiver
        # does not switch, so switch_trap does not refuse it.
        ch = stackless.channel()
        ch.preference = 1
        got = []
        r = self.started(lambda: got.append(ch.receive()))
        stackless.switch_trap(1)
        try:
            ch.send("x")
        finally:
            stackless.switch_trap(-1)
        self.assertFalse(r.blocked)
        self.assertTrue(r.scheduled)
        stackless.run()
        self.assertEqual(got, ["x"])


class SendExceptionTest(StacklessTestCase):

    def receiver(self, ch):
        def f():
            try:
                ch.receive()
            except BaseException as e:
                self.log.append(e)
            else:
                self.log.append("no exception")
        return self.started(f)

    def test_send_exception(self):
        # C-4: the receiver raises exc(*args).
        ch = stackless.channel()
        self.receiver(ch)
        self.assertIsNone(ch.send_exception(ValueError, "bad", 2))
        [e] = self.log
        self.assertIs(type(e), ValueError)
        self.assertEqual(e.args, ("bad", 2))

    def test_send_exception_without_args(self):
        # C-4
        ch = stackless.channel()
        self.receiver(ch)
        ch.send_exception(KeyError)
        [e] = self.log
        self.assertIs(type(e), KeyError)
        self.assertEqual(e.args, ())

    def test_send_exception_base_exception(self):
        # C-4: any BaseException subclass.
        class Custom(BaseException):
            pass
        ch = stackless.channel()
        self.receiver(ch)
        ch.send_exception(Custom, 1)
        [e] = self.log
        self.assertIs(type(e), Custom)
        self.assertEqual(e.args, (1,))

    def test_send_exception_to_blocking_receiver_later(self):
        # C-4: the sender blocks; the exception is raised in the
        # receiver that comes later.
        ch = stackless.channel()
        s = self.started(ch.send_exception, ZeroDivisionError, "late")
        self.assertEqual(ch.balance, 1)
        with self.assertRaises(ZeroDivisionError) as cm:
            ch.receive()
        self.assertEqual(cm.exception.args, ("late",))
        self.assertEqual(ch.balance, 0)
        stackless.run()
        self.assertFalse(s.alive)

    def test_send_exception_type_errors(self):
        # C-4: exc must subclass BaseException; no args -> TypeError.
        # Nothing is sent: the receiver stays blocked.
        ch = stackless.channel()
        r = self.receiver(ch)
        for bad in (int, object, 42, "ValueError", ValueError("x")):
            with self.subTest(exc=bad):
                with self.assertRaises(TypeError):
                    ch.send_exception(bad)
        with self.assertRaises(TypeError):
            ch.send_exception()
        self.assertEqual(ch.balance, -1)
        self.assertTrue(r.blocked)
        self.assertEqual(self.log, [])


class SendThrowTest(StacklessTestCase):

    def receive_error(self, ch):
        """Start a receiver; return a list that gets its exception."""
        caught = []

        def f():
            try:
                ch.receive()
            except BaseException as e:
                caught.append(e)
        self.started(f)
        return caught

    def test_class(self):
        # C-5, T-8: a class alone.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        self.assertIsNone(ch.send_throw(ValueError))
        self.assertIs(type(caught[0]), ValueError)
        self.assertEqual(caught[0].args, ())

    def test_class_and_value(self):
        # C-5, T-8: class + value.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        ch.send_throw(ValueError, "the value")
        self.assertIs(type(caught[0]), ValueError)
        self.assertEqual(caught[0].args, ("the value",))

    def test_instance(self):
        # C-5, T-8: an instance is raised as it is.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        exc = KeyError("k")
        ch.send_throw(exc)
        self.assertIs(caught[0], exc)

    def test_instance_with_value_is_type_error(self):
        # C-5, T-8: an instance may not have a separate value.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        with self.assertRaises(TypeError) as cm:
            ch.send_throw(KeyError("k"), "v")
        self.assertEqual(str(cm.exception),
                         "instance exception may not have a separate value")
        self.assertEqual(ch.balance, -1)
        self.assertEqual(caught, [])

    def test_bad_exception_is_type_error(self):
        # C-5, T-8: anything but an exception class or instance.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        for bad in (42, "ValueError", None, int, object()):
            with self.subTest(exc=bad):
                with self.assertRaises(TypeError):
                    ch.send_throw(bad)
        with self.assertRaises(TypeError):
            ch.send_throw()
        self.assertEqual(ch.balance, -1)
        self.assertEqual(caught, [])

    def test_bad_traceback_is_type_error(self):
        # C-5, T-8: tb must be a traceback or None.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        for bad in (42, "tb", object()):
            with self.subTest(tb=bad):
                with self.assertRaises(TypeError):
                    ch.send_throw(ValueError, None, bad)
                with self.assertRaises(TypeError):
                    ch.send_throw(ValueError("x"), tb=bad)
        self.assertEqual(ch.balance, -1)
        self.assertEqual(caught, [])

    def test_keywords(self):
        # C-5: val and tb may be given by keyword.
        ch = stackless.channel()
        caught = self.receive_error(ch)
        ch.send_throw(ValueError, val="kw", tb=None)
        self.assertEqual(caught[0].args, ("kw",))

    def test_traceback_kept(self):
        # C-5: send_throw(*sys.exc_info()) keeps the traceback: the
        # receiver's traceback goes on into the original one.
        def raiser():
            raise OverflowError("original")

        ch = stackless.channel()
        caught = self.receive_error(ch)
        try:
            raiser()
        except OverflowError:
            info = sys.exc_info()
            ch.send_throw(*info)
        [e] = caught
        self.assertIs(e, info[1])
        tbs = []
        tb = e.__traceback__
        while tb is not None:
            tbs.append(tb)
            tb = tb.tb_next
        names = [tb.tb_frame.f_code.co_name for tb in tbs]
        self.assertIn("raiser", names)
        self.assertIn("test_traceback_kept", names)
        self.assertIn(info[2], tbs)

    def test_instance_with_traceback(self):
        # C-5: an instance with a traceback given separately.
        def raiser():
            raise OverflowError("original")
        try:
            raiser()
        except OverflowError as e:
            tb = e.__traceback__
        exc = ValueError("fresh")
        ch = stackless.channel()
        caught = self.receive_error(ch)
        ch.send_throw(exc, None, tb)
        self.assertIs(caught[0], exc)
        names = []
        t = exc.__traceback__
        while t is not None:
            names.append(t.tb_frame.f_code.co_name)
            t = t.tb_next
        self.assertIn("raiser", names)


class BombTest(StacklessTestCase):

    def test_bomb_sent_is_raised_in_receiver(self):
        # M-13, C-3: a bomb sent over a channel is raised in the receiver.
        ch = stackless.channel()
        caught = []

        def f():
            try:
                ch.receive()
            except ValueError as e:
                caught.append(e)
        self.started(f)
        exc = ValueError("bomb")
        ch.send(stackless.bomb(ValueError, exc))
        self.assertEqual(caught, [exc])

    def test_bomb_from_exc_info(self):
        # M-13: bomb(sys.exc_info()) unpacks the tuple.
        ch = stackless.channel()
        s = None
        try:
            raise KeyError("info")
        except KeyError as e:
            exc = e
            s = self.started(ch.send, stackless.bomb(sys.exc_info()))
        with self.assertRaises(KeyError) as cm:
            ch.receive()
        self.assertIs(cm.exception, exc)
        stackless.run()
        self.assertFalse(s.alive)

    def test_bomb_received_by_main(self):
        # M-13, C-3: the receiver may be main, with a sender waiting.
        ch = stackless.channel()
        self.started(ch.send, stackless.bomb(RuntimeError, "x"))
        with self.assertRaises(RuntimeError) as cm:
            ch.receive()
        self.assertEqual(cm.exception.args, ("x",))
        stackless.run()


class SendSequenceTest(StacklessTestCase):

    def collector(self, ch, n):
        got = []

        def f():
            for i in range(n):
                got.append(ch.receive())
        self.spawn(f)
        return got

    def test_returns_count(self):
        # C-6: each item is sent, the count returned.
        ch = stackless.channel()
        got = self.collector(ch, 5)
        self.assertEqual(ch.send_sequence(range(5)), 5)
        self.assertEqual(got, [0, 1, 2, 3, 4])

    def test_any_iterable(self):
        # C-6
        ch = stackless.channel()
        got = self.collector(ch, 3)
        self.assertEqual(ch.send_sequence(iter("abc")), 3)
        self.assertEqual(got, ["a", "b", "c"])

    def test_empty(self):
        # C-6: nothing to send, nothing blocks.
        ch = stackless.channel()
        self.assertEqual(ch.send_sequence([]), 0)
        self.assertEqual(ch.send_sequence(iter(())), 0)

    def test_from_tasklet(self):
        # C-6: the sender blocks between items until main receives.
        ch = stackless.channel()
        result = []
        self.started(lambda: result.append(ch.send_sequence("xyz")))
        self.assertEqual([ch.receive() for _ in range(3)], ["x", "y", "z"])
        stackless.run()
        self.assertEqual(result, [3])

    def test_iteration_error_propagates(self):
        # C-6: an error of the iteration propagates, after the items
        # before it were sent.
        def gen():
            yield 1
            yield 2
            raise ZeroDivisionError("gen")

        ch = stackless.channel()
        got = self.collector(ch, 3)
        with self.assertRaises(ZeroDivisionError):
            ch.send_sequence(gen())
        self.assertEqual(got, [1, 2])

    def test_not_iterable(self):
        # C-6: a non-iterable raises TypeError.
        ch = stackless.channel()
        with self.assertRaises(TypeError):
            ch.send_sequence(42)
        with self.assertRaises(TypeError):
            ch.send_sequence()

    def test_send_error_propagates(self):
        # C-6: a send error propagates: the channel is closed after the
        # receiver took two items, so the third would block.
        ch = stackless.channel()
        got = []

        def f():
            got.append(ch.receive())
            got.append(ch.receive())
            ch.close()
        self.spawn(f)
        with self.assertRaisesRegex(ValueError, CLOSED_TEXT):
            ch.send_sequence([1, 2, 3])
        self.assertEqual(got, [1, 2])

    def test_exception_items(self):
        # C-6, M-13: a bomb item is raised in the receiver.
        ch = stackless.channel()
        caught = []

        def f():
            for _ in range(3):
                try:
                    caught.append(ch.receive())
                except KeyError as e:
                    caught.append(e)
        self.spawn(f)
        exc = KeyError("k")
        self.assertEqual(
            ch.send_sequence([1, stackless.bomb(KeyError, exc), 3]), 3)
        self.assertEqual(caught, [1, exc, 3])


class IterationTest(StacklessTestCase):

    def test_for_loop_ended_by_send_exception_stop_iteration(self):
        # C-7: a receiving for loop; the sender ends it with
        # send_exception(StopIteration).
        ch = stackless.channel()
        got = []

        def consumer():
            for item in ch:
                got.append(item)
            got.append("done")
        self.spawn(consumer)
        stackless.run()
        for i in range(3):
            ch.send(i)
        self.assertEqual(got, [0, 1, 2])
        ch.send_exception(StopIteration)
        self.assertEqual(got, [0, 1, 2, "done"])
        self.assertEqual(ch.balance, 0)

    def test_next_receives(self):
        # C-7: __next__ is receive() otherwise.
        ch = stackless.channel()
        self.started(ch.send, "v")
        self.assertEqual(next(ch), "v")
        self.started(ch.send, "w")
        self.assertEqual(ch.__next__(), "w")
        stackless.run()

    def test_stop_when_closing_and_no_sender(self):
        # C-7: closing and balance <= 0 -> StopIteration, at once.
        ch = stackless.channel()
        ch.close()
        with self.assertRaises(StopIteration):
            next(ch)
        self.assertEqual(list(ch), [])
        self.assertEqual(stackless.getruncount(), 1)

    def test_stop_when_closing_with_waiting_receiver(self):
        # C-7: balance < 0 counts too.
        ch = stackless.channel()
        got = []
        self.started(lambda: got.append(ch.receive()))
        ch.close()
        with self.assertRaises(StopIteration):
            next(ch)
        self.assertEqual(ch.balance, -1)
        ch.send(1)
        self.assertEqual(got, [1])

    def test_closing_drains_waiting_senders(self):
        # C-7: closing with balance > 0: the values still come, then the
        # iteration stops.
        ch = stackless.channel()
        for i in range(3):
            self.started(ch.send, i)
        ch.close()
        self.assertEqual(list(ch), [0, 1, 2])
        self.assertTrue(ch.closed)
        stackless.run()

    def test_main_iterates_over_producer(self):
        # C-7: a producer tasklet, main consumes with a for loop.
        ch = stackless.channel()

        def producer():
            for i in range(4):
                ch.send(i * i)
            ch.send_exception(StopIteration)
        self.spawn(producer)
        self.assertEqual([x for x in ch], [0, 1, 4, 9])
        stackless.run()

    def test_producer_closes(self):
        # C-7, C-8: a producer that closes the channel after its last
        # send ends the consumer's loop.
        ch = stackless.channel()
        ch.preference = 1

        def producer():
            for i in range(3):
                ch.send(i)
            ch.close()
        self.spawn(producer)
        self.assertEqual(list(ch), [0, 1, 2])
        self.assertTrue(ch.closed)


class LatchTest(StacklessTestCase):
    # _stackless.latch: one channel operation out of several, the
    # primitive of stacklesslib.select().

    def setUp(self):
        super().setUp()
        self.marker = object()
        self.latch = _stackless.latch(self.marker)
        self.results = {}

    def member(self, key, ch, direction, value=None):
        def act():
            self.results[key] = self.latch.action(ch, direction, value)
        return self.spawn(act)

    def test_new(self):
        latch = self.latch
        self.assertFalse(latch.fired)
        self.assertIsNone(latch.winner)
        self.assertIs(latch.marker, self.marker)
        self.assertEqual(latch.members, [])
        self.assertIn("armed", repr(latch))
        self.assertRaises(TypeError, _stackless.latch)
        ch = stackless.channel()
        self.assertRaises(ValueError, latch.action, ch, 0)
        self.assertRaises(TypeError, latch.action, "not a channel", 1, 1)
        self.assertFalse(latch.fired)

    def test_fire(self):
        self.assertIs(self.latch.fire(), True)
        self.assertIs(self.latch.fire(), False)
        self.assertTrue(self.latch.fired)
        self.assertIsNone(self.latch.winner)
        # After it fired an action returns the marker at once, without
        # blocking (the main tasklet alone would deadlock).
        ch = stackless.channel()
        self.assertIs(self.latch.action(ch, -1), self.marker)
        self.assertIs(self.latch.action(ch, 1, "x"), self.marker)
        self.assertEqual(ch.balance, 0)

    def test_waiting_member_taken_withdraws_the_others(self):
        a, b, c = (stackless.channel() for _ in range(3))
        ta = self.member("a", a, 1, "A")
        tb = self.member("b", b, 1, "B")
        tc = self.member("c", c, -1)
        stackless.schedule()
        self.assertEqual((a.balance, b.balance, c.balance), (1, 1, -1))
        self.assertEqual(self.latch.members, [ta, tb, tc])
        self.assertEqual(b.receive(), "B")
        # In the same step: a and c are empty again.
        self.assertEqual((a.balance, b.balance, c.balance), (0, 0, 0))
        self.assertTrue(self.latch.fired)
        self.assertIs(self.latch.winner, tb)
        stackless.run()
        self.assertIsNone(self.results["b"])
        self.assertIs(self.results["a"], self.marker)
        self.assertIs(self.results["c"], self.marker)

    def test_member_that_finds_its_partner_wins(self):
        a, b = stackless.channel(), stackless.channel()
        self.spawn(a.send, "ready")
        stackless.schedule()                 # a sender waits on a
        tb = self.member("b", b, -1)
        stackless.schedule()
        ta = self.member("a", a, -1)
        stackless.run()
        self.assertEqual(self.results, {"a": "ready", "b": self.marker})
        self.assertIs(self.latch.winner, ta)
        self.assertEqual((a.balance, b.balance), (0, 0))
        self.assertFalse(tb.alive)

    def test_fire_withdraws_waiting_members(self):
        a, b = stackless.channel(), stackless.channel()
        self.member("a", a, 1, "A")
        self.member("b", b, -1)
        stackless.schedule()
        self.assertIs(self.latch.fire(), True)
        self.assertEqual((a.balance, b.balance), (0, 0))
        stackless.run()
        self.assertEqual(self.results, {"a": self.marker, "b": self.marker})

    def test_members_cannot_be_partners(self):
        a = stackless.channel()
        self.member("send", a, 1, "A")
        stackless.schedule()
        self.assertRaises(RuntimeError, self.latch.action, a, -1)
        self.assertEqual(a.balance, 1)
        self.assertFalse(self.latch.fired)
        self.assertEqual(a.receive(), "A")
        self.assertIs(self.latch.winner, self.latch.members[0])

    def test_killed_member_leaves_the_latch_armed(self):
        a, b = stackless.channel(), stackless.channel()
        ta = self.member("a", a, 1, "A")
        self.member("b", b, 1, "B")
        stackless.schedule()
        ta.kill()
        self.assertEqual(a.balance, 0)
        self.assertFalse(self.latch.fired)
        self.assertEqual(b.receive(), "B")
        self.assertTrue(self.latch.fired)

    def test_other_thread_takes(self):
        import threading
        a, b = stackless.channel(), stackless.channel()
        self.member("a", a, 1, "A")
        self.member("b", b, 1, "B")
        stackless.schedule()
        got = []
        th = threading.Thread(target=lambda: got.append(a.receive()))
        th.start()
        th.join()
        self.assertEqual(got, ["A"])
        self.assertEqual(b.balance, 0)
        stackless.run()
        self.assertEqual(self.results, {"a": None, "b": self.marker})

    def test_collected_with_its_blocked_members(self):
        # The latch, its member waiting in a channel and the channel are
        # a cycle; the collector frees it (the marker goes with it).
        class Marker:
            pass
        marker = Marker()
        ref = weakref.ref(marker)
        latch = _stackless.latch(marker)
        del marker
        ch = stackless.channel()
        t = stackless.tasklet(latch.action)(ch, 1, "x")
        t.run()
        self.assertEqual(ch.balance, 1)
        del latch, ch, t
        for _ in range(3):
            gc.collect()
        self.assertIsNone(ref())


if __name__ == "__main__":
    unittest.main()
