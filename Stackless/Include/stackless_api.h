#ifndef Py_STACKLESS_API_H
#define Py_STACKLESS_API_H

/* The C API of Stackless Python for CPython 3.13.
 *
 *     #include <Python.h>
 *     #include <stackless_api.h>
 *
 * Tasklets, channels and the scheduler for extension modules and for
 * programs that embed the interpreter.  The header is installed with
 * Python's own (`make install`), so that the flags of `python3-config
 * --cflags` or `pkg-config python3-embed` find it.
 *
 * Every function needs the GIL, except PyStackless_GetCurrentId() and the
 * two functions of "Waking the scheduler from other threads" below.  Each
 * works as its Python counterpart does (the methods of tasklet and
 * channel, the functions of the stackless module): the same checks, the
 * same exceptions, called on the type's own implementation even for
 * instances of subclasses that override it.
 *
 * Inside and outside.  A thread that runs Python code runs it in its main
 * tasklet, made the first time the thread uses Stackless.  A host may
 * call these functions from its own C code, with no Python frame running
 * ("outside"): the caller is then the thread's main tasklet, which may
 * block and switch like any other.  A tasklet switched to from there runs
 * until it blocks or ends, and the call returns when main runs again.
 *
 * Results.  Functions returning int return 0 on success and -1 with an
 * exception set, unless said otherwise; functions returning an object
 * return a new reference, or NULL with an exception set.
 *
 * Switching.  Functions called from C switch tasklets "hard": the caller's
 * C stack is kept until it resumes.  The _nr ("no recursion") variants
 * may switch softly when called under the stackless protocol (see
 * "Soft-switchable C functions"); they then return 1 (int results) or
 * Py_UnwindToken (object results), and the caller must return it at once.
 */

#include "stackless_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defined for code that wants to know it is built for Stackless. */
#ifndef STACKLESS
#  define STACKLESS
#endif

/* --- types -------------------------------------------------------------- */

/* Opaque outside the core. */
typedef struct _tasklet PyTaskletObject;
typedef struct _channel PyChannelObject;
typedef struct _bomb PyBombObject;
typedef struct _unwind PyUnwindObject;
typedef struct _cframe PyCFrameObject;

PyAPI_DATA(PyTypeObject) PyTasklet_Type;
PyAPI_DATA(PyTypeObject) PyChannel_Type;
PyAPI_DATA(PyTypeObject) PyBomb_Type;
PyAPI_DATA(PyTypeObject) PyCStack_Type;
PyAPI_DATA(PyTypeObject) PyCFrame_Type;

#define PyTasklet_Check(op) PyObject_TypeCheck((op), &PyTasklet_Type)
#define PyTasklet_CheckExact(op) Py_IS_TYPE((op), &PyTasklet_Type)
#define PyChannel_Check(op) PyObject_TypeCheck((op), &PyChannel_Type)
#define PyChannel_CheckExact(op) Py_IS_TYPE((op), &PyChannel_Type)
#define PyBomb_Check(op) Py_IS_TYPE((op), &PyBomb_Type)
#define PyCStack_Check(op) Py_IS_TYPE((op), &PyCStack_Type)
#define PyCFrame_Check(op) Py_IS_TYPE((op), &PyCFrame_Type)

/* PyExc_TaskletExit (a subclass of SystemExit) is declared in pyerrors.h. */

/* --- tasklets (spec A-1 .. A-19) ------------------------------------------ */

/* type(func): `type` NULL for PyTasklet_Type, else a subtype of it
 * (TypeError otherwise); func NULL or None for a tasklet with no
 * function. */
PyAPI_FUNC(PyTaskletObject *) PyTasklet_New(PyTypeObject *type,
                                            PyObject *func);
/* t(*args, **kwds): bind the arguments and schedule (t.setup()). */
PyAPI_FUNC(int) PyTasklet_Setup(PyTaskletObject *t, PyObject *args,
                                PyObject *kwds);
/* t.bind(func, args, kwargs); each may be NULL for None. */
PyAPI_FUNC(int) PyTasklet_BindEx(PyTaskletObject *t, PyObject *func,
                                 PyObject *args, PyObject *kwargs);
/* t.bind_thread(thread_id); (unsigned long)-1: the current thread. */
PyAPI_FUNC(int) PyTasklet_BindThread(PyTaskletObject *t,
                                     unsigned long thread_id);
