"""Stackless Python: tasklets, channels and a scheduler per thread.

The names come from the builtin module _stackless; this module adds what is
easier to say in Python.  The module object is an instance of a ModuleType
subclass, so that it can have computed attributes.
"""

import sys as _sys
import types as _types

import _stackless
from _stackless import *  # noqa: F401,F403
from _stackless import (bomb, cframe, channel, getcurrent, getmain,
                        getruncount, getthreads, getdebug, getuncollectables,
                        pickle_flags, pickle_flags_default, tasklet)
# Test and introspection hooks (spec M-21.1, M-21.3, M-21.5, M-21.6).
from _stackless import (cstack, get_thread_info,  # noqa: F401
                        test_cframe_nr, test_outside)
# Test and introspection hooks (spec M-21.4, M-21.11), which import *
# leaves out.
from _stackless import (_test_nostacklesscall, _pickle_moduledict,
                        _gc_track, _gc_untrack)
# The wakeup fd of a thread, for schedulers that wait in epoll
# (stacklesslib's hub).
from _stackless import set_thread_wakeup_fd  # noqa: F401

__version__ = _stackless.__version__

__all__ = [
    "atomic", "channel", "tasklet", "run", "schedule", "schedule_remove",
    "getcurrent", "getmain", "getruncount", "get_thread_info", "stackless",
    "enable_softswitch", "get_channel_callback", "set_channel_callback",
    "get_schedule_callback", "set_schedule_callback", "getcurrentid",
    "getdebug", "getthreads", "getuncollectables",
    "pickle_with_tracing_state", "set_error_handler", "switch_trap",
]


class atomic:
    """Context manager: the current tasklet is atomic inside.

    The previous setting comes back on exit, so atomic blocks nest.
    Exceptions pass through.
    """

    __slots__ = ("_saved",)

    def __enter__(self):
        self._saved = getcurrent().set_atomic(True)
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        getcurrent().set_atomic(self._saved)
        return False


class _StacklessModule(_types.ModuleType):
    """The type of the stackless module: attributes computed per access,
    in the calling thread."""

    @property
    def current(self):
        return getcurrent()

    @property
    def main(self):
        return getmain()

    @property
    def runcount(self):
        return getruncount()

    @property
    def threads(self):
        return getthreads()

    @property
    def debug(self):
        return getdebug()

    @property
    def uncollectables(self):
        return getuncollectables()

    @property
    def pickle_with_tracing_state(self):
        return bool(pickle_flags() & PICKLEFLAGS_PRESERVE_TRACING_STATE)

    @pickle_with_tracing_state.setter
    def pickle_with_tracing_state(self, value):
        bit = PICKLEFLAGS_PRESERVE_TRACING_STATE
        flags = bit if value else 0
        pickle_flags(flags, bit)
        pickle_flags_default(flags, bit)

    def __reduce__(self):
        # Pickled by name: unpickling imports the module.
        return self.__name__


_sys.modules[__name__].__class__ = _StacklessModule


# --- pickling: what sits on frames and CPython cannot pickle (spec P) ---
#
# The reducers are registered with copyreg; what they reduce to is rebuilt
# by the helpers of stackless._wrap (P-1), which pickles refer to by name.
# A code object carries the bytecode magic number of the Python that
# pickled it: another Python's bytecode is refused, with both named.

import copyreg as _copyreg
import gc as _gc
import importlib as _importlib
import importlib.util as _importlib_util
import marshal as _marshal
import binascii as _binascii

_wrap = _types.ModuleType(
    __name__ + "._wrap",
    "Helpers that rebuild the objects stackless pickles.")
_sys.modules[_wrap.__name__] = _wrap
# Spec M-21.8: the same module is _stackless._wrap, under both names.
_stackless._wrap = _wrap
_sys.modules[_stackless.__name__ + "._wrap"] = _wrap
# M-21.8: _wrap.frame(code) and its __setstate__ make a frame object of
# 3.7's pickle layout (_wrap.frame.__reduce__(frame)); _wrap.generator() an
# exhausted generator.  Our own pickles of frames are frame states.
_wrap.frame = _stackless._wrap_frame
_wrap.frame_state = _stackless._wrap_frame_state
_wrap.generator = _stackless._wrap_generator
_wrap.restore_generator = _stackless._wrap_restore_generator
_wrap.frame_object = _stackless._wrap_frame_object
_wrap.frame_state_of = _stackless._wrap_frame_state_of


