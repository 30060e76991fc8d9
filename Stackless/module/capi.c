/* The C API of stackless_api.h (spec A).
 *
 * A thin layer, as the _stackless module is: each function does what its
 * Python counterpart does, by calling that counterpart's implementation
 * on the base type (a method or attribute of PyTasklet_Type or
 * PyChannel_Type, found in the type's dict, so that a subclass overriding
 * it is not called), or the core function behind the module function.
 * Called from C, the switching ones switch hard (the core sees no CALL of
 * the eval loop as their caller).
 *
 * Outside any Python code of a thread (a host's C code), the caller is
 * the thread's main tasklet, made on first use (thread.c); it blocks and
 * switches like any other, whatever the depth of the C stack at the call
 * (the runner starts tasklets from a snapshot taken below the place of
 * first use, and a main tasklet above it saves nothing).
 *
 * Posting from other threads (PyStackless_PostToChannel) goes through a
 * queue of the runtime, guarded by a lock of its own, and a pending call
 * of the main thread, the only things that work without the GIL.
 */

#include "../core/stackless_impl.h"   // and stackless_api.h
#include "pycore_ceval.h"         // _PyEval_AddPendingCall(), _PyEval_EvalFrame()
#include "pycore_frame.h"         // _PyFrame_Initialize()
#include "pycore_function.h"      // _PyFunction_FromConstructor()
#include "pycore_pyerrors.h"      // _PyErr_SetRaisedException()
#include "pycore_object.h"        // _PyObject_HEAD_INIT()
#include "pycore_opcode_metadata.h"  // _PyOpcode_Caches
#include "opcode.h"               // LOAD_FAST
#include "pycore_pystate.h"       // _PyThreadState_GET()
#include "pycore_fileutils.h"     // _Py_write_noraise()

/* --- calling the base type's implementation ----------------------------- */

/* The attribute or method `name` of the base type `type`, found in its
 * dict (borrowed). */
static PyObject *
base_descr(PyTypeObject *type, const char *name)
{
    PyObject *d = PyDict_GetItemString(type->tp_dict, name);
    if (d == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_SystemError, "%s has no '%s'", type->tp_name,
                     name);
    }
    return d;
}

