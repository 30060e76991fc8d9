/* _stackless: the builtin half of the stackless module.
 *
 * Lib/stackless.py star-imports this module and adds what is easier to say
 * in Python (spec M-1).  This file is a thin veneer over the core in
 * Stackless/core/: argument parsing (Argument Clinic, or
 * slp_first_argument() for a required first parameter) and the module's
 * attributes, no scheduling policy.  Every parameter is taken by
 * position or by keyword, under the original's name (spec M).
 *
 * The module is registered in the interpreter's table of builtin modules
 * (Modules/config.c.in, patch build-stackless-core.patch), like _imp and
 * marshal: it is part of the interpreter core, not an extension.
 */

#include "Python.h"
#include "stackless_version.h"
#include "../core/stackless_impl.h"
#include "pycore_interp.h"
#include "pycore_pystate.h"
#include "pycore_runtime.h"
#include "pycore_fileutils.h"       // _Py_fstat_noraise()
#include "pycore_pylifecycle.h"     // _Py_gitversion()

/*[clinic input]
module _stackless
[clinic start generated code]*/
/*[clinic end generated code: output=da39a3ee5e6b4b0d input=9edda6c2b9dbd340]*/

#include "clinic/_stacklessmodule.c.h"

/*[clinic input]
_stackless.getcurrent

Return the running tasklet of the calling thread.
[clinic start generated code]*/

static PyObject *
_stackless_getcurrent_impl(PyObject *module)
/*[clinic end generated code: output=3d84a42402f64ac4 input=5215ef8346ffb514]*/
{
    return slp_get_current();
}

/*[clinic input]
_stackless.getmain

Return the main tasklet of the calling thread.
[clinic start generated code]*/

static PyObject *
_stackless_getmain_impl(PyObject *module)
/*[clinic end generated code: output=fe7a5f55def24434 input=77ce556ee9c7ff48]*/
{
    return slp_get_main();
}

/*[clinic input]
_stackless.getruncount

Return the number of tasklets in the calling thread's runqueue.

The running tasklet counts; paused and blocked ones do not.
[clinic start generated code]*/

