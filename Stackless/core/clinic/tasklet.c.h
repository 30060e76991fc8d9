/*[clinic input]
preserve
[clinic start generated code]*/

#if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)
#  include "pycore_gc.h"          // PyGC_Head
#  include "pycore_runtime.h"     // _Py_ID()
#endif
#include "pycore_modsupport.h"    // _PyArg_UnpackKeywords()

PyDoc_STRVAR(_stackless_tasklet_bind__doc__,
"bind($self, /, func=None, args=None, kwargs=None)\n"
"--\n"
"\n"
"Bind the tasklet to func(*args, **kwargs); returns the tasklet.\n"
"\n"
"With args and kwargs None, the tasklet is only bound to func and is not\n"
"alive; bind(None) unbinds it.  Otherwise it gets an initial frame and\n"
"is alive and paused: insert() or run() it.");

#define _STACKLESS_TASKLET_BIND_METHODDEF    \
    {"bind", _PyCFunction_CAST(_stackless_tasklet_bind), METH_FASTCALL|METH_KEYWORDS, _stackless_tasklet_bind__doc__},

static PyObject *
_stackless_tasklet_bind_impl(PyTaskletObject *self, PyObject *func,
                             PyObject *args, PyObject *kwargs);

static PyObject *
_stackless_tasklet_bind(PyTaskletObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(func), &_Py_ID(args), &_Py_ID(kwargs), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"func", "args", "kwargs", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "bind",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[3];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    PyObject *func = Py_None;
    PyObject *__clinic_args = Py_None;
    PyObject *__clinic_kwargs = Py_None;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 3, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (args[0]) {
        func = args[0];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    if (args[1]) {
        __clinic_args = args[1];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    __clinic_kwargs = args[2];
skip_optional_pos:
    return_value = _stackless_tasklet_bind_impl(self, func, __clinic_args, __clinic_kwargs);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_tasklet___init____doc__,
"tasklet(func=None, args=None, kwargs=None)\n"
"--\n"
"\n"
"A microthread.\n"
"\n"
"tasklet(func) is bound to func; calling it, tasklet(func)(*args, **kwargs),\n"
"binds the arguments and puts it in the runqueue of its thread.");

static int
_stackless_tasklet___init___impl(PyTaskletObject *self, PyObject *func,
                                 PyObject *args, PyObject *kwargs);

static int
_stackless_tasklet___init__(PyObject *self, PyObject *args, PyObject *kwargs)
{
    int return_value = -1;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 3
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(func), &_Py_ID(args), &_Py_ID(kwargs), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"func", "args", "kwargs", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "tasklet",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[3];
    PyObject * const *fastargs;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    Py_ssize_t noptargs = nargs + (kwargs ? PyDict_GET_SIZE(kwargs) : 0) - 0;
    PyObject *func = Py_None;
    PyObject *__clinic_args = Py_None;
    PyObject *__clinic_kwargs = Py_None;

    fastargs = _PyArg_UnpackKeywords(_PyTuple_CAST(args)->ob_item, nargs, kwargs, NULL, &_parser, 0, 3, 0, argsbuf);
    if (!fastargs) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (fastargs[0]) {
        func = fastargs[0];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    if (fastargs[1]) {
        __clinic_args = fastargs[1];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    __clinic_kwargs = fastargs[2];
skip_optional_pos:
    return_value = _stackless_tasklet___init___impl((PyTaskletObject *)self, func, __clinic_args, __clinic_kwargs);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_tasklet_insert__doc__,
"insert($self, /)\n"
"--\n"
"\n"
"Append the tasklet to the runqueue of its thread; it does not run now.");

#define _STACKLESS_TASKLET_INSERT_METHODDEF    \
    {"insert", (PyCFunction)_stackless_tasklet_insert, METH_NOARGS, _stackless_tasklet_insert__doc__},

static PyObject *
_stackless_tasklet_insert_impl(PyTaskletObject *self);

static PyObject *
_stackless_tasklet_insert(PyTaskletObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_tasklet_insert_impl(self);
}

PyDoc_STRVAR(_stackless_tasklet_remove__doc__,
"remove($self, /)\n"
"--\n"
"\n"
"Take the tasklet out of the runqueue: it is paused.");

#define _STACKLESS_TASKLET_REMOVE_METHODDEF    \
    {"remove", (PyCFunction)_stackless_tasklet_remove, METH_NOARGS, _stackless_tasklet_remove__doc__},

static PyObject *
_stackless_tasklet_remove_impl(PyTaskletObject *self);

static PyObject *
_stackless_tasklet_remove(PyTaskletObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_tasklet_remove_impl(self);
}

PyDoc_STRVAR(_stackless_tasklet_run__doc__,
"run($self, /)\n"
"--\n"
"\n"
"Switch to the tasklet now; the caller stays in the runqueue.");

#define _STACKLESS_TASKLET_RUN_METHODDEF    \
    {"run", (PyCFunction)_stackless_tasklet_run, METH_NOARGS, _stackless_tasklet_run__doc__},

static PyObject *
_stackless_tasklet_run_impl(PyTaskletObject *self);

static PyObject *
_stackless_tasklet_run(PyTaskletObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_tasklet_run_impl(self);
}

PyDoc_STRVAR(_stackless_tasklet_switch__doc__,
"switch($self, /)\n"
"--\n"
"\n"
"Switch to the tasklet now; the caller leaves the runqueue (paused).");

#define _STACKLESS_TASKLET_SWITCH_METHODDEF    \
    {"switch", (PyCFunction)_stackless_tasklet_switch, METH_NOARGS, _stackless_tasklet_switch__doc__},

static PyObject *
_stackless_tasklet_switch_impl(PyTaskletObject *self);

static PyObject *
_stackless_tasklet_switch(PyTaskletObject *self, PyObject *Py_UNUSED(ignored))
{
    return _stackless_tasklet_switch_impl(self);
}

PyDoc_STRVAR(_stackless_tasklet_bind_thread__doc__,
"bind_thread($self, /, thread_id=-1)\n"
"--\n"
"\n"
"Make the tasklet belong to another thread (-1: the calling one).\n"
"\n"
"Only a tasklet that is not runnable and has no C state can move.");

#define _STACKLESS_TASKLET_BIND_THREAD_METHODDEF    \
    {"bind_thread", _PyCFunction_CAST(_stackless_tasklet_bind_thread), METH_FASTCALL|METH_KEYWORDS, _stackless_tasklet_bind_thread__doc__},

static PyObject *
_stackless_tasklet_bind_thread_impl(PyTaskletObject *self,
                                    PyObject *thread_id);

static PyObject *
_stackless_tasklet_bind_thread(PyTaskletObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(thread_id), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"thread_id", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "bind_thread",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    PyObject *thread_id = NULL;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 1, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    thread_id = args[0];
skip_optional_pos:
    return_value = _stackless_tasklet_bind_thread_impl(self, thread_id);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_tasklet_throw__doc__,
"throw($self, /, exc, val=None, tb=None, pending=False)\n"
"--\n"
"\n"
"Raise an exception in the tasklet, with the rules of `raise`.\n"
"\n"
"Unless pending, the tasklet runs at once and the caller stays\n"
"runnable; with pending, it is only made runnable.");

#define _STACKLESS_TASKLET_THROW_METHODDEF    \
    {"throw", _PyCFunction_CAST(_stackless_tasklet_throw), METH_FASTCALL|METH_KEYWORDS, _stackless_tasklet_throw__doc__},

static PyObject *
_stackless_tasklet_throw_impl(PyTaskletObject *self, PyObject *exc,
                              PyObject *val, PyObject *tb, int pending);

static PyObject *
_stackless_tasklet_throw(PyTaskletObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 4
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(exc), &_Py_ID(val), &_Py_ID(tb), &_Py_ID(pending), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"exc", "val", "tb", "pending", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "throw",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[4];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 1;
    PyObject *exc;
    PyObject *val = Py_None;
    PyObject *tb = Py_None;
    int pending = 0;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 1, 4, 0, argsbuf);
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
    if (args[2]) {
        tb = args[2];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    pending = PyObject_IsTrue(args[3]);
    if (pending < 0) {
        goto exit;
    }
skip_optional_pos:
    return_value = _stackless_tasklet_throw_impl(self, exc, val, tb, pending);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_tasklet_kill__doc__,
"kill($self, /, pending=False)\n"
"--\n"
"\n"
"End the tasklet by raising TaskletExit in it.");

#define _STACKLESS_TASKLET_KILL_METHODDEF    \
    {"kill", _PyCFunction_CAST(_stackless_tasklet_kill), METH_FASTCALL|METH_KEYWORDS, _stackless_tasklet_kill__doc__},

static PyObject *
_stackless_tasklet_kill_impl(PyTaskletObject *self, int pending);

static PyObject *
_stackless_tasklet_kill(PyTaskletObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(pending), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"pending", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "kill",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    int pending = 0;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 1, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    pending = PyObject_IsTrue(args[0]);
    if (pending < 0) {
        goto exit;
    }
skip_optional_pos:
    return_value = _stackless_tasklet_kill_impl(self, pending);

exit:
    return return_value;
}
/*[clinic end generated code: output=0fdd13bbf3100e12 input=a9049054013a1b77]*/
