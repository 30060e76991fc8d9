/* Generators, coroutines and async generators in pickles (spec P-10).
 *
 * stackless registers with copyreg, for the three types, a reducer
 * that gives
 *
 *     (_wrap.restore_generator, (code, state))
 *
 * _wrap.restore_generator(code, state) makes an object of the type the code's
 * flags call for, whose memory fits a frame of that code, and gives it the
 * state.  (Not the state after the object, with a state setter: copy
 * does not take one.  A generator whose own frame refers to it does not
 * pickle.)  The state:
 *
 *     (version, kind, frame, name, qualname, exc[, async])
 *
 *   kind      0: not started or suspended at a yield (its frame resumes as
 *             SLP_RESUME_GEN); 1: running, its frame in the chain of a
 *             suspended tasklet, which links it when it is unpickled (if
 *             the frame ran C code, the generator comes back finished);
 *             2: finished, no frame
 *   frame     its frame's state (frames.c), or None when finished
 *   exc       the exception it handles (gi_exc_state), or None
 *   async     for an async generator: (closed, hooks mode, finalizer),
 *             see slp_reduce_generator()
 *
 * Which of created, suspended and suspended in a `yield from` a suspended
 * generator is, is read from its code, not from the pickle: CPython reads
 * the receiver of a `yield from` off the frame's stack.
 *
 * A running generator comes back running, so that nothing can resume or
 * close it until its tasklet links its frame (pickling/tasklets.c); if no
 * tasklet does, it stays so, and is cleared with it.  Async generator
 * hooks (P-11): by default an async generator that had its hooks takes
 * the current ones (sys.set_asyncgen_hooks()) when it is unpickled; the
 * pickle flags keep its finalizer, or leave it without hooks until it is
 * iterated again.
 */

#include "../core/stackless_impl.h"
#include "pycore_code.h"
#include "pycore_frame.h"
#include "pycore_genobject.h"
#include "pycore_import.h"          // _PyImport_GetModuleAttrString()
#include "pycore_opcode_utils.h"      // RESUME_AFTER_YIELD_FROM

static PyTypeObject *
type_for(PyCodeObject *co)
{
    int flags = co->co_flags
                & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR);
    switch (flags) {
    case CO_GENERATOR:
        return &PyGen_Type;
    case CO_COROUTINE:
        return &PyCoro_Type;
    case CO_ASYNC_GENERATOR:
        return &PyAsyncGen_Type;
    }
    return NULL;
}

int
slp_is_generator(PyObject *ob)
{
    return PyGen_CheckExact(ob) || PyCoro_CheckExact(ob)
           || PyAsyncGen_CheckExact(ob);
}

/* --- the reducer ------------------------------------------------------ */

