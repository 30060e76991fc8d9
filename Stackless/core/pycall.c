/* Python calls that 3.13 makes through C, run in the eval loop.
 *
 * The eval loop of 3.13 inlines a call (pushes the callee's frame and goes
 * on with it) only where the callable is a Python function, or a bound
 * method of one called by CALL or CALL_KW.  Every other shape goes through
 * C, even where a Python function is all that runs: a bound method called
 * with *args or **kwargs (CALL_FUNCTION_EX), an instance whose class has a
 * Python __call__, a class whose __init__ is written in Python (until
 * CALL specializes for it, and for good if the __init__ takes *args),
 * functools.partial of a Python function, a generator resumed by a
 * FOR_ITER that has not specialized yet, or by its __next__() called as a
 * method.  A tasklet that blocks below such a call holds C state: it
 * switches hard, cannot be pickled, and its recursion is bounded by the C
 * stack.
 *
 * In a thread that uses tasklets, the generic call paths of the eval loop
 * (CALL, CALL_KW, CALL_NON_PY_GENERAL, CALL_FUNCTION_EX, FOR_ITER) call
 * _PyStackless_PyCall(), _PyStackless_CallEx() or _PyStackless_IterNext()
 * instead.  These resolve the callable, through any chain of bound
 * methods, partials and __call__, to the Python function that would run
 * in the end, push its frame with the arguments it would get, and ask the
 * eval loop to go on with it (SLP_PENDING_ENTER, shims.c): the calling
 * frame waits for it as for any Python call.  A class call pushes the
 * frame of __init__ over the shim CPython pushes for its specialized
 * class call (_Py_InitCleanup), which checks that __init__ returned None
 * and returns the object.
 *
 * Nothing observable differs from the call through C: the same objects
 * get the same arguments, the same errors are raised with the same
 * messages (the binding of arguments to parameters is the one the call
 * through C makes, _PyEvalFramePushAndInit()), tracebacks show the same
 * Python frames.  Only C recursion is saved.  Where monitoring watches
 * the CALL (sys.monitoring's CALL or C_RETURN events, sys.setprofile),
 * the call goes through C as upstream, since those tools expect C events
 * for a callable that is not a function.  So does every shape not listed
 * here; the README lists the calls from C slots (special methods called
 * by operators, properties, key functions of builtins) that stay hard.
 * In threads that never used tasklets, nothing but one field of the
 * thread state is read.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_call.h"          // _PyStack_UnpackDict()
#include "pycore_code.h"          // _Py_InitCleanup
#include "pycore_descrobject.h"   // PyMemberDescrObject
#include "pycore_frame.h"         // _PyFrame_PushTrampolineUnchecked()
#include "pycore_object.h"        // _PyType_HasFeature()
#include "pycore_typeobject.h"    // _PyType_Lookup()
#include "structmember.h"         // Py_T_OBJECT

/* Python/specialize.c: the shim under __init__ (EXIT_INIT_CHECK). */
extern const struct _PyCode_DEF(8) _Py_InitCleanup;

/* A chain of callables resolves in at most this many steps: a bound
 * method of a partial of a bound method... */
#define MAX_STEPS 6
/* Arguments that fit here need no memory of their own. */
#define SMALL_ARGS 12

/* --- functools.partial ------------------------------------------------- */

/* partial objects are private to Modules/_functoolsmodule.c: the members
 * "func", "args" and "keywords" of the type give their offsets, and its
 * tp_call identifies it (and its subclasses that do not override
 * __call__).  Read once; the same for every interpreter. */
static ternaryfunc partial_call;
static Py_ssize_t partial_fn_offset = -1;
static Py_ssize_t partial_args_offset = -1;
static Py_ssize_t partial_kw_offset = -1;

static Py_ssize_t
member_offset(PyTypeObject *type, const char *name)
{
    PyObject *d = PyDict_GetItemString(type->tp_dict, name);
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    return m->type == _Py_T_OBJECT ? m->offset : -1;
}

int
slp_pycall_init(void)
{
    if (partial_call != NULL) {
        return 0;
    }
    PyObject *mod = PyImport_ImportModule("_functools");
    if (mod == NULL) {
        return -1;
    }
    PyObject *type = PyObject_GetAttrString(mod, "partial");
    Py_DECREF(mod);
    if (type == NULL) {
        return -1;
    }
    if (PyType_Check(type)) {
        PyTypeObject *tp = (PyTypeObject *)type;
        Py_ssize_t fn = member_offset(tp, "func");
        Py_ssize_t args = member_offset(tp, "args");
        Py_ssize_t kw = member_offset(tp, "keywords");
        if (fn > 0 && args > 0 && kw > 0 && tp->tp_call != NULL) {
            partial_fn_offset = fn;
            partial_args_offset = args;
            partial_kw_offset = kw;
            partial_call = tp->tp_call;
        }
    }
    /* Else partials are called through C: nothing else changes. */
    Py_DECREF(type);
    return 0;
}

