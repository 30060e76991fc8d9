/* Frames in pickles (spec P-5, P-13).
 *
 * A suspended frame is pickled as an object of the type
 * stackless._wrap.frame, which holds its state and reduces to
 *
 *     _wrap.frame(code, func, locals, index, return_offset, valid,
 *                 nullmask, *values)
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
    .tp_name = "stackless._wrap.frame",
    .tp_basicsize = offsetof(slp_frame_state, slots),
    .tp_itemsize = sizeof(PyObject *),
    .tp_dealloc = (destructor)frame_state_dealloc,
    .tp_repr = (reprfunc)frame_state_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR(
        "frame(code, func, locals, index, return_offset, valid, nullmask, "
        "*values)\n--\n\n"
        "The state of a suspended frame, as stackless pickles it (spec P-5)."),
    .tp_traverse = (traverseproc)frame_state_traverse,
    .tp_clear = (inquiry)frame_state_clear,
    .tp_methods = frame_state_methods,
    .tp_getset = frame_state_getset,
    .tp_new = frame_state_new,
};

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
        /* A finished frame: its stack is gone, whatever stacktop says. */
        ((slp_frame_state *)fs)->valid = fo->f_frame->stacktop >= 0;
    }
    return fs;
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
    PyCodeObject *co = fs->code;
    if (fs->shim != NULL) {
        PyErr_SetString(PyExc_ValueError, "a shim has no frame object");
        return NULL;
    }
    /* Looked at, the frame's cell variables are read as cells. */
    for (int i = 0; i < co->co_nlocalsplus && i < Py_SIZE(fs); i++) {
        _PyLocals_Kind k = _PyLocals_GetKind(co->co_localspluskinds, i);
        if ((k & (CO_FAST_CELL | CO_FAST_FREE)) && fs->slots[i] != NULL
            && !PyCell_Check(fs->slots[i]))
        {
            PyErr_Format(PyExc_ValueError,
                         "frame of %R: the cell variable %R holds no cell",
                         co->co_name,
                         PyTuple_GET_ITEM(co->co_localsplusnames, i));
            return NULL;
        }
    }
    PyFrameObject *fo = _PyFrame_New_NoTrack(co);
    if (fo == NULL) {
        return NULL;
    }
    _PyInterpreterFrame *f = (_PyInterpreterFrame *)fo->_f_frame_data;
    slp_frame_state_install(fs, f);
    /* As take_ownership() in Python/frame.c leaves a frame that its frame
     * object owns: no link back, and complete. */
    f->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    f->frame_obj = NULL;
    if (_PyFrame_IsIncomplete(f)) {
        f->instr_ptr = _PyCode_CODE(co) + co->_co_firsttraceable + 1;
    }
    fo->f_frame = f;
    fo->f_back = back == Py_None ? NULL : (PyFrameObject *)Py_NewRef(back);
    PyObject_GC_Track(fo);
    return (PyObject *)fo;
}
