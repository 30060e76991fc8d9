"""The stackless module itself: layout, version (spec M-1)."""

import copy
import pickle
import platform
import re
import subprocess
import sys
import types
import unittest

import stackless
import _stackless
from test.test_stackless.helpers import load_tests  # noqa: F401  (both modes)


class ModuleLayoutTest(unittest.TestCase):
    # M-1: builtin C module + Python module that star-imports it.

    def test_builtin_module(self):
        self.assertIn("_stackless", sys.builtin_module_names)
        self.assertIsNone(getattr(_stackless, "__file__", None))

    def test_module_is_moduletype_subclass_instance(self):
        self.assertIs(sys.modules["stackless"], stackless)
        self.assertIsInstance(stackless, types.ModuleType)
        self.assertIsNot(type(stackless), types.ModuleType)
        self.assertTrue(issubclass(type(stackless), types.ModuleType))

    def test_self_reference(self):
        self.assertIs(stackless.stackless, stackless)

    def test_wrap_under_both_names(self):
        # M-21.8: _stackless._wrap is stackless._wrap, in sys.modules
        # under both names.
        self.assertIs(_stackless._wrap, stackless._wrap)
        self.assertIs(sys.modules["_stackless._wrap"], stackless._wrap)
        self.assertIs(sys.modules["stackless._wrap"], stackless._wrap)

    def test_star_import(self):
        # M-1: at least these names, and the original __all__.
        ns = {}
        exec("from stackless import *", ns)
        required = {"atomic", "channel", "tasklet", "run", "schedule",
                    "schedule_remove", "getcurrent", "getmain",
                    "getruncount", "get_thread_info", "stackless"}
        original = {"enable_softswitch", "get_channel_callback",
                    "set_channel_callback", "get_schedule_callback",
                    "set_schedule_callback", "getcurrentid", "getdebug",
                    "getthreads", "getuncollectables",
                    "pickle_with_tracing_state", "set_error_handler",
                    "switch_trap"}
        self.assertLessEqual(required | original, set(ns))

    def test_other_attributes(self):
        # M-1: attributes outside __all__.
        for name in ("bomb", "pickle_flags", "pickle_flags_default",
                     "PICKLEFLAGS_PRESERVE_TRACING_STATE",
                     "PICKLEFLAGS_PRESERVE_AG_FINALIZER",
                     "PICKLEFLAGS_RESET_AG_FINALIZER"):
            self.assertTrue(hasattr(stackless, name), name)

    def test_pickles_by_name(self):
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            with self.subTest(proto=proto):
                data = pickle.dumps(stackless, proto)
                self.assertIn(b"stackless", data)
                self.assertIs(pickle.loads(data), stackless)

    def test_copy_keeps_identity(self):
        self.assertIs(copy.copy(stackless), stackless)
        self.assertIs(copy.deepcopy(stackless), stackless)


class VersionTest(unittest.TestCase):

    def test_version_string(self):
        self.assertIsInstance(stackless.__version__, str)
        self.assertEqual(stackless.__version__, _stackless.__version__)
        # The upstream version, our serial, PEP 440 suffixes, and the
        # commit it was built from as a local version label (test_docs).
        upstream = "%d.%d.%d" % sys.version_info[:3]
        self.assertRegex(stackless.__version__,
                         r"^" + re.escape(upstream) + r"\.\d+"
                         r"((a|b|rc)\d+)?(\.dev\d+)?"
                         r"(\+g[0-9a-f]{7,40}(\.dirty)?)?$")

    def test_sys_version_names_stackless(self):
        tag = "|Stackless %s|" % stackless.__version__.partition("+")[0]
        self.assertIn(tag, sys.version)
        self.assertTrue(sys.version.startswith(
            "%d.%d.%d %s (" % (*sys.version_info[:3], tag)))

    def test_platform_still_parses_sys_version(self):
        self.assertEqual(platform.python_implementation(), "CPython")
        self.assertEqual(platform.python_version(),
                         "%d.%d.%d" % sys.version_info[:3])
        self.assertTrue(platform.python_compiler())
        self.assertEqual(platform.python_build(),
                         platform._sys_version()[4:6])

    def test_platform_parses_tagged_version_strings(self):
        parsed = platform._sys_version(
            "3.13.5 |Stackless 3.13.5.0| (main, Jun 11 2025, 00:00:00) "
            "[GCC 12.2.0]")
        # (name, version, branch, revision, buildno, builddate, compiler);
        # branch and revision come from sys._git, not from the string.
        self.assertEqual(parsed[:2], ("CPython", "3.13.5"))
        self.assertEqual(parsed[4:], ("main", "Jun 11 2025 00:00:00",
                                      "GCC 12.2.0"))

    def test_version_command_line(self):
        # -V stays "Python X.Y.Z", as tools expect; -VV shows sys.version.
        out = subprocess.run([sys.executable, "-V"], capture_output=True,
                             text=True, check=True).stdout
        self.assertEqual(out.strip(), "Python %d.%d.%d" % sys.version_info[:3])
        out = subprocess.run([sys.executable, "-VV"], capture_output=True,
                             text=True, check=True).stdout
        base = stackless.__version__.partition("+")[0]
        self.assertIn("|Stackless %s|" % base, out)


if __name__ == "__main__":
    unittest.main()
