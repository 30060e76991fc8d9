/* cframes: the entries of a tasklet's reduced frames that are not Python
 * frames (spec M-21.7, P-12, P-13).
 *
 * stackless.cframe (= _stackless.cframe) reduces to
 *
 *     (cframe, (), (valid, exec_name, (nulls, ob1, ob2, ob3), i, n))
 *
 *   valid      0: it stood for C code that ran when it was pickled, whose
 *              state is lost: it comes back as a frame that raises
 *              RuntimeError when its tasklet gets there (P-3)
 *   exec_name  its kind, one of the registry below: an unknown name is a
 *              ValueError (P-13)
 *   nulls      the indexes (0 to 2) of the absent ones of ob1, ob2, ob3,
 *              which are None in the tuple
 *   i, n       two ints (C longs)
 *
 * cframe() makes an empty one; its __setstate__ takes a state once, and
 * checks it: the shape and types (TypeError), the kind and ranges
 * (ValueError), then what the kind says of its objects and ints.  A
 * cframe is data: nothing runs it.  A tasklet's __setstate__ reads it
 * (pickling/tasklets.c): a kind that stands for a frame of the chain
 * gives the frame state to install, which verify.c checks as any; the
 * tracing kind gives the tasklet's trace and profile functions, the
 * initial-call kind its function and arguments (a bound tasklet), the
 * resume-value kind the result its top frame resumes with.
 *
 * The registry: kinds are static data (slp_cframe_kind, see
 * stackless_impl.h), registered by name at module init; registering
 * works at any time, for the C code that adds kinds of its own (the
 * soft-switchable C functions of capi.c).
 */

#include "../core/stackless_impl.h"
#include "pycore_frame.h"

/* --- the registry ------------------------------------------------------ */

#define MAX_KINDS 64

static const slp_cframe_kind *kinds[MAX_KINDS];
static int nkinds;

int
slp_register_cframe_kind(const slp_cframe_kind *kind)
{
    for (int i = 0; i < nkinds; i++) {
        if (kinds[i] == kind) {
            return 0;
        }
        if (strcmp(kinds[i]->exec_name, kind->exec_name) == 0) {
            PyErr_Format(PyExc_ValueError, "a cframe kind %s is registered "
                         "already", kind->exec_name);
            return -1;
        }
    }
    if (nkinds == MAX_KINDS) {
        PyErr_SetString(PyExc_ValueError, "too many cframe kinds");
        return -1;
    }
    if (kind->code != NULL && (kind->reduce == NULL || kind->restore == NULL
                               || kind->waits_at == NULL))
    {
        PyErr_Format(PyExc_ValueError, "cframe kind %s: a kind of frames "
                     "needs reduce, restore and waits_at", kind->exec_name);
        return -1;
    }
    kinds[nkinds++] = kind;
    return 0;
}

static const slp_cframe_kind *
kind_by_name(PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        return NULL;
    }
    for (int i = 0; i < nkinds; i++) {
        if (PyUnicode_CompareWithASCIIString(name, kinds[i]->exec_name) == 0) {
            return kinds[i];
        }
    }
    return NULL;
}

const slp_cframe_kind *
slp_cframe_kind_of_code(slp_interp *si, PyCodeObject *co)
{
    for (int i = 0; i < nkinds; i++) {
        if (kinds[i]->code != NULL) {
            PyCodeObject *c = kinds[i]->code(kinds[i], si);
            if (c == NULL) {
                PyErr_Clear();
            }
            else if (c == co) {
                return kinds[i];
            }
        }
    }
    return NULL;
}

/* For verify.c, through slp_shim_waits_at(): a frame of a registered
 * kind's code waits where the kind says. */
int
slp_cframe_code_waits_at(slp_interp *si, PyCodeObject *co, int index,
                         int return_offset, int depth)
{
    const slp_cframe_kind *kind = slp_cframe_kind_of_code(si, co);
    return kind != NULL && kind->waits_at(kind, si, index, return_offset,
                                          depth);
}