/* type.name(self, *args, **kwargs): args a tuple or NULL. */
static PyObject *
call_base(PyTypeObject *type, PyObject *self, const char *name,
          PyObject *args, PyObject *kwargs)
{
    if (self == NULL || (args != NULL && !PyTuple_Check(args))) {
        PyErr_BadInternalCall();
        return NULL;
    }
    PyObject *meth = base_descr(type, name);
    if (meth == NULL) {
        return NULL;
    }
    Py_ssize_t n = args != NULL ? PyTuple_GET_SIZE(args) : 0;
    PyObject *all = PyTuple_New(n + 1);
    if (all == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(all, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    PyObject *res = PyObject_Call(meth, all, kwargs);
    Py_DECREF(all);
    return res;
}

/* The same with the arguments given one by one, NULL-terminated. */
static PyObject *
call_base_va(PyTypeObject *type, PyObject *self, const char *name, ...)
{
    PyObject *items[8];
    int n = 0;
    va_list va;
    va_start(va, name);
    PyObject *arg;
    while ((arg = va_arg(va, PyObject *)) != NULL) {
        assert(n < 8);
        items[n++] = arg;
    }
    va_end(va);
    PyObject *args = _PyTuple_FromArray(items, n);
    if (args == NULL) {
        return NULL;
    }
    PyObject *res = call_base(type, self, name, args, NULL);
    Py_DECREF(args);
    return res;
}

/* An int result: 0, or -1 with an exception. */
static int
done(PyObject *res)
{
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static PyObject *
get_base(PyTypeObject *type, PyObject *self, const char *name)
{
    PyObject *d = base_descr(type, name);
    if (d == NULL) {
        return NULL;
    }
    descrgetfunc get = Py_TYPE(d)->tp_descr_get;
    if (get == NULL) {
        return Py_NewRef(d);
    }
    return get(d, self, (PyObject *)Py_TYPE(self));
}

static int
set_base(PyTypeObject *type, PyObject *self, const char *name, PyObject *v)
{
    PyObject *d = base_descr(type, name);
    if (d == NULL) {
        return -1;
    }
    descrsetfunc set = Py_TYPE(d)->tp_descr_set;
    if (set == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%s' is read-only", name);
        return -1;
    }
    return set(d, self, v);
}

/* A boolean or integer attribute: its value, or -1 with an exception. */
static int
get_int(PyTypeObject *type, PyObject *self, const char *name)
{
    if (self == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    PyObject *v = get_base(type, self, name);
    if (v == NULL) {
        return -1;
    }
    long r = PyLong_AsLong(v);
    Py_DECREF(v);
    if (r == -1 && PyErr_Occurred()) {
        return -1;
    }
    return (int)r;
}

static int
set_int(PyTypeObject *type, PyObject *self, const char *name, int value)
{
    PyObject *v = PyLong_FromLong(value);
    if (v == NULL) {
        return -1;
    }
    int r = set_base(type, self, name, v);
    Py_DECREF(v);
    return r;
}

#define T(t) ((PyObject *)(t))
#define CH(ch) ((PyObject *)(ch))

/* --- tasklets ----------------------------------------------------------- */

static int
check_subtype(PyTypeObject *type, PyTypeObject *base)
{
    if (slp_types_ready() < 0) {
        return -1;
    }
    if (!PyType_Check(type) || !PyType_IsSubtype(type, base)) {
        PyErr_Format(PyExc_TypeError, "%s is not a subtype of %s",
                     PyType_Check(type) ? type->tp_name
                                        : Py_TYPE(type)->tp_name,
                     base->tp_name);
        return -1;
    }
    return 0;
}

PyTaskletObject *
PyTasklet_New(PyTypeObject *type, PyObject *func)
{
    if (type == NULL) {
        type = &PyTasklet_Type;
    }
    if (check_subtype(type, &PyTasklet_Type) < 0) {
        return NULL;
    }
    PyObject *t = (func == NULL || func == Py_None)
        ? PyObject_CallNoArgs((PyObject *)type)
        : PyObject_CallOneArg((PyObject *)type, func);
    if (t != NULL && !PyTasklet_Check(t)) {
        PyErr_Format(PyExc_TypeError, "%s() did not return a tasklet",
                     type->tp_name);
        Py_CLEAR(t);
    }
    return (PyTaskletObject *)t;
}

int
PyTasklet_Setup(PyTaskletObject *t, PyObject *args, PyObject *kwds)
{
    if ((args != NULL && !PyTuple_Check(args))
        || (kwds != NULL && !PyDict_Check(kwds)))
    {
        PyErr_SetString(PyExc_TypeError,
                        "PyTasklet_Setup() needs a tuple and a dict");
        return -1;
    }
    PyObject *empty = NULL;
    if (args == NULL) {
        args = empty = PyTuple_New(0);
        if (args == NULL) {
            return -1;
        }
    }
    int r = done(call_base(&PyTasklet_Type, T(t), "setup", args, kwds));
    Py_XDECREF(empty);
    return r;
}

int
PyTasklet_BindEx(PyTaskletObject *t, PyObject *func, PyObject *args,
                 PyObject *kwargs)
{
    return done(call_base_va(&PyTasklet_Type, T(t), "bind",
                             func != NULL ? func : Py_None,
                             args != NULL ? args : Py_None,
                             kwargs != NULL ? kwargs : Py_None, NULL));
}

int
PyTasklet_BindThread(PyTaskletObject *t, unsigned long thread_id)
{
    PyObject *id = thread_id == (unsigned long)-1
        ? PyLong_FromLong(-1) : PyLong_FromUnsignedLong(thread_id);
    if (id == NULL) {
        return -1;
    }
    int r = done(call_base_va(&PyTasklet_Type, T(t), "bind_thread", id,
                              NULL));
    Py_DECREF(id);
    return r;
}

int
PyTasklet_Remove(PyTaskletObject *t)
{
    return done(call_base_va(&PyTasklet_Type, T(t), "remove", NULL));
}

int
PyTasklet_Insert(PyTaskletObject *t)
{
    return done(call_base_va(&PyTasklet_Type, T(t), "insert", NULL));
}

/* meth(klass, *args) of a tasklet or channel. */
static int
raise_with_args(PyTypeObject *type, PyObject *self, const char *name,
                PyObject *klass, PyObject *args)
{
    if (klass == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    if (args != NULL && !PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "args must be a tuple");
        return -1;
    }
    Py_ssize_t n = args != NULL ? PyTuple_GET_SIZE(args) : 0;
    PyObject *all = PyTuple_New(n + 1);
    if (all == NULL) {
        return -1;
    }
    PyTuple_SET_ITEM(all, 0, Py_NewRef(klass));
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(all, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    int r = done(call_base(type, self, name, all, NULL));
    Py_DECREF(all);
    return r;
}

int
PyTasklet_RaiseException(PyTaskletObject *t, PyObject *klass,
                         PyObject *args)
{
    return raise_with_args(&PyTasklet_Type, T(t), "raise_exception", klass,
                           args);
}

int
PyTasklet_Throw(PyTaskletObject *t, int pending, PyObject *exc,
                PyObject *val, PyObject *tb)
{
    PyObject *kwargs = Py_BuildValue("{s:O}", "pending",
                                     pending ? Py_True : Py_False);
    PyObject *args = kwargs != NULL
        ? Py_BuildValue("(OOO)", exc != NULL ? exc : Py_None,
                        val != NULL ? val : Py_None,
                        tb != NULL ? tb : Py_None)
        : NULL;
    int r = args != NULL
        ? done(call_base(&PyTasklet_Type, T(t), "throw", args, kwargs)) : -1;
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return r;
}

int
PyTasklet_KillEx(PyTaskletObject *t, int pending)
{
    PyObject *kwargs = Py_BuildValue("{s:O}", "pending",
                                     pending ? Py_True : Py_False);
    if (kwargs == NULL) {
        return -1;
    }
    int r = done(call_base(&PyTasklet_Type, T(t), "kill", NULL, kwargs));
    Py_DECREF(kwargs);
    return r;
}

int
PyTasklet_Kill(PyTaskletObject *t)
{
    return PyTasklet_KillEx(t, 0);
}

/* set_atomic() and set_ignore_nesting(): the old value. */
static int
set_flag(PyTaskletObject *t, const char *name, int flag)
{
    PyObject *res = call_base_va(&PyTasklet_Type, T(t), name,
                                 flag ? Py_True : Py_False, NULL);
    if (res == NULL) {
        return -1;
    }
    int old = PyObject_IsTrue(res);
    Py_DECREF(res);
    return old;
}

int
PyTasklet_SetAtomic(PyTaskletObject *t, int flag)
{
    return set_flag(t, "set_atomic", flag);
}

int
PyTasklet_GetAtomic(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "atomic");
}

int
PyTasklet_SetIgnoreNesting(PyTaskletObject *t, int flag)
{
    return set_flag(t, "set_ignore_nesting", flag);
}

int
PyTasklet_GetIgnoreNesting(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "ignore_nesting");
}

int
PyTasklet_GetPendingIrq(PyTaskletObject *t)
{
    if (t == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    return t->pending_irq;
}

PyObject *
PyTasklet_GetFrame(PyTaskletObject *t)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *f = t != NULL ? get_base(&PyTasklet_Type, T(t), "frame")
                            : NULL;
    if (f == Py_None) {
        Py_CLEAR(f);
    }
    /* No exception: NULL means no frame. */
    PyErr_SetRaisedException(exc);
    return f;
}

int
PyTasklet_GetBlockTrap(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "block_trap");
}

void
PyTasklet_SetBlockTrap(PyTaskletObject *t, int value)
{
    PyObject *v = value ? Py_True : Py_False;
    if (set_base(&PyTasklet_Type, T(t), "block_trap", v) < 0) {
        PyErr_FormatUnraisable("Exception in PyTasklet_SetBlockTrap()");
    }
}

int
PyTasklet_IsMain(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "is_main");
}

int
PyTasklet_IsCurrent(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "is_current");
}

int
PyTasklet_GetRecursionDepth(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "recursion_depth");
}

int
PyTasklet_GetNestingLevel(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "nesting_level");
}

int
PyTasklet_Alive(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "alive");
}

int
PyTasklet_Paused(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "paused");
}

int
PyTasklet_Scheduled(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "scheduled");
}

int
PyTasklet_Restorable(PyTaskletObject *t)
{
    return get_int(&PyTasklet_Type, T(t), "restorable");
}

/* --- channels ----------------------------------------------------------- */

PyChannelObject *
PyChannel_New(PyTypeObject *type)
{
    if (type == NULL) {
        type = &PyChannel_Type;
    }
    if (check_subtype(type, &PyChannel_Type) < 0) {
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) {
        return NULL;
    }
    PyObject *ch = type->tp_new(type, empty, NULL);
    Py_DECREF(empty);
    return (PyChannelObject *)ch;
}

int
PyChannel_SendException(PyChannelObject *ch, PyObject *klass,
                        PyObject *args)
{
    return raise_with_args(&PyChannel_Type, CH(ch), "send_exception", klass,
                           args);
}

