/* The runqueue, and who runs next.
 *
 * The runqueue of a thread is a circular list of tasklets linked by
 * next/prev; `head` is the tasklet running now or, while a switch is
 * under way, the one to run next.  Appending (slp_runqueue_append(),
 * inline in stackless_impl.h) puts a tasklet just before head, so it runs
 * last in this cycle.  Between operations the invariant is
 *
 *     current is runnable  <=>  head == current
 *
 * and a switch restores it: the tasklet switched to becomes head (it is
 * inserted there if it was in no chain).  The runqueue holds a strong
 * reference to every tasklet in it; `runcount` counts them.  A blocked
 * tasklet is in its channel's queue instead, a paused one in no chain.
 *
 * Who runs when the current tasklet leaves the runqueue (blocking,
 * schedule_remove, ending), W being the innermost watchdog (a tasklet
 * inside run()) or main (spec S-12): the head, if the runqueue is not
 * empty; else (1) W, if it is paused, unless W is a run() with
 * threadblock; else (2), while another thread of the
 * interpreter could make one of ours runnable, the thread waits for it
 * without the GIL (see "Waiting for other threads" below); else (3) W,
 * if it is paused and this is the initial thread; else (4) the operation
 * fails with "Deadlock" and the tasklet stays where it was.  When a
 * tasklet ends (runner.c, spec S-9) and the runqueue is empty, a paused
 * W resumes; a blocked W waits as in (2), else it is pulled out of its
 * channel and gets the error.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_interp.h"
#include "pycore_ceval.h"         // _Py_eval_breaker_bit_is_set()
#include "pycore_runtime.h"       // _PyRuntime
#include "pycore_fileutils.h"     // _Py_write_noraise()
#include "pycore_pystate.h"       // _PyThreadState_GET()

#include <errno.h>

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

void
slp_runqueue_remove(slp_thread *th, PyTaskletObject *t)
{
    slp_runqueue_unlink(th, t);
    Py_DECREF(t);
}

/* run(timeout, soft=True) expired: at the next voluntary switch its
 * watchdog resumes instead of the next tasklet, which stays runnable
 * (S-5).  Returns that watchdog, or NULL. */
PyTaskletObject *
slp_soft_watchdog(slp_thread *th, PyTaskletObject *prev)
{
    if (!th->soft_expired || th->timer_level >= PyList_GET_SIZE(th->watchdogs)) {
        return NULL;
    }
    PyTaskletObject *w = (PyTaskletObject *)PyList_GET_ITEM(
        th->watchdogs, th->timer_level);
    return w != prev && PyTasklet_Check(w) && w->thread == th
           && slp_is_paused(w) ? w : NULL;
}

PyTaskletObject *
slp_innermost_watchdog(slp_thread *th)
{
    /* [0] is the timer's slot, not a watchdog. */
    Py_ssize_t n = th->watchdogs != NULL ? PyList_GET_SIZE(th->watchdogs) : 0;
    if (n > 1) {
        PyObject *w = PyList_GET_ITEM(th->watchdogs, n - 1);
        if (PyTasklet_Check(w) && ((PyTaskletObject *)w)->thread == th) {
            return (PyTaskletObject *)w;
        }
    }
    return th->main;
}

int
slp_is_initial_thread(slp_thread *th)
{
    PyInterpreterState *interp = th->tstate->interp;
    if (_Py_IsMainInterpreter(interp)) {
        return th->thread_id == _PyRuntime.main_thread;
    }
    return th->tstate == interp->threads.main;
}

/* Waiting for other threads (S-12 (2)).
 *
 * A thread whose runqueue is empty waits, with the GIL released, on its
 * `wakeup` lock while another thread of the interpreter can still make
 * one of its tasklets runnable.  All the accounting is done under the
 * GIL, by looking at the interpreter's thread states: a thread can make
 * progress unless
 *   - it waits here itself (th->waiting) and nothing was given to it
 *     (its runqueue is still empty), or
 *   - it has ended: its tasklets were let go (th->main is NULL), or, for
 *     a thread that never used stackless, its state is being cleared, or
 *   - it joins the non-daemon threads at shutdown (slp_interp.joining),
 *     and does nothing else until they have ended.
 * A thread that finds no other thread able to make progress does not
 * wait: that is a deadlock, reported in the would-be blocker.  Only the
 * waiter clears its own `waiting`, after it has the GIL again, so that a
 * thread woken and not yet running still counts as waiting unless it was
 * given work: two waiters woken together cannot both see the other as
 * running and go back to sleep.
 *
 * What can change the verdict of a waiter wakes it: a tasklet of its own
 * made runnable by another thread (slp_wake_thread(), called by every
 * operation that appends to another thread's runqueue), and the end of
 * another thread or the start of the joins at shutdown
 * (slp_wake_waiters(), from thread.c), after which the waiters look
 * again, and one of them finds the deadlock if all others wait too.
 * A thread whose scheduler waits elsewhere (stacklesslib's hub, in
 * epoll) sets a wakeup fd (set_thread_wakeup_fd()): slp_wake_thread()
 * from another thread writes a byte to it as well.  Such a thread does
 * not count as waiting here: it waits for a timer or an fd.
 * Another thread starting to wait changes nothing for the waiters: it
 * would only wait if it saw a thread able to make progress, which they
 * see as well.
 *
 * `wakeup` is held by its thread, except while a wake-up is pending
 * (th->woken): the waker releases it once, the waiter takes it back.  The
 * main thread waits in slices and handles signals between them, so that
 * KeyboardInterrupt and other handlers that raise get through; where the
 * current tasklet is blocked or paused, the caller undoes that first
 * (see slp_next_after_leaving()).  The end of a slice is no event: the
 * main thread looks at the others when woken, as every thread does.
 * Between slices it also starts the senders of the values that threads
 * without the GIL posted (capi.c): a post reaches a waiting main thread
 * within a slice. */

