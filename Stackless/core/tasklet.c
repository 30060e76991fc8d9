/* The tasklet type (spec T).
 *
 * A tasklet is in one of three states (enum slp_tasklet_state):
 *   SLP_NEW      no frames: never bound, bound to a callable only, or dead;
 *                tempval holds the callable (None: unbound)
 *   SLP_BOUND    bound with arguments: func(*args, **kwargs) is its
 *                initial call, made when it first runs
 *   SLP_STARTED  running, or suspended with its frames and C stack
 * and, independently, in at most one chain: the runqueue of its thread
 * (in_runqueue), or the queue of the channel it is blocked on (blocked).
 * alive = has frames (BOUND or STARTED) and an owner thread.
 *
 * Operations on a tasklet of another thread act on that thread's runqueue
 * and never switch here (spec X-3).
 */

#include "stackless_impl.h"
#include "pycore_context.h"        // PyContext
#include "pycore_hamt.h"           // PyHamtObject
#include "pycore_pyerrors.h"
#include "pycore_frame.h"
#include "pycore_code.h"           // _Py_GetBaseOpcode()
#include "pycore_opcode_metadata.h" // _PyOpcode_OpName

/*[clinic input]
module _stackless
class _stackless.tasklet "PyTaskletObject *" "&PyTasklet_Type"
[clinic start generated code]*/
/*[clinic end generated code: output=da39a3ee5e6b4b0d input=81570dcf604e6e6d]*/

#include "clinic/tasklet.c.h"

static int
is_alive(PyTaskletObject *t)
{
    return t->state != SLP_NEW && t->thread != NULL;
}

/* The running tasklet of its thread; none runs while the thread waits
 * for other threads to give it work (S-12). */
static int
is_current(PyTaskletObject *t)
{
    return t->thread != NULL && t->thread->current == t
           && !t->thread->waiting;
}

static int
is_scheduled(PyTaskletObject *t)
{
    return t->in_runqueue || t->blocked != 0;
}

/* --- creation and binding ---------------------------------------------- */

static PyObject *
tasklet_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyTaskletObject *t = (PyTaskletObject *)type->tp_alloc(type, 0);
    if (t == NULL) {
        return NULL;
    }
    t->tempval = Py_NewRef(Py_None);
    t->thread = th;
    t->thread_id = th->thread_id;
    t->state = SLP_NEW;
    slp_owned_link(th, t);
    return (PyObject *)t;
}

slp_tasklet_extra *
slp_tasklet_extra_get(PyTaskletObject *t)
{
    if (t->extra == NULL) {
        t->extra = PyMem_RawCalloc(1, sizeof(slp_tasklet_extra));
        if (t->extra == NULL) {
            PyErr_NoMemory();
        }
    }
    return t->extra;
}

static void cstack_replace(PyTaskletObject *t, PyCStackObject *cs);

static void
extra_free(PyTaskletObject *t)
{
    slp_tasklet_extra *x = t->extra;
    if (x == NULL) {
        return;
    }
    if (x->cs_obj != NULL) {
        cstack_replace(t, NULL);
    }
    t->extra = NULL;
    slp_cstate_free(&x->cstate);
    slp_cstack_clear(&x->cstack);
    Py_XDECREF(x->trace_obj);
    Py_XDECREF(x->profile_obj);
    Py_XDECREF(x->latch);
    PyMem_RawFree(x);
}

static void
drop_initial_call(PyTaskletObject *t)
{
    Py_CLEAR(t->func);
    Py_CLEAR(t->args);
    Py_CLEAR(t->kwargs);
    Py_CLEAR(t->context);
}

/* A started tasklet that can never run again (threadless and killed, or
 * freed) loses its frames, cleared top down without running a handler,
 * and its C stack: it is dead (T-10, X-5).  It leaves the channel it is
 * blocked on. */
static void
drop_frames(PyTaskletObject *t)
{
    assert(t->state == SLP_STARTED && !t->in_runqueue);
    if (t->blocked) {
        slp_channel_remove_blocked(t);
    }
    t->state = SLP_NEW;
    t->base_frame = NULL;
    t->soft_parked = 0;
    Py_CLEAR(t->resume_value);
    if (t->extra != NULL) {
        slp_cstack_clear(&t->extra->cstack);
    }
    slp_frames_clear(&t->exec);
    slp_execstate_clear(&t->exec);
    drop_initial_call(t);
}

static int
tasklet_bind_impl_(PyTaskletObject *self, PyObject *func, PyObject *args,
                   PyObject *kwargs)
{
    if (func == Py_None) {
        func = NULL;
    }
    if (args == Py_None) {
        args = NULL;
    }
    if (kwargs == Py_None) {
        kwargs = NULL;
    }
    if (func != NULL && !PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "tasklet function must be a callable");
        return -1;
    }
    if (is_current(self)) {
        PyErr_SetString(PyExc_RuntimeError, "can't (re)bind the current tasklet");
        return -1;
    }
    if (is_scheduled(self)) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is scheduled");
        return -1;
    }
    if (self->state == SLP_STARTED
        && (!self->soft_parked || self->is_main || self->thread == NULL))
    {
        PyErr_SetString(PyExc_RuntimeError, "tasklet has C state on its stack");
        return -1;
    }
    if (self->is_main && args == NULL && kwargs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "can't unbind the main tasklet");
        return -1;
    }
    if (self->state == SLP_STARTED) {
        /* Paused, as frames only: they are dropped, cleared without
         * running a handler (the old code never resumes). */
        drop_frames(self);
    }
    if (args == NULL && kwargs == NULL) {
        drop_initial_call(self);
        self->state = SLP_NEW;
        Py_SETREF(self->tempval, Py_NewRef(func != NULL ? func : Py_None));
        return 0;
    }
    if (func == NULL) {
        func = self->tempval;
        if (func == Py_None || !PyCallable_Check(func)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "the tasklet was not bound to a function");
            return -1;
        }
    }
    if (self->thread == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
        return -1;
    }
    PyObject *targs = args != NULL ? PySequence_Tuple(args) : PyTuple_New(0);
    if (targs == NULL) {
        return -1;
    }
    PyObject *tkw = NULL;
    if (kwargs != NULL) {
        if (!PyDict_Check(kwargs)) {
            PyErr_SetString(PyExc_TypeError, "tasklet kwargs must be a dict");
            Py_DECREF(targs);
            return -1;
        }
        tkw = PyDict_Copy(kwargs);
        if (tkw == NULL) {
            Py_DECREF(targs);
            return -1;
        }
    }
    /* A new tasklet runs in a copy of the binder's context, as an
     * asyncio task does: ContextVar values are inherited, changes stay
     * its own.  The copy of an empty context is an empty context, which
     * the tasklet gets when it first uses one (context_get() in
     * Python/context.c): most never do, and save the memory. */
    PyObject *ctx = NULL;
    PyContext *cur = (PyContext *)_PyThreadState_GET()->context;
    if (cur != NULL && cur->ctx_vars->h_count > 0) {
        ctx = PyContext_CopyCurrent();
        if (ctx == NULL) {
            Py_DECREF(targs);
            Py_XDECREF(tkw);
            return -1;
        }
    }
    drop_initial_call(self);
    self->func = Py_NewRef(func);
    self->args = targs;
    self->kwargs = tkw;
    self->context = ctx;
    self->state = SLP_BOUND;
    Py_SETREF(self->tempval, Py_NewRef(Py_None));
    return 0;
}

