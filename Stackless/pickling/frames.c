/* Frames in pickles (spec P-5, P-13).
 *
 * A suspended frame is pickled as an object of the type
 * stackless._wrap.frame_state, which holds its state and reduces to
 *
 *     _wrap.frame_state(code, func, locals, index, return_offset, valid,
 *                       nullmask, *values)
 *
 *   code           the frame's code object, or for a shim frame the name
 *                  of its code in the registry (shims.c): shims are never
 *                  pickled as code
 *   func           f_funcobj, the function whose globals and builtins the
 *                  frame uses; None for a shim
 *   locals         f_locals (a class body, a module), or None; Ellipsis
 *                  for the globals of the function (module code)
 *   index          instr_ptr, in code units from the start of the code
 *   return_offset  where the frame goes on from instr_ptr when its callee
 *                  returns; 0 for a frame stopped before its instruction
 *                  (see softswitch.c)
 *   valid          0 if the frame ran C code when it was pickled: its
 *                  value stack is unknown, only its locals are kept
 *   nullmask       bit i set: slot i (locals first, then the value
 *                  stack) is NULL; the values of the others follow
 *
 * The constructor checks the state's shape (types, counts, ranges).
 * Whether the frame can run where it is put, the tasklet or generator
 * that takes it decides (verify.c), because how it resumes depends on
 * where it is in the chain.  A frame state is data: it never runs itself.
 */

#include "../core/stackless_impl.h"
#include "pycore_code.h"
#include "pycore_frame.h"
#include "pycore_function.h"
#include "pycore_long.h"              // _PyLong_GetOne()
#include "pycore_opcode_metadata.h"   // _PyOpcode_Caches

/* The interpreter's bytecode magic number, which CPython 3.13 keeps in
 * importlib only. */
static long
magic_number(void)
{
    static long magic = -1;
    if (magic < 0) {
        PyObject *m = PyImport_ImportModule("importlib._bootstrap_external");
        PyObject *v = m != NULL ? PyObject_GetAttrString(m, "_RAW_MAGIC_NUMBER")
                                : NULL;
        long x = v != NULL ? PyLong_AsLong(v) : -1;
        Py_XDECREF(m);
        Py_XDECREF(v);
        if (x == -1) {
            PyErr_Clear();
            return 0;
        }
        magic = x & 0xffff;
    }
    return magic;
}

long
slp_pickle_version(void)
{
    return ((long)SLP_PICKLE_FORMAT << 16) | magic_number();
}

