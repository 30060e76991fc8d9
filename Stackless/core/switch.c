/* The switch: what every switch does, and the hard switch.
 *
 * A switch is made in three steps:
 *   1. the caller puts the current tasklet where it belongs: left in the
 *      runqueue (schedule), in a channel's queue (blocking), in no chain
 *      (paused: schedule_remove, switch, run);
 *   2. slp_switch_prologue() (stackless_impl.h): the watchdog of a soft
 *      run() may take the place of the tasklet switched to, which becomes
 *      the head of the runqueue; the schedule callback is called (D-3);
 *   3. the switch itself.  A hard one (slp_switch_to() here) saves the
 *      thread-state fields of the current tasklet (execstate.c) and
 *      installs those of the next one, and switches the C stack
 *      (cstack.c): the slice between the tasklet's stack pointer and the
 *      thread's stack base is copied out, the next one's copied in.  A
 *      tasklet without a C stack of its own (new, or parked by a soft
 *      switch) is entered at the thread's snapshot instead, where the
 *      runner (runner.c) starts or resumes it.  A soft one
 *      (softswitch.c) parks frames and leaves the C stack alone.
 * The code that resumes returns from its own slp_switch_to() with its
 * tempval: the value it was sent, or a bomb, which is raised.
 *
 * Trace and profile functions belong to the tasklet (D-1): the leaving
 * tasklet's are saved in its `extra`, the resuming one's installed.
 *
 * References: th->current is a strong reference.  The old current's is
 * dropped by the code that resumes after a switch (th->pending_decref,
 * slp_after_switch()), never on the stack of a tasklet that is leaving.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_ceval.h"         // _PyEval_SetTrace()
#include "pycore_pyerrors.h"

int
slp_switch_trap_error(slp_thread *th)
{
    if (th->switch_trap > 0) {
        PyErr_SetString(PyExc_RuntimeError, "switch_trap");
        return -1;
    }
    /* The collector keeps lists of objects whose heads are on the C stack
     * of the tasklet running it: code of another tasklet would write into
     * them through the objects, where that tasklet's stack is now.  The
     * tasklets of other threads, which a finalizer that releases the GIL
     * lets run, switch on stacks of their own. */
    if (slp_collecting(th->tstate)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot switch tasklets during garbage collection");
        return -1;
    }
    return 0;
}

void
slp_call_schedule_callback_slow(slp_interp *si, slp_thread *th,
                            PyTaskletObject *prev, PyTaskletObject *next)
{
    PyObject *cb = Py_NewRef(si->schedule_callback);
    PyObject *exc = PyErr_GetRaisedException();
    th->switch_trap++;
    slp_schedule_hook_func *hook = slp_schedule_hook_of(cb);
    if (hook != NULL) {
        /* A C hook (PyStackless_SetScheduleFastcallback()). */
        if (hook(prev, next) != 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError,
                                "the schedule hook failed");
            }
            PyErr_FormatUnraisable("Error in scheduling callback");
        }
    }
    else {
        PyObject *res = PyObject_CallFunctionObjArgs(
            cb, prev != NULL ? (PyObject *)prev : Py_None,
            next != NULL ? (PyObject *)next : Py_None, NULL);
        if (res == NULL) {
            PyErr_FormatUnraisable("Error in scheduling callback %R", cb);
        }
        Py_XDECREF(res);
    }
    th->switch_trap--;
    Py_DECREF(cb);
    PyErr_SetRaisedException(exc);
}

/* A C schedule hook is kept where the Python callback is, in a capsule,
 * so that a switch tests one field for both. */
#define SCHEDULE_HOOK_NAME "_stackless.schedule_hook"

slp_schedule_hook_func *
slp_schedule_hook_of(PyObject *cb)
{
    if (cb == NULL || !PyCapsule_CheckExact(cb)
        || !PyCapsule_IsValid(cb, SCHEDULE_HOOK_NAME))
    {
        return NULL;
    }
    return (slp_schedule_hook_func *)PyCapsule_GetPointer(
        cb, SCHEDULE_HOOK_NAME);
}

