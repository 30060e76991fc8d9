"""Signatures and types of the builtins of stackless (issue 16).

Every function and method takes its arguments by keyword, under the names
of the original (spec M, T, C, S), and reports them to inspect; the ones
that switch tasklets are builtin functions, bound builtin methods and
method descriptors like any other, as on Stackless 3.7, and stay as soft
whichever way they are called.
"""

import copy
import dis
import functools
import inspect
import pickle
import sys
import types
import unittest

import _stackless
import stackless
from stackless import bomb, channel, tasklet

from .helpers import StacklessTestCase, nop
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


# What inspect.signature() says of each function and method.  A routine
# missing here fails SignatureTest.test_every_routine_is_listed.
MODULE_FUNCTIONS = {
    "getcurrent": "()",
    "getmain": "()",
    "getruncount": "()",
    "getcurrentid": "()",
    "getthreads": "()",
    "getdebug": "()",
    "getuncollectables": "()",
    "get_schedule_callback": "()",
    "get_channel_callback": "()",
    "schedule": None,           # retval=stackless.current: see below
    "schedule_remove": None,
    "run": "(timeout=0, threadblock=False, soft=False, ignore_nesting=False, "
           "totaltimeout=False)",
    "switch_trap": "(change=0)",
    "enable_softswitch": "(flag)",
    "set_schedule_callback": "(cb)",
    "set_channel_callback": "(cb)",
    "set_error_handler": "(handler=None)",
    "get_thread_info": "(thread_id=-1, flags=0)",
    # The wakeup fd of a thread, for stacklesslib's hub.
    "set_thread_wakeup_fd": "(fd, thread_id=-1)",
    "pickle_flags": "(new_flags=-1, mask=-1)",
    "pickle_flags_default": "(new_default=-1, mask=-1)",
    # Test hooks (spec M-21.5, M-21.6).
    "test_cframe_nr": "(switches, cstate_add_addr=None)",
    "test_outside": "()",
    # Helpers of pickling (spec P), positional only.
    "_wrap_restore_generator": "(code, state, /)",
    "_wrap_frame_object": "(state, back, /)",
    "_wrap_frame_state_of": "(frame, /)",
    "_wrap_set_reduce_frame": "(func, /)",
    "_wrap_reduce_generator": "(gen, /)",
    "_async_gen_awaitable_state": "(aw, /)",
    "_async_gen_awaitable_set_state": "(aw, state, /)",
    # Test hooks (spec M-21.11), positional only.
    "_pickle_moduledict": "(pickler, d, /)",
    "_stack_depths": "(code, /)",
    "_check_code_flow": "(code, entries, /)",
    "_shim_codes": "()",
    "_stack_depths": "(code, /)",
    "_check_code_flow": "(code, entries, /)",
    "_shim_codes": "()",
    "_gc_track": "(obj, /)",
    "_gc_untrack": "(obj, /)",
}

TASKLET_METHODS = {
    "bind": "(self, /, func=None, args=None, kwargs=None)",
    "setup": "(self, /, *args, **kwargs)",
    "insert": "(self, /)",
    "remove": "(self, /)",
    "run": "(self, /)",
    "switch": "(self, /)",
    "throw": "(self, /, exc, val=None, tb=None, pending=False)",
    "raise_exception": "(self, /, exc_class, *args)",
    "kill": "(self, /, pending=False)",
    "set_atomic": "(self, /, flag)",
    "set_ignore_nesting": "(self, /, flag)",
    "bind_thread": "(self, /, thread_id=-1)",
    "__reduce__": "(self, /)",
    "__setstate__": "(self, state, /)",
}

CHANNEL_METHODS = {
    "send": "(self, /, value)",
    "receive": "(self, /)",
    "send_exception": "(self, /, exc, *args)",
    "send_throw": "(self, /, exc, val=None, tb=None)",
    "send_sequence": "(self, /, seq)",
    "close": "(self, /)",
    "open": "(self, /)",
    "__reduce__": "(self, /)",
    "__setstate__": "(self, state, /)",
}

BOMB_METHODS = {
    "__reduce__": "(self, /)",
}

CLASSES = {
    tasklet: "(func=None, args=None, kwargs=None)",
    channel: "()",
    bomb: "(type=None, value=None, traceback=None)",
}

