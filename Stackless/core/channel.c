/* The channel type (spec C).
 *
 * Layout.  A channel is a FIFO queue of blocked tasklets, linked through
 * their next/prev fields (head first, not circular), and a balance:
 *
 *     balance > 0    `balance` senders wait, each with its value in its
 *                    tempval
 *     balance < 0    -balance receivers wait
 *     balance == 0   the queue is empty
 *
 * Invariants between operations: the queue holds exactly |balance|
 * tasklets, all blocked in the direction of the sign of balance, each
 * with t->channel == this channel (a strong reference) and t->blocked
 * == +1 (send) or -1 (receive); the queue holds a strong reference to
 * each.  Senders and receivers never wait together.
 *
 * An operation (C-13) that finds a partner waiting takes the first one
 * out and hands the value over directly: the receiver's tempval gets it,
 * the sender's becomes None.  Preference decides who runs first.  An
 * operation without a partner blocks: the caller leaves the runqueue,
 * joins the queue, and the scheduler runs somebody else; the partner that
 * comes later does the hand-over and makes it runnable.
 */

#include "stackless_impl.h"
#include "pycore_pyerrors.h"

/*[clinic input]
module _stackless
class _stackless.channel "PyChannelObject *" "&PyChannel_Type"
[clinic start generated code]*/
/*[clinic end generated code: output=da39a3ee5e6b4b0d input=96fa21ca6257bf27]*/

#include "clinic/channel.c.h"

/* --- the queue ---------------------------------------------------------- */

/* Link t at the tail of ch's queue, which takes the caller's references
 * to t and to ch (which t->channel keeps). */
static inline void
queue_link(PyChannelObject *ch, PyTaskletObject *t, int dir)
{
    assert(t->next == NULL && t->prev == NULL && !t->in_runqueue);
    t->prev = ch->tail;
    if (ch->tail != NULL) {
        ch->tail->next = t;
    }
    else {
        ch->head = t;
    }
    ch->tail = t;
    ch->balance += dir;
    t->blocked = dir;
    t->channel = ch;
}

static void
queue_append(PyChannelObject *ch, PyTaskletObject *t, int dir)
{
    Py_INCREF(ch);
    Py_INCREF(t);
    queue_link(ch, t, dir);
}

/* Unlink t; the queue's references to t and to ch (t->channel) go to the
 * caller. */
static inline void
queue_unlink(PyChannelObject *ch, PyTaskletObject *t)
{
    assert(t->channel == ch && t->blocked != 0);
    if (t->prev != NULL) {
        t->prev->next = t->next;
    }
    else {
        ch->head = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    }
    else {
        ch->tail = t->prev;
    }
    t->next = t->prev = NULL;
    ch->balance -= t->blocked;
    t->blocked = 0;
    t->channel = NULL;
}

/* For kill, throw and the scheduler: t leaves its channel (paused). */
void
slp_channel_remove_blocked(PyTaskletObject *t)
{
    PyChannelObject *ch = t->channel;
    queue_unlink(ch, t);
    Py_DECREF(ch);
    Py_DECREF(t);
}

static void
drop_unrestored(PyChannelObject *ch)
{
    while (ch->head != NULL && ch->head->state == SLP_NEW) {
        slp_channel_remove_blocked(ch->head);
    }
}

/* For unpickling: t, paused, joins the queue in direction dir. */
void
slp_channel_link_blocked(PyChannelObject *ch, PyTaskletObject *t, int dir)
{
    queue_append(ch, t, dir);
}

/* --- the channel callback (D-4) ------------------------------------------ */

static void
call_channel_callback(slp_thread *th, PyChannelObject *ch, PyTaskletObject *t,
                      int sending, int willblock)
{
    PyObject *cb = Py_NewRef(th->si->channel_callback);
    th->in_channel_callback++;
    PyObject *res = PyObject_CallFunction(cb, "OOii", ch, t, sending,
                                          willblock);
    th->in_channel_callback--;
    if (res == NULL) {
        PyErr_FormatUnraisable("Error in channel callback %R", cb);
    }
    Py_XDECREF(res);
    Py_DECREF(cb);
}

/* --- the operation (C-13) ------------------------------------------------ */