int
PyChannel_SendThrow(PyChannelObject *ch, PyObject *exc, PyObject *val,
                    PyObject *tb)
{
    if (exc == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    return done(call_base_va(&PyChannel_Type, CH(ch), "send_throw", exc,
                             val != NULL ? val : Py_None,
                             tb != NULL ? tb : Py_None, NULL));
}

PyObject *
PyChannel_GetQueue(PyChannelObject *ch)
{
    if (ch == NULL) {
        PyErr_BadInternalCall();
        return NULL;
    }
    return get_base(&PyChannel_Type, CH(ch), "queue");
}

/* The void functions of the original report errors as unraisable. */
static void
call_void(PyChannelObject *ch, const char *name)
{
    if (done(call_base_va(&PyChannel_Type, CH(ch), name, NULL)) < 0) {
        PyErr_FormatUnraisable("Exception in channel.%s()", name);
    }
}

void
PyChannel_Close(PyChannelObject *ch)
{
    call_void(ch, "close");
}

void
PyChannel_Open(PyChannelObject *ch)
{
    call_void(ch, "open");
}

int
PyChannel_GetClosing(PyChannelObject *ch)
{
    return get_int(&PyChannel_Type, CH(ch), "closing");
}

int
PyChannel_GetClosed(PyChannelObject *ch)
{
    return get_int(&PyChannel_Type, CH(ch), "closed");
}

int
PyChannel_GetPreference(PyChannelObject *ch)
{
    return get_int(&PyChannel_Type, CH(ch), "preference");
}

void
PyChannel_SetPreference(PyChannelObject *ch, int val)
{
    if (set_int(&PyChannel_Type, CH(ch), "preference", val) < 0) {
        PyErr_FormatUnraisable("Exception in PyChannel_SetPreference()");
    }
}

int
PyChannel_GetScheduleAll(PyChannelObject *ch)
{
    return get_int(&PyChannel_Type, CH(ch), "schedule_all");
}

void
PyChannel_SetScheduleAll(PyChannelObject *ch, int val)
{
    if (set_int(&PyChannel_Type, CH(ch), "schedule_all", val) < 0) {
        PyErr_FormatUnraisable("Exception in PyChannel_SetScheduleAll()");
    }
}

int
PyChannel_GetBalance(PyChannelObject *ch)
{
    return get_int(&PyChannel_Type, CH(ch), "balance");
}

/* --- the scheduler ------------------------------------------------------ */

int
PyStackless_GetRunCount(void)
{
    return (int)slp_get_runcount();
}

PyObject *
PyStackless_GetCurrent(void)
{
    slp_thread *th = slp_get_thread();
    return th != NULL ? Py_NewRef(th->current) : NULL;
}

unsigned long
PyStackless_GetCurrentId(void)
{
    /* Without the GIL (the thread's state, attached or not): only this
     * thread switches its tasklets. */
    PyThreadState *tstate = PyGILState_GetThisThreadState();
    slp_thread *th = tstate != NULL ? slp_thread_of(tstate) : NULL;
    if (th == NULL || th->current == th->main) {
        return PyThread_get_thread_ident();
    }
    return (unsigned long)(uintptr_t)th->current;
}

PyObject *
PyStackless_RunWatchdog(long timeout)
{
    return slp_run_watchdog(timeout, 0);
}

PyObject *
PyStackless_RunWatchdogEx(long timeout, int flags)
{
    if (flags < 0 || flags > 255) {
        PyErr_SetString(PyExc_ValueError, "flags must be in [0..255]");
        return NULL;
    }
    return slp_run_watchdog(timeout, flags);
}

/* --- calls into the main tasklet ---------------------------------------- */

PyObject *
PyStackless_Call_Main(PyObject *func, PyObject *args, PyObject *kwds)
{
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (tstate->current_frame != NULL
        || (th != NULL && th->current != th->main))
    {
        PyErr_SetString(PyExc_RuntimeError,
                        "Call_Main cannot run within a main tasklet");
        return NULL;
    }
    if (th == NULL && slp_get_thread() == NULL) {
        return NULL;
    }
    if (func == NULL || (args != NULL && !PyTuple_Check(args))
        || (kwds != NULL && !PyDict_Check(kwds)))
    {
        PyErr_SetString(PyExc_TypeError, "PyStackless_Call_Main() needs a "
                        "callable, a tuple and a dict");
        return NULL;
    }
    PyObject *empty = NULL;
    if (args == NULL) {
        args = empty = PyTuple_New(0);
        if (args == NULL) {
            return NULL;
        }
    }
    PyObject *res = PyObject_Call(func, args, kwds);
    Py_XDECREF(empty);
    return res;
}

static PyObject *
call_main_va(PyObject *func, const char *format, va_list va)
{
    PyObject *args;
    if (format == NULL || *format == '\0') {
        args = PyTuple_New(0);
    }
    else {
        args = Py_VaBuildValue(format, va);
        if (args != NULL && !PyTuple_Check(args)) {
            Py_SETREF(args, PyTuple_Pack(1, args));
        }
    }
    if (args == NULL) {
        return NULL;
    }
    PyObject *res = PyStackless_Call_Main(func, args, NULL);
    Py_DECREF(args);
    return res;
}

PyObject *
PyStackless_CallMethod_Main(PyObject *o, const char *name,
                            const char *format, ...)
{
    PyObject *func = PyObject_GetAttrString(o, name);
    if (func == NULL) {
        return NULL;
    }
    va_list va;
    va_start(va, format);
    PyObject *res = call_main_va(func, format, va);
    va_end(va);
    Py_DECREF(func);
    return res;
}

PyObject *
PyStackless_CallCMethod_Main(PyMethodDef *m, PyObject *self,
                             const char *format, ...)
{
    PyObject *func = PyCFunction_New(m, self);
    if (func == NULL) {
        return NULL;
    }
    va_list va;
    va_start(va, format);
    PyObject *res = call_main_va(func, format, va);
    va_end(va);
    Py_DECREF(func);
    return res;
}

/* --- callbacks ---------------------------------------------------------- */

static PyObject *
module_function(const char *name)
{
    PyObject *mod = PyImport_ImportModule("_stackless");
    if (mod == NULL) {
        return NULL;
    }
    PyObject *f = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return f;
}

static int
set_callback(const char *setter, PyObject *callable)
{
    PyObject *f = module_function(setter);
    if (f == NULL) {
        return -1;
    }
    int r = done(PyObject_CallOneArg(f, callable != NULL ? callable
                                                         : Py_None));
    Py_DECREF(f);
    return r;
}

int
PyStackless_SetChannelCallback(PyObject *callable)
{
    return set_callback("set_channel_callback", callable);
}

int
PyStackless_SetScheduleCallback(PyObject *callable)
{
    return set_callback("set_schedule_callback", callable);
}

void
PyStackless_SetScheduleFastcallback(slp_schedule_hook_func *func)
{
    slp_interp *si = slp_get_interp(_PyInterpreterState_GET());
    if (si == NULL) {
        PyErr_FormatUnraisable("Exception in "
                               "PyStackless_SetScheduleFastcallback()");
        return;
    }
    if (slp_set_schedule_hook(si, func) < 0) {
        PyErr_FormatUnraisable("Exception in "
                               "PyStackless_SetScheduleFastcallback()");
    }
}

/* --- the stackless protocol and soft-switchable C functions --------------
 *
 * The permission of the protocol is a field of the thread state
 * (stackless_try).  The eval loop grants it to an extension's builtin of
 * METH_STACKLESS that it calls (slp_protocol_call), when the tasklet can
 * switch softly there; the shim of a soft-switchable function grants it
 * to the function at each step.  Whoever holds it may pass it on, with
 * STACKLESS_PROMOTE_*(), to one call of the C API, or of a Python
 * function (Objects/call.c: _PyStackless_FunctionCall): that call then
 * switches softly, or pushes the function's frame, and returns
 * Py_UnwindToken, which goes back to the eval loop unchanged; the eval
 * loop makes the switch, or runs the frame, and resumes the shim (or the
 * caller) with the result.  What a C function returns after something
 * was pushed for it, if not Py_UnwindToken (C code in between that
 * looked at the token), undoes the push: the Python function did not
 * run (enter_cancel). */

int *
_PyStackless__TryStacklessPtr(void)
{
    return &((_PyThreadStateImpl *)_PyThreadState_GET())->stackless_try;
}

static PyObject *
unwind_repr(PyObject *op)
{
    return PyUnicode_FromString("<Py_UnwindToken>");
}

static PyTypeObject unwind_type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.UnwindToken",
    .tp_basicsize = sizeof(PyObject),
    .tp_repr = unwind_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("The result of a C function unwinding for a soft "
                        "switch (Py_UnwindToken)."),
};

