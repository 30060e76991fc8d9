/* The builtins that switch tasklets, and the frame data stack's chunks.
 *
 * Soft switching needs to know that a switching builtin was called by the
 * eval loop itself, with no C code in between that would expect it to
 * return: only then can it leave the frame to the eval loop instead of
 * returning to its caller.  These builtins (channel.send, receive,
 * schedule, tasklet.run, ...) are therefore objects of a type of their own,
 * stackless_function, which is neither a builtin function nor a method
 * descriptor.  CALL specializes its calls of such a callable to
 * CALL_STACKLESS, which calls the object's entry (pycore_stackless.h):
 * slp_call_entry(), or for the unbound send and receive of channels a
 * quick way for the common cases, which passes the others on to it
 * (channel.c).  The generic call paths of the eval loop call
 * _PyStackless_SoftCall(), as slp_call_entry() does: it records the
 * calling frame in the thread state for the duration of the call.  The
 * type's own vectorcall, which every other caller uses, records none.
 * The scheduler (slp_switch_to_soft) switches softly only when that
 * record is the frame running now.
 *
 * A stackless_function is one of:
 *   - a module function: `self` is the module;
 *   - a method descriptor in a type's dict: `self` is NULL and `type` is
 *     set; the first argument is the object, and __get__ binds;
 *   - a bound method: `self` is the object, `type` is set.
 * It calls its PyMethodDef like a builtin of the same flags would.
 */

#include "stackless_impl.h"
#include "pycore_object.h"        // _PyType_GetDocFromInternalDoc()
#include "pycore_pyerrors.h"      // _PyErr_SetRaisedException()
#include "pycore_stackless.h"     // _PyStackless_Function_Type

typedef struct {
    PyObject_HEAD
    /* What CALL_STACKLESS calls (pycore_stackless.h): slp_call_entry or
     * the variant's own (slp_tstate_variant). */
    _PyStackless_CallEntry call;
    /* The entry that a method bound by __get__ gets, or NULL. */
    _PyStackless_CallEntry bound_call;
    PyMethodDef *ml;
    slp_tstate_func tfunc;      /* or NULL (see slp_tstate_variant) */
    PyObject *self;             /* NULL: an unbound method */
    PyTypeObject *type;         /* methods: the defining type */
    PyObject *module;           /* module functions: the module's name */
    vectorcallfunc vectorcall;
    /* The number of arguments of an unbound method with a tfunc (the
     * object, and the argument of METH_O): a call with this many
     * positional arguments, the first of `type`, calls tfunc at once.
     * -1 for all others. */
    Py_ssize_t tfunc_nargs;
} slp_function;

static_assert(offsetof(slp_function, call)
              == offsetof(_PyStackless_FunctionHead, call),
              "the head of slp_function");

/* The results of a builtin that switched softly, or (for CALL_STACKLESS)
 * made the switch at once: addresses, never objects seen by Python. */
char slp_soft_switched_token;
char _PyStackless_SwitchedToken;

/* What the eval loop finds raised when a soft switch is pending. */
static PyObject *soft_switch_marker;

/* ch.send(x), ch.receive(): call_method() would call f->tfunc. */
static inline int
takes_tfunc(slp_function *f, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    return nargs == f->tfunc_nargs && kwnames == NULL
           && Py_IS_TYPE(args[0], f->type);
}