int
slp_check_pickle_version(PyObject *v, const char *what)
{
    long ours = slp_pickle_version();
    long theirs = PyLong_Check(v) ? PyLong_AsLong(v) : -1;
    if (theirs == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    if (theirs == ours) {
        return 0;
    }
    if (theirs < 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s: not a pickle of stackless (version %R)", what, v);
        return -1;
    }
    PyErr_Format(PyExc_ValueError,
                 "%s pickled in format %ld by a Python of bytecode magic "
                 "number %ld; this one reads format %d, magic number %ld",
                 what, theirs >> 16, theirs & 0xffff, SLP_PICKLE_FORMAT,
                 magic_number());
    return -1;
}

/* --- the type ----------------------------------------------------------- */

static slp_frame_state *
frame_state_alloc(Py_ssize_t nslots)
{
    slp_frame_state *fs = PyObject_GC_NewVar(slp_frame_state,
                                             &slp_FrameState_Type, nslots);
    if (fs == NULL) {
        return NULL;
    }
    fs->code = NULL;
    fs->shim = NULL;
    fs->func = NULL;
    fs->locals = NULL;
    fs->index = fs->return_offset = 0;
    fs->valid = 0;
    for (Py_ssize_t i = 0; i < nslots; i++) {
        fs->slots[i] = NULL;
    }
    return fs;
}

PyObject *
slp_frame_state_of(slp_interp *si, _PyInterpreterFrame *f)
{
    PyCodeObject *co = _PyFrame_GetCode(f);
    int valid = f->stacktop >= 0;
    Py_ssize_t nslots = valid ? f->stacktop : co->co_nlocalsplus;
    slp_frame_state *fs = frame_state_alloc(nslots);
    if (fs == NULL) {
        return NULL;
    }
    const char *shim = slp_shim_name(si, co);
    if (shim != NULL) {
        fs->shim = PyUnicode_FromString(shim);
        if (fs->shim == NULL) {
            Py_DECREF(fs);
            return NULL;
        }
    }
    fs->code = (PyCodeObject *)Py_NewRef(co);
    fs->func = Py_NewRef(f->f_funcobj);
    fs->locals = Py_XNewRef(f->f_locals);
    fs->index = _PyInterpreterFrame_LASTI(f);
    fs->return_offset = f->return_offset;
    fs->valid = valid;
    for (Py_ssize_t i = 0; i < nslots; i++) {
        fs->slots[i] = Py_XNewRef(f->localsplus[i]);
    }
    PyObject_GC_Track(fs);
    return (PyObject *)fs;
}

PyObject *
slp_frame_state_of_shim(PyCodeObject *co, const char *name, int index,
                        int return_offset, PyObject *const *slots, int n)
{
    if (n < 0 || n > co->co_nlocalsplus + co->co_stacksize) {
        PyErr_Format(PyExc_ValueError, "a shim %s with %d slots", name, n);
        return NULL;
    }
    slp_frame_state *fs = frame_state_alloc(n);
    if (fs == NULL) {
        return NULL;
    }
    fs->shim = PyUnicode_FromString(name);
    if (fs->shim == NULL) {
        Py_DECREF(fs);
        return NULL;
    }
    fs->code = (PyCodeObject *)Py_NewRef(co);
    fs->func = Py_NewRef(Py_None);
    fs->index = index;
    fs->return_offset = return_offset;
    fs->valid = 1;
    for (int i = 0; i < n; i++) {
        fs->slots[i] = Py_NewRef(slots[i]);
    }
    PyObject_GC_Track(fs);
    return (PyObject *)fs;
}

void
slp_frame_state_install(slp_frame_state *fs, _PyInterpreterFrame *f)
{
    PyCodeObject *co = fs->code;
    f->f_executable = Py_NewRef(co);
    f->f_funcobj = Py_NewRef(fs->func);
    if (PyFunction_Check(fs->func)) {
        PyFunctionObject *func = (PyFunctionObject *)fs->func;
        f->f_globals = func->func_globals;
        f->f_builtins = func->func_builtins;
    }
    else {
        f->f_globals = f->f_builtins = NULL;
    }
    f->f_locals = Py_XNewRef(fs->locals);
    f->frame_obj = NULL;
    f->instr_ptr = _PyCode_CODE(co) + fs->index;
    f->return_offset = (uint16_t)fs->return_offset;
    f->owner = FRAME_OWNED_BY_THREAD;
    f->previous = NULL;
    Py_ssize_t n = Py_SIZE(fs);
    for (Py_ssize_t i = 0; i < n; i++) {
        f->localsplus[i] = Py_XNewRef(fs->slots[i]);
    }
    f->stacktop = (int)n;
}

static PyObject *
frame_state_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "frame state takes no keyword arguments");
        return NULL;
    }
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs < 7) {
        PyErr_Format(PyExc_TypeError,
                     "frame state takes at least 7 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *code = PyTuple_GET_ITEM(args, 0);
    PyObject *func = PyTuple_GET_ITEM(args, 1);
    PyObject *locals = PyTuple_GET_ITEM(args, 2);
    PyObject *shim = NULL;
    PyCodeObject *co;
    if (PyUnicode_Check(code)) {
        slp_thread *th = slp_get_thread();
        if (th == NULL) {
            return NULL;
        }
        co = slp_shim_code_by_name(th->si, code);
        if (co == NULL) {
            return NULL;
        }
        shim = code;
        if (func != Py_None || locals != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "a shim frame has no function and no locals");
            return NULL;
        }
    }
    else if (PyCode_Check(code)) {
        co = (PyCodeObject *)code;
        if (!PyFunction_Check(func)) {
            PyErr_Format(PyExc_TypeError,
                         "frame of %R: its function is a '%.200s'",
                         co->co_name, Py_TYPE(func)->tp_name);
            return NULL;
        }
        if (locals == Py_Ellipsis) {
            locals = ((PyFunctionObject *)func)->func_globals;
        }
        if ((co->co_flags & CO_OPTIMIZED) ? locals != Py_None
                                          : locals == Py_None)
        {
            PyErr_Format(PyExc_ValueError,
                         "frame of %R: locals that do not fit its code",
                         co->co_name);
            return NULL;
        }
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "a frame's code must be a code object or the name of "
                     "a resume function, not '%.200s'",
                     Py_TYPE(code)->tp_name);
        return NULL;
    }
    int ints[3];
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyTuple_GET_ITEM(args, 3 + i);
        if (!PyLong_CheckExact(v)) {
            PyErr_Format(PyExc_TypeError,
                         "frame of %R: an int expected, not '%.200s'",
                         co->co_name, Py_TYPE(v)->tp_name);
            return NULL;
        }
        long x = PyLong_AsLong(v);
        if (x == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (x < 0 || x > (i == 1 ? 0xffff : i == 2 ? 1 : Py_SIZE(co) - 1)) {
            PyErr_Format(PyExc_ValueError,
                         "frame of %R: %s %ld out of range", co->co_name,
                         i == 0 ? "offset" : i == 1 ? "return offset"
                                                    : "valid flag", x);
            return NULL;
        }
        ints[i] = (int)x;
    }
    PyObject *mask = PyTuple_GET_ITEM(args, 6);
    if (!PyLong_CheckExact(mask) || _PyLong_Sign(mask) < 0) {
        PyErr_Format(PyExc_TypeError, "frame of %R: a bad NULL mask",
                     co->co_name);
        return NULL;
    }
    Py_ssize_t nvalues = nargs - 7;
    int64_t nbits = _PyLong_NumBits(mask);
    Py_ssize_t max = co->co_nlocalsplus + (ints[2] ? co->co_stacksize : 0);
    if (nbits < 0 || nbits > max) {
        PyErr_Format(PyExc_ValueError, "frame of %R: a bad NULL mask",
                     co->co_name);
        return NULL;
    }
    /* The bits, as bytes, little-endian. */
    unsigned char bits[512];
    unsigned char *b = bits;
    size_t nbytes = (size_t)(max + 8) / 8;
    if (nbytes > sizeof(bits)) {
        b = PyMem_Malloc(nbytes);
        if (b == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    slp_frame_state *fs = NULL;
    if (_PyLong_AsByteArray((PyLongObject *)mask, b, nbytes, 1, 0, 1) < 0) {
        goto done;
    }
    Py_ssize_t nnull = 0;
    for (size_t i = 0; i < nbytes; i++) {
        for (int j = 0; j < 8; j++) {
            nnull += (b[i] >> j) & 1;
        }
    }
    Py_ssize_t nslots = nvalues + nnull;
    if (nslots < co->co_nlocalsplus || nslots > max || nbits > nslots) {
        PyErr_Format(PyExc_ValueError,
                     "frame of %R: %zd slots, where its code has %d locals "
                     "and room for %d on its stack", co->co_name, nslots,
                     co->co_nlocalsplus, ints[2] ? co->co_stacksize : 0);
        goto done;
    }
    fs = frame_state_alloc(nslots);
    if (fs == NULL) {
        goto done;
    }
    fs->code = (PyCodeObject *)Py_NewRef(co);
    fs->shim = Py_XNewRef(shim);
    fs->func = Py_NewRef(func);
    fs->locals = locals == Py_None ? NULL : Py_NewRef(locals);
    fs->index = ints[0];
    fs->return_offset = ints[1];
    fs->valid = ints[2];
    for (Py_ssize_t i = 0, v = 7; i < nslots; i++) {
        if (!((b[i / 8] >> (i % 8)) & 1)) {
            fs->slots[i] = Py_NewRef(PyTuple_GET_ITEM(args, v++));
        }
    }
    PyObject_GC_Track(fs);

done:
    if (b != bits) {
        PyMem_Free(b);
    }
    return (PyObject *)fs;
}

static PyObject *
frame_state_reduce(slp_frame_state *fs, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t n = Py_SIZE(fs);
    Py_ssize_t nvalues = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        nvalues += fs->slots[i] != NULL;
    }
    PyObject *mask = NULL;
    if (n < 63) {
        long bits = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (fs->slots[i] == NULL) {
                bits |= 1L << i;
            }
        }
        mask = PyLong_FromLong(bits);
    }
    else {
        size_t nbytes = (size_t)(n + 7) / 8;
        unsigned char *b = PyMem_Calloc(nbytes, 1);
        if (b == NULL) {
            return PyErr_NoMemory();
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (fs->slots[i] == NULL) {
                b[i / 8] |= (unsigned char)(1 << (i % 8));
            }
        }
        mask = _PyLong_FromByteArray(b, nbytes, 1, 0);
        PyMem_Free(b);
    }
    if (mask == NULL) {
        return NULL;
    }
    PyObject *args = PyTuple_New(7 + nvalues);
    if (args == NULL) {
        Py_DECREF(mask);
        return NULL;
    }
    /* A module's code runs with its globals as its locals: they go by
     * the function, which pickles them by the module's name. */
    PyObject *locals = fs->locals == NULL ? Py_None
        : PyFunction_Check(fs->func)
          && fs->locals == ((PyFunctionObject *)fs->func)->func_globals
        ? Py_Ellipsis : fs->locals;
    PyObject *head[] = {
        fs->shim != NULL ? fs->shim : (PyObject *)fs->code,
        fs->func,
        locals,
    };
    for (int i = 0; i < 3; i++) {
        PyTuple_SET_ITEM(args, i, Py_NewRef(head[i]));
    }
    int ints[] = {fs->index, fs->return_offset, fs->valid};
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyLong_FromLong(ints[i]);
        if (v == NULL) {
            Py_DECREF(mask);
            Py_DECREF(args);
            return NULL;
        }
        PyTuple_SET_ITEM(args, 3 + i, v);
    }
    PyTuple_SET_ITEM(args, 6, mask);
    for (Py_ssize_t i = 0, v = 7; i < n; i++) {
        if (fs->slots[i] != NULL) {
            PyTuple_SET_ITEM(args, v++, Py_NewRef(fs->slots[i]));
        }
    }
    PyObject *res = PyTuple_New(2);
    if (res == NULL) {
        Py_DECREF(args);
        return NULL;
    }
    PyTuple_SET_ITEM(res, 0, Py_NewRef((PyObject *)Py_TYPE(fs)));
    PyTuple_SET_ITEM(res, 1, args);
    return res;
}

