/*
 * Two Linux calls the manager makes once each, without ctypes.
 *
 * Loading ctypes (and libffi behind it) adds about 0.4 MB to the manager's
 * RSS and 2 ms to its start-up, for one prctl() at start-up and one
 * malloc_trim() after the boot. manager/reaper.py and manager/memtrim.py
 * use this module where it was built, and ctypes where it was not.
 */

#define PY_SSIZE_T_CLEAN
/* The stable ABI of Python 3.11: one build serves every later Python. */
#define Py_LIMITED_API 0x030B0000
#include <Python.h>

#include <errno.h>
#include <malloc.h>
#include <sys/prctl.h>

PyDoc_STRVAR(set_child_subreaper_doc,
"set_child_subreaper()\n\n"
"Make this process the reaper of its orphaned descendants\n"
"(prctl PR_SET_CHILD_SUBREAPER); raise OSError when the kernel rejects it.");

static PyObject *
set_child_subreaper(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(trim_doc,
"malloc_trim() -> bool\n\n"
"Return the free pages of the C library's heap to the kernel; True when\n"
"some were released.");

static PyObject *
trim(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
#ifdef __GLIBC__
    return PyBool_FromLong(malloc_trim(0));
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"set_child_subreaper", set_child_subreaper, METH_NOARGS, set_child_subreaper_doc},
    {"malloc_trim", trim, METH_NOARGS, trim_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_linuxcalls",
    .m_doc = "prctl(PR_SET_CHILD_SUBREAPER) and malloc_trim() for the manager, without ctypes.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__linuxcalls(void)
{
    return PyModule_Create(&module_def);
}