static PyObject *
call_method(PyThreadState *tstate, slp_function *f, PyObject *const *args,
            size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (takes_tfunc(f, args, nargs, kwnames)) {
        /* What follows would do, in short. */
        return f->tfunc(tstate, args[0], nargs == 2 ? args[1] : NULL);
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *self = f->self;
    const char *name = f->ml->ml_name;

    if (self == NULL) {
        if (nargs < 1) {
            PyErr_Format(PyExc_TypeError,
                         "unbound method %s.%s() needs an argument",
                         f->type->tp_name, name);
            return NULL;
        }
        self = args[0];
        if (!PyObject_TypeCheck(self, f->type)) {
            PyErr_Format(PyExc_TypeError,
                         "descriptor '%s' for '%s' objects doesn't apply to "
                         "a '%s' object", name, f->type->tp_name,
                         Py_TYPE(self)->tp_name);
            return NULL;
        }
        args++;
        nargs--;
    }
    PyCFunction meth = f->ml->ml_meth;
    switch (f->ml->ml_flags & (METH_VARARGS | METH_FASTCALL | METH_NOARGS
                               | METH_O | METH_KEYWORDS))
    {
    case METH_NOARGS:
        if (nargs != 0 || nkw != 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes no arguments (%zd given)",
                         name, nargs + nkw);
            return NULL;
        }
        if (f->tfunc != NULL) {
            return f->tfunc(tstate, self, NULL);
        }
        return meth(self, NULL);
    case METH_O:
        if (nargs != 1 || nkw != 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes exactly one argument (%zd given)",
                         name, nargs + nkw);
            return NULL;
        }
        if (f->tfunc != NULL) {
            return f->tfunc(tstate, self, args[0]);
        }
        return meth(self, args[0]);
    case METH_FASTCALL:
        if (nkw != 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes no keyword arguments", name);
            return NULL;
        }
        return ((PyCFunctionFast)(void (*)(void))meth)(self, args, nargs);
    case METH_FASTCALL | METH_KEYWORDS:
        return ((PyCFunctionFastWithKeywords)(void (*)(void))meth)(
            self, args, nargs, kwnames);
    case METH_VARARGS | METH_KEYWORDS: {
        PyObject *tuple = _PyTuple_FromArray(args, nargs);
        if (tuple == NULL) {
            return NULL;
        }
        PyObject *kwargs = NULL;
        if (nkw != 0) {
            kwargs = _PyStack_AsDict(args + nargs, kwnames);
            if (kwargs == NULL) {
                Py_DECREF(tuple);
                return NULL;
            }
        }
        PyObject *res = ((PyCFunctionWithKeywords)(void (*)(void))meth)(
            self, tuple, kwargs);
        Py_DECREF(tuple);
        Py_XDECREF(kwargs);
        return res;
    }
    default:
        PyErr_Format(PyExc_SystemError, "%s(): bad call flags", name);
        return NULL;
    }
}

/* Called by a CALL of the running frame (one not specialized yet), whose
 * callable, self and arguments sit on the frame's value stack, and stay
 * there, intact, until the call returns? */
static int
called_by_frame(PyThreadState *tstate, PyObject *callable,
                PyObject *const *args)
{
    _PyInterpreterFrame *f = tstate->current_frame;
    if (f == NULL || f->owner == FRAME_OWNED_BY_CSTACK || args == NULL) {
        return 0;
    }
    PyCodeObject *co = _PyFrame_GetCode(f);
    PyObject **base = f->localsplus + co->co_nlocalsplus;
    PyObject **end = base + co->co_stacksize;
    if (args < (PyObject *const *)base + 1
        || args >= (PyObject *const *)end)
    {
        return 0;
    }
    return args[-1] == callable
           || (args[-1] == NULL && args - 2 >= (PyObject *const *)base
               && args[-2] == callable);
}

/* Every caller but the eval loop's CALL instructions. */
static PyObject *
function_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                    PyObject *kwnames)
{
    PyThreadState *tstate = _PyThreadState_GET();
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    _PyInterpreterFrame *outer = ts->stackless_softcall;
    ts->stackless_softcall = NULL;
    slp_thread *th = ts->stackless;
    _PyInterpreterFrame *outer_calling = NULL;
    if (th != NULL) {
        outer_calling = th->calling_frame;
        th->calling_frame = called_by_frame(tstate, callable, args)
                            ? tstate->current_frame : NULL;
    }
    PyObject *res = call_method(tstate, (slp_function *)callable, args,
                                nargsf, kwnames);
    if (th != NULL) {
        th->calling_frame = outer_calling;
    }
    ts->stackless_softcall = outer;
    assert(res != slp_soft_switched);
    return res;
}

PyObject *
_PyStackless_SoftCall(PyThreadState *tstate, PyObject *callable,
                      PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_function *f = (slp_function *)callable;
    _PyInterpreterFrame *outer = ts->stackless_softcall;
    ts->stackless_softcall = tstate->current_frame;
    PyObject *res;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (takes_tfunc(f, args, nargs, kwnames)) {
        /* The common case, without a call of call_method(). */
        res = f->tfunc(tstate, args[0], nargs == 2 ? args[1] : NULL);
    }
    else {
        res = call_method(tstate, f, args, nargsf, kwnames);
    }
    ts->stackless_softcall = outer;
    /* The CALL drops its inputs and goes to `error:`, which makes the
     * switch (_PyStackless_SoftSwitch). */
    return slp_soft_result(tstate, res, 0);
}