static int
frame_state_traverse(slp_frame_state *fs, visitproc visit, void *arg)
{
    Py_VISIT(fs->code);
    Py_VISIT(fs->func);
    Py_VISIT(fs->locals);
    for (Py_ssize_t i = 0; i < Py_SIZE(fs); i++) {
        Py_VISIT(fs->slots[i]);
    }
    return 0;
}

static int
frame_state_clear(slp_frame_state *fs)
{
    Py_CLEAR(fs->code);
    Py_CLEAR(fs->shim);
    Py_CLEAR(fs->func);
    Py_CLEAR(fs->locals);
    for (Py_ssize_t i = 0; i < Py_SIZE(fs); i++) {
        Py_CLEAR(fs->slots[i]);
    }
    return 0;
}

static void
frame_state_dealloc(slp_frame_state *fs)
{
    PyObject_GC_UnTrack(fs);
    (void)frame_state_clear(fs);
    PyObject_GC_Del(fs);
}

static PyObject *
frame_state_repr(slp_frame_state *fs)
{
    return PyUnicode_FromFormat("<frame state of %R at offset %d%s>",
                                fs->code != NULL ? fs->code->co_name
                                                 : Py_None,
                                fs->index, fs->valid ? "" : ", invalid");
}

static PyObject *
frame_state_get_code(slp_frame_state *fs, void *c)
{
    return Py_NewRef(fs->code != NULL ? (PyObject *)fs->code : Py_None);
}

