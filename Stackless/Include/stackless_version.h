#ifndef Py_STACKLESS_VERSION_H
#define Py_STACKLESS_VERSION_H

/* The version of Stackless, independent of the Python version it is built
 * on.  It is the upstream version followed by our own serial:
 * "3.13.5.N" is the N-th release of Stackless for CPython 3.13.5, with
 * PEP 440 pre-release suffixes while in development.
 *
 * sys.version carries it between bars, "3.13.5 |Stackless 3.13.5.0| (...)",
 * the form platform._sys_version() already parses for other distributors. */

#define STACKLESS_VERSION "3.13.5.0.dev0"

#define STACKLESS_SYS_VERSION_TAG " |Stackless " STACKLESS_VERSION "|"

#endif /* !Py_STACKLESS_VERSION_H */
