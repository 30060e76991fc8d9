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
 * schedule_remove, run, ending): the head, if the runqueue is not empty;
 * else W, the innermost watchdog (a tasklet inside run()) or main, if W
 * is paused; else, while other threads could make one of ours runnable,
 * the thread waits for them without the GIL; else the operation fails
 * with "Deadlock" and the tasklet stays where it was (spec S-12).
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_interp.h"

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
    return w != prev && slp_is_paused(w) ? w : NULL;
}

PyTaskletObject *
slp_innermost_watchdog(slp_thread *th)
{
    Py_ssize_t n = th->watchdogs != NULL ? PyList_GET_SIZE(th->watchdogs) : 0;
    if (n > 0) {
        return (PyTaskletObject *)PyList_GET_ITEM(th->watchdogs, n - 1);
    }
    return th->main;
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
    PyTaskletObject *w = slp_innermost_watchdog(th);
    if (w != NULL && slp_is_paused(w)) {
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
