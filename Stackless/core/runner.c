/* The runner: where tasklets start and end.
 *
 * Each thread has a snapshot, a slice of C stack taken near its base when
 * its slp_thread was made (slp_take_snapshot()).  A hard switch to a
 * tasklet that has no C stack of its own (new, or parked by a soft
 * switch) resumes the snapshot once more, in the runner: it starts the
 * tasklet's function (a Python function: its frame pushed and run by an
 * eval loop, which switches softly; anything else: called from C), or
 * resumes the parked frames in a new eval loop (_PyStackless_RESUME).
 * Nothing but that eval loop and the runner is then under the tasklet's
 * frames on the C stack.
 *
 * A tasklet ends when its function returns or raises (S-9, S-11): its
 * result is dropped, TaskletExit is swallowed, any other exception goes
 * to the error handler or, as a bomb, to W (runqueue.c), which runs at
 * once and raises it.  If nothing is left to run and W is blocked in a
 * channel, the thread first waits, in the dead tasklet, while another
 * thread can still make one of its tasklets runnable (S-12 (2)); W gets
 * the RuntimeError of S-9 only if none can.  The dead tasklet's data
 * stack is freed and its C stack abandoned.  The eval loop returns to
 * the runner when the tasklet running in it then ends (it may not be the
 * one it started, after soft switches); the runner goes on with the next
 * tasklet if that has no C stack either, else switches to that one's
 * stack and is dropped.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_ceval.h"         // _PyEval_EvalFrameDefault()
#include "pycore_pyerrors.h"
#include "pycore_runtime.h"       // _PyRuntime

static inline void slp_call_schedule_callback(slp_thread *th,
                                          PyTaskletObject *prev,
                                          PyTaskletObject *next);

static void run_new_tasklet(slp_thread *th) SLP_NORETURN;

/* Take the snapshot new tasklets start from.  Returns normally once it is
 * taken; every start of a tasklet resumes it a second time, and then it
 * runs that tasklet and never returns. */
SLP_NOINLINE int
slp_take_snapshot(slp_thread *th)
{
    int r = slp_cstack_switch(th->cstack_base, &th->snapshot, NULL);
    if (r == 1) {
        /* th is the value it had when the snapshot was taken: ours. */
        run_new_tasklet(th);
    }
    return r;
}

/* Start a bound tasklet, made current, in the runner, with a C call of its
 * function (one that is not a Python function). */
static PyObject *
start_hard(slp_thread *th, PyTaskletObject *t)
{
    PyThreadState *tstate = th->tstate;
    tstate->context = t->context;
    t->context = NULL;
    tstate->context_ver++;
    t->state = SLP_STARTED;
    slp_after_switch_in(th, t);
    slp_restore_tracing(tstate, t);     /* new tasklets start untraced */
    /* The initial call stays in the tasklet while it runs, where the
     * collector sees it (the C variables here are borrowed). */
    PyObject *tempval = t->tempval;
    t->tempval = Py_NewRef(Py_None);
    PyObject *result;
    if (PyBomb_Check(tempval)) {
        result = slp_bomb_explode(tempval);
    }
    else {
        result = PyObject_Call(t->func, t->args, t->kwargs);
    }
    Py_DECREF(tempval);
    Py_CLEAR(t->func);
    Py_CLEAR(t->args);
    Py_CLEAR(t->kwargs);
    return result;
}

/* The runner: where the thread's snapshot resumes when a tasklet without
 * a C stack of its own is switched to by hard switching.  It starts the
 * tasklet, or resumes a parked one, in an eval loop, and gets back when
 * the tasklet that runs in that eval loop then (the same one or another,
 * after soft switches) ends.  It ends that one, and goes on with the next
 * tasklet if that has no C stack either; else it switches to that one's
 * stack and is dropped. */
static void
runner(slp_thread *th)
{
    PyThreadState *tstate = th->tstate;
    for (;;) {
        PyTaskletObject *t = th->current;
        PyObject *result;
        tstate->c_recursion_remaining = th->snapshot_c_recursion;
        if (t->soft_parked) {
            result = _PyEval_EvalFrameDefault(tstate, t->base_frame,
                                              _PyStackless_RESUME);
        }
        else {
            assert(t->state == SLP_BOUND);
            PyObject *self;
            PyFunctionObject *func = slp_soft_function(th, t, &self);
            if (func == NULL) {
                result = start_hard(th, t);
            }
            else {
                _PyInterpreterFrame *frame = slp_start_soft(th, t, func, self);
                slp_after_switch(th);
                slp_restore_tracing(tstate, t);
                if (frame == NULL) {
                    result = NULL;
                }
                else {
                    tstate->current_frame = NULL;   /* the eval loop links */
                    result = _PyEval_EvalFrameDefault(tstate, frame, 0);
                }
            }
        }
        PyTaskletObject *next = slp_end_current(th, result);
        if (!next->soft_parked && next->state != SLP_BOUND) {
            slp_hard_enter(th);
        }
    }
}