#define PARTIAL_FIELD(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* --- resolving the callable --------------------------------------------- */

enum target_kind {
    TARGET_NONE,        /* through C */
    TARGET_FUNCTION,    /* a Python function */
    TARGET_CLASS,       /* object.__new__ and a Python __init__ */
};

/* What a call of a chain of callables comes to: `func` called with, in
 * order, the objects of the prepended groups (the last one found first),
 * the positional arguments of the call, and the keywords of the
 * partials (the last one found weakest) under those of the call. */
typedef struct {
    enum target_kind kind;
    PyFunctionObject *func;         /* borrowed: held by the chain */
    PyTypeObject *cls;              /* TARGET_CLASS */
    int ngroups;
    PyObject *const *group[MAX_STEPS];
    Py_ssize_t group_size[MAX_STEPS];
    Py_ssize_t nprepended;
    int nkw;
    PyObject *kw[MAX_STEPS];        /* non-empty keyword dicts of partials */
    PyObject *selves[MAX_STEPS];    /* instances called by __call__ */
} resolution;

static inline int
is_plain_function(PyObject *op)
{
    return Py_IS_TYPE(op, &PyFunction_Type)
           && ((PyFunctionObject *)op)->vectorcall == _PyFunction_Vectorcall;
}

static void
prepend(resolution *r, PyObject *const *items, Py_ssize_t n)
{
    r->group[r->ngroups] = items;
    r->group_size[r->ngroups] = n;
    r->ngroups++;
    r->nprepended += n;
}

/* The __init__ that a call of the class `tp` runs after object.__new__,
 * if that is all that type.__call__ does; else NULL.  (object.__new__
 * ignores the arguments when __init__ is overridden, and checks only
 * that the class is not abstract.) */
static PyFunctionObject *
class_init(PyTypeObject *tp)
{
    if (Py_TYPE(tp)->tp_call != PyType_Type.tp_call
        || !_PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE)
        || tp->tp_new != PyBaseObject_Type.tp_new)
    {
        return NULL;
    }
    PyObject *init = _PyType_Lookup(tp, &_Py_ID(__init__));
    if (init == NULL || !is_plain_function(init)) {
        return NULL;
    }
    return (PyFunctionObject *)init;
}

/* A Python __call__ of the class of `obj`: slot_tp_call() calls it with
 * obj as its first argument. */
static PyFunctionObject *
python_dunder_call(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_call == NULL || !_PyType_HasFeature(tp, Py_TPFLAGS_HEAPTYPE)) {
        return NULL;
    }
    PyObject *call = _PyType_Lookup(tp, &_Py_ID(__call__));
    if (call == NULL || !is_plain_function(call)) {
        return NULL;
    }
    return (PyFunctionObject *)call;
}

/* Follow the chain from `callable` to a Python function or class; *r
 * says where it ends (TARGET_NONE: somewhere else). */
static void
resolve(PyObject *callable, resolution *r)
{
    r->kind = TARGET_NONE;
    r->ngroups = 0;
    r->nprepended = 0;
    r->nkw = 0;
    PyObject *obj = callable;
    for (int step = 0; step < MAX_STEPS; step++) {
        PyTypeObject *tp = Py_TYPE(obj);
        if (is_plain_function(obj)) {
            r->kind = TARGET_FUNCTION;
            r->func = (PyFunctionObject *)obj;
            return;
        }
        if (tp == &PyMethod_Type) {
            prepend(r, &((PyMethodObject *)obj)->im_self, 1);
            obj = ((PyMethodObject *)obj)->im_func;
            continue;
        }
        if (tp->tp_call == partial_call && partial_call != NULL) {
            PyObject *args = PARTIAL_FIELD(obj, partial_args_offset);
            PyObject *kw = PARTIAL_FIELD(obj, partial_kw_offset);
            PyObject *fn = PARTIAL_FIELD(obj, partial_fn_offset);
            if (fn == NULL || args == NULL || !PyTuple_CheckExact(args)
                || (kw != NULL && !PyDict_CheckExact(kw)))
            {
                return;
            }
            if (PyTuple_GET_SIZE(args) > 0) {
                prepend(r, _PyTuple_ITEMS(args), PyTuple_GET_SIZE(args));
            }
            if (kw != NULL && PyDict_GET_SIZE(kw) > 0) {
                r->kw[r->nkw++] = kw;
            }
            obj = fn;
            continue;
        }
        if (PyType_Check(obj)) {
            PyFunctionObject *init = class_init((PyTypeObject *)obj);
            if (init != NULL) {
                r->kind = TARGET_CLASS;
                r->cls = (PyTypeObject *)obj;
                r->func = init;
                return;
            }
            /* A metaclass may have a Python __call__. */
        }
        PyFunctionObject *call = python_dunder_call(obj);
        if (call == NULL) {
            return;
        }
        r->selves[step] = obj;
        prepend(r, &r->selves[step], 1);
        obj = (PyObject *)call;
    }
}