struct _unwind {
    PyObject_HEAD
};

static struct _unwind unwind_token = {
    _PyObject_HEAD_INIT(&unwind_type)
};

PyUnwindObject *Py_UnwindToken = &unwind_token;
#define UNWIND_TOKEN ((PyObject *)&unwind_token)

/* A request to the eval loop sets the marker exception in a debug
 * build, which must not go through C code with Py_UnwindToken (CPython
 * checks that a result comes without an exception): it is dropped, and
 * set again when the token is back at the eval loop (unwind_check). */
static void
marker_drop(PyThreadState *tstate)
{
    PyObject *exc = _PyErr_GetRaisedException(tstate);
    if (exc != NULL && slp_soft_switch_marker_check(exc)) {
        Py_CLEAR(exc);
    }
    _PyErr_SetRaisedException(tstate, exc);
}

/* A soft switch decided by the core (slp_soft_switched): asked of the
 * eval loop that called the builtin running now, for when the C code
 * returns Py_UnwindToken to it. */
static PyObject *
unwound(PyThreadState *tstate, PyObject *res)
{
    if (res == slp_soft_switched) {
        slp_soft_switch_request(tstate, SLP_PENDING_SWITCH, 0);
        marker_drop(tstate);
        return UNWIND_TOKEN;
    }
    return res;
}

/* The frame pushed for the eval loop (slp_enter_request) is dropped: the
 * C code that pushed it did not unwind.  Nothing ran in it. */
static void
enter_cancel(PyThreadState *tstate)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_thread *th = ts->stackless;
    _PyInterpreterFrame *f = th->soft_enter;
    assert(f != NULL && f == th->soft_enter_base);
    th->soft_enter = th->soft_enter_base = NULL;
    th->soft_enter_gen = NULL;
    th->switch_trap--;
    th->pending_what = 0;
    ts->stackless_pending = NULL;
    marker_drop(tstate);
    PyObject *exc = _PyErr_GetRaisedException(tstate);
    tstate->py_recursion_remaining++;
    _PyFrame_ClearExceptCode(f);
    Py_DECREF(f->f_executable);
    _PyThreadState_PopFrame(tstate, f);
    _PyErr_SetRaisedException(tstate, exc);
}

/* After C code that may have unwound, called by the eval loop of the
 * frame running now: NULL with the switch (or entry) pending for it, if
 * it unwound; else its result. */
static PyObject *
unwind_check(PyThreadState *tstate, PyObject *callable, PyObject *res)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    int pending = ts->stackless_pending != NULL
                  && ts->stackless_pending == tstate->current_frame;
    if (res == UNWIND_TOKEN) {
        if (pending) {
#ifdef Py_DEBUG
            /* A debug build asserts an exception after a CALL that
             * returns NULL. */
            if (!_PyErr_Occurred(tstate)) {
                slp_soft_switch_marker_set(tstate);
            }
#endif
            return NULL;
        }
        PyErr_Format(PyExc_SystemError,
                     "%R returned Py_UnwindToken without a switch", callable);
        return NULL;
    }
    if (pending) {
        slp_thread *th = ts->stackless;
        if (th->soft_enter != NULL) {
            /* A function it called pushed its frame for the eval loop
             * (the permission of the protocol went on to it), and got
             * Py_UnwindToken, which the C code kept as a value: the
             * frame never runs, and the result is not to be trusted. */
            enter_cancel(tstate);
            if (res != NULL) {
                Py_DECREF(res);
                PyErr_Format(PyExc_SystemError,
                             "%R did not return Py_UnwindToken from a call "
                             "that unwound (the stackless protocol: "
                             "STACKLESS_GETARG() takes the permission)",
                             callable);
            }
            return NULL;
        }
        else {
            /* A soft switch is decided: it must happen. */
            Py_XDECREF(res);
            PyErr_Format(PyExc_SystemError, "%R switched softly and did "
                         "not return Py_UnwindToken", callable);
            return NULL;
        }
    }
    return res;
}

PyObject *
slp_protocol_call(PyThreadState *tstate, PyObject *callable,
                  PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_thread *th = ts->stackless;
    _PyInterpreterFrame *outer = ts->stackless_softcall;
    ts->stackless_softcall = tstate->current_frame;
    ts->stackless_try = th != NULL && slp_can_park_softly(th, 1);
    /* CPython's call of a builtin counts one level of C recursion, which
     * the core's own builtins do not (softcall.c: call_def): the builtin
     * runs at the level of the eval loop, where a switch can be soft. */
    tstate->c_recursion_remaining++;
    PyObject *res = PyObject_Vectorcall(callable, args, nargsf, kwnames);
    tstate->c_recursion_remaining--;
    ts->stackless_try = 0;
    ts->stackless_softcall = outer;
    return unwind_check(tstate, callable, res);
}

PyObject *
_PyStackless_FunctionCall(PyThreadState *tstate, PyFunctionObject *func,
                          PyObject *const *args, size_t nargsf,
                          PyObject *kwnames)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    ts->stackless_try = 0;
    slp_thread *th = ts->stackless;
    if (th != NULL && th->soft_enter == NULL && slp_softcall_active(tstate)) {
        int r = slp_soft_function_call(th, func, args,
                                       PyVectorcall_NARGS(nargsf), kwnames);
        if (r < 0) {
            return NULL;
        }
        if (r > 0) {
            marker_drop(tstate);
            return UNWIND_TOKEN;
        }
    }
    return _PyFunction_Vectorcall((PyObject *)func, args, nargsf, kwnames);
}