/*[clinic input]
_stackless.tasklet.bind

    func: object = None
    args: object = None
    kwargs: object = None

Bind the tasklet to func(*args, **kwargs); returns the tasklet.

With args and kwargs None, the tasklet is only bound to func and is not
alive; bind(None) unbinds it.  Otherwise it gets an initial frame and
is alive and paused: insert() or run() it.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_bind_impl(PyTaskletObject *self, PyObject *func,
                             PyObject *args, PyObject *kwargs)
/*[clinic end generated code: output=c2144eb1e811731b input=ae389f2ff2fc7470]*/
{
    if (tasklet_bind_impl_(self, func, args, kwargs) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

/*[clinic input]
_stackless.tasklet.__init__

    func: object = None
    args: object = None
    kwargs: object = None

A microthread.

tasklet(func) is bound to func; calling it, tasklet(func)(*args, **kwargs),
binds the arguments and puts it in the runqueue of its thread.
[clinic start generated code]*/

static int
_stackless_tasklet___init___impl(PyTaskletObject *self, PyObject *func,
                                 PyObject *args, PyObject *kwargs)
/*[clinic end generated code: output=ee1745ae6a2b4bd1 input=294a3b6e0e70daaf]*/
{
    return tasklet_bind_impl_(self, func, args, kwargs);
}

/* --- scheduling -------------------------------------------------------- */

static int
insert_(PyTaskletObject *t)
{
    if (t->blocked) {
        PyErr_SetString(PyExc_RuntimeError, "You cannot run a blocked tasklet");
        return -1;
    }
    if (t->in_runqueue) {
        return 0;
    }
    if (t->outside) {
        return slp_outside_error(t);
    }
    if (t->thread == NULL || t->thread->main == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Target thread isn't initialized");
        return -1;
    }
    if (t->state == SLP_NEW && !is_current(t)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "You cannot run an unbound(dead) tasklet");
        return -1;
    }
    slp_runqueue_append(t->thread, t);
    /* Only another thread can be waiting for work. */
    slp_wake_thread(t->thread);
    return 0;
}

/*[clinic input]
_stackless.tasklet.insert

Append the tasklet to the runqueue of its thread; it does not run now.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_insert_impl(PyTaskletObject *self)
/*[clinic end generated code: output=661528a287159cf3 input=b97ac61ebc412dc9]*/
{
    if (insert_(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

/*[clinic input]
_stackless.tasklet.remove

Take the tasklet out of the runqueue: it is paused.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_remove_impl(PyTaskletObject *self)
/*[clinic end generated code: output=6e0fc22e0e12094e input=9d0bb80dcb1b5948]*/
{
    if (self->thread == NULL) {
        return Py_NewRef(self);
    }
    if (self->blocked) {
        PyErr_SetString(PyExc_RuntimeError,
                        "You cannot remove a blocked tasklet.");
        return NULL;
    }
    if (is_current(self)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "The current tasklet cannot be removed.");
        return NULL;
    }
    if (self->thread->switching_to == self) {
        /* A schedule callback runs, here or in its thread (which may
         * have released the GIL in it): the switch to it goes on. */
        PyErr_SetString(PyExc_RuntimeError,
                        "The tasklet being switched to cannot be removed.");
        return NULL;
    }
    if (self->in_runqueue) {
        slp_runqueue_remove(self->thread, self);
    }
    return Py_NewRef(self);
}

static PyObject *
tasklet_setup(PyObject *self, PyObject *args, PyObject *kwds)
{
    PyTaskletObject *t = (PyTaskletObject *)self;
    if (is_alive(t)) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is alive");
        return NULL;
    }
    if (tasklet_bind_impl_(t, NULL, args, kwds != NULL ? kwds : Py_None) < 0) {
        return NULL;
    }
    if (insert_(t) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

/* run() and switch(): the target becomes current now. */
static PyObject *
run_or_switch(PyTaskletObject *self, int remove)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    if (self->thread != th) {
        if (self->thread == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
            return NULL;
        }
        if (remove) {
            PyErr_SetString(PyExc_RuntimeError,
                            "can't switch to a different thread.");
            return NULL;
        }
        /* Another thread's tasklet runs there, next. */
        if (self->blocked) {
            PyErr_SetString(PyExc_RuntimeError,
                            "You cannot run a blocked tasklet");
            return NULL;
        }
        if (!self->in_runqueue) {
            if (insert_(self) < 0) {
                return NULL;
            }
        }
        if (self->thread->head != self) {
            slp_runqueue_remove(self->thread,
                                (PyTaskletObject *)Py_NewRef(self));
            slp_runqueue_insert_next(self->thread, self);
            Py_DECREF(self);
        }
        slp_wake_thread(self->thread);
        Py_RETURN_NONE;
    }
    PyTaskletObject *cur = th->current;
    if (self == cur) {
        Py_RETURN_NONE;
    }
    if (slp_check_switch_trap(th) < 0 || slp_check_transfer(th, self) < 0) {
        return NULL;
    }
    if (insert_(self) < 0) {
        return NULL;
    }
    if (remove) {
        slp_runqueue_remove(th, cur);
    }
    return slp_switch_to_soft(th, self, NULL);
}

/*[clinic input]
_stackless.tasklet.run

Switch to the tasklet now; the caller stays in the runqueue.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_run_impl(PyTaskletObject *self)
/*[clinic end generated code: output=cbf5baef133cae4d input=1cedc906de47dde8]*/
{
    return run_or_switch(self, 0);
}

/*[clinic input]
_stackless.tasklet.switch

Switch to the tasklet now; the caller leaves the runqueue (paused).
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_switch_impl(PyTaskletObject *self)
/*[clinic end generated code: output=96b64342b9cd6639 input=0a3c3bb6d08463f8]*/
{
    return run_or_switch(self, 1);
}

/*[clinic input]
_stackless.tasklet.bind_thread

    thread_id: object(c_default="NULL") = -1

Make the tasklet belong to another thread (-1: the calling one).

Only a tasklet that is not runnable and has no C state can move.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_bind_thread_impl(PyTaskletObject *self,
                                    PyObject *thread_id)
/*[clinic end generated code: output=9cf56595792b9550 input=243b02992035ffbc]*/
{
    PyThreadState *tstate = _PyThreadState_GET();
    PyThreadState *target;
    if (slp_thread_state_by_id(thread_id, &target) < 0) {
        return NULL;
    }
    if (target == NULL) {
        PyErr_SetString(PyExc_ValueError, "bad thread");
        return NULL;
    }
    slp_thread *th;
    if (target == tstate) {
        th = slp_get_thread();
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
    if (self->thread == th && thread_id == NULL) {
        Py_RETURN_NONE;
    }
    if (self->in_runqueue) {
        PyErr_SetString(PyExc_RuntimeError, "can't (re)bind a runnable tasklet");
        return NULL;
    }
    if (self->thread == th) {
        Py_RETURN_NONE;
    }
    /* A started tasklet's C stack is a slice of its thread's stack. */
    if ((self->state == SLP_STARTED && !self->soft_parked) || self->is_main) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet has C state on its stack");
        return NULL;
    }
    if (self->thread != th) {
        slp_owned_unlink(self);
        self->thread = th;
        self->thread_id = th->thread_id;
        slp_owned_link(th, self);
        if (self->state == SLP_STARTED) {
            slp_frames_move_to_thread(&self->exec, th->tstate);
        }
    }
    Py_RETURN_NONE;
}

/* --- exceptions: throw, raise_exception, kill -------------------------- */

/* Deliver `bomb` (stolen) to the tasklet (T-8 after validation). */
static PyObject *
deliver(PyTaskletObject *self, PyObject *bomb, int pending, int is_exit)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        Py_DECREF(bomb);
        return NULL;
    }
again:
    if (is_current(self) && self->thread == th) {
        /* Raised in the caller at once. */
        slp_bomb_explode(bomb);
        Py_DECREF(bomb);
        return NULL;
    }
    if (!is_alive(self)) {
        if (is_exit && self->state == SLP_NEW) {
            /* Never started or finished: nothing to end. */
            if (self->in_runqueue && self->thread != NULL) {
                slp_runqueue_remove(self->thread, self);
            }
            Py_DECREF(bomb);
            Py_RETURN_NONE;
        }
        Py_DECREF(bomb);
        if (self->thread == NULL) {
            if (is_exit && self->state == SLP_STARTED) {
                /* Threadless with frames: they are dropped, no handlers. */
                drop_frames(self);
                Py_RETURN_NONE;
            }
            if (is_exit && self->state == SLP_BOUND) {
                drop_initial_call(self);
                self->state = SLP_NEW;
                Py_RETURN_NONE;
            }
            PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
        }
        else {
            PyErr_SetString(PyExc_RuntimeError,
                            "You cannot throw to a dead tasklet");
        }
        return NULL;
    }
    if (self->outside) {
        Py_DECREF(bomb);
        slp_outside_error(self);
        return NULL;
    }
    if (!pending && self->thread == th
        && (slp_check_switch_trap(th) < 0
            || slp_check_transfer(th, self) < 0))
    {
        Py_DECREF(bomb);
        return NULL;
    }
    if (pending && self->thread->main == NULL) {
        Py_DECREF(bomb);
        PyErr_SetString(PyExc_RuntimeError, "Target thread isn't initialised");
        return NULL;
    }
    if (self->tempval != Py_None) {
        /* The old tempval (a value sent to the tasklet and not received
         * yet, or one it is blocked sending, which is withdrawn) goes
         * first: dropping it may run code that switches, even ends the
         * tasklet, which must not come between the choices made below
         * and the switch.  Then the tasklet is looked at again. */
        if (self->blocked) {
            slp_channel_remove_blocked(self);
        }
        Py_SETREF(self->tempval, Py_NewRef(Py_None));
        goto again;
    }
    Py_SETREF(self->tempval, bomb);     /* None: nothing is dropped */
    if (self->blocked) {
        slp_channel_remove_blocked(self);
    }
    if (!self->in_runqueue) {
        slp_runqueue_append(self->thread, self);
    }
    if (self->thread != th) {
        slp_wake_thread(self->thread);
        Py_RETURN_NONE;
    }
    if (pending) {
        Py_RETURN_NONE;
    }
    return slp_switch_to_soft(th, self, Py_NewRef(Py_None));
}

/*[clinic input]
_stackless.tasklet.throw

    exc: object
    val: object = None
    tb: object = None
    pending: bool = False

Raise an exception in the tasklet, with the rules of `raise`.

Unless pending, the tasklet runs at once and the caller stays
runnable; with pending, it is only made runnable.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_throw_impl(PyTaskletObject *self, PyObject *exc,
                              PyObject *val, PyObject *tb, int pending)
/*[clinic end generated code: output=ea2178bbc8df5dd6 input=c9ddb3ceff04bd47]*/
{
    PyObject *bomb = slp_bomb_from_raise_args(exc, val, tb);
    if (bomb == NULL) {
        return NULL;
    }
    int is_exit = PyErr_GivenExceptionMatches(
        ((PyBombObject *)bomb)->exc, PyExc_TaskletExit);
    return deliver(self, bomb, pending, is_exit);
}

/* Not Argument Clinic: see slp_first_argument(). */
PyDoc_STRVAR(tasklet_raise_exception__doc__,
"raise_exception($self, /, exc_class, *args)\n"
"--\n"
"\n"
"Raise exc_class(*args) in the tasklet, which runs at once.");

static PyObject *
tasklet_raise_exception(PyTaskletObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "raise_exception", "exc_class");
    PyObject *exc_class = slp_first_argument(&parser, 1, args, nargs,
                                             kwnames);
    if (exc_class == NULL) {
        return NULL;
    }
    if (!PyExceptionClass_Check(exc_class)) {
        PyErr_SetString(PyExc_TypeError,
                        "exc_class must be a subclass of BaseException");
        return NULL;
    }
    PyObject *rest = _PyTuple_FromArray(args + 1, nargs > 0 ? nargs - 1 : 0);
    if (rest == NULL) {
        return NULL;
    }
    PyObject *bomb = slp_bomb_from_raise_args(exc_class, rest, NULL);
    Py_DECREF(rest);
    if (bomb == NULL) {
        return NULL;
    }
    int is_exit = PyErr_GivenExceptionMatches(exc_class, PyExc_TaskletExit);
    return deliver(self, bomb, 0, is_exit);
}

