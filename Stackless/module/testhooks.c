/* Test and introspection hooks of _stackless (spec M-21.4, M-21.11).
 *
 * The original's unit tests reach into internals through these:
 *
 *   _test_nostacklesscall   the instance of test_nostacklesscall_type, a
 *                           callable that calls its first argument as any
 *                           C code does: one nesting level deeper, so that
 *                           every switch inside is hard;
 *   _pickle_moduledict      how the Python pickler saves the __dict__ of a
 *                           module of sys.modules: by reference (P-9);
 *   _gc_track, _gc_untrack  the garbage collector's tracking of an object
 *                           (an untracked object is kept alive until it is
 *                           tracked again: see below).
 *
 * The type has neither the stackless protocol (its instances are called
 * through tp_call, never softly; Py_TPFLAGS_HAVE_STACKLESS_CALL is clear)
 * nor __get__: stored as a class's __call__ or __init__, it is called
 * without the instance.
 */

#include "Python.h"
#include "../core/stackless_impl.h"   // and stackless_api.h
#include "pycore_object.h"         // _PyObject_HEAD_INIT()

/*[clinic input]
module _stackless
[clinic start generated code]*/
/*[clinic end generated code: output=da39a3ee5e6b4b0d input=9edda6c2b9dbd340]*/

#include "clinic/testhooks.c.h"

/* --- test_nostacklesscall_type ------------------------------------------ */

/* obj(f, *args, post_callback=None, set_try_stackless=False, **kw) */
static PyObject *
nostacklesscall_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    /* Whether our caller granted the stackless protocol: it never does
     * (the eval loop calls tp_call without it), and the flag is taken. */
    STACKLESS_GETARG();
    PyObject *kw = NULL, *post_callback = NULL, *try_obj = NULL;
    PyObject *func_args = NULL, *result = NULL;
    int try_stackless = 0;

    assert(PyTuple_Check(args));
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "test_nostacklesscall() requires a function (or "
                        "None) as its first argument");
        return NULL;
    }
    /* A copy: the caller's dict stays as it was. */
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        kw = PyDict_Copy(kwargs);
        if (kw == NULL
            || PyDict_PopString(kw, "post_callback", &post_callback) < 0
            || PyDict_PopString(kw, "set_try_stackless", &try_obj) < 0)
        {
            goto done;
        }
        if (try_obj != NULL) {
            try_stackless = PyObject_IsTrue(try_obj);
            if (try_stackless < 0) {
                goto done;
            }
        }
        if (PyDict_GET_SIZE(kw) == 0) {
            Py_CLEAR(kw);
        }
    }
    PyObject *func = PyTuple_GET_ITEM(args, 0);
    func_args = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    if (func_args == NULL) {
        goto done;
    }
    int flag_now;
    if (func == Py_None) {
        result = Py_NewRef(func_args);
        flag_now = _PyStackless_TRY_STACKLESS;
    }
    else {
        /* A plain call from C: a Python function runs in an eval loop of
         * its own, one nesting level deeper. */
        _PyStackless_TRY_STACKLESS = try_stackless;
        result = PyObject_Call(func, func_args, kw);
        flag_now = _PyStackless_TRY_STACKLESS;
    }
    _PyStackless_TRY_STACKLESS = 0;
    if (result == NULL || post_callback == NULL) {
        goto done;
    }
    PyObject *cb_args = Py_BuildValue("(Nii)", result, stackless, flag_now);
    result = NULL;
    if (cb_args == NULL) {
        goto done;
    }
    result = PyObject_Call(post_callback, cb_args, kw);
    Py_DECREF(cb_args);
done:
    Py_XDECREF(func_args);
    Py_XDECREF(try_obj);
    Py_XDECREF(post_callback);
    Py_XDECREF(kw);
    return result;
}