PyObject *
slp_reduce_generator(PyObject *module, PyObject *ob)
{
    if (!slp_is_generator(ob)) {
        PyErr_Format(PyExc_TypeError, "not a generator: '%.200s'",
                     Py_TYPE(ob)->tp_name);
        return NULL;
    }
    PyGenObject *gen = (PyGenObject *)ob;
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)gen->gi_iframe;
    PyCodeObject *co = _PyFrame_GetCode(f);
    int kind;
    PyObject *frame;
    if (FRAME_STATE_FINISHED(gen->gi_frame_state)) {
        kind = 2;
        frame = Py_NewRef(Py_None);
    }
    else {
        kind = gen->gi_frame_state == FRAME_EXECUTING ? 1 : 0;
        slp_thread *th = slp_get_thread();
        if (th == NULL) {
            return NULL;
        }
        if (kind == 1 && f->stacktop < 0 && th->tstate->current_frame != NULL) {
            /* Running now, in this thread: its frame is not suspended. */
            for (_PyInterpreterFrame *g = th->tstate->current_frame; g;
                 g = g->previous)
            {
                if (g == f) {
                    PyErr_SetString(PyExc_RuntimeError,
                                    "cannot pickle a generator that is "
                                    "running in the current tasklet");
                    return NULL;
                }
            }
        }
        frame = slp_frame_state_of(th->si, f);
        if (frame == NULL) {
            return NULL;
        }
    }
    PyObject *exc = gen->gi_exc_state.exc_value != NULL
                    ? gen->gi_exc_state.exc_value : Py_None;
    PyObject *state;
    if (PyAsyncGen_CheckExact(ob)) {
        /* Its hooks (P-11): by default, if it had them, it takes those of
         * the unpickling thread when it is unpickled (mode 1); with
         * PICKLEFLAGS_PRESERVE_AG_FINALIZER, its finalizer by value (mode
         * 2); with PICKLEFLAGS_RESET_AG_FINALIZER, none yet (mode 0: the
         * current ones when it is next iterated). */
        PyAsyncGenObject *ag = (PyAsyncGenObject *)ob;
        slp_thread *th = slp_get_thread();
        long flags = th != NULL ? th->pickle_flags : 0;
        int mode = !ag->ag_hooks_inited ? 0
                   : (flags & SLP_PICKLEFLAGS_PRESERVE_AG_FINALIZER) ? 2
                   : (flags & SLP_PICKLEFLAGS_RESET_AG_FINALIZER) ? 0 : 1;
        PyObject *fin = mode == 2 && ag->ag_origin_or_finalizer != NULL
                        ? ag->ag_origin_or_finalizer : Py_None;
        state = Py_BuildValue("(liNOOO(iiO))", slp_pickle_version(), kind,
                              frame, gen->gi_name, gen->gi_qualname, exc,
                              (int)ag->ag_closed, mode, fin);
    }
    else {
        state = Py_BuildValue("(liNOOO)", slp_pickle_version(), kind, frame,
                              gen->gi_name, gen->gi_qualname, exc);
    }
    if (state == NULL) {
        return NULL;
    }
    PyObject *wrap = _PyImport_GetModuleAttrString("stackless", "_wrap");
    if (wrap == NULL) {
        Py_DECREF(state);
        return NULL;
    }
    PyObject *new = PyObject_GetAttrString(wrap, "restore_generator");
    Py_DECREF(wrap);
    if (new == NULL) {
        Py_DECREF(state);
        return NULL;
    }
    return Py_BuildValue("(N(ON))", new, (PyObject *)co, state);
}

/* --- _wrap.restore_generator(code, state) -------------------------------- */

static PyObject *
new_generator(PyObject *code)
{
    if (!PyCode_Check(code)) {
        PyErr_Format(PyExc_TypeError, "a generator's code must be code, "
                     "not '%.200s'", Py_TYPE(code)->tp_name);
        return NULL;
    }
    PyCodeObject *co = (PyCodeObject *)code;
    PyTypeObject *type = type_for(co);
    if (type == NULL) {
        PyErr_Format(PyExc_ValueError, "the code of %R is not that of a "
                     "generator, coroutine or async generator",
                     co->co_name);
        return NULL;
    }
    int slots = _PyFrame_NumSlotsForCodeObject(co);
    PyGenObject *gen = PyObject_GC_NewVar(PyGenObject, type, slots);
    if (gen == NULL) {
        return NULL;
    }
    gen->gi_weakreflist = NULL;
    gen->gi_exc_state.exc_value = NULL;
    gen->gi_exc_state.previous_item = NULL;
    gen->gi_name = Py_NewRef(co->co_name);
    gen->gi_qualname = Py_NewRef(co->co_qualname);
    gen->gi_origin_or_finalizer = NULL;
    gen->gi_hooks_inited = 0;
    gen->gi_closed = 0;
    gen->gi_running_async = 0;
    gen->gi_frame_state = FRAME_CLEARED;
    /* A finished generator's frame keeps its code, and only that. */
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)gen->gi_iframe;
    f->f_executable = Py_NewRef(code);
    f->previous = NULL;
    f->owner = FRAME_OWNED_BY_GENERATOR;
    f->frame_obj = NULL;
    f->stacktop = 0;
    f->instr_ptr = _PyCode_CODE(co);
    f->return_offset = 0;
    PyObject_GC_Track(gen);
    return (PyObject *)gen;
}

