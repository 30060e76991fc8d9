/* The scheduler: one runqueue per OS thread, and the switch.
 *
 * Design
 * ------
 * Each thread that uses stackless gets an slp_thread, hung on its
 * PyThreadState (patch thread-state-hooks.patch).  It is made on first
 * use, together with the thread's main tasklet, which stands for the code
 * that was already running: it is current and alone in the runqueue.
 *
 * The runqueue is a circular list of tasklets linked by next/prev; `head`
 * is the tasklet running now or, while a switch is under way, the one to
 * run next.  Appending puts a tasklet just before head, so it runs last
 * in this cycle.  Between operations the invariant is
 *
 *     current is runnable  <=>  head == current
 *
 * and a switch restores it: the tasklet switched to becomes head (it is
 * inserted there if it was in no chain).  `runcount` counts the runqueue.
 *
 * A switch (slp_switch_to) is made in three steps:
 *   1. the caller puts the current tasklet where it belongs: left in the
 *      runqueue (schedule), in a channel's queue (blocking), in no chain
 *      (paused: schedule_remove, switch, run);
 *   2. the thread-state fields of the current tasklet are saved
 *      (execstate.c) and those of the next one installed;
 *   3. the C stack is switched (cstack.c): hard switching, the slice of
 *      the C stack between the tasklet's stack pointer and the thread's
 *      stack base is copied out and the next one's copied in.  A tasklet
 *      that never ran starts from the thread's snapshot, a stack slice
 *      taken near the base when the thread's state was made; it calls
 *      its function from there and never returns into C code below.
 * The code that resumes returns from its own slp_switch_to with its
 * tempval: the value it was sent, or a bomb, which is raised.
 *
 * Who runs when the current tasklet leaves the runqueue (blocking,
 * schedule_remove, run, ending): the head, if the runqueue is not empty;
 * else W, the innermost watchdog (a tasklet inside run()) or main, if W
 * is paused; else the operation fails with "Deadlock" and the tasklet
 * stays where it was (spec S-12).
 *
 * A tasklet ends when its function returns or raises (S-9, S-11): its
 * result is dropped, TaskletExit is swallowed, any other exception goes
 * to the error handler or, as a bomb, to W, which runs at once and raises
 * it.  The dead tasklet's data stack is freed and its C stack abandoned.
 *
 * Reference counts: `current` is a strong reference, and the runqueue
 * holds one per tasklet.  The old current's reference is dropped by the
 * code that resumes after a switch (th->pending_decref), never on the stack
 * of a tasklet that is leaving it.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_ceval.h"         // _Py_set_eval_breaker_bit()
#include "pycore_interp.h"
#include "pycore_pyerrors.h"
#include "pycore_tstate.h"        // _PyThreadStateImpl
#include "opcode.h"               // NB_ADD
#include "pycore_opcode_utils.h"  // RESUME, JUMP_BACKWARD
#include "pycore_code.h"          // _Py_GetBaseOpcode()
#include "pycore_opcode_metadata.h"   // _PyOpcode_Caches
#include "pycore_frame.h"         // _PyFrame_PushTrampolineUnchecked()
#include "pycore_genobject.h"     // _PyGen_SetStopIterationValue()
#include "pycore_long.h"          // _PyLong_GetZero()

/* Drop the reference the old current held, once the switch is made. */
static inline void
after_switch(slp_thread *th)
{
    PyObject *ob = th->pending_decref;
    th->pending_decref = NULL;
    Py_XDECREF(ob);
}

/* A thread used tasklets (pycore_stackless.h). */
int _PyStackless_InUse = 0;

/* --- per-interpreter state -------------------------------------------- */

slp_interp *
slp_get_interp(PyInterpreterState *interp)
{
    slp_interp *si = interp->stackless;
    if (si == NULL) {
        si = PyMem_RawCalloc(1, sizeof(slp_interp));
        if (si == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        si->soft_switch = 1;
        slp_interp_changed(si);
        interp->stackless = si;
    }
    return si;
}

void
_PyStackless_InterpClear(PyInterpreterState *interp)
{
    slp_interp *si = interp->stackless;
    if (si == NULL) {
        return;
    }
    Py_CLEAR(si->schedule_callback);
    Py_CLEAR(si->channel_callback);
    slp_interp_changed(si);
    Py_CLEAR(si->error_handler);
    Py_CLEAR(si->gen_shim);
    Py_CLEAR(si->gen_default_shim);
    Py_CLEAR(si->context_shim);
    Py_CLEAR(si->send_sequence_shim);
    interp->stackless = NULL;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        slp_thread *th = slp_thread_of(ts);
        if (th != NULL) {
            th->si = NULL;
        }
    }
    PyMem_RawFree(si);
}

/* --- the runqueue ------------------------------------------------------- */

void
slp_runqueue_insert_next(slp_thread *th, PyTaskletObject *t)
{
    if (th->head == NULL) {
        slp_runqueue_append(th, t);
    }
    else {
        Py_INCREF(t);
        slp_runqueue_link_after(th, th->head, t);
    }
}

/* --- started tasklets ----------------------------------------------------- */

void
slp_owned_link(slp_thread *th, PyTaskletObject *t)
{
    t->owned_prev = NULL;
    t->owned_next = th->owned;
    if (th->owned != NULL) {
        th->owned->owned_prev = t;
    }
    th->owned = t;
}

void
slp_owned_unlink(PyTaskletObject *t)
{
    slp_thread *th = t->thread;
    if (t->owned_prev != NULL) {
        t->owned_prev->owned_next = t->owned_next;
    }
    else if (th != NULL && th->owned == t) {
        th->owned = t->owned_next;
    }
    if (t->owned_next != NULL) {
        t->owned_next->owned_prev = t->owned_prev;
    }
    t->owned_next = t->owned_prev = NULL;
}

void
slp_runqueue_remove(slp_thread *th, PyTaskletObject *t)
{
    slp_runqueue_unlink(th, t);
    Py_DECREF(t);
}

/* --- thread state ------------------------------------------------------- */

static PyTaskletObject *
new_main_tasklet(slp_thread *th)
{
    PyTaskletObject *t = (PyTaskletObject *)PyTasklet_Type.tp_alloc(
        &PyTasklet_Type, 0);
    if (t == NULL) {
        return NULL;
    }
    t->tempval = Py_NewRef(Py_None);
    t->thread = th;
    t->thread_id = th->thread_id;
    t->state = SLP_STARTED;
    t->is_main = 1;
    return t;
}

static void run_new_tasklet(slp_thread *th) SLP_NORETURN;
static inline void call_schedule_callback(slp_thread *th,
                                          PyTaskletObject *prev,
                                          PyTaskletObject *next);

/* Take the snapshot new tasklets start from.  Returns normally once it is
 * taken; every start of a tasklet resumes it a second time, and then it
 * runs that tasklet and never returns. */
static SLP_NOINLINE int
take_snapshot(slp_thread *th)
{
    int r = slp_cstack_switch(th->cstack_base, &th->snapshot, NULL);
    if (r == 1) {
        /* th is the value it had when the snapshot was taken: ours. */
        run_new_tasklet(th);
    }
    return r;
}

