#ifndef Py_INTERNAL_STACKLESS_H
#define Py_INTERNAL_STACKLESS_H

/* The hooks that upstream files call into Stackless (Py_BUILD_CORE only).
 * Each is one line at its call site in a patch; all the work is here, in
 * Stackless/core/.  Each does nothing for a thread or interpreter that
 * never used stackless. */

#ifndef Py_BUILD_CORE
#  error "this header requires Py_BUILD_CORE define"
#endif

/* Python/pystate.c, PyThreadState_Clear(): the thread's tasklets end
 * (spec X-5).  Runs the thread's code only if tstate is current. */
extern void _PyStackless_ThreadClear(PyThreadState *tstate);

/* Python/pystate.c, tstate_delete_common(): free the scheduler state. */
extern void _PyStackless_ThreadDelete(PyThreadState *tstate);

/* Python/pylifecycle.c, _Py_Finalize(), after atexit: the calling
 * thread's tasklets with C state end (spec X-6). */
extern void _PyStackless_Finalize(PyThreadState *tstate);

/* Python/pystate.c, interpreter_clear(): drop callbacks and handlers. */
extern void _PyStackless_InterpClear(PyInterpreterState *interp);

/* Python/ceval_gil.c, _Py_HandlePending(): a tick of the watchdog timer
 * (spec S-5) while _PY_STACKLESS_TICK_BIT is set in the eval breaker.
 * Returns -1 with an exception set, else 0. */
#define _PY_STACKLESS_TICK_BIT (1U << 7)
extern int _PyStackless_Tick(PyThreadState *tstate);

/* Python/ceval_gil.c, _Py_HandlePending(): while the current tasklet is
 * atomic, no eval-breaker work is done: no GIL hand-off, signals and
 * asynchronous exceptions wait (spec T-11).  Returns 1 then; a running
 * watchdog timer goes on counting, and a preemption that falls due waits
 * for atomic to end. */
extern int _PyStackless_IsAtomic(PyThreadState *tstate);

#endif /* !Py_INTERNAL_STACKLESS_H */