#define TASKLET_RAISE_EXCEPTION_METHODDEF \
    {"raise_exception", _PyCFunction_CAST(tasklet_raise_exception), \
     METH_FASTCALL | METH_KEYWORDS, tasklet_raise_exception__doc__},

/*[clinic input]
_stackless.tasklet.kill

    pending: bool = False

End the tasklet by raising TaskletExit in it.
[clinic start generated code]*/

static PyObject *
_stackless_tasklet_kill_impl(PyTaskletObject *self, int pending)
/*[clinic end generated code: output=a65d0d06414e1fe7 input=d4b63ee5fb1a3c82]*/
{
    if (self->state == SLP_NEW) {
        if (self->in_runqueue && self->thread != NULL) {
            slp_runqueue_remove(self->thread, self);
        }
        Py_RETURN_NONE;
    }
    PyObject *bomb = slp_bomb_from_raise_args(PyExc_TaskletExit, NULL, NULL);
    if (bomb == NULL) {
        return NULL;
    }
    return deliver(self, bomb, pending, 1);
}

/* --- flags ---------------------------------------------------------------- */

static int
flag_arg(PyObject *flag, const char *what)
{
    if (!PyLong_Check(flag)) {
        PyErr_Format(PyExc_TypeError, "%s must be set to a bool or integer",
                     what);
        return -1;
    }
    int v = PyObject_IsTrue(flag);
    return v;
}

