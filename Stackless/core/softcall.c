/* The builtins that switch tasklets, and the frame data stack's chunks.
 *
 * Soft switching needs to know that a switching builtin was called by the
 * eval loop itself, with no C code in between that would expect it to
 * return: only then can it leave the frame to the eval loop instead of
 * returning to its caller.  These builtins (channel.send, receive,
 * schedule, tasklet.run, ...) are builtin functions, bound methods and
 * method descriptors like any other (inspect sees them as such), made by
 * CPython from a PyMethodDef whose flags have METH_STACKLESS.  The def is
 * the head of a slp_methoddef (stackless_impl.h), found from it by
 * offsetof (_PyStackless_MethodDefOf()), which holds what CPython's
 * objects do not: the entries of CALL_STACKLESS, and a variant of the
 * function that takes the thread state.  They are called three ways:
 *
 *   - CALL_STACKLESS, to which CALL specializes its calls of them, calls
 *     the def's entry for the object (pycore_stackless.h): slp_call_entry(),
 *     or for send and receive of channels a quick way for the common
 *     cases, which passes the others on to it (channel.c);
 *   - the generic call paths of the eval loop call _PyStackless_SoftCall()
 *     (through _PyStackless_BuiltinCall()), as slp_call_entry() does: it
 *     records the calling frame in the thread state (stackless_softcall)
 *     for the duration of the call;
 *   - every other caller goes through the objects' vectorcall, which
 *     CPython gives the objects of a def with METH_STACKLESS
 *     (Objects/methodobject.c, descrobject.c):
 *     _PyStackless_MethodVectorcall(), which records none, and hides the
 *     record of an outer call: C code that a switching builtin runs (an
 *     iterator of send_sequence(), a callback) is not the eval loop.
 *
 * The scheduler (slp_switch_to_soft) switches softly only when that
 * record is the frame running now.  Each way calls the def as CPython
 * would call it (call_def()), with CPython's checks and messages.
 *
 * Invariant: a PyMethodDef with METH_STACKLESS is the def of a
 * slp_methoddef.  Only slp_add_switching_methods() and
 * slp_add_switching_functions() set the flag, on the defs they are given;
 * outside the core METH_STACKLESS is 0 (STACKLESS is defined for the core
 * only), so that no extension's def has it.
 */

#include "stackless_impl.h"
#include "pycore_modsupport.h"    // _PyArg_UnpackKeywords()
#include "pycore_object.h"        // _Py_SetImmortal()
#include "pycore_pyerrors.h"      // _PyErr_SetRaisedException()
#include "pycore_stackless.h"     // _PyStackless_MethodDef

/* The results of a builtin that switched softly, or (for CALL_STACKLESS)
 * made the switch at once: addresses, never objects seen by Python. */
char slp_soft_switched_token;
char _PyStackless_SwitchedToken;

/* What the eval loop finds raised when a soft switch is pending. */
static PyObject *soft_switch_marker;

/* The call of a method descriptor of a switching builtin found no object,
 * or one of another type: CPython's messages (Objects/descrobject.c). */
static SLP_NOINLINE PyObject *
bad_object(PyObject *callable, PyObject *const *args, Py_ssize_t nargs)
{
    PyMethodDescrObject *descr = (PyMethodDescrObject *)callable;
    if (nargs < 1) {
        PyObject *funcstr = _PyObject_FunctionStr(callable);
        if (funcstr != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "unbound method %U needs an argument", funcstr);
            Py_DECREF(funcstr);
        }
        return NULL;
    }
    PyErr_Format(PyExc_TypeError,
                 "descriptor '%s' for '%.100s' objects doesn't apply to a "
                 "'%.100s' object", descr->d_method->ml_name,
                 PyDescr_TYPE(descr)->tp_name, Py_TYPE(args[0])->tp_name);
    return NULL;
}

/* A wrong count of arguments: CPython's messages
 * (Objects/methodobject.c). */
static SLP_NOINLINE PyObject *
bad_arguments(PyObject *callable, const char *format, Py_ssize_t n)
{
    PyObject *funcstr = _PyObject_FunctionStr(callable);
    if (funcstr != NULL) {
        PyErr_Format(PyExc_TypeError, format, funcstr, n);
        Py_DECREF(funcstr);
    }
    return NULL;
}

/* Call a switching builtin as CPython would: `callable` is its method
 * descriptor (args[0] the object) or a builtin function or method (the
 * object its __self__). */