SLP_NOINLINE slp_thread *
slp_thread_init(PyThreadState *tstate)
{
    /* The stack base: above take_snapshot()'s frame, which is below ours. */
    char base_marker = 0;
    slp_thread *th = PyMem_RawCalloc(1, sizeof(slp_thread));
    if (th == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    _PyStackless_InUse = 1;
    th->tstate = tstate;
    th->thread_id = tstate->thread_id;
    th->tick_budget = -1;
    th->cstack_base = &base_marker;
    th->watchdogs = PyList_New(0);
    slp_interp *si = slp_get_interp(tstate->interp);
    if (th->watchdogs == NULL || si == NULL) {
        goto error;
    }
    th->wakeup = PyThread_allocate_lock();
    if (th->wakeup == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    PyThread_acquire_lock(th->wakeup, WAIT_LOCK);
    th->si = si;
    th->pickle_flags = si->pickle_flags_default;
    th->main = new_main_tasklet(th);
    if (th->main == NULL) {
        goto error;
    }
    th->current = (PyTaskletObject *)Py_NewRef(th->main);
    slp_runqueue_append(th, th->main);
    ((_PyThreadStateImpl *)tstate)->stackless = th;
    th->snapshot_c_recursion = tstate->c_recursion_remaining;
    if (take_snapshot(th) < 0) {
        ((_PyThreadStateImpl *)tstate)->stackless = NULL;
        PyErr_NoMemory();
        goto error;
    }
    (void)base_marker;
    /* D-3: cb(None, main) when a main tasklet starts. */
    call_schedule_callback(th, NULL, th->main);
    return th;

error:
    if (th->main != NULL) {
        if (th->main->in_runqueue) {
            slp_runqueue_remove(th, th->main);
        }
        th->main->thread = NULL;
        Py_CLEAR(th->current);
        Py_CLEAR(th->main);
    }
    Py_XDECREF(th->watchdogs);
    if (th->wakeup != NULL) {
        PyThread_free_lock(th->wakeup);
    }
    PyMem_RawFree(th->depth_cache);
    PyMem_RawFree(th);
    return NULL;
}

int
slp_thread_state_by_id(PyObject *thread_id, PyThreadState **result)
{
    PyThreadState *tstate = _PyThreadState_GET();
    *result = NULL;
    if (thread_id == NULL) {
        *result = tstate;
        return 0;
    }
    if (!PyLong_Check(thread_id)) {
        PyErr_SetString(PyExc_TypeError, "thread_id must be an integer");
        return -1;
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(thread_id, &overflow);
    if (v == -1 && !overflow) {
        if (PyErr_Occurred()) {
            return -1;
        }
        *result = tstate;
        return 0;
    }
    unsigned long tid = PyLong_AsUnsignedLongMask(thread_id);
    if (tid == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(tstate->interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        if (ts->thread_id == tid) {
            *result = ts;
            break;
        }
    }
    return 0;
}

slp_thread *
slp_thread_of(PyThreadState *tstate)
{
    return ((_PyThreadStateImpl *)tstate)->stackless;
}

slp_thread *
slp_get_thread(void)
{
    return slp_get_thread_of(_PyThreadState_GET());
}

/* Kill t, a suspended tasklet of the calling thread with a C stack, until
 * it ends: at most 10 times, as it may catch TaskletExit (T-15).  Errors
 * are reported as unraisable.  If it still lives, is paused, and the
 * caller's reference is the only one, it goes to gc.garbage.  Returns 1
 * if it still lives. */
int
slp_kill_hard(PyTaskletObject *t, const char *when)
{
    Py_INCREF(t);
    for (int i = 0; i < 10 && t->state == SLP_STARTED && t->thread != NULL
                    && t != t->thread->current; i++)
    {
        PyObject *res = PyObject_CallMethod((PyObject *)t, "kill", NULL);
        if (res == NULL) {
            PyErr_FormatUnraisable("Exception killing tasklet %R%s", t, when);
        }
        Py_XDECREF(res);
    }
    Py_DECREF(t);
    if (t->state != SLP_STARTED) {
        return 0;
    }
    if (!t->in_runqueue && !t->blocked && Py_REFCNT(t) == 1) {
        slp_to_garbage(t);
    }
    return 1;
}

/* Kill the started tasklets of the calling thread, so that their
 * `finally` clauses run while the thread can still run code. */
void
slp_kill_started(slp_thread *th)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *victims = PyList_New(0);
    if (victims == NULL) {
        PyErr_FormatUnraisable("Exception ending the tasklets of a thread");
        PyErr_SetRaisedException(exc);
        return;
    }
    for (PyTaskletObject *t = th->owned; t != NULL; t = t->owned_next) {
        if (t != th->current && t->state == SLP_STARTED
            && PyList_Append(victims, (PyObject *)t) < 0)
        {
            PyErr_FormatUnraisable("Exception ending the tasklets of a thread");
            break;
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(victims); i++) {
        slp_kill_hard((PyTaskletObject *)PyList_GET_ITEM(victims, i),
                      " at the end of its thread");
    }
    Py_DECREF(victims);
    PyErr_SetRaisedException(exc);
}

/* The thread ends (X-5): its tasklets with a C stack are killed if the
 * thread can still run code, the others become threadless. */
void
_PyStackless_ThreadClear(PyThreadState *tstate)
{
    slp_thread *th = slp_thread_of(tstate);
    if (th == NULL) {
        return;
    }
    if (tstate == _PyThreadState_GET() && th->current == th->main
        && !_PyInterpreterState_GetFinalizing(tstate->interp))
    {
        slp_kill_started(th);
    }
    /* Whatever is left loses its thread; C stacks are abandoned. */
    while (th->owned != NULL) {
        PyTaskletObject *t = th->owned;
        slp_owned_unlink(t);
        t->thread = NULL;
    }
    /* Unlink the runqueue; tasklets blocked in channels stay there. */
    while (th->head != NULL) {
        PyTaskletObject *t = th->head;
        slp_runqueue_unlink(th, t);
        t->thread = NULL;
        Py_DECREF(t);
    }
    if (th->main != NULL) {
        th->main->thread = NULL;
    }
    if (th->current != NULL) {
        th->current->thread = NULL;
    }
    Py_CLEAR(th->interrupted);
    Py_CLEAR(th->to_kill);
    Py_CLEAR(th->watchdogs);
    Py_CLEAR(th->current);
    Py_CLEAR(th->main);
}

/* Ask the other threads that use stackless (daemon threads still running
 * at shutdown) to end their tasklets: TaskletExit in the running one,
 * pending kills for main and the watchdogs.  Returns how many threads
 * were asked. */
/* Some other thread of the interpreter still has a main tasklet. */
static int
other_tasklets_live(PyThreadState *tstate)
{
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(tstate->interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        slp_thread *th = slp_thread_of(ts);
        if (ts != tstate && th != NULL && th->main != NULL) {
            return 1;
        }
    }
    return 0;
}

static int
kill_other_threads(PyThreadState *tstate)
{
    int asked = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(tstate->interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        slp_thread *th = slp_thread_of(ts);
        if (ts == tstate || th == NULL || th->main == NULL) {
            continue;
        }
        asked++;
        /* The exception goes to whatever tasklet runs there next, which
         * may not be main if main switches first: main then gets it
         * when it resumes. */
        PyThreadState_SetAsyncExc(ts->thread_id, PyExc_TaskletExit);
        if (th->current == th->main) {
            th->exit_main = 1;
        }
        PyObject *targets = PyList_New(0);
        if (targets == NULL) {
            PyErr_Clear();
            continue;
        }
        if (PyList_Append(targets, (PyObject *)th->main) < 0
            || (th->watchdogs != NULL
                && PyList_SetSlice(targets, 1, 1, th->watchdogs) < 0))
        {
            PyErr_Clear();
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(targets); i++) {
            PyTaskletObject *t = (PyTaskletObject *)PyList_GET_ITEM(targets, i);
            if (t == th->current || t->state != SLP_STARTED) {
                continue;
            }
            PyObject *res = PyObject_CallMethod((PyObject *)t, "kill", "i", 1);
            if (res == NULL) {
                PyErr_Clear();
            }
            Py_XDECREF(res);
        }
        Py_DECREF(targets);
    }
    return asked;
}

/* Interpreter shutdown (X-6), after atexit: the calling thread's tasklets
 * with a C stack are killed while modules still work; daemon threads
 * still running tasklets are asked to end them, and get a few short time
 * slices to do so. */
void
_PyStackless_Finalize(PyThreadState *tstate)
{
    slp_thread *th = slp_thread_of(tstate);
    if (th != NULL && th->current == th->main) {
        slp_kill_started(th);
    }
    PyObject *exc = PyErr_GetRaisedException();
    if (kill_other_threads(tstate) > 0) {
        /* Up to half a second, in slices of 10 ms, while they take the GIL
         * and run their handlers; a loaded machine needs more than a few
         * slices.  A thread that ignores TaskletExit is not waited for
         * longer than that. */
        for (int i = 0; i < 50 && other_tasklets_live(tstate); i++) {
            Py_BEGIN_ALLOW_THREADS
            PyThread_type_lock lock = PyThread_allocate_lock();
            if (lock != NULL) {
                PyThread_acquire_lock(lock, WAIT_LOCK);
                PyThread_acquire_lock_timed(lock, 10 * 1000, 0);
                PyThread_release_lock(lock);
                PyThread_free_lock(lock);
            }
            Py_END_ALLOW_THREADS
        }
    }
    PyErr_SetRaisedException(exc);
}

void
_PyStackless_ThreadDelete(PyThreadState *tstate)
{
    slp_thread *th = slp_thread_of(tstate);
    if (th == NULL) {
        return;
    }
    /* Tasklets that outlive the thread must not point at it. */
    ((_PyThreadStateImpl *)tstate)->stackless = NULL;
    slp_cstack_clear(&th->snapshot);
    if (th->spare_chunk != NULL) {
        free(th->spare_chunk);
        th->spare_chunk = NULL;
    }
    if (th->wakeup != NULL) {
        PyThread_release_lock(th->wakeup);
        PyThread_free_lock(th->wakeup);
    }
    PyMem_RawFree(th->depth_cache);
    PyMem_RawFree(th);
}

/* --- switching ---------------------------------------------------------- */

int
slp_switch_trap_error(slp_thread *th)
{
    if (th->switch_trap > 0) {
        PyErr_SetString(PyExc_RuntimeError, "switch_trap");
        return -1;
    }
    /* The collector keeps lists of objects whose heads are on the C stack
     * of the tasklet running it: code of another tasklet would write into
     * them through the objects, where that tasklet's stack is now. */
    if (th->tstate->interp->gc.collecting) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot switch tasklets during garbage collection");
        return -1;
    }
    return 0;
}

static void
call_schedule_callback_slow(slp_interp *si, slp_thread *th,
                            PyTaskletObject *prev, PyTaskletObject *next)
{
    PyObject *cb = Py_NewRef(si->schedule_callback);
    PyObject *exc = PyErr_GetRaisedException();
    th->switch_trap++;
    PyObject *res = PyObject_CallFunctionObjArgs(
        cb, prev != NULL ? (PyObject *)prev : Py_None,
        next != NULL ? (PyObject *)next : Py_None, NULL);
    th->switch_trap--;
    if (res == NULL) {
        PyErr_FormatUnraisable("Error in scheduling callback %R", cb);
    }
    Py_XDECREF(res);
    Py_DECREF(cb);
    PyErr_SetRaisedException(exc);
}

static inline void
call_schedule_callback(slp_thread *th, PyTaskletObject *prev,
                       PyTaskletObject *next)
{
    slp_interp *si = th->si;
    if (si != NULL && si->schedule_callback != NULL) {
        call_schedule_callback_slow(si, th, prev, next);
    }
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
static SLP_NOINLINE void
save_tracing_slow(PyThreadState *tstate, PyTaskletObject *prev)
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

static inline void
save_tracing(PyThreadState *tstate, PyTaskletObject *prev)
{
    if (tstate->c_tracefunc != NULL || tstate->c_profilefunc != NULL
        || (prev->extra != NULL
            && (prev->extra->trace_obj != NULL
                || prev->extra->profile_obj != NULL)))
    {
        save_tracing_slow(tstate, prev);
    }
}

/* After a switch, in the tasklet that resumes (or starts). */
static SLP_NOINLINE void
restore_tracing_slow(PyThreadState *tstate, PyTaskletObject *me)
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

static inline void
restore_tracing(PyThreadState *tstate, PyTaskletObject *me)
{
    if (tstate->c_tracefunc != NULL || tstate->c_profilefunc != NULL
        || me->extra != NULL)
    {
        restore_tracing_slow(tstate, me);
    }
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

/* The common part of every switch.  `dead`: the current tasklet ended,
 * its state is cleared and its stack is not kept. */
static int is_paused(PyTaskletObject *t);

/* run(timeout, soft=True) expired: at the next voluntary switch its
 * watchdog resumes instead of the next tasklet, which stays runnable
 * (S-5).  Returns that watchdog, or NULL. */
static PyTaskletObject *
soft_watchdog(slp_thread *th, PyTaskletObject *prev)
{
    if (!th->soft_expired || th->timer_level >= PyList_GET_SIZE(th->watchdogs)) {
        return NULL;
    }
    PyTaskletObject *w = (PyTaskletObject *)PyList_GET_ITEM(
        th->watchdogs, th->timer_level);
    return w != prev && is_paused(w) ? w : NULL;
}

/* --- who runs next ------------------------------------------------------ */

static PyTaskletObject *
innermost_watchdog(slp_thread *th)
{
    Py_ssize_t n = th->watchdogs != NULL ? PyList_GET_SIZE(th->watchdogs) : 0;
    if (n > 0) {
        return (PyTaskletObject *)PyList_GET_ITEM(th->watchdogs, n - 1);
    }
    return th->main;
}

static int
is_paused(PyTaskletObject *t)
{
    return !t->in_runqueue && t->blocked == 0;
}

static int
other_threads_exist(slp_thread *th)
{
    PyInterpreterState *interp = th->tstate->interp;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp);
         ts != NULL; ts = PyThreadState_Next(ts))
    {
        if (ts != th->tstate) {
            return 1;
        }
    }
    return 0;
}

/* Wait, without the GIL, until another thread makes one of our tasklets
 * runnable (slp_wake_thread).  Returns -1 if no other thread is left. */
static int
wait_for_work(slp_thread *th)
{
    while (th->head == NULL) {
        if (!other_threads_exist(th)) {
            return -1;
        }
        th->waiting = 1;
        Py_BEGIN_ALLOW_THREADS
        /* Poll now and then: the other threads may end without a word. */
        PyThread_acquire_lock_timed(th->wakeup, 100 * 1000, 0);
        Py_END_ALLOW_THREADS
        th->waiting = 0;
        if (PyErr_CheckSignals() < 0) {
            return -2;
        }
    }
    return 0;
}

void
slp_wake_thread(slp_thread *th)
{
    if (th->waiting) {
        th->waiting = 0;
        PyThread_release_lock(th->wakeup);
    }
}

PyTaskletObject *
slp_next_after_leaving(slp_thread *th, PyTaskletObject *leaving)
{
    if (th->head != NULL) {
        return th->head;
    }
    PyTaskletObject *w = innermost_watchdog(th);
    if (w != NULL && is_paused(w)) {
        return w;       /* may be `leaving` itself: it resumes at once */
    }
    int r = wait_for_work(th);
    if (r == 0) {
        return th->head;
    }
    if (r == -1) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Deadlock: the last runnable tasklet cannot be blocked.");
    }
    return NULL;
}

/* Take a tasklet out of the channel it waits in (for kill, throw and the
 * end of the last tasklet). */
extern void slp_channel_remove_blocked(PyTaskletObject *t);

/* The first part of every switch: the watchdog of a soft run() may take
 * the place of `next`; next becomes the head of the runqueue; the schedule
 * callback is called.  Returns the tasklet to switch to. */
static inline PyTaskletObject *
switch_prologue(slp_thread *th, PyTaskletObject *prev, PyTaskletObject *next)
{
    PyTaskletObject *w = soft_watchdog(th, prev);
    if (w != NULL && w != next) {
        th->soft_expired = 0;
        next = w;
    }
    assert(next != prev && next->thread == th);
    if (!next->in_runqueue) {
        slp_runqueue_append(th, next);
    }
    th->head = next;
    if (th->tick_budget >= 0
        && !(th->watchdog_flags & PY_WATCHDOG_TOTALTIMEOUT))
    {
        th->tick_budget = th->tick_timeout;
    }
    call_schedule_callback(th, prev, next);
    return next;
}

/* The state of a tasklet that ended is dropped from the thread state. */
static void
drop_state(PyThreadState *tstate)
{
    slp_execstate st = {0};
    slp_cstate cst = {0};
    slp_execstate_save(tstate, &st, &cst);
    slp_execstate_clear(&st);
    slp_cstate_free(&cst);
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
static void
hard_enter(slp_thread *th) SLP_NORETURN;

static void
hard_enter(slp_thread *th)
{
    const slp_cstack *target = enter_target(th, th->current);
    slp_cstack_switch(th->cstack_base, NULL, target);
    Py_FatalError("Stackless: a dropped C stack was resumed");
}

/* A hard switch from the running tasklet, which keeps its C stack (or,
 * `dead`, has ended). */
static PyObject *
do_switch(slp_thread *th, PyTaskletObject *next, int dead)
{
    PyThreadState *tstate = th->tstate;
    PyTaskletObject *prev = th->current;
    slp_cstack *save = NULL;

    if (!dead && slp_tasklet_extra_get(prev) == NULL) {
        return NULL;
    }
    next = switch_prologue(th, prev, next);
    if (dead) {
        drop_state(tstate);
    }
    else {
        slp_execstate_save(tstate, &prev->exec, &prev->extra->cstate);
        prev->soft_parked = 0;
        save = &prev->extra->cstack;
    }
    const slp_cstack *target = enter_target(th, next);
    if (!dead) {
        save_tracing(tstate, prev);
    }
    assert(th->pending_decref == NULL);
    th->pending_decref = (PyObject *)prev;  /* the old current's reference */
    th->current = (PyTaskletObject *)Py_NewRef(next);

    if (slp_cstack_switch(th->cstack_base, save, target) < 0) {
        Py_FatalError("Stackless: out of memory saving a tasklet's C stack");
    }
    /* Resumed: somebody switched back to prev. */
    after_switch(th);
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
    restore_tracing(tstate, prev);
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
    return do_switch(th, next, 0);
}

/* --- soft switching ------------------------------------------------------ *
 *
 * A tasklet started by the runner with a Python function runs that
 * function's frame in an eval loop that the runner called: nothing but
 * that eval loop and the runner is under its frames on the C stack.  When
 * it switches from code of that eval loop (a switching builtin called by a
 * CALL of its frames, or a tick of the eval breaker), no C state of its
 * own needs keeping: its frames are parked (the stack pointer of the top
 * one saved, as for a Python call waiting on its callee) and the eval loop
 * goes on with the frames of the tasklet switched to, if that one has no C
 * stack either; else that one's C stack is restored, and ours dropped.
 *
 * A parked tasklet resumes in whatever eval loop switches to it, or, from
 * a tasklet with a C stack, in a new eval loop called by the runner at the
 * snapshot: its bottom frame is linked to that eval loop's entry frame
 * while it runs, and to nothing while it is parked, so that no frame
 * walker leaves its chain.
 *
 * c_recursion_remaining tells whether the tasklet is in the eval loop of
 * the runner: each eval loop called from C takes its share of it, and the
 * runner sets it to the same value before each call.  Soft switches leave
 * it alone, as they leave the C stack alone.
 */

/* Can the current tasklet be parked softly, in a builtin called by the
 * eval loop (from_call) or in the eval breaker?  `c_calls`: the units of
 * C recursion taken since the eval loop called (by the vectorcall of a
 * builtin function, say). */
static inline int
can_park_softly_in(slp_thread *th, int from_call, int c_calls)
{
    PyThreadState *tstate = th->tstate;
    return slp_runs_in_runner_eval(tstate, th, c_calls)
           && (!from_call || (slp_softcall_active(tstate)
                              && !slp_call_monitored(tstate)))
           && slp_soft_enabled(th, tstate->interp);
}

static int
can_park_softly(slp_thread *th, int from_call)
{
    return can_park_softly_in(th, from_call, 0);
}

/* A soft switch to `next`, the head of the runqueue now, is decided, for
 * the eval loop to make: the current tasklet resumes with `result`
 * (stolen), or if NULL with its tempval, as the builtin's result. */
static void
soft_switch_decided(slp_thread *th, PyTaskletObject *next,
                    PyObject *result)
{
    PyTaskletObject *cur = th->current;
    assert(next != cur && next->in_runqueue && th->head == next);
    assert(th->soft_next == NULL);
    Py_XSETREF(cur->resume_value, result);
    cur->resume_push = 1;
    th->soft_next = (PyTaskletObject *)Py_NewRef(next);
    /* Until the eval loop makes the switch, nothing else may switch. */
    th->switch_trap++;
}

/* slp_switch_to_soft() where the switch cannot be soft. */
static SLP_NOINLINE PyObject *
switch_to_hard(slp_thread *th, PyTaskletObject *next, PyObject *result)
{
    PyObject *res = slp_switch_to(th, next);
    if (result == NULL || res == NULL) {
        Py_XDECREF(result);
        return res;
    }
    Py_DECREF(res);
    return result;
}

PyObject *
slp_switch_to_soft(slp_thread *th, PyTaskletObject *next, PyObject *result)
{
    PyTaskletObject *cur = th->current;
    if (next == cur || !can_park_softly(th, 1)) {
        return switch_to_hard(th, next, result);
    }
    next = switch_prologue(th, cur, next);
    soft_switch_decided(th, next, result);
    return slp_soft_switched;
}

/* Code of `t` is about to run again, its state installed. */
static inline void
resumed(slp_thread *th, PyTaskletObject *t)
{
    after_switch(th);
    if (slp_reinstrument(th->tstate, &t->exec) < 0) {
        PyErr_FormatUnraisable("Exception instrumenting a resumed tasklet");
    }
    restore_tracing(th->tstate, t);
}

/* --- where a preempted frame resumes ------------------------------------
 *
 * A frame stops at a tick of the eval breaker.  The eval breaker of the
 * calls (CALL's _CHECK_PERIODIC, CALL_KW, CALL_FUNCTION_EX) runs after
 * the call's work: a frame preempted softly there is parked as after any
 * call, and goes on with the next instruction.  That of RESUME and
 * JUMP_BACKWARD (and their instrumented forms) runs *before* the
 * instruction's work: the jump is not made yet, the PY_START, PY_RESUME
 * or JUMP event not given, the code not instrumented anew.  A frame
 * preempted softly there is parked before its instruction:
 *
 *     instr_ptr       the instruction's first code unit (that of its
 *                     EXTENDED_ARG prefix, if it has one)
 *     return_offset   0
 *
 * and executes the whole instruction when it resumes, as if it had never
 * stopped.  No other parked frame has a return_offset of 0 (a call's is
 * past the CALL), so the frame says by itself how it resumes.  Two things
 * follow, both for deliver_resume():
 *
 *   - the eval breaker runs again first, and must not preempt again at
 *     once, or run(1) would never make progress: the tasklet gets one more
 *     tick for it;
 *   - an exception thrown in (kill(), throw(), a collected tasklet) is
 *     raised *in* the instruction, where an exception of the eval breaker
 *     (KeyboardInterrupt) is raised on stock CPython, so that the handlers
 *     around it run: instr_ptr moves over the prefix to the instruction
 *     proper and return_offset past it, as the eval loop leaves them.
 */

/* `frame` is preempted in the instruction at instr_ptr, whose oparg (with
 * its EXTENDED_ARG prefix) is `oparg`: it is parked before it if the
 * instruction has done nothing yet. */
static SLP_NOINLINE void
preempted_at(slp_thread *th, _PyInterpreterFrame *frame, int oparg)
{
    th->soft_preempt = 0;
    PyCodeObject *co = _PyFrame_GetCode(frame);
    int op = _Py_GetBaseOpcode(co, (int)(frame->instr_ptr
                                         - _PyCode_CODE(co)));
    if (op == RESUME || op == JUMP_BACKWARD) {
        /* Back over the prefix: the compiler gives an oparg the fewest
         * EXTENDED_ARGs it needs (as tier 2's optimizer assumes too). */
        while (oparg > 255) {
            oparg >>= 8;
            frame->instr_ptr--;
        }
        frame->return_offset = 0;
    }
}

/* deliver_resume() for `top`, parked before its instruction. */
static SLP_NOINLINE void
resume_before(slp_thread *th, PyTaskletObject *t, _PyInterpreterFrame *top)
{
    if (PyBomb_Check(t->tempval)) {
        PyCodeObject *co = _PyFrame_GetCode(top);
        int index = (int)(top->instr_ptr - _PyCode_CODE(co));
        while (_Py_GetBaseOpcode(co, index) == EXTENDED_ARG) {
            index++;
        }
        top->instr_ptr = _PyCode_CODE(co) + index;
        top->return_offset = (uint16_t)(
            1 + _PyOpcode_Caches[_Py_GetBaseOpcode(co, index)]);
    }
    else if (th->tick_budget >= 0) {
        th->tick_budget++;      /* the tick of the eval breaker run again */
    }
}

/* A tasklet parked in the FOR_ITER of a channel (iteration) resumes with
 * StopIteration raised: a sender ended the iteration.  The loop ends, as
 * FOR_ITER ends it when its iterator is exhausted: the iterator is popped
 * and the tasklet goes on after the loop's END_FOR and POP_TOP. */
static void
end_for_iter(_PyInterpreterFrame *top)
{
    PyCodeObject *co = _PyFrame_GetCode(top);
    int index = (int)(top->instr_ptr - _PyCode_CODE(co));
    if (_Py_GetBaseOpcode(co, index) != FOR_ITER) {
        return;
    }
    int oparg = top->instr_ptr->op.arg;
    for (int i = index - 1, shift = 8;
         i >= 0 && _Py_GetBaseOpcode(co, i) == EXTENDED_ARG;
         i--, shift += 8)
    {
        oparg |= _PyCode_CODE(co)[i].op.arg << shift;
    }
    PyErr_Clear();
    Py_DECREF(_PyFrame_StackPop(top));
    top->return_offset += oparg + 2;
}

/* The top frame of a resumed parked tasklet, with the result of its
 * builtin pushed, or the exception of a bomb raised. */
static inline _PyInterpreterFrame *
deliver_resume(PyThreadState *tstate, PyTaskletObject *t)
{
    _PyInterpreterFrame *top = tstate->current_frame;
    if (top->return_offset == 0) {
        resume_before(t->thread, t, top);
    }
    if (PyBomb_Check(t->tempval)) {
        PyObject *val = t->tempval;
        t->tempval = Py_NewRef(Py_None);
        Py_CLEAR(t->resume_value);
        slp_bomb_explode(val);
        Py_DECREF(val);
        if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            end_for_iter(top);
        }
        return top;
    }
    slp_push_resume_value(top, t);
    return top;
}

/* The function of a bound tasklet, if its frame can be pushed: a Python
 * function, or a method of one (*self is then set). */
static PyFunctionObject *
soft_function(slp_thread *th, PyTaskletObject *t, PyObject **self)
{
    PyObject *func = t->func;
    *self = NULL;
    if (!slp_soft_enabled(th, th->tstate->interp)
        || PyBomb_Check(t->tempval))
    {
        return NULL;
    }
    if (Py_IS_TYPE(func, &PyMethod_Type)) {
        *self = PyMethod_GET_SELF(func);
        func = PyMethod_GET_FUNCTION(func);
    }
    if (!Py_IS_TYPE(func, &PyFunction_Type)
        || ((PyFunctionObject *)func)->vectorcall != _PyFunction_Vectorcall)
    {
        return NULL;
    }
    return (PyFunctionObject *)func;
}

/* Start a bound tasklet, made current, whose function is a Python one: its
 * thread-state fields are installed, with a small first chunk of data
 * stack that fits the function's frame, and the frame is pushed.  Returns
 * the frame, or NULL with an exception (the tasklet started and ends). */
static _PyInterpreterFrame *
start_soft(slp_thread *th, PyTaskletObject *t, PyFunctionObject *func,
           PyObject *self)
{
    PyThreadState *tstate = th->tstate;
    assert(tstate->current_frame == NULL && tstate->context == NULL);
    tstate->context = t->context;       /* the reference moves */
    t->context = NULL;
    tstate->context_ver++;
    tstate->py_recursion_remaining = tstate->py_recursion_limit;
    t->state = SLP_STARTED;

    PyCodeObject *co = (PyCodeObject *)func->func_code;
    if (tstate->datastack_chunk == NULL) {
        /* A root chunk (push_chunk() in Python/pystate.c): data[0] is
         * never used, so the chunk is never popped. */
        size_t size = offsetof(_PyStackChunk, data)
                      + (2 + (size_t)co->co_framesize) * sizeof(PyObject *);
        _PyStackChunk *chunk = _PyStackless_AllocChunk(size);
        if (chunk != NULL) {
            slp_push_chunk(tstate, chunk, size);
        }
        /* else the push below makes a standard chunk, or fails */
    }

    Py_ssize_t nargs = PyTuple_GET_SIZE(t->args);
    Py_ssize_t nkw = t->kwargs != NULL ? PyDict_GET_SIZE(t->kwargs) : 0;
    Py_ssize_t n = (self != NULL) + nargs + nkw;
    PyObject *small[8];
    PyObject **argv = n <= 8 ? small : PyMem_Malloc(n * sizeof(PyObject *));
    PyObject *kwnames = NULL;
    _PyInterpreterFrame *frame = NULL;
    if (argv == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t i = 0;
    if (self != NULL) {
        argv[i++] = Py_NewRef(self);
    }
    for (Py_ssize_t k = 0; k < nargs; k++) {
        argv[i++] = Py_NewRef(PyTuple_GET_ITEM(t->args, k));
    }
    if (nkw > 0) {
        kwnames = PyTuple_New(nkw);
        if (kwnames == NULL) {
            for (Py_ssize_t k = 0; k < i; k++) {
                Py_DECREF(argv[k]);
            }
            goto done;
        }
        Py_ssize_t pos = 0, k = 0;
        PyObject *key, *value;
        while (PyDict_Next(t->kwargs, &pos, &key, &value)) {
            PyTuple_SET_ITEM(kwnames, k++, Py_NewRef(key));
            argv[i++] = Py_NewRef(value);
        }
    }
    PyObject *locals = co->co_flags & CO_OPTIMIZED
                       ? NULL : Py_NewRef(func->func_globals);
    /* Steals func, locals and the arguments. */
    frame = _PyEvalFramePushAndInit(tstate, (PyFunctionObject *)Py_NewRef(func),
                                    locals, argv, (self != NULL) + nargs,
                                    kwnames);
done:
    Py_XDECREF(kwnames);
    if (argv != small && argv != NULL) {
        PyMem_Free(argv);
    }
    Py_CLEAR(t->func);
    Py_CLEAR(t->args);
    Py_CLEAR(t->kwargs);
    if (frame != NULL) {
        t->base_frame = frame;
        frame->previous = NULL;
        tstate->current_frame = frame;
    }
    return frame;
}

static PyTaskletObject *end_current(slp_thread *th, PyObject *result);

/* In the eval loop with entry frame `entry`, whose tasklet was parked or
 * has ended: go on with th->current, which is not parked (it starts, or
 * has a C stack).  Returns the frame to go on with, as
 * _PyStackless_SoftSwitch(), or switches the C stack and never returns. */
static SLP_NOINLINE _PyInterpreterFrame *
enter_unparked(slp_thread *th, _PyInterpreterFrame *entry)
{
    PyThreadState *tstate = th->tstate;
    for (;;) {
        PyTaskletObject *t = th->current;
        if (t->soft_parked) {
            slp_unpark_soft(tstate, t, entry);
            resumed(th, t);
            return deliver_resume(tstate, t);
        }
        slp_execstate_empty(tstate);
        PyObject *self;
        PyFunctionObject *func = t->state == SLP_BOUND
                                 ? soft_function(th, t, &self) : NULL;
        if (func == NULL) {
            hard_enter(th);
        }
        _PyInterpreterFrame *frame = start_soft(th, t, func, self);
        if (frame != NULL) {
            frame->previous = entry;
            /* As start_frame does in the eval loop. */
            tstate->py_recursion_remaining--;
        }
        after_switch(th);
        restore_tracing(tstate, t);     /* new tasklets start untraced */
        if (frame != NULL) {
            return frame;
        }
        /* Its arguments did not fit: it ends at once. */
        end_current(th, NULL);
    }
}

/* The same for any th->current: the common case, a parked one, inline. */
static inline _PyInterpreterFrame *
enter_soft(slp_thread *th, _PyInterpreterFrame *entry)
{
    PyTaskletObject *t = th->current;
    if (t->soft_parked) {
        slp_unpark_soft(th->tstate, t, entry);
        resumed(th, t);
        return deliver_resume(th->tstate, t);
    }
    return enter_unparked(th, entry);
}

/* --- Python calls that 3.13 makes through C ------------------------------
 *
 * In a tasklet that switches softly, two calls of Python methods that the
 * eval loop of 3.13 makes through C push their frame instead, which runs
 * in the eval loop like any call, so that a switch in it is soft:
 * __enter__ in BEFORE_WITH (which jumps to the frame itself), and a bound
 * method that a generic CALL gets with an explicit first argument, as the
 * __exit__ of a with block is called (the CALL goes on with the frame at
 * `error:`, as with a soft switch).  Elsewhere, and when monitoring or
 * tracing watches the CALL, they go through C as upstream. */

static PyFunctionObject *
python_method(PyObject *method)
{
    PyObject *func = PyMethod_GET_FUNCTION(method);
    if (Py_IS_TYPE(func, &PyFunction_Type)
        && ((PyFunctionObject *)func)->vectorcall == _PyFunction_Vectorcall)
    {
        return (PyFunctionObject *)func;
    }
    return NULL;
}

/* The frame of func(*argv), pushed, not linked; NULL with an exception if
 * the arguments do not fit it. */
static _PyInterpreterFrame *
push_call(PyThreadState *tstate, PyFunctionObject *func,
          PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(argv[i]);
    }
    PyCodeObject *co = (PyCodeObject *)func->func_code;
    PyObject *locals = co->co_flags & CO_OPTIMIZED
                       ? NULL : Py_NewRef(func->func_globals);
    /* Steals func, locals and the arguments. */
    return _PyEvalFramePushAndInit(
        tstate, (PyFunctionObject *)Py_NewRef((PyObject *)func), locals,
        argv, nargs, kwnames);
}

/* Frames are pushed for the CALL that runs: it ends with NULL returned,
 * and the eval loop goes on with them at `error:` (enter_pushed_frame()).
 * Nothing may switch in between. */
static void
enter_request(slp_thread *th, _PyInterpreterFrame *top,
              _PyInterpreterFrame *base, PyGenObject *gen, int need_marker)
{
    th->soft_enter = top;
    th->soft_enter_base = base;
    th->soft_enter_gen = gen;
    th->switch_trap++;
    slp_soft_switch_request(th->tstate, SLP_PENDING_ENTER, need_marker);
}

/* The frame of method(*args), a Python method, for the eval loop to run
 * as a call (DISPATCH_INLINED), if the running tasklet switches softly;
 * else NULL, and the instruction calls it through C.  `self_only`: only
 * if self alone fits it. */
static _PyInterpreterFrame *
push_method_frame(PyThreadState *tstate, PyObject *method,
                  PyObject *const *args, Py_ssize_t nargs, int self_only)
{
    slp_thread *th = slp_thread_of(tstate);
    PyFunctionObject *func = python_method(method);
    if (func == NULL || !can_park_softly(th, 0)
        || tstate->py_recursion_remaining <= 1)
    {
        return NULL;
    }
    PyCodeObject *co = (PyCodeObject *)func->func_code;
    if (self_only
        && (co->co_argcount != 1 || co->co_kwonlyargcount != 0
            || (co->co_flags & (CO_VARARGS | CO_VARKEYWORDS))))
    {
        return NULL;
    }
    PyObject *argv[4];
    assert(nargs < 4);
    argv[0] = PyMethod_GET_SELF(method);
    for (Py_ssize_t i = 0; i < nargs; i++) {
        argv[i + 1] = args[i];
    }
    _PyInterpreterFrame *f = push_call(tstate, func, argv, nargs + 1, NULL);
    if (f == NULL) {
        PyErr_Clear();      /* the call through C reports it */
    }
    return f;
}

_PyInterpreterFrame *
_PyStackless_EnterFrame(PyThreadState *tstate, PyObject *enter)
{
    /* Only if self fits: no error to report but a lack of memory. */
    return push_method_frame(tstate, enter, NULL, 0, 1);
}

_PyInterpreterFrame *
_PyStackless_ExitFrame(PyThreadState *tstate, PyObject *exit,
                       PyObject *const *args)
{
    return push_method_frame(tstate, exit, args, 3, 0);
}

PyObject *
_PyStackless_CallMethod(PyThreadState *tstate, PyObject *callable,
                        PyObject *const *args, size_t nargsf,
                        PyObject *kwnames)
{
    slp_thread *th = slp_thread_of(tstate);
    PyFunctionObject *func = python_method(callable);
    if (func == NULL || !(nargsf & PY_VECTORCALL_ARGUMENTS_OFFSET)
        || !can_park_softly(th, 0) || tstate->py_recursion_remaining <= 1)
    {
        return PyObject_Vectorcall(callable, args, nargsf, kwnames);
    }
    if (slp_call_monitored(tstate)) {
        /* Monitoring sees a C call, as upstream. */
        return PyObject_Vectorcall(callable, args, nargsf, kwnames);
    }
    /* self goes in the slot before the arguments, which the caller lets
     * us use (PY_VECTORCALL_ARGUMENTS_OFFSET), as method_vectorcall()
     * does. */
    PyObject **argv = (PyObject **)args - 1;
    PyObject *saved = argv[0];
    argv[0] = PyMethod_GET_SELF(callable);
    _PyInterpreterFrame *f = push_call(tstate, func, argv,
                                       PyVectorcall_NARGS(nargsf) + 1,
                                       kwnames);
    argv[0] = saved;
    if (f == NULL) {
        return NULL;
    }
    tstate->py_recursion_remaining--;   /* as start_frame does */
    enter_request(th, f, f, NULL, 0);
    return NULL;
}

/* --- generators resumed by a call -----------------------------------------
 *
 * next(gen), gen.send(value) and gen.throw(exc) of a generator or
 * coroutine that is not running, called by a CALL of the eval loop of a
 * tasklet that switches softly, run the generator's frame in that eval
 * loop, as `yield from` does, instead of in an eval loop of their own.
 * The builtin, sure of its caller, arms the thread state for the
 * generator (_PyStackless_ArmGen...()); gen_send_ex2() (Objects/
 * genobject.c), once it checked the generator's state, pushes its frame
 * then (_PyStackless_GenEnter()) where it would evaluate it, and returns
 * an error that the C functions in between pass on: the CALL ends, and
 * the eval loop goes on with the frame at `error:`.
 *
 * The caller waits for a shim frame, whose code (gen_shim_code) waits for
 * the generator's frame as a SEND does.  Where the generator yields, the
 * shim returns the value; where it returns, the shim raises StopIteration
 * as the builtins would; an exception of the generator goes through it.
 * Like the shim that CPython pushes for __init__ (_Py_InitCleanup), it
 * never runs its RESUME, so that frame walkers and tracebacks skip it, and
 * it has no monitoring events.
 */

#define GEN_SHIM_RETURN 4       /* where a return of the generator goes */
#define GEN_DEFAULT_SHIM_RETURN 6

/* The shim's CALL: the generator returned `value`. */
static PyObject *
gen_returned(PyObject *Py_UNUSED(module), PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    else {
        _PyGen_SetStopIterationValue(value);
    }
    return NULL;
}

static PyMethodDef gen_returned_def = {
    "next", gen_returned, METH_O, NULL
};

/* A shim's code object, made on first use and kept in *slot (the
 * interpreter's): `ncode` code units, the constants the function `helper`
 * of the module (None if NULL) and the `nextra` of `extra`, no location,
 * `exctable`.  NULL if there is no memory for it. */
static PyCodeObject *
shim_code(PyObject **slot, const char *name, const _Py_CODEUNIT *code,
          int ncode, PyMethodDef *helper, PyObject *const *extra, int nextra,
          int stacksize, const char *exctable, Py_ssize_t exctable_size)
{
    if (*slot != NULL) {
        return (PyCodeObject *)*slot;
    }
    /* No location: entries of up to 8 code units without one. */
    char lines[16];
    int nlines = 0;
    for (int left = ncode; left > 0; left -= 8) {
        int n = left < 8 ? left : 8;
        assert(nlines < (int)sizeof(lines));
        lines[nlines++] = (char)(128 | (PY_CODE_LOCATION_INFO_NONE << 3)
                                 | (n - 1));
    }
    PyCodeObject *co = NULL;
    PyObject *bytes = PyBytes_FromStringAndSize(
        (const char *)code, ncode * sizeof(_Py_CODEUNIT));
    PyObject *func = helper != NULL ? PyCFunction_New(helper, NULL)
                                    : Py_NewRef(Py_None);
    PyObject *consts = func != NULL ? PyTuple_New(1 + nextra) : NULL;
    if (consts != NULL) {
        PyTuple_SET_ITEM(consts, 0, Py_NewRef(func));
        for (int i = 0; i < nextra; i++) {
            PyTuple_SET_ITEM(consts, 1 + i, Py_NewRef(extra[i]));
        }
    }
    PyObject *uname = PyUnicode_FromString(name);
    PyObject *file = PyUnicode_FromString("<stackless>");
    PyObject *linetable = PyBytes_FromStringAndSize(lines, nlines);
    PyObject *empty = PyTuple_New(0);
    PyObject *table = PyBytes_FromStringAndSize(exctable, exctable_size);
    if (bytes != NULL && consts != NULL && uname != NULL && file != NULL
        && linetable != NULL && empty != NULL && table != NULL)
    {
        co = PyUnstable_Code_New(
            0, 0, 0, stacksize, CO_OPTIMIZED | CO_NO_MONITORING_EVENTS,
            bytes, consts, empty, empty, empty, empty, file, uname, uname, 0,
            linetable, table);
    }
    Py_XDECREF(bytes);
    Py_XDECREF(func);
    Py_XDECREF(consts);
    Py_XDECREF(uname);
    Py_XDECREF(file);
    Py_XDECREF(linetable);
    Py_XDECREF(empty);
    Py_XDECREF(table);
    *slot = (PyObject *)co;
    return co;
}

static PyCodeObject *
gen_shim_code(slp_interp *si)
{
    /* Stack: the generator, under what it yields or returns. */
    static const _Py_CODEUNIT code[] = {
        {.op = {SEND, GEN_SHIM_RETURN - 2}},    /* waits for the frame */
        {.op = {CACHE, 0}},
        {.op = {END_SEND, 0}},                  /* it yielded */
        {.op = {RETURN_VALUE, 0}},
        {.op = {END_SEND, 0}},                  /* it returned */
        {.op = {LOAD_CONST, 0}},                /* gen_returned(value) */
        {.op = {SWAP, 2}},
        {.op = {PUSH_NULL, 0}},
        {.op = {SWAP, 2}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {RESUME, 0}},                    /* never reached */
    };
    return shim_code(&si->gen_shim, "next", code, (int)Py_ARRAY_LENGTH(code),
                     &gen_returned_def, NULL, 0, 3, "", 0);
}

/* next(gen, default): the default waits under the generator.  Where the
 * generator yields, the shim returns the value; where it returns, the
 * default.  (A generator's frame raises no StopIteration: its code turns
 * one into RuntimeError.) */
static PyCodeObject *
gen_default_shim_code(slp_interp *si)
{
    static const _Py_CODEUNIT code[] = {
        {.op = {SEND, GEN_DEFAULT_SHIM_RETURN - 2}},    /* waits */
        {.op = {CACHE, 0}},
        {.op = {END_SEND, 0}},                  /* it yielded */
        {.op = {SWAP, 2}},
        {.op = {POP_TOP, 0}},                   /* the default goes */
        {.op = {RETURN_VALUE, 0}},
        {.op = {END_SEND, 0}},                  /* it returned */
        {.op = {POP_TOP, 0}},                   /* the value goes */
        {.op = {RETURN_VALUE, 0}},
        {.op = {RESUME, 0}},                    /* never reached */
    };
    return shim_code(&si->gen_default_shim, "next", code,
                     (int)Py_ARRAY_LENGTH(code), NULL, NULL, 0, 3, "", 0);
}

/* Push a shim frame of `code` whose stack holds the `n` objects `objs`
 * (new references), waiting at `wait` for a frame to return
 * `return_offset` code units further (or to start there, at 0); NULL if
 * there is no memory for it (no error set). */
static _PyInterpreterFrame *
push_shim(PyThreadState *tstate, PyCodeObject *code, PyObject *const *objs,
          int n, int wait, int return_offset)
{
    if (code == NULL
        || !_PyStackless_HasStackSpace(tstate, code->co_framesize))
    {
        PyErr_Clear();
        return NULL;
    }
    _PyInterpreterFrame *sf = _PyFrame_PushTrampolineUnchecked(tstate, code,
                                                               n);
    sf->f_globals = sf->f_builtins = NULL;   /* set by debug builds only */
    for (int i = 0; i < n; i++) {
        sf->localsplus[i] = Py_NewRef(objs[i]);
    }
    sf->instr_ptr = _PyCode_CODE(code) + wait;
    sf->return_offset = (uint16_t)return_offset;
    sf->previous = NULL;
    return sf;
}

/* The value stack of the frame running a CALL of `nargs` arguments, if
 * it is one of the call instructions in `ops` (0-terminated), else NULL. */
static PyObject **
calling_stack(_PyInterpreterFrame *f, Py_ssize_t nargs, const int *ops)
{
    if (f == NULL || f->owner == FRAME_OWNED_BY_CSTACK
        || f->instr_ptr->op.arg != nargs)
    {
        return NULL;
    }
    int op = f->instr_ptr->op.code;
    while (*ops != 0 && *ops != op) {
        ops++;
    }
    if (*ops == 0) {
        return NULL;
    }
    PyCodeObject *co = _PyFrame_GetCode(f);
    return f->localsplus + co->co_nlocalsplus;
}

/* Is `callable` the builtin method `meth` of obj (gen): a method
 * descriptor of its type called with obj as self, or bound to obj and
 * called alone? */
static int
is_method_of(PyObject *callable, PyObject *self, PyObject *gen,
              PyCFunction meth)
{
    if (self == gen) {
        return Py_IS_TYPE(callable, &PyMethodDescr_Type)
               && ((PyMethodDescrObject *)callable)->d_method->ml_meth == meth
               && PyDescr_TYPE(callable) == Py_TYPE(gen);
    }
    return self == NULL && PyCFunction_CheckExact(callable)
           && ((PyCFunctionObject *)callable)->m_ml->ml_meth == meth
           && ((PyCFunctionObject *)callable)->m_self == gen;
}

/* The eval loop calls a builtin with a pointer into the frame's value
 * stack, above the callable and the self or NULL of the call, which
 * identify it: a C caller in between would have its own array, or a bound
 * method in the slot of the NULL. */
static int
called_with(PyThreadState *tstate, PyObject *const *args, Py_ssize_t nargs,
            PyObject *gen, PyCFunction meth, const int *ops)
{
    _PyInterpreterFrame *f = tstate->current_frame;
    PyObject **stack = calling_stack(f, nargs, ops);
    if (stack == NULL || args < (PyObject *const *)stack + 2
        || args + nargs > (PyObject *const *)stack
                          + _PyFrame_GetCode(f)->co_stacksize)
    {
        return 0;
    }
    if (gen == NULL) {
        /* A builtin function that takes the generator: next(). */
        return args[-1] == NULL && PyCFunction_CheckExact(args[-2])
               && ((PyCFunctionObject *)args[-2])->m_ml->ml_meth == meth;
    }
    return is_method_of(args[-2], args[-1], gen, meth);
}

/* No monitoring tool wants the PY_THROW event of a throw(). */
static inline int
no_throw_events(PyThreadState *tstate)
{
    return tstate->interp->monitors.tools[PY_MONITORING_EVENT_PY_THROW] == 0;
}

/* A builtin that the eval loop of the current tasklet called, directly
 * or through its vectorcall (which takes a unit of C recursion), can have
 * a frame run there: that loop is the runner's, there is room for the
 * frame and a shim, and no monitoring tool waits for the builtin to
 * return. */
static int
can_push_at_call(slp_thread *th)
{
    return th->tstate->py_recursion_remaining > 2
           && (can_park_softly_in(th, 0, 0) || can_park_softly_in(th, 0, 1))
           && !slp_call_monitored(th->tstate);
}

/* The generator's frame can run in the tasklet's eval loop. */
static int
can_resume_here(slp_thread *th, PyGenObject *gen, int throw)
{
    /* A throw() into a `yield from` goes to the generator delegated to,
     * in C. */
    return (Py_IS_TYPE(gen, &PyGen_Type) || Py_IS_TYPE(gen, &PyCoro_Type))
           && gen->gi_frame_state
              < (throw ? FRAME_SUSPENDED_YIELD_FROM : FRAME_EXECUTING)
           && can_push_at_call(th);
}

/* `dflt`: the default of next(gen, default), or NULL. */
static void
arm_gen(PyThreadState *tstate, slp_thread *th, PyObject *gen, PyObject *dflt)
{
    ((_PyThreadStateImpl *)tstate)->stackless_gen = gen;
    th->armed_frame = tstate->current_frame;
    th->armed_instr = tstate->current_frame->instr_ptr;
    th->armed_default = dflt;
}

void
_PyStackless_ArmGenNext(PyObject *const *args, Py_ssize_t nargs,
                        PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_BUILTIN_FAST, 0};
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (th != NULL && can_resume_here(th, (PyGenObject *)args[0], 0)
        && called_with(tstate, args, nargs, NULL, meth, ops))
    {
        arm_gen(tstate, th, args[0], nargs == 2 ? args[1] : NULL);
    }
}

int
_PyStackless_ArmGenThrow(PyObject *gen, PyObject *const *args,
                         Py_ssize_t nargs, PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_METHOD_DESCRIPTOR_FAST,
                              CALL_BUILTIN_FAST, 0};
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (th != NULL && can_resume_here(th, (PyGenObject *)gen, 1)
        && called_with(tstate, args, nargs, gen, meth, ops))
    {
        arm_gen(tstate, th, gen, NULL);
        return 1;
    }
    return 0;
}

