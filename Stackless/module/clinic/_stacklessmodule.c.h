/*[clinic input]
preserve
[clinic start generated code]*/

#if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)
#  include "pycore_gc.h"          // PyGC_Head
#  include "pycore_runtime.h"     // _Py_ID()
#endif
#include "pycore_modsupport.h"    // _PyArg_UnpackKeywords()

PyDoc_STRVAR(_stackless_getcurrent__doc__,
"getcurrent($module, /)\n"
"--\n"
"\n"
"Return the running tasklet of the calling thread.");

#define _STACKLESS_GETCURRENT_METHODDEF    \
    {"getcurrent", (PyCFunction)_stackless_getcurrent, METH_NOARGS, _stackless_getcurrent__doc__},

static PyObject *
_stackless_getcurrent_impl(PyObject *module);

static PyObject *
_stackless_getcurrent(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getcurrent_impl(module);
}

PyDoc_STRVAR(_stackless_getmain__doc__,
"getmain($module, /)\n"
"--\n"
"\n"
"Return the main tasklet of the calling thread.");

#define _STACKLESS_GETMAIN_METHODDEF    \
    {"getmain", (PyCFunction)_stackless_getmain, METH_NOARGS, _stackless_getmain__doc__},

static PyObject *
_stackless_getmain_impl(PyObject *module);

static PyObject *
_stackless_getmain(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getmain_impl(module);
}

PyDoc_STRVAR(_stackless_getruncount__doc__,
"getruncount($module, /)\n"
"--\n"
"\n"
"Return the number of tasklets in the calling thread\'s runqueue.\n"
"\n"
"The running tasklet counts; paused and blocked ones do not.");

#define _STACKLESS_GETRUNCOUNT_METHODDEF    \
    {"getruncount", (PyCFunction)_stackless_getruncount, METH_NOARGS, _stackless_getruncount__doc__},

static PyObject *
_stackless_getruncount_impl(PyObject *module);

static PyObject *
_stackless_getruncount(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getruncount_impl(module);
}

PyDoc_STRVAR(_stackless_getcurrentid__doc__,
"getcurrentid($module, /)\n"
"--\n"
"\n"
"Return the id of the running tasklet.\n"
"\n"
"A main tasklet has the id of its thread; the others an id derived from\n"
"their address, which may be reused.");

#define _STACKLESS_GETCURRENTID_METHODDEF    \
    {"getcurrentid", (PyCFunction)_stackless_getcurrentid, METH_NOARGS, _stackless_getcurrentid__doc__},

static PyObject *
_stackless_getcurrentid_impl(PyObject *module);

static PyObject *
_stackless_getcurrentid(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getcurrentid_impl(module);
}

PyDoc_STRVAR(_stackless_schedule__doc__,
"schedule($module, /, retval=stackless.current)\n"
"--\n"
"\n"
"Let the next runnable tasklet run; the caller stays in the runqueue.\n"
"\n"
"The current tasklet goes to the end of the runqueue, and the tasklets\n"
"before it run until one of them switches back to it (in a round robin,\n"
"when they block, end or schedule in turn).  Returns retval (by\n"
"default the current tasklet), or, if another tasklet set the caller\'s\n"
"tempval meanwhile, that value.  Alone in the runqueue, the caller goes\n"
"on at once.\n"
"\n"
"Raises RuntimeError where a switch is not allowed: inside a schedule or\n"
"channel callback, or while this thread runs a garbage collection.");

#define _STACKLESS_SCHEDULE_METHODDEF    \
    {"schedule", _PyCFunction_CAST(_stackless_schedule), METH_FASTCALL|METH_KEYWORDS, _stackless_schedule__doc__},

static PyObject *
_stackless_schedule_impl(PyObject *module, PyObject *retval);

static PyObject *
_stackless_schedule(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(retval), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"retval", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "schedule",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    PyObject *retval = NULL;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 1, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    retval = args[0];
skip_optional_pos:
    return_value = _stackless_schedule_impl(module, retval);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_schedule_remove__doc__,
"schedule_remove($module, /, retval=stackless.current)\n"
"--\n"
"\n"
"Let the next runnable tasklet run; the caller leaves the runqueue.\n"
"\n"
"As schedule(), except that the current tasklet is taken out of the\n"
"runqueue: it is paused, and runs again only when another tasklet\n"
"inserts it (tasklet.insert()) or runs it.  The main tasklet of a thread\n"
"comes back by itself when no other tasklet of the thread is runnable.");