/* The caller switches and, when it resumes, returns `result` (stolen);
 * a bomb received is raised then. */
static PyObject *
finish_switch(slp_thread *th, PyTaskletObject *next, PyObject *result,
              int dir)
{
    if (dir < 0 && PyBomb_Check(result)) {
        /* The tempval of a tasklet that resumes is raised if a bomb. */
        Py_SETREF(th->current->tempval, result);
        return slp_switch_to_soft(th, next, NULL);
    }
    return slp_switch_to_soft(th, next, result);
}

/* The partner p, first in the queue, leaves it: its references to ch and
 * p are ours now.  Returns the result of the operation: None for a send,
 * whose value p takes (the caller's reference), or the value p sent.
 * Drops p's tempval, where it sends. */
static inline PyObject *
hand_over(PyChannelObject *ch, PyTaskletObject *p, int dir, PyObject *value)
{
    queue_unlink(ch, p);
    if (p->extra != NULL && p->extra->latch != NULL) {
        /* A member that waits: its latch has not fired (that would have
         * withdrawn it), and fires now, p winning.  Not on the quick
         * way, which leaves members to channel_action(). */
        slp_latch_take(p);
    }
    if (dir > 0) {
        Py_SETREF(p->tempval, value);
        return Py_None;                 /* immortal */
    }
    PyObject *result = p->tempval;
    p->tempval = Py_None;
    return result;
}

/* --- the quick way (CALL_STACKLESS) ------------------------------------- */

/* The quick way of channel_action() for ch.send(value) (dir 1) and
 * ch.receive() (dir -1, value NULL) called by CALL_STACKLESS, in the
 * common cases: a partner of this thread waits, and runs first (the
 * channel's preference) or later; nobody waits and the caller blocks,
 * another tasklet runnable.  A switch is made at once, and only then (see
 * slp_can_switch_now()).  Takes the references of the CALL's inputs,
 * callable, ch and value, and returns the result of the operation, or
 * _PyStackless_SWITCHED; or NULL with nothing done (no reference taken)
 * where it is not that simple. */
static SLP_INLINE PyObject *
channel_quick(PyThreadState *tstate, PyObject *callable, PyChannelObject *ch,
              int dir, PyObject *value)
{
    slp_thread *th = ((_PyThreadStateImpl *)tstate)->stackless;
    if (th == NULL || th->si == NULL || th->si->quick_off
        || th->in_channel_callback
        || th->current == NULL)     /* its tasklets were let go */
    {
        return NULL;
    }
    PyTaskletObject *cur = th->current;
    if (dir > 0 ? ch->balance < 0 : ch->balance > 0) {
        PyTaskletObject *p = ch->head;
        if (p->thread != th || ch->schedule_all || p->state == SLP_NEW
            || PyBomb_Check(dir > 0 ? value : p->tempval)
            || (p->extra != NULL && p->extra->latch != NULL))
        {
            return NULL;
        }
        if (ch->preference != -dir) {
            /* No switch: the partner runs later, last in the runqueue,
             * which takes our reference. */
            PyObject *result = hand_over(ch, p, dir, value);
            slp_runqueue_link_after(th, th->head->prev, p);
            Py_DECREF(callable);
            Py_DECREF(ch);
            Py_DECREF(ch);
            return result;
        }
        /* The CALL's reference to ch goes, and p's with p: another one
         * must keep ch alive, and so must one to the callable.  A
         * receiver that waits has None in its tempval, which hand_over()
         * replaces. */
        if (Py_REFCNT(ch) <= 2 || Py_REFCNT(callable) <= 1
            || (dir > 0 && p->tempval != Py_None)
            || !slp_can_switch_now(tstate, th, p))
        {
            return NULL;
        }
        PyObject *result = hand_over(ch, p, dir, value);
        /* p runs right after the caller, which resumes after a full
         * cycle; the runqueue takes the queue's reference. */
        slp_runqueue_link_after(th, cur, p);
        slp_decref_alive(callable);
        slp_decref_alive((PyObject *)ch);
        slp_decref_alive((PyObject *)ch);
        return slp_switch_now(tstate, th, p, result);
    }
    /* The caller's reference to ch, once it waits, keeps ch alive. */
    if (cur->block_trap || ch->closing || cur->next == cur
        || cur->tempval != Py_None || PyBomb_Check(cur->next->tempval)
        || Py_REFCNT(callable) <= 1
        || !slp_can_switch_now(tstate, th, cur->next))
    {
        return NULL;
    }
    /* The caller blocks: the runqueue's reference to it and the CALL's to
     * ch go to the channel's queue, and the value sent to its tempval. */
    slp_runqueue_unlink(th, cur);
    cur->tempval = dir > 0 ? value : Py_None;
    queue_link(ch, cur, dir);
    slp_decref_alive(callable);
    return slp_switch_now(tstate, th, th->head, NULL);
}