static SLP_INLINE PyObject *
call_def(PyThreadState *tstate, PyObject *callable, PyObject *const *args,
         size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyMethodDef *ml;
    PyObject *self;
    if (Py_IS_TYPE(callable, &PyMethodDescr_Type)) {
        PyMethodDescrObject *descr = (PyMethodDescrObject *)callable;
        if (nargs < 1 || !PyObject_TypeCheck(args[0], PyDescr_TYPE(descr))) {
            return bad_object(callable, args, nargs);
        }
        ml = descr->d_method;
        self = args[0];
        args++;
        nargs--;
    }
    else {
        assert(Py_IS_TYPE(callable, &PyCFunction_Type));
        ml = ((PyCFunctionObject *)callable)->m_ml;
        self = ((PyCFunctionObject *)callable)->m_self;   /* not static */
    }
    slp_methoddef *sd = (slp_methoddef *)_PyStackless_MethodDefOf(ml);
    int flags = ml->ml_flags & (METH_VARARGS | METH_FASTCALL | METH_NOARGS
                                | METH_O | METH_KEYWORDS);
    if (sd->tfunc != NULL && kwnames == NULL
        && nargs == (flags == METH_NOARGS ? 0 : 1))
    {
        /* What follows would do, in short. */
        return sd->tfunc(tstate, self, nargs == 1 ? args[0] : NULL);
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw != 0 && !(flags & METH_KEYWORDS)) {
        return bad_arguments(callable, "%U takes no keyword arguments", 0);
    }
    PyCFunction meth = ml->ml_meth;
    switch (flags) {
    case METH_NOARGS:
        if (nargs != 0) {
            return bad_arguments(callable,
                                 "%U takes no arguments (%zd given)", nargs);
        }
        return meth(self, NULL);
    case METH_O:
        if (nargs != 1) {
            return bad_arguments(
                callable, "%U takes exactly one argument (%zd given)", nargs);
        }
        return meth(self, args[0]);
    case METH_FASTCALL:
        return ((PyCFunctionFast)(void (*)(void))meth)(self, args, nargs);
    case METH_FASTCALL | METH_KEYWORDS:
        return ((PyCFunctionFastWithKeywords)(void (*)(void))meth)(
            self, args, nargs, kwnames);
    default:
        /* slp_add_switching_*() let no other in. */
        Py_UNREACHABLE();
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

PyObject *
_PyStackless_MethodVectorcall(PyObject *callable, PyObject *const *args,
                              size_t nargsf, PyObject *kwnames)
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
    PyObject *res = call_def(tstate, callable, args, nargsf, kwnames);
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
    _PyInterpreterFrame *outer = ts->stackless_softcall;
    ts->stackless_softcall = tstate->current_frame;
    PyObject *res = call_def(tstate, callable, args, nargsf, kwnames);
    ts->stackless_softcall = outer;
    /* The CALL drops its inputs and goes to `error:`, which makes the
     * switch (_PyStackless_SoftSwitch). */
    return slp_soft_result(tstate, res, 0);
}

PyObject *
_PyStackless_BuiltinCall(PyThreadState *tstate, PyObject *callable,
                         PyObject *const *args, size_t nargsf,
                         PyObject *kwnames)
{
    PyMethodDef *ml = Py_IS_TYPE(callable, &PyMethodDescr_Type)
                      ? ((PyMethodDescrObject *)callable)->d_method
                      : ((PyCFunctionObject *)callable)->m_ml;
    if (_PyStackless_IsCoreDef(ml)) {
        return _PyStackless_SoftCall(tstate, callable, args, nargsf,
                                     kwnames);
    }
    if (ml->ml_flags & METH_STACKLESS) {
        return slp_protocol_call(tstate, callable, args, nargsf, kwnames);
    }
    return PyObject_Vectorcall(callable, args, nargsf, kwnames);
}

PyObject *
_PyStackless_ForeignEntry(PyThreadState *tstate, PyObject *callable,
                          PyObject **args, int nargs)
{
    PyObject *res = slp_protocol_call(
        tstate, callable, args, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(callable);
    for (int i = 0; i < nargs; i++) {
        Py_DECREF(args[i]);
    }
    return res;
}

PyObject *
slp_call_softly(PyThreadState *tstate, PyObject *callable,
                PyObject *const *args, size_t nargsf)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    _PyInterpreterFrame *outer = ts->stackless_softcall;
    ts->stackless_softcall = tstate->current_frame;
    PyObject *res = call_def(tstate, callable, args, nargsf, NULL);
    ts->stackless_softcall = outer;
    return res;
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


/* --- making them ---------------------------------------------------------- */

/* The def of a switching builtin gets METH_STACKLESS, which Argument
 * Clinic does not know of; then CPython makes its objects. */
static PyMethodDef *
switching_def(slp_methoddef *sd)
{
    PyMethodDef *ml = &sd->head.def;
    int flags = ml->ml_flags & ~(METH_STACKLESS | _PyStackless_METH_CORE);
    /* call_def() calls these, as the eval loop's CALL_BUILTIN_* would. */
    assert(flags == METH_NOARGS || flags == METH_O || flags == METH_FASTCALL
           || flags == (METH_FASTCALL | METH_KEYWORDS));
    assert(sd->tfunc == NULL || flags != METH_FASTCALL);
    assert(sd->head.unbound_call != NULL && sd->head.call != NULL);
    (void)flags;
    ml->ml_flags |= METH_STACKLESS | _PyStackless_METH_CORE;
    return ml;
}

PyObject *
slp_switching_function(slp_methoddef *sd)
{
    return PyCFunction_NewEx(switching_def(sd), NULL, NULL);
}

int
slp_add_switching_methods(PyTypeObject *type, slp_methoddef *defs)
{
    PyObject *dict = type->tp_dict;
    for (slp_methoddef *sd = defs; sd->head.def.ml_name != NULL; sd++) {
        PyObject *descr = PyDescr_NewMethod(type, switching_def(sd));
        if (descr == NULL) {
            return -1;
        }
        int r = PyDict_SetItemString(dict, sd->head.def.ml_name, descr);
        Py_DECREF(descr);
        if (r < 0) {
            return -1;
        }
    }
    PyType_Modified(type);
    return 0;
}

int
slp_add_switching_functions(PyObject *module, slp_methoddef *defs)
{
    PyObject *name = PyModule_GetNameObject(module);
    if (name == NULL) {
        return -1;
    }
    for (slp_methoddef *sd = defs; sd->head.def.ml_name != NULL; sd++) {
        PyObject *f = PyCFunction_NewEx(switching_def(sd), module, name);
        if (f == NULL || PyModule_Add(module, sd->head.def.ml_name, f) < 0) {
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

/* --- arguments ------------------------------------------------------------ */

PyObject *
slp_first_argument(_PyArg_Parser *parser, int varargs, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw == 0 || (!varargs && nargs + nkw > 1)) {
        PyErr_Format(PyExc_TypeError,
                     varargs ? "%s() takes at least 1 argument (%zd given)"
                             : "%s() takes exactly one argument (%zd given)",
                     parser->fname, nargs + nkw);
        return NULL;
    }
    if (nkw == 0) {
        return args[0];
    }
    /* The keywords, which follow the positional arguments: the one of the
     * first parameter is all they may be, and not with a positional
     * argument, which would be its value. */
    PyObject *buf[1];
    PyObject *const *kw = _PyArg_UnpackKeywords(args + nargs, 0, NULL,
                                                kwnames, parser, 0, 1, 0,
                                                buf);
    if (kw == NULL) {
        return NULL;
    }
    if (nargs > 0) {
        PyErr_Format(PyExc_TypeError,
                     "argument for %s() given by name ('%s') and position "
                     "(1)", parser->fname, parser->keywords[0]);
        return NULL;
    }
    return kw[0];
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

/* The smallest chunk grown over a tasklet's small first one. */
#define SLP_FIRST_GROWN_CHUNK 512

size_t
_PyStackless_ChunkSize(PyThreadState *tstate, size_t roomy, size_t needed)
{
    /* Over a chunk smaller than CPython's (a tasklet's first chunk, or one
     * grown over it), twice its size, from 512 bytes up to CPython's: a
     * tasklet that blocks a few calls deep keeps a KB or two of data stack,
     * not 16 KB more (mostly untouched, but allocated and partly faulted
     * in).  The first chunk fits the tasklet's function exactly, so the
     * next has room for calls twice as big (a server's connection handler
     * blocked in a socket read fits in the two). */
    size_t bytes = SLP_STANDARD_CHUNK;
    _PyStackChunk *below = tstate->datastack_chunk;
    if (below == NULL || below->size >= SLP_STANDARD_CHUNK) {
        needed = roomy;
    }
    else {
        bytes = 2 * below->size;
        if (bytes < SLP_FIRST_GROWN_CHUNK) {
            bytes = SLP_FIRST_GROWN_CHUNK;
        }
        else if (bytes > SLP_STANDARD_CHUNK) {
            bytes = SLP_STANDARD_CHUNK;
        }
    }
    while (bytes < needed) {
        bytes *= 2;
    }
    return bytes;
}

int
_PyStackless_GrowDataStack(PyThreadState *tstate, int size)
{
    size_t needed = offsetof(_PyStackChunk, data)
                    + (2 + (size_t)size) * sizeof(PyObject *);
    size_t bytes = _PyStackless_ChunkSize(tstate, needed, needed);
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
