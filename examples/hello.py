"""Show which interpreter this is: Python's version and Stackless's."""

import sys

import stackless

print("Python    ", sys.version)
print("Stackless ", stackless.__version__)
print("executable", sys.executable)
