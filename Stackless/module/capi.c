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
#include "pycore_ceval.h"         // _PyEval_AddPendingCall()
#include "pycore_object.h"        // _PyObject_HEAD_INIT()
#include "pycore_pystate.h"       // _PyThreadState_GET()

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
PyTasklet_Run(PyTaskletObject *t)
{
    return done(call_base_va(&PyTasklet_Type, T(t), "run", NULL));
}

int
PyTasklet_Run_nr(PyTaskletObject *t)
{
    return PyTasklet_Run(t);
}

int
PyTasklet_Switch(PyTaskletObject *t)
{
    return done(call_base_va(&PyTasklet_Type, T(t), "switch", NULL));
}

int
PyTasklet_Switch_nr(PyTaskletObject *t)
{
    return PyTasklet_Switch(t);
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
PyChannel_Send(PyChannelObject *ch, PyObject *value)
{
    if (value == NULL) {
        PyErr_BadInternalCall();
        return -1;
    }
    return done(call_base_va(&PyChannel_Type, CH(ch), "send", value, NULL));
}

int
PyChannel_Send_nr(PyChannelObject *ch, PyObject *value)
{
    return PyChannel_Send(ch, value);
}

PyObject *
PyChannel_Receive(PyChannelObject *ch)
{
    return call_base_va(&PyChannel_Type, CH(ch), "receive", NULL);
}

PyObject *
PyChannel_Receive_nr(PyChannelObject *ch)
{
    return PyChannel_Receive(ch);
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

PyObject *
PyStackless_Schedule(PyObject *retval, int remove)
{
    return slp_schedule(retval, remove);
}

PyObject *
PyStackless_Schedule_nr(PyObject *retval, int remove)
{
    /* Under the stackless protocol it may switch softly; the caller's
     * permission is taken either way. */
    _PyStackless_TRY_STACKLESS = 0;
    return slp_schedule(retval, remove);
}

int
PyStackless_GetRunCount(void)
{
    return (int)slp_get_runcount();
}

PyObject *
PyStackless_GetCurrent(void)
{
    slp_thread *th = slp_thread_of(_PyThreadState_GET());
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

/* --- the stackless protocol and soft-switchable C functions -------------- */

static _Thread_local int try_stackless;

int *
_PyStackless__TryStacklessPtr(void)
{
    return &try_stackless;
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

int
PyStackless_InitFunctionDeclaration(
    PyStacklessFunctionDeclarationObject *decl, PyObject *module,
    PyModuleDef *def)
{
    if (decl == NULL || decl->sfunc == NULL) {
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
    return 0;
}

PyObject *
PyStackless_CallFunction(PyStacklessFunctionDeclarationObject *decl,
                         PyObject *arg, PyObject *ob1, PyObject *ob2,
                         PyObject *ob3, long n, void *any)
{
    if (decl == NULL || decl->sfunc == NULL) {
        PyErr_BadInternalCall();
        return NULL;
    }
    /* Called from C, the function switches hard: it runs once, from step
     * 0, and its switches return to it. */
    _PyStackless_TRY_STACKLESS = 0;
    long step = 0;
    Py_XINCREF(ob1);
    Py_XINCREF(ob2);
    Py_XINCREF(ob3);
    PyObject *retval = Py_XNewRef(arg != NULL ? arg : Py_None);
    PyObject *res = decl->sfunc(retval, &step, &ob1, &ob2, &ob3, &n, &any);
    Py_XDECREF(retval);
    Py_XDECREF(ob1);
    Py_XDECREF(ob2);
    Py_XDECREF(ob3);
    if (STACKLESS_UNWINDING(res)) {
        PyErr_SetString(PyExc_SystemError, "a soft-switchable function "
                        "unwound without the stackless protocol");
        return NULL;
    }
    return res;
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
} posts;

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
    return 0;
}

int
slp_capi_init(void)
{
    if (PyType_Ready(&unwind_type) < 0
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
}

void
slp_deliver_posts(void)
{
    (void)deliver_posts(NULL);
}