static void
run_new_tasklet(slp_thread *th)
{
    runner(th);
    Py_UNREACHABLE();
}

/* S-11: what becomes of an exception that ends a tasklet.  Returns a bomb
 * for W, or NULL if the exception was swallowed. */
static PyObject *
ending_exception(slp_thread *th)
{
    if (PyErr_ExceptionMatches(PyExc_TaskletExit)) {
        PyErr_Clear();
        return NULL;
    }
    if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
        if (_Py_IsMainInterpreter(th->tstate->interp)
            && th->thread_id == _PyRuntime.main_thread)
        {
            return slp_bomb_from_error();
        }
        if (!_Py_IsMainInterpreter(th->tstate->interp)
            && th->tstate == th->tstate->interp->threads.main)
        {
            /* The initial thread of a subinterpreter: as any error. */
        }
        else {
            PyErr_Clear();
            return NULL;
        }
    }
    slp_interp *si = th->si;
    if (si != NULL && si->error_handler != NULL) {
        PyObject *handler = Py_NewRef(si->error_handler);
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *tb = PyException_GetTraceback(exc);
        PyObject *res = PyObject_CallFunctionObjArgs(
            handler, (PyObject *)Py_TYPE(exc), exc,
            tb != NULL ? tb : Py_None, NULL);
        Py_XDECREF(tb);
        Py_DECREF(exc);
        Py_DECREF(handler);
        if (res != NULL) {
            Py_DECREF(res);
            return NULL;
        }
    }
    return slp_bomb_from_error();
}

/* The current tasklet ended, with `result` from its function (NULL: an
 * exception), in a soft context (its C stack is not needed): its state is
 * dropped and the next tasklet made current, not yet running; the caller
 * starts it, or slp_hard_enter()s it.  Returns it. */
PyTaskletObject *
slp_end_current(slp_thread *th, PyObject *result)
{
    PyTaskletObject *t = th->current;
    PyObject *bomb = NULL;

    if (result != NULL) {
        Py_DECREF(result);
    }
    else {
        bomb = ending_exception(th);
        if (bomb == NULL && PyErr_Occurred()) {
            /* No memory for the bomb: report it, nothing else to do. */
            PyErr_FormatUnraisable("Exception ending tasklet %R", t);
        }
    }

    /* The tasklet is dead: no frames, tempval None; its data stack is freed
     * by the switch, after the schedule callback.  What it held goes after
     * the switch (th->pending_drops): a finalizer may switch, which must
     * not come from a dead tasklet, nor between the choice made below and
     * the switch. */
    t->state = SLP_NEW;
    t->base_frame = NULL;
    slp_drop_after_switch(th, t->resume_value);
    t->resume_value = NULL;
    PyObject *old = t->tempval;
    t->tempval = Py_NewRef(Py_None);
    slp_drop_after_switch(th, old);
    if (t->in_runqueue) {
        slp_runqueue_remove(th, t);
    }

    PyTaskletObject *w = slp_innermost_watchdog(th);
    if (bomb == NULL && th->head == NULL && w->blocked) {
        /* S-12 (2): nothing left to run here, and W waits in a channel:
         * wait while other threads can still give us work.  (A paused W
         * resumes, threadblock or not: its tasklets are done.)  A signal
         * handler that raises there sends its exception to W, as an
         * error of this tasklet would. */
        if (slp_wait_for_work(th, 1) == -2) {
            bomb = slp_bomb_from_error();
            if (bomb == NULL) {
                PyErr_FormatUnraisable("Exception ending tasklet %R", t);
            }
        }
        w = slp_innermost_watchdog(th);
    }
    PyTaskletObject *next;
    if (bomb != NULL) {
        /* W resumes at once and raises the exception. */
        next = w;
        if (next->blocked) {
            slp_channel_remove_blocked(next);
        }
        old = next->tempval;
        next->tempval = bomb;
        slp_drop_after_switch(th, old);
    }
    else if (th->head != NULL) {
        next = th->head;
    }
    else {
        next = w;
        if (next->blocked) {
            const char *what = next->blocked > 0 ? "sending" : "receiving";
            const char *who = next->blocked > 0 ? "receiver" : "sender";
            slp_channel_remove_blocked(next);
            PyErr_Format(PyExc_RuntimeError,
                         "the main tasklet is %s without a %s available.",
                         what, who);
            old = next->tempval;
            next->tempval = slp_bomb_from_error();
            slp_drop_after_switch(th, old);
        }
    }
    next = slp_switch_prologue(th, t, next);
    slp_drop_state(th);
    assert(th->pending_decref == NULL);
    th->pending_decref = (PyObject *)t;
    slp_set_current(th, (PyTaskletObject *)Py_NewRef(next));
    return next;
}