/* --- the state --------------------------------------------------------- */

/* A suspended generator's state, from its code: created, suspended at a
 * yield, or in a `yield from` (await). */
static int
suspended_state(PyCodeObject *co, int index)
{
    PyObject *bytes = _PyCode_GetCode(co);
    if (bytes == NULL) {
        return -100;
    }
    const _Py_CODEUNIT *code = (const _Py_CODEUNIT *)PyBytes_AS_STRING(bytes);
    int state;
    if (code[index - 1].op.code == RETURN_GENERATOR) {
        state = FRAME_CREATED;
    }
    else if (code[index].op.code == RESUME
             && (code[index].op.arg & RESUME_OPARG_LOCATION_MASK)
                >= RESUME_AFTER_YIELD_FROM)
    {
        state = FRAME_SUSPENDED_YIELD_FROM;
    }
    else {
        state = FRAME_SUSPENDED;
    }
    Py_DECREF(bytes);
    return state;
}

static void
install(slp_frame_state *fs, PyGenObject *gen)
{
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)gen->gi_iframe;
    PyObject *code = f->f_executable;   /* the same as fs->code */
    slp_frame_state_install(fs, f);
    Py_DECREF(code);                    /* install() took its own */
    f->owner = FRAME_OWNED_BY_GENERATOR;
    f->previous = NULL;
}