def _in_wrap(func):
    """Make func (named _wrap_<name>) stackless._wrap.<name>."""
    func.__module__ = _wrap.__name__
    func.__qualname__ = func.__name__ = func.__name__.removeprefix("_wrap_")
    setattr(_wrap, func.__name__, func)
    return func


@_in_wrap
def _wrap_set_reduce_frame(func):
    """Set the function that makes of each Python frame of a tasklet what
    is pickled in its place: func(frame) for the frame object;
    None for the frame's state.  _wrap.reduce_frame is the current one.
    Returns the previous one."""
    old = _stackless._wrap_set_reduce_frame(func)
    _wrap.reduce_frame = func
    return old


# The default: a frame pickles as its state (a _wrap.frame_state), which
# keeps what a frame of 3.13 resumes with (its function, where it returns
# to).  One state per frame: a tasklet's frames are its own.
_wrap.set_reduce_frame(_wrap.frame_state_of)


def _reduce_code(co):
    # P-6: the code as marshal writes it, with a checksum: bytecode that
    # was changed on its way (a corrupted pickle) is refused before it
    # can run.  Code that marshal cannot write (constants of other types)
    # goes by its constructor's fields, nested code objects reduced in
    # turn.
    try:
        data = _marshal.dumps(co)
    except ValueError:
        return (_wrap.code, (_importlib_util.MAGIC_NUMBER, co.co_argcount,
                             co.co_posonlyargcount, co.co_kwonlyargcount,
                             co.co_nlocals, co.co_stacksize, co.co_flags,
                             co.co_code, co.co_consts, co.co_names,
                             co.co_varnames, co.co_filename, co.co_name,
                             co.co_qualname, co.co_firstlineno,
                             co.co_linetable, co.co_exceptiontable,
                             co.co_freevars, co.co_cellvars))
    return (_wrap.code, (_importlib_util.MAGIC_NUMBER, data,
                         _binascii.crc32(data)))


@_in_wrap
def _wrap_code(magic, *fields):
    """Rebuild a code object pickled by stackless: from its
    marshal data and checksum, or from its constructor's fields."""
    if magic != _importlib_util.MAGIC_NUMBER:
        raise ValueError(
            "code object pickled by a Python with bytecode magic number "
            f"{magic!r}; this Python's is {_importlib_util.MAGIC_NUMBER!r}")
    if len(fields) == 2:
        data, crc = fields
        if not isinstance(data, bytes) or _binascii.crc32(data) != crc:
            raise ValueError("code object: its data does not match its "
                             "checksum")
        co = _marshal.loads(data)
        if not isinstance(co, _types.CodeType):
            raise TypeError("code object: its data is no code")
        return co
    return _types.CodeType(*fields)


def _reduce_cell(cell):
    # P-8: the contents come after the cell exists (the third part of the
    # reduce value), so that a cell in a cycle through its contents (a
    # recursive closure) pickles.
    try:
        contents = cell.cell_contents
    except ValueError:
        return (_wrap.cell, ())                 # empty
    return (_wrap.cell, (), (contents,), None, None, _wrap.cell_set)


@_in_wrap
def _wrap_cell():
    """An empty cell, for stackless's pickles: the type of
    cells has no name pickle could find."""
    return _types.CellType()


@_in_wrap
def _wrap_cell_set(cell, state):
    """Fill a cell pickled by stackless."""
    (cell.cell_contents,) = state


def _reduce_module(module):
    # P-9: a module of sys.modules by name; another one by name and dict.
    name = module.__name__
    if _sys.modules.get(name) is module:
        return (_importlib.import_module, (name,))
    return (_wrap.module, (name,), module.__dict__)


@_in_wrap
def _wrap_module(name):
    """A new module, for a module stackless pickled that was not in
    sys.modules; its dict follows."""
    return _types.ModuleType(name)


