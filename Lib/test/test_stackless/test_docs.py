"""What a user reads: docstrings, signatures, the manual, the version.

Every public callable of stackless and stacklesslib has a signature that
inspect can show; no docstring cites the ids of the specification, which
no user has; the manual (docs/manual) documents every public name of the
modules and of the C API; sys.version and stackless.__version__ name the
commit of this repository the interpreter was built from.
"""

import importlib
import inspect
import os
import pkgutil
import pydoc
import re
import shutil
import subprocess
import sys
import types
import unittest

import stackless
import stacklesslib

# The repository, when the tests run from a build of it (they are linked
# into the work tree's Lib/test): docs/manual and the C headers are there.
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__)))))
MANUAL = os.path.join(TOP, "docs", "manual")
API_HEADER = os.path.join(TOP, "Stackless", "Include", "stackless_api.h")

SPEC_ID = re.compile(r"\b[A-Z]{1,2}-\d+(?:\.\d+)?\b|\bspec\b")

# Special methods whose docstrings users see (help() of the classes).
SPECIAL = {"__init__", "__new__", "__call__", "__reduce__", "__reduce_ex__",
           "__setstate__", "__enter__", "__exit__", "__iter__", "__next__"}


def public_modules():
    mods = [stackless, stacklesslib]
    for info in pkgutil.iter_modules(stacklesslib.__path__,
                                     "stacklesslib."):
        if not info.name.rpartition(".")[2].startswith("_"):
            mods.append(importlib.import_module(info.name))
    return mods


def is_ours(obj):
    module = getattr(obj, "__module__", None) or ""
    return module.partition(".")[0] in ("stackless", "_stackless",
                                        "stacklesslib")


def public_objects():
    """(qualified name, object) of every public name of our modules that
    is ours (not a re-export of the standard library's), and of the
    public methods and attributes of their classes."""
    seen = set()
    for mod in public_modules():
        yield mod.__name__, mod
        names = getattr(mod, "__all__", None) or [
            n for n in dir(mod) if not n.startswith("_")]
        for name in names:
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType) or not is_ours(obj):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{mod.__name__}.{name}", obj
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if attr.startswith("_") and attr not in SPECIAL:
                        continue
                    yield f"{mod.__name__}.{name}.{attr}", value


def all_objects_with_docstrings():
    """Also the private helpers whose docstrings help() shows: what the
    modules hold, and what the classes hold."""
    mods = [stackless, importlib.import_module("_stackless"),
            importlib.import_module("stackless._wrap"), stacklesslib]
    for info in pkgutil.walk_packages(stacklesslib.__path__,
                                      "stacklesslib."):
        mods.append(importlib.import_module(info.name))
    for mod in mods:
        yield mod.__name__, mod
        for name, obj in vars(mod).items():
            if isinstance(obj, types.ModuleType):
                continue
            if not (is_ours(obj) or inspect.isbuiltin(obj)):
                continue
            yield f"{mod.__name__}.{name}", obj
            if inspect.isclass(obj) and is_ours(obj):
                for attr, value in vars(obj).items():
                    yield f"{mod.__name__}.{name}.{attr}", value


class DocstringTest(unittest.TestCase):

    def test_no_spec_ids(self):
        for name, obj in all_objects_with_docstrings():
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str):
                with self.subTest(name=name):
                    self.assertIsNone(SPEC_ID.search(doc), doc)

    def test_public_objects_have_docstrings(self):
        # (The protocol methods of context managers and iterators say what
        # their class says.)
        for name, obj in public_objects():
            if name.rpartition(".")[2] in ("__enter__", "__exit__",
                                           "__iter__", "__next__"):
                continue
            if not (callable(obj) or isinstance(obj, types.ModuleType)
                    or inspect.isdatadescriptor(obj)):
                continue
            with self.subTest(name=name):
                self.assertTrue(inspect.getdoc(obj), name)

    def test_signatures(self):
        # inspect.signature works for every public callable, and shows
        # no default it cannot represent.  schedule() and
        # schedule_remove() default to the current tasklet, which no
        # literal can say (as for the builtins getattr() and next()):
        # help() shows their text signature, retval=stackless.current.
        no_literal = {stackless.schedule, stackless.schedule_remove}
        for name, obj in public_objects():
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
            if not callable(obj) or isinstance(obj, type(stackless)):
                continue
            with self.subTest(name=name):
                if obj in no_literal:
                    self.assertEqual(obj.__text_signature__,
                                     "($module, /, retval=stackless.current)")
                    self.assertIn("retval=stackless.current",
                                  pydoc.render_doc(obj))
                    continue
                if (inspect.isclass(obj)
                        and issubclass(obj, BaseException)):
                    continue        # exceptions take *args, as builtins do
                sig = inspect.signature(obj)
                self.assertNotIn("<unrepresentable>", str(sig))