/* Not Argument Clinic: see slp_first_argument(). */
PyDoc_STRVAR(tasklet_set_atomic__doc__,
"set_atomic($self, /, flag)\n"
"--\n"
"\n"
"Set the atomic flag; returns the old one.\n"
"\n"
"While atomic, the tasklet is not preempted and the thread does not\n"
"hand the GIL to others.");

static PyObject *
tasklet_set_atomic(PyTaskletObject *self, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "set_atomic", "flag");
    PyObject *flag = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (flag == NULL) {
        return NULL;
    }
    int v = flag_arg(flag, "atomic");
    if (v < 0) {
        return NULL;
    }
    int old = self->atomic;
    self->atomic = v;
    if (old && !v && is_current(self)) {
        slp_preemption_unblocked(self->thread);
    }
    return PyBool_FromLong(old);
}

PyDoc_STRVAR(tasklet_set_ignore_nesting__doc__,
"set_ignore_nesting($self, /, flag)\n"
"--\n"
"\n"
"Set the ignore_nesting flag; returns the old one.\n"
"\n"
"A tasklet that ignores nesting is preempted also inside nested\n"
"interpreter calls.");

static PyObject *
tasklet_set_ignore_nesting(PyTaskletObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "set_ignore_nesting", "flag");
    PyObject *flag = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (flag == NULL) {
        return NULL;
    }
    int v = flag_arg(flag, "ignore_nesting");
    if (v < 0) {
        return NULL;
    }
    int old = self->ignore_nesting;
    self->ignore_nesting = v;
    if (!old && v && is_current(self)) {
        slp_preemption_unblocked(self->thread);
    }
    return PyBool_FromLong(old);
}

/* --- attributes --------------------------------------------------------- */

static _PyInterpreterFrame *
top_frame(PyTaskletObject *t)
{
    if (t->state != SLP_STARTED || t->thread == NULL) {
        return NULL;
    }
    if (is_current(t)) {
        return t->thread->tstate->current_frame;
    }
    return t->exec.current_frame;
}

static int
nesting_level(PyTaskletObject *t)
{
    int n = 0;
    if (t->state != SLP_STARTED || t->thread == NULL) {
        return 0;
    }
    if (!is_current(t)) {
        /* Its entry frames are out of the chain while it is suspended.
         * Suspended with its C stack, it is at least one level deep in C
         * (spec N-3), even where that C code (a builtin that switched)
         * runs no eval loop of its own. */
        n = t->extra != NULL ? t->extra->cstate.nhidden : 0;
        if (!t->soft_parked && n < 2) {
            return 1;
        }
    }
    else {
        for (_PyInterpreterFrame *f = top_frame(t); f; f = f->previous) {
            if (f->owner == FRAME_OWNED_BY_CSTACK) {
                n++;
            }
        }
    }
    return n > 0 ? n - 1 : 0;
}

/* --- why a tasklet holds C state (c_calls) -------------------------------
 *
 * A tasklet holds C state where C code called Python code (a nested
 * eval loop, whose entry frame is in its chain), and where it was
 * switched by a builtin that C code called.  Each such place is reported
 * as (frame, instruction, callee): the frame whose instruction called
 * into C, that instruction's name (dis), and the code object of the
 * Python function that the C code called, or None at the top, where the
 * C code itself switched.  The call of the tasklet's function made by
 * the runner, through C, has no frame or instruction (None); a builtin as
 * the tasklet's function that switched is (None, None, None).  Only the
 * frames and their code are read: the inputs of an instruction stopped in
 * C may be gone already. */

static int
add_c_call(PyObject *list, _PyInterpreterFrame *caller,
           _PyInterpreterFrame *callee, int start)
{
    PyObject *frame = Py_None, *callee_code = Py_None;
    const char *name = "?";
    if (start) {
        /* The tasklet's function, called through C when it started. */
        name = NULL;
    }
    else if (caller != NULL) {
        PyCodeObject *co = _PyFrame_GetCode(caller);
        int op = _Py_GetBaseOpcode(co, _PyInterpreterFrame_LASTI(caller));
        if (_PyFrame_IsIncomplete(caller)) {
            /* A shim frame (shims.c): its code says what it is for. */
            name = PyUnicode_AsUTF8(co->co_name);
        }
        else {
            frame = (PyObject *)_PyFrame_GetFrameObject(caller);
            if (frame == NULL) {
                return -1;
            }
            name = op >= 0 && op < 256 ? _PyOpcode_OpName[op] : NULL;
        }
        if (name == NULL) {
            name = "?";
        }
    }
    if (callee != NULL) {
        callee_code = (PyObject *)_PyFrame_GetCode(callee);
    }
    PyObject *item = Py_BuildValue("(OzO)", frame, name, callee_code);
    if (item == NULL) {
        return -1;
    }
    int r = PyList_Append(list, item);
    Py_DECREF(item);
    return r;
}

static PyObject *
tasklet_get_c_calls(PyTaskletObject *t, void *c)
{
    PyObject *list = PyList_New(0);
    if (list == NULL || t->state != SLP_STARTED || t->thread == NULL) {
        return list;
    }
    /* Top down.  The lowest entry frame is that of the eval loop the
     * tasklet started in: a C call of its only if it started hard, its
     * function called through C (no base frame). */
    int hard_start = t->base_frame == NULL;
    if (is_current(t)) {
        /* Each entry frame is added when the next one down is found:
         * the last one found is the lowest. */
        _PyInterpreterFrame *above = NULL;
        _PyInterpreterFrame *entry = NULL, *entry_above = NULL;
        for (_PyInterpreterFrame *f = top_frame(t); f; f = f->previous) {
            if (f->owner != FRAME_OWNED_BY_CSTACK) {
                above = f;
                continue;
            }
            if (entry != NULL
                && add_c_call(list, entry->previous, entry_above, 0) < 0)
            {
                goto error;
            }
            entry = f;
            entry_above = above;
            above = NULL;
        }
        if (entry != NULL && hard_start
            && add_c_call(list, entry->previous, entry_above, 1) < 0)
        {
            goto error;
        }
    }
    else if (!t->soft_parked && t->extra != NULL) {
        slp_cstate *cst = &t->extra->cstate;
        if (cst->switched_in_c
            && add_c_call(list, t->exec.current_frame, NULL, 0) < 0)
        {
            goto error;
        }
        /* Each hidden entry frame was linked from the frame above it,
         * which now links the frame below. */
        for (int i = 0; i < cst->nhidden - !hard_start; i++) {
            _PyInterpreterFrame **link = cst->hidden[i].link;
            _PyInterpreterFrame *callee = NULL;
            if (link != &t->exec.current_frame) {
                callee = (_PyInterpreterFrame *)(
                    (char *)link - offsetof(_PyInterpreterFrame, previous));
            }
            if (add_c_call(list, *link, callee, i == cst->nhidden - 1) < 0) {
                goto error;
            }
        }
        /* A function of C code (a builtin), which switched: the tasklet
         * has no frame, and its C state is that call. */
        if (PyList_GET_SIZE(list) == 0 && hard_start
            && add_c_call(list, NULL, NULL, 1) < 0)
        {
            goto error;
        }
    }
    if (PyList_Reverse(list) < 0) {
        goto error;
    }
    return list;
error:
    Py_DECREF(list);
    return NULL;
}