static PyObject *
frame_state_get_valid(slp_frame_state *fs, void *c)
{
    return PyBool_FromLong(fs->valid);
}

static PyGetSetDef frame_state_getset[] = {
    {"f_code", (getter)frame_state_get_code, NULL, "the frame's code", NULL},
    {"valid", (getter)frame_state_get_valid, NULL,
     "False if the frame ran C code when it was saved", NULL},
    {NULL}
};

static PyMethodDef frame_state_methods[] = {
    {"__reduce__", (PyCFunction)frame_state_reduce, METH_NOARGS, NULL},
    {NULL}
};

PyTypeObject slp_FrameState_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "stackless._wrap.frame_state",
    .tp_basicsize = offsetof(slp_frame_state, slots),
    .tp_itemsize = sizeof(PyObject *),
    .tp_dealloc = (destructor)frame_state_dealloc,
    .tp_repr = (reprfunc)frame_state_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR(
        "frame_state(code, func, locals, index, return_offset, valid, "
        "nullmask, *values)\n--\n\n"
        "The state of a suspended frame, as stackless pickles it."),
    .tp_traverse = (traverseproc)frame_state_traverse,
    .tp_clear = (inquiry)frame_state_clear,
    .tp_methods = frame_state_methods,
    .tp_getset = frame_state_getset,
    .tp_new = frame_state_new,
};

/* A frame object made of the state of a frame that ran C code (valid 0)
 * owns a frame that has its locals only.  It is marked so in the first
 * slot past its stack top, which nothing reads (frame_dealloc(),
 * frame_traverse() and frame.clear() stop at stacktop): the address of
 * this static byte, never an object.  A tasklet's state that takes the
 * frame object takes it as invalid (slp_frame_state_of_object()).  A code
 * object without room on its stack has no mark: no instruction of it
 * could have called C code. */
static const char invalid_mark;
#define INVALID_MARK ((PyObject *)(uintptr_t)&invalid_mark)

static int
marked_invalid(_PyInterpreterFrame *f)
{
    PyCodeObject *co = _PyFrame_GetCode(f);
    return f->stacktop < co->co_nlocalsplus + co->co_stacksize
           && f->localsplus[f->stacktop] == INVALID_MARK;
}

/* --- frames of tracebacks (spec P-12) ------------------------------------
 *
 * A traceback refers to a frame object, whose frame has usually finished
 * (the frame object owns a copy of it).  It pickles as the frame's state;
 * it is rebuilt as a frame object that owns its frame, which never runs
 * again: it is there to be looked at (f_locals, f_lineno, f_back). */

PyObject *
slp_frame_state_of_object(PyObject *module, PyObject *ob)
{
    if (!PyFrame_Check(ob)) {
        PyErr_Format(PyExc_TypeError, "not a frame: '%.200s'",
                     Py_TYPE(ob)->tp_name);
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyFrameObject *fo = (PyFrameObject *)ob;
    PyObject *fs = slp_frame_state_of(th->si, fo->f_frame);
    if (fs != NULL && fo->f_frame->owner == FRAME_OWNED_BY_FRAME_OBJECT) {
        /* A finished frame: its stack is gone, whatever stacktop says;
         * or one made of the state of a frame without a stack. */
        ((slp_frame_state *)fs)->valid = fo->f_frame->stacktop >= 0
                                         && !marked_invalid(fo->f_frame);
    }
    return fs;
}

/* Fill fo, a frame object of memory for fs->code's frame, from fs: it
 * owns its frame, which never runs; looked at, its cell variables are
 * read as cells.  -1 with ValueError if they hold none. */
static int
frame_object_fill(PyFrameObject *fo, slp_frame_state *fs)
{
    PyCodeObject *co = fs->code;
    for (int i = 0; i < co->co_nlocalsplus && i < Py_SIZE(fs); i++) {
        _PyLocals_Kind k = _PyLocals_GetKind(co->co_localspluskinds, i);
        if ((k & (CO_FAST_CELL | CO_FAST_FREE)) && fs->slots[i] != NULL
            && !PyCell_Check(fs->slots[i]))
        {
            PyErr_Format(PyExc_ValueError,
                         "frame of %R: the cell variable %R holds no cell",
                         co->co_name,
                         PyTuple_GET_ITEM(co->co_localsplusnames, i));
            return -1;
        }
    }
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)fo->_f_frame_data;
    slp_frame_state_install(fs, f);
    /* As a frame that its frame object owns is (take_ownership() in
     * Python/frame.c, and frame_traverse() asserts it): no link to a
     * caller, none back to its frame object, and complete. */
    f->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    f->frame_obj = NULL;
    if (!fs->valid && f->stacktop < co->co_nlocalsplus + co->co_stacksize) {
        f->localsplus[f->stacktop] = INVALID_MARK;
    }
    if (_PyFrame_IsIncomplete(f)) {
        f->instr_ptr = _PyCode_CODE(co) + co->_co_firsttraceable + 1;
    }
    fo->f_frame = f;
    return 0;
}