/* --- the type ------------------------------------------------------------ */

PyCFrameObject *
slp_cframe_new(const slp_cframe_kind *kind)
{
    PyCFrameObject *cf = PyObject_GC_New(PyCFrameObject, &PyCFrame_Type);
    if (cf == NULL) {
        return NULL;
    }
    cf->kind = kind;
    cf->ob1 = cf->ob2 = cf->ob3 = NULL;
    cf->i = cf->n = 0;
    cf->valid = 1;
    PyObject_GC_Track(cf);
    return cf;
}

PyObject *
slp_cframe_of_frame(const slp_cframe_kind *kind, slp_interp *si,
                    _PyInterpreterFrame *f)
{
    PyCFrameObject *cf = slp_cframe_new(kind);
    if (cf != NULL && kind->reduce(kind, si, f, cf) < 0) {
        Py_CLEAR(cf);
    }
    return (PyObject *)cf;
}

static PyObject *
cframe_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0
        || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0))
    {
        PyErr_SetString(PyExc_TypeError, "cframe() takes no arguments");
        return NULL;
    }
    return (PyObject *)slp_cframe_new(NULL);
}

static PyObject *
cframe_reduce(PyCFrameObject *cf, PyObject *Py_UNUSED(ignored))
{
    if (cf->kind == NULL) {
        PyErr_SetString(PyExc_ValueError, "an empty cframe does not pickle");
        return NULL;
    }
    PyObject *obs[] = {cf->ob1, cf->ob2, cf->ob3};
    PyObject *params = slp_into_tuple_with_nulls(obs, 3);
    if (params == NULL) {
        return NULL;
    }
    return Py_BuildValue("(O()(isNll))", (PyObject *)Py_TYPE(cf), cf->valid,
                         cf->kind->exec_name, params, cf->i, cf->n);
}

static PyObject *
cframe_setstate(PyCFrameObject *cf, PyObject *state)
{
    if (cf->kind != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this cframe has a state");
        return NULL;
    }
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "a cframe's state must be a tuple of 5 items");
        return NULL;
    }
    PyObject *const *it = &PyTuple_GET_ITEM(state, 0);
    for (int k = 0; k < 5; k += (k == 0 ? 3 : 1)) {
        if (!PyLong_Check(it[k])) {
            PyErr_Format(PyExc_TypeError, "a cframe's %s: an integer is "
                         "required, not '%.200s'",
                         k == 0 ? "valid flag" : k == 3 ? "i" : "n",
                         Py_TYPE(it[k])->tp_name);
            return NULL;
        }
    }
    if (!PyUnicode_Check(it[1])) {
        PyErr_Format(PyExc_TypeError, "a cframe's exec_name must be a str, "
                     "not '%.200s'", Py_TYPE(it[1])->tp_name);
        return NULL;
    }
    const slp_cframe_kind *kind = kind_by_name(it[1]);
    if (kind == NULL) {
        PyErr_Format(PyExc_ValueError, "unknown resume function %R for a "
                     "cframe", it[1]);
        return NULL;
    }
    long ints[3];
    PyObject *const intobs[3] = {it[0], it[3], it[4]};
    for (int k = 0; k < 3; k++) {
        ints[k] = PyLong_AsLong(intobs[k]);
        if (ints[k] == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "a cframe's int %R is out of "
                         "range", intobs[k]);
            return NULL;
        }
    }
    long valid = ints[0], i = ints[1], n = ints[2];
    if (valid < 0 || valid > 1) {
        PyErr_SetString(PyExc_ValueError,
                        "a cframe's valid flag must be 0 or 1");
        return NULL;
    }
    PyObject *obs[3];
    Py_ssize_t nobs = slp_from_tuple_with_nulls(it[2], obs, 3,
                                                "a cframe's objects");
    if (nobs < 0) {
        return NULL;
    }
    if (nobs != 3) {
        PyErr_SetString(PyExc_ValueError,
                        "a cframe's objects must be (nulls, ob1, ob2, ob3)");
        return NULL;
    }
    PyCFrameObject probe = {
        .kind = kind, .ob1 = obs[0], .ob2 = obs[1], .ob3 = obs[2],
        .i = i, .n = n, .valid = (int)valid,
    };
    if (kind->check != NULL && kind->check(kind, &probe) < 0) {
        return NULL;
    }
    cf->ob1 = Py_XNewRef(obs[0]);
    cf->ob2 = Py_XNewRef(obs[1]);
    cf->ob3 = Py_XNewRef(obs[2]);
    cf->i = i;
    cf->n = n;
    cf->valid = (int)valid;
    cf->kind = kind;
    Py_RETURN_NONE;
}