static inline void
drop_tempval(PyTaskletObject *t)
{
    if (t->tempval != Py_None) {
        Py_SETREF(t->tempval, Py_NewRef(Py_None));
    }
}

/* dir +1: send `value` (a bomb is raised in the receiver); dir -1:
 * receive, and `value` is NULL.  Returns None or the value received. */
PyObject *
slp_channel_action(slp_thread *th, PyChannelObject *ch, int dir,
                   PyObject *value)
{
    if (th == NULL) {
        return NULL;
    }
    slp_interp *si = th->si;
    if (th->in_channel_callback) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Recursive channel call due to callbacks!");
        return NULL;
    }
    PyTaskletObject *cur = th->current;
    /* A tasklet that a pickled channel linked, whose own state never came
     * (pickling/tasklets.c), has no frame waiting here: it leaves. */
    drop_unrestored(ch);
    /* An old tempval goes first: dropping it may run code (a finalizer
     * that kills a tasklet, and switches), which must not come between
     * the choices made below and the switch. */
    drop_tempval(cur);
    int partner_waiting = dir > 0 ? ch->balance < 0 : ch->balance > 0;

    if (si != NULL && si->channel_callback != NULL) {
        call_channel_callback(th, ch, cur, dir > 0, !partner_waiting);
        /* The callback may have changed the channel (killed the partner,
         * closed it, ...): the operation goes by what it finds now. */
        cur = th->current;
        drop_unrestored(ch);
        drop_tempval(cur);
        partner_waiting = dir > 0 ? ch->balance < 0 : ch->balance > 0;
    }

again:
    if (cur->extra != NULL && cur->extra->latch != NULL
        && slp_latch_fired(cur))
    {
        /* A member of a latch that fired meanwhile (latch.c). */
        return slp_latch_marker(cur);
    }
    if (partner_waiting) {
        PyTaskletObject *p = ch->head;
        PyObject *latch = cur->extra != NULL ? cur->extra->latch : NULL;
        if (latch != NULL && p->extra != NULL && p->extra->latch == latch) {
            PyErr_SetString(PyExc_RuntimeError,
                            "two members of a latch cannot be partners");
            return NULL;
        }
        int same_thread = p->thread == th;
        int run_partner = same_thread && !ch->schedule_all
                          && ch->preference == -dir;
        if (same_thread && (ch->schedule_all || run_partner)
            && slp_check_switch_trap(th) < 0)
        {
            return NULL;
        }
        if (latch != NULL) {
            slp_latch_take(cur);        /* it goes through: it wins */
        }
        PyObject *result = hand_over(ch, p, dir,
                                     dir > 0 ? Py_NewRef(value) : NULL);
        Py_DECREF(ch);
        if (p->thread == NULL) {
            Py_DECREF(p);
            Py_DECREF(result);
            PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
            return NULL;
        }
        if (!same_thread) {
            slp_runqueue_append(p->thread, p);
            slp_wake_thread(p->thread);
            Py_DECREF(p);
        }
        else if (ch->schedule_all) {
            slp_runqueue_append(th, p);
            Py_DECREF(p);
            /* The caller yields to its successor and stays runnable. */
            Py_SETREF(cur->tempval, Py_NewRef(Py_None));
            return finish_switch(th, cur->next, result, dir);
        }
        else if (run_partner) {
            slp_runqueue_link_after(th, cur, p);     /* p runs next */
            return finish_switch(th, p, result, dir);
        }
        else {
            slp_runqueue_append(th, p);
            Py_DECREF(p);
        }
        if (dir < 0 && PyBomb_Check(result)) {
            slp_bomb_explode(result);
            Py_DECREF(result);
            return NULL;
        }
        return result;
    }

    /* No partner: block. */
    if (cur->block_trap) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this tasklet does not like to be blocked.");
        return NULL;
    }
    if (ch->closing) {
        PyErr_SetString(PyExc_ValueError,
                        "Send/receive operation on a closed channel");
        return NULL;
    }
    if (slp_check_switch_trap(th) < 0) {
        return NULL;
    }
    /* Join the queue first: while this thread waits for others (S-12),
     * they must find the tasklet there.  The tempval is None (see
     * above): nothing is dropped. */
    slp_runqueue_remove(th, cur);       /* `current` keeps it alive */
    Py_SETREF(cur->tempval, Py_NewRef(dir > 0 ? value : Py_None));
    queue_append(ch, cur, dir);
    PyTaskletObject *next = slp_next_after_leaving(th, cur);
    if (next == NULL) {
        /* Deadlock, or signals came while the thread waited: the
         * tasklet stays unblocked, as it was. */
        if (cur->blocked) {
            slp_channel_remove_blocked(cur);
        }
        if (!cur->in_runqueue) {
            slp_runqueue_append(th, cur);
        }
        th->head = cur;
        Py_SETREF(cur->tempval, Py_NewRef(Py_None));
        if (PyErr_Occurred() || slp_handle_signals(th) < 0) {
            return NULL;
        }
        /* The handlers returned: the operation goes on, by what it finds
         * now (they may have used the channel). */
        drop_unrestored(ch);
        drop_tempval(cur);
        partner_waiting = dir > 0 ? ch->balance < 0 : ch->balance > 0;
        goto again;
    }
    return slp_switch_to_soft(th, next, NULL);
}