void
_PyStackless_DisarmGen(void)
{
    ((_PyThreadStateImpl *)_PyThreadState_GET())->stackless_gen = NULL;
}

/* gen.send(arg): a METH_O method gets no pointer to its argument, and the
 * stack depth before the CALL tells where the call's inputs are. */
void
_PyStackless_ArmGenSend(PyObject *gen, PyObject *arg, PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_METHOD_DESCRIPTOR_O,
                              CALL_BUILTIN_O, 0};
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (th == NULL || !can_resume_here(th, (PyGenObject *)gen, 0)) {
        return;
    }
    _PyInterpreterFrame *f = tstate->current_frame;
    PyObject **stack = calling_stack(f, 1, ops);
    if (stack == NULL) {
        return;
    }
    PyCodeObject *co = _PyFrame_GetCode(f);
    int depth = slp_stack_depth_cached(th, co, _PyInterpreterFrame_LASTI(f));
    if (depth < 3 || depth > co->co_stacksize) {
        return;
    }
    PyObject **in = stack + depth - 3;
    if (in[2] == arg && is_method_of(in[0], in[1], gen, meth)) {
        arm_gen(tstate, th, gen, NULL);
    }
}

int
_PyStackless_GenEnter(PyThreadState *tstate, PyGenObject *gen, PyObject *arg,
                      int exc)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_thread *th = ts->stackless;
    int armed = ts->stackless_gen == (PyObject *)gen
                && th->armed_frame == tstate->current_frame
                && th->armed_instr == tstate->current_frame->instr_ptr;
    ts->stackless_gen = NULL;
    /* gen_send_ex2() reports the errors of other states. */
    if (!armed || gen->gi_frame_state >= FRAME_EXECUTING
        || (gen->gi_frame_state == FRAME_CREATED && arg != NULL
            && arg != Py_None))
    {
        return 0;
    }
    if (exc && !no_throw_events(tstate)) {
        return 0;           /* monitoring sees a throw: through C */
    }
    /* A thrown exception is set: keep it while the shim is made. */
    PyObject *thrown = exc ? _PyErr_GetRaisedException(tstate) : NULL;
    PyObject *dflt = th->armed_default;
    th->armed_default = NULL;
    PyObject *objs[] = {dflt, (PyObject *)gen};
    _PyInterpreterFrame *sf = dflt == NULL
        ? push_shim(tstate, gen_shim_code(th->si), objs + 1, 1, 0,
                    GEN_SHIM_RETURN)
        : push_shim(tstate, gen_default_shim_code(th->si), objs, 2, 0,
                    GEN_DEFAULT_SHIM_RETURN);
    if (sf == NULL) {
        /* The call through C reports a lack of memory. */
        if (thrown != NULL) {
            _PyErr_SetRaisedException(tstate, thrown);
        }
        return 0;
    }
    /* As gen_send_ex2() does; the thread state's handled exception
     * changes when the frame starts (enter_pushed_frame). */
    _PyInterpreterFrame *gf = (_PyInterpreterFrame *)gen->gi_iframe;
    _PyFrame_StackPush(gf, Py_NewRef(arg != NULL ? arg : Py_None));
    gen->gi_frame_state = FRAME_EXECUTING;
    gf->previous = sf;
    gf->return_offset = 0;
    tstate->py_recursion_remaining -= 2;    /* as start_frame does */
    th->soft_enter_exc = thrown;
    /* The C functions in between pass on an error, not NULL alone. */
    enter_request(th, gf, sf, gen, 1);
    return 1;
}

