/* Per-interpreter and per-thread state, and how they end.
 *
 * An interpreter that uses stackless gets an slp_interp: its settings
 * (callbacks, error handler, soft switching) and the code objects of its
 * shim frames (shims.c), hung on PyInterpreterState (patch
 * scheduler-hooks.patch) and freed when the interpreter is cleared.  A
 * thread gets an slp_thread on first use, hung on its _PyThreadStateImpl,
 * with its main tasklet, which stands for the code that was already
 * running: it is current and alone in the runqueue.  Making it also takes
 * the thread's snapshot, where new tasklets start (runner.c).
 *
 * Invariants: th->main and th->current are strong references; every
 * tasklet of the thread but main that has frames or a C stack is in the
 * list th->owned (borrowed links), which is how the thread finds them at
 * its end.
 *
 * Ends.  When a thread state is cleared, the tasklets of the thread
 * that hold a C stack are killed, if the thread can still run code; all
 * the others lose their thread (t->thread is NULL from then on) and keep
 * their frames.  A thread that ends, whether it used stackless or not,
 * can no longer make a tasklet of another thread runnable: the threads
 * waiting for others (S-12, runqueue.c) are woken to look again, as they
 * are when the finalizing thread begins to join the non-daemon threads,
 * which it then only does.  At
 * interpreter shutdown, after atexit, the tasklets of the
 * finalizing thread are killed while modules still work, and daemon
 * threads that still run tasklets, or wait for others, are asked to end
 * them.  The slp_thread is freed with the thread state, except the lock
 * that a daemon thread left waiting at shutdown is blocked on.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_interp.h"
#include "pycore_ceval.h"         // _Py_set_eval_breaker_bit()
#include "pycore_pyerrors.h"
#include "pycore_tstate.h"        // _PyThreadStateImpl

/* A thread used tasklets (pycore_stackless.h). */
int _PyStackless_InUse = 0;

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
    if (_Py_IsMainInterpreter(interp)) {
        /* Our static types may be made ready again by a new runtime
         * (Py_Initialize() after Py_FinalizeEx()). */
        slp_fini_types();
    }
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
    Py_CLEAR(si->invalid_shim);
    Py_CLEAR(si->softfunc_shim);
    Py_CLEAR(si->reduce_frame);
    Py_CLEAR(si->exhausted_generator);
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

int
slp_types_ready(void)
{
    if (PyTasklet_Type.tp_flags & Py_TPFLAGS_READY) {
        return 0;
    }
    /* The module's initialization readies the types and the rest. */
    PyObject *m = PyImport_ImportModule("_stackless");
    if (m == NULL) {
        return -1;
    }
    Py_DECREF(m);
    if (!(PyTasklet_Type.tp_flags & Py_TPFLAGS_READY)) {
        PyErr_SetString(PyExc_SystemError,
                        "the stackless types are not ready");
        return -1;
    }
    return 0;
}