PyDoc_STRVAR(nostacklesscall_doc,
"The type of _stackless._test_nostacklesscall, a callable for tests.\n"
"\n"
"_test_nostacklesscall(f, *args, post_callback=None,\n"
"                      set_try_stackless=False, **kwargs)\n"
"calls f(*args, **kwargs) from C, without the stackless protocol: f runs\n"
"one nesting level deeper, and every switch inside it is hard.  With f\n"
"None the result is args.  With post_callback it returns\n"
"post_callback(result, entry_flag, flag_now, **kwargs): whether the caller\n"
"allowed a soft switch, and whether that permission was still given after\n"
"f returned.  set_try_stackless grants the permission to the call of f.\n"
"The type has no __get__: as a class's __call__ or __init__ it is called\n"
"without the instance.");

PyTypeObject slp_TestNoStacklessCall_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless.test_nostacklesscall_type",
    .tp_basicsize = sizeof(PyObject),
    .tp_call = nostacklesscall_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .tp_doc = nostacklesscall_doc,
};

/* The single instance, static as the type: it outlives interpreters. */
static struct {
    PyObject_HEAD
} nostacklesscall_object = {
    _PyObject_HEAD_INIT(&slp_TestNoStacklessCall_Type)
};

/* --- the garbage collector ------------------------------------------------ */

/* Many types' deallocators unlink their objects from the collector's list
 * without asking (_PyObject_GC_UNTRACK()): CPython never untracks objects
 * of those types, and one freed untracked would crash.  So _gc_untrack()
 * keeps what it untracks alive, in a dict id -> object held by an object
 * of this type (module attribute _gc_untracked), until _gc_track(); when
 * the holder goes (at the latest when the module's dict is cleared at
 * finalization), it tracks them again before it lets them go. */
typedef struct {
    PyObject_HEAD
    PyObject *objects;          /* dict: id(obj) -> obj */
} untracked_holder;

static void
holder_dealloc(untracked_holder *h)
{
    PyObject *d = h->objects;
    if (d != NULL) {
        Py_ssize_t pos = 0;
        PyObject *key, *obj;
        while (PyDict_Next(d, &pos, &key, &obj)) {
            if (!PyObject_GC_IsTracked(obj)) {
                PyObject_GC_Track(obj);
            }
        }
        Py_DECREF(d);
    }
    Py_TYPE(h)->tp_free((PyObject *)h);
}

PyTypeObject slp_GCUntrackedHolder_Type = {
    PyVarObject_HEAD_INIT(&PyType_Type, 0)
    .tp_name = "_stackless._gc_untracked_holder",
    .tp_basicsize = sizeof(untracked_holder),
    .tp_dealloc = (destructor)holder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .tp_doc = PyDoc_STR("What _stackless._gc_untrack() untracked, kept "
                        "alive until _gc_track()."),
};

#define HOLDER_NAME "_gc_untracked"

/* The module's holder (borrowed from the module's dict), made if need
 * be; NULL with an exception. */
static untracked_holder *
get_holder(PyObject *module)
{
    PyObject *dict = PyModule_GetDict(module);      /* borrowed */
    PyObject *h;
    if (dict == NULL || PyDict_GetItemStringRef(dict, HOLDER_NAME, &h) < 0) {
        return NULL;
    }
    if (h != NULL && Py_IS_TYPE(h, &slp_GCUntrackedHolder_Type)) {
        Py_DECREF(h);                   /* the module's dict keeps it */
        return (untracked_holder *)h;
    }
    Py_XDECREF(h);
    untracked_holder *nh = PyObject_New(untracked_holder,
                                        &slp_GCUntrackedHolder_Type);
    if (nh == NULL) {
        return NULL;
    }
    nh->objects = PyDict_New();
    if (nh->objects == NULL
        || PyDict_SetItemString(dict, HOLDER_NAME, (PyObject *)nh) < 0)
    {
        Py_DECREF(nh);
        return NULL;
    }
    Py_DECREF(nh);
    return nh;
}

/*[clinic input]
_stackless._gc_track

    obj: object
    /

Make the garbage collector track obj, if it can hold references.

Objects of types without garbage collection support, immortal ones and
ones tracked already are left alone.
[clinic start generated code]*/