/* C code calls a core function hard: it does not see the eval loop's
 * call of the builtin that runs it. */
#define HARD_BEGIN(tstate) \
    { \
        _PyThreadStateImpl *_ts = (_PyThreadStateImpl *)(tstate); \
        _PyInterpreterFrame *_outer = _ts->stackless_softcall; \
        _ts->stackless_softcall = NULL;
#define HARD_END \
        _ts->stackless_softcall = _outer; \
    }

static PyObject *
schedule(int stackless, PyObject *retval, int remove)
{
    PyThreadState *tstate = _PyThreadState_GET();
    if (stackless && slp_softcall_active(tstate)) {
        return unwound(tstate, slp_schedule(retval, remove));
    }
    PyObject *res;
    HARD_BEGIN(tstate)
    res = slp_schedule(retval, remove);
    HARD_END
    return res;
}

PyObject *
PyStackless_Schedule(PyObject *retval, int remove)
{
    STACKLESS_GETARG();
    return schedule(stackless, retval, remove);
}

PyObject *
PyStackless_Schedule_nr(PyObject *retval, int remove)
{
    _PyStackless_TRY_STACKLESS = 0;
    return schedule(1, retval, remove);
}

/* type.name(self[, arg]), softly if `stackless` allows it and the eval
 * loop called the builtin that runs now. */
static PyObject *
call_base_nr(int stackless, PyTypeObject *type, PyObject *self,
             const char *name, PyObject *arg)
{
    PyThreadState *tstate = _PyThreadState_GET();
    if (stackless && self != NULL && slp_softcall_active(tstate)) {
        PyObject *meth = base_descr(type, name);
        if (meth == NULL) {
            return NULL;
        }
        PyObject *argv[2] = {self, arg};
        return unwound(tstate, slp_call_softly(tstate, meth, argv,
                                               arg != NULL ? 2 : 1));
    }
    return call_base_va(type, self, name, arg, NULL);
}

/* An int result of it: 0, 1 if it unwound, -1 with an exception. */
static int
int_nr(PyObject *res)
{
    if (res == UNWIND_TOKEN) {
        return 1;
    }
    return done(res);
}

int
PyTasklet_Run(PyTaskletObject *t)
{
    STACKLESS_GETARG();
    return int_nr(call_base_nr(stackless, &PyTasklet_Type, T(t), "run",
                               NULL));
}

int
PyTasklet_Run_nr(PyTaskletObject *t)
{
    _PyStackless_TRY_STACKLESS = 0;
    return int_nr(call_base_nr(1, &PyTasklet_Type, T(t), "run", NULL));
}

int
PyTasklet_Switch(PyTaskletObject *t)
{
    STACKLESS_GETARG();
    return int_nr(call_base_nr(stackless, &PyTasklet_Type, T(t), "switch",
                               NULL));
}

int
PyTasklet_Switch_nr(PyTaskletObject *t)
{
    _PyStackless_TRY_STACKLESS = 0;
    return int_nr(call_base_nr(1, &PyTasklet_Type, T(t), "switch", NULL));
}

