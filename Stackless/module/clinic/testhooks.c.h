/*[clinic input]
preserve
[clinic start generated code]*/

#include "pycore_modsupport.h"    // _PyArg_CheckPositional()

PyDoc_STRVAR(_stackless__gc_track__doc__,
"_gc_track($module, obj, /)\n"
"--\n"
"\n"
"Make the garbage collector track obj, if it can hold references.\n"
"\n"
"Objects of types without garbage collection support, immortal ones and\n"
"ones tracked already are left alone.");

#define _STACKLESS__GC_TRACK_METHODDEF    \
    {"_gc_track", (PyCFunction)_stackless__gc_track, METH_O, _stackless__gc_track__doc__},

PyDoc_STRVAR(_stackless__gc_untrack__doc__,
"_gc_untrack($module, obj, /)\n"
"--\n"
"\n"
"Make the garbage collector stop tracking obj.\n"
"\n"
"Objects that it does not track are left alone.  An object untracked\n"
"here stays alive until _gc_track(obj).");

#define _STACKLESS__GC_UNTRACK_METHODDEF    \
    {"_gc_untrack", (PyCFunction)_stackless__gc_untrack, METH_O, _stackless__gc_untrack__doc__},

PyDoc_STRVAR(_stackless__pickle_moduledict__doc__,
"_pickle_moduledict($module, pickler, d, /)\n"
"--\n"
"\n"
"How the Python pickler saves d, if it is the __dict__ of a module.\n"
"\n"
"For the __dict__ of a module of sys.modules, (getattr, (module,\n"
"\'__dict__\')); else None.  The modules\' dicts are looked up once per\n"
"pickler and kept in its attribute module_dict_ids, a dict.");

#define _STACKLESS__PICKLE_MODULEDICT_METHODDEF    \
    {"_pickle_moduledict", _PyCFunction_CAST(_stackless__pickle_moduledict), METH_FASTCALL, _stackless__pickle_moduledict__doc__},

static PyObject *
_stackless__pickle_moduledict_impl(PyObject *module, PyObject *pickler,
                                   PyObject *d);

static PyObject *
_stackless__pickle_moduledict(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *return_value = NULL;
    PyObject *pickler;
    PyObject *d;

    if (!_PyArg_CheckPositional("_pickle_moduledict", nargs, 2, 2)) {
        goto exit;
    }
    pickler = args[0];
    if (!PyDict_Check(args[1])) {
        _PyArg_BadArgument("_pickle_moduledict", "argument 2", "dict", args[1]);
        goto exit;
    }
    d = args[1];
    return_value = _stackless__pickle_moduledict_impl(module, pickler, d);

exit:
    return return_value;
}
/*[clinic end generated code: output=5f9ddc17e1da220c input=a9049054013a1b77]*/
