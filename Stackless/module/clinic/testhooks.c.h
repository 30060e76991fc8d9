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

PyDoc_STRVAR(_stackless__stack_depths__doc__,
"_stack_depths($module, code, /)\n"
"--\n"
"\n"
"The depth of the value stack before each code unit of code.\n"
"\n"
"A list, -1 where there is no instruction (a cache) or none is reached;\n"
"the analysis that the collector and the unpickler rely on.  ValueError\n"
"if the depths cannot be followed through the code.");

#define _STACKLESS__STACK_DEPTHS_METHODDEF    \
    {"_stack_depths", (PyCFunction)_stackless__stack_depths, METH_O, _stackless__stack_depths__doc__},

static PyObject *
_stackless__stack_depths_impl(PyObject *module, PyObject *code);

static PyObject *
_stackless__stack_depths(PyObject *module, PyObject *arg)
{
    PyObject *return_value = NULL;
    PyObject *code;

    if (!PyObject_TypeCheck(arg, &PyCode_Type)) {
        _PyArg_BadArgument("_stack_depths", "argument", (&PyCode_Type)->tp_name, arg);
        goto exit;
    }
    code = arg;
    return_value = _stackless__stack_depths_impl(module, code);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless__check_code_flow__doc__,
"_check_code_flow($module, code, entries, /)\n"
"--\n"
"\n"
"Check code, as the shims made by hand are checked.\n"
"\n"
"entries is a sequence of (index, depth) pairs: where a frame of the code\n"
"starts or is resumed, with its stack\'s depth there.  ValueError if the\n"
"depths differ between paths, leave 0..co_stacksize, or a path runs\n"
"through something the compiler does not emit or off the end.");

#define _STACKLESS__CHECK_CODE_FLOW_METHODDEF    \
    {"_check_code_flow", _PyCFunction_CAST(_stackless__check_code_flow), METH_FASTCALL, _stackless__check_code_flow__doc__},

static PyObject *
_stackless__check_code_flow_impl(PyObject *module, PyObject *code,
                                 PyObject *entries);

static PyObject *
_stackless__check_code_flow(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *return_value = NULL;
    PyObject *code;
    PyObject *entries;

    if (!_PyArg_CheckPositional("_check_code_flow", nargs, 2, 2)) {
        goto exit;
    }
    if (!PyObject_TypeCheck(args[0], &PyCode_Type)) {
        _PyArg_BadArgument("_check_code_flow", "argument 1", (&PyCode_Type)->tp_name, args[0]);
        goto exit;
    }
    code = args[0];
    entries = args[1];
    return_value = _stackless__check_code_flow_impl(module, code, entries);

exit:
    return return_value;
}

PyDoc_STRVAR(_stackless__shim_codes__doc__,
"_shim_codes($module, /)\n"
"--\n"
"\n"
"The code objects of the shims, by the names pickles give them.\n"
"\n"
"Each is checked when it is made: SystemError if one is wrong.");

#define _STACKLESS__SHIM_CODES_METHODDEF    \
    {"_shim_codes", (PyCFunction)_stackless__shim_codes, METH_NOARGS, _stackless__shim_codes__doc__},

static PyObject *
_stackless__shim_codes_impl(PyObject *module);

static PyObject *
_stackless__shim_codes(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return _stackless__shim_codes_impl(module);
}
/*[clinic end generated code: output=a0461870f8642ea1 input=a9049054013a1b77]*/