#define _STACKLESS_SCHEDULE_REMOVE_METHODDEF    \
    {"schedule_remove", _PyCFunction_CAST(_stackless_schedule_remove), METH_FASTCALL|METH_KEYWORDS, _stackless_schedule_remove__doc__},

static PyObject *
_stackless_schedule_remove_impl(PyObject *module, PyObject *retval);

static PyObject *
_stackless_schedule_remove(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(retval), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"retval", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "schedule_remove",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    PyObject *retval = NULL;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 1, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    retval = args[0];
skip_optional_pos:
    return_value = _stackless_schedule_remove_impl(module, retval);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_run__doc__,
"run($module, /, timeout=0, threadblock=False, soft=False,\n"
"    ignore_nesting=False, totaltimeout=False)\n"
"--\n"
"\n"
"Run the other tasklets of this thread; return when none is runnable.\n"
"\n"
"The caller (the main tasklet, usually) becomes a watchdog: it leaves\n"
"the runqueue, and the other tasklets run in turn.  run() returns None\n"
"when no tasklet is left in the runqueue (they ended, blocked on\n"
"channels or were removed), and raises the uncaught exception of a\n"
"tasklet.\n"
"\n"
"timeout\n"
"  If greater than 0, preempt: a tasklet that runs for timeout ticks\n"
"  without switching is interrupted, taken out of the runqueue, and\n"
"  returned by run().  A tick is a check of the eval loop for pending\n"
"  work (about one call, one loop iteration).  The count starts again\n"
"  at every switch, so tasklets that keep calling schedule() are never\n"
"  interrupted, and run() returns only when they end (see totaltimeout).\n"
"threadblock\n"
"  When the runqueue is empty but a tasklet of this thread waits for a\n"
"  channel that another thread may use, wait for that thread instead of\n"
"  returning.\n"
"soft\n"
"  With timeout: interrupt no tasklet; when the ticks run out, return\n"
"  None at the next switch.\n"
"ignore_nesting\n"
"  With timeout: interrupt also a tasklet that runs inside C code (a\n"
"  callback of a builtin); by default it runs on until it returns there.\n"
"totaltimeout\n"
"  With timeout: count the ticks from the start of run(), over all\n"
"  switches; the tasklet running when they run out is interrupted.\n"
"\n"
"Atomic tasklets (stackless.atomic(), tasklet.set_atomic()) are not\n"
"interrupted until they leave atomic.  Raises RuntimeError where a switch\n"
"is not allowed (in a schedule or channel callback, or while this thread\n"
"runs a garbage collection).");

#define _STACKLESS_RUN_METHODDEF    \
    {"run", _PyCFunction_CAST(_stackless_run), METH_FASTCALL|METH_KEYWORDS, _stackless_run__doc__},

static PyObject *
_stackless_run_impl(PyObject *module, long timeout, int threadblock,
                    int soft, int ignore_nesting, int totaltimeout);