PyObject *
slp_frame_object_of_state(PyObject *module, PyObject *const *args,
                          Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "frame_object(state, back) takes 2 arguments");
        return NULL;
    }
    if (!slp_FrameState_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "not a frame state: '%.200s'",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    PyObject *back = args[1];
    if (back != Py_None && !PyFrame_Check(back)) {
        PyErr_Format(PyExc_TypeError, "f_back must be a frame or None, not "
                     "'%.200s'", Py_TYPE(back)->tp_name);
        return NULL;
    }
    slp_frame_state *fs = (slp_frame_state *)args[0];
    if (fs->shim != NULL) {
        PyErr_SetString(PyExc_ValueError, "a shim has no frame object");
        return NULL;
    }
    PyFrameObject *fo = _PyFrame_New_NoTrack(fs->code);
    if (fo == NULL) {
        return NULL;
    }
    fo->f_frame = NULL;
    if (frame_object_fill(fo, fs) < 0) {
        /* Nothing installed: the frame object owns no frame. */
        ((_PyInterpreterFrame *)fo->_f_frame_data)->owner = FRAME_OWNED_BY_THREAD;
        Py_DECREF(fo);
        return NULL;
    }
    fo->f_back = back == Py_None ? NULL : (PyFrameObject *)Py_NewRef(back);
    PyObject_GC_Track(fo);
    return (PyObject *)fo;
}

/* --- tuples with NULLs ----------------------------------------------------
 *
 * Slots that may be NULL pickle as (nulls, *values): a value of None for
 * each NULL, whose index is in the tuple nulls (as 3.7 did). */

PyObject *
slp_into_tuple_with_nulls(PyObject *const *slots, Py_ssize_t n)
{
    Py_ssize_t nnull = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        nnull += slots[i] == NULL;
    }
    PyObject *nulls = PyTuple_New(nnull);
    PyObject *res = nulls != NULL ? PyTuple_New(n + 1) : NULL;
    if (res == NULL) {
        Py_XDECREF(nulls);
        return NULL;
    }
    PyTuple_SET_ITEM(res, 0, nulls);
    for (Py_ssize_t i = 0, j = 0; i < n; i++) {
        if (slots[i] == NULL) {
            PyObject *pos = PyLong_FromSsize_t(i);
            if (pos == NULL) {
                Py_DECREF(res);
                return NULL;
            }
            PyTuple_SET_ITEM(nulls, j++, pos);
        }
        PyTuple_SET_ITEM(res, i + 1,
                         Py_NewRef(slots[i] != NULL ? slots[i] : Py_None));
    }
    return res;
}

Py_ssize_t
slp_from_tuple_with_nulls(PyObject *tup, PyObject **slots, Py_ssize_t max,
                          const char *what)
{
    if (!PyTuple_Check(tup) || PyTuple_GET_SIZE(tup) < 1
        || !PyTuple_Check(PyTuple_GET_ITEM(tup, 0)))
    {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple (nulls, *values) "
                     "whose nulls is a tuple", what);
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(tup) - 1;
    if (n > max) {
        PyErr_Format(PyExc_ValueError, "%s: %zd values, at most %zd", what,
                     n, max);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        slots[i] = PyTuple_GET_ITEM(tup, i + 1);
    }
    PyObject *nulls = PyTuple_GET_ITEM(tup, 0);
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(nulls); j++) {
        PyObject *pos = PyTuple_GET_ITEM(nulls, j);
        if (!PyLong_Check(pos)) {
            PyErr_Format(PyExc_TypeError, "%s: an integer is required as "
                         "the index of a NULL, not '%.200s'", what,
                         Py_TYPE(pos)->tp_name);
            return -1;
        }
        Py_ssize_t i = PyLong_AsSsize_t(pos);
        if (i == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            i = -1;
        }
        if (i < 0 || i >= n) {
            PyErr_Format(PyExc_ValueError, "%s: the index of a NULL, %R, is "
                         "out of range", what, pos);
            return -1;
        }
        if (slots[i] != Py_None && slots[i] != NULL) {
            PyErr_Format(PyExc_ValueError, "%s: slot %zd is NULL and has a "
                         "value", what, i);
            return -1;
        }
        slots[i] = NULL;
    }
    return n;
}

/* --- _wrap.frame: frames in the layout of 3.7 (spec M-21.8, P-5) ----------
 *
 * _wrap.frame.__reduce__(f), for a frame object f, gives
 *
 *     (_wrap.frame, (code,), (code, valid, exec_name, globals, have_locals,
 *                             locals, f_trace, lasti, lineno, blockstack,
 *                             localsplus))
 *
 *   valid       0 if the frame runs or ran C code: its value stack is not
 *               known, localsplus has its locals only
 *   exec_name   how it resumes: "eval_frame" at its instruction (it was
 *               preempted there), "eval_frame_value" after its call, with
 *               the callee's result, "eval_frame_iter" at the target of
 *               its SEND or FOR_ITER, with what the generator it called
 *               returned (return_offset of 3.13's frames)
 *   globals     its globals; the function of the frame is rebuilt from its
 *               code and them (3.13's frames refer to a function: its
 *               closure is in localsplus by then)
 *   f_trace     only with pickle flag 1 (PICKLEFLAGS_PRESERVE_TRACING_STATE)
 *   lasti       where it is, in code units (instr_ptr)
 *   lineno      its line then; not read back (the line is computed)
 *   blockstack  () : 3.13 has none.  Read back, it must be a tuple of int
 *               triples (as 3.7's), and is ignored
 *   localsplus  (nulls, *slots): locals, cells, frees, then the stack
 *
 * _wrap.frame(code) makes an object of the layout of a frame object of
 * that code, and its __setstate__(state) makes it a frame object in place
 * (as 3.7 did): it checks the state (types, counts, ranges: TypeError or
 * ValueError), fills the frame, which the frame object owns, and sets its
 * type to types.FrameType.  This is safe in 3.13 because the object was
 * allocated as _PyFrame_New_NoTrack() allocates one (PyObject_GC_NewVar
 * with PyFrame_Type's basic and item sizes, the frame's slots), both types
 * are static (immortal: no reference to move), neither has a dict, weak
 * references or a free list, and a frame object is complete once f_frame
 * points to its own frame owned by it (FRAME_OWNED_BY_FRAME_OBJECT), as
 * take_ownership() leaves it.  Until then the object is not a frame: it
 * is no subclass of FrameType, so none of the frame's accessors can see
 * it half made.  Such a frame object is for looking at (a traceback's);
 * a tasklet's state takes one as it takes a frame state (tasklets.c).
 */