static int
cframe_traverse(PyCFrameObject *cf, visitproc visit, void *arg)
{
    Py_VISIT(cf->ob1);
    Py_VISIT(cf->ob2);
    Py_VISIT(cf->ob3);
    return 0;
}

static int
cframe_clear(PyCFrameObject *cf)
{
    Py_CLEAR(cf->ob1);
    Py_CLEAR(cf->ob2);
    Py_CLEAR(cf->ob3);
    return 0;
}

static void
cframe_dealloc(PyCFrameObject *cf)
{
    PyObject_GC_UnTrack(cf);
    (void)cframe_clear(cf);
    PyObject_GC_Del(cf);
}

static PyObject *
cframe_repr(PyCFrameObject *cf)
{
    if (cf->kind == NULL) {
        return PyUnicode_FromString("<empty cframe>");
    }
    return PyUnicode_FromFormat("<cframe %s%s>", cf->kind->exec_name,
                                cf->valid ? "" : ", invalid");
}

static PyObject *
cframe_get_exec_name(PyCFrameObject *cf, void *c)
{
    if (cf->kind == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(cf->kind->exec_name);
}

static PyObject *
cframe_get_ob(PyCFrameObject *cf, void *c)
{
    PyObject *obs[] = {cf->ob1, cf->ob2, cf->ob3};
    PyObject *ob = obs[(intptr_t)c];
    return Py_NewRef(ob != NULL ? ob : Py_None);
}

static PyObject *
cframe_get_int(PyCFrameObject *cf, void *c)
{
    intptr_t which = (intptr_t)c;
    if (which == 2) {
        return PyBool_FromLong(cf->valid);
    }
    return PyLong_FromLong(which == 0 ? cf->i : cf->n);
}

static PyGetSetDef cframe_getset[] = {
    {"exec_name", (getter)cframe_get_exec_name, NULL,
     "the name of its kind (resume function), or None if empty", NULL},
    {"ob1", (getter)cframe_get_ob, NULL, "object slot 1 (None if absent)",
     (void *)0},
    {"ob2", (getter)cframe_get_ob, NULL, "object slot 2 (None if absent)",
     (void *)1},
    {"ob3", (getter)cframe_get_ob, NULL, "object slot 3 (None if absent)",
     (void *)2},
    {"i", (getter)cframe_get_int, NULL, "int slot i", (void *)0},
    {"n", (getter)cframe_get_int, NULL, "int slot n", (void *)1},
    {"valid", (getter)cframe_get_int, NULL,
     "False if it stood for C code whose state is lost", (void *)2},
    {NULL}
};

static PyMethodDef cframe_methods[] = {
    {"__reduce__", (PyCFunction)cframe_reduce, METH_NOARGS,
     PyDoc_STR("__reduce__($self, /)\n--\n\n(cframe, (), (valid, exec_name, "
               "(nulls, ob1, ob2, ob3), i, n))")},
    {"__setstate__", (PyCFunction)cframe_setstate, METH_O,
     PyDoc_STR("__setstate__($self, state, /)\n--\n\nGive an empty cframe "
               "its state, checked.")},
    {NULL}
};

PyTypeObject PyCFrame_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.cframe",
    .tp_basicsize = sizeof(PyCFrameObject),
    .tp_dealloc = (destructor)cframe_dealloc,
    .tp_repr = (reprfunc)cframe_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PyDoc_STR(
        "cframe()\n--\n\n"
        "An entry of a tasklet's reduced frames that is no Python frame "
        "."),
    .tp_traverse = (traverseproc)cframe_traverse,
    .tp_clear = (inquiry)cframe_clear,
    .tp_methods = cframe_methods,
    .tp_getset = cframe_getset,
    .tp_new = cframe_new,
};