# The builtins that may switch tasklets (METH_STACKLESS).
SWITCHING_FUNCTIONS = ["schedule", "schedule_remove"]
SWITCHING_TASKLET_METHODS = ["run", "switch", "throw", "raise_exception",
                             "kill"]
SWITCHING_CHANNEL_METHODS = ["send", "receive", "send_exception",
                             "send_throw", "send_sequence"]

BuiltinMethodDescriptorType = type(list.append)


def own_routines(cls):
    """The methods a type defines itself (not its slots)."""
    return {name for name, obj in vars(cls).items()
            if inspect.isroutine(obj) and name != "__new__"
            and not isinstance(obj, types.WrapperDescriptorType)}


def tp_name(obj):
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


class SignatureTest(unittest.TestCase):
    """__text_signature__ and inspect.signature() give the parameters."""

    both_modes = False

    def check(self, table, owner, bound=None):
        for name, expected in table.items():
            with self.subTest(name=name):
                obj = getattr(owner, name)
                if expected is None:
                    continue
                self.assertEqual(str(inspect.signature(obj)), expected)
                if bound is not None:
                    # Bound, the object is not a parameter.
                    expected = expected.replace("(self, /, ", "(")
                    expected = expected.replace("(self, /)", "()")
                    expected = expected.replace("(self, ", "(")
                    self.assertEqual(
                        str(inspect.signature(getattr(bound, name))),
                        expected)

    def test_module_functions(self):
        self.check(MODULE_FUNCTIONS, _stackless)
        for name in MODULE_FUNCTIONS:
            if not name.startswith("_"):
                with self.subTest(name=name):
                    self.assertIs(getattr(stackless, name),
                                  getattr(_stackless, name))

    def test_tasklet_methods(self):
        self.check(TASKLET_METHODS, tasklet, tasklet())

    def test_channel_methods(self):
        self.check(CHANNEL_METHODS, channel, channel())

    def test_bomb_methods(self):
        self.check(BOMB_METHODS, bomb, bomb())

    def test_classes(self):
        for cls, expected in CLASSES.items():
            with self.subTest(cls=cls):
                self.assertEqual(str(inspect.signature(cls)), expected)

    def test_schedule_default(self):
        # S-2, S-3: retval defaults to the current tasklet, which no
        # literal says: the text signature has the original's words, and
        # inspect cannot evaluate them, as for CPython's dict.pop().
        for func in (stackless.schedule, stackless.schedule_remove):
            with self.subTest(func=func):
                self.assertEqual(func.__text_signature__,
                                 "($module, /, retval=stackless.current)")
                with self.assertRaises(ValueError):
                    inspect.signature(func)

    def test_every_routine_is_listed(self):
        listed = {name for name in dir(_stackless)
                  if inspect.isroutine(getattr(_stackless, name))}
        self.assertEqual(listed, set(MODULE_FUNCTIONS))
        for cls, table in ((tasklet, TASKLET_METHODS),
                           (channel, CHANNEL_METHODS),
                           (bomb, BOMB_METHODS)):
            with self.subTest(cls=cls):
                self.assertEqual(own_routines(cls), set(table))
        self.assertEqual(own_routines(stackless.cstack), set())

    def test_text_signature_and_doc(self):
        self.assertEqual(channel.send.__text_signature__,
                         "($self, /, value)")
        self.assertTrue(channel.send.__doc__.startswith("Send a value"))
        self.assertEqual(stackless.enable_softswitch.__text_signature__,
                         "($module, /, flag)")