PyObject *
slp_call_entry(PyThreadState *tstate, PyObject *callable, PyObject **args,
               int nargs)
{
    PyObject *res = _PyStackless_SoftCall(
        tstate, callable, args, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(callable);
    for (int i = 0; i < nargs; i++) {
        Py_DECREF(args[i]);
    }
    return res;
}

PyObject *
slp_soft_result(PyThreadState *tstate, PyObject *res, int need_marker)
{
    if (res != slp_soft_switched) {
        return res;
    }
    slp_soft_switch_request(tstate, SLP_PENDING_SWITCH, need_marker);
    return NULL;
}

void
slp_soft_switch_marker_set(PyThreadState *tstate)
{
    _PyErr_SetRaisedException(tstate, Py_NewRef(soft_switch_marker));
}

int
slp_soft_switch_marker_check(PyObject *exc)
{
    return exc == soft_switch_marker;
}


/* --- the type ------------------------------------------------------------ */

PyObject *
slp_function_self(PyObject *callable)
{
    return ((slp_function *)callable)->self;
}

/* call: NULL for slp_call_entry; bound_call: that of the methods that
 * __get__ binds. */
static PyObject *
function_new(PyMethodDef *ml, slp_tstate_func tfunc,
             _PyStackless_CallEntry call, _PyStackless_CallEntry bound_call,
             PyObject *self, PyTypeObject *type, PyObject *module)
{
    slp_function *f = PyObject_GC_New(slp_function,
                                      &_PyStackless_Function_Type);
    if (f == NULL) {
        return NULL;
    }
    f->call = call != NULL ? call : slp_call_entry;
    f->bound_call = bound_call;
    f->ml = ml;
    f->tfunc = tfunc;
    f->self = Py_XNewRef(self);
    f->type = (PyTypeObject *)Py_XNewRef((PyObject *)type);
    f->module = Py_XNewRef(module);
    f->vectorcall = function_vectorcall;
    f->tfunc_nargs = -1;
    if (tfunc != NULL && self == NULL && type != NULL) {
        f->tfunc_nargs = (ml->ml_flags & METH_O) ? 2 : 1;
    }
    PyObject_GC_Track(f);
    return (PyObject *)f;
}

static int
function_traverse(slp_function *f, visitproc visit, void *arg)
{
    Py_VISIT(f->self);
    Py_VISIT(f->type);
    Py_VISIT(f->module);
    return 0;
}

static int
function_clear(slp_function *f)
{
    Py_CLEAR(f->self);
    Py_CLEAR(f->type);
    Py_CLEAR(f->module);
    return 0;
}

static void
function_dealloc(slp_function *f)
{
    PyObject_GC_UnTrack(f);
    function_clear(f);
    PyObject_GC_Del(f);
}

static PyObject *
function_descr_get(PyObject *self, PyObject *obj, PyObject *cls)
{
    slp_function *f = (slp_function *)self;
    if (obj == NULL || f->self != NULL || f->type == NULL) {
        return Py_NewRef(self);
    }
    if (!PyObject_TypeCheck(obj, f->type)) {
        PyErr_Format(PyExc_TypeError,
                     "descriptor '%s' for '%s' objects doesn't apply to "
                     "a '%s' object", f->ml->ml_name, f->type->tp_name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return function_new(f->ml, f->tfunc, f->bound_call, NULL, obj, f->type,
                        NULL);
}

static PyObject *
function_repr(slp_function *f)
{
    if (f->type == NULL) {
        return PyUnicode_FromFormat("<built-in function %s>",
                                    f->ml->ml_name);
    }
    if (f->self == NULL) {
        return PyUnicode_FromFormat("<method '%s' of '%s' objects>",
                                    f->ml->ml_name, f->type->tp_name);
    }
    return PyUnicode_FromFormat("<built-in method %s of %s object at %p>",
                                f->ml->ml_name, Py_TYPE(f->self)->tp_name,
                                f->self);
}

static PyObject *
function_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE)
        || !Py_IS_TYPE(b, &_PyStackless_Function_Type))
    {
        Py_RETURN_NOTIMPLEMENTED;
    }
    slp_function *x = (slp_function *)a, *y = (slp_function *)b;
    int eq = x->ml == y->ml && x->self == y->self;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static Py_hash_t
function_hash(slp_function *f)
{
    Py_hash_t x = PyObject_GenericHash(f->self != NULL ? f->self
                                                       : (PyObject *)f->type);
    Py_hash_t y = Py_HashPointer((void *)f->ml);
    x ^= y;
    return x == -1 ? -2 : x;
}

static PyObject *
function_get_name(slp_function *f, void *closure)
{
    return PyUnicode_FromString(f->ml->ml_name);
}

static PyObject *
function_get_qualname(slp_function *f, void *closure)
{
    if (f->type == NULL) {
        return PyUnicode_FromString(f->ml->ml_name);
    }
    PyObject *tq = PyObject_GetAttrString((PyObject *)f->type,
                                          "__qualname__");
    if (tq == NULL) {
        return NULL;
    }
    PyObject *res = PyUnicode_FromFormat("%U.%s", tq, f->ml->ml_name);
    Py_DECREF(tq);
    return res;
}

static PyObject *
function_get_doc(slp_function *f, void *closure)
{
    return _PyType_GetDocFromInternalDoc(f->ml->ml_name, f->ml->ml_doc);
}

static PyObject *
function_get_text_signature(slp_function *f, void *closure)
{
    return _PyType_GetTextSignatureFromInternalDoc(f->ml->ml_name,
                                                   f->ml->ml_doc, 0);
}

static PyObject *
function_get_self(slp_function *f, void *closure)
{
    PyObject *self = f->self != NULL ? f->self : Py_None;
    return Py_NewRef(self);
}

static PyObject *
function_get_objclass(slp_function *f, void *closure)
{
    if (f->type == NULL) {
        PyErr_SetString(PyExc_AttributeError, "__objclass__");
        return NULL;
    }
    return Py_NewRef((PyObject *)f->type);
}

static PyObject *
function_get_module(slp_function *f, void *closure)
{
    if (f->module != NULL) {
        return Py_NewRef(f->module);
    }
    Py_RETURN_NONE;
}

static PyGetSetDef function_getset[] = {
    {"__name__", (getter)function_get_name, NULL, NULL},
    {"__qualname__", (getter)function_get_qualname, NULL, NULL},
    {"__doc__", (getter)function_get_doc, NULL, NULL},
    {"__text_signature__", (getter)function_get_text_signature, NULL, NULL},
    {"__self__", (getter)function_get_self, NULL, NULL},
    {"__objclass__", (getter)function_get_objclass, NULL, NULL},
    {"__module__", (getter)function_get_module, NULL, NULL},
    {NULL}
};

/* Pickled by reference, as builtins are: by name in their module, or as
 * an attribute of their object or type. */
static PyObject *
function_reduce(slp_function *f, PyObject *Py_UNUSED(ignored))
{
    if (f->type == NULL) {
        return PyUnicode_FromString(f->ml->ml_name);
    }
    PyObject *getattr = PyEval_GetBuiltins() != NULL
        ? PyDict_GetItemString(PyEval_GetBuiltins(), "getattr") : NULL;
    if (getattr == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no builtin getattr");
        return NULL;
    }
    PyObject *owner = f->self != NULL ? f->self : (PyObject *)f->type;
    return Py_BuildValue("O(Os)", getattr, owner, f->ml->ml_name);
}

static PyMethodDef function_methods[] = {
    {"__reduce__", (PyCFunction)function_reduce, METH_NOARGS, NULL},
    {NULL}
};

PyTypeObject _PyStackless_Function_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.stackless_function",
    .tp_basicsize = sizeof(slp_function),
    .tp_dealloc = (destructor)function_dealloc,
    .tp_vectorcall_offset = offsetof(slp_function, vectorcall),
    .tp_repr = (reprfunc)function_repr,
    .tp_hash = (hashfunc)function_hash,
    .tp_call = PyVectorcall_Call,
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
                | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = PyDoc_STR("A builtin that may switch tasklets."),
    .tp_traverse = (traverseproc)function_traverse,
    .tp_clear = (inquiry)function_clear,
    .tp_richcompare = function_richcompare,
    .tp_methods = function_methods,
    .tp_getset = function_getset,
    .tp_descr_get = function_descr_get,
};