/* --- the kinds a tasklet's state reads ------------------------------------ */

static int
absent(PyObject *ob)
{
    return ob == NULL || ob == Py_None;
}

static int
check_tracing(const slp_cframe_kind *kind, PyCFrameObject *cf)
{
    PyObject *obs[] = {cf->ob1, cf->ob2};
    for (int k = 0; k < 2; k++) {
        if (!absent(obs[k]) && !PyCallable_Check(obs[k])) {
            PyErr_Format(PyExc_TypeError, "slp_restore_tracing: the %s "
                         "function must be callable, not '%.200s'",
                         k == 0 ? "trace" : "profile",
                         Py_TYPE(obs[k])->tp_name);
            return -1;
        }
    }
    if (!absent(cf->ob3)) {
        PyErr_SetString(PyExc_ValueError, "slp_restore_tracing: ob3 must "
                        "be absent");
        return -1;
    }
    return 0;
}

const slp_cframe_kind slp_cframe_tracing = {
    .exec_name = "slp_restore_tracing",
    .check = check_tracing,
};

static int
check_run(const slp_cframe_kind *kind, PyCFrameObject *cf)
{
    if (!cf->valid) {
        /* Its tasklet's function, C code, ran: nothing is left of it. */
        if (!absent(cf->ob1) || !absent(cf->ob2) || !absent(cf->ob3)) {
            PyErr_SetString(PyExc_ValueError, "run_cframe: an invalid one "
                            "has no objects");
            return -1;
        }
        return 0;
    }
    if (cf->ob1 == NULL || !PyCallable_Check(cf->ob1)) {
        PyErr_SetString(PyExc_TypeError,
                        "run_cframe: ob1 must be the function, callable");
        return -1;
    }
    if (cf->ob2 == NULL || !PyTuple_Check(cf->ob2)) {
        PyErr_SetString(PyExc_TypeError,
                        "run_cframe: ob2 must be the arguments, a tuple");
        return -1;
    }
    if (!absent(cf->ob3) && !PyDict_Check(cf->ob3)) {
        PyErr_SetString(PyExc_TypeError, "run_cframe: ob3 must be the "
                        "keyword arguments, a dict, or absent");
        return -1;
    }
    return 0;
}

const slp_cframe_kind slp_cframe_run = {
    .exec_name = "run_cframe",
    .check = check_run,
};

static int
check_resume_value(const slp_cframe_kind *kind, PyCFrameObject *cf)
{
    if (cf->ob1 == NULL || cf->ob2 != NULL || cf->ob3 != NULL
        || !cf->valid)
    {
        PyErr_SetString(PyExc_ValueError, "slp_resume_value: a valid one "
                        "with ob1 alone");
        return -1;
    }
    return 0;
}

const slp_cframe_kind slp_cframe_resume_value = {
    .exec_name = "slp_resume_value",
    .check = check_resume_value,
};

int
slp_cframe_init(void)
{
    if (PyType_Ready(&PyCFrame_Type) < 0
        || slp_register_cframe_kind(&slp_cframe_tracing) < 0
        || slp_register_cframe_kind(&slp_cframe_run) < 0
        || slp_register_cframe_kind(&slp_cframe_resume_value) < 0)
    {
        return -1;
    }
    for (int k = 0; slp_shim_cframe_kinds[k] != NULL; k++) {
        if (slp_register_cframe_kind(slp_shim_cframe_kinds[k]) < 0) {
            return -1;
        }
    }
    return 0;
}