static PyObject *
_stackless_getruncount_impl(PyObject *module)
/*[clinic end generated code: output=b5ff8241c5526c18 input=cdbe17c75f1e7df6]*/
{
    Py_ssize_t n = slp_get_runcount();
    if (n < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

/*[clinic input]
_stackless.getcurrentid

Return the id of the running tasklet.

A main tasklet has the id of its thread; the others an id derived from
their address, which may be reused.
[clinic start generated code]*/

static PyObject *
_stackless_getcurrentid_impl(PyObject *module)
/*[clinic end generated code: output=becb72c2fdd3a578 input=3caf16bcceb97782]*/
{
    slp_thread *th = slp_thread_of(_PyThreadState_GET());
    if (th == NULL || th->current == th->main) {
        return PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    }
    return PyLong_FromVoidPtr(th->current);
}

/*[clinic input]
_stackless.schedule

    retval: object(c_default="NULL") = stackless.current

Let the next runnable tasklet run; the caller stays in the runqueue.

The current tasklet goes to the end of the runqueue, and the tasklets
before it run until one of them switches back to it (in a round robin,
when they block, end or schedule in turn).  Returns retval (by
default the current tasklet), or, if another tasklet set the caller's
tempval meanwhile, that value.  Alone in the runqueue, the caller goes
on at once.

Raises RuntimeError where a switch is not allowed: inside a schedule or
channel callback, or while this thread runs a garbage collection.
[clinic start generated code]*/

static PyObject *
_stackless_schedule_impl(PyObject *module, PyObject *retval)
/*[clinic end generated code: output=98eb8f0c7dadd984 input=9d627e6710611925]*/
{
    return slp_schedule(retval, 0);
}

/*[clinic input]
_stackless.schedule_remove

    retval: object(c_default="NULL") = stackless.current

Let the next runnable tasklet run; the caller leaves the runqueue.

As schedule(), except that the current tasklet is taken out of the
runqueue: it is paused, and runs again only when another tasklet
inserts it (tasklet.insert()) or runs it.  The main tasklet of a thread
comes back by itself when no other tasklet of the thread is runnable.
[clinic start generated code]*/

static PyObject *
_stackless_schedule_remove_impl(PyObject *module, PyObject *retval)
/*[clinic end generated code: output=c03d539a935c110a input=2ad1ee5ac8458b13]*/
{
    return slp_schedule(retval, 1);
}

/*[clinic input]
_stackless.run

    timeout: long = 0
    threadblock: bool = False
    soft: bool = False
    ignore_nesting: bool = False
    totaltimeout: bool = False

Run the other tasklets of this thread; return when none is runnable.

The caller (the main tasklet, usually) becomes a watchdog: it leaves
the runqueue, and the other tasklets run in turn.  run() returns None
when no tasklet is left in the runqueue (they ended, blocked on
channels or were removed), and raises the uncaught exception of a
tasklet.

timeout
  If greater than 0, preempt: a tasklet that runs for timeout ticks
  without switching is interrupted, taken out of the runqueue, and
  returned by run().  A tick is a check of the eval loop for pending
  work (about one call, one loop iteration).  The count starts again
  at every switch, so tasklets that keep calling schedule() are never
  interrupted, and run() returns only when they end (see totaltimeout).
threadblock
  When the runqueue is empty but a tasklet of this thread waits for a
  channel that another thread may use, wait for that thread instead of
  returning.
soft
  With timeout: interrupt no tasklet; when the ticks run out, return
  None at the next switch.
ignore_nesting
  With timeout: interrupt also a tasklet that runs inside C code (a
  callback of a builtin); by default it runs on until it returns there.
totaltimeout
  With timeout: count the ticks from the start of run(), over all
  switches; the tasklet running when they run out is interrupted.

Atomic tasklets (stackless.atomic(), tasklet.set_atomic()) are not
interrupted until they leave atomic.  Raises RuntimeError where a switch
is not allowed (in a schedule or channel callback, or while this thread
runs a garbage collection).
[clinic start generated code]*/

static PyObject *
_stackless_run_impl(PyObject *module, long timeout, int threadblock,
                    int soft, int ignore_nesting, int totaltimeout)
/*[clinic end generated code: output=647a1c38e30519f7 input=87b3c57d566a561a]*/
{
    int flags = (threadblock ? PY_WATCHDOG_THREADBLOCK : 0)
                | (soft ? PY_WATCHDOG_SOFT : 0)
                | (ignore_nesting ? PY_WATCHDOG_IGNORE_NESTING : 0)
                | (totaltimeout ? PY_WATCHDOG_TOTALTIMEOUT : 0);
    return slp_run_watchdog(timeout, flags);
}

/*[clinic input]
_stackless.switch_trap

    change: int = 0

Add change to the thread's switch trap level; returns the old level.

While the level is positive, every switch raises RuntimeError.
[clinic start generated code]*/

static PyObject *
_stackless_switch_trap_impl(PyObject *module, int change)
/*[clinic end generated code: output=3676ee84561828e6 input=dc6e1c5776d9e289]*/
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    int old = th->switch_trap;
    th->switch_trap += change;
    return PyLong_FromLong(old);
}

/* Not Argument Clinic: see slp_first_argument(). */
PyDoc_STRVAR(enable_softswitch__doc__,
"enable_softswitch($module, /, flag)\n"
"--\n"
"\n"
"Query, or set, whether switches may be soft; returns the old setting.\n"
"\n"
"None only queries.  False makes every switch hard.");

static PyObject *
enable_softswitch(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "enable_softswitch", "flag");
    PyObject *flag = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (flag == NULL) {
        return NULL;
    }
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    if (si == NULL) {
        return NULL;
    }
    int old = si->soft_switch;
    if (flag != Py_None) {
        int v = PyObject_IsTrue(flag);
        if (v < 0) {
            return NULL;
        }
        si->soft_switch = v;
        slp_interp_changed(si);
    }
    return PyBool_FromLong(old);
}

/* testhooks.c: _test_nostacklesscall and its type (spec M-21.4), and the
 * helpers of spec M-21.11. */
extern PyTypeObject slp_TestNoStacklessCall_Type;
extern PyTypeObject slp_GCUntrackedHolder_Type;
extern int slp_add_test_hooks(PyObject *module);

/* The static types of Stackless.  Made ready by the first import of
 * _stackless (or the C API), they outlive the interpreter; at the end of
 * the main interpreter they are made as they were before, so that a new
 * runtime in the same process (an embedding program that initializes
 * Python again) gets them fresh, not with dicts whose keys are gone. */
static PyTypeObject *const static_types[] = {
    &PyTasklet_Type, &PyChannel_Type, &PyLatch_Type, &PyBomb_Type,
    &PyCStack_Type,
    &slp_FrameState_Type,
    &PyStacklessFunctionDeclaration_Type,
    &slp_TestNoStacklessCall_Type, &slp_GCUntrackedHolder_Type,
};