/* Can the thread of `ts` still make a tasklet of another thread runnable? */
static int
can_make_progress(PyThreadState *ts)
{
    slp_interp *si = ts->interp->stackless;
    if (si != NULL && si->joining == ts) {
        return 0;
    }
    slp_thread *th = slp_thread_of(ts);
    if (th == NULL) {
        return !ts->_status.finalizing;
    }
    if (th->main == NULL) {
        return 0;
    }
    return !th->waiting || th->head != NULL;
}

static int
others_can_make_progress(slp_thread *th)
{
    _PyRuntimeState *runtime = &_PyRuntime;
    int found = 0;
    HEAD_LOCK(runtime);
    for (PyThreadState *ts = th->tstate->interp->threads.head;
         ts != NULL && !found; ts = ts->next)
    {
        found = ts != th->tstate && can_make_progress(ts);
    }
    HEAD_UNLOCK(runtime);
    return found;
}

/* The main thread waits in slices of this many microseconds, and looks at
 * the signals that came in between. */
#define SLP_WAIT_SLICE (50 * 1000)

static int
signals_pending(PyThreadState *tstate)
{
    return _Py_ThreadCanHandleSignals(tstate->interp)
           && _Py_eval_breaker_bit_is_set(tstate, _PY_SIGNALS_PENDING_BIT);
}

int
slp_handle_signals(slp_thread *th)
{
    PyThreadState *tstate = th->tstate;
    _Py_unset_eval_breaker_bit(tstate, _PY_SIGNALS_PENDING_BIT);
    if (PyErr_CheckSignals() < 0) {
        /* The eval loop looks at what is left. */
        _Py_set_eval_breaker_bit(tstate, _PY_SIGNALS_PENDING_BIT);
        return -1;
    }
    return 0;
}

int
slp_wait_for_work(slp_thread *th, int in_place)
{
    PyThreadState *tstate = th->tstate;
    int main_thread = _Py_ThreadCanHandleSignals(tstate->interp);
    int look = 1;       /* at the others: first, and when woken */
    while (th->head == NULL) {
        if (main_thread && slp_posts_pending()) {
            /* Values posted by other threads (PyStackless_PostToChannel):
             * their senders start here, runnable. */
            th->switch_trap++;
            slp_deliver_posts();
            th->switch_trap--;
            continue;
        }
        if (signals_pending(tstate)) {
            if (!in_place) {
                return -2;
            }
            /* The current tasklet has ended: no switch until the next
             * one is chosen. */
            th->switch_trap++;
            int r = slp_handle_signals(th);
            th->switch_trap--;
            if (r < 0) {
                return -2;
            }
            look = 1;
            continue;
        }
        if (look && !others_can_make_progress(th)) {
            return -1;
        }
        look = 0;
        th->waiting = 1;
        PyLockStatus got;
        Py_BEGIN_ALLOW_THREADS
        got = PyThread_acquire_lock_timed(
            th->wakeup, main_thread ? SLP_WAIT_SLICE : -1, main_thread);
        Py_END_ALLOW_THREADS
        th->waiting = 0;
        if (th->woken) {
            /* Released for us: hold it again. */
            if (got != PY_LOCK_ACQUIRED) {
                PyThread_acquire_lock(th->wakeup, NOWAIT_LOCK);
            }
            th->woken = 0;
            look = 1;
        }
        else {
            assert(got != PY_LOCK_ACQUIRED);
        }
    }
    return 0;
}

void
slp_wake_thread(slp_thread *th)
{
    if (th->waiting && !th->woken) {
        th->woken = 1;
        PyThread_release_lock(th->wakeup);
    }
    if (th->wakeup_fd >= 0 && th->tstate != _PyThreadState_GET()) {
        /* Another thread's hub may wait in epoll: one byte wakes it (the
         * hub drains the fd).  A full pipe already will; errors are
         * ignored. */
        int saved_errno = errno;
        (void)_Py_write_noraise(th->wakeup_fd, "", 1);
        errno = saved_errno;
    }
}

void
slp_wake_waiters(PyInterpreterState *interp)
{
    _PyRuntimeState *runtime = &_PyRuntime;
    HEAD_LOCK(runtime);
    for (PyThreadState *ts = interp->threads.head; ts != NULL; ts = ts->next) {
        slp_thread *th = slp_thread_of(ts);
        if (th != NULL) {
            slp_wake_thread(th);
        }
    }
    HEAD_UNLOCK(runtime);
}

PyTaskletObject *
slp_next_after_leaving(slp_thread *th, PyTaskletObject *leaving)
{
    if (th->head != NULL) {
        return th->head;
    }
    /* (1): W resumes, unless its run() asked to block the thread. */
    PyTaskletObject *w = slp_innermost_watchdog(th);
    int threadblock = th->watchdog_flags & PY_WATCHDOG_THREADBLOCK;
    if (w != NULL && slp_is_paused(w) && (w == leaving || !threadblock)) {
        return w;       /* may be `leaving` itself: it resumes at once */
    }
    /* (2): wait while another thread can give us work. */
    int r = slp_wait_for_work(th, 0);
    if (r == 0) {
        return th->head;
    }
    if (r == -2) {
        return NULL;    /* signals: the caller undoes, handles, retries */
    }
    /* (3): the initial thread's W resumes; (4): deadlock. */
    w = slp_innermost_watchdog(th);
    if (w != NULL && slp_is_paused(w) && slp_is_initial_thread(th)) {
        return w;
    }
    PyErr_SetString(PyExc_RuntimeError,
                    "Deadlock: the last runnable tasklet cannot be blocked.");
    return NULL;
}