class VersionTest(unittest.TestCase):

    def test_version_names_commit(self):
        ident, rev = sys._git[1], sys._git[2]
        self.assertIn(ident, ("stackless", "stackless-dirty"))
        self.assertRegex(rev, r"^[0-9a-f]{7,40}$")
        self.assertIn(f"({ident}:{rev}, ", sys.version)
        self.assertIn(f"|Stackless {stackless.__version__.partition('+')[0]}|",
                      sys.version)
        local = "+g" + rev + (".dirty" if ident.endswith("-dirty") else "")
        self.assertTrue(stackless.__version__.endswith(local),
                        stackless.__version__)

    def test_commit_is_this_repositorys(self):
        git = shutil.which("git")
        if git is None or not os.path.isdir(os.path.join(TOP, ".git")):
            self.skipTest("not run from a git checkout of the repository")
        rev = sys._git[2]
        r = subprocess.run([git, "-C", TOP, "cat-file", "-e",
                            rev + "^{commit}"], capture_output=True)
        self.assertEqual(r.returncode, 0,
                         f"{rev} is no commit of {TOP}: {r.stderr!r}")

    def test_pydoc_points_to_installed_manual_or_nowhere(self):
        for mod in (stackless, stacklesslib):
            with self.subTest(mod=mod.__name__):
                loc = pydoc.TextDoc().getdocloc(mod)
                if loc is not None:
                    self.assertTrue(loc.startswith("file://"), loc)
                    self.assertTrue(os.path.exists(loc[len("file://"):]))
                    self.assertIn(sys.prefix, loc)


def manual_entries(path):
    """The names the page documents with a directive (function, class,
    method, attribute, data, exception; C: function, macro, type, var,
    struct, member), as written."""
    names = set()
    current_class = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*\.\. (?:py:)?(class|exception)::\s*([\w.]+)",
                         line)
            if m:
                current_class = m.group(2).rpartition(".")[2]
                names.add(m.group(2))
                continue
            m = re.match(r"\s*\.\. (?:py:)?(function|method|attribute|data|"
                         r"property|decorator|classmethod|staticmethod)::"
                         r"\s*([\w.]+)", line)
            if m:
                name = m.group(2)
                names.add(name)
                if line.startswith((" ", "\t")) and current_class:
                    names.add(f"{current_class}.{name}")
                continue
            m = re.match(r"\s*\.\. c:(function|macro|type|var|struct|member)"
                         r"::\s*(.*)", line)
            if m:
                found = re.findall(r"[A-Za-z_]\w*", m.group(2))
                if m.group(1) == "function":
                    # the name is the last identifier before "("
                    head = m.group(2).partition("(")[0]
                    found = re.findall(r"[A-Za-z_]\w*", head)[-1:]
                elif m.group(1) == "macro":
                    found = found[:1]
                else:
                    found = found[-1:]
                names.update(found)
    return names


@unittest.skipUnless(os.path.isdir(MANUAL), "the manual is not here")
class ManualTest(unittest.TestCase):

    def documented(self, page):
        return manual_entries(os.path.join(MANUAL, page))

    def check_module(self, mod, page):
        entries = self.documented(page)
        plain = {e.rpartition(".")[2] for e in entries}
        qualified = {e.partition(mod.__name__ + ".")[2] or e for e in entries}
        for name, obj in public_objects():
            if not name.startswith(mod.__name__ + "."):
                continue
            rest = name[len(mod.__name__) + 1:]
            if rest.count(".") > 1 or rest.split(".")[0] in (
                    m.__name__.rpartition(".")[2]
                    for m in public_modules()[2:]):
                continue
            if "." in rest and rest.rpartition(".")[2] in SPECIAL:
                continue
            with self.subTest(name=name):
                self.assertTrue(rest in qualified or rest in entries
                                or ("." not in rest and rest in plain),
                                f"{name} is not in docs/manual/{page}")

    def test_stackless_reference(self):
        self.check_module(stackless, "library/stackless.rst")

    def test_stacklesslib_reference(self):
        entries = self.documented("library/stacklesslib.rst")
        plain = {e.rpartition(".")[2] for e in entries}
        for name, obj in public_objects():
            if not name.startswith("stacklesslib"):
                continue
            with self.subTest(name=name):
                last = name.rpartition(".")[2]
                if last in SPECIAL or isinstance(obj, types.ModuleType):
                    continue
                self.assertIn(last, plain,
                              f"{name} is not in "
                              "docs/manual/library/stacklesslib.rst")

    def test_c_api_reference(self):
        with open(API_HEADER, encoding="utf-8") as f:
            header = f.read()
        header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
        declared = set(re.findall(r"PyAPI_FUNC\([^)]*\)\s*(\w+)\s*\(",
                                  header))
        declared |= set(re.findall(r"PyAPI_DATA\([^)]*\)\s*(\w+)", header))
        declared |= {m for m in re.findall(r"#\s*define\s+(\w+)", header)
                     if not m.startswith("_") and not m.endswith("_H")}
        declared |= set(re.findall(r"}\s*(Py\w+)\s*;", header))
        entries = self.documented("c-api.rst")
        missing = sorted(declared - entries)
        self.assertEqual(missing, [], "not in docs/manual/c-api.rst")


if __name__ == "__main__":
    unittest.main()