/* --- the arguments -------------------------------------------------------- */

/* The arguments of the resolved call, as _PyEvalFramePushAndInit() takes
 * them: `npos` positional ones, then the values of `kwnames`; new
 * references.  v[-1] is free, for the object of a class call. */
typedef struct {
    PyObject **v;
    Py_ssize_t npos;
    Py_ssize_t nkw;
    PyObject *kwnames;          /* new reference, or NULL */
    PyObject **heap;            /* or NULL: v is in small */
    PyObject *small[SMALL_ARGS];
} call_args;

static void
args_release(call_args *a, Py_ssize_t from)
{
    for (Py_ssize_t i = from; i < a->npos + a->nkw; i++) {
        Py_DECREF(a->v[i]);
    }
    Py_CLEAR(a->kwnames);
    PyMem_Free(a->heap);
    a->heap = NULL;
}

/* The keywords of the call, over those of the partials: a dict. */
static PyObject *
merged_keywords(resolution *r, PyObject *const *kwvalues, PyObject *kwnames,
                PyObject *kwargs)
{
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (int i = r->nkw - 1; i >= 0; i--) {
        if (PyDict_Update(d, r->kw[i]) < 0) {
            goto error;
        }
    }
    if (kwargs != NULL && PyDict_Update(d, kwargs) < 0) {
        goto error;
    }
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(d, PyTuple_GET_ITEM(kwnames, i),
                               kwvalues[i]) < 0)
            {
                goto error;
            }
        }
    }
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

/* Lay out the arguments: the prepended groups, `args` (nargs positional
 * ones, then the values of kwnames), and the keywords of kwargs (a dict,
 * or NULL).  -1 with an exception if out of memory. */
static int
args_build(call_args *a, resolution *r, PyObject *const *args,
           Py_ssize_t nargs, PyObject *kwnames, PyObject *kwargs)
{
    PyObject *merged = NULL;
    a->heap = NULL;
    a->kwnames = NULL;
    a->npos = r->nprepended + nargs;
    a->nkw = 0;
    if (r->nkw > 0) {
        merged = merged_keywords(r, args + nargs, kwnames, kwargs);
        if (merged == NULL) {
            return -1;
        }
        a->nkw = PyDict_GET_SIZE(merged);
    }
    else if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        /* The keywords of a call with **kwargs, as they are. */
        merged = Py_NewRef(kwargs);
        a->nkw = PyDict_GET_SIZE(merged);
    }
    else if (kwnames != NULL) {
        a->nkw = PyTuple_GET_SIZE(kwnames);
    }
    Py_ssize_t n = 1 + a->npos + a->nkw;
    PyObject **base = a->small;
    if (n > SMALL_ARGS) {
        base = a->heap = PyMem_New(PyObject *, n);
        if (base == NULL) {
            Py_XDECREF(merged);
            PyErr_NoMemory();
            return -1;
        }
    }
    a->v = base + 1;
    PyObject **out = a->v;
    for (int g = r->ngroups - 1; g >= 0; g--) {
        for (Py_ssize_t i = 0; i < r->group_size[g]; i++) {
            *out++ = Py_NewRef(r->group[g][i]);
        }
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        *out++ = Py_NewRef(args[i]);
    }
    if (merged != NULL) {
        if (a->nkw > 0) {
            a->kwnames = PyTuple_New(a->nkw);
            if (a->kwnames == NULL) {
                a->nkw = 0;
                Py_DECREF(merged);
                args_release(a, 0);
                return -1;
            }
            Py_ssize_t pos = 0, i = 0;
            PyObject *key, *value;
            while (PyDict_Next(merged, &pos, &key, &value)) {
                PyTuple_SET_ITEM(a->kwnames, i, Py_NewRef(key));
                *out++ = Py_NewRef(value);
                i++;
            }
        }
        Py_DECREF(merged);
    }
    else if (kwnames != NULL) {
        a->kwnames = Py_NewRef(kwnames);
        for (Py_ssize_t i = 0; i < a->nkw; i++) {
            *out++ = Py_NewRef(args[nargs + i]);
        }
    }
    return 0;
}

