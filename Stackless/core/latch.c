/* Latches: one channel operation out of several (stacklesslib.select).
 *
 * A latch is shared by tasklets (its members) that each try a channel
 * operation through latch.action(channel, dir, value).  The first
 * operation that goes through fires the latch, and in the same step, under
 * the GIL, every other member that waits in its channel leaves it: its
 * action returns the latch's marker, having sent or received nothing.  A
 * member that calls action() after the latch fired gets the marker at
 * once.  latch.fire() fires it without a winner (a timeout).  So exactly
 * one of the operations is performed, whichever threads the partners run
 * in.
 *
 * The channel code calls slp_latch_take() where a member's operation is
 * about to go through: for the member that finds its partner waiting
 * (channel_action()), and for a waiting member that a partner takes
 * (hand_over()).  The quick way of CALL_STACKLESS leaves members to
 * channel_action().
 */

#include "stackless_impl.h"

typedef struct {
    PyObject_HEAD
    PyObject *members;          /* list of the tasklets that called action() */
    PyObject *marker;           /* a withdrawn action's result */
    PyObject *winner;           /* the member whose operation went through */
    int fired;
} PyLatchObject;

#define LATCH(op) ((PyLatchObject *)(op))

static PyLatchObject *
latch_of(PyTaskletObject *t)
{
    return t->extra != NULL ? (PyLatchObject *)t->extra->latch : NULL;
}

/* Every member but `winner` that waits in a channel leaves it, paused no
 * more: runnable, its action returns the marker.  Runs no Python code: a
 * withdrawn sender's value is also held by the argument of its action()
 * call, so dropping the tempval's reference frees nothing. */
static void
withdraw_members(PyLatchObject *latch, PyTaskletObject *winner)
{
    slp_thread *th = slp_get_thread();
    Py_ssize_t n = PyList_GET_SIZE(latch->members);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTaskletObject *m =
            (PyTaskletObject *)PyList_GET_ITEM(latch->members, i);
        if (m == winner || !m->blocked || latch_of(m) != latch
            || m->thread == NULL)
        {
            continue;
        }
        PyObject *old = m->tempval;
        m->tempval = Py_NewRef(latch->marker);
        /* The queue's references to m and its channel are ours. */
        slp_channel_remove_blocked(m);
        slp_runqueue_append(m->thread, m);
        if (m->thread != th) {
            slp_wake_thread(m->thread);
        }
        assert(Py_REFCNT(old) > 1 || _Py_IsImmortal(old));
        Py_DECREF(old);
    }
}

/* Whether t is a member of a latch that fired: its operation must not be
 * made. */
int
slp_latch_fired(PyTaskletObject *t)
{
    PyLatchObject *latch = latch_of(t);
    return latch != NULL && latch->fired;
}

/* t's operation goes through: its latch (if any, not fired) fires with t
 * as its winner, and the other members withdraw. */
void
slp_latch_take(PyTaskletObject *t)
{
    PyLatchObject *latch = latch_of(t);
    if (latch == NULL) {
        return;
    }
    assert(!latch->fired);
    latch->fired = 1;
    Py_SETREF(latch->winner, Py_NewRef(t));
    withdraw_members(latch, t);
}

/* The marker of t's latch (new reference): what a withdrawn action
 * returns. */
PyObject *
slp_latch_marker(PyTaskletObject *t)
{
    return Py_NewRef(latch_of(t)->marker);
}

/*[clinic input]
module _stackless
class _stackless.latch "PyLatchObject *" "&PyLatch_Type"
[clinic start generated code]*/
/*[clinic end generated code: output=da39a3ee5e6b4b0d input=8857f466c9102f4d]*/

#include "clinic/latch.c.h"

/*[clinic input]
@classmethod
_stackless.latch.__new__ as latch_new

    marker: object

A latch: one channel operation out of several (see action()).

marker is what the action() of a member that did not win returns.
[clinic start generated code]*/

static PyObject *
latch_new_impl(PyTypeObject *type, PyObject *marker)
/*[clinic end generated code: output=07ff1bac862420da input=49675dc40c720eea]*/
{
    PyObject *members = PyList_New(0);
    if (members == NULL) {
        return NULL;
    }
    PyLatchObject *self = (PyLatchObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(members);
        return NULL;
    }
    self->members = members;
    self->marker = Py_NewRef(marker);
    self->winner = Py_NewRef(Py_None);
    return (PyObject *)self;
}

