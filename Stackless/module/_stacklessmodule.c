/* _stackless: the builtin half of the stackless module.
 *
 * Lib/stackless.py star-imports this module and adds what is easier to say
 * in Python (spec M-1).  This file is meant to stay a thin veneer over the
 * core in Stackless/core/: argument parsing (Argument Clinic) and the
 * module's attributes, no scheduling policy.
 *
 * The module is registered in the interpreter's table of builtin modules
 * (Modules/config.c.in, patch build-stackless-core.patch), like _imp and
 * marshal: it is part of the interpreter core, not an extension.
 */

#include "Python.h"
#include "stackless_version.h"

PyDoc_STRVAR(module_doc,
"Builtin support for the stackless module; import stackless instead.\n\
\n\
__version__ -- the version of Stackless (not of Python)");

static int
_stackless_exec(PyObject *module)
{
    if (PyModule_AddStringConstant(module, "__version__",
                                   STACKLESS_VERSION) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot _stackless_slots[] = {
    {Py_mod_exec, _stackless_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL}
};

static struct PyModuleDef _stacklessmodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_stackless",
    .m_doc = module_doc,
    .m_size = 0,
    .m_slots = _stackless_slots,
};

PyMODINIT_FUNC
PyInit__stackless(void)
{
    return PyModuleDef_Init(&_stacklessmodule);
}