static int
set_state(PyObject *ob, PyObject *state)
{
    PyGenObject *gen = (PyGenObject *)ob;
    PyCodeObject *co = _PyFrame_GetCode((_PyInterpreterFrame *)gen->gi_iframe);
    int is_async = PyAsyncGen_CheckExact(ob);
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 6 + is_async) {
        PyErr_Format(PyExc_TypeError, "a %s's state must be a tuple of %d "
                     "items", Py_TYPE(ob)->tp_name, 6 + is_async);
        return -1;
    }
    if (slp_check_pickle_version(PyTuple_GET_ITEM(state, 0),
                                 Py_TYPE(ob)->tp_name) < 0)
    {
        return -1;
    }
    PyObject *kindob = PyTuple_GET_ITEM(state, 1);
    PyObject *frame = PyTuple_GET_ITEM(state, 2);
    PyObject *name = PyTuple_GET_ITEM(state, 3);
    PyObject *qualname = PyTuple_GET_ITEM(state, 4);
    PyObject *exc = PyTuple_GET_ITEM(state, 5);
    long kind = PyLong_CheckExact(kindob) ? PyLong_AsLong(kindob) : -1;
    if (kind < 0 || kind > 2) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "bad generator state %R", kindob);
        return -1;
    }
    if (!PyUnicode_Check(name) || !PyUnicode_Check(qualname)) {
        PyErr_SetString(PyExc_TypeError,
                        "a generator's name and qualname must be strings");
        return -1;
    }
    if (exc != Py_None && !PyExceptionInstance_Check(exc)) {
        PyErr_Format(PyExc_TypeError, "a generator's handled exception "
                     "must be an exception or None, not '%.200s'",
                     Py_TYPE(exc)->tp_name);
        return -1;
    }
    int closed = 0, mode = 0;
    PyObject *fin = NULL;
    if (is_async) {
        PyObject *a = PyTuple_GET_ITEM(state, 6);
        if (!PyTuple_Check(a)
            || !PyArg_ParseTuple(a, "piO;async generator state", &closed,
                                 &mode, &fin))
        {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError,
                                "bad async generator state");
            }
            return -1;
        }
        if (mode < 0 || mode > 2 || (fin != Py_None
                                     && (mode != 2 || !PyCallable_Check(fin))))
        {
            PyErr_SetString(PyExc_ValueError,
                            "bad async generator hooks");
            return -1;
        }
    }
    int gi_state = FRAME_CLEARED;
    slp_frame_state *fs = NULL;
    if (kind == 2) {
        if (frame != Py_None || exc != Py_None) {
            PyErr_SetString(PyExc_ValueError,
                            "a finished generator has no frame");
            return -1;
        }
    }
    else {
        if (!slp_FrameState_Check(frame)) {
            PyErr_Format(PyExc_TypeError, "a generator's frame must be a "
                         "frame state, not '%.200s'",
                         Py_TYPE(frame)->tp_name);
            return -1;
        }
        fs = (slp_frame_state *)frame;
        if (fs->code != co || fs->shim != NULL) {
            PyErr_Format(PyExc_ValueError,
                         "the frame of %R in a generator of %R", fs->code->co_name,
                         co->co_name);
            return -1;
        }
        if (kind == 0) {
            slp_frame_check fc = {
                .code = co,
                .index = fs->index,
                .return_offset = 0,
                .mode = SLP_RESUME_GEN,
                .depth = (int)Py_SIZE(fs) - co->co_nlocalsplus,
                .shim = 0,
                .slots = fs->slots,
            };
            if (!fs->valid) {
                PyErr_Format(PyExc_ValueError, "suspended generator %R "
                             "without a stack", co->co_name);
                return -1;
            }
            if (slp_verify_frame(&fc) < 0) {
                return -1;
            }
            gi_state = suspended_state(co, fs->index);
            if (gi_state == -100) {
                return -1;
            }
        }
        else if (!fs->valid) {
            /* It ran C code: its tasklet gets the invalid shim in its
             * place, and it can never go on. */
            fs = NULL;
            gi_state = FRAME_CLEARED;
        }
        else {
            gi_state = FRAME_EXECUTING;
        }
    }
    if (fs != NULL) {
        install(fs, gen);
    }
    gen->gi_frame_state = (int8_t)gi_state;
    Py_SETREF(gen->gi_name, Py_NewRef(name));
    Py_SETREF(gen->gi_qualname, Py_NewRef(qualname));
    if (exc != Py_None && gi_state != FRAME_CLEARED) {
        gen->gi_exc_state.exc_value = Py_NewRef(exc);
    }
    if (is_async) {
        PyAsyncGenObject *ag = (PyAsyncGenObject *)gen;
        ag->ag_closed = (char)closed;
        ag->ag_running_async = 0;
        ag->ag_hooks_inited = 0;    /* mode 0: the current hooks, later */
        if (mode == 2) {
            ag->ag_hooks_inited = 1;
            ag->ag_origin_or_finalizer = fin == Py_None ? NULL
                                                        : Py_NewRef(fin);
        }
        else if (mode == 1) {
            /* As async_gen_init_hooks() does on a first iteration. */
            PyThreadState *tstate = _PyThreadState_GET();
            ag->ag_hooks_inited = 1;
            ag->ag_origin_or_finalizer =
                Py_XNewRef(tstate->async_gen_finalizer);
            PyObject *firstiter = Py_XNewRef(tstate->async_gen_firstiter);
            if (firstiter != NULL) {
                PyObject *res = PyObject_CallOneArg(firstiter, ob);
                Py_DECREF(firstiter);
                if (res == NULL) {
                    return -1;
                }
                Py_DECREF(res);
            }
        }
    }
    return 0;
}

PyObject *
slp_new_generator(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "restore_generator(code, state) takes 2 arguments");
        return NULL;
    }
    PyObject *gen = new_generator(args[0]);
    if (gen != NULL && set_state(gen, args[1]) < 0) {
        Py_CLEAR(gen);
    }
    return gen;
}

/* For tasklets.c: the frame of a running generator whose tasklet links
 * it, if it can be linked: running, not linked yet, with a stack. */