class TypesTest(unittest.TestCase):
    """The builtins look like builtins to inspect, as on Stackless 3.7:
    the switching ones are of no type of their own."""

    both_modes = False

    def test_module_functions_are_builtins(self):
        for name in MODULE_FUNCTIONS:
            with self.subTest(name=name):
                func = getattr(_stackless, name)
                self.assertIs(type(func), types.BuiltinFunctionType)
                self.assertTrue(inspect.isbuiltin(func))
                self.assertTrue(inspect.isroutine(func))
                self.assertFalse(inspect.isfunction(func))

    def test_switching_functions(self):
        for name in SWITCHING_FUNCTIONS:
            with self.subTest(name=name):
                func = getattr(stackless, name)
                self.assertIs(type(func), type(len))
                self.assertIs(func.__self__, _stackless)
                self.assertEqual(func.__module__, "_stackless")
                self.assertEqual(func.__name__, name)
                self.assertEqual(func.__qualname__, name)
                self.assertEqual(repr(func),
                                 "<built-in function %s>" % name)

    def test_methods_are_method_descriptors(self):
        for cls, table in ((tasklet, TASKLET_METHODS),
                           (channel, CHANNEL_METHODS)):
            for name in table:
                with self.subTest(cls=cls, name=name):
                    method = vars(cls)[name]
                    self.assertIs(type(method), BuiltinMethodDescriptorType)
                    self.assertTrue(inspect.ismethoddescriptor(method))
                    self.assertTrue(inspect.isroutine(method))
                    self.assertFalse(inspect.isbuiltin(method))
                    self.assertIs(method.__objclass__, cls)
                    self.assertEqual(method.__qualname__,
                                     "%s.%s" % (cls.__name__, name))

    def test_bound_methods_are_builtins(self):
        for obj, table in ((tasklet(), TASKLET_METHODS),
                           (channel(), CHANNEL_METHODS)):
            for name in table:
                with self.subTest(obj=obj, name=name):
                    method = getattr(obj, name)
                    self.assertIs(type(method), types.BuiltinMethodType)
                    self.assertTrue(inspect.isbuiltin(method))
                    self.assertTrue(inspect.isroutine(method))
                    self.assertIs(method.__self__, obj)

    def test_switching_methods(self):
        for cls, names in ((tasklet, SWITCHING_TASKLET_METHODS),
                           (channel, SWITCHING_CHANNEL_METHODS)):
            obj = cls()
            for name in names:
                with self.subTest(cls=cls, name=name):
                    method = getattr(cls, name)
                    self.assertEqual(
                        repr(method),
                        "<method '%s' of '_stackless.%s' objects>"
                        % (name, cls.__name__))
                    self.assertEqual(
                        repr(getattr(obj, name)),
                        "<built-in method %s of _stackless.%s object at "
                        "%#x>" % (name, cls.__name__, id(obj)))
                    self.assertIs(method.__get__(obj).__self__, obj)
                    with self.assertRaisesRegex(TypeError, "doesn't apply"):
                        method.__get__(42)

    def test_no_type_of_their_own(self):
        self.assertFalse(hasattr(_stackless, "stackless_function"))
        kinds = {type(getattr(stackless, name))
                 for name in SWITCHING_FUNCTIONS}
        kinds |= {type(getattr(cls, name))
                  for cls, names in ((tasklet, SWITCHING_TASKLET_METHODS),
                                     (channel, SWITCHING_CHANNEL_METHODS))
                  for name in names}
        self.assertEqual(kinds, {types.BuiltinFunctionType,
                                 BuiltinMethodDescriptorType})

    def test_equality_and_hash(self):
        ch1, ch2 = channel(), channel()
        self.assertEqual(ch1.send, ch1.send)
        self.assertEqual(hash(ch1.send), hash(ch1.send))
        self.assertNotEqual(ch1.send, ch2.send)
        self.assertNotEqual(ch1.send, ch1.receive)
        self.assertIs(channel.send, channel.send)

    def test_pickle_and_copy(self):
        # By reference, as CPython's builtins.
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            with self.subTest(proto=proto):
                for obj in (stackless.schedule, stackless.schedule_remove,
                            channel.send, tasklet.kill,
                            stackless.enable_softswitch):
                    self.assertIs(pickle.loads(pickle.dumps(obj, proto)),
                                  obj)
                ch = channel()
                ch.preference = 1
                send = pickle.loads(pickle.dumps(ch.send, proto))
                self.assertIs(type(send), types.BuiltinMethodType)
                self.assertIs(type(send.__self__), channel)
                self.assertEqual(send.__self__.preference, 1)
        self.assertIs(copy.copy(stackless.schedule), stackless.schedule)
        self.assertIs(copy.deepcopy(channel.send), channel.send)

    def test_subclass_methods(self):
        class Channel(channel):
            pass

        ch = Channel()
        self.assertIs(Channel.send, channel.send)
        self.assertIs(type(ch.send), types.BuiltinMethodType)
        self.assertIs(ch.send.__self__, ch)