static PyObject *
tasklet_get_alive(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(is_alive(t));
}

static PyObject *
tasklet_get_paused(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(is_alive(t) && !is_scheduled(t) && !is_current(t));
}

static PyObject *
tasklet_get_blocked(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(t->blocked != 0);
}

static PyObject *
tasklet_get_scheduled(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(is_scheduled(t));
}

/* Has no C state: its frames are all it is (spec T-20). */
static int
is_restorable(PyTaskletObject *t)
{
    if (t->state != SLP_STARTED) {
        return 1;
    }
    if (is_current(t)) {
        return t->base_frame != NULL && nesting_level(t) == 0;
    }
    return t->soft_parked;
}

static PyObject *
tasklet_get_restorable(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(is_restorable(t));
}

static PyObject *
tasklet_get_is_main(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(t->thread != NULL && t->thread->main == t);
}

static PyObject *
tasklet_get_is_current(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(is_current(t));
}

static PyObject *
tasklet_get_thread_id(PyTaskletObject *t, void *c)
{
    if (t->thread == NULL) {
        return PyLong_FromLong(-1);
    }
    return PyLong_FromUnsignedLong(t->thread_id);
}

static PyObject *
tasklet_get_frame(PyTaskletObject *t, void *c)
{
    _PyInterpreterFrame *f = top_frame(t);
    while (f != NULL && _PyFrame_IsIncomplete(f)) {
        f = f->previous;
    }
    if (f == NULL) {
        Py_RETURN_NONE;
    }
    PyFrameObject *fo = _PyFrame_GetFrameObject(f);
    return Py_XNewRef((PyObject *)fo);
}

static PyObject *
chain_neighbour(PyTaskletObject *t)
{
    return Py_NewRef(t != NULL ? (PyObject *)t : Py_None);
}

static PyObject *
tasklet_get_next(PyTaskletObject *t, void *c)
{
    return chain_neighbour(t->next);
}

static PyObject *
tasklet_get_prev(PyTaskletObject *t, void *c)
{
    return chain_neighbour(t->prev);
}

static PyObject *
tasklet_get_recursion_depth(PyTaskletObject *t, void *c)
{
    if (t->state != SLP_STARTED || t->thread == NULL) {
        return PyLong_FromLong(0);
    }
    if (is_current(t)) {
        PyThreadState *ts = t->thread->tstate;
        return PyLong_FromLong(ts->py_recursion_limit - ts->py_recursion_remaining);
    }
    return PyLong_FromLong(t->exec.py_recursion_depth);
}

static PyObject *
tasklet_get_nesting_level(PyTaskletObject *t, void *c)
{
    return PyLong_FromLong(nesting_level(t));
}

static PyObject *
tasklet_get_atomic(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(t->atomic);
}

static PyObject *
tasklet_get_ignore_nesting(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(t->ignore_nesting);
}

static PyObject *
tasklet_get_block_trap(PyTaskletObject *t, void *c)
{
    return PyBool_FromLong(t->block_trap);
}

static int
tasklet_set_block_trap(PyTaskletObject *t, PyObject *value, void *c)
{
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "block_trap must be set to a bool or integer");
        return -1;
    }
    int v = PyObject_IsTrue(value);
    if (v < 0) {
        return -1;
    }
    t->block_trap = v;
    return 0;
}

static PyObject *
tasklet_get_tempval(PyTaskletObject *t, void *c)
{
    return Py_NewRef(t->tempval);
}

static int
tasklet_set_tempval(PyTaskletObject *t, PyObject *value, void *c)
{
    Py_SETREF(t->tempval, Py_NewRef(value != NULL ? value : Py_None));
    return 0;
}

static PyObject *
tasklet_get_channel(PyTaskletObject *t, void *c)
{
    return Py_NewRef(t->channel != NULL ? (PyObject *)t->channel : Py_None);
}

/* T-28, M-21.3: tasklet.cstate, the tasklet's C stack (type cstack).
 *
 * The object exists only for tasklets that were asked for it or were
 * switched out with a C stack (slp_cstack_object_prepare()): a tasklet
 * that switches softly costs nothing more.  It lives in the tasklet's
 * `extra`, which holds the only strong reference to it, and points back
 * to the tasklet without one; the tasklet clears that pointer when it
 * goes, or when it gets a new cstack (a C stack of another lineage).
 * Every live cstack of the interpreter, the threads' initial stubs too,
 * is in one circular ring of borrowed links, which the object leaves when
 * it is freed: the harness of the original tests walks it to find the
 * tasklets that hold C state. */

static int nesting_level(PyTaskletObject *t);

static slp_interp *
cstack_interp(void)
{
    PyInterpreterState *interp = _PyInterpreterState_GET();
    return interp != NULL ? interp->stackless : NULL;
}

PyCStackObject *
slp_cstack_object_new(slp_thread *th, PyTaskletObject *task)
{
    slp_interp *si = slp_get_interp(th->tstate->interp);
    if (si == NULL) {
        return NULL;
    }
    PyCStackObject *cs = PyObject_New(PyCStackObject, &PyCStack_Type);
    if (cs == NULL) {
        return NULL;
    }
    cs->task = task;
    cs->startaddr = (uintptr_t)th->cstack_base;
    cs->serial = th->serial_last_jump;
    cs->soft_equiv = 0;
    PyCStackObject *anchor = si->cstack_ring;
    if (anchor == NULL) {
        cs->next = cs->prev = cs;
        si->cstack_ring = cs;
    }
    else {
        /* Right after the anchor: a walk from the anchor meets it first. */
        cs->prev = anchor;
        cs->next = anchor->next;
        anchor->next->prev = cs;
        anchor->next = cs;
    }
    return cs;
}

