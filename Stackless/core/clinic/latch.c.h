/*[clinic input]
preserve
[clinic start generated code]*/

#if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)
#  include "pycore_gc.h"          // PyGC_Head
#  include "pycore_runtime.h"     // _Py_ID()
#endif
#include "pycore_modsupport.h"    // _PyArg_UnpackKeywords()

PyDoc_STRVAR(latch_new__doc__,
"latch(marker)\n"
"--\n"
"\n"
"A latch: one channel operation out of several (see action()).\n"
"\n"
"marker is what the action() of a member that did not win returns.");

static PyObject *
latch_new_impl(PyTypeObject *type, PyObject *marker);

static PyObject *
latch_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 1
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(marker), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"marker", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "latch",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    PyObject * const *fastargs;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    PyObject *marker;

    fastargs = _PyArg_UnpackKeywords(_PyTuple_CAST(args)->ob_item, nargs, kwargs, NULL, &_parser, 1, 1, 0, argsbuf);
    if (!fastargs) {
        goto exit;
    }
    marker = fastargs[0];
    return_value = latch_new_impl(type, marker);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_latch_action__doc__,
"action($self, channel, dir, value=None, /)\n"
"--\n"
"\n"
"Send value on channel (dir 1) or receive from it (dir -1), as a member.\n"
"\n"
"Returns the marker at once if the latch fired already.  Else the\n"
"operation is made; while the caller waits in it, another member\'s\n"
"operation that goes through withdraws it (the marker is returned, nothing\n"
"was sent or received).  An operation that goes through fires the latch\n"
"with the caller as its winner and returns as the channel\'s would.");

#define _STACKLESS_LATCH_ACTION_METHODDEF    \
    {"action", _PyCFunction_CAST(_stackless_latch_action), METH_FASTCALL, _stackless_latch_action__doc__},

static PyObject *
_stackless_latch_action_impl(PyLatchObject *self, PyChannelObject *channel,
                             int dir, PyObject *value);

static PyObject *
_stackless_latch_action(PyLatchObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *return_value = NULL;
    PyChannelObject *channel;
    int dir;
    PyObject *value = Py_None;

    if (!_PyArg_CheckPositional("action", nargs, 2, 3)) {
        goto exit;
    }
    if (!PyObject_TypeCheck(args[0], &PyChannel_Type)) {
        _PyArg_BadArgument("action", "argument 1", (&PyChannel_Type)->tp_name, args[0]);
        goto exit;
    }
    channel = (PyChannelObject *)args[0];
    dir = PyLong_AsInt(args[1]);
    if (dir == -1 && PyErr_Occurred()) {
        goto exit;
    }
    if (nargs < 3) {
        goto skip_optional;
    }
    value = args[2];
skip_optional:
    return_value = _stackless_latch_action_impl(self, channel, dir, value);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_latch_fire__doc__,
"fire($self, /)\n"
"--\n"
"\n"
"Fire the latch without a winner; every waiting member withdraws.\n"
"\n"
"Returns True if this call fired it, False if it had fired already.");

#define _STACKLESS_LATCH_FIRE_METHODDEF    \
    {"fire", (PyCFunction)_stackless_latch_fire, METH_NOARGS, _stackless_latch_fire__doc__},

static PyObject *
_stackless_latch_fire_impl(PyLatchObject *self);

static PyObject *
_stackless_latch_fire(PyLatchObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_latch_fire_impl(self);
}
/*[clinic end generated code: output=ba4124d769002cd3 input=a9049054013a1b77]*/