/* The marker exception of the pending switch goes.  Another exception
 * comes from a monitoring callback of the CALL (its C_RAISE event), which
 * failed: it is reported, and the switch is made. */
static SLP_NOINLINE void
drop_marker(PyThreadState *tstate)
{
    PyObject *exc = _PyErr_GetRaisedException(tstate);
    if (slp_soft_switch_marker_check(exc)) {
        Py_DECREF(exc);
        return;
    }
    _PyErr_SetRaisedException(tstate, exc);
    PyErr_FormatUnraisable("Exception in a callback while switching "
                           "tasklets");
}

/* _PyStackless_CallMethod() or _PyStackless_GenEnter() pushed frames:
 * the caller waits for them as for any call.  A generator's frame starts
 * as in gen_send_ex2(), with the exception of a throw() raised. */
static SLP_NOINLINE _PyInterpreterFrame *
enter_pushed_frame(slp_thread *th, _PyInterpreterFrame *frame)
{
    PyThreadState *tstate = th->tstate;
    _PyInterpreterFrame *f = th->soft_enter;
    PyGenObject *gen = th->soft_enter_gen;
    PyObject *exc = th->soft_enter_exc;
    th->soft_enter_base->previous = frame;
    th->soft_enter = th->soft_enter_base = NULL;
    th->soft_enter_gen = NULL;
    th->soft_enter_exc = NULL;
    th->switch_trap--;
    if (gen != NULL) {
        gen->gi_exc_state.previous_item = tstate->exc_info;
        tstate->exc_info = &gen->gi_exc_state;
    }
    tstate->current_frame = f;
    if (exc != NULL) {
        /* The eval loop goes to `error:` in the frame, as a throw into
         * it does (throwflag), which instruments its code first. */
        _PyErr_SetRaisedException(tstate, exc);
        _PyErr_ChainStackItem();
        if (_Py_Instrument(_PyFrame_GetCode(f), tstate->interp) < 0) {
            PyErr_FormatUnraisable("Exception instrumenting a generator");
        }
    }
    return f;
}