/*[clinic input]
_stackless.latch.action

    channel: object(subclass_of="&PyChannel_Type", type="PyChannelObject *")
    dir: int
    value: object = None
    /

Send value on channel (dir 1) or receive from it (dir -1), as a member.

Returns the marker at once if the latch fired already.  Else the
operation is made; while the caller waits in it, another member's
operation that goes through withdraws it (the marker is returned, nothing
was sent or received).  An operation that goes through fires the latch
with the caller as its winner and returns as the channel's would.
[clinic start generated code]*/

static PyObject *
_stackless_latch_action_impl(PyLatchObject *self, PyChannelObject *channel,
                             int dir, PyObject *value)
/*[clinic end generated code: output=44617701efd73350 input=67d83f3ea6a215ea]*/
{
    if (dir != 1 && dir != -1) {
        PyErr_SetString(PyExc_ValueError, "dir must be 1 or -1");
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    if (self->fired) {
        return Py_NewRef(self->marker);
    }
    PyTaskletObject *cur = th->current;
    slp_tasklet_extra *x = slp_tasklet_extra_get(cur);
    if (x == NULL) {
        return NULL;
    }
    if (x->latch != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the tasklet is in a latch's action already");
        return NULL;
    }
    if (PyList_Append(self->members, (PyObject *)cur) < 0) {
        return NULL;
    }
    x->latch = Py_NewRef(self);
    PyObject *result = slp_channel_action(th, channel, dir,
                                          dir > 0 ? value : NULL);
    /* Back, done, withdrawn or raising; the extra is still ours. */
    x = cur->extra;
    if (x != NULL && x->latch == (PyObject *)self) {
        x->latch = NULL;
        Py_DECREF(self);
    }
    return result;
}

/*[clinic input]
_stackless.latch.fire

Fire the latch without a winner; every waiting member withdraws.

Returns True if this call fired it, False if it had fired already.
[clinic start generated code]*/

static PyObject *
_stackless_latch_fire_impl(PyLatchObject *self)
/*[clinic end generated code: output=6db8b6afdd41d631 input=42a6a6ef26cd51df]*/
{
    if (self->fired) {
        Py_RETURN_FALSE;
    }
    self->fired = 1;
    withdraw_members(self, NULL);
    Py_RETURN_TRUE;
}

static PyObject *
latch_get_fired(PyLatchObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->fired);
}

static PyObject *
latch_get_winner(PyLatchObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->winner);
}

static PyObject *
latch_get_marker(PyLatchObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->marker);
}

static PyObject *
latch_get_members(PyLatchObject *self, void *Py_UNUSED(closure))
{
    return PyList_GetSlice(self->members, 0, PY_SSIZE_T_MAX);
}

static PyGetSetDef latch_getset[] = {
    {"fired", (getter)latch_get_fired, NULL,
     "True once an operation went through or fire() was called."},
    {"winner", (getter)latch_get_winner, NULL,
     "The member whose operation went through, or None."},
    {"marker", (getter)latch_get_marker, NULL,
     "What the action() of a member that did not win returns."},
    {"members", (getter)latch_get_members, NULL,
     "The tasklets that called action(), in order (a new list)."},
    {NULL}
};

static PyMethodDef latch_methods[] = {
    _STACKLESS_LATCH_ACTION_METHODDEF
    _STACKLESS_LATCH_FIRE_METHODDEF
    {NULL}
};

static int
latch_traverse(PyLatchObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->members);
    Py_VISIT(self->marker);
    Py_VISIT(self->winner);
    return 0;
}

static int
latch_clear(PyLatchObject *self)
{
    Py_CLEAR(self->members);
    Py_CLEAR(self->marker);
    Py_CLEAR(self->winner);
    return 0;
}

static void
latch_dealloc(PyLatchObject *self)
{
    PyObject_GC_UnTrack(self);
    latch_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
latch_repr(PyLatchObject *self)
{
    return PyUnicode_FromFormat("<_stackless.latch object at %p, %s, "
                                "%zd members>", self,
                                self->fired ? "fired" : "armed",
                                self->members != NULL
                                ? PyList_GET_SIZE(self->members) : 0);
}

PyTypeObject PyLatch_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.latch",
    .tp_basicsize = sizeof(PyLatchObject),
    .tp_dealloc = (destructor)latch_dealloc,
    .tp_repr = (reprfunc)latch_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = latch_new__doc__,
    .tp_traverse = (traverseproc)latch_traverse,
    .tp_clear = (inquiry)latch_clear,
    .tp_methods = latch_methods,
    .tp_getset = latch_getset,
    .tp_new = latch_new,
};