static PyObject *
_stackless_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 5
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(timeout), &_Py_ID(threadblock), &_Py_ID(soft), &_Py_ID(ignore_nesting), &_Py_ID(totaltimeout), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"timeout", "threadblock", "soft", "ignore_nesting", "totaltimeout", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "run",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[5];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    long timeout = 0;
    int threadblock = 0;
    int soft = 0;
    int ignore_nesting = 0;
    int totaltimeout = 0;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 5, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (args[0]) {
        timeout = PyLong_AsLong(args[0]);
        if (timeout == -1 && PyErr_Occurred()) {
            goto exit;
        }
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    if (args[1]) {
        threadblock = PyObject_IsTrue(args[1]);
        if (threadblock < 0) {
            goto exit;
        }
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    if (args[2]) {
        soft = PyObject_IsTrue(args[2]);
        if (soft < 0) {
            goto exit;
        }
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    if (args[3]) {
        ignore_nesting = PyObject_IsTrue(args[3]);
        if (ignore_nesting < 0) {
            goto exit;
        }
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    totaltimeout = PyObject_IsTrue(args[4]);
    if (totaltimeout < 0) {
        goto exit;
    }
skip_optional_pos:
    return_value = _stackless_run_impl(module, timeout, threadblock, soft, ignore_nesting, totaltimeout);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_switch_trap__doc__,
"switch_trap($module, /, change=0)\n"
"--\n"
"\n"
"Add change to the thread\'s switch trap level; returns the old level.\n"
"\n"
"While the level is positive, every switch raises RuntimeError.");

#define _STACKLESS_SWITCH_TRAP_METHODDEF    \
    {"switch_trap", _PyCFunction_CAST(_stackless_switch_trap), METH_FASTCALL|METH_KEYWORDS, _stackless_switch_trap__doc__},

static PyObject *
_stackless_switch_trap_impl(PyObject *module, int change);

static PyObject *
_stackless_switch_trap(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(change), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"change", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "switch_trap",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    int change = 0;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 1, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    change = PyLong_AsInt(args[0]);
    if (change == -1 && PyErr_Occurred()) {
        goto exit;
    }
skip_optional_pos:
    return_value = _stackless_switch_trap_impl(module, change);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_get_schedule_callback__doc__,
"get_schedule_callback($module, /)\n"
"--\n"
"\n"
"Return the schedule callback, or None.");

#define _STACKLESS_GET_SCHEDULE_CALLBACK_METHODDEF    \
    {"get_schedule_callback", (PyCFunction)_stackless_get_schedule_callback, METH_NOARGS, _stackless_get_schedule_callback__doc__},

static PyObject *
_stackless_get_schedule_callback_impl(PyObject *module);

static PyObject *
_stackless_get_schedule_callback(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_get_schedule_callback_impl(module);
}

PyDoc_STRVAR(_stackless_get_channel_callback__doc__,
"get_channel_callback($module, /)\n"
"--\n"
"\n"
"Return the channel callback, or None.");

#define _STACKLESS_GET_CHANNEL_CALLBACK_METHODDEF    \
    {"get_channel_callback", (PyCFunction)_stackless_get_channel_callback, METH_NOARGS, _stackless_get_channel_callback__doc__},

static PyObject *
_stackless_get_channel_callback_impl(PyObject *module);

static PyObject *
_stackless_get_channel_callback(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_get_channel_callback_impl(module);
}

PyDoc_STRVAR(_stackless_set_error_handler__doc__,
"set_error_handler($module, /, handler=None)\n"
"--\n"
"\n"
"Install handler(type, value, traceback) for exceptions that end tasklets.\n"
"\n"
"None restores the default: the exception is raised in the main tasklet\n"
"or the innermost run().  Returns the previous handler, or None.");

#define _STACKLESS_SET_ERROR_HANDLER_METHODDEF    \
    {"set_error_handler", _PyCFunction_CAST(_stackless_set_error_handler), METH_FASTCALL|METH_KEYWORDS, _stackless_set_error_handler__doc__},

static PyObject *
_stackless_set_error_handler_impl(PyObject *module, PyObject *handler);

static PyObject *
_stackless_set_error_handler(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
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
        .ob_item = { &_Py_ID(handler), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"handler", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "set_error_handler",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[1];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    PyObject *handler = Py_None;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 1, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    handler = args[0];
skip_optional_pos:
    return_value = _stackless_set_error_handler_impl(module, handler);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_set_thread_wakeup_fd__doc__,
"set_thread_wakeup_fd($module, /, fd, thread_id=-1)\n"
"--\n"
"\n"
"Set the wakeup file descriptor of a thread; return the previous one.\n"
"\n"
"Whenever another thread makes a tasklet of that thread runnable, one\n"
"byte is written to fd (errors are ignored, so make it non-blocking).\n"
"A scheduler that waits in select() or epoll on fd, such as\n"
"stacklesslib\'s hub, wakes up at once; it must read the bytes.  -1\n"
"unsets it.  thread_id -1 means the calling thread; another thread must\n"
"have used stackless.  The initial thread\'s fd also gets a byte when a\n"
"thread without the GIL posts a value (PyStackless_PostToChannel()).");

#define _STACKLESS_SET_THREAD_WAKEUP_FD_METHODDEF    \
    {"set_thread_wakeup_fd", _PyCFunction_CAST(_stackless_set_thread_wakeup_fd), METH_FASTCALL|METH_KEYWORDS, _stackless_set_thread_wakeup_fd__doc__},

static PyObject *
_stackless_set_thread_wakeup_fd_impl(PyObject *module, int fd,
                                     PyObject *thread_id);

static PyObject *
_stackless_set_thread_wakeup_fd(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 2
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(fd), &_Py_ID(thread_id), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"fd", "thread_id", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "set_thread_wakeup_fd",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[2];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 1;
    int fd;
    PyObject *thread_id = NULL;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 1, 2, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    fd = PyLong_AsInt(args[0]);
    if (fd == -1 && PyErr_Occurred()) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    thread_id = args[1];
skip_optional_pos:
    return_value = _stackless_set_thread_wakeup_fd_impl(module, fd, thread_id);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_get_thread_info__doc__,
"get_thread_info($module, /, thread_id=-1, flags=0)\n"
"--\n"
"\n"
"Return (main, current, runcount) of a thread of this interpreter.\n"
"\n"
"-1 means the calling thread.  main and current are None for a thread\n"
"that has not used stackless.  flags is a bit mask (other bits are\n"
"ignored): bit 30 adds the thread\'s serial, serial_last_jump and initial\n"
"stub (a cstack), bit 31 its watchdog list (None before its first run()).");

#define _STACKLESS_GET_THREAD_INFO_METHODDEF    \
    {"get_thread_info", _PyCFunction_CAST(_stackless_get_thread_info), METH_FASTCALL|METH_KEYWORDS, _stackless_get_thread_info__doc__},

static PyObject *
_stackless_get_thread_info_impl(PyObject *module, PyObject *thread_id,
                                PyObject *flags);

static PyObject *
_stackless_get_thread_info(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 2
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(thread_id), &_Py_ID(flags), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"thread_id", "flags", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "get_thread_info",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[2];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    PyObject *thread_id = NULL;
    PyObject *flags = NULL;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 2, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (args[0]) {
        thread_id = args[0];
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    flags = args[1];
skip_optional_pos:
    return_value = _stackless_get_thread_info_impl(module, thread_id, flags);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_getthreads__doc__,
"getthreads($module, /)\n"
"--\n"
"\n"
"Return the ids of the interpreter\'s threads, the main thread first.");

#define _STACKLESS_GETTHREADS_METHODDEF    \
    {"getthreads", (PyCFunction)_stackless_getthreads, METH_NOARGS, _stackless_getthreads__doc__},

static PyObject *
_stackless_getthreads_impl(PyObject *module);

static PyObject *
_stackless_getthreads(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getthreads_impl(module);
}

PyDoc_STRVAR(_stackless_getdebug__doc__,
"getdebug($module, /)\n"
"--\n"
"\n"
"Return True in a debug build of the interpreter.");

#define _STACKLESS_GETDEBUG_METHODDEF    \
    {"getdebug", (PyCFunction)_stackless_getdebug, METH_NOARGS, _stackless_getdebug__doc__},

static PyObject *
_stackless_getdebug_impl(PyObject *module);

static PyObject *
_stackless_getdebug(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getdebug_impl(module);
}

PyDoc_STRVAR(_stackless_getuncollectables__doc__,
"getuncollectables($module, /)\n"
"--\n"
"\n"
"Return the suspended tasklets that own a C stack.\n"
"\n"
"The collector cannot look into a C stack: cycles through these tasklets\n"
"are not collected, and the tasklets end only when killed (their thread\'s\n"
"end kills them).");

#define _STACKLESS_GETUNCOLLECTABLES_METHODDEF    \
    {"getuncollectables", (PyCFunction)_stackless_getuncollectables, METH_NOARGS, _stackless_getuncollectables__doc__},

static PyObject *
_stackless_getuncollectables_impl(PyObject *module);

static PyObject *
_stackless_getuncollectables(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_getuncollectables_impl(module);
}

PyDoc_STRVAR(_stackless_pickle_flags__doc__,
"pickle_flags($module, /, new_flags=-1, mask=-1)\n"
"--\n"
"\n"
"Return, and change, the pickle flags of the calling thread.\n"
"\n"
"flags = (flags & ~mask) | (new_flags & mask), unless new_flags is -1.");

#define _STACKLESS_PICKLE_FLAGS_METHODDEF    \
    {"pickle_flags", _PyCFunction_CAST(_stackless_pickle_flags), METH_FASTCALL|METH_KEYWORDS, _stackless_pickle_flags__doc__},

static PyObject *
_stackless_pickle_flags_impl(PyObject *module, long new_flags, long mask);

static PyObject *
_stackless_pickle_flags(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 2
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(new_flags), &_Py_ID(mask), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"new_flags", "mask", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "pickle_flags",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[2];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    long new_flags = -1;
    long mask = -1;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 2, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (args[0]) {
        new_flags = PyLong_AsLong(args[0]);
        if (new_flags == -1 && PyErr_Occurred()) {
            goto exit;
        }
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    mask = PyLong_AsLong(args[1]);
    if (mask == -1 && PyErr_Occurred()) {
        goto exit;
    }
skip_optional_pos:
    return_value = _stackless_pickle_flags_impl(module, new_flags, mask);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_pickle_flags_default__doc__,
"pickle_flags_default($module, /, new_default=-1, mask=-1)\n"
"--\n"
"\n"
"Return, and change, the pickle flags new threads start with.");

#define _STACKLESS_PICKLE_FLAGS_DEFAULT_METHODDEF    \
    {"pickle_flags_default", _PyCFunction_CAST(_stackless_pickle_flags_default), METH_FASTCALL|METH_KEYWORDS, _stackless_pickle_flags_default__doc__},

static PyObject *
_stackless_pickle_flags_default_impl(PyObject *module, long new_default,
                                     long mask);

static PyObject *
_stackless_pickle_flags_default(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *return_value = NULL;
    #if defined(Py_BUILD_CORE) && !defined(Py_BUILD_CORE_MODULE)

    #define NUM_KEYWORDS 2
    static struct {
        PyGC_Head _this_is_not_used;
        PyObject_VAR_HEAD
        PyObject *ob_item[NUM_KEYWORDS];
    } _kwtuple = {
        .ob_base = PyVarObject_HEAD_INIT(&PyTuple_Type, NUM_KEYWORDS)
        .ob_item = { &_Py_ID(new_default), &_Py_ID(mask), },
    };
    #undef NUM_KEYWORDS
    #define KWTUPLE (&_kwtuple.ob_base.ob_base)

    #else  // !Py_BUILD_CORE
    #  define KWTUPLE NULL
    #endif  // !Py_BUILD_CORE

    static const char * const _keywords[] = {"new_default", "mask", NULL};
    static _PyArg_Parser _parser = {
        .keywords = _keywords,
        .fname = "pickle_flags_default",
        .kwtuple = KWTUPLE,
    };
    #undef KWTUPLE
    PyObject *argsbuf[2];
    Py_ssize_t noptargs = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0) - 0;
    long new_default = -1;
    long mask = -1;

    args = _PyArg_UnpackKeywords(args, nargs, NULL, kwnames, &_parser, 0, 2, 0, argsbuf);
    if (!args) {
        goto exit;
    }
    if (!noptargs) {
        goto skip_optional_pos;
    }
    if (args[0]) {
        new_default = PyLong_AsLong(args[0]);
        if (new_default == -1 && PyErr_Occurred()) {
            goto exit;
        }
        if (!--noptargs) {
            goto skip_optional_pos;
        }
    }
    mask = PyLong_AsLong(args[1]);
    if (mask == -1 && PyErr_Occurred()) {
        goto exit;
    }
skip_optional_pos:
    return_value = _stackless_pickle_flags_default_impl(module, new_default, mask);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless_test_outside__doc__,
"test_outside($module, /)\n"
"--\n"
"\n"
"Test hook: run the runqueue as C code outside Stackless would.\n"
"\n"
"The caller leaves its thread (main tasklet, frames, serial_last_jump)\n"
"while each round of PyStackless_Schedule(None, 0) runs in a temporary\n"
"main tasklet; then it comes back.  Blocked tasklets stay blocked.");

#define _STACKLESS_TEST_OUTSIDE_METHODDEF    \
    {"test_outside", (PyCFunction)_stackless_test_outside, METH_NOARGS, _stackless_test_outside__doc__},

static PyObject *
_stackless_test_outside_impl(PyObject *module);

static PyObject *
_stackless_test_outside(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless_test_outside_impl(module);
}
/*[clinic end generated code: output=2f4ab9a904af3154 input=a9049054013a1b77]*/