class KeywordCallTest(StacklessTestCase):
    """Each function and method called with every argument by keyword."""

    def test_schedule(self):
        # S-2, S-3: alone, schedule() returns at once, with retval.
        marker = object()
        self.assertIs(stackless.schedule(retval=marker), marker)
        self.assertIs(stackless.schedule(retval=None), None)
        got = []

        def f():
            got.append(stackless.schedule_remove(retval=marker))

        t = self.spawn(f)
        t.run()
        self.assertTrue(t.paused)
        t.insert()
        stackless.run()
        self.assertEqual(got, [marker])

    def test_run(self):
        self.spawn(self.record, "ran")
        self.assertIsNone(stackless.run(timeout=0, threadblock=False,
                                        soft=False, ignore_nesting=False,
                                        totaltimeout=False))
        self.assertEqual(len(self.log), 1)

    def test_module_settings(self):
        self.assertEqual(stackless.switch_trap(change=0), 0)
        old = stackless.enable_softswitch(flag=None)
        self.assertIs(stackless.enable_softswitch(flag=old), old)

        def handler(*args):
            pass

        self.assertIsNone(stackless.set_error_handler(handler=handler))
        self.assertIs(stackless.set_error_handler(handler=None), handler)
        for setter in (stackless.set_schedule_callback,
                       stackless.set_channel_callback):
            with self.subTest(setter=setter):
                self.assertIsNone(setter(cb=handler))
                self.assertIs(setter(cb=None), handler)
        main = stackless.getmain()
        self.assertEqual(stackless.get_thread_info(thread_id=-1, flags=0),
                         (main, main, 1))
        self.assertEqual(
            stackless.get_thread_info(flags=0,
                                      thread_id=stackless.getcurrentid()),
            (main, main, 1))
        flags = stackless.pickle_flags()
        self.assertEqual(stackless.pickle_flags(new_flags=-1, mask=-1),
                         flags)
        default = stackless.pickle_flags_default()
        self.assertEqual(
            stackless.pickle_flags_default(new_default=-1, mask=-1), default)

    def test_tasklet_creation(self):
        got = []

        def f(a, b):
            got.append((a, b))

        self.track(tasklet(func=f, args=(1,), kwargs={"b": 2})).insert()
        t = self.new()
        self.assertIs(t.bind(func=f, args=(3,), kwargs={"b": 4}), t)
        t.insert()
        t = self.new(f)
        self.assertIs(t.setup(a=5, b=6), t)
        stackless.run()
        self.assertEqual(got, [(1, 2), (3, 4), (5, 6)])

    def test_tasklet_flags(self):
        t = self.new(nop)
        self.assertIs(t.set_atomic(flag=True), False)
        self.assertTrue(t.atomic)
        self.assertIs(t.set_ignore_nesting(flag=True), False)
        self.assertTrue(t.ignore_nesting)
        self.assertIsNone(t.bind_thread(thread_id=-1))
        self.assertEqual(t.thread_id, stackless.getcurrentid())

    def suspended(self):
        def f():
            try:
                stackless.schedule_remove()
            except BaseException as e:
                self.record(type(e), e.args)

        t = self.new(f, ())
        t.run()
        self.assertTrue(t.paused)
        return t

    def test_throw(self):
        t = self.suspended()
        t.throw(exc=ValueError, val=ValueError(1), tb=None, pending=True)
        self.assertTrue(t.scheduled)
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(self.log[-1][1:], (ValueError, (1,)))

    def test_raise_exception(self):
        t = self.suspended()
        t.raise_exception(exc_class=KeyError)
        self.assertFalse(t.alive)
        self.assertEqual(self.log[-1][1:], (KeyError, ()))

    def test_kill(self):
        t = self.suspended()
        t.kill(pending=True)
        self.assertTrue(t.scheduled)
        stackless.run()
        self.assertFalse(t.alive)
        self.assertIs(self.log[-1][1], TaskletExit)

    def receiver(self, ch, n=1):
        def f():
            for _ in range(n):
                try:
                    self.record("got", ch.receive())
                except Exception as e:
                    self.record("raised", type(e), e.args)
        return self.spawn(f)

    def test_channel(self):
        ch = channel()
        self.receiver(ch, 5)
        stackless.run()
        ch.send(value=1)
        ch.send_exception(exc=ValueError)
        ch.send_exception(ValueError, 2, 3)
        ch.send_throw(exc=KeyError, val=KeyError(4), tb=None)
        self.assertEqual(ch.balance, -1)
        self.assertEqual(ch.send_sequence(seq=[5]), 1)
        self.assertEqual([e[1:] for e in self.log],
                         [("got", 1), ("raised", ValueError, ()),
                          ("raised", ValueError, (2, 3)),
                          ("raised", KeyError, (4,)), ("got", 5)])

    def test_bomb(self):
        b = bomb(type=ValueError, value=ValueError(1), traceback=None)
        self.assertIs(b.type, ValueError)
        self.assertEqual(b.value.args, (1,))