static void
cstack_dealloc(PyCStackObject *self)
{
    assert(self->task == NULL || self->task->extra == NULL
           || self->task->extra->cs_obj != self);
    slp_interp *si = cstack_interp();
    if (self->next == self) {
        if (si != NULL && si->cstack_ring == self) {
            si->cstack_ring = NULL;
        }
    }
    else {
        if (si != NULL && si->cstack_ring == self) {
            si->cstack_ring = self->next;
        }
        self->prev->next = self->next;
        self->next->prev = self->prev;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyObject *
slp_tasklet_cstate(PyTaskletObject *t)
{
    slp_tasklet_extra *x = slp_tasklet_extra_get(t);
    if (x == NULL) {
        return NULL;
    }
    if (x->cs_obj == NULL) {
        slp_thread *th = t->thread != NULL ? t->thread : slp_get_thread();
        if (th == NULL) {
            return NULL;
        }
        x->cs_obj = slp_cstack_object_new(th, t);
        if (x->cs_obj == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(x->cs_obj);
}

/* The tasklet's cstack is replaced by `cs` (may be NULL): the old one
 * keeps no pointer to it. */
static void
cstack_replace(PyTaskletObject *t, PyCStackObject *cs)
{
    PyCStackObject *old = t->extra->cs_obj;
    t->extra->cs_obj = cs;
    if (old != NULL) {
        old->task = NULL;
        Py_DECREF(old);
    }
}

int
slp_cstack_object_prepare(slp_thread *th, PyTaskletObject *t)
{
    PyCStackObject *cs = t->extra->cs_obj;
    if (cs != NULL && cs->serial == th->serial_last_jump
        && cs->startaddr == (uintptr_t)th->cstack_base)
    {
        return 0;
    }
    /* None yet, or one of another lineage or thread (bind_thread()): the
     * tasklet gets a new one. */
    cs = slp_cstack_object_new(th, t);
    if (cs == NULL) {
        return -1;
    }
    cstack_replace(t, cs);
    return 0;
}

/* The saved C stack of t, suspended with one, if cs is its cstack. */
static const slp_cstack *
cstack_saved(PyCStackObject *cs)
{
    PyTaskletObject *t = cs->task;
    if (t == NULL || t->extra == NULL || t->extra->cs_obj != cs
        || t->state != SLP_STARTED || t->soft_parked || t->thread == NULL
        || t->thread->current == t || t->outside)
    {
        return NULL;
    }
    return &t->extra->cstack;
}

int
slp_bad_transfer(slp_thread *th, PyTaskletObject *next)
{
    return next != th->current && next->state == SLP_STARTED
           && !next->soft_parked && next->extra != NULL
           && next->extra->cs_obj != NULL
           && next->extra->cs_obj->startaddr != (uintptr_t)th->cstack_base;
}

int
slp_check_transfer(slp_thread *th, PyTaskletObject *next)
{
    if (slp_bad_transfer(th, next)) {
        PyErr_SetString(PyExc_SystemError, "bad stack reference in transfer");
        return -1;
    }
    return 0;
}

void
slp_serial_after_jump(slp_thread *th, PyTaskletObject *next, int dropped)
{
    int soft = slp_soft_enabled(th, th->tstate->interp);
    PyCStackObject *cs = next->extra != NULL ? next->extra->cs_obj : NULL;
    if (next->state == SLP_STARTED && !next->soft_parked && cs != NULL) {
        /* Its own saved stack. */
        if (!cs->soft_equiv) {
            th->serial_last_jump = cs->serial;
        }
        else if (!dropped && th->stub != NULL) {
            /* 3.7 parked it softly: it resumes from the stub. */
            th->serial_last_jump = th->stub->serial;
        }
        /* else it goes on, softly, where the dead tasklet ran. */
        return;
    }
    /* Started at the snapshot, or resumed there. */
    if ((!dropped || !soft) && th->stub != NULL) {
        th->serial_last_jump = th->stub->serial;
    }
}

int
slp_outside_error(PyTaskletObject *t)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "the tasklet is outside its thread (test_outside)");
    return -1;
}

static PyObject *
cstack_get_task(PyCStackObject *self, void *c)
{
    return Py_NewRef(self->task != NULL ? (PyObject *)self->task : Py_None);
}

static PyObject *
cstack_get_next(PyCStackObject *self, void *c)
{
    return Py_NewRef((PyObject *)self->next);
}

static PyObject *
cstack_get_prev(PyCStackObject *self, void *c)
{
    return Py_NewRef((PyObject *)self->prev);
}

static PyObject *
cstack_get_size(PyCStackObject *self, void *c)
{
    const slp_cstack *saved = cstack_saved(self);
    return PyLong_FromSize_t(saved != NULL ? saved->size / sizeof(void *)
                                           : 0);
}

static PyObject *
cstack_get_startaddr(PyCStackObject *self, void *c)
{
    return PyLong_FromVoidPtr((void *)self->startaddr);
}

static PyObject *
cstack_get_nesting_level(PyCStackObject *self, void *c)
{
    PyTaskletObject *t = self->task;
    if (t == NULL || t->extra == NULL || t->extra->cs_obj != self) {
        return PyLong_FromLong(0);
    }
    return PyLong_FromLong(nesting_level(t));
}

static PyObject *
cstack_get_serial(PyCStackObject *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->serial);
}

/* str(cs): the saved bytes, as latin-1 (size words of them). */
static PyObject *
cstack_str(PyCStackObject *self)
{
    const slp_cstack *saved = cstack_saved(self);
    if (saved == NULL) {
        return PyUnicode_FromStringAndSize(NULL, 0);
    }
    Py_ssize_t n = (Py_ssize_t)(saved->size / sizeof(void *)
                                * sizeof(void *));
    return PyUnicode_DecodeLatin1(saved->data, n, NULL);
}

static PyObject *
cstack_repr(PyCStackObject *self)
{
    const slp_cstack *saved = cstack_saved(self);
    return PyUnicode_FromFormat(
        "<%s object at %p, task %R, %zu words, serial %llu>",
        Py_TYPE(self)->tp_name, self,
        self->task != NULL ? (PyObject *)self->task : Py_None,
        saved != NULL ? saved->size / sizeof(void *) : (size_t)0,
        self->serial);
}

static PyGetSetDef cstack_getset[] = {
    {"task", (getter)cstack_get_task, NULL,
     "The tasklet, or None (a thread's initial stub)."},
    {"next", (getter)cstack_get_next, NULL,
     "The next cstack of the interpreter's ring."},
    {"prev", (getter)cstack_get_prev, NULL,
     "The previous cstack of the interpreter's ring."},
    {"size", (getter)cstack_get_size, NULL,
     "Words of C stack saved while the tasklet is suspended (else 0)."},
    {"startaddr", (getter)cstack_get_startaddr, NULL,
     "The address of the stack base the saved slice belongs to."},
    {"nesting_level", (getter)cstack_get_nesting_level, NULL,
     "The tasklet's nesting level."},
    {"serial", (getter)cstack_get_serial, NULL,
     "The serial number of the C stack's lineage."},
    {NULL}
};

PyTypeObject PyCStack_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.cstack",
    .tp_basicsize = sizeof(PyCStackObject),
    .tp_dealloc = (destructor)cstack_dealloc,
    .tp_repr = (reprfunc)cstack_repr,
    .tp_str = (reprfunc)cstack_str,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("The C stack of a tasklet (tasklet.cstate), or "
                        "a thread's initial stub."),
    .tp_getset = cstack_getset,
};