int
PyChannel_Send(PyChannelObject *ch, PyObject *value)
{
    STACKLESS_GETARG();
    if (value == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    return int_nr(call_base_nr(stackless, &PyChannel_Type, CH(ch), "send",
                               value));
}

int
PyChannel_Send_nr(PyChannelObject *ch, PyObject *value)
{
    _PyStackless_TRY_STACKLESS = 0;
    if (value == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    return int_nr(call_base_nr(1, &PyChannel_Type, CH(ch), "send", value));
}

PyObject *
PyChannel_Receive(PyChannelObject *ch)
{
    STACKLESS_GETARG();
    return call_base_nr(stackless, &PyChannel_Type, CH(ch), "receive",
                        NULL);
}

PyObject *
PyChannel_Receive_nr(PyChannelObject *ch)
{
    _PyStackless_TRY_STACKLESS = 0;
    return call_base_nr(1, &PyChannel_Type, CH(ch), "receive", NULL);
}

/* --- soft-switchable C functions --------------------------------------- */

static PyObject *
declaration_repr(PyStacklessFunctionDeclarationObject *d)
{
    return PyUnicode_FromFormat("<soft-switchable C function %s.%s>",
                                d->module_name ? d->module_name : "?",
                                d->name ? d->name : "?");
}

PyTypeObject PyStacklessFunctionDeclaration_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.FunctionDeclaration",
    .tp_basicsize = sizeof(PyStacklessFunctionDeclarationObject),
    .tp_repr = (reprfunc)declaration_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = PyDoc_STR("The static declaration of a soft-switchable C "
                        "function."),
};

/* The declarations by "module.name", for unpickling: borrowed, static. */
static PyObject *declarations;

int
PyStackless_InitFunctionDeclaration(
    PyStacklessFunctionDeclarationObject *decl, PyObject *module,
    PyModuleDef *def)
{
    if (decl == NULL || decl->sfunc == NULL || decl->name == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    if (!PyStacklessFunctionDeclarationType_CheckExact(decl)) {
        PyErr_SetString(PyExc_TypeError,
                        "not a PyStacklessFunctionDeclarationObject");
        return -1;
    }
    if (def != NULL && def->m_name != NULL) {
        decl->module_name = def->m_name;
    }
    else if (module != NULL) {
        const char *name = PyModule_GetName(module);
        if (name == NULL) {
            return -1;
        }
        decl->module_name = name;
    }
    else {
        PyErr_BadInternalCall();
        return -1;
    }
    if (declarations == NULL && (declarations = PyDict_New()) == NULL) {
        return -1;
    }
    PyObject *key = PyUnicode_FromFormat("%s.%s", decl->module_name,
                                         decl->name);
    if (key == NULL) {
        return -1;
    }
    int r = PyDict_SetItem(declarations, key, (PyObject *)decl);
    Py_DECREF(key);
    return r;
}

/* The declaration registered as module.name, importing the module if it
 * is not yet; NULL with ValueError if there is none. */
static PyStacklessFunctionDeclarationObject *
find_declaration(PyObject *module, PyObject *name)
{
    PyObject *key = PyUnicode_FromFormat("%U.%U", module, name);
    if (key == NULL) {
        return NULL;
    }
    PyObject *d = declarations != NULL
                  ? PyDict_GetItemWithError(declarations, key) : NULL;
    if (d == NULL && !PyErr_Occurred()) {
        PyObject *m = PyImport_Import(module);
        Py_XDECREF(m);
        if (m != NULL && declarations != NULL) {
            d = PyDict_GetItemWithError(declarations, key);
        }
        if (d == NULL && (m != NULL || PyErr_ExceptionMatches(
                              PyExc_ImportError)))
        {
            PyErr_Format(PyExc_ValueError,
                         "no soft-switchable C function %R", key);
        }
    }
    Py_DECREF(key);
    return (PyStacklessFunctionDeclarationObject *)d;
}

/* The state of a call of a soft-switchable function run by the shim
 * (shims.c): what the function keeps between its steps.  True while the
 * function has not returned.  `lost`: it was unpickled from a call whose
 * private state (`any`) could not be pickled, and cannot go on. */
typedef struct {
    PyObject_HEAD
    PyStacklessFunctionDeclarationObject *decl;
    PyObject *ob1, *ob2, *ob3;
    long step, n;
    void *any;
    char running, lost;
} softcall_object;


static softcall_object *
softcall_new(PyStacklessFunctionDeclarationObject *decl)
{
    softcall_object *sc = PyObject_GC_New(softcall_object, &slp_softcall_type);
    if (sc == NULL) {
        return NULL;
    }
    sc->decl = decl;
    sc->ob1 = sc->ob2 = sc->ob3 = NULL;
    sc->step = sc->n = 0;
    sc->any = NULL;
    sc->running = 1;
    sc->lost = 0;
    PyObject_GC_Track(sc);
    return sc;
}

static int
softcall_traverse(softcall_object *sc, visitproc visit, void *arg)
{
    Py_VISIT(sc->ob1);
    Py_VISIT(sc->ob2);
    Py_VISIT(sc->ob3);
    return 0;
}

static int
softcall_clear(softcall_object *sc)
{
    Py_CLEAR(sc->ob1);
    Py_CLEAR(sc->ob2);
    Py_CLEAR(sc->ob3);
    return 0;
}

static void
softcall_dealloc(softcall_object *sc)
{
    PyObject_GC_UnTrack(sc);
    softcall_clear(sc);
    PyObject_GC_Del(sc);
}

static int
softcall_bool(softcall_object *sc)
{
    return sc->running;
}

static PyObject *
softcall_repr(softcall_object *sc)
{
    return PyUnicode_FromFormat("<call of %s.%s at step %ld%s>",
                                sc->decl->module_name, sc->decl->name,
                                sc->step, sc->running ? "" : ", returned");
}

/* Pickled: (type, (module, name), (step, n, ob1, ob2, ob3, lost, running)),
 * `lost` true if the function kept private state. */
static PyObject *
softcall_reduce(softcall_object *sc, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("O(ss)(llOOOii)", (PyObject *)&slp_softcall_type,
                         sc->decl->module_name, sc->decl->name, sc->step,
                         sc->n, sc->ob1 ? sc->ob1 : Py_None,
                         sc->ob2 ? sc->ob2 : Py_None,
                         sc->ob3 ? sc->ob3 : Py_None,
                         sc->lost || sc->any != NULL, sc->running);
}

static PyObject *
softcall_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *module, *name;
    if (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "soft_switchable_call() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "UU:soft_switchable_call", &module, &name)) {
        return NULL;
    }
    PyStacklessFunctionDeclarationObject *decl = find_declaration(module,
                                                                  name);
    if (decl == NULL) {
        return NULL;
    }
    return (PyObject *)softcall_new(decl);
}

static PyObject *
softcall_setstate(softcall_object *sc, PyObject *state)
{
    long step, n;
    PyObject *ob1, *ob2, *ob3;
    int lost, running;
    if (!PyTuple_Check(state)
        || !PyArg_ParseTuple(state, "llOOOpp:soft_switchable_call state",
                             &step, &n, &ob1, &ob2, &ob3, &lost, &running))
    {
        if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_SystemError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "the state of a "
                            "soft_switchable_call must be a tuple");
        }
        return NULL;
    }
    if (step < 0) {
        PyErr_SetString(PyExc_ValueError, "a negative step");
        return NULL;
    }
    if (sc->step != 0 || sc->ob1 != NULL || sc->ob2 != NULL
        || sc->ob3 != NULL || sc->any != NULL || sc->lost || !sc->running)
    {
        PyErr_SetString(PyExc_RuntimeError,
                        "the state of this call is set already");
        return NULL;
    }
    sc->step = step;
    sc->n = n;
    sc->ob1 = ob1 != Py_None ? Py_NewRef(ob1) : NULL;
    sc->ob2 = ob2 != Py_None ? Py_NewRef(ob2) : NULL;
    sc->ob3 = ob3 != Py_None ? Py_NewRef(ob3) : NULL;
    sc->lost = (char)lost;
    sc->running = (char)running;
    Py_RETURN_NONE;
}

static PyMethodDef softcall_methods[] = {
    {"__reduce__", (PyCFunction)softcall_reduce, METH_NOARGS, NULL},
    {"__setstate__", (PyCFunction)softcall_setstate, METH_O, NULL},
    {NULL}
};

static PyNumberMethods softcall_as_number = {
    .nb_bool = (inquiry)softcall_bool,
};

PyTypeObject slp_softcall_type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.soft_switchable_call",
    .tp_basicsize = sizeof(softcall_object),
    .tp_dealloc = (destructor)softcall_dealloc,
    .tp_repr = (reprfunc)softcall_repr,
    .tp_as_number = &softcall_as_number,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR("A call of a soft-switchable C function in a "
                        "tasklet, between two of its steps."),
    .tp_traverse = (traverseproc)softcall_traverse,
    .tp_clear = (inquiry)softcall_clear,
    .tp_methods = softcall_methods,
    .tp_new = softcall_tp_new,
};

/* One step of the call: the function called with `value` (NULL: the
 * exception set came in), with the permission of the protocol. */
static PyObject *
softcall_step(PyThreadState *tstate, softcall_object *sc, PyObject *value)
{
    if (!sc->running) {
        if (value == NULL) {
            return NULL;        /* it raised, or returned, already */
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "the soft-switchable call has returned");
        return NULL;
    }
    if (sc->lost) {
        sc->running = 0;
        if (value == NULL) {
            return NULL;
        }
        PyErr_Format(PyExc_RuntimeError,
                     "execute_soft_switchable_func: the call of %s.%s was "
                     "pickled with private state, which cannot be "
                     "restored", sc->decl->module_name, sc->decl->name);
        return NULL;
    }
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    Py_INCREF(sc);
    Py_XINCREF(value);
    ts->stackless_try = 1;
    PyObject *res = sc->decl->sfunc(value, &sc->step, &sc->ob1, &sc->ob2,
                                    &sc->ob3, &sc->n, &sc->any);
    ts->stackless_try = 0;
    Py_XDECREF(value);
    if (res != UNWIND_TOKEN) {
        sc->running = 0;
    }
    res = unwind_check(tstate, (PyObject *)sc, res);
    Py_DECREF(sc);
    return res;
}