int
slp_set_schedule_hook(slp_interp *si, slp_schedule_hook_func *func)
{
    PyObject *cb = NULL;
    if (func != NULL) {
        cb = PyCapsule_New((void *)func, SCHEDULE_HOOK_NAME, NULL);
        if (cb == NULL) {
            return -1;
        }
    }
    Py_XSETREF(si->schedule_callback, cb);
    slp_interp_changed(si);
    return 0;
}

/* D-1: trace and profile functions belong to the tasklet.  Nothing to do
 * in the common case, where neither tasklet traces. */
static void
install_tracing(PyThreadState *tstate, Py_tracefunc func, PyObject *obj,
                int profile)
{
    int r;
    if (func == NULL && obj != NULL) {
        /* A Python function given through tasklet.trace_function. */
        r = slp_sys_sethook(obj, profile);
    }
    else if (profile) {
        r = _PyEval_SetProfile(tstate, func, obj);
    }
    else {
        r = _PyEval_SetTrace(tstate, func, obj);
    }
    if (r < 0) {
        PyErr_FormatUnraisable("Exception setting the %s function of a "
                               "tasklet", profile ? "profile" : "trace");
    }
}

int
slp_sys_sethook(PyObject *func, int profile)
{
    PyObject *sys = PyImport_ImportModule("sys");
    if (sys == NULL) {
        return -1;
    }
    PyObject *res = PyObject_CallMethod(
        sys, profile ? "setprofile" : "settrace", "O", func);
    Py_DECREF(sys);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* Before a switch: the leaving tasklet keeps its hooks.  The thread
 * state keeps them too until the tasklet that resumes puts its own in
 * place: installing hooks walks the frame chain, which is only valid on
 * its own C stack. */
SLP_NOINLINE void
slp_save_tracing_slow(PyThreadState *tstate, PyTaskletObject *prev)
{
    slp_tasklet_extra *x = prev->extra;
    if (x == NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        x = slp_tasklet_extra_get(prev);
        if (x == NULL) {
            PyErr_FormatUnraisable("Exception saving the trace function of "
                                   "tasklet %R", prev);
        }
        PyErr_SetRaisedException(exc);
        if (x == NULL) {
            return;
        }
    }
    x->trace_func = tstate->c_tracefunc;
    Py_XSETREF(x->trace_obj, Py_XNewRef(tstate->c_traceobj));
    x->profile_func = tstate->c_profilefunc;
    Py_XSETREF(x->profile_obj, Py_XNewRef(tstate->c_profileobj));
}

/* After a switch, in the tasklet that resumes (or starts). */
SLP_NOINLINE void
slp_restore_tracing_slow(PyThreadState *tstate, PyTaskletObject *me)
{
    PyObject *exc = PyErr_GetRaisedException();
    slp_tasklet_extra *x = me->extra;
    Py_tracefunc func = NULL, pfunc = NULL;
    PyObject *obj = NULL, *pobj = NULL;
    if (x != NULL) {
        func = x->trace_func;
        pfunc = x->profile_func;
        obj = x->trace_obj;
        pobj = x->profile_obj;
        x->trace_func = x->profile_func = NULL;
        x->trace_obj = x->profile_obj = NULL;
    }
    if (tstate->c_tracefunc != func || tstate->c_traceobj != obj
        || (func == NULL && obj != NULL))
    {
        install_tracing(tstate, func, obj, 0);
    }
    if (tstate->c_profilefunc != pfunc || tstate->c_profileobj != pobj
        || (pfunc == NULL && pobj != NULL))
    {
        install_tracing(tstate, pfunc, pobj, 1);
    }
    Py_XDECREF(obj);
    Py_XDECREF(pobj);
    PyErr_SetRaisedException(exc);
}

/* Take a resumed tasklet's tempval: the value its switch returns. */
static PyObject *
take_tempval(PyTaskletObject *t)
{
    PyObject *val = t->tempval;
    t->tempval = Py_NewRef(Py_None);
    if (PyBomb_Check(val)) {
        slp_bomb_explode(val);
        Py_DECREF(val);
        return NULL;
    }
    return val;
}

/* The state of a tasklet that ended is dropped from the thread state.  The
 * caller has chosen the next tasklet: the context and the handled
 * exception, whose finalizers may switch, go after the switch to it. */
void
slp_drop_state(slp_thread *th)
{
    slp_execstate st = {0};
    slp_cstate cst = {0};
    slp_execstate_save(th->tstate, &st, &cst);
    slp_drop_after_switch(th, st.context);
    st.context = NULL;
    slp_drop_after_switch(th, st.exc_state.exc_value);
    st.exc_state.exc_value = NULL;
    slp_execstate_clear(&st);
    slp_cstate_free(&cst);
}

void
slp_drop_pending(slp_thread *th, PyObject *ob)
{
    PyObject *drops[SLP_PENDING_DROPS];
    int n = th->npending_drops;
    for (int i = 0; i < n; i++) {
        drops[i] = th->pending_drops[i];
        th->pending_drops[i] = NULL;
    }
    th->npending_drops = 0;
    Py_XDECREF(ob);
    for (int i = 0; i < n; i++) {
        Py_DECREF(drops[i]);
    }
}

/* Where the C stack goes to run `next`, which is not running: its own
 * saved stack, or the runner's snapshot for a tasklet that has none (new,
 * or soft-switched).  Installs its thread-state fields, or, for the
 * runner, an empty state that the runner fills. */
static const slp_cstack *
enter_target(slp_thread *th, PyTaskletObject *next)
{
    PyThreadState *tstate = th->tstate;
    if (next->state == SLP_STARTED && !next->soft_parked) {
        assert(next->extra != NULL);
        slp_execstate_restore(tstate, &next->exec, &next->extra->cstate);
        return &next->extra->cstack;
    }
    slp_execstate st;
    slp_cstate cst;
    slp_execstate_init(&st, NULL);
    slp_cstate_init(&cst, th->snapshot_c_recursion);
    slp_execstate_restore(tstate, &st, &cst);
    return &th->snapshot;
}

/* Run th->current, whose C stack is not here, dropping the running C
 * stack (a soft-switched tasklet's or a dead one's).  Never returns. */
void
slp_hard_enter(slp_thread *th) SLP_NORETURN;

void
slp_hard_enter(slp_thread *th)
{
    slp_serial_after_jump(th, th->current, 1);
    const slp_cstack *target = enter_target(th, th->current);
    slp_cstack_switch(th->cstack_base, NULL, target);
    Py_FatalError("Stackless: a dropped C stack was resumed");
}

/* The C stack below the place where slp_switch_reserve() is called that
 * a switch begun there may take: the calls down to the copy of the stack
 * (slp_switch_to_soft(), slp_switch_to(), slp_cstack_switch() and the
 * platform's switch), with room to spare. */
#ifdef Py_DEBUG
#  define SWITCH_SLACK (16 * 1024)
#else
#  define SWITCH_SLACK (4 * 1024)
#endif

int
slp_switch_reserve(slp_thread *th)
{
    PyTaskletObject *cur = th->current;
    slp_tasklet_extra *x = slp_tasklet_extra_get(cur);
    if (x == NULL) {
        return -1;
    }
    if (slp_cstack_reserve(&x->cstack, th->cstack_base, SWITCH_SLACK) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    /* Its cstack object, which the ring shows (spec M-21.3). */
    if (slp_cstack_object_prepare(th, cur) < 0) {
        return -1;
    }
    /* Room to hide the entry frames of its chain (execstate.c). */
    int n = 0;
    for (_PyInterpreterFrame *f = th->tstate->current_frame; f != NULL;
         f = f->previous)
    {
        n += f->owner == FRAME_OWNED_BY_CSTACK;
    }
    if (slp_cstate_reserve(&x->cstate, n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* A hard switch from `prev`, the current tasklet, failed before anything
 * was done (no memory to save its C stack): the caller's step 1 is
 * undone, as far as it is known here.  prev stays current and runnable,
 * out of the channel it was to block on, its tempval None. */
static void
switch_failed(slp_thread *th, PyTaskletObject *prev)
{
    PyObject *exc = PyErr_GetRaisedException();
    if (prev->blocked) {
        slp_channel_remove_blocked(prev);   /* `current` keeps it alive */
    }
    if (!prev->in_runqueue) {
        slp_runqueue_append(th, prev);
    }
    th->head = prev;
    Py_SETREF(prev->tempval, Py_NewRef(Py_None));
    PyErr_SetRaisedException(exc);
}

/* A hard switch from the running tasklet, which keeps its C stack. */
static PyObject *
do_switch(slp_thread *th, PyTaskletObject *next)
{
    PyThreadState *tstate = th->tstate;
    PyTaskletObject *prev = th->current;
    _PyInterpreterFrame *calling = th->calling_frame;

    if (slp_check_transfer(th, next) < 0 || slp_switch_reserve(th) < 0) {
        /* Nothing is done yet: the caller's step 1 is undone. */
        switch_failed(th, prev);
        return NULL;
    }
    next = slp_switch_prologue(th, prev, next);
    /* Switched by a builtin that its CALL called (stackdepth.c)? */
    _PyInterpreterFrame *top = tstate->current_frame;
    prev->extra->cstate.calling_frame =
        top != NULL && (slp_softcall_active(tstate)
                        || th->calling_frame == top) ? top : NULL;
    prev->extra->cstate.switched_in_c =
        top != NULL && prev->extra->cstate.calling_frame == NULL
        && !th->preempting;
    th->preempting = 0;
    slp_execstate_save(tstate, &prev->exec, &prev->extra->cstate);
    prev->soft_parked = 0;
    /* Where 3.7 would have parked it softly (spec M-21.2). */
    prev->extra->cs_obj->soft_equiv =
        slp_soft_enabled(th, tstate->interp)
        && !prev->extra->cstate.switched_in_c
        && prev->extra->cstate.nhidden <= 1;
    slp_cstack *save = &prev->extra->cstack;
    slp_serial_after_jump(th, next, 0);
    const slp_cstack *target = enter_target(th, next);
    slp_save_tracing(tstate, prev);
    assert(th->pending_decref == NULL);
    th->pending_decref = (PyObject *)prev;  /* the old current's reference */
    slp_set_current(th, (PyTaskletObject *)Py_NewRef(next));

    if (slp_cstack_switch(th->cstack_base, save, target) < 0) {
        Py_FatalError("Stackless: out of memory saving a tasklet's C stack");
    }
    /* Resumed: somebody switched back to prev. */
    th->calling_frame = calling;
    slp_after_switch_in(th, prev);
    assert(th->current == prev);
    if (th->exit_main && prev == th->main) {
        /* The interpreter exits (kill_other_threads()). */
        th->exit_main = 0;
        PyObject *bomb = slp_bomb_from_raise_args(PyExc_TaskletExit, NULL,
                                                  NULL);
        if (bomb != NULL) {
            Py_SETREF(prev->tempval, bomb);
        }
    }
    if (slp_reinstrument(tstate, &prev->exec) < 0) {
        PyErr_FormatUnraisable("Exception instrumenting a resumed tasklet");
    }
    slp_restore_tracing(tstate, prev);
    return take_tempval(prev);
}

PyObject *
slp_switch_to(slp_thread *th, PyTaskletObject *next)
{
    if (next == th->current) {
        /* Made runnable again while its thread waited (S-12). */
        if (!next->in_runqueue) {
            slp_runqueue_append(th, next);
        }
        th->head = next;
        return take_tempval(next);
    }
    return do_switch(th, next);
}