static PyObject *
tasklet_get_cstate(PyTaskletObject *t, void *c)
{
    return slp_tasklet_cstate(t);
}

/* D-2: the trace and profile functions of a tasklet.  For the current
 * tasklet they are sys.gettrace()/settrace(); for a suspended one, the
 * ones it gets back when it runs. */
static PyObject *
get_hook(PyTaskletObject *t, int profile)
{
    if (is_current(t)) {
        PyThreadState *ts = t->thread->tstate;
        if (ts != _PyThreadState_GET()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "tasklet is current in another thread");
            return NULL;
        }
        PyObject *obj = profile ? ts->c_profileobj : ts->c_traceobj;
        return Py_NewRef(obj != NULL ? obj : Py_None);
    }
    slp_tasklet_extra *x = t->extra;
    PyObject *obj = x == NULL ? NULL : profile ? x->profile_obj : x->trace_obj;
    return Py_NewRef(obj != NULL ? obj : Py_None);
}

static int
set_hook(PyTaskletObject *t, PyObject *value, int profile)
{
    if (value == NULL) {
        value = Py_None;
    }
    if (value != Py_None && !is_alive(t)) {
        PyErr_SetString(PyExc_RuntimeError, "tasklet is not alive");
        return -1;
    }
    if (is_current(t)) {
        if (t->thread->tstate != _PyThreadState_GET()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "tasklet is current in another thread");
            return -1;
        }
        return slp_sys_sethook(value, profile);
    }
    if (value == Py_None && t->extra == NULL) {
        return 0;
    }
    slp_tasklet_extra *x = slp_tasklet_extra_get(t);
    if (x == NULL) {
        return -1;
    }
    PyObject *obj = value == Py_None ? NULL : Py_NewRef(value);
    if (profile) {
        x->profile_func = NULL;
        Py_XSETREF(x->profile_obj, obj);
    }
    else {
        x->trace_func = NULL;
        Py_XSETREF(x->trace_obj, obj);
    }
    return 0;
}

static PyObject *
tasklet_get_trace_function(PyTaskletObject *t, void *c)
{
    return get_hook(t, 0);
}

static int
tasklet_set_trace_function(PyTaskletObject *t, PyObject *v, void *c)
{
    return set_hook(t, v, 0);
}

static PyObject *
tasklet_get_profile_function(PyTaskletObject *t, void *c)
{
    return get_hook(t, 1);
}

static int
tasklet_set_profile_function(PyTaskletObject *t, PyObject *v, void *c)
{
    return set_hook(t, v, 1);
}

static PyGetSetDef tasklet_getset[] = {
    {"trace_function", (getter)tasklet_get_trace_function,
     (setter)tasklet_set_trace_function,
     "The tasklet's trace function (sys.settrace() while it runs)."},
    {"profile_function", (getter)tasklet_get_profile_function,
     (setter)tasklet_set_profile_function,
     "The tasklet's profile function (sys.setprofile() while it runs)."},
    {"alive", (getter)tasklet_get_alive, NULL,
     "True while the tasklet has frames and an owner thread."},
    {"paused", (getter)tasklet_get_paused, NULL,
     "True if alive and in no chain (not runnable, not blocked)."},
    {"blocked", (getter)tasklet_get_blocked, NULL,
     "True while waiting in a channel."},
    {"scheduled", (getter)tasklet_get_scheduled, NULL,
     "True if in the runqueue or blocked in a channel."},
    {"restorable", (getter)tasklet_get_restorable, NULL,
     "True if no nested interpreter call is on the tasklet's stack."},
    {"is_main", (getter)tasklet_get_is_main, NULL,
     "True for the main tasklet of its thread."},
    {"is_current", (getter)tasklet_get_is_current, NULL,
     "True for the running tasklet of its thread."},
    {"thread_id", (getter)tasklet_get_thread_id, NULL,
     "The id of the owner thread, -1 once it ended."},
    {"frame", (getter)tasklet_get_frame, NULL,
     "The innermost Python frame, or None."},
    {"next", (getter)tasklet_get_next, NULL, "The next tasklet in the chain."},
    {"prev", (getter)tasklet_get_prev, NULL,
     "The previous tasklet in the chain."},
    {"recursion_depth", (getter)tasklet_get_recursion_depth, NULL,
     "The Python recursion depth of the tasklet."},
    {"nesting_level", (getter)tasklet_get_nesting_level, NULL,
     "The number of nested interpreter calls on the tasklet's stack."},
    {"c_calls", (getter)tasklet_get_c_calls, NULL,
     "Why the tasklet holds C state: the places where C code is between\n"
     "its frames, outermost first, as (frame, instruction, callee):\n"
     "the frame whose instruction called C code, the instruction's name,\n"
     "and the code object of the Python function the C code called\n"
     "(None where that C code switched the tasklet).  Empty for a\n"
     "tasklet without C calls; see also restorable."},
    {"atomic", (getter)tasklet_get_atomic, NULL,
     "True while the tasklet must not be preempted (set_atomic())."},
    {"ignore_nesting", (getter)tasklet_get_ignore_nesting, NULL,
     "True if preemption ignores nesting (set_ignore_nesting())."},
    {"block_trap", (getter)tasklet_get_block_trap,
     (setter)tasklet_set_block_trap,
     "If true, a channel operation that would block raises RuntimeError."},
    {"tempval", (getter)tasklet_get_tempval, (setter)tasklet_set_tempval,
     "The value the tasklet's next resumption returns."},
    {"_channel", (getter)tasklet_get_channel, NULL,
     "The channel the tasklet is blocked on, or None."},
    {"cstate", (getter)tasklet_get_cstate, NULL,
     "The tasklet's C stack (a cstack object)."},
    {NULL}
};

/* --- the object ----------------------------------------------------------- */

static int
tasklet_traverse(PyTaskletObject *t, visitproc visit, void *arg)
{
    /* Not Py_TYPE(): the type is static; a subclass's instances count as
     * references to it, and subtype_traverse() visits it. */
    Py_VISIT(t->tempval);
    Py_VISIT(t->func);
    Py_VISIT(t->args);
    Py_VISIT(t->kwargs);
    Py_VISIT(t->context);
    Py_VISIT(t->channel);
    if (t->extra != NULL) {
        Py_VISIT(t->extra->trace_obj);
        Py_VISIT(t->extra->profile_obj);
        Py_VISIT(t->extra->latch);
    }
    Py_VISIT(t->resume_value);
    if (t->state == SLP_STARTED) {
        /* Only a suspended tasklet's state is in t->exec. */
        _PyInterpreterFrame *calling = NULL;
        if (!t->soft_parked && t->extra != NULL) {
            calling = t->extra->cstate.calling_frame;
        }
        return slp_execstate_traverse(&t->exec, calling, visit, arg);
    }
    return 0;
}

