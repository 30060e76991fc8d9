/* schedule(), run() and preemption (spec S-1, S-5, T-11).
 *
 * run() makes the calling tasklet a watchdog: it leaves the runqueue and
 * is pushed on th->watchdogs (after its slot [0], which names the tasklet
 * whose run() armed the timer; innermost last) while the others run.  It
 * returns when the runqueue empties (runqueue.c then switches back to
 * W), or, with a timeout, when a tasklet is interrupted.  The timer
 * counts ticks of the eval breaker: the free bit _PY_STACKLESS_TICK_BIT
 * is set only while a timer runs, so code without one pays nothing.  When
 * the budget is spent, the current tasklet is paused and run() returns
 * it.  Preemption waits while the tasklet is atomic, while switching is
 * trapped or the collector runs, and while the tasklet has C state below
 * its frames (nesting) unless it ignores nesting; it is then deferred
 * (tick_deferred) and fires as soon as it is no longer blocked.
 * soft=True interrupts nothing: the watchdog takes the place of the next
 * tasklet at the next voluntary switch.  totaltimeout counts one budget
 * across switches instead of one per timeslice.
 *
 * A tasklet preempted softly is parked at the eval breaker of its frame;
 * where it resumes is said in softswitch.c.  Tasklets the collector finds
 * unreachable while it runs, when nothing may switch, are killed at the
 * next tick (slp_kill_soon()).
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_ceval.h"         // _Py_set_eval_breaker_bit()
#include "pycore_interp.h"
#include "pycore_pyerrors.h"

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
        if (cur->next == cur && slp_soft_watchdog(th, cur) == NULL) {
            return Py_NewRef(retval);
        }
        Py_SETREF(cur->tempval, Py_NewRef(retval));
        PyTaskletObject *next = cur->next != cur ? cur->next
                                                 : slp_soft_watchdog(th, cur);
        return slp_switch_to_soft(th, next, NULL);
    }
    /* The old tempval goes first, while the tasklet still runs: dropping
     * it may run code (a finalizer that kills a tasklet, and switches),
     * which must not come between choosing the next tasklet and the
     * switch to it. */
    for (;;) {
        Py_SETREF(cur->tempval, Py_NewRef(retval));
        slp_runqueue_unlink(th, cur);
        PyTaskletObject *next = slp_next_after_leaving(th, cur);
        if (next != NULL) {
            Py_DECREF(cur);     /* the runqueue's; `current` keeps it */
            return slp_switch_to_soft(th, next, NULL);
        }
        /* Deadlock, or signals came while the thread waited: the tasklet
         * stays runnable. */
        slp_runqueue_append(th, cur);
        th->head = cur;
        Py_DECREF(cur);
        Py_SETREF(cur->tempval, Py_NewRef(Py_None));
        if (PyErr_Occurred() || slp_handle_signals(th) < 0) {
            return NULL;
        }
        if (slp_check_switch_trap(th) < 0) {
            return NULL;
        }
    }
}

/* [0] of the watchdog list: the tasklet whose run() armed the timer, or
 * None (spec M-21.1).  Code may have changed the list: it is made to have
 * that slot again. */
static void
set_armed(slp_thread *th, PyObject *t)
{
    PyObject *list = th->watchdogs;
    int r = PyList_GET_SIZE(list) > 0
            ? PyList_SetItem(list, 0, Py_NewRef(t))
            : PyList_Insert(list, 0, t);
    if (r < 0) {
        PyErr_FormatUnraisable("Exception updating the watchdog list");
    }
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
    set_armed(th, PyList_GET_ITEM(th->watchdogs, th->timer_level));
    _Py_set_eval_breaker_bit(th->tstate, _PY_STACKLESS_TICK_BIT);
}

static void
timer_disarm(slp_thread *th)
{
    th->tick_budget = -1;
    th->watchdog_flags = 0;
    th->soft_expired = 0;
    set_armed(th, Py_None);
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
    if (th->watchdogs == NULL) {
        /* The thread's first run(): its list, idle. */
        th->watchdogs = PyList_New(1);
        if (th->watchdogs == NULL) {
            return NULL;
        }
        PyList_SET_ITEM(th->watchdogs, 0, Py_NewRef(Py_None));
    }
    if (cur->next == cur) {
        Py_RETURN_NONE;      /* nothing else to run */
    }
    if (PyList_GET_SIZE(th->watchdogs) == 0) {
        set_armed(th, Py_None);     /* emptied by some code */
    }
    if (PyList_Append(th->watchdogs, (PyObject *)cur) < 0) {
        return NULL;
    }
    Py_ssize_t level = PyList_GET_SIZE(th->watchdogs) - 1;
    int armed = 0;
    int old_flags = th->watchdog_flags;
    if (timeout > 0 && th->tick_budget < 0) {
        timer_arm(th, timeout, flags);
        armed = 1;
    }
    else {
        /* threadblock applies with or without a timeout: while this
         * watchdog is the innermost, an empty runqueue waits for the
         * other threads (runqueue.c). */
        th->watchdog_flags = (old_flags & ~PY_WATCHDOG_THREADBLOCK)
                             | (flags & PY_WATCHDOG_THREADBLOCK);
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
            if (PyTasklet_Check(w) && w->thread == th && slp_is_paused(w)
                && w != th->current)
            {
                slp_runqueue_append(th, w);
            }
        }
        PyList_SetSlice(th->watchdogs, level, PY_SSIZE_T_MAX, NULL);
    }
    if (armed) {
        timer_disarm(th);
    }
    else {
        th->watchdog_flags = (th->watchdog_flags & ~PY_WATCHDOG_THREADBLOCK)
                             | (old_flags & PY_WATCHDOG_THREADBLOCK);
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
        th->current->pending_irq = 1;
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
    if (th != NULL && th->to_kill != NULL && !slp_collecting(tstate)
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
    if (cur->atomic || th->switch_trap > 0 || slp_collecting(tstate)
        || (!ignore_nesting && current_nesting_level(tstate) > 0))
    {
        /* Try again later: when atomic ends (slp_preemption_unblocked()),
         * else at the next tick.  Not after a whole budget: a tasklet
         * whose ticks fall in and out of nested C calls in step (a loop
         * that calls schedule() with a schedule callback) would have its
         * budget run out inside the callback every time, and never be
         * preempted. */
        th->tick_budget = cur->atomic ? th->tick_timeout : 1;
        th->tick_deferred = 1;
        cur->pending_irq = 1;   /* the tasklet's deferred interrupt */
        return 0;
    }
    th->tick_deferred = 0;
    cur->pending_irq = 0;
    Py_ssize_t n = PyList_GET_SIZE(th->watchdogs);
    if (th->timer_level >= n) {
        return 0;
    }
    PyTaskletObject *w = (PyTaskletObject *)PyList_GET_ITEM(
        th->watchdogs, th->timer_level);
    if (w == cur || !PyTasklet_Check(w) || w->thread != th
        || !slp_is_paused(w))
    {
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
    if (slp_can_park_softly(th, 0)) {
        /* _Py_HandlePending() is called by the eval loop, whose error
         * path makes the switch. */
        cur->resume_push = 0;
        Py_CLEAR(cur->resume_value);
        th->soft_next = (PyTaskletObject *)Py_NewRef(
            slp_switch_prologue(th, cur, w));
        th->soft_preempt = 1;
        th->switch_trap++;
        slp_soft_switch_request(tstate, SLP_PENDING_SWITCH, 1);
        return -1;
    }
    th->preempting = 1;
    PyObject *res = slp_switch_to(th, w);
    th->preempting = 0;
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}