static PyObject *
_stackless__gc_track(PyObject *module, PyObject *obj)
/*[clinic end generated code: output=459b09dde6f33907 input=968795fe1eb97933]*/
{
    untracked_holder *h = get_holder(module);
    if (h == NULL) {
        return NULL;
    }
    PyObject *id = PyLong_FromVoidPtr(obj);
    if (id == NULL) {
        return NULL;
    }
    if (PyObject_IS_GC(obj) && !PyObject_GC_IsTracked(obj)
        && !_Py_IsImmortal(obj))
    {
        PyObject_GC_Track(obj);
    }
    /* Tracked: safe to let go. */
    PyObject *held;
    int r = PyDict_Pop(h->objects, id, &held);
    Py_DECREF(id);
    if (r < 0) {
        return NULL;
    }
    Py_XDECREF(held);
    Py_RETURN_NONE;
}

/*[clinic input]
_stackless._gc_untrack

    obj: object
    /

Make the garbage collector stop tracking obj.

Objects that it does not track are left alone.  An object untracked
here stays alive until _gc_track(obj).
[clinic start generated code]*/

static PyObject *
_stackless__gc_untrack(PyObject *module, PyObject *obj)
/*[clinic end generated code: output=401140c1fbf7764a input=f5925db947a04884]*/
{
    if (!PyObject_GC_IsTracked(obj)) {
        Py_RETURN_NONE;
    }
    untracked_holder *h = get_holder(module);
    if (h == NULL) {
        return NULL;
    }
    PyObject *id = PyLong_FromVoidPtr(obj);
    if (id == NULL) {
        return NULL;
    }
    int r = PyDict_SetItem(h->objects, id, obj);
    Py_DECREF(id);
    if (r < 0) {
        return NULL;
    }
    PyObject_GC_UnTrack(obj);
    Py_RETURN_NONE;
}

/* --- module dicts for the Python pickler ---------------------------------- */

/* id(module.__dict__) -> module, for the modules of sys.modules. */
static PyObject *
module_dict_ids(void)
{
    PyObject *ids = PyDict_New();
    PyObject *modules = PySys_GetObject("modules");     /* borrowed */
    if (ids == NULL) {
        return NULL;
    }
    if (modules == NULL || !PyDict_Check(modules)) {
        return ids;
    }
    PyObject *values = PyDict_Values(modules);  /* sys.modules may change */
    if (values == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *mod = PyList_GET_ITEM(values, i);
        if (!PyModule_Check(mod)) {
            continue;
        }
        PyObject *dict = PyModule_GetDict(mod);         /* borrowed */
        PyObject *id = dict != NULL ? PyLong_FromVoidPtr(dict) : NULL;
        if (id == NULL || PyDict_SetItem(ids, id, mod) < 0) {
            Py_XDECREF(id);
            Py_DECREF(values);
            goto error;
        }
        Py_DECREF(id);
    }
    Py_DECREF(values);
    return ids;
error:
    Py_DECREF(ids);
    return NULL;
}

/*[clinic input]
_stackless._pickle_moduledict

    pickler: object
    d: object(subclass_of='&PyDict_Type')
    /

How the Python pickler saves d, if it is the __dict__ of a module.

For the __dict__ of a module of sys.modules, (getattr, (module,
'__dict__')); else None.  The modules' dicts are looked up once per
pickler and kept in its attribute module_dict_ids, a dict.
[clinic start generated code]*/

static PyObject *
_stackless__pickle_moduledict_impl(PyObject *module, PyObject *pickler,
                                   PyObject *d)
/*[clinic end generated code: output=82acf2adbbaa801c input=b689291120f81c0a]*/
{
    PyObject *ids, *mod, *res = NULL;
    if (PyObject_GetOptionalAttrString(pickler, "module_dict_ids",
                                       &ids) < 0)
    {
        return NULL;
    }
    if (ids == NULL) {
        ids = module_dict_ids();
        if (ids == NULL
            || PyObject_SetAttrString(pickler, "module_dict_ids", ids) < 0)
        {
            Py_XDECREF(ids);
            return NULL;
        }
    }
    else if (!PyDict_Check(ids)) {
        PyErr_Format(PyExc_TypeError,
                     "pickler.module_dict_ids must be a dict, not '%.100s'",
                     Py_TYPE(ids)->tp_name);
        Py_DECREF(ids);
        return NULL;
    }
    PyObject *id = PyLong_FromVoidPtr(d);
    if (id == NULL || PyDict_GetItemRef(ids, id, &mod) < 0) {
        goto done;
    }
    if (mod == NULL) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *builtins = PyImport_ImportModule("builtins");
    PyObject *getattr = builtins != NULL
        ? PyObject_GetAttrString(builtins, "getattr") : NULL;
    if (getattr != NULL) {
        res = Py_BuildValue("(O(Os))", getattr, mod, "__dict__");
    }
    Py_XDECREF(getattr);
    Py_XDECREF(builtins);
    Py_DECREF(mod);
done:
    Py_XDECREF(id);
    Py_DECREF(ids);
    return res;
}