static int
tasklet_clear(PyTaskletObject *t)
{
    Py_SETREF(t->tempval, Py_NewRef(Py_None));
    if (t->state == SLP_STARTED && t->thread == NULL && !t->in_runqueue) {
        /* Garbage, and no thread can run it: its frames go, cleared. */
        drop_frames(t);
        return 0;
    }
    if (t->state == SLP_STARTED) {
        /* Its C stack uses the initial call and its frames: they go when
         * it ends (it is killed, see tasklet_finalize()). */
        return 0;
    }
    drop_initial_call(t);
    if (t->state == SLP_BOUND) {
        t->state = SLP_NEW;
    }
    if (t->extra != NULL) {
        Py_CLEAR(t->extra->trace_obj);
        Py_CLEAR(t->extra->profile_obj);
        Py_CLEAR(t->extra->latch);
    }
    return 0;
}

/* A tasklet suspended with its C stack must end before it goes, so that
 * its `finally` clauses run (T-15): it is killed now.  During a garbage
 * collection no switch is possible: it is kept alive, and killed at the
 * next check of the eval breaker, right after the collection.  A tasklet
 * of another thread is killed pending: it ends when its thread runs it. */
static void
tasklet_finalize(PyObject *self)
{
    PyTaskletObject *t = (PyTaskletObject *)self;
    if (t->state != SLP_STARTED || t->thread == NULL || is_current(t)
        || t->thread->main == NULL)
    {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyThreadState *tstate = _PyThreadState_GET();
    int here = t->thread == slp_thread_of(tstate);
    if (here && !slp_collecting(tstate)) {
        /* Killed now: its handlers run before it goes (T-15).  One that
         * survives, paused, is a zombie in gc.garbage, also when
         * t.__del__() was called from Python (M-21.9). */
        if (slp_kill_hard(t, "") && !t->is_zombie && !t->in_runqueue
            && !t->blocked && t->state == SLP_STARTED)
        {
            slp_to_garbage(t);
        }
    }
    else if (here) {
        /* Kept alive until the collection is over, then killed. */
        if (slp_kill_soon(t->thread, t) < 0) {
            PyErr_FormatUnraisable("Exception killing tasklet %R", self);
        }
    }
    else {
        PyObject *res = _stackless_tasklet_kill_impl(t, 1);
        if (res == NULL) {
            PyErr_FormatUnraisable("Exception killing tasklet %R", self);
        }
        Py_XDECREF(res);
    }
    PyErr_SetRaisedException(exc);
}

static void
tasklet_dealloc(PyTaskletObject *t)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)t) < 0) {
        return;     /* resurrected */
    }
    PyObject_GC_UnTrack(t);
    if (t->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)t);
    }
    assert(!t->in_runqueue && t->blocked == 0);
    slp_owned_unlink(t);
    if (t->state == SLP_STARTED) {
        /* Could not be ended: its frames are cleared without running a
         * handler; what its C stack holds is lost. */
        drop_frames(t);
    }
    extra_free(t);
    Py_CLEAR(t->tempval);
    drop_initial_call(t);
    Py_CLEAR(t->channel);
    Py_CLEAR(t->resume_value);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *
tasklet_repr(PyTaskletObject *t)
{
    const char *state = t->state == SLP_NEW ? "new" :
                        t->state == SLP_BOUND ? "bound" : "started";
    return PyUnicode_FromFormat("<%s object at %p, %s%s%s%s>",
                                Py_TYPE(t)->tp_name, t, state,
                                t->in_runqueue ? ", scheduled" : "",
                                t->blocked ? ", blocked" : "",
                                is_current(t) ? ", current" : "");
}

/* The methods that switch (softcall.c). */
slp_methoddef slp_tasklet_switching[] = {
    SLP_METHODDEF(_STACKLESS_TASKLET_RUN_METHODDEF),
    SLP_METHODDEF(_STACKLESS_TASKLET_SWITCH_METHODDEF),
    SLP_METHODDEF(_STACKLESS_TASKLET_THROW_METHODDEF),
    SLP_METHODDEF(TASKLET_RAISE_EXCEPTION_METHODDEF),
    SLP_METHODDEF(_STACKLESS_TASKLET_KILL_METHODDEF),
    SLP_METHODDEF_END
};

static PyObject *
tasklet_reduce(PyTaskletObject *self, PyObject *Py_UNUSED(ignored))
{
    return slp_tasklet_reduce(self);
}

static PyObject *
tasklet_setstate(PyTaskletObject *self, PyObject *state)
{
    return slp_tasklet_setstate(self, state);
}

static PyMethodDef tasklet_methods[] = {
    {"__reduce__", (PyCFunction)tasklet_reduce, METH_NOARGS,
     PyDoc_STR("__reduce__($self, /)\n--\n\nPickle the tasklet with its "
               "frames; not the current one.")},
    {"__setstate__", (PyCFunction)tasklet_setstate, METH_O,
     PyDoc_STR("__setstate__($self, state, /)\n--\n\nRestore a pickled "
               "tasklet into this new one, paused.")},
    _STACKLESS_TASKLET_BIND_METHODDEF
    {"setup", (PyCFunction)(void (*)(void))tasklet_setup,
     METH_VARARGS | METH_KEYWORDS,
     PyDoc_STR("setup($self, /, *args, **kwargs)\n--\n\n"
               "Bind the tasklet's function to the arguments and insert it.")},
    _STACKLESS_TASKLET_INSERT_METHODDEF
    _STACKLESS_TASKLET_REMOVE_METHODDEF
    {"set_atomic", _PyCFunction_CAST(tasklet_set_atomic),
     METH_FASTCALL | METH_KEYWORDS, tasklet_set_atomic__doc__},
    {"set_ignore_nesting", _PyCFunction_CAST(tasklet_set_ignore_nesting),
     METH_FASTCALL | METH_KEYWORDS, tasklet_set_ignore_nesting__doc__},
    _STACKLESS_TASKLET_BIND_THREAD_METHODDEF
    {NULL}
};

PyTypeObject PyTasklet_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.tasklet",
    .tp_basicsize = sizeof(PyTaskletObject),
    .tp_dealloc = (destructor)tasklet_dealloc,
    .tp_repr = (reprfunc)tasklet_repr,
    .tp_call = tasklet_setup,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = _stackless_tasklet___init____doc__,
    .tp_traverse = (traverseproc)tasklet_traverse,
    .tp_clear = (inquiry)tasklet_clear,
    .tp_weaklistoffset = offsetof(PyTaskletObject, weakreflist),
    .tp_methods = tasklet_methods,
    .tp_getset = tasklet_getset,
    .tp_init = _stackless_tasklet___init__,
    .tp_new = tasklet_new,
    .tp_finalize = tasklet_finalize,
};