static const slp_tstate_variant *
find_variant(const char *name, const slp_tstate_variant *variants)
{
    for (; variants != NULL && variants->name != NULL; variants++) {
        if (strcmp(variants->name, name) == 0) {
            return variants;
        }
    }
    return NULL;
}

int
slp_add_soft_methods(PyTypeObject *type, PyMethodDef *defs,
                     const slp_tstate_variant *variants)
{
    PyObject *dict = type->tp_dict;
    for (PyMethodDef *ml = defs; ml->ml_name != NULL; ml++) {
        const slp_tstate_variant *v = find_variant(ml->ml_name, variants);
        assert(v == NULL || (ml->ml_flags & (METH_O | METH_NOARGS)));
        PyObject *f = function_new(ml, v != NULL ? v->func : NULL,
                                   v != NULL ? v->call : NULL,
                                   v != NULL ? v->bound_call : NULL,
                                   NULL, type, NULL);
        if (f == NULL) {
            return -1;
        }
        int r = PyDict_SetItemString(dict, ml->ml_name, f);
        Py_DECREF(f);
        if (r < 0) {
            return -1;
        }
    }
    PyType_Modified(type);
    return 0;
}

int
slp_add_soft_functions(PyObject *module, PyMethodDef *defs)
{
    PyObject *name = PyModule_GetNameObject(module);
    if (name == NULL) {
        return -1;
    }
    for (PyMethodDef *ml = defs; ml->ml_name != NULL; ml++) {
        PyObject *f = function_new(ml, NULL, NULL, NULL, module, NULL,
                                   name);
        if (f == NULL || PyModule_Add(module, ml->ml_name, f) < 0) {
            Py_DECREF(name);
            return -1;
        }
    }
    Py_DECREF(name);
    return 0;
}