class SoftKeywordCallTest(StacklessTestCase):
    """A switching builtin called with keywords, or with *args and
    **kwargs, switches softly (spec S-7): the tasklet stays restorable."""

    both_modes = False

    def setUp(self):
        super().setUp()
        old = stackless.enable_softswitch(True)
        self.addCleanup(stackless.enable_softswitch, old)

    def test_keyword_calls_are_soft(self):
        ch = channel()
        states = []

        def watch(*tasklets):
            while any(t.alive for t in tasklets):
                states.append([t.restorable and t.nesting_level == 0
                               for t in tasklets if t.alive])
                stackless.schedule()

        def sender():
            ch.send(value=1)
            ch.send(**{"value": 2})
            send = ch.send
            send(value=3)
            ch.send_exception(exc=ValueError)
            ch.send_throw(exc=KeyError, tb=None)
            ch.send_sequence(seq=[4, 5])
            stackless.schedule(retval=None)
            stackless.schedule(**{"retval": None})

        def receiver():
            for _ in range(7):
                try:
                    self.record(ch.receive())
                except Exception as e:
                    self.record(type(e))

        s = self.spawn(sender)
        r = self.spawn(receiver)
        self.spawn(watch, s, r)
        stackless.run()
        self.assertEqual([e[1] for e in self.log],
                         [1, 2, 3, ValueError, KeyError, 4, 5])
        self.assertTrue(states)
        self.assertTrue(all(all(s) for s in states), states)

    def test_tasklet_methods_by_keyword_are_soft(self):
        levels = []

        def victim():
            try:
                stackless.schedule_remove()
            except Exception as e:
                self.record(type(e))
            stackless.schedule_remove()

        def killer(t):
            t.throw(exc=ValueError, pending=False)
            levels.append(stackless.current.nesting_level)
            t.kill(pending=False)
            levels.append(stackless.current.nesting_level)

        v = self.spawn(victim)
        v.run()
        k = self.spawn(killer, v)
        stackless.run()
        self.assertFalse(v.alive)
        self.assertFalse(k.alive)
        self.assertEqual(levels, [0, 0])
        self.assertEqual([e[1] for e in self.log], [ValueError])

    def test_call_shapes_specialize(self):
        # CALL_STACKLESS takes the method descriptor, the bound method and
        # the module function alike; a site that meets a builtin of
        # another kind deoptimizes and calls it as usual.
        ch = channel()

        def sender():
            send = ch.send
            for i in range(20):
                ch.send(i)
                send(i)
                stackless.schedule()

        def receiver():
            for _ in range(40):
                self.record(ch.receive(), stackless.current.nesting_level)

        self.spawn(sender)
        self.spawn(receiver)
        stackless.run()
        self.assertEqual({e[2] for e in self.log}, {0})
        calls = [i.opname for i in dis.get_instructions(sender,
                                                         adaptive=True)
                 if i.opname.startswith("CALL")]
        self.assertEqual(calls.count("CALL_STACKLESS"), 3, calls)

        # A site warmed up on a switching builtin meets others.
        def mixed(funcs):
            out = []
            for f in funcs:
                out.append(f())
            return out

        me = stackless.getcurrent()
        out = mixed([stackless.schedule] * 20
                    + [stackless.getcurrent, stackless.getmain])
        self.assertEqual(out, [me] * 22)

    def test_builtin_sites_given_a_switching_one(self):
        # CALL specialized for a builtin of the same call flags deoptimizes
        # for a switching one (METH_STACKLESS is in its flags), which then
        # switches softly.
        def call0(f):
            return f()

        def call1(f, x):
            return f(x)

        def call2(f, x, y):
            return f(x, y)

        ch = channel()
        shapes = [
            (call0, (stackless.pickle_flags,), (stackless.schedule,),
             "CALL_BUILTIN_FAST_WITH_KEYWORDS"),
            (call1, (channel.open, channel()), None,
             "CALL_METHOD_DESCRIPTOR_NOARGS"),
            (call2, (tasklet.set_atomic, stackless.getmain(), False),
             (channel.send, ch, 1),
             "CALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS"),
        ]
        for call, warm, switching, opname in shapes:
            with self.subTest(opname=opname):
                for _ in range(20):
                    call(*warm)
                ops = [i.opname for i in dis.get_instructions(
                    call, adaptive=True) if i.opname.startswith("CALL")]
                self.assertEqual(ops, [opname])
                if switching is None:
                    # tasklet.run: the caller switches to a new tasklet.
                    def watch():
                        self.record(caller.restorable, caller.nesting_level)

                    caller = self.spawn(call1, tasklet.run,
                                        self.new(watch, ()))
                else:
                    caller = self.spawn(call, *switching)
                    self.spawn(lambda: self.record(caller.restorable,
                                                   caller.nesting_level))
                stackless.run()
                self.assertEqual(self.log[-1][1:], (True, 0))


