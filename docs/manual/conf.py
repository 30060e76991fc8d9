# Sphinx configuration of the Stackless Python manual.
#
# Built by `make docs` (tools/docs) with Debian's python3-sphinx, warnings
# as errors; the doctest blocks of every page are run by our interpreter
# (python -m doctest), not by Sphinx's Python.

import os
import re

project = "Stackless Python"
author = "the Stackless Python developers"
copyright = "2026, " + author

# The version, read from the headers the interpreter is built with.
_here = os.path.dirname(os.path.abspath(__file__))
_top = os.path.dirname(os.path.dirname(_here))


def _read_version():
    path = os.path.join(_top, "cpython", "Include", "patchlevel.h")
    serial_h = os.path.join(_top, "Stackless", "Include",
                            "stackless_version.h")
    try:
        with open(path) as f:
            py = re.search(r'#define PY_VERSION\s+"([^"]+)"', f.read()).group(1)
        with open(serial_h) as f:
            serial = re.search(r'#define STACKLESS_SERIAL\s+"([^"]+)"',
                               f.read()).group(1)
    except (OSError, AttributeError):
        return "3.13", "3.13"
    return ".".join(py.split(".")[:2]), py + "." + serial


version, release = _read_version()

extensions = []
root_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "python3"
default_role = "obj"
primary_domain = "py"

html_theme = "classic"
html_title = f"Stackless Python {release} manual"
html_short_title = "Stackless Python"
html_show_sourcelink = False
html_last_updated_fmt = None
html_copy_source = False