/* Not Argument Clinic: see slp_first_argument(). */
PyDoc_STRVAR(channel_send__doc__,
"send($self, /, value)\n"
"--\n"
"\n"
"Send a value over the channel; blocks until a receiver takes it.");

static PyObject *
channel_send(PyChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "send", "value");
    PyObject *value = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (value == NULL) {
        return NULL;
    }
    return slp_channel_action(slp_get_thread(), self, 1, value);
}

/*[clinic input]
_stackless.channel.receive

Receive a value; blocks until a sender provides one.
[clinic start generated code]*/

static PyObject *
_stackless_channel_receive_impl(PyChannelObject *self)
/*[clinic end generated code: output=2836ac708cdd3cf6 input=70a72efa72393ac9]*/
{
    return slp_channel_action(slp_get_thread(), self, -1, NULL);
}

static PyObject *
send_bomb(PyChannelObject *self, PyObject *bomb)
{
    if (bomb == NULL) {
        return NULL;
    }
    PyObject *res = slp_channel_action(slp_get_thread(), self, 1, bomb);
    Py_DECREF(bomb);
    return res;
}

PyDoc_STRVAR(channel_send_exception__doc__,
"send_exception($self, /, exc, *args)\n"
"--\n"
"\n"
"Send exc(*args): the receiver raises it.");

static PyObject *
channel_send_exception(PyChannelObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "send_exception", "exc");
    PyObject *exc = slp_first_argument(&parser, 1, args, nargs, kwnames);
    if (exc == NULL) {
        return NULL;
    }
    if (!PyExceptionClass_Check(exc)) {
        PyErr_SetString(PyExc_TypeError,
                        "exc must be a subclass of BaseException");
        return NULL;
    }
    PyObject *rest = _PyTuple_FromArray(args + 1, nargs > 0 ? nargs - 1 : 0);
    if (rest == NULL) {
        return NULL;
    }
    PyObject *bomb = slp_bomb_from_raise_args(exc, rest, NULL);
    Py_DECREF(rest);
    return send_bomb(self, bomb);
}

/*[clinic input]
_stackless.channel.send_throw

    exc: object
    val: object = None
    tb: object = None

Send an exception, with the rules of `raise`: the receiver raises it.
[clinic start generated code]*/

static PyObject *
_stackless_channel_send_throw_impl(PyChannelObject *self, PyObject *exc,
                                   PyObject *val, PyObject *tb)