static const char *const exec_names[] = {
    "eval_frame", "eval_frame_value", "eval_frame_iter", NULL
};

/* The instruction that starts at code unit `index`: its span (1 + its
 * caches) and full oparg.  -1 with ValueError if none starts there. */
static int
instruction_at(PyCodeObject *co, int index, int *span, int *oparg)
{
    PyObject *bytes = _PyCode_GetCode(co);
    if (bytes == NULL) {
        return -1;
    }
    const _Py_CODEUNIT *code = (const _Py_CODEUNIT *)PyBytes_AS_STRING(bytes);
    int n = (int)(PyBytes_GET_SIZE(bytes) / sizeof(_Py_CODEUNIT));
    int found = 0;
    for (int i = 0, ext = 0; i < n && i <= index; ) {
        int op = code[i].op.code;
        int arg = ext | code[i].op.arg;
        if (i == index && op != EXTENDED_ARG) {
            *span = 1 + _PyOpcode_Caches[op];
            *oparg = arg;
            found = 1;
            break;
        }
        ext = op == EXTENDED_ARG ? arg << 8 : 0;
        i += 1 + (op == EXTENDED_ARG ? 0 : _PyOpcode_Caches[op]);
    }
    Py_DECREF(bytes);
    if (!found) {
        PyErr_Format(PyExc_ValueError, "frame of %R: no instruction at "
                     "offset %d", co->co_name, index);
        return -1;
    }
    return 0;
}

static PyObject *
exec_name_of(slp_frame_state *fs)
{
    int which = 0;
    if (fs->return_offset != 0) {
        int span, oparg;
        which = 1;
        if (instruction_at(fs->code, fs->index, &span, &oparg) < 0) {
            if (fs->valid) {
                return NULL;
            }
            PyErr_Clear();
        }
        else if (fs->return_offset == span + oparg && oparg != 0) {
            which = 2;
        }
        else if (fs->return_offset != span && fs->valid) {
            PyErr_Format(PyExc_ValueError, "frame of %R: a return offset %d "
                         "that fits no resume function",
                         fs->code->co_name, fs->return_offset);
            return NULL;
        }
    }
    return PyUnicode_FromString(exec_names[which]);
}

static int
return_offset_of(PyCodeObject *co, int index, PyObject *name, int *ro)
{
    int which = -1;
    if (PyUnicode_Check(name)) {
        for (int i = 0; exec_names[i] != NULL; i++) {
            if (PyUnicode_CompareWithASCIIString(name, exec_names[i]) == 0) {
                which = i;
            }
        }
    }
    if (which < 0) {
        PyErr_Format(PyExc_ValueError, "frame of %R: unknown resume function "
                     "%R", co->co_name, name);
        return -1;
    }
    *ro = 0;
    if (which == 0) {
        return 0;
    }
    int span, oparg;
    if (instruction_at(co, index, &span, &oparg) < 0) {
        return -1;
    }
    *ro = which == 1 ? span : span + oparg;
    if (*ro > 0xffff || index + *ro >= Py_SIZE(co)) {
        PyErr_Format(PyExc_ValueError, "frame of %R: %R does not fit the "
                     "instruction at offset %d", co->co_name, name, index);
        return -1;
    }
    return 0;
}

static PyObject *
wrapframe_reduce(PyObject *Py_UNUSED(null), PyObject *ob)
{
    if (!PyFrame_Check(ob)) {
        PyErr_Format(PyExc_TypeError, "_wrap.frame.__reduce__() takes a "
                     "frame, not '%.200s'", Py_TYPE(ob)->tp_name);
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    PyFrameObject *fo = (PyFrameObject *)ob;
    slp_frame_state *fs =
        (slp_frame_state *)slp_frame_state_of_object(NULL, ob);
    if (fs == NULL) {
        return NULL;
    }
    PyObject *res = NULL;
    PyObject *exec_name = exec_name_of(fs);
    PyObject *localsplus = slp_into_tuple_with_nulls(fs->slots,
                                                     Py_SIZE(fs));
    if (exec_name == NULL || localsplus == NULL) {
        goto done;
    }
    PyObject *globals = PyFunction_Check(fs->func)
        ? ((PyFunctionObject *)fs->func)->func_globals
        : fo->f_frame->f_globals != NULL ? fo->f_frame->f_globals : Py_None;
    PyObject *trace = (th->pickle_flags
                       & SLP_PICKLEFLAGS_PRESERVE_TRACING_STATE)
                      && fo->f_trace != NULL ? fo->f_trace : Py_None;
    res = Py_BuildValue("(O(O)(OiOOiOOii()O))", &slp_WrapFrame_Type,
                        fs->code, fs->code, fs->valid, exec_name, globals,
                        fs->locals != NULL,
                        fs->locals != NULL ? fs->locals : Py_None, trace,
                        fs->index, PyFrame_GetLineNumber(fo), localsplus);

done:
    Py_XDECREF(exec_name);
    Py_XDECREF(localsplus);
    Py_DECREF(fs);
    return res;
}

static int
int_item(PyObject *v, long lo, long hi, const char *what, long *x)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "a frame's %s: an integer is required, "
                     "not '%.200s'", what, Py_TYPE(v)->tp_name);
        return -1;
    }
    *x = PyLong_AsLong(v);
    if ((*x == -1 && PyErr_Occurred()) || *x < lo || *x > hi) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "a frame's %s %R is out of range",
                     what, v);
        return -1;
    }
    return 0;
}