static softcall_object *
softcall_arg(PyObject *const *args, Py_ssize_t nargs, const char *name)
{
    if (nargs != 2 || !Py_IS_TYPE(args[0], &slp_softcall_type)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a soft_switchable_call "
                     "and a value", name);
        return NULL;
    }
    return (softcall_object *)args[0];
}

static PyObject *
softcall_step_impl(PyObject *Py_UNUSED(m), PyObject *const *args,
                   Py_ssize_t nargs)
{
    softcall_object *sc = softcall_arg(args, nargs, "step");
    if (sc == NULL) {
        return NULL;
    }
    return softcall_step(_PyThreadState_GET(), sc, args[1]);
}

static PyObject *
softcall_step_exception_impl(PyObject *Py_UNUSED(m), PyObject *const *args,
                             Py_ssize_t nargs)
{
    softcall_object *sc = softcall_arg(args, nargs, "step_exception");
    if (sc == NULL) {
        return NULL;
    }
    if (!PyExceptionInstance_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "step_exception() needs an exception");
        return NULL;
    }
    PyErr_SetRaisedException(Py_NewRef(args[1]));
    return softcall_step(_PyThreadState_GET(), sc, NULL);
}

static slp_methoddef softcall_defs[] = {
    {{{"step", (PyCFunction)(void (*)(void))softcall_step_impl,
       METH_FASTCALL, NULL}, slp_call_entry, slp_call_entry}, NULL},
    {{{"step_exception",
       (PyCFunction)(void (*)(void))softcall_step_exception_impl,
       METH_FASTCALL, NULL}, slp_call_entry, slp_call_entry}, NULL},
};

static PyObject *softcall_funcs[2];

int
slp_softfunc_steps(PyObject **step, PyObject **step_exception)
{
    for (int i = 0; i < 2; i++) {
        if (softcall_funcs[i] == NULL) {
            softcall_funcs[i] = slp_switching_function(&softcall_defs[i]);
            if (softcall_funcs[i] == NULL) {
                return -1;
            }
        }
    }
    *step = softcall_funcs[0];
    *step_exception = softcall_funcs[1];
    return 0;
}

PyObject *
PyStackless_CallFunction(PyStacklessFunctionDeclarationObject *decl,
                         PyObject *arg, PyObject *ob1, PyObject *ob2,
                         PyObject *ob3, long n, void *any)
{
    STACKLESS_GETARG();
    if (decl == NULL || decl->sfunc == NULL) {
        PyErr_BadInternalCall();
        return NULL;
    }
    PyThreadState *tstate = _PyThreadState_GET();
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    if (arg == NULL) {
        arg = Py_None;
    }
    if (stackless && ts->stackless != NULL && ts->stackless->soft_enter == NULL
        && slp_softcall_active(tstate))
    {
        /* The shim runs it, in the eval loop. */
        softcall_object *sc = softcall_new(decl);
        if (sc == NULL) {
            return NULL;
        }
        if (decl->module_name == NULL) {
            decl->module_name = "?";
        }
        sc->ob1 = Py_XNewRef(ob1);
        sc->ob2 = Py_XNewRef(ob2);
        sc->ob3 = Py_XNewRef(ob3);
        sc->n = n;
        sc->any = any;
        int r = slp_softfunc_push(ts->stackless, (PyObject *)sc, arg);
        if (r > 0) {
            Py_DECREF(sc);
            marker_drop(tstate);
            return UNWIND_TOKEN;
        }
        sc->any = NULL;
        Py_DECREF(sc);
    }
    /* Called from C, the function switches hard: it runs once, from step
     * 0, and its switches return to it. */
    long step = 0;
    Py_XINCREF(ob1);
    Py_XINCREF(ob2);
    Py_XINCREF(ob3);
    Py_INCREF(arg);
    PyObject *res;
    HARD_BEGIN(tstate)
    ts->stackless_try = 0;
    res = decl->sfunc(arg, &step, &ob1, &ob2, &ob3, &n, &any);
    ts->stackless_try = 0;
    HARD_END
    Py_DECREF(arg);
    Py_XDECREF(ob1);
    Py_XDECREF(ob2);
    Py_XDECREF(ob3);
    if (res == UNWIND_TOKEN) {
        PyErr_SetString(PyExc_SystemError, "a soft-switchable function "
                        "unwound without the stackless protocol");
        return NULL;
    }
    return res;
}

/* --- a test hook: a frame run by a C-level entry of the eval loop --------
 *
 * _teststackless.test_PyEval_EvalFrameEx(): Stackless 3.7 ran a frame made
 * by PyFrame_New() with PyEval_EvalFrameEx(); 3.13 runs only frames of
 * its data stack.  The frame of `code` is pushed there, its first
 * `nvalues` locals set (NULL: unbound), and run by _PyEval_EvalFrame(),
 * as a generator's is; with `exc`, that is raised in it first (as is the
 * UnboundLocalError of an argument left unbound). */

/* Does the code read local `index` without checking that it is bound
 * (LOAD_FAST and its superinstructions)?  -1 with an exception. */
static int
reads_unchecked(PyCodeObject *code, int index)
{
    PyObject *bytes = PyCode_GetCode(code);     /* not specialized */
    if (bytes == NULL) {
        return -1;
    }
    const _Py_CODEUNIT *instr = (const _Py_CODEUNIT *)PyBytes_AS_STRING(bytes);
    Py_ssize_t n = PyBytes_GET_SIZE(bytes) / (Py_ssize_t)sizeof(_Py_CODEUNIT);
    int found = 0, ext = 0;
    for (Py_ssize_t i = 0; i < n && !found; i++) {
        int op = instr[i].op.code;
        int arg = instr[i].op.arg | ext;
        ext = op == EXTENDED_ARG ? arg << 8 : 0;
        switch (op) {
        case LOAD_FAST:
            found = arg == index;
            break;
        case LOAD_FAST_LOAD_FAST:
            found = (arg >> 4) == index || (arg & 15) == index;
            break;
        case STORE_FAST_LOAD_FAST:
            found = (arg & 15) == index;
            break;
        }
        i += _PyOpcode_Caches[op];
    }
    Py_DECREF(bytes);
    return found;
}