/*[clinic end generated code: output=2d50a8e6b763034a input=e725a10b8da2c6d6]*/
{
    return send_bomb(self, slp_bomb_from_raise_args(exc, val, tb));
}

PyDoc_STRVAR(channel_send_sequence__doc__,
"send_sequence($self, /, seq)\n"
"--\n"
"\n"
"Send each item of an iterable; returns how many were sent.");

static PyObject *
channel_send_sequence(PyChannelObject *self, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    SLP_FIRST_ARGUMENT_PARSER(parser, "send_sequence", "seq");
    PyObject *seq = slp_first_argument(&parser, 0, args, nargs, kwnames);
    if (seq == NULL) {
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(seq);
    if (it == NULL) {
        return NULL;
    }
    if (slp_send_sequence_soft(th, (PyObject *)self, it)) {
        Py_DECREF(it);
        return NULL;        /* the eval loop goes on with its frame */
    }
    Py_ssize_t n = 0;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *res = slp_channel_action(th, self, 1, item);
        Py_DECREF(item);
        if (res == NULL) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(res);
        n++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

/*[clinic input]
_stackless.channel.close

Refuse operations that would block from now on.
[clinic start generated code]*/

static PyObject *
_stackless_channel_close_impl(PyChannelObject *self)
/*[clinic end generated code: output=01f7c2f0b13c5e16 input=12d852bc5d6edc20]*/
{
    self->closing = 1;
    Py_RETURN_NONE;
}

/*[clinic input]
_stackless.channel.open

Undo close().
[clinic start generated code]*/

static PyObject *
_stackless_channel_open_impl(PyChannelObject *self)
/*[clinic end generated code: output=0e807be490b9a82a input=138d2f97e6814c6b]*/
{
    self->closing = 0;
    Py_RETURN_NONE;
}

/* --- iteration (C-7) ------------------------------------------------------ */

static PyObject *
channel_next(slp_thread *th, PyChannelObject *self)
{
    if (self->closing && self->balance <= 0) {
        return NULL;    /* StopIteration */
    }
    PyObject *res = slp_channel_action(th, self, -1, NULL);
    if (res == NULL && PyErr_ExceptionMatches(PyExc_StopIteration)) {
        /* A sender ended the iteration: send_exception(StopIteration). */
        PyErr_Clear();
    }
    return res;
}

PyObject *
_PyStackless_ChannelNext(PyObject *self)
{
    return channel_next(slp_get_thread(), (PyChannelObject *)self);
}

PyObject *
_PyStackless_SoftIterNext(PyThreadState *tstate, PyObject *self)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    _PyInterpreterFrame *outer = ts->stackless_softcall;
    ts->stackless_softcall = tstate->current_frame;
    PyObject *res = channel_next(slp_get_thread_of(tstate),
                                 (PyChannelObject *)self);
    ts->stackless_softcall = outer;
    /* FOR_ITER takes NULL without an exception for the end of the loop. */
    return slp_soft_result(tstate, res, 1);
}

/* --- attributes ----------------------------------------------------------- */

static PyObject *
channel_get_balance(PyChannelObject *self, void *c)
{
    return PyLong_FromSsize_t(self->balance);
}

static PyObject *
channel_get_preference(PyChannelObject *self, void *c)
{
    return PyLong_FromLong(self->preference);
}

static int
channel_set_preference(PyChannelObject *self, PyObject *value, void *c)
{
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "preference must be set to an integer");
        return -1;
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow) {
        v = overflow;
    }
    self->preference = v > 0 ? 1 : v < 0 ? -1 : 0;
    return 0;
}

static PyObject *
channel_get_schedule_all(PyChannelObject *self, void *c)
{
    return PyLong_FromLong(self->schedule_all);
}

static int
channel_set_schedule_all(PyChannelObject *self, PyObject *value, void *c)
{
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "schedule_all must be set to a bool or integer");
        return -1;
    }
    int v = PyObject_IsTrue(value);
    if (v < 0) {
        return -1;
    }
    self->schedule_all = v;
    return 0;
}

static PyObject *
channel_get_closing(PyChannelObject *self, void *c)
{
    return PyBool_FromLong(self->closing);
}

static PyObject *
channel_get_closed(PyChannelObject *self, void *c)
{
    return PyBool_FromLong(self->closing && self->balance == 0);
}