SLP_NOINLINE slp_thread *
slp_thread_init(PyThreadState *tstate)
{
    /* The stack base: above slp_take_snapshot()'s frame, which is below ours. */
    char base_marker = 0;
    if (slp_types_ready() < 0) {
        return NULL;
    }
    slp_thread *th = PyMem_RawCalloc(1, sizeof(slp_thread));
    if (th == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    _PyStackless_InUse = 1;
    th->tstate = tstate;
    th->thread_id = tstate->thread_id;
    th->tick_budget = -1;
    th->wakeup_fd = -1;
    th->cstack_base = &base_marker;
    slp_interp *si = slp_get_interp(tstate->interp);
    if (si == NULL) {
        goto error;
    }
    /* The main tasklet's initial stub (spec M-21.2). */
    th->serial = 1;
    th->serial_last_jump = 1;
    th->stub = slp_cstack_object_new(th, NULL);
    if (th->stub == NULL) {
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
    if (slp_take_snapshot(th) < 0) {
        ((_PyThreadStateImpl *)tstate)->stackless = NULL;
        PyErr_NoMemory();
        goto error;
    }
    (void)base_marker;
    /* D-3: cb(None, main) when a main tasklet starts. */
    slp_call_schedule_callback(th, NULL, th->main);
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
    Py_XDECREF(th->stub);
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

/* The thread's list of the tasklets it owns (not main). */
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

void
slp_to_garbage(PyTaskletObject *t)
{
    /* T-15: it would not die; its C stack stays, with the tasklet, in
     * gc.garbage, for the program to deal with. */
    PyObject *garbage = _PyInterpreterState_GET()->gc.garbage;
    Py_SETREF(t->tempval, Py_NewRef(Py_None));
    t->is_zombie = 1;           /* bit 6 of its pickled flags (M-21.9) */
    if (garbage == NULL || PyList_Append(garbage, (PyObject *)t) < 0) {
        PyErr_Clear();
    }
}

/* test_outside() (spec M-21.6): the calling tasklet is taken out of its
 * thread, as if the thread ran C code of an embedder outside Stackless,
 * which then schedules the tasklets left in the runqueue, one round at a
 * time, each in a temporary main tasklet with a stub of its own; then it
 * comes back.  The caller's frames are kept in its own state meanwhile,
 * as a suspended tasklet's (tasklet.frame and the collector see them),
 * but nothing may switch to it: it runs on, below the others. */

/* The temporary main of a round ends: its state (no frames) goes. */
static void
outside_end_round(slp_thread *th, PyTaskletObject *tmp)
{
    PyThreadState *tstate = th->tstate;
    if (tmp->in_runqueue) {
        slp_runqueue_remove(th, tmp);
    }
    slp_execstate st;
    slp_cstate cst;
    slp_cstate_init(&cst, 0);
    slp_execstate_save(tstate, &st, &cst);
    slp_execstate_clear(&st);
    slp_cstate_free(&cst);
    /* Dead, and no main any more: rebound, it would be a plain tasklet. */
    tmp->state = SLP_NEW;
    tmp->is_main = 0;
}

PyObject *
slp_test_outside(void)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL || slp_check_switch_trap(th) < 0) {
        return NULL;
    }
    PyThreadState *tstate = th->tstate;
    PyTaskletObject *cur = th->current;
    if (!cur->in_runqueue || th->main == NULL || th->stub == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "test_outside: the caller is not running");
        return NULL;
    }
    slp_tasklet_extra *x = slp_tasklet_extra_get(cur);
    if (x == NULL) {
        return NULL;
    }
    int n = 0;
    for (_PyInterpreterFrame *f = tstate->current_frame; f; f = f->previous) {
        n += f->owner == FRAME_OWNED_BY_CSTACK;
    }
    if (slp_cstate_reserve(&x->cstate, n) < 0) {
        return PyErr_NoMemory();
    }

    /* 1. Save and detach: the caller's frames (its chain, recursion
     * depth and nesting level go with them), main, stub, the watchdogs
     * and their timer, serial_last_jump; the caller leaves the
     * runqueue. */
    _PyInterpreterFrame *top = tstate->current_frame;
    _PyInterpreterFrame *calling = th->calling_frame;
    x->cstate.calling_frame =
        top != NULL && (slp_softcall_active(tstate) || calling == top)
        ? top : NULL;
    x->cstate.switched_in_c = top != NULL && x->cstate.calling_frame == NULL;
    slp_execstate_save(tstate, &cur->exec, &x->cstate);
    th->calling_frame = NULL;
    slp_runqueue_unlink(th, cur);       /* its reference is ours now */
    cur->outside = 1;
    PyTaskletObject *main = th->main;
    PyCStackObject *stub = th->stub;
    PyObject *watchdogs = th->watchdogs;
    th->main = NULL;
    th->stub = NULL;
    th->watchdogs = NULL;
    unsigned long long serial_last_jump = th->serial_last_jump;
    long tick_budget = th->tick_budget, tick_timeout = th->tick_timeout;
    int watchdog_flags = th->watchdog_flags;
    Py_ssize_t timer_level = th->timer_level;
    int soft_expired = th->soft_expired, tick_deferred = th->tick_deferred;
    th->tick_budget = -1;
    th->watchdog_flags = 0;
    th->soft_expired = 0;
    th->tick_deferred = 0;

    /* 2. While tasklets are runnable: a round in a temporary main, which
     * has a new initial stub (spec M-21.2). */
    int failed = 0;
    while (th->head != NULL) {
        th->serial++;
        th->serial_last_jump = th->serial;
        PyCStackObject *round_stub = slp_cstack_object_new(th, NULL);
        PyTaskletObject *tmp = round_stub != NULL ? new_main_tasklet(th)
                                                  : NULL;
        if (tmp == NULL) {
            Py_XDECREF(round_stub);
            failed = 1;
            break;
        }
        Py_XSETREF(th->stub, round_stub);
        Py_XSETREF(th->main, tmp);
        slp_execstate st;
        slp_cstate cst;
        slp_execstate_init(&st, NULL);
        slp_cstate_init(&cst, tstate->c_recursion_remaining);
        slp_execstate_restore(tstate, &st, &cst);
        Py_SETREF(th->current, (PyTaskletObject *)Py_NewRef(tmp));
        slp_runqueue_append(th, tmp);
        th->head = tmp;

        PyObject *res = PyStackless_Schedule(Py_None, 0);

        assert(th->current == tmp);
        outside_end_round(th, tmp);
        if (res == NULL) {
            failed = 1;
            break;
        }
        Py_DECREF(res);
    }

    /* 3. Restore; the caller comes back, first in the runqueue. */
    PyObject *exc = PyErr_GetRaisedException();
    slp_execstate_restore(tstate, &cur->exec, &x->cstate);
    x->cstate.calling_frame = NULL;
    x->cstate.switched_in_c = 0;
    th->calling_frame = calling;
    cur->outside = 0;
    PyTaskletObject *last = th->current;
    th->current = cur;                  /* the runqueue's reference */
    slp_runqueue_append(th, cur);
    th->head = cur;
    PyObject *tmp_main = (PyObject *)th->main;
    PyObject *tmp_stub = (PyObject *)th->stub;
    PyObject *tmp_watchdogs = th->watchdogs;
    th->main = main;
    th->stub = stub;
    th->watchdogs = watchdogs;
    th->serial_last_jump = serial_last_jump;
    th->tick_budget = tick_budget;
    th->tick_timeout = tick_timeout;
    th->watchdog_flags = watchdog_flags;
    th->timer_level = timer_level;
    th->soft_expired = soft_expired;
    th->tick_deferred = tick_deferred;
    if (tick_budget >= 0) {
        _Py_set_eval_breaker_bit(tstate, _PY_STACKLESS_TICK_BIT);
    }
    /* Dropped last: code may run. */
    Py_DECREF(last);
    Py_XDECREF(tmp_main);
    Py_XDECREF(tmp_stub);
    Py_XDECREF(tmp_watchdogs);
    if (failed) {
        if (exc == NULL) {
            PyErr_SetString(PyExc_SystemError,
                            "test_outside failed without an exception");
        }
        else {
            PyErr_SetRaisedException(exc);
        }
        return NULL;
    }
    Py_XDECREF(exc);
    Py_RETURN_NONE;
}