_PyInterpreterFrame *
_PyStackless_SoftSwitch(PyThreadState *tstate, _PyInterpreterFrame *frame,
                        _PyInterpreterFrame *entry, int oparg)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_thread *th = ts->stackless;
    int what = th->pending_what;
    assert(ts->stackless_pending == frame);
    ts->stackless_pending = NULL;
    if (tstate->current_exception != NULL) {
        drop_marker(tstate);
    }
    if (what == SLP_PENDING_ENTER) {
        return enter_pushed_frame(th, frame);
    }
    th->switch_trap--;
    PyTaskletObject *prev = th->current;
    PyTaskletObject *next = th->soft_next;
    th->soft_next = NULL;
    if (th->soft_preempt) {
        preempted_at(th, frame, oparg);
    }
    slp_park_soft(tstate, prev);
    if (prev->extra != NULL && prev->extra->cstack.data != NULL) {
        /* An old copy, of no use now. */
        slp_cstack_clear(&prev->extra->cstack);
    }
    save_tracing(tstate, prev);
    assert(th->pending_decref == NULL);
    th->pending_decref = (PyObject *)prev;
    th->current = next;                 /* soft_next's reference */
    return enter_soft(th, entry);
}

_PyInterpreterFrame *
_PyStackless_Resume(PyThreadState *tstate, _PyInterpreterFrame *frame,
                    _PyInterpreterFrame *entry)
{
    slp_thread *th = slp_thread_of(tstate);
    PyTaskletObject *t = th->current;
    assert(t->soft_parked && frame == t->base_frame);
    (void)frame;
    tstate->current_frame = NULL;   /* the eval loop's entry linked it */
    slp_unpark_soft(tstate, t, entry);
    resumed(th, t);
    return deliver_resume(tstate, t);
}