static PyObject *
channel_get_queue(PyChannelObject *self, void *c)
{
    return Py_NewRef(self->head != NULL ? (PyObject *)self->head : Py_None);
}

static PyGetSetDef channel_getset[] = {
    {"balance", (getter)channel_get_balance, NULL,
     "Waiting senders (> 0), or minus the waiting receivers (< 0)."},
    {"preference", (getter)channel_get_preference,
     (setter)channel_set_preference,
     "-1: the receiver runs first (default), 1: the sender, 0: neither."},
    {"schedule_all", (getter)channel_get_schedule_all,
     (setter)channel_set_schedule_all,
     "If 1, every operation schedules (overrides preference)."},
    {"closing", (getter)channel_get_closing, NULL,
     "True after close(): operations that would block raise ValueError."},
    {"closed", (getter)channel_get_closed, NULL,
     "True if closing and nobody waits."},
    {"queue", (getter)channel_get_queue, NULL,
     "The first waiting tasklet, or None; walk the rest with .next."},
    {NULL}
};

/* --- the object --------------------------------------------------------- */

static PyObject *
channel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyChannelObject *ch = (PyChannelObject *)type->tp_alloc(type, 0);
    if (ch == NULL) {
        return NULL;
    }
    ch->preference = -1;
    return (PyObject *)ch;
}

static int
channel_traverse(PyChannelObject *ch, visitproc visit, void *arg)
{
    /* Not Py_TYPE(): the type is static; a subclass's instances count as
     * references to it, and subtype_traverse() visits it. */
    for (PyTaskletObject *t = ch->head; t != NULL; t = t->next) {
        Py_VISIT(t);
    }
    return 0;
}

/* Cleared by the collector: closing, and the waiting tasklets are let go,
 * paused (C-1). */
static int
channel_clear(PyChannelObject *ch)
{
    ch->closing = 1;
    while (ch->head != NULL) {
        slp_channel_remove_blocked(ch->head);
    }
    return 0;
}

static void
channel_dealloc(PyChannelObject *ch)
{
    PyObject_GC_UnTrack(ch);
    if (ch->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)ch);
    }
    /* Blocked tasklets hold a reference: the queue is empty here. */
    assert(ch->head == NULL);
    Py_TYPE(ch)->tp_free((PyObject *)ch);
}

static PyObject *
channel_repr(PyChannelObject *ch)
{
    return PyUnicode_FromFormat("<%s object at %p, balance %zd%s>",
                                Py_TYPE(ch)->tp_name, ch, ch->balance,
                                ch->closing ? ", closing" : "");
}

/* The methods that switch (softcall.c). */
/* send and receive as called by the eval loop (slp_methoddef's tfunc). */
static PyObject *
channel_send_t(PyThreadState *tstate, PyObject *self, PyObject *value)
{
    return slp_channel_action(slp_get_thread_of(tstate),
                          (PyChannelObject *)self, 1, value);
}

static PyObject *
channel_receive_t(PyThreadState *tstate, PyObject *self, PyObject *unused)
{
    return slp_channel_action(slp_get_thread_of(tstate),
                          (PyChannelObject *)self, -1, NULL);
}

/* ch.send(value) (dir 1) and ch.receive() (dir -1) called by
 * CALL_STACKLESS: the quick way if it applies, else as every other
 * switching builtin.  Takes the references of the inputs. */
static SLP_INLINE PyObject *
channel_call(PyThreadState *tstate, PyObject *callable, PyObject **args,
             int nargs, int dir)
{
    if (nargs == (dir > 0 ? 2 : 1) && Py_IS_TYPE(args[0], &PyChannel_Type)) {
        PyObject *res = channel_quick(tstate, callable,
                                      (PyChannelObject *)args[0], dir,
                                      dir > 0 ? args[1] : NULL);
        if (res != NULL) {
            return res;
        }
    }
    return slp_call_entry(tstate, callable, args, nargs);
}

static PyObject *
channel_send_call(PyThreadState *tstate, PyObject *callable, PyObject **args,
                  int nargs)
{
    return channel_call(tstate, callable, args, nargs, 1);
}