PyAPI_FUNC(int) PyTasklet_Run(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Run_nr(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Switch(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Switch_nr(PyTaskletObject *t);
/* t.remove(): a removed tasklet with C state must be resumed or killed
 * later. */
PyAPI_FUNC(int) PyTasklet_Remove(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Insert(PyTaskletObject *t);
/* t.raise_exception(klass, *args); args a tuple or NULL. */
PyAPI_FUNC(int) PyTasklet_RaiseException(PyTaskletObject *t,
                                         PyObject *klass, PyObject *args);
/* t.throw(exc, val, tb, pending); val and tb may be NULL. */
PyAPI_FUNC(int) PyTasklet_Throw(PyTaskletObject *t, int pending,
                                PyObject *exc, PyObject *val, PyObject *tb);
PyAPI_FUNC(int) PyTasklet_Kill(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_KillEx(PyTaskletObject *t, int pending);
/* Set returns the old value, or -1 with an exception. */
PyAPI_FUNC(int) PyTasklet_SetAtomic(PyTaskletObject *t, int flag);
PyAPI_FUNC(int) PyTasklet_GetAtomic(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_SetIgnoreNesting(PyTaskletObject *t, int flag);
PyAPI_FUNC(int) PyTasklet_GetIgnoreNesting(PyTaskletObject *t);
/* An interrupt is deferred until the tasklet stops being atomic. */
PyAPI_FUNC(int) PyTasklet_GetPendingIrq(PyTaskletObject *t);
/* The innermost Python frame, or NULL (no exception set). */
PyAPI_FUNC(PyObject *) PyTasklet_GetFrame(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_GetBlockTrap(PyTaskletObject *t);
PyAPI_FUNC(void) PyTasklet_SetBlockTrap(PyTaskletObject *t, int value);
/* Relative to the thread that owns the tasklet. */
PyAPI_FUNC(int) PyTasklet_IsMain(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_IsCurrent(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_GetRecursionDepth(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_GetNestingLevel(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Alive(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Paused(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Scheduled(PyTaskletObject *t);
PyAPI_FUNC(int) PyTasklet_Restorable(PyTaskletObject *t);

/* --- channels (A-20 .. A-25) ---------------------------------------------- */

/* A new channel of `type` (NULL for PyChannel_Type, else a subtype; its
 * __init__ is not called). */
PyAPI_FUNC(PyChannelObject *) PyChannel_New(PyTypeObject *type);
PyAPI_FUNC(int) PyChannel_Send(PyChannelObject *ch, PyObject *value);
PyAPI_FUNC(int) PyChannel_Send_nr(PyChannelObject *ch, PyObject *value);
PyAPI_FUNC(PyObject *) PyChannel_Receive(PyChannelObject *ch);
PyAPI_FUNC(PyObject *) PyChannel_Receive_nr(PyChannelObject *ch);
/* ch.send_exception(klass, *args); args a tuple or NULL. */
PyAPI_FUNC(int) PyChannel_SendException(PyChannelObject *ch,
                                        PyObject *klass, PyObject *args);
/* ch.send_throw(exc, val, tb); val and tb may be NULL. */
PyAPI_FUNC(int) PyChannel_SendThrow(PyChannelObject *ch, PyObject *exc,
                                    PyObject *val, PyObject *tb);
/* The first tasklet waiting, or None (a new reference either way). */
PyAPI_FUNC(PyObject *) PyChannel_GetQueue(PyChannelObject *ch);
PyAPI_FUNC(void) PyChannel_Close(PyChannelObject *ch);
PyAPI_FUNC(void) PyChannel_Open(PyChannelObject *ch);
PyAPI_FUNC(int) PyChannel_GetClosing(PyChannelObject *ch);
PyAPI_FUNC(int) PyChannel_GetClosed(PyChannelObject *ch);
/* -1 prefer the receiver, 1 the sender, 0 neither; values are clamped. */
PyAPI_FUNC(int) PyChannel_GetPreference(PyChannelObject *ch);
PyAPI_FUNC(void) PyChannel_SetPreference(PyChannelObject *ch, int val);
PyAPI_FUNC(int) PyChannel_GetScheduleAll(PyChannelObject *ch);
PyAPI_FUNC(void) PyChannel_SetScheduleAll(PyChannelObject *ch, int val);
/* > 0: senders waiting, < 0: receivers waiting. */
PyAPI_FUNC(int) PyChannel_GetBalance(PyChannelObject *ch);

/* --- the scheduler (A-26, A-28 .. ..) --------- */

/* schedule(retval) or, with `remove`, schedule_remove(retval); retval
 * NULL for the current tasklet. */
PyAPI_FUNC(PyObject *) PyStackless_Schedule(PyObject *retval, int remove);
PyAPI_FUNC(PyObject *) PyStackless_Schedule_nr(PyObject *retval, int remove);
/* The number of runnable tasklets, -1 with an exception. */
PyAPI_FUNC(int) PyStackless_GetRunCount(void);
/* The current tasklet, or NULL (no exception set) in a thread that never
 * used Stackless. */
PyAPI_FUNC(PyObject *) PyStackless_GetCurrent(void);
/* The id of the current tasklet (spec M-6); needs no GIL. */
PyAPI_FUNC(unsigned long) PyStackless_GetCurrentId(void);

/* run(timeout, ...): None, the interrupted tasklet, or NULL. */
#define Py_WATCHDOG_THREADBLOCK     1
#define PY_WATCHDOG_SOFT            2
#define PY_WATCHDOG_IGNORE_NESTING  4
#define PY_WATCHDOG_TOTALTIMEOUT    8
PyAPI_FUNC(PyObject *) PyStackless_RunWatchdog(long timeout);
PyAPI_FUNC(PyObject *) PyStackless_RunWatchdogEx(long timeout, int flags);

/* Callbacks: NULL (or None) removes; a non-callable raises TypeError. */
PyAPI_FUNC(int) PyStackless_SetChannelCallback(PyObject *callable);
PyAPI_FUNC(int) PyStackless_SetScheduleCallback(PyObject *callable);
/* A C schedule hook, called as the Python one is, (from, to), either
 * NULL where there is no tasklet; it replaces the Python callback (and
 * is replaced by the next one set).  A non-zero result is reported as
 * unraisable.  NULL removes it. */
typedef int (slp_schedule_hook_func)(PyTaskletObject *from,
                                     PyTaskletObject *to);
PyAPI_FUNC(void) PyStackless_SetScheduleFastcallback(
    slp_schedule_hook_func *func);

/* func(*args, **kwds) as the body of the thread's main tasklet: for C
 * code outside any Python code of the thread.  RuntimeError("Call_Main
 * cannot run within a main tasklet") when Python code of the thread is
 * running (the caller is inside).  Tasklets left blocked or runnable stay
 * so. */
PyAPI_FUNC(PyObject *) PyStackless_Call_Main(PyObject *func, PyObject *args,
                                            PyObject *kwds);
/* The same for o.name(*Py_BuildValue(format, ...)) and for the C method
 * m bound to self. */
PyAPI_FUNC(PyObject *) PyStackless_CallMethod_Main(PyObject *o,
                                                  const char *name,
                                                  const char *format, ...);
PyAPI_FUNC(PyObject *) PyStackless_CallCMethod_Main(PyMethodDef *m,
                                                   PyObject *self,
                                                   const char *format, ...);

/* --- posting to a channel from other threads ---------------------------
 *
 * Beyond the original: a host thread that does not hold the GIL (a
 * network or render thread) hands work to tasklets.  The function may be
 * called from any thread, with or without the GIL, and does not wait for
 * it.  It takes over the caller's references to `ch` and `value` (taken
 * while the caller held the GIL); the value is queued, and the
 * interpreter's main thread, the next time it runs Python code (or within
 * 50 ms while it waits in the scheduler for other threads), starts a
 * tasklet that sends it: ch.send(value), with the channel's rules, so
 * that the value reaches receivers in the order of the posts (the tasklet
 * blocks until one takes it).  Returns 0, or -1 if out of memory (no
 * exception is set: the caller may not hold the GIL; the references are
 * then the caller's again).
 *
 * The deadlock rule (a main tasklet that blocks with nothing runnable
 * raises RuntimeError unless another thread can still make progress)
 * counts the threads that have a Python thread state: a posting thread
 * that should keep the main thread waiting needs one (made once with
 * PyGILState_Ensure() and kept). */
PyAPI_FUNC(int) PyStackless_PostToChannel(PyChannelObject *ch,
                                         PyObject *value);

/* --- soft-switchable C functions (A-27, A-32 ..) --------------
 *
 * The stackless protocol.  The eval loop of a tasklet that can switch
 * softly gives a builtin whose PyMethodDef has METH_STACKLESS the
 * permission to switch softly; the builtin takes it with
 * STACKLESS_GETARG() (its first statement) and may pass it on, with
 * STACKLESS_PROMOTE_ALL() (or _FLAG, _METHOD, _PROMOTE) just before the
 * call, to one call of:
 *   - PyStackless_CallFunction(), PyStackless_Schedule(), the _nr
 *     functions (which need no permission to try) and the functions they
 *     name (PyTasklet_Run, PyTasklet_Switch, PyChannel_Send,
 *     PyChannel_Receive);
 *   - a Python function, called with PyObject_Call*() (directly, or as a
 *     bound method): its frame runs in the eval loop.
 * That call then either does its work as usual, or switches softly (or
 * pushes the frame) and returns Py_UnwindToken (int results: 1): the
 * builtin must return Py_UnwindToken at once, unchanged, without
 * touching Python objects that may run code; the eval loop makes the
 * switch.  STACKLESS_ASSERT() after the call withdraws a permission that
 * nobody took.  Called any other way (from C, without permission) all
 * of them switch hard and never unwind.
 *
 * A soft-switchable C function (slp_softswitchablefunc) is a state
 * machine: PyStackless_CallFunction() calls it with *step 0, `retval`
 * (borrowed) the argument, and the slots; called under the protocol, it
 * is run by a frame of the eval loop, and each time it unwinds (it
 * switched softly, or called a Python function softly) it is called again
 * with the same slots and `retval` the value the tasklet resumed with (or
 * the function's result), where *step says; or with retval NULL and an
 * exception set if one came in (a kill): it cleans up and returns NULL
 * (or a value, to catch it).  Its result is the call's.  Called without
 * the protocol, it runs once, and its switches are hard.  Such a call
 * pickles with its tasklet, by the declaration's module and name (the
 * module registers it with PyStackless_InitFunctionDeclaration()), with
 * *step, *n and the slots; if `*any` (private state) is not NULL then,
 * the unpickled call raises RuntimeError when the tasklet resumes. */

PyAPI_DATA(PyUnwindObject *) Py_UnwindToken;
#define STACKLESS_UNWINDING(obj) \
    ((PyObject *)(obj) == (PyObject *)Py_UnwindToken)

/* The stackless protocol: the caller of a function lets it switch
 * softly (and return Py_UnwindToken) by setting the flag before the
 * call. */
PyAPI_FUNC(int *) _PyStackless__TryStacklessPtr(void);
#define _PyStackless_TRY_STACKLESS (*_PyStackless__TryStacklessPtr())
#define STACKLESS_GETARG() \
    int stackless = (_PyStackless_TRY_STACKLESS ? \
                     (_PyStackless_TRY_STACKLESS = 0, 1) : 0)
#define STACKLESS_PROMOTE_ALL() ((void)(_PyStackless_TRY_STACKLESS = stackless, NULL))
#define STACKLESS_PROMOTE_FLAG(flag) \
    ((void)(_PyStackless_TRY_STACKLESS = (stackless && (flag)), NULL))
#define STACKLESS_PROMOTE_METHOD(obj, slot_name) \
    STACKLESS_PROMOTE_FLAG(PyType_HasFeature(Py_TYPE(obj), \
                                             Py_TPFLAGS_HAVE_STACKLESS_CALL))
#define STACKLESS_PROMOTE(obj) \
    STACKLESS_PROMOTE_FLAG(PyType_HasFeature(Py_TYPE(obj), \
                                             Py_TPFLAGS_HAVE_STACKLESS_CALL))
#define STACKLESS_RETRACT() ((void)(_PyStackless_TRY_STACKLESS = 0))
#define STACKLESS_ASSERT() ((void)(_PyStackless_TRY_STACKLESS = 0))

/* The bits CPython reserves for Stackless (methodobject.h, object.h,
 * which give them only if STACKLESS is defined before Python.h).
 * Py_TPFLAGS_HAVE_STACKLESS_EXTENSION is left as object.h has it: it is
 * part of Py_TPFLAGS_DEFAULT, and types keep stock CPython's flags. */
#undef METH_STACKLESS
#define METH_STACKLESS 0x0100
#ifndef Py_TPFLAGS_HAVE_STACKLESS_CALL
#  define Py_TPFLAGS_HAVE_STACKLESS_CALL (1UL << 15)
#endif

typedef PyObject *(slp_softswitchablefunc)(PyObject *retval, long *step,
                                           PyObject **ob1, PyObject **ob2,
                                           PyObject **ob3, long *n,
                                           void **any);
typedef struct {
    PyObject_HEAD
    slp_softswitchablefunc *sfunc;
    const char *name;
    const char *module_name;
} PyStacklessFunctionDeclarationObject;

PyAPI_DATA(PyTypeObject) PyStacklessFunctionDeclaration_Type;
#define PyStacklessFunctionDeclarationType_CheckExact(op) \
    Py_IS_TYPE((op), &PyStacklessFunctionDeclaration_Type)

/* Run decl's function with the initial retval `arg` and slots: its
 * result, or Py_UnwindToken (called under the stackless protocol), or
 * NULL with an exception. */
PyAPI_FUNC(PyObject *) PyStackless_CallFunction(
    PyStacklessFunctionDeclarationObject *decl, PyObject *arg,
    PyObject *ob1, PyObject *ob2, PyObject *ob3, long n, void *any);
/* Fill in the declaration's name and module (at module init), so that a
 * pending call can be pickled by name. */
PyAPI_FUNC(int) PyStackless_InitFunctionDeclaration(
    PyStacklessFunctionDeclarationObject *decl, PyObject *module,
    PyModuleDef *def);

#ifdef __cplusplus
}
#endif

#endif /* !Py_STACKLESS_API_H */