/* --- contextvars.Context.run() ------------------------------------------
 *
 * ctx.run(func, ...) of a Python function, called by a CALL of the eval
 * loop of a tasklet that switches softly (after it entered the context),
 * pushes func's frame over a shim frame, whose code (context_shim_code)
 * waits for it as a CALL does, and exits the context when it returns or
 * raises.  The shim is as invisible as the generators' one.
 */

#define CTX_SHIM_CALL 1         /* where the shim waits */

static PyObject *
context_exit(PyObject *Py_UNUSED(module), PyObject *ctx)
{
    if (PyContext_Exit(ctx) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef context_exit_def = {
    "run", context_exit, METH_O, NULL
};

static PyCodeObject *
context_shim_code(slp_interp *si)
{
    /* Stack: the context.  An exception of the function is handled at 16
     * (the exception table): the lookup is made at the instruction before
     * the waiting CALL, a NOP. */
    static const _Py_CODEUNIT code[] = {
        {.op = {NOP, 0}},
        {.op = {CALL, 0}},                  /* waits for the frame */
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {SWAP, 2}},                  /* it returned: [value, ctx] */
        {.op = {LOAD_CONST, 0}},            /* context_exit(ctx) */
        {.op = {SWAP, 2}},
        {.op = {PUSH_NULL, 0}},
        {.op = {SWAP, 2}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_TOP, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {LOAD_CONST, 0}},            /* it raised: [ctx, exc] */
        {.op = {COPY, 3}},
        {.op = {PUSH_NULL, 0}},
        {.op = {SWAP, 2}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_TOP, 0}},
        {.op = {RERAISE, 0}},
        {.op = {RESUME, 0}},                /* never reached */
    };
    /* Code units 0 and 1, to 16, at depth 1, without lasti (see
     * Objects/exception_handling_notes.txt). */
    static const char table[] = {(char)(0x80 | 0), 2, 16, 1 << 1};
    return shim_code(&si->context_shim, "run", code,
                     (int)Py_ARRAY_LENGTH(code), &context_exit_def, NULL, 0,
                     5, table, sizeof(table));
}