/* 3.7's block stack: a tuple of (type, handler, level), ints. */
static int
check_blockstack(PyObject *bs)
{
    if (!PyTuple_Check(bs)) {
        PyErr_Format(PyExc_TypeError, "a frame's block stack must be a "
                     "tuple, not '%.200s'", Py_TYPE(bs)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(bs); i++) {
        PyObject *b = PyTuple_GET_ITEM(bs, i);
        if (!PyTuple_Check(b) || PyTuple_GET_SIZE(b) != 3) {
            PyErr_SetString(PyExc_TypeError, "a frame's block must be a "
                            "tuple of 3 integers");
            return -1;
        }
        for (int j = 0; j < 3; j++) {
            PyObject *v = PyTuple_GET_ITEM(b, j);
            if (!PyLong_Check(v)) {
                PyErr_Format(PyExc_TypeError, "an integer is required (got "
                             "type %.200s)", Py_TYPE(v)->tp_name);
                return -1;
            }
            int overflow;
            (void)PyLong_AsLongAndOverflow(v, &overflow);
            if (overflow) {
                PyErr_SetString(PyExc_OverflowError,
                                "a frame's block: an int out of range");
                return -1;
            }
        }
    }
    return 0;
}

/* A frame state of the state of 3.7's layout, for the frame of code co. */
static slp_frame_state *
state_of_spec(PyCodeObject *co, PyObject *state, PyObject **trace)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 11) {
        PyErr_SetString(PyExc_TypeError,
                        "a frame's state must be a tuple of 11 items");
        return NULL;
    }
    PyObject *const *it = &PyTuple_GET_ITEM(state, 0);
    if (!PyCode_Check(it[0])) {
        PyErr_Format(PyExc_TypeError, "a frame's code must be code, not "
                     "'%.200s'", Py_TYPE(it[0])->tp_name);
        return NULL;
    }
    if (it[0] != (PyObject *)co) {
        PyErr_Format(PyExc_ValueError, "a state of a frame of %R for a frame "
                     "of %R", ((PyCodeObject *)it[0])->co_name, co->co_name);
        return NULL;
    }
    long valid, have_locals, lasti, lineno;
    int ro;
    if (int_item(it[1], 0, 1, "valid flag", &valid) < 0
        || int_item(it[4], 0, 1, "have_locals flag", &have_locals) < 0
        || int_item(it[7], 0, Py_SIZE(co) - 1, "lasti", &lasti) < 0
        || int_item(it[8], LONG_MIN, LONG_MAX, "lineno", &lineno) < 0)
    {
        return NULL;
    }
    if (!PyDict_Check(it[3])) {
        PyErr_Format(PyExc_TypeError, "a frame's globals must be a dict, not "
                     "'%.200s'", Py_TYPE(it[3])->tp_name);
        return NULL;
    }
    PyObject *locals = it[5];
    if (have_locals ? !PyMapping_Check(locals) : locals != Py_None) {
        PyErr_Format(PyExc_TypeError, "a frame's locals must be %s, not "
                     "'%.200s'", have_locals ? "a mapping" : "None",
                     Py_TYPE(locals)->tp_name);
        return NULL;
    }
    if (it[6] != Py_None && !PyCallable_Check(it[6])) {
        PyErr_Format(PyExc_TypeError, "a frame's f_trace must be callable or "
                     "None, not '%.200s'", Py_TYPE(it[6])->tp_name);
        return NULL;
    }
    if (check_blockstack(it[9]) < 0
        || return_offset_of(co, (int)lasti, it[2], &ro) < 0)
    {
        return NULL;
    }
    Py_ssize_t max = co->co_nlocalsplus + co->co_stacksize;
    PyObject **slots = PyMem_Calloc(max + 1, sizeof(PyObject *));
    if (slots == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    slp_frame_state *fs = NULL;
    PyObject *mask = NULL, *args = NULL, *func = NULL;
    Py_ssize_t n = slp_from_tuple_with_nulls(it[10], slots, max,
                                             "a frame's localsplus");
    if (n < 0) {
        goto done;
    }
    Py_ssize_t nvalues = 0;
    mask = PyLong_FromLong(0);
    for (Py_ssize_t i = 0; mask != NULL && i < n; i++) {
        if (slots[i] != NULL) {
            nvalues++;
            continue;
        }
        PyObject *bit = PyLong_FromSsize_t(i);
        PyObject *one = bit != NULL ? PyNumber_Lshift(_PyLong_GetOne(), bit)
                                    : NULL;
        Py_XDECREF(bit);
        Py_SETREF(mask, one != NULL ? PyNumber_Or(mask, one) : NULL);
        Py_XDECREF(one);
    }
    func = PyFunction_New((PyObject *)co, it[3]);
    args = mask != NULL && func != NULL ? PyTuple_New(7 + nvalues) : NULL;
    if (args == NULL) {
        goto done;
    }
    PyObject *head[] = {(PyObject *)co, func, locals};
    for (int i = 0; i < 3; i++) {
        PyTuple_SET_ITEM(args, i, Py_NewRef(head[i]));
    }
    long ints[] = {lasti, ro, valid};
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyLong_FromLong(ints[i]);
        if (v == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(args, 3 + i, v);
    }
    PyTuple_SET_ITEM(args, 6, Py_NewRef(mask));
    for (Py_ssize_t i = 0, v = 7; i < n; i++) {
        if (slots[i] != NULL) {
            PyTuple_SET_ITEM(args, v++, Py_NewRef(slots[i]));
        }
    }
    fs = (slp_frame_state *)frame_state_new(&slp_FrameState_Type, args, NULL);
    *trace = it[6];

done:
    PyMem_Free(slots);
    Py_XDECREF(mask);
    Py_XDECREF(args);
    Py_XDECREF(func);
    return fs;
}