int
slp_softcall_init(void)
{
    if (PyType_Ready(&_PyStackless_Function_Type) < 0) {
        return -1;
    }
    if (soft_switch_marker == NULL) {
        PyObject *args = Py_BuildValue("(s)", "a soft switch of tasklets "
                                       "is pending");
        if (args == NULL) {
            return -1;
        }
        soft_switch_marker = PyObject_Call(PyExc_SystemError, args, NULL);
        Py_DECREF(args);
        if (soft_switch_marker == NULL) {
            return -1;
        }
        _Py_SetImmortal(soft_switch_marker);
    }
    return 0;
}

/* --- chunks of the frame data stack ------------------------------------- */

/* The size CPython gives a chunk unless a frame needs more
 * (Python/pystate.c, DATA_STACK_CHUNK_SIZE). */
#define SLP_STANDARD_CHUNK (16 * 1024)

/* Chunks come from malloc rather than one mmap each: a million tasklets
 * must not cost a million mappings.  Each thread that uses stackless keeps
 * one spare standard chunk. */
_PyStackChunk *
_PyStackless_AllocChunk(size_t size)
{
    if (size == SLP_STANDARD_CHUNK) {
        PyThreadState *tstate = _PyThreadState_GET();
        slp_thread *th = tstate != NULL ? slp_thread_of(tstate) : NULL;
        if (th != NULL && th->spare_chunk != NULL) {
            _PyStackChunk *chunk = th->spare_chunk;
            th->spare_chunk = NULL;
            return chunk;
        }
    }
    return (_PyStackChunk *)malloc(size);
}

void
_PyStackless_FreeChunk(_PyStackChunk *chunk)
{
    if (chunk->size == SLP_STANDARD_CHUNK) {
        PyThreadState *tstate = _PyThreadState_GET();
        slp_thread *th = tstate != NULL ? slp_thread_of(tstate) : NULL;
        if (th != NULL && th->spare_chunk == NULL) {
            th->spare_chunk = chunk;
            return;
        }
    }
    free(chunk);
}

int
_PyStackless_GrowDataStack(PyThreadState *tstate, int size)
{
    size_t bytes = SLP_STANDARD_CHUNK;
    while (bytes < offsetof(_PyStackChunk, data)
                   + (2 + (size_t)size) * sizeof(PyObject *))
    {
        bytes *= 2;
    }
    _PyStackChunk *chunk = _PyStackless_AllocChunk(bytes);
    if (chunk == NULL) {
        return 0;
    }
    slp_push_chunk(tstate, chunk, bytes);
    return 1;
}

void
slp_push_chunk(PyThreadState *tstate, _PyStackChunk *chunk, size_t size)
{
    _PyStackChunk *below = tstate->datastack_chunk;
    if (below != NULL) {
        below->top = tstate->datastack_top - &below->data[0];
    }
    chunk->previous = below;
    chunk->size = size;
    chunk->top = 0;
    tstate->datastack_chunk = chunk;
    tstate->datastack_top = &chunk->data[1];
    tstate->datastack_limit = (PyObject **)((char *)chunk + size);
}

void
_PyStackless_PopGrownChunk(PyThreadState *tstate)
{
    _PyStackChunk *chunk = tstate->datastack_chunk;
    _PyStackChunk *below = chunk->previous;
    assert(_PyStackless_EMPTY_GROWN_CHUNK(tstate));
    tstate->datastack_chunk = below;
    tstate->datastack_top = &below->data[below->top];
    tstate->datastack_limit = (PyObject **)((char *)below + below->size);
    _PyStackless_FreeChunk(chunk);
}