def _save_moduledict(pickler, obj):
    """Save a dict with pickle's Python pickler: the __dict__ of a module
    of sys.modules by reference, as getattr(module, '__dict__'), another
    dict as pickle does.  stackless makes it the pickler's way
    of saving dicts.  _pickle_moduledict() looks the modules' dicts up
    once per pickler; a module no longer in sys.modules goes as a dict.
    As with the C pickler, only where the pickler's dispatch table
    reduces modules (copyreg's does, since import stackless)."""
    table = getattr(pickler, "dispatch_table", _copyreg.dispatch_table)
    if _types.ModuleType not in table:
        return _save_dict(pickler, obj)
    try:
        reduced = _pickle_moduledict(pickler, obj)
    except (AttributeError, TypeError):
        # A pickler without room for the cache, or with an attribute
        # module_dict_ids of its own.
        reduced = None
    if reduced is not None:
        module = reduced[1][0]
        name = getattr(module, "__name__", None)
        if getattr(module, "__dict__", None) is obj \
                and isinstance(name, str) and _sys.modules.get(name) is module:
            return pickler.save_reduce(*reduced, obj=obj)
    return _save_dict(pickler, obj)


def _reduce_function(func):
    # P-7: pickle found no function of this name (a lambda, a nested
    # function, a closure): by value.  The globals of a module of
    # sys.modules go by the module's name; the rest of the function after
    # it exists.
    globals_ = func.__globals__
    name = globals_.get("__name__")
    module = _sys.modules.get(name) if isinstance(name, str) else None
    if module is not None and getattr(module, "__dict__", None) is globals_:
        globals_ = name
    state = {
        "__qualname__": func.__qualname__,
        "__module__": func.__module__,
        "__doc__": func.__doc__,
        "__kwdefaults__": func.__kwdefaults__,
        "__annotations__": func.__annotations__,
        "__dict__": func.__dict__,
    }
    if func.__type_params__:
        state["__type_params__"] = func.__type_params__
    return (_wrap.function, (func.__code__, globals_, func.__name__,
                             func.__defaults__, func.__closure__),
            state, None, None, _wrap.function_setstate)


@_in_wrap
def _wrap_function(code, globals_, name, defaults, closure):
    """Rebuild a function stackless pickled by value: its
    globals are the dict of the module so named, or a dict."""
    if isinstance(globals_, str):
        globals_ = _importlib.import_module(globals_).__dict__
    return _types.FunctionType(code, globals_, name, defaults, closure)


@_in_wrap
def _wrap_function_setstate(func, state):
    """Set the attributes of a function stackless pickled by value."""
    for key, value in state.items():
        setattr(func, key, value)


def _reduce_traceback(tb):
    # P-12: the chain from this traceback on, the outer frame first: the
    # states of the frames, their last instructions and lines.  The frames
    # come back as frame objects that own their frames, each the f_back of
    # the next.
    states, lastis, linenos = [], [], []
    while tb is not None:
        states.append(_wrap.frame_state_of(tb.tb_frame))
        lastis.append(tb.tb_lasti)
        linenos.append(tb.tb_lineno)
        tb = tb.tb_next
    return (_wrap.traceback, (states, lastis, linenos))


@_in_wrap
def _wrap_traceback(states, lastis, linenos):
    """Rebuild a chain of tracebacks stackless pickled."""
    if not (type(states) is type(lastis) is type(linenos) is list
            and 0 < len(states) == len(lastis) == len(linenos)):
        raise ValueError("a pickled traceback is three lists of one length")
    frames = []
    back = None
    for state in states:
        back = _wrap.frame_object(state, back)
        frames.append(back)
    tb = None
    for frame, lasti, lineno in reversed(list(zip(frames, lastis,
                                                  linenos))):
        tb = _types.TracebackType(tb, frame, lasti, lineno)
    return tb


async def _coroutine():
    pass


_c = _coroutine()
_CoroutineWrapperType = type(_c.__await__())
_c.close()
del _c, _coroutine


def _reduce_coroutine_wrapper(wrapper):
    # P-10: the iterator coro.__await__() returns, by its coroutine, which
    # it alone refers to.
    referents = _gc.get_referents(wrapper)
    if len(referents) != 1 or not isinstance(referents[0],
                                             _types.CoroutineType):
        raise TypeError("cannot pickle 'coroutine_wrapper' object")
    return (_wrap.coroutine_wrapper, (referents[0],))


@_in_wrap
def _wrap_coroutine_wrapper(coro):
    """Rebuild coro.__await__()."""
    if not isinstance(coro, _types.CoroutineType):
        raise TypeError("a coroutine wrapper wraps a coroutine, not "
                        f"{type(coro).__name__!r}")
    return coro.__await__()


async def _agen():
    yield