static PyObject *
wrapframe_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *code;
    if ((kwds != NULL && PyDict_GET_SIZE(kwds) != 0)
        || !PyArg_UnpackTuple(args, "frame", 1, 1, &code))
    {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError,
                            "frame() takes no keyword arguments");
        }
        return NULL;
    }
    if (!PyCode_Check(code)) {
        PyErr_Format(PyExc_TypeError, "frame(code): code must be code, not "
                     "'%.200s'", Py_TYPE(code)->tp_name);
        return NULL;
    }
    PyCodeObject *co = (PyCodeObject *)code;
    PyFrameObject *fo = PyObject_GC_NewVar(
        PyFrameObject, type, co->co_nlocalsplus + co->co_stacksize);
    if (fo == NULL) {
        return NULL;
    }
    fo->f_back = NULL;
    fo->f_frame = NULL;             /* not a frame yet */
    fo->f_trace = NULL;
    fo->f_trace_lines = 1;
    fo->f_trace_opcodes = 0;
    fo->f_lineno = 0;
    fo->f_extra_locals = NULL;
    fo->f_locals_cache = NULL;
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)fo->_f_frame_data;
    f->f_executable = Py_NewRef(code);
    return (PyObject *)fo;
}

static PyObject *
wrapframe_setstate(PyFrameObject *fo, PyObject *state)
{
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)fo->_f_frame_data;
    PyCodeObject *co = (PyCodeObject *)f->f_executable;
    PyObject *trace = NULL;
    slp_frame_state *fs = state_of_spec(co, state, &trace);
    if (fs == NULL) {
        return NULL;
    }
    if (fs->valid && Py_SIZE(fs) < co->co_nlocalsplus) {
        Py_DECREF(fs);
        PyErr_Format(PyExc_ValueError, "frame of %R: fewer slots than "
                     "locals", co->co_name);
        return NULL;
    }
    /* fill() takes its own reference to the code. */
    if (frame_object_fill(fo, fs) < 0) {
        Py_DECREF(fs);
        return NULL;
    }
    Py_DECREF(co);
    Py_DECREF(fs);
    fo->f_trace = trace != Py_None ? Py_NewRef(trace) : NULL;
    Py_SET_TYPE(fo, &PyFrame_Type);
    PyObject_GC_Track(fo);
    Py_RETURN_NONE;
}

static int
wrapframe_traverse(PyFrameObject *fo, visitproc visit, void *arg)
{
    Py_VISIT(((_PyInterpreterFrame *)fo->_f_frame_data)->f_executable);
    return 0;
}

static void
wrapframe_dealloc(PyFrameObject *fo)
{
    /* Never made a frame: it holds its code only. */
    assert(fo->f_frame == NULL);
    Py_XDECREF(((_PyInterpreterFrame *)fo->_f_frame_data)->f_executable);
    PyObject_GC_Del(fo);
}

static PyMethodDef wrapframe_methods[] = {
    {"__reduce__", (PyCFunction)wrapframe_reduce, METH_O | METH_STATIC,
     PyDoc_STR("__reduce__(frame, /)\n--\n\nThe reduce value of a frame "
               "object, in the layout of 3.7.")},
    {"__setstate__", (PyCFunction)wrapframe_setstate, METH_O,
     PyDoc_STR("__setstate__($self, state, /)\n--\n\nMake this object a "
               "frame object (types.FrameType) of the state.")},
    {NULL}
};

PyTypeObject slp_WrapFrame_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "stackless._wrap.frame",
    .tp_basicsize = offsetof(PyFrameObject, _f_frame_data)
                    + offsetof(_PyInterpreterFrame, localsplus),
    .tp_itemsize = sizeof(PyObject *),
    .tp_dealloc = (destructor)wrapframe_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR(
        "frame(code)\n--\n\n"
        "A frame object of code to be: its __setstate__() makes it one "
        "."),
    .tp_traverse = (traverseproc)wrapframe_traverse,
    .tp_methods = wrapframe_methods,
    .tp_new = wrapframe_new,
};