void
slp_type_unready(PyTypeObject *type)
{
    if (!(type->tp_flags & Py_TPFLAGS_READY)) {
        return;
    }
    PyType_Modified(type);
    Py_CLEAR(type->tp_dict);
    Py_CLEAR(type->tp_bases);
    Py_CLEAR(type->tp_mro);
    Py_CLEAR(type->tp_cache);
    Py_CLEAR(type->tp_subclasses);
    type->tp_flags &= ~Py_TPFLAGS_READY;
    type->tp_version_tag = 0;
}

void
slp_fini_types(void)
{
    for (size_t i = 0; i < Py_ARRAY_LENGTH(static_types); i++) {
        slp_type_unready(static_types[i]);
    }
    slp_capi_fini();
}

static PyObject *
swap_callable(slp_interp *si, PyObject **slot, PyObject *callable)
{
    if (callable == Py_None) {
        callable = NULL;
    }
    if (callable != NULL && !PyCallable_Check(callable)) {
        PyErr_SetString(PyExc_TypeError, "callable or None expected");
        return NULL;
    }
    PyObject *old = *slot;
    *slot = Py_XNewRef(callable);
    slp_interp_changed(si);
    if (old != NULL && slp_schedule_hook_of(old) != NULL) {
        /* A C hook (PyStackless_SetScheduleFastcallback()). */
        Py_SETREF(old, NULL);
    }
    return old != NULL ? old : Py_NewRef(Py_None);
}

PyDoc_STRVAR(set_schedule_callback__doc__,
"set_schedule_callback($module, /, cb)\n"
"--\n"
"\n"
"Install cb(prev, next), called at every switch; None removes it.\n"
"\n"
"Returns the previous callback, or None.");

static PyObject *
set_schedule_callback(PyObject *module, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "set_schedule_callback", "cb");
    PyObject *cb = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (cb == NULL) {
        return NULL;
    }
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    return si != NULL ? swap_callable(si, &si->schedule_callback, cb)
                      : NULL;
}

/*[clinic input]
_stackless.get_schedule_callback

Return the schedule callback, or None.
[clinic start generated code]*/

static PyObject *
_stackless_get_schedule_callback_impl(PyObject *module)
/*[clinic end generated code: output=516afa970c5ab071 input=c3d84a062c39d5bd]*/
{
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    if (si == NULL) {
        return NULL;
    }
    PyObject *cb = si->schedule_callback;
    /* A C hook set by PyStackless_SetScheduleFastcallback() is no
     * Python callback. */
    if (cb == NULL || slp_schedule_hook_of(cb) != NULL) {
        cb = Py_None;
    }
    return Py_NewRef(cb);
}

PyDoc_STRVAR(set_channel_callback__doc__,
"set_channel_callback($module, /, cb)\n"
"--\n"
"\n"
"Install cb(channel, tasklet, sending, willblock); None removes it.\n"
"\n"
"It is called before every channel operation.  Returns the previous\n"
"callback, or None.");

static PyObject *
set_channel_callback(PyObject *module, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "set_channel_callback", "cb");
    PyObject *cb = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (cb == NULL) {
        return NULL;
    }
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    return si != NULL ? swap_callable(si, &si->channel_callback, cb)
                      : NULL;
}

/*[clinic input]
_stackless.get_channel_callback

Return the channel callback, or None.
[clinic start generated code]*/

static PyObject *
_stackless_get_channel_callback_impl(PyObject *module)
/*[clinic end generated code: output=81e804164405ad63 input=c016201faa4e425b]*/
{
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    if (si == NULL) {
        return NULL;
    }
    return Py_NewRef(si->channel_callback ? si->channel_callback : Py_None);
}

/*[clinic input]
_stackless.set_error_handler

    handler: object = None

Install handler(type, value, traceback) for exceptions that end tasklets.

None restores the default: the exception is raised in the main tasklet
or the innermost run().  Returns the previous handler, or None.
[clinic start generated code]*/

static PyObject *
_stackless_set_error_handler_impl(PyObject *module, PyObject *handler)
/*[clinic end generated code: output=9bbc70434c72d8d0 input=6cabdcb8464fe08a]*/
{
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    return si != NULL ? swap_callable(si, &si->error_handler, handler)
                      : NULL;
}

/*[clinic input]
_stackless.set_thread_wakeup_fd

    fd: int
    thread_id: object(c_default="NULL") = -1

Set the wakeup file descriptor of a thread; return the previous one.

Whenever another thread makes a tasklet of that thread runnable, one
byte is written to fd (errors are ignored, so make it non-blocking).
A scheduler that waits in select() or epoll on fd, such as
stacklesslib's hub, wakes up at once; it must read the bytes.  -1
unsets it.  thread_id -1 means the calling thread; another thread must
have used stackless.  The initial thread's fd also gets a byte when a
thread without the GIL posts a value (PyStackless_PostToChannel()).
[clinic start generated code]*/