int
_PyStackless_ContextRun(PyThreadState *tstate, PyObject *ctx,
                        PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames, PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_KW,
                              CALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS,
                              CALL_BUILTIN_FAST_WITH_KEYWORDS, 0};
    slp_thread *th = slp_thread_of(tstate);
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *callable = args[0];
    PyObject *self = NULL;
    if (Py_IS_TYPE(callable, &PyMethod_Type)) {
        self = PyMethod_GET_SELF(callable);
        callable = PyMethod_GET_FUNCTION(callable);
    }
    if (th == NULL || !Py_IS_TYPE(callable, &PyFunction_Type)
        || ((PyFunctionObject *)callable)->vectorcall != _PyFunction_Vectorcall
        || tstate->interp->monitors.tools[
               PY_MONITORING_EVENT_EXCEPTION_HANDLED] != 0
        || !can_push_at_call(th)
        || !called_with(tstate, args, nargs + nkw, ctx, meth, ops))
    {
        return 0;
    }
    _PyInterpreterFrame *sf = push_shim(tstate, context_shim_code(th->si),
                                        &ctx, 1, CTX_SHIM_CALL,
                                        1 + INLINE_CACHE_ENTRIES_CALL);
    if (sf == NULL) {
        return 0;           /* the call through C reports a lack of memory */
    }
    /* func(*args[1:]), with self first for a method: its slot is that of
     * the function, which stays alive in the caller's stack. */
    PyObject *const *argv = args + 1;
    Py_ssize_t n = nargs - 1;
    PyObject *saved = NULL;
    if (self != NULL) {
        argv = args;
        saved = args[0];
        ((PyObject **)args)[0] = self;
        n++;
    }
    _PyInterpreterFrame *f = push_call(tstate, (PyFunctionObject *)callable,
                                       argv, n, kwnames);
    if (saved != NULL) {
        ((PyObject **)args)[0] = saved;
    }
    if (f == NULL) {
        /* Its arguments do not fit: the error is the call's, and the
         * context is exited, as after a call through C. */
        PyObject *exc = _PyErr_GetRaisedException(tstate);
        _PyFrame_ClearExceptCode(sf);
        Py_DECREF(sf->f_executable);
        _PyThreadState_PopFrame(tstate, sf);
        (void)PyContext_Exit(ctx);
        _PyErr_ChainExceptions1(exc);
        return 1;
    }
    f->previous = sf;
    tstate->py_recursion_remaining -= 2;    /* as start_frame does */
    enter_request(th, f, sf, NULL, 1);
    return 1;
}

/* --- channel.send_sequence() --------------------------------------------
 *
 * ch.send_sequence(iterable), called by a CALL of the eval loop of a
 * tasklet that switches softly, pushes a shim frame whose code
 * (send_sequence_shim_code) sends the items with channel.send, softly as
 * any send there, and returns how many it sent.  It starts at once, and is
 * as invisible as the other shims; an exception goes through it.
 */

#define SEQ_SHIM_END_FOR 19     /* where the iteration ends */

static PyCodeObject *
send_sequence_shim_code(slp_interp *si)
{
    /* Stack: the channel, the count, the iterator. */
    static const _Py_CODEUNIT code[] = {
        {.op = {FOR_ITER, SEQ_SHIM_END_FOR - 2}},
        {.op = {CACHE, 0}},
        {.op = {LOAD_CONST, 1}},            /* channel.send(ch, item) */
        {.op = {PUSH_NULL, 0}},
        {.op = {COPY, 6}},
        {.op = {COPY, 4}},
        {.op = {CALL, 2}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_TOP, 0}},               /* its result */
        {.op = {POP_TOP, 0}},               /* the item */
        {.op = {SWAP, 2}},                  /* the count + 1 */
        {.op = {LOAD_CONST, 2}},
        {.op = {BINARY_OP, NB_ADD}},
        {.op = {CACHE, 0}},
        {.op = {SWAP, 2}},
        {.op = {JUMP_BACKWARD, SEQ_SHIM_END_FOR}},      /* to 0 */
        {.op = {CACHE, 0}},
        {.op = {END_FOR, 0}},               /* skipped: [ch, count] */
        {.op = {POP_TOP, 0}},
        {.op = {SWAP, 2}},
        {.op = {POP_TOP, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {RESUME, 0}},                /* never reached */
    };
    assert(code[SEQ_SHIM_END_FOR].op.code == END_FOR);
    PyObject *send = PyDict_GetItemString(PyChannel_Type.tp_dict, "send");
    if (send == NULL) {
        return NULL;
    }
    PyObject *extra[] = {send, _PyLong_GetOne()};
    return shim_code(&si->send_sequence_shim, "send_sequence", code,
                     (int)Py_ARRAY_LENGTH(code), NULL, extra, 2, 8, "", 0);
}

int
slp_send_sequence_soft(slp_thread *th, PyObject *ch, PyObject *it)
{
    PyThreadState *tstate = th->tstate;
    if (!can_park_softly(th, 1) || tstate->py_recursion_remaining <= 1) {
        return 0;
    }
    PyObject *objs[] = {ch, _PyLong_GetZero(), it};
    _PyInterpreterFrame *sf = push_shim(
        tstate, send_sequence_shim_code(th->si), objs, 3, 0, 0);
    if (sf == NULL) {
        return 0;           /* the C loop reports a lack of memory */
    }
    tstate->py_recursion_remaining--;       /* as start_frame does */
    enter_request(th, sf, sf, NULL, 0);
    return 1;
}