_ag = _agen()
_aw = _ag.asend(None)
_AsyncGenASendType = type(_aw)
_aw.close()                     # used: no warning that it was not awaited
_aw = _ag.aclose()
_AsyncGenAThrowType = type(_aw)
_aw.close()
del _ag, _aw, _agen


async def _closed_agen():
    yield


# A closed async generator, whose awaitables stand for new ones until
# their state comes: it takes none other.
_closed = _closed_agen()
try:
    _closed.aclose().send(None)
except StopIteration:
    pass
del _closed_agen


def _awaitable_state(aw, kind):
    state = _stackless._async_gen_awaitable_state(aw)
    if state[0] != kind:
        raise TypeError(f"not an {kind}() awaitable: {type(aw).__name__!r}")
    return state[1:]


class async_generator_asend:
    """The asend() awaitable of an async generator, as pickled:
    __reduce__(aw) gives (async_generator_asend, (), (gen, value, state,
    value_present)); async_generator_asend() makes a new awaitable that
    takes that state (its __setstate__)."""

    __slots__ = ()

    def __new__(cls):
        aw = _closed.asend(None)
        _stackless._async_gen_awaitable_set_state(aw, 2)
        return aw

    def __reduce__(aw):
        return (_wrap.async_generator_asend, (),
                _awaitable_state(aw, "asend"))


class async_generator_athrow:
    """The athrow() (or aclose()) awaitable of an async generator, as
    pickled: __reduce__(aw) gives
    (async_generator_athrow, (), (gen, args, state, args_present))."""

    __slots__ = ()

    def __new__(cls):
        aw = _closed.aclose()
        _stackless._async_gen_awaitable_set_state(aw, 2)
        return aw

    def __reduce__(aw):
        return (_wrap.async_generator_athrow, (),
                _awaitable_state(aw, "athrow"))


for _cls in (async_generator_asend, async_generator_athrow):
    _cls.__module__ = _wrap.__name__
    setattr(_wrap, _cls.__name__, _cls)
del _cls, async_generator_asend, async_generator_athrow


_VIEW_KINDS = {type({}.keys()): "keys", type({}.values()): "values",
               type({}.items()): "items"}


def _reduce_dict_view(view):
    # P-12: a view by its dict, which the view alone refers to.
    referents = _gc.get_referents(view)
    if len(referents) != 1 or not isinstance(referents[0], dict):
        raise TypeError(f"cannot pickle {type(view).__name__!r} object")
    return (_wrap.dict_view, (referents[0], _VIEW_KINDS[type(view)]))


@_in_wrap
def _wrap_dict_view(mapping, kind):
    """Rebuild a dict view stackless pickled: keys, values or
    items of `mapping`, a dict."""
    if kind not in ("keys", "values", "items"):
        raise ValueError(f"not a kind of dict view: {kind!r}")
    return getattr(dict, kind)(mapping)


for _view_type in _VIEW_KINDS:
    _copyreg.pickle(_view_type, _reduce_dict_view)
del _view_type
# P-10: generators, coroutines and async generators, suspended or
# running in a tasklet's chain.
for _gen_type in (_types.GeneratorType, _types.CoroutineType,
                  _types.AsyncGeneratorType):
    _copyreg.pickle(_gen_type, _stackless._wrap_reduce_generator)
del _gen_type
import pickle as _pickle
_save_dict = _pickle._Pickler.dispatch[dict]
_pickle._Pickler.dispatch[dict] = _save_moduledict
# Tasklets, channels, cframes and frame states reduce themselves
# (__reduce__); the dispatch table gets the pickler there at once.
for _type in (tasklet, channel, cframe, _wrap.frame_state):
    _copyreg.pickle(_type, _type.__reduce__)
del _type
_copyreg.pickle(_types.TracebackType, _reduce_traceback)
_copyreg.pickle(_CoroutineWrapperType, _reduce_coroutine_wrapper)
_copyreg.pickle(_AsyncGenASendType, _wrap.async_generator_asend.__reduce__)
_copyreg.pickle(_AsyncGenAThrowType, _wrap.async_generator_athrow.__reduce__)
_copyreg.pickle(_types.FunctionType, _reduce_function)
_copyreg.pickle(_types.CodeType, _reduce_code)
_copyreg.pickle(_types.CellType, _reduce_cell)
_copyreg.pickle(_types.ModuleType, _reduce_module)

#: The module itself, as in the original (``stackless.stackless``).
stackless = _sys.modules[__name__]