class CalledFromCTest(StacklessTestCase):
    """Called by C code, a switching builtin knows that the eval loop is
    not its caller: it switches hard, also when C code that another
    switching builtin runs calls it."""

    def test_from_c_inside_a_soft_call(self):
        ch, ch2 = channel(), channel()

        def sender():
            # send_sequence() iterates over a map() that calls ch2.send
            # from C.
            self.record("sent", ch.send_sequence(map(ch2.send, range(3))))

        def receiver2():
            for _ in range(3):
                self.record("ch2", ch2.receive())

        def receiver():
            for _ in range(3):
                self.record("ch", ch.receive())

        for f in (sender, receiver2, receiver):
            self.spawn(f)
        stackless.run()
        events = [e[1:] for e in self.log]
        self.assertEqual(sorted(e for e in events if e[0] == "ch2"),
                         [("ch2", 0), ("ch2", 1), ("ch2", 2)])
        self.assertEqual([e for e in events if e[0] == "ch"],
                         [("ch", None)] * 3)
        self.assertEqual(events[-1], ("sent", 3))

    def test_from_c_with_keywords(self):
        ch = channel()
        for _ in range(2):
            self.spawn(lambda: self.record(ch.receive()))
        stackless.run()
        functools.partial(ch.send, value=7)()
        functools.partial(channel.send, ch)(value=8)
        self.assertEqual([e[1] for e in self.log], [7, 8])