/* --- pushing the frames ---------------------------------------------------- */

/* The frame of func with the arguments of `a`, whose references it
 * takes; NULL with an exception if they do not fit its parameters. */
static _PyInterpreterFrame *
push_function(PyThreadState *tstate, PyFunctionObject *func, call_args *a)
{
    PyCodeObject *co = (PyCodeObject *)func->func_code;
    PyObject *locals = co->co_flags & CO_OPTIMIZED
                       ? NULL : Py_NewRef(func->func_globals);
    _PyInterpreterFrame *f = _PyEvalFramePushAndInit(
        tstate, (PyFunctionObject *)Py_NewRef((PyObject *)func), locals,
        a->v, a->npos, a->kwnames);
    /* The references of the arguments are the frame's now. */
    a->npos = a->nkw = 0;
    args_release(a, 0);
    return f;
}

/* What a class call does, with object.__new__ and a Python __init__:
 * the object, and __init__'s frame over the shim that returns it.
 * Returns the shim (*top: __init__'s frame), or NULL with an exception
 * (object.__new__ refuses an abstract class; the arguments may not fit
 * __init__), as type.__call__ would raise it. */
static _PyInterpreterFrame *
push_class_call(PyThreadState *tstate, PyTypeObject *cls,
                PyFunctionObject *init, call_args *a,
                _PyInterpreterFrame **top)
{
    PyCodeObject *shim_code = (PyCodeObject *)&_Py_InitCleanup;
    PyCodeObject *co = (PyCodeObject *)init->func_code;
    if (!_PyStackless_HasStackSpace(tstate, shim_code->co_framesize
                                            + co->co_framesize))
    {
        args_release(a, 0);
        PyErr_NoMemory();
        return NULL;
    }
    /* __init__ is the class's (borrowed): keep it while the object is
     * made. */
    Py_INCREF(init);
    PyObject *empty = PyTuple_New(0);
    PyObject *self = empty != NULL
        ? PyBaseObject_Type.tp_new(cls, empty, NULL) : NULL;
    Py_XDECREF(empty);
    if (self == NULL) {
        Py_DECREF(init);
        args_release(a, 0);
        return NULL;
    }
    _PyInterpreterFrame *shim = _PyFrame_PushTrampolineUnchecked(
        tstate, shim_code, 1);
    shim->localsplus[0] = Py_NewRef(self);
    shim->previous = NULL;
    a->v--;
    a->v[0] = self;
    a->npos++;
    _PyInterpreterFrame *f = push_function(tstate, init, a);
    Py_DECREF(init);
    if (f == NULL) {
        Py_DECREF(shim->localsplus[0]);
        Py_DECREF(shim->f_executable);
        _PyThreadState_PopFrame(tstate, shim);
        return NULL;
    }
    f->previous = shim;
    *top = f;
    return shim;
}

/* Can the running code push frames for the eval loop to go on with? */
static inline int
can_push(PyThreadState *tstate, slp_thread *th)
{
    return th->switch_trap == 0 && th->current != NULL
           && slp_soft_enabled(th, tstate->interp)
           && tstate->py_recursion_remaining > 2
           && !slp_call_monitored(tstate);
}

/* Push the frames of the resolved call.  Returns 1 if done (the eval
 * loop goes on with them), -1 with an exception if the call failed as
 * it would have through C. */
static int
enter_resolved(PyThreadState *tstate, slp_thread *th, resolution *r,
               PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
               PyObject *kwargs)
{
    call_args a;
    if (args_build(&a, r, args, nargs, kwnames, kwargs) < 0) {
        return -1;
    }
    if (r->kind == TARGET_CLASS) {
        _PyInterpreterFrame *top;
        _PyInterpreterFrame *shim = push_class_call(tstate, r->cls, r->func,
                                                    &a, &top);
        if (shim == NULL) {
            return -1;
        }
        tstate->py_recursion_remaining -= 2;    /* as start_frame does */
        slp_enter_request(th, top, shim, NULL, 0);
        return 1;
    }
    _PyInterpreterFrame *f = push_function(tstate, r->func, &a);
    if (f == NULL) {
        return -1;
    }
    tstate->py_recursion_remaining--;           /* as start_frame does */
    slp_enter_request(th, f, f, NULL, 0);
    return 1;
}

