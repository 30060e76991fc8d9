/*[clinic input]
preserve
[clinic start generated code]*/

#if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)
#  include "pycore_gc.h"          // PyGC_Head
#  include "pycore_runtime.h"     // _Py_ID()
#endif
#include "pycore_modsupport.h"    // _PyArg_UnpackKeywords()

PyDoc_STRVAR(_stackless_channel_receive__doc__,
"receive($self, /)\n"
"--\n"
"\n"
"Receive a value; blocks until a sender provides one.");

#define _STACKLESS_CHANNEL_RECEIVE_METHODDEF    \
    {"receive", (PyCFunction)_stackless_channel_receive, METH_NOARGS, _stackless_channel_receive__doc__},

static PyObject *
_stackless_channel_receive_impl(PyChannelObject *self);

static PyObject *
_stackless_channel_receive(PyChannelObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_channel_receive_impl(self);
}

PyDoc_STRVAR(_stackless_channel_send_throw__doc__,
"send_throw($self, /, exc, val=None, tb=None)\n"
"--\n"
"\n"
"Send an exception, with the rules of `raise`: the receiver raises it.");

#define _STACKLESS_CHANNEL_SEND_THROW_METHODDEF    \
    {"send_throw", _PyCFunction_CAST(_stackless_channel_send_throw), METH_FASTCALL|METH_KEYWORDS, _stackless_channel_send_throw__doc__},

static PyObject *
_stackless_channel_send_throw_impl(PyChannelObject *self, PyObject *exc,
                                   PyObject *val, PyObject *tb);

static PyObject *
_stackless_channel_send_throw(PyChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 3
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(exc), &_Py_ID(val), &_Py_ID(tb), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"exc", "val", "tb", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "send_throw",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[3];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 1;
    PyObject *exc;
    PyObject *val = Py_None;
    PyObject *tb = Py_None;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 1, 3, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    exc = args[0];
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (args[1]) {
        val = args[1];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    tb = args[2];
skip_optional_pos:
    return_value = _stackless_channel_send_throw_impl(self, exc, val, tb);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_channel_close__doc__,
"close($self, /)\n"
"--\n"
"\n"
"Refuse operations that would block from now on.");

#define _STACKLESS_CHANNEL_CLOSE_METHODDEF    \
    {"close", (PyCFunction)_stackless_channel_close, METH_NOARGS, _stackless_channel_close__doc__},

static PyObject *
_stackless_channel_close_impl(PyChannelObject *self);

static PyObject *
_stackless_channel_close(PyChannelObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_channel_close_impl(self);
}

PyDoc_STRVAR(_stackless_channel_open__doc__,
"open($self, /)\n"
"--\n"
"\n"
"Undo close().");

#define _STACKLESS_CHANNEL_OPEN_METHODDEF    \
    {"open", (PyCFunction)_stackless_channel_open, METH_NOARGS, _stackless_channel_open__doc__},

static PyObject *
_stackless_channel_open_impl(PyChannelObject *self);

static PyObject *
_stackless_channel_open(PyChannelObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_channel_open_impl(self);
}
/*[clinic end generated code: output=7a712d2ee0827522 input=a9049054013a1b77]*/