class ErrorTest(unittest.TestCase):
    """Wrong arguments raise TypeError in CPython's words (and a wrong
    count in words the original's tests match, spec preamble), whether
    the eval loop or C code makes the call."""

    both_modes = False

    def callers(self, func):
        """func called from Python code, and through C."""
        return [("python", lambda *a, **k: func(*a, **k)),
                ("c", functools.partial(func))]

    def assertMessage(self, func, regex, *args, **kwargs):
        for how, call in self.callers(func):
            with self.subTest(func=func, how=how, args=args, kwargs=kwargs):
                with self.assertRaisesRegex(TypeError, regex):
                    call(*args, **kwargs)

    def test_unexpected_keyword(self):
        ch, t = channel(), tasklet()
        # (function, its name, a parameter, positional arguments to give)
        cases = [
            (stackless.schedule, "schedule", "retval", ()),
            (stackless.schedule_remove, "schedule_remove", "retval", ()),
            (stackless.run, "run", "timeout", ()),
            (stackless.switch_trap, "switch_trap", "change", ()),
            (stackless.enable_softswitch, "enable_softswitch", "flag", ()),
            (stackless.set_schedule_callback, "set_schedule_callback",
             "cb", ()),
            (stackless.set_channel_callback, "set_channel_callback", "cb",
             ()),
            (stackless.set_error_handler, "set_error_handler", "handler",
             ()),
            (stackless.get_thread_info, "get_thread_info", "flags", ()),
            (stackless.pickle_flags, "pickle_flags", "mask", ()),
            (stackless.pickle_flags_default, "pickle_flags_default", "mask",
             ()),
            (t.bind, "bind", "func", ()),
            (t.throw, "throw", "pending", (ValueError,)),
            (t.raise_exception, "raise_exception", "exc_class", ()),
            (t.kill, "kill", "pending", ()),
            (t.set_atomic, "set_atomic", "flag", ()),
            (t.set_ignore_nesting, "set_ignore_nesting", "flag", ()),
            (t.bind_thread, "bind_thread", "thread_id", ()),
            (ch.send, "send", "value", ()),
            (ch.send_exception, "send_exception", "exc", ()),
            (ch.send_exception, "send_exception", "exc", (ValueError, 1)),
            (ch.send_throw, "send_throw", "tb", (ValueError,)),
            (ch.send_sequence, "send_sequence", "seq", ()),
            (bomb, "bomb", "type", ()),
        ]
        for func, name, param, args in cases:
            bad = param + "x"
            self.assertMessage(
                func, r"^%s\(\) got an unexpected keyword argument '%s'"
                % (name, bad), *args, **{bad: None})

    def test_no_keywords(self):
        ch, t = channel(), tasklet()
        cases = [
            (stackless.getcurrent, r"_stackless\.getcurrent\(\)"),
            (stackless.getruncount, r"_stackless\.getruncount\(\)"),
            (t.insert, r"tasklet\.insert\(\)"),
            (t.remove, r"tasklet\.remove\(\)"),
            (t.run, r"tasklet\.run\(\)"),
            (t.switch, r"tasklet\.switch\(\)"),
            (ch.receive, r"channel\.receive\(\)"),
            (ch.close, r"channel\.close\(\)"),
        ]
        for func, name in cases:
            self.assertMessage(func, r"^%s takes no keyword arguments$"
                               % name, x=1)
            self.assertMessage(func, r"^%s takes no arguments \(1 given\)$"
                               % name, 1)

    def test_argument_twice(self):
        ch, t = channel(), tasklet()
        self.assertMessage(
            ch.send_exception, r"^argument for send_exception\(\) given by "
            r"name \('exc'\) and position \(1\)$", ValueError, exc=KeyError)
        self.assertMessage(
            t.raise_exception, r"^argument for raise_exception\(\) given "
            r"by name \('exc_class'\) and position \(1\)$", ValueError,
            exc_class=KeyError)
        self.assertMessage(
            t.throw, r"^argument for throw\(\) given by name \('exc'\) and "
            r"position \(1\)$", ValueError, exc=KeyError)
        self.assertMessage(
            stackless.run, r"^argument for run\(\) given by name "
            r"\('timeout'\) and position \(1\)$", 0, timeout=0)

    def test_wrong_counts(self):
        # Spec preamble (T): "takes exactly one argument", "(takes|
        # expected) at most N argument" or "at least N argument".
        ch, t = channel(), tasklet()
        one = [ch.send, ch.send_sequence, t.set_atomic,
               t.set_ignore_nesting, stackless.enable_softswitch,
               stackless.set_schedule_callback,
               stackless.set_channel_callback]
        for func in one:
            name = func.__name__
            self.assertMessage(func, r"^%s\(\) takes exactly one argument "
                               r"\(0 given\)$" % name)
            self.assertMessage(func, r"^%s\(\) takes exactly one argument "
                               r"\(2 given\)$" % name, 1, 2)
            self.assertMessage(func, r"^%s\(\) takes exactly one argument "
                               r"\(2 given\)$" % name, 1, x=2)
        for func in (ch.send_exception, t.raise_exception):
            self.assertMessage(func, r"^%s\(\) takes at least 1 argument "
                               r"\(0 given\)$" % func.__name__)
        most = [(stackless.schedule, 1), (stackless.run, 5),
                (stackless.switch_trap, 1), (stackless.get_thread_info, 2),
                (stackless.set_error_handler, 1), (t.kill, 1),
                (t.throw, 4), (t.bind, 3), (t.bind_thread, 1),
                (ch.send_throw, 3)]
        for func, n in most:
            self.assertMessage(func, r"takes at most %d argument" % n,
                               *[0] * (n + 1))

    def test_wrong_object(self):
        for descr, obj in ((channel.send, tasklet()),
                           (tasklet.run, channel()),
                           (channel.receive, 42)):
            name = descr.__name__
            self.assertMessage(
                descr, r"^descriptor '%s' for '_stackless\.%s' objects "
                r"doesn't apply to a '%s' object$"
                % (name, descr.__objclass__.__name__, tp_name(obj)),
                obj)
        for descr in (channel.send, channel.receive, tasklet.kill):
            self.assertMessage(
                descr, r"^unbound method %s\(\) needs an argument$"
                % descr.__qualname__.replace(".", r"\."))


if __name__ == "__main__":
    unittest.main()