/* --- the hooks ------------------------------------------------------------- */

/* __next__ of a generator, called as a method: a wrapper descriptor of
 * gen_iternext called with the generator. */
static inline int
is_gen_next(PyObject *callable, PyObject *const *args, size_t nargsf,
            PyObject *kwnames)
{
    return Py_IS_TYPE(callable, &PyWrapperDescr_Type)
           && ((PyWrapperDescrObject *)callable)->d_wrapped
              == (void *)PyGen_Type.tp_iternext
           && PyVectorcall_NARGS(nargsf) == 1 && kwnames == NULL
           && Py_IS_TYPE(args[0], &PyGen_Type);
}

PyObject *
_PyStackless_PyCall(PyThreadState *tstate, PyObject *callable,
                    PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    /* Most callables here are C callables that resolve to nothing at the
     * first step: the type tests come before what can_push() reads. */
    slp_thread *th = ((_PyThreadStateImpl *)tstate)->stackless;
    if (is_gen_next(callable, args, nargsf, kwnames)) {
        if (can_push(tstate, th)
            && slp_gen_enter(tstate, th, (PyGenObject *)args[0]) != 0)
        {
            return NULL;
        }
    }
    else {
        resolution r;
        resolve(callable, &r);
        if (r.kind != TARGET_NONE && can_push(tstate, th)) {
            enter_resolved(tstate, th, &r, args, PyVectorcall_NARGS(nargsf),
                           kwnames, NULL);
            /* Entered, or failed as through C. */
            return NULL;
        }
    }
    return PyObject_Vectorcall(callable, args, nargsf, kwnames);
}

PyObject *
_PyStackless_CallEx(PyThreadState *tstate, PyObject *func, PyObject *callargs,
                    PyObject *kwargs)
{
    slp_thread *th = ((_PyThreadStateImpl *)tstate)->stackless;
    assert(PyTuple_CheckExact(callargs));
    assert(kwargs == NULL || PyDict_CheckExact(kwargs));
    if (th != NULL && can_push(tstate, th)) {
        PyObject *const *items = _PyTuple_ITEMS(callargs);
        Py_ssize_t n = PyTuple_GET_SIZE(callargs);
        int nokw = kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0;
        if (_PyStackless_IsSwitching(func)) {
            if (nokw) {
                return _PyStackless_BuiltinCall(tstate, func, items, n,
                                                NULL);
            }
            /* Keywords as CALL_KW passes them. */
            PyObject *kwnames;
            PyObject *const *stack = _PyStack_UnpackDict(tstate, items, n,
                                                         kwargs, &kwnames);
            if (stack == NULL) {
                return NULL;
            }
            PyObject *res = _PyStackless_BuiltinCall(
                tstate, func, stack, n | PY_VECTORCALL_ARGUMENTS_OFFSET,
                kwnames);
            _PyStack_UnpackDict_Free(stack, n, kwnames);
            return res;
        }
        resolution r;
        resolve(func, &r);
        if (r.kind != TARGET_NONE) {
            enter_resolved(tstate, th, &r, items, n, NULL,
                           nokw ? NULL : kwargs);
            return NULL;
        }
        if (nokw && is_gen_next(func, items, n, NULL)) {
            if (slp_gen_enter(tstate, th, (PyGenObject *)items[0]) != 0) {
                return NULL;
            }
        }
    }
    return PyObject_Call(func, callargs, kwargs);
}

/* --- tasklets started with such a callable ------------------------------ */

PyFunctionObject *
slp_resolved_function(PyObject *callable)
{
    resolution r;
    resolve(callable, &r);
    return r.kind == TARGET_FUNCTION ? r.func : NULL;
}

_PyInterpreterFrame *
slp_push_resolved_call(PyThreadState *tstate, PyObject *callable,
                       PyObject *args, PyObject *kwargs)
{
    resolution r;
    call_args a;
    resolve(callable, &r);
    assert(r.kind == TARGET_FUNCTION);
    if (args_build(&a, &r, _PyTuple_ITEMS(args), PyTuple_GET_SIZE(args),
                   NULL, kwargs) < 0)
    {
        return NULL;
    }
    return push_function(tstate, r.func, &a);
}
