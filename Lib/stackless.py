"""Stackless Python: tasklets, channels and a scheduler per thread.

The names come from the builtin module _stackless; this module adds what is
easier to say in Python.  The module object is an instance of a ModuleType
subclass, so that it can have computed attributes (spec M-1, M-2).
"""

import sys as _sys
import types as _types

import _stackless
from _stackless import *  # noqa: F401,F403
from _stackless import (bomb, channel, getcurrent, getmain, getruncount,
                        getthreads, getdebug, getuncollectables,
                        pickle_flags, pickle_flags_default, tasklet)

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
    """Context manager: the current tasklet is atomic inside (spec M-9).

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
    in the calling thread (spec M-2)."""

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

#: The module itself, as in the original (``stackless.stackless``).
stackless = _sys.modules[__name__]