PyAPI_FUNC(PyObject *)
_PyStackless_EvalCodeFrame(PyCodeObject *code, PyObject *globals,
                           PyObject *const *values, Py_ssize_t nvalues,
                           PyObject *exc)
{
    PyThreadState *tstate = _PyThreadState_GET();
    if (!PyCode_Check(code) || !PyDict_Check(globals) || nvalues < 0
        || nvalues > code->co_nlocalsplus || code->co_nfreevars != 0)
    {
        PyErr_BadInternalCall();
        return NULL;
    }
    PyObject *builtins = _PyEval_BuiltinsFromGlobals(tstate, globals);
    if (builtins == NULL) {
        return NULL;
    }
    PyFrameConstructor desc = {
        .fc_globals = globals,
        .fc_builtins = builtins,
        .fc_name = code->co_name,
        .fc_qualname = code->co_qualname,
        .fc_code = (PyObject *)code,
    };
    PyFunctionObject *func = _PyFunction_FromConstructor(&desc);
    if (func == NULL) {
        return NULL;
    }
    _PyInterpreterFrame *frame = _PyThreadState_PushFrame(
        tstate, code->co_framesize);
    if (frame == NULL) {
        Py_DECREF(func);
        return PyErr_NoMemory();
    }
    PyObject *locals = (code->co_flags & CO_OPTIMIZED)
                       ? NULL : Py_NewRef(globals);
    /* Steals func and locals. */
    _PyFrame_Initialize(frame, func, locals, code, 0);
    for (Py_ssize_t i = 0; i < nvalues; i++) {
        frame->localsplus[i] = Py_XNewRef(values[i]);
    }
    if (exc != NULL) {
        _PyErr_SetRaisedException(tstate, Py_NewRef(exc));
    }
    else {
        /* The code of 3.13 reads an argument without a check: one left
         * unbound that it reads raises at once, in the frame. */
        int nargs = code->co_argcount + code->co_kwonlyargcount
                    + ((code->co_flags & CO_VARARGS) != 0)
                    + ((code->co_flags & CO_VARKEYWORDS) != 0);
        for (int i = 0; i < nargs; i++) {
            int r = frame->localsplus[i] == NULL ? reads_unchecked(code, i)
                                                 : 0;
            if (r < 0) {
                break;
            }
            if (r > 0) {
                PyErr_Format(PyExc_UnboundLocalError,
                             "cannot access local variable '%U' where it "
                             "is not associated with a value",
                             PyTuple_GET_ITEM(code->co_localsplusnames, i));
                break;
            }
        }
    }
    return _PyEval_EvalFrame(tstate, frame, _PyErr_Occurred(tstate) != NULL);
}

/* --- posting to a channel from other threads ---------------------------- */

typedef struct slp_post {
    struct slp_post *next;
    PyObject *ch;
    PyObject *value;
} slp_post;

static struct {
    PyMutex lock;
    slp_post *head, *tail;
    int scheduled;          /* a pending call is on its way */
    /* The wakeup fd of the main thread (set_thread_wakeup_fd()), or -1:
     * its hub may wait in epoll, where the pending call does not reach
     * it; a byte wakes it.  Read without the GIL. */
    int main_wakeup_fd;
} posts = {.main_wakeup_fd = -1};

void
slp_set_posts_wakeup_fd(int fd)
{
    _Py_atomic_store_int_relaxed(&posts.main_wakeup_fd, fd);
}

/* The function of the tasklet that sends a posted value: self is
 * (channel, value).  A failure (a closed channel, say) is reported as
 * unraisable: no code of the main thread is to see it.  A kill ends the
 * tasklet quietly. */
static PyObject *
post_send(PyObject *self, PyObject *unused)
{
    PyObject *ch = PyTuple_GET_ITEM(self, 0);
    PyObject *value = PyTuple_GET_ITEM(self, 1);
    if (PyChannel_Send((PyChannelObject *)ch, value) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TaskletExit)) {
            return NULL;        /* killed: it ends as any tasklet would */
        }
        PyErr_FormatUnraisable("Exception sending %R posted to %R", value,
                               ch);
    }
    Py_RETURN_NONE;
}

static PyMethodDef post_send_def = {
    "post_send", post_send, METH_NOARGS, NULL
};

int
slp_posts_pending(void)
{
    return _Py_atomic_load_ptr_relaxed(&posts.head) != NULL;
}

/* In the main thread, with the GIL: a new tasklet sends each value, in
 * the order of the posts.  Called as a pending call, or by the main
 * thread waiting in the scheduler (runqueue.c). */
static int
deliver_posts(void *unused)
{
    PyMutex_Lock(&posts.lock);
    slp_post *p = posts.head;
    _Py_atomic_store_ptr_relaxed(&posts.head, NULL);
    posts.tail = NULL;
    posts.scheduled = 0;
    PyMutex_Unlock(&posts.lock);
    while (p != NULL) {
        slp_post *next = p->next;
        PyObject *pair = PyTuple_Pack(2, p->ch, p->value);
        PyObject *send = pair != NULL ? PyCFunction_New(&post_send_def, pair)
                                      : NULL;
        PyTaskletObject *t = send != NULL ? PyTasklet_New(NULL, send) : NULL;
        if (t == NULL || PyTasklet_Setup(t, NULL, NULL) < 0) {
            PyErr_FormatUnraisable("Exception posting %R to %R", p->value,
                                   p->ch);
        }
        Py_XDECREF(t);
        Py_XDECREF(send);
        Py_XDECREF(pair);
        Py_DECREF(p->ch);
        Py_DECREF(p->value);
        PyMem_RawFree(p);
        p = next;
    }
    return 0;
}

int
PyStackless_PostToChannel(PyChannelObject *ch, PyObject *value)
{
    slp_post *p = PyMem_RawMalloc(sizeof(slp_post));
    if (p == NULL) {
        return -1;
    }
    p->next = NULL;
    p->ch = (PyObject *)ch;
    p->value = value;
    PyMutex_Lock(&posts.lock);
    if (posts.tail != NULL) {
        posts.tail->next = p;
    }
    else {
        _Py_atomic_store_ptr_relaxed(&posts.head, p);
    }
    posts.tail = p;
    int schedule = !posts.scheduled;
    posts.scheduled = 1;
    PyMutex_Unlock(&posts.lock);
    if (schedule && Py_AddPendingCall(deliver_posts, NULL) < 0) {
        /* The queue of pending calls is full: the next post tries
         * again. */
        PyMutex_Lock(&posts.lock);
        posts.scheduled = 0;
        PyMutex_Unlock(&posts.lock);
    }
    int fd = _Py_atomic_load_int_relaxed(&posts.main_wakeup_fd);
    if (fd >= 0) {
        int saved_errno = errno;
        (void)_Py_write_noraise(fd, "", 1);
        errno = saved_errno;
    }
    return 0;
}

int
slp_capi_init(void)
{
    if (PyType_Ready(&unwind_type) < 0
        || PyType_Ready(&slp_softcall_type) < 0
        || PyType_Ready(&PyStacklessFunctionDeclaration_Type) < 0)
    {
        return -1;
    }
    return 0;
}

void
slp_capi_fini(void)
{
    slp_type_unready(&unwind_type);
    slp_type_unready(&slp_softcall_type);
    Py_CLEAR(softcall_funcs[0]);
    Py_CLEAR(softcall_funcs[1]);
    Py_CLEAR(declarations);
}

void
slp_deliver_posts(void)
{
    (void)deliver_posts(NULL);
}