/* Kill the started tasklets of the calling thread, so that their
 * `finally` clauses run while the thread can still run code. */
void
slp_kill_started(slp_thread *th)
{
    /* The thread ends: its main tasklet, which kills the others now, is
     * not to be told to end again when they switch back to it (at
     * shutdown, kill_other_threads() asked it both ways). */
    th->exit_main = 0;
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

/* The thread ends: its tasklets with a C stack are killed if the
 * thread can still run code, the others become threadless. */
void
_PyStackless_ThreadClear(PyThreadState *tstate)
{
    slp_thread *th = slp_thread_of(tstate);
    if (th == NULL) {
        /* It could have woken a waiting thread, and can no longer. */
        if (_PyStackless_InUse) {
            slp_wake_waiters(tstate->interp);
        }
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
    Py_CLEAR(th->stub);
    Py_CLEAR(th->current);
    Py_CLEAR(th->main);
    /* The threads waiting for others look again: this one can wake
     * nobody any more (S-12). */
    slp_wake_waiters(tstate->interp);
}

/* At shutdown, tstate waits for the non-daemon threads to end, and does
 * nothing else until they have: a thread that waits for it to give it
 * work would wait for ever, and must look again (S-12). */
void
_PyStackless_JoinThreads(PyThreadState *tstate, int joining)
{
    slp_interp *si = tstate->interp->stackless;
    if (si == NULL) {
        return;     /* no thread of the interpreter used stackless */
    }
    si->joining = joining ? tstate : NULL;
    if (joining) {
        slp_wake_waiters(tstate->interp);
    }
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
        /* A thread that waits for others (S-12) runs no tasklet: its
         * current one, blocked, is killed like the others, which wakes
         * the thread. */
        int running = !th->waiting;
        if (th->current == th->main && running) {
            th->exit_main = 1;
        }
        PyObject *targets = PyList_New(0);
        if (targets == NULL) {
            PyErr_Clear();
            continue;
        }
        /* Main and the watchdogs ([1:] of the list). */
        if (PyList_Append(targets, (PyObject *)th->main) < 0) {
            PyErr_Clear();
        }
        for (Py_ssize_t i = 1; th->watchdogs != NULL
                               && i < PyList_GET_SIZE(th->watchdogs); i++)
        {
            if (PyList_Append(targets,
                              PyList_GET_ITEM(th->watchdogs, i)) < 0)
            {
                PyErr_Clear();
                break;
            }
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(targets); i++) {
            PyTaskletObject *t = (PyTaskletObject *)PyList_GET_ITEM(targets, i);
            if (!PyTasklet_Check(t) || (t == th->current && running)
                || t->state != SLP_STARTED)
            {
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

/* Interpreter shutdown, after atexit: the calling thread's tasklets
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
    /* A daemon thread left waiting at shutdown stays blocked on its lock
     * until the process ends: woken, it would only take the GIL to stop,
     * with a thread state that is gone. */
    if (th->wakeup != NULL && !th->waiting) {
        PyThread_release_lock(th->wakeup);
        PyThread_free_lock(th->wakeup);
    }
    PyMem_RawFree(th->depth_cache);
    PyMem_RawFree(th);
}

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