static PyObject *
_stackless_set_thread_wakeup_fd_impl(PyObject *module, int fd,
                                     PyObject *thread_id)
/*[clinic end generated code: output=8fbc3f2d3c594ddd input=c4313f44df031926]*/
{
    if (fd < -1) {
        PyErr_Format(PyExc_ValueError,
                     "fd must be -1 or a file descriptor, not %d", fd);
        return NULL;
    }
    if (fd >= 0) {
        struct _Py_stat_struct st;
        if (_Py_fstat_noraise(fd, &st) != 0) {
            PyErr_Format(PyExc_ValueError, "the fd %d is invalid", fd);
            return NULL;
        }
    }
    PyThreadState *target;
    if (slp_thread_state_by_id(thread_id, &target) < 0) {
        return NULL;
    }
    if (target == NULL) {
        PyErr_SetString(PyExc_ValueError, "bad thread");
        return NULL;
    }
    slp_thread *th;
    if (target == _PyThreadState_GET()) {
        th = slp_get_thread_of(target);
        if (th == NULL) {
            return NULL;
        }
    }
    else {
        th = slp_thread_of(target);
        if (th == NULL) {
            PyErr_SetString(PyExc_ValueError, "bad thread");
            return NULL;
        }
    }
    int old = th->wakeup_fd;
    th->wakeup_fd = fd;
    if (_Py_IsMainInterpreter(th->tstate->interp)
        && slp_is_initial_thread(th))
    {
        /* Values posted by threads without the GIL go to this thread
         * (PyStackless_PostToChannel()): they wake it too. */
        slp_set_posts_wakeup_fd(fd);
    }
    return PyLong_FromLong(old);
}

/*[clinic input]
_stackless.get_thread_info

    thread_id: object(c_default="NULL") = -1
    flags: object(c_default="NULL") = 0

Return (main, current, runcount) of a thread of this interpreter.

-1 means the calling thread.  main and current are None for a thread
that has not used stackless.  flags is a bit mask (other bits are
ignored): bit 30 adds the thread's serial, serial_last_jump and initial
stub (a cstack), bit 31 its watchdog list (None before its first run()).
[clinic start generated code]*/

static PyObject *
_stackless_get_thread_info_impl(PyObject *module, PyObject *thread_id,
                                PyObject *flags)