/*[clinic input]
_stackless._stack_depths

    code: object(subclass_of='&PyCode_Type')
    /

The depth of the value stack before each code unit of code.

A list, -1 where there is no instruction (a cache) or none is reached;
the analysis that the collector and the unpickler rely on.  ValueError
if the depths cannot be followed through the code.
[clinic start generated code]*/

static PyObject *
_stackless__stack_depths_impl(PyObject *module, PyObject *code)
/*[clinic end generated code: output=4333b0d0f620f211 input=f511df0824669ace]*/
{
    return slp_stack_depths((PyCodeObject *)code);
}

/*[clinic input]
_stackless._check_code_flow

    code: object(subclass_of='&PyCode_Type')
    entries: object
    /

Check code, as the shims made by hand are checked.

entries is a sequence of (index, depth) pairs: where a frame of the code
starts or is resumed, with its stack's depth there.  ValueError if the
depths differ between paths, leave 0..co_stacksize, or a path runs
through something the compiler does not emit or off the end.
[clinic start generated code]*/

static PyObject *
_stackless__check_code_flow_impl(PyObject *module, PyObject *code,
                                 PyObject *entries)
/*[clinic end generated code: output=95e1020bc3252f94 input=a72aea184451fd69]*/
{
    PyObject *seq = PySequence_Fast(entries, "entries must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int (*pairs)[2] = PyMem_Malloc((n > 0 ? n : 1) * sizeof(*pairs));
    if (pairs == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    PyObject *res = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(item)
            || !PyArg_ParseTuple(item, "ii;an entry is (index, depth)",
                                 &pairs[i][0], &pairs[i][1]))
        {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError,
                                "an entry is a tuple (index, depth)");
            }
            goto done;
        }
    }
    if (slp_code_check_flow((PyCodeObject *)code,
                            (const int (*)[2])pairs, (int)n) == 0)
    {
        res = Py_NewRef(Py_None);
    }
done:
    PyMem_Free(pairs);
    Py_DECREF(seq);
    return res;
}

/*[clinic input]
_stackless._shim_codes

The code objects of the shims, by the names pickles give them.

Each is checked when it is made: SystemError if one is wrong.
[clinic start generated code]*/

static PyObject *
_stackless__shim_codes_impl(PyObject *module)
/*[clinic end generated code: output=6f87464e665ce51d input=13f8e56817c72c69]*/
{
    slp_interp *si = slp_get_interp(_PyInterpreterState_GET());
    if (si == NULL) {
        return NULL;
    }
    return slp_shim_codes(si);
}

static PyMethodDef testhooks_functions[] = {
    _STACKLESS__GC_TRACK_METHODDEF
    _STACKLESS__GC_UNTRACK_METHODDEF
    _STACKLESS__PICKLE_MODULEDICT_METHODDEF
    _STACKLESS__STACK_DEPTHS_METHODDEF
    _STACKLESS__CHECK_CODE_FLOW_METHODDEF
    _STACKLESS__SHIM_CODES_METHODDEF
    {NULL}
};

int
slp_add_test_hooks(PyObject *module)
{
    if (PyType_Ready(&slp_GCUntrackedHolder_Type) < 0
        || PyModule_AddType(module, &slp_TestNoStacklessCall_Type) < 0
        || PyModule_AddObjectRef(module, "_test_nostacklesscall",
                                 (PyObject *)&nostacklesscall_object) < 0
        || PyModule_AddFunctions(module, testhooks_functions) < 0)
    {
        return -1;
    }
    return 0;
}
