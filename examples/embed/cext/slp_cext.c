/* A C extension module, built by pip against the installed headers: its
 * function call_back(f) calls the Python function f from C.  When f
 * blocks its tasklet on a channel, the switch is hard (this C frame is in
 * the way); f resumes later, and call_back() returns what it returned. */

#include <Python.h>
#include <stackless_api.h>

static PyObject *
call_back(PyObject *module, PyObject *f)
{
    PyObject *r = PyObject_CallNoArgs(f);
    if (r == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Ni)", r, PyStackless_GetRunCount());
}

static PyMethodDef methods[] = {
    {"call_back", call_back, METH_O, "f(), called from C."},
    {NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "slp_cext", NULL, 0, methods,
};

PyMODINIT_FUNC
PyInit_slp_cext(void)
{
    return PyModule_Create(&module);
}
