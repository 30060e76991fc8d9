/* The bomb: an exception in transit (spec M-13).
 *
 * A tasklet that resumes and finds a bomb in its tempval raises the bomb's
 * exception instead of returning the value; a bomb sent over a channel is
 * raised in the receiver.  The bomb keeps the exception instance, whose
 * __traceback__ is the traceback; `type`, `value` and `traceback` are
 * computed from it, as sys.exc_info() does.
 */

#include "stackless_impl.h"
#include "pycore_pyerrors.h"      // _PyErr_SetRaisedException()

static PyObject *
bomb_new_exc(PyObject *exc)
{
    PyBombObject *bomb = PyObject_GC_New(PyBombObject, &PyBomb_Type);
    if (bomb == NULL) {
        Py_XDECREF(exc);
        return NULL;
    }
    bomb->exc = exc;            /* stolen; may be NULL: an empty bomb */
    PyObject_GC_Track(bomb);
    return (PyObject *)bomb;
}

PyObject *
slp_bomb_from_error(void)
{
    PyObject *exc = PyErr_GetRaisedException();
    assert(exc != NULL);
    return bomb_new_exc(exc);
}

/* The rules of `raise`, in its three-argument form (T-8, C-5): a class
 * with an optional value, or an instance without one; a traceback or
 * None.  Returns a new exception instance. */
static PyObject *
make_exception(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *exc;

    if (tb == Py_None) {
        tb = NULL;
    }
    if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError,
                        "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionClass_Check(type)) {
        if (value != NULL && value != Py_None && PyExceptionInstance_Check(value)
            && PyObject_IsInstance(value, type) == 1)
        {
            exc = Py_NewRef(value);
        }
        else {
            if (value == NULL || value == Py_None) {
                exc = PyObject_CallNoArgs(type);
            }
            else if (PyTuple_Check(value)) {
                exc = PyObject_Call(type, value, NULL);
            }
            else {
                exc = PyObject_CallOneArg(type, value);
            }
            if (exc == NULL) {
                return NULL;
            }
            if (!PyExceptionInstance_Check(exc)) {
                PyErr_Format(PyExc_TypeError,
                             "calling %R should have returned an instance of "
                             "BaseException, not %s",
                             type, Py_TYPE(exc)->tp_name);
                Py_DECREF(exc);
                return NULL;
            }
        }
    }
    else if (PyExceptionInstance_Check(type)) {
        if (value != NULL && value != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate value");
            return NULL;
        }
        exc = Py_NewRef(type);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes or instances deriving "
                     "from BaseException, not %s", Py_TYPE(type)->tp_name);
        return NULL;
    }
    if (tb != NULL && PyException_SetTraceback(exc, tb) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

PyObject *
slp_bomb_from_raise_args(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *exc = make_exception(type, value, tb);
    if (exc == NULL) {
        return NULL;
    }
    return bomb_new_exc(exc);
}

PyObject *
slp_bomb_explode(PyObject *bomb)
{
    PyObject *exc = ((PyBombObject *)bomb)->exc;
    if (exc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an empty bomb exploded");
        return NULL;
    }
    PyErr_SetRaisedException(Py_NewRef(exc));
    return NULL;
}

/* bomb(type=None, value=None, traceback=None); a lone tuple is unpacked,
 * so that bomb(sys.exc_info()) works. */
static PyObject *
bomb_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"type", "value", "traceback", NULL};
    PyObject *etype = NULL, *value = NULL, *tb = NULL;

    if (kwds == NULL && PyTuple_GET_SIZE(args) == 1
        && PyTuple_Check(PyTuple_GET_ITEM(args, 0)))
    {
        args = PyTuple_GET_ITEM(args, 0);
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOO:bomb", kwlist,
                                     &etype, &value, &tb)) {
        return NULL;
    }
    if (etype == NULL || etype == Py_None) {
        return bomb_new_exc(NULL);
    }
    return slp_bomb_from_raise_args(etype, value, tb);
}

static int
bomb_traverse(PyBombObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->exc);
    return 0;
}

static int
bomb_clear(PyBombObject *self)
{
    Py_CLEAR(self->exc);
    return 0;
}

static void
bomb_dealloc(PyBombObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->exc);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
bomb_get_type(PyBombObject *self, void *Py_UNUSED(closure))
{
    if (self->exc == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(Py_TYPE(self->exc));
}

static PyObject *
bomb_get_value(PyBombObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->exc != NULL ? self->exc : Py_None);
}

static PyObject *
bomb_get_traceback(PyBombObject *self, void *Py_UNUSED(closure))
{
    if (self->exc == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *tb = PyException_GetTraceback(self->exc);
    return tb != NULL ? tb : Py_NewRef(Py_None);
}

static PyObject *
bomb_reduce(PyBombObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *type = bomb_get_type(self, NULL);
    PyObject *tb = bomb_get_traceback(self, NULL);
    PyObject *res = NULL;
    if (type != NULL && tb != NULL) {
        res = Py_BuildValue("(O(OOO))", Py_TYPE(self), type,
                            self->exc != NULL ? self->exc : Py_None, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return res;
}

static PyGetSetDef bomb_getset[] = {
    {"type", (getter)bomb_get_type, NULL, "the exception's type", NULL},
    {"value", (getter)bomb_get_value, NULL, "the exception", NULL},
    {"traceback", (getter)bomb_get_traceback, NULL,
     "the exception's traceback", NULL},
    {NULL}
};

static PyMethodDef bomb_methods[] = {
    {"__reduce__", (PyCFunction)bomb_reduce, METH_NOARGS,
     PyDoc_STR("__reduce__($self, /)\n--\n\nPickle the bomb: its type, "
               "value and traceback.")},
    {NULL}
};

PyDoc_STRVAR(bomb_doc,
"bomb(type=None, value=None, traceback=None)\n\
--\n\
\n\
An exception in transit.  A tasklet that resumes with a bomb in its\n\
tempval raises its exception; a bomb sent over a channel is raised in\n\
the receiver.  bomb(sys.exc_info()) takes the exception being handled.");

PyTypeObject PyBomb_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.bomb",
    .tp_basicsize = sizeof(PyBombObject),
    .tp_dealloc = (destructor)bomb_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = bomb_doc,
    .tp_traverse = (traverseproc)bomb_traverse,
    .tp_clear = (inquiry)bomb_clear,
    .tp_methods = bomb_methods,
    .tp_getset = bomb_getset,
    .tp_new = bomb_new,
};