static PyObject *
channel_receive_call(PyThreadState *tstate, PyObject *callable,
                     PyObject **args, int nargs)
{
    return channel_call(tstate, callable, args, nargs, -1);
}

/* The same for send and receive bound to a channel: `send = ch.send`,
 * then `send(value)`, a classic idiom. */
static SLP_INLINE PyObject *
channel_bound_call(PyThreadState *tstate, PyObject *callable,
                   PyObject **args, int nargs, int dir)
{
    /* Its __self__ (no switching builtin is METH_STATIC). */
    PyObject *self = ((PyCFunctionObject *)callable)->m_self;
    if (nargs == (dir > 0 ? 1 : 0) && Py_IS_TYPE(self, &PyChannel_Type)) {
        /* channel_quick() takes a reference to the channel. */
        Py_INCREF(self);
        PyObject *res = channel_quick(tstate, callable,
                                      (PyChannelObject *)self, dir,
                                      dir > 0 ? args[0] : NULL);
        if (res != NULL) {
            return res;
        }
        slp_decref_alive(self);
    }
    return slp_call_entry(tstate, callable, args, nargs);
}

static PyObject *
channel_bound_send_call(PyThreadState *tstate, PyObject *callable,
                        PyObject **args, int nargs)
{
    return channel_bound_call(tstate, callable, args, nargs, 1);
}

static PyObject *
channel_bound_receive_call(PyThreadState *tstate, PyObject *callable,
                           PyObject **args, int nargs)
{
    return channel_bound_call(tstate, callable, args, nargs, -1);
}

slp_methoddef slp_channel_switching[] = {
    {{{"send", _PyCFunction_CAST(channel_send),
       METH_FASTCALL | METH_KEYWORDS, channel_send__doc__},
      channel_send_call, channel_bound_send_call}, channel_send_t},
    {{_STACKLESS_CHANNEL_RECEIVE_METHODDEF
      channel_receive_call, channel_bound_receive_call}, channel_receive_t},
    {{{"send_exception", _PyCFunction_CAST(channel_send_exception),
       METH_FASTCALL | METH_KEYWORDS, channel_send_exception__doc__},
      slp_call_entry, slp_call_entry}, NULL},
    SLP_METHODDEF(_STACKLESS_CHANNEL_SEND_THROW_METHODDEF),
    {{{"send_sequence", _PyCFunction_CAST(channel_send_sequence),
       METH_FASTCALL | METH_KEYWORDS, channel_send_sequence__doc__},
      slp_call_entry, slp_call_entry}, NULL},
    SLP_METHODDEF_END
};

static PyObject *
channel_reduce(PyChannelObject *self, PyObject *Py_UNUSED(ignored))
{
    return slp_channel_reduce(self);
}

static PyObject *
channel_setstate(PyChannelObject *self, PyObject *state)
{
    return slp_channel_setstate(self, state);
}

static PyMethodDef channel_methods[] = {
    _STACKLESS_CHANNEL_CLOSE_METHODDEF
    _STACKLESS_CHANNEL_OPEN_METHODDEF
    {"__reduce__", (PyCFunction)channel_reduce, METH_NOARGS,
     PyDoc_STR("__reduce__($self, /)\n--\n\nPickle the channel with its "
               "blocked tasklets.")},
    {"__setstate__", (PyCFunction)channel_setstate, METH_O,
     PyDoc_STR("__setstate__($self, state, /)\n--\n\nRestore a pickled "
               "channel: its blocked tasklets join its queue.")},
    {NULL}
};

PyDoc_STRVAR(channel_doc,
"channel()\n\
--\n\
\n\
A rendezvous between tasklets: send() blocks until a receiver takes the\n\
value, receive() until a sender provides one.");

PyTypeObject PyChannel_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.channel",
    .tp_basicsize = sizeof(PyChannelObject),
    .tp_dealloc = (destructor)channel_dealloc,
    .tp_repr = (reprfunc)channel_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = channel_doc,
    .tp_traverse = (traverseproc)channel_traverse,
    .tp_clear = (inquiry)channel_clear,
    .tp_weaklistoffset = offsetof(PyChannelObject, weakreflist),
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = _PyStackless_ChannelNext,
    .tp_methods = channel_methods,
    .tp_getset = channel_getset,
    .tp_new = channel_new,
};
