#ifndef Py_STACKLESS_VERSION_H
#define Py_STACKLESS_VERSION_H

/* The version of Stackless: the version of the CPython it is built on
 * followed by our own serial.  "3.13.15.N" is the N-th release of
 * Stackless for CPython 3.13.15, with PEP 440 pre-release suffixes while
 * in development.  The upstream part comes from patchlevel.h, so that
 * moving to a new upstream release (make rebase-upstream) changes it.
 *
 * sys.version carries it between bars, "3.13.15 |Stackless 3.13.15.0|
 * (...)", the form platform._sys_version() already parses for other
 * distributors. */

#include "patchlevel.h"             // PY_VERSION

#define STACKLESS_SERIAL "0.dev0"
#define STACKLESS_VERSION PY_VERSION "." STACKLESS_SERIAL

#define STACKLESS_SYS_VERSION_TAG " |Stackless " STACKLESS_VERSION "|"

#endif /* !Py_STACKLESS_VERSION_H */
