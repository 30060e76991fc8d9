"""Stackless Python: tasklets, channels and a scheduler per thread.

The names come from the builtin module _stackless; this module adds what is
easier to say in Python.  The module object is an instance of a ModuleType
subclass, so that it can have computed attributes (spec M-1, M-2).
"""

import sys as _sys
import types as _types

import _stackless
from _stackless import *  # noqa: F401,F403

__version__ = _stackless.__version__


class _StacklessModule(_types.ModuleType):
    """The type of the stackless module."""

    def __reduce__(self):
        # Pickled by name: unpickling imports the module.
        return self.__name__


_sys.modules[__name__].__class__ = _StacklessModule

#: The module itself, as in the original (``stackless.stackless``).
stackless = _sys.modules[__name__]