_PyInterpreterFrame *
slp_generator_frame_to_link(PyObject *ob)
{
    PyGenObject *gen = (PyGenObject *)ob;
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)gen->gi_iframe;
    if (gen->gi_frame_state != FRAME_EXECUTING || f->previous != NULL
        || f->stacktop < 0)
    {
        PyErr_Format(PyExc_ValueError,
                     "generator %R is not a running one whose tasklet "
                     "can take it", gen->gi_qualname);
        return NULL;
    }
    return f;
}

/* --- _wrap.generator() (spec M-21.8) ---------------------------------------
 *
 * An unstarted generator of the function exhausted_generator, which
 * returns at once: next() raises StopIteration.  All share the code, each
 * has its own frame.  Its type is a subclass of GeneratorType (3.7's
 * _wrap.generator), of the same layout, whose instances are made by
 * calling that function and giving the generator the subclass as its type
 * (both static types: no reference moves; no free list of generators in
 * 3.13).  It has a next() of its own: that of generators asserts they
 * are exactly generators.  stackless does not pickle them. */

static PyObject *
exhausted_function(slp_interp *si)
{
    if (si->exhausted_generator != NULL) {
        return si->exhausted_generator;
    }
    PyObject *globals = PyDict_New();
    PyObject *name = PyUnicode_FromString("stackless._wrap");
    if (globals == NULL || name == NULL
        || PyDict_SetItemString(globals, "__builtins__",
                                PyEval_GetBuiltins()) < 0
        || PyDict_SetItemString(globals, "__name__", name) < 0)
    {
        Py_XDECREF(globals);
        Py_XDECREF(name);
        return NULL;
    }
    Py_DECREF(name);
    PyObject *code = Py_CompileString(
        "def exhausted_generator():\n    return\n    yield\n",
        "<stackless>", Py_file_input);
    PyObject *res = code != NULL ? PyEval_EvalCode(code, globals, globals)
                                 : NULL;
    Py_XDECREF(code);
    Py_XDECREF(res);
    if (res != NULL) {
        si->exhausted_generator = Py_XNewRef(
            PyDict_GetItemString(globals, "exhausted_generator"));
    }
    Py_DECREF(globals);
    return si->exhausted_generator;
}

static PyObject *
exhausted_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0
        || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0))
    {
        PyErr_SetString(PyExc_TypeError, "generator() takes no arguments");
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyObject *func = exhausted_function(th->si);
    if (func == NULL) {
        return NULL;
    }
    PyObject *gen = PyObject_CallNoArgs(func);
    if (gen == NULL) {
        return NULL;
    }
    if (!PyGen_CheckExact(gen)) {
        Py_DECREF(gen);
        PyErr_SetString(PyExc_SystemError,
                        "exhausted_generator() made no generator");
        return NULL;
    }
    Py_SET_TYPE(gen, &slp_ExhaustedGenerator_Type);
    return gen;
}

/* next(): CPython's own tp_iternext of generators wants exact types
 * (debug builds assert it); sending None does what it does. */
static PyObject *
exhausted_iternext(PyObject *self)
{
    PyObject *result;
    switch (PyIter_Send(self, Py_None, &result)) {
    case PYGEN_NEXT:
        return result;
    case PYGEN_RETURN:
        if (result != Py_None) {
            _PyGen_SetStopIterationValue(result);
        }
        Py_DECREF(result);
        return NULL;
    default:
        return NULL;
    }
}

PyTypeObject slp_ExhaustedGenerator_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "stackless._wrap.exhausted_generator",
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR(
        "generator()\n--\n\n"
        "An unstarted generator that is exhausted: next() raises "
        "StopIteration."),
    .tp_base = &PyGen_Type,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = exhausted_iternext,
    .tp_new = exhausted_new,
};

int
slp_exhausted_generator_init(void)
{
    /* Its memory is a generator's: the collector walks it as one.
     * PyType_Ready() wants the function before it inherits it. */
    slp_ExhaustedGenerator_Type.tp_traverse = PyGen_Type.tp_traverse;
    return PyType_Ready(&slp_ExhaustedGenerator_Type);
}