/*[clinic end generated code: output=db1f720c2636395a input=87930925470de6b9]*/
{
    int want_serials = 0, want_watchdogs = 0;
    if (flags != NULL) {
        if (!PyLong_Check(flags)) {
            PyErr_SetString(PyExc_TypeError, "flags must be an integer");
            return NULL;
        }
        if (_PyLong_Sign(flags) < 0) {
            PyErr_SetString(PyExc_ValueError, "flags must not be negative");
            return NULL;
        }
        /* Only the low bits mean something (spec M-21.1). */
        unsigned long bits = PyLong_AsUnsignedLongMask(flags);
        if (bits == (unsigned long)-1 && PyErr_Occurred()) {
            return NULL;
        }
        want_serials = (bits >> 30) & 1;
        want_watchdogs = (bits >> 31) & 1;
    }
    PyThreadState *tstate = _PyThreadState_GET();
    PyThreadState *target;
    if (slp_thread_state_by_id(thread_id, &target) < 0) {
        return NULL;
    }
    if (target == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Thread id not found");
        return NULL;
    }
    slp_thread *th = target == tstate ? slp_get_thread() : slp_thread_of(target);
    if (th == NULL && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *main = Py_None, *current = Py_None, *stub = Py_None;
    PyObject *watchdogs = Py_None;
    Py_ssize_t runcount = 0;
    unsigned long long serial = 0, serial_last_jump = 0;
    if (th != NULL) {
        /* A thread that waits for others (S-12) runs no tasklet, even
         * once given one, until it has the GIL again. */
        main = th->main != NULL ? (PyObject *)th->main : Py_None;
        current = th->runcount > 0 && !th->waiting && th->current != NULL
                  ? (PyObject *)th->current : Py_None;
        runcount = th->runcount;
        serial = th->serial;
        serial_last_jump = th->serial_last_jump;
        stub = th->stub != NULL ? (PyObject *)th->stub : Py_None;
        watchdogs = th->watchdogs != NULL ? th->watchdogs : Py_None;
    }
    PyObject *res = PyTuple_New(3 + 3 * want_serials + want_watchdogs);
    if (res == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(res, 0, Py_NewRef(main));
    PyTuple_SET_ITEM(res, 1, Py_NewRef(current));
    PyObject *item = PyLong_FromSsize_t(runcount);
    if (item == NULL) {
        goto error;
    }
    PyTuple_SET_ITEM(res, 2, item);
    Py_ssize_t i = 3;
    if (want_serials) {
        item = PyLong_FromUnsignedLongLong(serial);
        if (item == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(res, i++, item);
        item = PyLong_FromUnsignedLongLong(serial_last_jump);
        if (item == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(res, i++, item);
        PyTuple_SET_ITEM(res, i++, Py_NewRef(stub));
    }
    if (want_watchdogs) {
        PyTuple_SET_ITEM(res, i++, Py_NewRef(watchdogs));
    }
    return res;

error:
    Py_DECREF(res);
    return NULL;
}

/*[clinic input]
_stackless.getthreads

Return the ids of the interpreter's threads, the main thread first.
[clinic start generated code]*/

static PyObject *
_stackless_getthreads_impl(PyObject *module)
/*[clinic end generated code: output=9989cfc171458475 input=6633f30fc7f4fdde]*/
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    unsigned long main_id = interp->threads.main != NULL
                            ? interp->threads.main->thread_id
                            : _PyRuntime.main_thread;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        PyObject *id = PyLong_FromUnsignedLong(ts->thread_id);
        if (id == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        int r = ts->thread_id == main_id ? PyList_Insert(list, 0, id)
                                         : PyList_Append(list, id);
        Py_DECREF(id);
        if (r < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

/*[clinic input]
_stackless.getdebug

Return True in a debug build of the interpreter.
[clinic start generated code]*/

static PyObject *
_stackless_getdebug_impl(PyObject *module)
/*[clinic end generated code: output=a62671d06fe06b64 input=1738f07f3934b480]*/
{
#ifdef Py_DEBUG
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

/*[clinic input]
_stackless.getuncollectables

Return the suspended tasklets that own a C stack.

The collector cannot look into a C stack: cycles through these tasklets
are not collected, and the tasklets end only when killed (their thread's
end kills them).
[clinic start generated code]*/

static PyObject *
_stackless_getuncollectables_impl(PyObject *module)
/*[clinic end generated code: output=570a9670d22a622b input=7ae8f057711ea25c]*/
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        slp_thread *th = slp_thread_of(ts);
        if (th == NULL) {
            continue;
        }
        /* Every suspended tasklet of a thread but its main one is in its
         * list; main owns a C stack slice while another one runs. */
        if (th->main != NULL && th->current != th->main
            && PyList_Append(list, (PyObject *)th->main) < 0)
        {
            goto error;
        }
        for (PyTaskletObject *t = th->owned; t != NULL; t = t->owned_next) {
            if (t->state == SLP_STARTED && t != th->current
                && PyList_Append(list, (PyObject *)t) < 0)
            {
                goto error;
            }
        }
    }
    return list;

error:
    Py_DECREF(list);
    return NULL;
}

static PyObject *
pickle_flags_update(long *flags, long new_flags, long mask)
{
    long old = *flags;
    if (new_flags != -1) {
        if (new_flags < -1 || (new_flags & mask) > 7) {
            PyErr_SetString(PyExc_ValueError,
                            "you must not set an undefined pickle-flag");
            return NULL;
        }
        *flags = (*flags & ~mask) | (new_flags & mask);
    }
    return PyLong_FromLong(old);
}

/*[clinic input]
_stackless.pickle_flags

    new_flags: long = -1
    mask: long = -1

Return, and change, the pickle flags of the calling thread.

flags = (flags & ~mask) | (new_flags & mask), unless new_flags is -1.
[clinic start generated code]*/

static PyObject *
_stackless_pickle_flags_impl(PyObject *module, long new_flags, long mask)
/*[clinic end generated code: output=fd773a5b06ab0c48 input=e536de509e2d3c81]*/
{
    slp_thread *th = slp_get_thread();
    return th != NULL ? pickle_flags_update(&th->pickle_flags, new_flags, mask)
                      : NULL;
}

/*[clinic input]
_stackless.pickle_flags_default

    new_default: long = -1
    mask: long = -1

Return, and change, the pickle flags new threads start with.
[clinic start generated code]*/

static PyObject *
_stackless_pickle_flags_default_impl(PyObject *module, long new_default,
                                     long mask)
/*[clinic end generated code: output=60e5303388b2dee1 input=c64c3c348c490690]*/
{
    slp_interp *si = slp_get_interp(PyInterpreterState_Get());
    return si != NULL
           ? pickle_flags_update(&si->pickle_flags_default, new_default, mask)
           : NULL;
}

/* --- test hooks (spec M-21.5, M-21.6) ---------------------------------- */

/* test_cframe_nr(): a soft-switchable C function (spec A-32), run by
 * PyStackless_CallFunction(): it schedules *n times, each time with
 * PyStackless_Schedule_nr(), and returns None.  After an unwind it is
 * called again, at step 1, with the result of the switch. */
static PyObject *
cframe_nr_loop(PyObject *retval, long *step, PyObject **ob1, PyObject **ob2,
               PyObject **ob3, long *n, void **any)
{
    if (retval == NULL) {
        return NULL;            /* the switch failed, or a bomb came */
    }
    *step = 1;
    while (*n > 0) {
        (*n)--;
        PyObject *r = PyStackless_Schedule_nr(Py_None, 0);
        if (r == NULL || STACKLESS_UNWINDING(r)) {
            return r;
        }
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

static PyStacklessFunctionDeclarationObject cframe_nr_decl = {
    PyObject_HEAD_INIT(&PyStacklessFunctionDeclaration_Type)
    cframe_nr_loop,
    "test_cframe_nr_loop",
    NULL,
};

/* Not Argument Clinic, as 3.7's: a builtin of the stackless protocol, as
 * an extension's (METH_STACKLESS without the core's bit), it passes the
 * eval loop's permission to switch softly on to
 * PyStackless_CallFunction(), which runs the loop in a frame of the eval
 * loop, softly, when it can.  It is not one of the switching builtins of
 * softcall.c: their soft switch leaves the builtin, which could not go on
 * with its loop. */
PyDoc_STRVAR(test_cframe_nr__doc__,
"test_cframe_nr($module, /, switches, cstate_add_addr=None)\n"
"--\n"
"\n"
"Test hook: schedule `switches` times from a soft-switchable C function.\n"
"\n"
"With cstate_add_addr, a cstack, add `switches` words to its startaddr\n"
"instead (a hard switch into a tasklet so changed fails with\n"
"SystemError); no switch then.");

static PyObject *
test_cframe_nr(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"switches", "cstate_add_addr", NULL};
    long switches;
    PyObject *cs = Py_None;
    STACKLESS_GETARG();
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "l|O:test_cframe_nr",
                                     kwlist, &switches, &cs))
    {
        return NULL;
    }
    if (cs != Py_None) {
        if (!PyCStack_Check(cs)) {
            PyErr_Format(PyExc_TypeError,
                         "cstate_add_addr must be a cstack, not %.200s",
                         Py_TYPE(cs)->tp_name);
            return NULL;
        }
        PyCStackObject *c = (PyCStackObject *)cs;
        c->startaddr += (uintptr_t)switches * sizeof(void *);
        Py_RETURN_NONE;
    }
    STACKLESS_PROMOTE_ALL();
    PyObject *r = PyStackless_CallFunction(&cframe_nr_decl, Py_None, NULL,
                                           NULL, NULL, switches, NULL);
    STACKLESS_ASSERT();
    return r;
}

/*[clinic input]
_stackless.test_outside

Test hook: run the runqueue as C code outside Stackless would.

The caller leaves its thread (main tasklet, frames, serial_last_jump)
while each round of PyStackless_Schedule(None, 0) runs in a temporary
main tasklet; then it comes back.  Blocked tasklets stay blocked.
[clinic start generated code]*/

static PyObject *
_stackless_test_outside_impl(PyObject *module)
/*[clinic end generated code: output=bf28e117d5e1521b input=241baed0465ab8e9]*/
{
    return slp_test_outside();
}

/* The functions that switch (softcall.c). */
static slp_methoddef switching_functions[] = {
    SLP_METHODDEF(_STACKLESS_SCHEDULE_METHODDEF),
    SLP_METHODDEF(_STACKLESS_SCHEDULE_REMOVE_METHODDEF),
    SLP_METHODDEF_END
};

extern slp_methoddef slp_tasklet_switching[];
extern slp_methoddef slp_channel_switching[];

static PyMethodDef _stackless_methods[] = {
    _STACKLESS_GETCURRENT_METHODDEF
    _STACKLESS_GETMAIN_METHODDEF
    _STACKLESS_GETRUNCOUNT_METHODDEF
    _STACKLESS_GETCURRENTID_METHODDEF
    _STACKLESS_RUN_METHODDEF
    _STACKLESS_SWITCH_TRAP_METHODDEF
    {"enable_softswitch", _PyCFunction_CAST(enable_softswitch),
     METH_FASTCALL | METH_KEYWORDS, enable_softswitch__doc__},
    {"set_schedule_callback", _PyCFunction_CAST(set_schedule_callback),
     METH_FASTCALL | METH_KEYWORDS, set_schedule_callback__doc__},
    _STACKLESS_GET_SCHEDULE_CALLBACK_METHODDEF
    {"set_channel_callback", _PyCFunction_CAST(set_channel_callback),
     METH_FASTCALL | METH_KEYWORDS, set_channel_callback__doc__},
    _STACKLESS_GET_CHANNEL_CALLBACK_METHODDEF
    _STACKLESS_SET_ERROR_HANDLER_METHODDEF
    _STACKLESS_SET_THREAD_WAKEUP_FD_METHODDEF
    _STACKLESS_GET_THREAD_INFO_METHODDEF
    _STACKLESS_GETTHREADS_METHODDEF
    _STACKLESS_GETDEBUG_METHODDEF
    _STACKLESS_GETUNCOLLECTABLES_METHODDEF
    _STACKLESS_PICKLE_FLAGS_METHODDEF
    _STACKLESS_PICKLE_FLAGS_DEFAULT_METHODDEF
    {"test_cframe_nr", _PyCFunction_CAST(test_cframe_nr),
     METH_VARARGS | METH_KEYWORDS | METH_STACKLESS, test_cframe_nr__doc__},
    _STACKLESS_TEST_OUTSIDE_METHODDEF
    {NULL, NULL}
};

/* The helpers of stackless._wrap written in C: named as stackless's
 * pickles refer to them. */
static PyMethodDef wrap_functions[] = {
    {"restore_generator", (PyCFunction)(void (*)(void))slp_new_generator,
     METH_FASTCALL,
     PyDoc_STR("restore_generator(code, state, /)\n--\n\nA generator, "
               "coroutine or async generator of code, as pickled.")},
    {"frame_object", (PyCFunction)(void (*)(void))slp_frame_object_of_state,
     METH_FASTCALL,
     PyDoc_STR("frame_object(state, back, /)\n--\n\nA frame object owning a "
               "frame of the state, for a traceback.")},
    {"frame_state_of", (PyCFunction)slp_frame_state_of_object, METH_O,
     PyDoc_STR("frame_state_of(frame, /)\n--\n\nThe state of a frame "
               "object's frame, as pickled.")},
    {"set_reduce_frame", (PyCFunction)slp_set_reduce_frame, METH_O,
     PyDoc_STR("set_reduce_frame(func, /)\n--\n\nPickle func(frame) in "
               "place of each Python frame of a tasklet; None: "
               "the frame's state.  Returns the previous func.")},
    {"reduce_generator", (PyCFunction)slp_reduce_generator, METH_O,
     PyDoc_STR("reduce_generator(gen, /)\n--\n\nThe reduce value of a "
               "generator, coroutine or async generator.")},
    {NULL}
};

/* The state of an async generator's awaitable, and setting it. */
static PyObject *
async_gen_awaitable_state(PyObject *module, PyObject *o)
{
    return _PyStackless_AsyncGenAwaitableState(o);
}

static PyObject *
async_gen_awaitable_set_state(PyObject *module, PyObject *const *args,
                              Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "_async_gen_awaitable_set_state(aw, state: int)");
        return NULL;
    }
    int state = PyLong_AsInt(args[1]);
    if ((state == -1 && PyErr_Occurred())
        || _PyStackless_AsyncGenAwaitableSetState(args[0], state) < 0)
    {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef awaitable_functions[] = {
    {"_async_gen_awaitable_state", async_gen_awaitable_state, METH_O,
     PyDoc_STR("_async_gen_awaitable_state($module, aw, /)\n--\n\n"
               "The state of an awaitable of an async generator, as "
               "pickled.")},
    {"_async_gen_awaitable_set_state",
     (PyCFunction)(void (*)(void))async_gen_awaitable_set_state,
     METH_FASTCALL,
     PyDoc_STR("_async_gen_awaitable_set_state($module, aw, state, /)\n"
               "--\n\nSet the state of a new awaitable of an async "
               "generator, as unpickled.")},
    {NULL}
};

static int
add_wrap_functions(PyObject *module)
{
    PyObject *modname = PyUnicode_FromString("stackless._wrap");
    if (modname == NULL) {
        return -1;
    }
    for (PyMethodDef *ml = wrap_functions; ml->ml_name != NULL; ml++) {
        PyObject *f = PyCFunction_NewEx(ml, NULL, modname);
        if (f == NULL) {
            Py_DECREF(modname);
            return -1;
        }
        PyObject *name = PyUnicode_FromFormat("_wrap_%s", ml->ml_name);
        int r = name != NULL ? PyModule_Add(module, PyUnicode_AsUTF8(name), f)
                             : (Py_DECREF(f), -1);
        Py_XDECREF(name);
        if (r < 0) {
            Py_DECREF(modname);
            return -1;
        }
    }
    Py_DECREF(modname);
    return 0;
}

PyDoc_STRVAR(module_doc,
"Builtin support for the stackless module; import stackless instead.");

/* __version__: our version, with the commit of the repository it was
 * built from as a local version label (PEP 440), as sys.version names
 * it: "3.13.15.0.dev0+g0123456789ab", ".dirty" added when the build held
 * changes that were not committed (tools/build). */
static int
add_version(PyObject *module)
{
    const char *rev = _Py_gitversion();
    const char *ident = _Py_gitidentifier();
    PyObject *version;
    if (rev[0] == '\0' || strcmp(rev, "unknown") == 0
        || strncmp(ident, "stackless", 9) != 0)
    {
        version = PyUnicode_FromString(STACKLESS_VERSION);
    }
    else {
        size_t n = strlen(ident);
        int dirty = n >= 6 && strcmp(ident + n - 6, "-dirty") == 0;
        version = PyUnicode_FromFormat("%s+g%s%s", STACKLESS_VERSION, rev,
                                       dirty ? ".dirty" : "");
    }
    if (version == NULL) {
        return -1;
    }
    int res = PyModule_AddObjectRef(module, "__version__", version);
    Py_DECREF(version);
    return res;
}

static int
_stackless_exec(PyObject *module)
{
    if (add_version(module) < 0) {
        return -1;
    }
    /* The C pickler may meet the reducer of modules from now on. */
    _PyStackless_PickleModuleDicts = 1;
    if (slp_softcall_init() < 0
        || slp_pycall_init() < 0
        || slp_capi_init() < 0
        || PyStackless_InitFunctionDeclaration(&cframe_nr_decl, module,
                                               NULL) < 0
        || PyModule_AddType(module, &PyTasklet_Type) < 0
        || PyModule_AddType(module, &PyChannel_Type) < 0
        || PyModule_AddType(module, &PyLatch_Type) < 0
        || PyModule_AddType(module, &PyBomb_Type) < 0
        || PyModule_AddType(module, &PyCStack_Type) < 0
        || PyModule_AddType(module, &slp_softcall_type) < 0
        || slp_cframe_init() < 0
        || PyModule_AddType(module, &PyCFrame_Type) < 0
        || PyType_Ready(&slp_FrameState_Type) < 0
        || PyModule_AddObjectRef(module, "_wrap_frame_state",
                                 (PyObject *)&slp_FrameState_Type) < 0
        || PyType_Ready(&slp_WrapFrame_Type) < 0
        || PyModule_AddObjectRef(module, "_wrap_frame",
                                 (PyObject *)&slp_WrapFrame_Type) < 0
        || slp_exhausted_generator_init() < 0
        || PyModule_AddObjectRef(module, "_wrap_generator",
                                 (PyObject *)&slp_ExhaustedGenerator_Type) < 0
        || add_wrap_functions(module) < 0
        || PyModule_AddFunctions(module, awaitable_functions) < 0
        || slp_add_switching_methods(&PyTasklet_Type,
                                     slp_tasklet_switching) < 0
        || slp_add_switching_methods(&PyChannel_Type,
                                     slp_channel_switching) < 0
        || slp_add_switching_functions(module, switching_functions) < 0
        || slp_add_test_hooks(module) < 0)
    {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "TaskletExit", PyExc_TaskletExit) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "PICKLEFLAGS_PRESERVE_TRACING_STATE", 1) < 0
        || PyModule_AddIntConstant(module, "PICKLEFLAGS_PRESERVE_AG_FINALIZER", 2) < 0
        || PyModule_AddIntConstant(module, "PICKLEFLAGS_RESET_AG_FINALIZER", 4) < 0)
    {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot _stackless_slots[] = {
    {Py_mod_exec, _stackless_exec},
    /* The types are static: interpreters must share the GIL. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL}
};

static struct PyModuleDef _stacklessmodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_stackless",
    .m_doc = module_doc,
    .m_size = 0,
    .m_methods = _stackless_methods,
    .m_slots = _stackless_slots,
};

PyMODINIT_FUNC
PyInit__stackless(void)
{
    return PyModuleDef_Init(&_stacklessmodule);
}