/* --- tasklet start and end --------------------------------------------- */

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
    after_switch(th);
    restore_tracing(tstate, t);     /* new tasklets start untraced */
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
            PyFunctionObject *func = soft_function(th, t, &self);
            if (func == NULL) {
                result = start_hard(th, t);
            }
            else {
                _PyInterpreterFrame *frame = start_soft(th, t, func, self);
                after_switch(th);
                restore_tracing(tstate, t);
                if (frame == NULL) {
                    result = NULL;
                }
                else {
                    tstate->current_frame = NULL;   /* the eval loop links */
                    result = _PyEval_EvalFrameDefault(tstate, frame, 0);
                }
            }
        }
        PyTaskletObject *next = end_current(th, result);
        if (!next->soft_parked && next->state != SLP_BOUND) {
            hard_enter(th);
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
 * starts it, or hard_enter()s it.  Returns it. */
static PyTaskletObject *
end_current(slp_thread *th, PyObject *result)
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
     * by the switch, after the schedule callback. */
    t->state = SLP_NEW;
    t->base_frame = NULL;
    Py_CLEAR(t->resume_value);
    Py_SETREF(t->tempval, Py_NewRef(Py_None));
    if (t->in_runqueue) {
        slp_runqueue_remove(th, t);
    }

    PyTaskletObject *w = innermost_watchdog(th);
    PyTaskletObject *next;
    if (bomb != NULL) {
        /* W resumes at once and raises the exception. */
        next = w;
        if (next->blocked) {
            slp_channel_remove_blocked(next);
        }
        Py_SETREF(next->tempval, bomb);
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
            Py_SETREF(next->tempval, slp_bomb_from_error());
        }
    }
    next = switch_prologue(th, t, next);
    drop_state(th->tstate);
    assert(th->pending_decref == NULL);
    th->pending_decref = (PyObject *)t;
    th->current = (PyTaskletObject *)Py_NewRef(next);
    return next;
}

/* --- schedule, run ------------------------------------------------------ */

PyObject *
slp_schedule(PyObject *retval, int remove)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyTaskletObject *cur = th->current;
    if (retval == NULL) {
        retval = (PyObject *)cur;
    }
    if (slp_check_switch_trap(th) < 0) {
        return NULL;
    }
    if (!remove) {
        assert(th->head == cur);
        if (cur->next == cur && soft_watchdog(th, cur) == NULL) {
            return Py_NewRef(retval);
        }
        Py_SETREF(cur->tempval, Py_NewRef(retval));
        PyTaskletObject *next = cur->next != cur ? cur->next
                                                 : soft_watchdog(th, cur);
        return slp_switch_to_soft(th, next, NULL);
    }
    slp_runqueue_unlink(th, cur);
    PyTaskletObject *next = slp_next_after_leaving(th, cur);
    if (next == NULL) {
        slp_runqueue_append(th, cur);
        th->head = cur;
        Py_DECREF(cur);
        return NULL;
    }
    Py_SETREF(cur->tempval, Py_NewRef(retval));
    Py_DECREF(cur);     /* the runqueue's; `current` keeps it alive */
    return slp_switch_to_soft(th, next, NULL);
}

static void
timer_arm(slp_thread *th, long timeout, int flags)
{
    th->tick_deferred = 0;
    th->tick_timeout = timeout;
    th->tick_budget = timeout;
    th->watchdog_flags = flags;
    th->soft_expired = 0;
    th->timer_level = PyList_GET_SIZE(th->watchdogs) - 1;
    _Py_set_eval_breaker_bit(th->tstate, _PY_STACKLESS_TICK_BIT);
}

static void
timer_disarm(slp_thread *th)
{
    th->tick_budget = -1;
    th->watchdog_flags = 0;
    th->soft_expired = 0;
    _Py_unset_eval_breaker_bit(th->tstate, _PY_STACKLESS_TICK_BIT);
}

PyObject *
slp_run_watchdog(long timeout, int flags)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyTaskletObject *cur = th->current;
    if (slp_check_switch_trap(th) < 0) {
        return NULL;
    }
    if (cur->next == cur) {
        Py_RETURN_NONE;      /* nothing else to run */
    }
    if (PyList_Append(th->watchdogs, (PyObject *)cur) < 0) {
        return NULL;
    }
    Py_ssize_t level = PyList_GET_SIZE(th->watchdogs) - 1;
    int armed = 0;
    if (timeout > 0 && th->tick_budget < 0) {
        timer_arm(th, timeout, flags);
        armed = 1;
    }
    slp_runqueue_unlink(th, cur);
    Py_DECREF(cur);
    PyObject *res = slp_switch_to(th, th->head);

    /* Back: the runqueue emptied, a tasklet was interrupted, or an
     * exception was bombed to us.  Leave the watchdog stack. */
    if (PyList_GET_SIZE(th->watchdogs) > level) {
        /* Inner watchdogs woken past (e.g. by main.run()) are runnable
         * again: they return from their run() when they get to run. */
        for (Py_ssize_t i = level + 1; i < PyList_GET_SIZE(th->watchdogs); i++) {
            PyTaskletObject *w = (PyTaskletObject *)PyList_GET_ITEM(
                th->watchdogs, i);
            if (is_paused(w) && w != th->current) {
                slp_runqueue_append(th, w);
            }
        }
        PyList_SetSlice(th->watchdogs, level, PY_SSIZE_T_MAX, NULL);
    }
    if (armed) {
        timer_disarm(th);
    }
    PyTaskletObject *interrupted = th->interrupted;
    th->interrupted = NULL;
    if (res == NULL) {
        Py_XDECREF(interrupted);
        return NULL;
    }
    Py_DECREF(res);
    if (interrupted != NULL) {
        return (PyObject *)interrupted;
    }
    Py_RETURN_NONE;
}

/* The number of C-level entries of the eval loop on the current tasklet's
 * stack, less its own first one. */
static int
current_nesting_level(PyThreadState *tstate)
{
    int n = 0;
    for (_PyInterpreterFrame *f = tstate->current_frame; f; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            n++;
        }
    }
    return n > 0 ? n - 1 : 0;
}

int
_PyStackless_IsAtomic(PyThreadState *tstate)
{
    slp_thread *th = slp_thread_of(tstate);
    if (th == NULL || th->current == NULL || !th->current->atomic) {
        return 0;
    }
    /* The timer goes on; an expiry waits for atomic to end (S-5). */
    if (th->tick_budget >= 0 && --th->tick_budget <= 0) {
        th->tick_budget = th->tick_timeout;
        th->tick_deferred = 1;
    }
    return 1;
}

int
slp_kill_soon(slp_thread *th, PyTaskletObject *t)
{
    if (th->to_kill == NULL) {
        th->to_kill = PyList_New(0);
        if (th->to_kill == NULL) {
            return -1;
        }
    }
    if (PyList_Append(th->to_kill, (PyObject *)t) < 0) {
        return -1;
    }
    _Py_set_eval_breaker_bit(th->tstate, _PY_STACKLESS_TICK_BIT);
    return 0;
}

void
slp_to_garbage(PyTaskletObject *t)
{
    /* T-15: it would not die; its C stack stays, with the tasklet, in
     * gc.garbage, for the program to deal with. */
    PyObject *garbage = _PyInterpreterState_GET()->gc.garbage;
    Py_SETREF(t->tempval, Py_NewRef(Py_None));
    if (garbage == NULL || PyList_Append(garbage, (PyObject *)t) < 0) {
        PyErr_Clear();
    }
}

static void
kill_collected(slp_thread *th)
{
    PyObject *list = th->to_kill;
    th->to_kill = NULL;
    PyObject *exc = PyErr_GetRaisedException();
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyTaskletObject *t = (PyTaskletObject *)PyList_GET_ITEM(list, i);
        if (t->thread == th) {
            slp_kill_hard(t, "");   /* only our list holds it */
        }
    }
    Py_DECREF(list);
    PyErr_SetRaisedException(exc);
}

void
slp_preemption_unblocked(slp_thread *th)
{
    if (th->tick_deferred && th->tick_budget > 1) {
        th->tick_budget = 1;    /* due: the next tick preempts */
    }
}

int
_PyStackless_Tick(PyThreadState *tstate)
{
    slp_thread *th = slp_thread_of(tstate);
    if (th != NULL && th->to_kill != NULL && !tstate->interp->gc.collecting
        && th->switch_trap == 0)
    {
        kill_collected(th);
    }
    if (th == NULL || th->tick_budget < 0) {
        if (th == NULL || th->to_kill == NULL) {
            _Py_unset_eval_breaker_bit(tstate, _PY_STACKLESS_TICK_BIT);
        }
        return 0;
    }
    if (--th->tick_budget > 0) {
        return 0;
    }
    PyTaskletObject *cur = th->current;
    int ignore_nesting = cur->ignore_nesting
        || (th->watchdog_flags & PY_WATCHDOG_IGNORE_NESTING);
    if (cur->atomic || th->switch_trap > 0 || tstate->interp->gc.collecting
        || (!ignore_nesting && current_nesting_level(tstate) > 0))
    {
        th->tick_budget = th->tick_timeout;     /* try again later */
        th->tick_deferred = 1;
        return 0;
    }
    th->tick_deferred = 0;
    Py_ssize_t n = PyList_GET_SIZE(th->watchdogs);
    if (th->timer_level >= n) {
        return 0;
    }
    PyTaskletObject *w = (PyTaskletObject *)PyList_GET_ITEM(
        th->watchdogs, th->timer_level);
    if (w == cur || !is_paused(w)) {
        th->tick_budget = th->tick_timeout;
        return 0;
    }
    if (th->watchdog_flags & PY_WATCHDOG_SOFT) {
        th->soft_expired = 1;
        th->tick_budget = th->tick_timeout;
        return 0;
    }
    /* Interrupt: the current tasklet is paused and run() returns it. */
    slp_runqueue_unlink(th, cur);
    th->interrupted = cur;      /* the runqueue's reference */
    if (can_park_softly(th, 0)) {
        /* _Py_HandlePending() is called by the eval loop, whose error
         * path makes the switch. */
        cur->resume_push = 0;
        Py_CLEAR(cur->resume_value);
        th->soft_next = (PyTaskletObject *)Py_NewRef(
            switch_prologue(th, cur, w));
        th->soft_preempt = 1;
        th->switch_trap++;
        slp_soft_switch_request(tstate, SLP_PENDING_SWITCH, 1);
        return -1;
    }
    PyObject *res = slp_switch_to(th, w);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* --- module helpers ----------------------------------------------------- */

PyObject *
slp_get_current(void)
{
    slp_thread *th = slp_get_thread();
    return th != NULL ? Py_NewRef(th->current) : NULL;
}

PyObject *
slp_get_main(void)
{
    slp_thread *th = slp_get_thread();
    return th != NULL ? Py_NewRef(th->main) : NULL;
}

Py_ssize_t
slp_get_runcount(void)
{
    slp_thread *th = slp_get_thread();
    return th != NULL ? th->runcount : -1;
}
