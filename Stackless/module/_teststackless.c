/* _teststackless: tests of the C API of stackless_api.h (spec A-2).
 *
 * A test-only module built like _testcapi, with the public headers only:
 * what an extension module or an embedding host can do.  Each function of
 * the API has a wrapper of the same name taking Python arguments (None
 * for a NULL pointer where the API allows one), so that Python tests can
 * call it inside a tasklet; the functions run_outside() and friends call
 * them from a C thread that runs no Python code ("outside").  The
 * original project's test helpers (softswitchablefunc, test_cframe,
 * test_cstate, ...) are here too.
 */

#include "Python.h"
#include "stackless_api.h"
#include "pythread.h"

#include <stdlib.h>
#include <time.h>               // nanosleep()

/* --- argument helpers ---------------------------------------------------- */

static int
tasklet_arg(PyObject *o, void *addr)
{
    if (!PyTasklet_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected a tasklet, got %T", o);
        return 0;
    }
    *(PyTaskletObject **)addr = (PyTaskletObject *)o;
    return 1;
}

static int
channel_arg(PyObject *o, void *addr)
{
    if (!PyChannel_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected a channel, got %T", o);
        return 0;
    }
    *(PyChannelObject **)addr = (PyChannelObject *)o;
    return 1;
}

/* None stands for NULL. */
static PyObject *
null_if_none(PyObject *o)
{
    return o == Py_None ? NULL : o;
}

/* An int result of the API: -1 is an error only if an exception is set
 * (getters may return -1). */
static PyObject *
int_result(int r)
{
    if (r == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromLong(r);
}

/* 0 or -1 with an exception: None. */
static PyObject *
status_result(int r)
{
    if (r < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "-1 without an exception");
        }
        return NULL;
    }
    if (r != 0) {
        return PyLong_FromLong(r);
    }
    Py_RETURN_NONE;
}

/* A pointer result that may be NULL without an exception: None. */
static PyObject *
maybe_none(PyObject *o)
{
    if (o == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return o;
}

/* --- tasklets (A-1 .. A-19) ---------------------------------------------- */

static PyObject *
t_new(PyObject *self, PyObject *args)
{
    PyObject *type, *func = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:PyTasklet_New", &type, &func)) {
        return NULL;
    }
    return (PyObject *)PyTasklet_New(
        (PyTypeObject *)null_if_none(type), null_if_none(func));
}

static PyObject *
t_setup(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    PyObject *a = Py_None, *k = Py_None;
    if (!PyArg_ParseTuple(args, "O&|OO:PyTasklet_Setup", tasklet_arg, &t,
                          &a, &k)) {
        return NULL;
    }
    return status_result(PyTasklet_Setup(t, null_if_none(a),
                                         null_if_none(k)));
}

static PyObject *
t_bindex(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    PyObject *f = Py_None, *a = Py_None, *k = Py_None;
    if (!PyArg_ParseTuple(args, "O&|OOO:PyTasklet_BindEx", tasklet_arg, &t,
                          &f, &a, &k)) {
        return NULL;
    }
    return status_result(PyTasklet_BindEx(t, null_if_none(f),
                                          null_if_none(a), null_if_none(k)));
}

static PyObject *
t_bindthread(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    long long id;
    if (!PyArg_ParseTuple(args, "O&L:PyTasklet_BindThread", tasklet_arg,
                          &t, &id)) {
        return NULL;
    }
    return status_result(PyTasklet_BindThread(t, (unsigned long)id));
}

#define TASKLET_STATUS(NAME, CALL)                                        \
    static PyObject *                                                     \
    NAME(PyObject *self, PyObject *arg)                                   \
    {                                                                     \
        PyTaskletObject *t;                                               \
        if (!tasklet_arg(arg, &t)) {                                      \
            return NULL;                                                  \
        }                                                                 \
        return status_result(CALL(t));                                    \
    }

#define TASKLET_INT(NAME, CALL)                                           \
    static PyObject *                                                     \
    NAME(PyObject *self, PyObject *arg)                                   \
    {                                                                     \
        PyTaskletObject *t;                                               \
        if (!tasklet_arg(arg, &t)) {                                      \
            return NULL;                                                  \
        }                                                                 \
        return int_result(CALL(t));                                       \
    }

TASKLET_STATUS(t_run, PyTasklet_Run)
TASKLET_STATUS(t_run_nr, PyTasklet_Run_nr)
TASKLET_STATUS(t_switch, PyTasklet_Switch)
TASKLET_STATUS(t_switch_nr, PyTasklet_Switch_nr)
TASKLET_STATUS(t_remove, PyTasklet_Remove)
TASKLET_STATUS(t_insert, PyTasklet_Insert)
TASKLET_STATUS(t_kill, PyTasklet_Kill)
TASKLET_INT(t_getatomic, PyTasklet_GetAtomic)
TASKLET_INT(t_getignorenesting, PyTasklet_GetIgnoreNesting)
TASKLET_INT(t_getpendingirq, PyTasklet_GetPendingIrq)
TASKLET_INT(t_getblocktrap, PyTasklet_GetBlockTrap)
TASKLET_INT(t_ismain, PyTasklet_IsMain)
TASKLET_INT(t_iscurrent, PyTasklet_IsCurrent)
TASKLET_INT(t_getrecursiondepth, PyTasklet_GetRecursionDepth)
TASKLET_INT(t_getnestinglevel, PyTasklet_GetNestingLevel)
TASKLET_INT(t_alive, PyTasklet_Alive)
TASKLET_INT(t_paused, PyTasklet_Paused)
TASKLET_INT(t_scheduled, PyTasklet_Scheduled)
TASKLET_INT(t_restorable, PyTasklet_Restorable)

static PyObject *
t_raiseexception(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    PyObject *klass, *a = Py_None;
    if (!PyArg_ParseTuple(args, "O&O|O:PyTasklet_RaiseException",
                          tasklet_arg, &t, &klass, &a)) {
        return NULL;
    }
    return status_result(PyTasklet_RaiseException(t, klass,
                                                  null_if_none(a)));
}

static PyObject *
t_throw(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    int pending;
    PyObject *exc, *val = Py_None, *tb = Py_None;
    if (!PyArg_ParseTuple(args, "O&pO|OO:PyTasklet_Throw", tasklet_arg, &t,
                          &pending, &exc, &val, &tb)) {
        return NULL;
    }
    return status_result(PyTasklet_Throw(t, pending, exc, null_if_none(val),
                                         null_if_none(tb)));
}

static PyObject *
t_killex(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    int pending;
    if (!PyArg_ParseTuple(args, "O&p:PyTasklet_KillEx", tasklet_arg, &t,
                          &pending)) {
        return NULL;
    }
    return status_result(PyTasklet_KillEx(t, pending));
}

static PyObject *
t_setatomic(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    int flag;
    if (!PyArg_ParseTuple(args, "O&i:PyTasklet_SetAtomic", tasklet_arg, &t,
                          &flag)) {
        return NULL;
    }
    return int_result(PyTasklet_SetAtomic(t, flag));
}

static PyObject *
t_setignorenesting(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    int flag;
    if (!PyArg_ParseTuple(args, "O&i:PyTasklet_SetIgnoreNesting",
                          tasklet_arg, &t, &flag)) {
        return NULL;
    }
    return int_result(PyTasklet_SetIgnoreNesting(t, flag));
}

static PyObject *
t_getframe(PyObject *self, PyObject *arg)
{
    PyTaskletObject *t;
    if (!tasklet_arg(arg, &t)) {
        return NULL;
    }
    PyObject *f = PyTasklet_GetFrame(t);
    if (f == NULL && PyErr_Occurred()) {
        PyErr_SetString(PyExc_AssertionError,
                        "PyTasklet_GetFrame() set an exception");
        return NULL;
    }
    return maybe_none(f);
}

static PyObject *
t_setblocktrap(PyObject *self, PyObject *args)
{
    PyTaskletObject *t;
    int value;
    if (!PyArg_ParseTuple(args, "O&i:PyTasklet_SetBlockTrap", tasklet_arg,
                          &t, &value)) {
        return NULL;
    }
    PyTasklet_SetBlockTrap(t, value);
    Py_RETURN_NONE;
}

/* --- channels (A-20 .. A-25) --------------------------------------------- */

static PyObject *
ch_new(PyObject *self, PyObject *type)
{
    return (PyObject *)PyChannel_New((PyTypeObject *)null_if_none(type));
}

#define CHANNEL_INT(NAME, CALL)                                           \
    static PyObject *                                                     \
    NAME(PyObject *self, PyObject *arg)                                   \
    {                                                                     \
        PyChannelObject *ch;                                              \
        if (!channel_arg(arg, &ch)) {                                     \
            return NULL;                                                  \
        }                                                                 \
        return int_result(CALL(ch));                                      \
    }

#define CHANNEL_VOID(NAME, CALL)                                          \
    static PyObject *                                                     \
    NAME(PyObject *self, PyObject *arg)                                   \
    {                                                                     \
        PyChannelObject *ch;                                              \
        if (!channel_arg(arg, &ch)) {                                     \
            return NULL;                                                  \
        }                                                                 \
        CALL(ch);                                                         \
        Py_RETURN_NONE;                                                   \
    }

#define CHANNEL_SET(NAME, CALL)                                           \
    static PyObject *                                                     \
    NAME(PyObject *self, PyObject *args)                                  \
    {                                                                     \
        PyChannelObject *ch;                                              \
        int v;                                                            \
        if (!PyArg_ParseTuple(args, "O&i", channel_arg, &ch, &v)) {       \
            return NULL;                                                  \
        }                                                                 \
        CALL(ch, v);                                                      \
        Py_RETURN_NONE;                                                   \
    }

CHANNEL_INT(ch_getclosing, PyChannel_GetClosing)
CHANNEL_INT(ch_getclosed, PyChannel_GetClosed)
CHANNEL_INT(ch_getpreference, PyChannel_GetPreference)
CHANNEL_INT(ch_getscheduleall, PyChannel_GetScheduleAll)
CHANNEL_INT(ch_getbalance, PyChannel_GetBalance)
CHANNEL_VOID(ch_close, PyChannel_Close)
CHANNEL_VOID(ch_open, PyChannel_Open)
CHANNEL_SET(ch_setpreference, PyChannel_SetPreference)
CHANNEL_SET(ch_setscheduleall, PyChannel_SetScheduleAll)

static PyObject *
ch_send(PyObject *self, PyObject *args)
{
    PyChannelObject *ch;
    PyObject *v;
    if (!PyArg_ParseTuple(args, "O&O:PyChannel_Send", channel_arg, &ch,
                          &v)) {
        return NULL;
    }
    return status_result(PyChannel_Send(ch, v));
}

static PyObject *
ch_send_nr(PyObject *self, PyObject *args)
{
    PyChannelObject *ch;
    PyObject *v;
    if (!PyArg_ParseTuple(args, "O&O:PyChannel_Send_nr", channel_arg, &ch,
                          &v)) {
        return NULL;
    }
    return status_result(PyChannel_Send_nr(ch, v));
}

static PyObject *
ch_receive(PyObject *self, PyObject *arg)
{
    PyChannelObject *ch;
    if (!channel_arg(arg, &ch)) {
        return NULL;
    }
    return PyChannel_Receive(ch);
}

static PyObject *
ch_receive_nr(PyObject *self, PyObject *arg)
{
    PyChannelObject *ch;
    if (!channel_arg(arg, &ch)) {
        return NULL;
    }
    return PyChannel_Receive_nr(ch);
}

static PyObject *
ch_sendexception(PyObject *self, PyObject *args)
{
    PyChannelObject *ch;
    PyObject *klass, *a = Py_None;
    if (!PyArg_ParseTuple(args, "O&O|O:PyChannel_SendException",
                          channel_arg, &ch, &klass, &a)) {
        return NULL;
    }
    return status_result(PyChannel_SendException(ch, klass,
                                                 null_if_none(a)));
}

static PyObject *
ch_sendthrow(PyObject *self, PyObject *args)
{
    PyChannelObject *ch;
    PyObject *exc, *val = Py_None, *tb = Py_None;
    if (!PyArg_ParseTuple(args, "O&O|OO:PyChannel_SendThrow", channel_arg,
                          &ch, &exc, &val, &tb)) {
        return NULL;
    }
    return status_result(PyChannel_SendThrow(ch, exc, null_if_none(val),
                                             null_if_none(tb)));
}

static PyObject *
ch_getqueue(PyObject *self, PyObject *arg)
{
    PyChannelObject *ch;
    if (!channel_arg(arg, &ch)) {
        return NULL;
    }
    return PyChannel_GetQueue(ch);
}

/* --- the scheduler (A-26, A-28 .. .. A-40) ------------------- */

static PyObject *
s_schedule(PyObject *self, PyObject *args)
{
    PyObject *retval = NULL;
    int remove = 0;
    if (!PyArg_ParseTuple(args, "|Op:PyStackless_Schedule", &retval,
                          &remove)) {
        return NULL;
    }
    return PyStackless_Schedule(retval, remove);
}

static PyObject *
s_schedule_nr(PyObject *self, PyObject *args)
{
    PyObject *retval = NULL;
    int remove = 0;
    if (!PyArg_ParseTuple(args, "|Op:PyStackless_Schedule_nr", &retval,
                          &remove)) {
        return NULL;
    }
    PyObject *r = PyStackless_Schedule_nr(retval, remove);
    if (STACKLESS_UNWINDING(r)) {
        PyErr_SetString(PyExc_AssertionError, "unwound without permission");
        return NULL;
    }
    return r;
}

static PyObject *
s_getruncount(PyObject *self, PyObject *unused)
{
    return int_result(PyStackless_GetRunCount());
}

static PyObject *
s_getcurrent(PyObject *self, PyObject *unused)
{
    return maybe_none(PyStackless_GetCurrent());
}

static PyObject *
s_getcurrentid(PyObject *self, PyObject *unused)
{
    unsigned long id;
    Py_BEGIN_ALLOW_THREADS
    id = PyStackless_GetCurrentId();    /* needs no GIL */
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLong(id);
}

static PyObject *
s_runwatchdog(PyObject *self, PyObject *args)
{
    long timeout;
    if (!PyArg_ParseTuple(args, "l:PyStackless_RunWatchdog", &timeout)) {
        return NULL;
    }
    return PyStackless_RunWatchdog(timeout);
}

static PyObject *
s_runwatchdogex(PyObject *self, PyObject *args)
{
    long timeout;
    int flags;
    if (!PyArg_ParseTuple(args, "li:PyStackless_RunWatchdogEx", &timeout,
                          &flags)) {
        return NULL;
    }
    return PyStackless_RunWatchdogEx(timeout, flags);
}

static PyObject *
s_setchannelcallback(PyObject *self, PyObject *cb)
{
    return status_result(PyStackless_SetChannelCallback(null_if_none(cb)));
}

static PyObject *
s_setschedulecallback(PyObject *self, PyObject *cb)
{
    return status_result(PyStackless_SetScheduleCallback(null_if_none(cb)));
}

/* The C schedule hook: it appends (from, to) to `fast_log`. */
static PyObject *fast_log;

static int
fast_hook(PyTaskletObject *from, PyTaskletObject *to)
{
    PyObject *item = Py_BuildValue("(OO)", from ? (PyObject *)from : Py_None,
                                   to ? (PyObject *)to : Py_None);
    if (item == NULL) {
        return -1;
    }
    int r = PyList_Append(fast_log, item);
    Py_DECREF(item);
    return r;
}

static int
failing_hook(PyTaskletObject *from, PyTaskletObject *to)
{
    return -1;
}

/* set_fast_callback(0): remove; 1: log into the returned list; 2: a hook
 * that fails. */
static PyObject *
s_setschedulefastcallback(PyObject *self, PyObject *arg)
{
    long how = PyLong_AsLong(arg);
    if (how == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (how == 1) {
        Py_XSETREF(fast_log, PyList_New(0));
        if (fast_log == NULL) {
            return NULL;
        }
        PyStackless_SetScheduleFastcallback(fast_hook);
        return Py_NewRef(fast_log);
    }
    PyStackless_SetScheduleFastcallback(how == 2 ? failing_hook : NULL);
    Py_RETURN_NONE;
}

static PyObject *
s_call_main(PyObject *self, PyObject *args)
{
    PyObject *func, *a = Py_None, *k = Py_None;
    if (!PyArg_ParseTuple(args, "O|OO:PyStackless_Call_Main", &func, &a,
                          &k)) {
        return NULL;
    }
    return PyStackless_Call_Main(func, null_if_none(a), null_if_none(k));
}

/* --- outside: C code of a thread that runs no Python code ---------------
 *
 * run_outside(func, *args) calls func(*args) through the given API entry
 * from a new C thread, with no Python frame, and returns its result (or
 * raises its exception).  The caller waits with the GIL released. */

typedef struct {
    int how;
    PyObject *func;
    PyObject *args;
    PyObject *result;
    PyObject *exc;
    PyThread_type_lock done;
} outside_call;

enum {
    OUTSIDE_CALL_MAIN, OUTSIDE_CALLMETHOD_MAIN, OUTSIDE_CALLCMETHOD_MAIN,
    OUTSIDE_SCHEDULE_ALL, OUTSIDE_API, OUTSIDE_DIRECT
};

/* OUTSIDE_API: C code with no Python frame drives the API: a channel, a
 * tasklet running receiver(ch) (Python), three values sent from C (the
 * caller, the thread's main tasklet, blocks and switches each time), a
 * schedule, the tasklet's end.  Returns a log of what C saw. */
static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    int r = PyList_Append(list, item);
    Py_DECREF(item);
    return r;
}

static PyObject *
outside_api(PyObject *receiver)
{
    PyObject *log = PyList_New(0);
    PyChannelObject *ch = PyChannel_New(NULL);
    PyTaskletObject *t = PyTasklet_New(NULL, receiver);
    PyObject *args = ch != NULL ? PyTuple_Pack(1, (PyObject *)ch) : NULL;
    PyObject *cur = NULL, *r = NULL;
    if (log == NULL || t == NULL || args == NULL
        || PyTasklet_Setup(t, args, NULL) < 0)
    {
        goto done;
    }
    cur = PyStackless_GetCurrent();
    if (cur == NULL || append_new(log, Py_BuildValue(
            "(siii)", "before", PyStackless_GetRunCount(),
            PyTasklet_IsMain((PyTaskletObject *)cur),
            PyTasklet_Scheduled(t))) < 0)
    {
        goto done;
    }
    for (int i = 0; i < 3; i++) {
        PyObject *v = PyLong_FromLong(i);
        if (v == NULL || PyChannel_Send(ch, v) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        Py_DECREF(v);
    }
    r = PyStackless_Schedule(NULL, 0);
    if (r == NULL) {
        goto done;
    }
    Py_CLEAR(r);
    if (append_new(log, Py_BuildValue(
            "(siii)", "after", PyStackless_GetRunCount(),
            PyTasklet_Alive(t), PyChannel_GetBalance(ch))) < 0)
    {
        goto done;
    }
    r = Py_NewRef(log);
done:
    Py_XDECREF(cur);
    Py_XDECREF(args);
    Py_XDECREF(t);
    Py_XDECREF(ch);
    Py_XDECREF(log);
    return r;
}

static PyObject *
cmethod_target(PyObject *self, PyObject *args)
{
    /* Called through PyStackless_CallCMethod_Main(): self(*args). */
    return PyObject_Call(self, args, NULL);
}

static PyMethodDef cmethod_def = {
    "cmethod_target", cmethod_target, METH_VARARGS, NULL
};

static void
outside_thread(void *arg)
{
    outside_call *oc = (outside_call *)arg;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = NULL;
    switch (oc->how) {
    case OUTSIDE_CALL_MAIN:
        r = PyStackless_Call_Main(oc->func, oc->args, NULL);
        break;
    case OUTSIDE_CALLMETHOD_MAIN:
        /* func is (obj, name): obj.name(7, "x") */
        r = PyStackless_CallMethod_Main(PyTuple_GET_ITEM(oc->func, 0),
                                        PyUnicode_AsUTF8(
                                            PyTuple_GET_ITEM(oc->func, 1)),
                                        "(is)", 7, "x");
        break;
    case OUTSIDE_CALLCMETHOD_MAIN:
        r = PyStackless_CallCMethod_Main(&cmethod_def, oc->func, "(is)", 7,
                                         "x");
        break;
    case OUTSIDE_SCHEDULE_ALL:
        /* spec M-21.6: func() makes tasklets; then PyStackless_Schedule()
         * while others can run. */
        r = PyStackless_Call_Main(oc->func, oc->args, NULL);
        if (r == NULL) {
            break;
        }
        Py_CLEAR(r);
        while (PyStackless_GetRunCount() > 1) {
            r = PyStackless_Schedule(Py_None, 0);
            if (r == NULL) {
                break;
            }
            Py_DECREF(r);
        }
        if (!PyErr_Occurred()) {
            r = PyLong_FromLong(PyStackless_GetRunCount());
        }
        break;
    case OUTSIDE_API:
        r = outside_api(oc->func);
        break;
    default:
        /* func(*args) called from this C code: no main made first. */
        r = PyObject_Call(oc->func, oc->args, NULL);
        break;
    }
    if (r == NULL) {
        oc->exc = PyErr_GetRaisedException();
    }
    oc->result = r;
    PyGILState_Release(g);
    PyThread_release_lock(oc->done);
}

static PyObject *
run_outside(PyObject *self, PyObject *args)
{
    int how;
    PyObject *func, *fargs = NULL;
    if (!PyArg_ParseTuple(args, "iO|O!:run_outside", &how, &func,
                          &PyTuple_Type, &fargs)) {
        return NULL;
    }
    outside_call oc = {how, func, fargs, NULL, NULL, NULL};
    oc.done = PyThread_allocate_lock();
    if (oc.done == NULL) {
        return PyErr_NoMemory();
    }
    if (fargs == NULL) {
        fargs = oc.args = PyTuple_New(0);
        if (fargs == NULL) {
            PyThread_free_lock(oc.done);
            return NULL;
        }
    }
    else {
        Py_INCREF(fargs);
    }
    Py_INCREF(func);
    PyThread_acquire_lock(oc.done, WAIT_LOCK);
    if (PyThread_start_new_thread(outside_thread, &oc) == PYTHREAD_INVALID_THREAD_ID) {
        PyThread_release_lock(oc.done);
        PyThread_free_lock(oc.done);
        Py_DECREF(func);
        Py_DECREF(fargs);
        PyErr_SetString(PyExc_RuntimeError, "cannot start a thread");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(oc.done, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    PyThread_free_lock(oc.done);
    Py_DECREF(func);
    Py_DECREF(fargs);
    if (oc.exc != NULL) {
        PyErr_SetRaisedException(oc.exc);
        return NULL;
    }
    return oc.result;
}

/* --- posting from other threads ------------------------------------------ */

typedef struct {
    PyObject *ch;
    PyObject **values;
    Py_ssize_t n;
    int failed;
    PyThread_type_lock done;
} post_job;

static void
post_thread(void *arg)
{
    post_job *job = (post_job *)arg;
    /* No GIL here: the references were taken by the caller. */
    for (Py_ssize_t i = 0; i < job->n; i++) {
        if (PyStackless_PostToChannel((PyChannelObject *)job->ch,
                                      job->values[i]) < 0) {
            job->failed = 1;
        }
    }
    PyThread_release_lock(job->done);
}

/* post_from_thread(ch, values): post each value from a C thread that
 * never takes the GIL; returns when it is done (the values arrive
 * later). */
static PyObject *
post_from_thread(PyObject *self, PyObject *args)
{
    PyChannelObject *ch;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O&O:post_from_thread", channel_arg, &ch,
                          &seq)) {
        return NULL;
    }
    PyObject *fast = PySequence_Fast(seq, "values must be a sequence");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    post_job job = {NULL, NULL, n, 0, NULL};
    job.values = PyMem_New(PyObject *, n > 0 ? n : 1);
    job.done = PyThread_allocate_lock();
    if (job.values == NULL || job.done == NULL) {
        PyMem_Free(job.values);
        if (job.done) {
            PyThread_free_lock(job.done);
        }
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    job.ch = (PyObject *)ch;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* One reference to the channel and one to the value per post. */
        Py_INCREF(ch);
        job.values[i] = Py_NewRef(PySequence_Fast_GET_ITEM(fast, i));
    }
    Py_DECREF(fast);
    PyThread_acquire_lock(job.done, WAIT_LOCK);
    if (PyThread_start_new_thread(post_thread, &job)
        == PYTHREAD_INVALID_THREAD_ID)
    {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_DECREF(ch);
            Py_DECREF(job.values[i]);
        }
        PyThread_release_lock(job.done);
        PyThread_free_lock(job.done);
        PyMem_Free(job.values);
        PyErr_SetString(PyExc_RuntimeError, "cannot start a thread");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(job.done, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    PyThread_free_lock(job.done);
    PyMem_Free(job.values);
    if (job.failed) {
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

/* post_later(ch, value, ms): a C thread, without the GIL, posts the value
 * after `ms` milliseconds; returns at once.  The references are the
 * post's. */
typedef struct {
    PyObject *ch;
    PyObject *value;
    long ms;
} later_job;

static void
post_later_thread(void *arg)
{
    later_job *job = (later_job *)arg;
    struct timespec ts = {job->ms / 1000, (job->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (PyStackless_PostToChannel((PyChannelObject *)job->ch,
                                  job->value) < 0) {
        abort();    /* no memory for a test */
    }
    free(job);
}

static PyObject *
post_later(PyObject *self, PyObject *args)
{
    PyChannelObject *ch;
    PyObject *value;
    long ms;
    if (!PyArg_ParseTuple(args, "O&Ol:post_later", channel_arg, &ch, &value,
                          &ms)) {
        return NULL;
    }
    later_job *job = malloc(sizeof(later_job));
    if (job == NULL) {
        return PyErr_NoMemory();
    }
    job->ch = Py_NewRef((PyObject *)ch);
    job->value = Py_NewRef(value);
    job->ms = ms;
    if (PyThread_start_new_thread(post_later_thread, job)
        == PYTHREAD_INVALID_THREAD_ID)
    {
        Py_DECREF(job->ch);
        Py_DECREF(job->value);
        free(job);
        PyErr_SetString(PyExc_RuntimeError, "cannot start a thread");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* --- soft-switchable C functions (A-27, A-32 ..) -------------- */

/* spec A-2: `action` 0..2: step 0 allocates private state (in *any) and,
 * if `action` is not 0, switches as schedule (1) or schedule_remove (2);
 * step 1 frees it, sets *n to 2 and switches again; step 2 returns *n.
 * `action` >= 100 calls `result` (step 3 gets what it returned).  Under
 * the stackless protocol each switch, and the call, unwind (the function
 * returns Py_UnwindToken), and the function is called again where *step
 * says; the value each switch returns is kept in *ob1. */
static PyObject *
callback_result(PyObject *r)
{
    if (r == NULL && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyObject *exc = PyErr_GetRaisedException();
        PyErr_SetString(PyExc_RuntimeError,
                        "demo_soft_switchable callback failed");
        PyObject *e2 = PyErr_GetRaisedException();
        PyException_SetContext(e2, exc);
        PyErr_SetRaisedException(e2);
    }
    return r;
}

static PyObject *
demo_soft_switchable(PyObject *retval, long *step, PyObject **ob1,
                     PyObject **ob2, PyObject **ob3, long *n, void **any)
{
    STACKLESS_GETARG();
    long action = *n;
    PyObject *r;
    if (retval == NULL) {
        /* An exception came in while it waited. */
        PyMem_Free(*any);
        *any = NULL;
        return *step == 3 ? callback_result(NULL) : NULL;
    }
    switch (*step) {
    case 0:
        if (action >= 100) {
            *step = 3;
            STACKLESS_PROMOTE_ALL();
            r = PyObject_CallNoArgs(retval);
            STACKLESS_ASSERT();
            if (STACKLESS_UNWINDING(r)) {
                return r;
            }
            return callback_result(r);
        }
        *any = PyMem_Malloc(16);
        if (*any == NULL) {
            return PyErr_NoMemory();
        }
        *step = 1;
        if (action != 0) {
            STACKLESS_PROMOTE_ALL();
            r = PyStackless_Schedule(retval, action > 1);
            STACKLESS_ASSERT();
            if (STACKLESS_UNWINDING(r)) {
                return r;
            }
            if (r == NULL) {
                PyMem_Free(*any);
                *any = NULL;
                return NULL;
            }
            Py_XSETREF(*ob1, r);
            retval = r;
        }
        /* fall through */
    case 1:
        PyMem_Free(*any);
        *any = NULL;
        *n = 2;
        *step = 2;
        if (action != 0) {
            STACKLESS_PROMOTE_ALL();
            r = PyStackless_Schedule(retval, action > 1);
            STACKLESS_ASSERT();
            if (STACKLESS_UNWINDING(r)) {
                return r;
            }
            if (r == NULL) {
                return NULL;
            }
            Py_XSETREF(*ob1, r);
        }
        /* fall through */
    case 2:
        return PyLong_FromLong(*n);
    case 3:
        return callback_result(Py_NewRef(retval));
    default:
        PyErr_Format(PyExc_SystemError, "demo_soft_switchable: step %ld",
                     *step);
        return NULL;
    }
}

static PyStacklessFunctionDeclarationObject demo_decl = {
    PyObject_HEAD_INIT(&PyStacklessFunctionDeclaration_Type)
    demo_soft_switchable,
    "demo_soft_switchable",
    NULL,
};

static PyObject *
run_demo(PyObject *args, const char *format)
{
    STACKLESS_GETARG();
    long action;
    PyObject *result;
    if (!PyArg_ParseTuple(args, format, &action, &result)) {
        return NULL;
    }
    STACKLESS_PROMOTE_ALL();
    PyObject *r = PyStackless_CallFunction(&demo_decl, result, NULL, NULL,
                                           NULL, action, NULL);
    STACKLESS_ASSERT();
    return r;
}

static PyObject *
softswitchablefunc(PyObject *self, PyObject *args)
{
    return run_demo(args, "lO:softswitchablefunc");
}

/* forgets_getarg(f): a function with METH_STACKLESS that breaks the
 * protocol: it does not take the permission (no STACKLESS_GETARG()), so
 * that the call of f it makes may unwind, and uses the result as a value.
 * The interpreter must raise SystemError, not hand the token on. */
static PyObject *
forgets_getarg(PyObject *self, PyObject *f)
{
    PyObject *r = PyObject_CallNoArgs(f);
    if (r == NULL) {
        return NULL;
    }
    return Py_BuildValue("(N)", r);
}

/* SoftSwitchableDemo().demo(action, result): the same, as a method. */
static PyObject *
demo_method(PyObject *self, PyObject *args)
{
    return run_demo(args, "lO:demo");
}

static PyMethodDef demo_methods[] = {
    {"demo", demo_method, METH_VARARGS | METH_STACKLESS,
     PyDoc_STR("demo(action, result): run demo_soft_switchable.")},
    {NULL}
};

static PyTypeObject demo_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_teststackless.SoftSwitchableDemo",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = PyDoc_STR("A type with a soft-switchable method."),
    .tp_methods = demo_methods,
    .tp_new = PyType_GenericNew,
};

/* Stackless/module/capi.c: a test hook, not API. */
PyAPI_FUNC(PyObject *) _PyStackless_EvalCodeFrame(
    PyCodeObject *code, PyObject *globals, PyObject *const *values,
    Py_ssize_t nvalues, PyObject *exc);

/* test_PyEval_EvalFrameEx(code, globals, args=(), alloca=0, throw=None,
 * oldcython=None, code2=None): a fresh frame of `code` (or `code2`) run
 * by a C-level entry of the eval loop, its first arguments `args`, the
 * other locals unbound; `throw` raised in it at its start. */
static PyObject *
test_eval_frame(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"code", "globals", "args", "alloca", "throw",
                             "oldcython", "code2", NULL};
    PyCodeObject *code, *code2 = NULL;
    PyObject *globals, *fargs = NULL, *exc = Py_None, *oldcython = Py_None;
    PyObject *code2_obj = Py_None;
    Py_ssize_t alloca_size = 0;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "O!O!|O!nOOO:test_PyEval_EvalFrameEx", kwlist,
            &PyCode_Type, &code, &PyDict_Type, &globals, &PyTuple_Type,
            &fargs, &alloca_size, &exc, &oldcython, &code2_obj))
    {
        return NULL;
    }
    if (exc != Py_None && !PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "exc must be an exception instance");
        return NULL;
    }
    int old = PyObject_IsTrue(oldcython);
    if (old < 0) {
        return NULL;
    }
    if (code2_obj != Py_None) {
        if (!PyCode_Check(code2_obj)) {
            PyErr_SetString(PyExc_TypeError, "code2 must be a code object");
            return NULL;
        }
        code2 = (PyCodeObject *)code2_obj;
    }
    if (alloca_size < 0 || alloca_size > 1000000) {
        PyErr_SetString(PyExc_ValueError,
                        "alloca is limited by 0 and 1000000");
        return NULL;
    }
    PyCodeObject *run = code2 != NULL ? code2 : code;
    if (PyCode_GetNumFree(run) != 0) {
        PyErr_SetString(PyExc_ValueError, "code requires cell variables");
        return NULL;
    }
    Py_ssize_t nargs = fargs != NULL ? PyTuple_GET_SIZE(fargs) : 0;
    if (nargs > run->co_argcount) {
        PyErr_SetString(PyExc_ValueError, "too many items in tuple 'args'");
        return NULL;
    }
    /* Reserve the block on the C stack: hard switches copy it. */
    volatile char *block = alloca_size ? alloca(alloca_size) : NULL;
    for (Py_ssize_t i = 0; i < alloca_size; i++) {
        block[i] = (char)i;
    }
    PyObject **values = PyMem_Calloc(nargs + 1, sizeof(PyObject *));
    if (values == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        values[i] = PyTuple_GET_ITEM(fargs, i);
    }
    PyObject *addr = NULL;
    if (nargs > 0 && alloca_size > 0) {
        addr = PyLong_FromVoidPtr((void *)block);
        if (addr == NULL) {
            PyMem_Free(values);
            return NULL;
        }
        values[0] = addr;
    }
    if (old && nargs > 0 && values[0] == (PyObject *)code) {
        /* What Stackless 3.7 did for old Cython: the argument is lost. */
        values[0] = NULL;
    }
    PyObject *res = _PyStackless_EvalCodeFrame(run, globals, values, nargs,
                                               exc != Py_None ? exc : NULL);
    Py_XDECREF(addr);
    PyMem_Free(values);
    return res;
}

static PyObject *
test_cframe(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"switches", "words", NULL};
    long switches, words = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "l|l:test_cframe", kwlist,
                                     &switches, &words)) {
        return NULL;
    }
    if (words < 0 || words > 64000) {
        PyErr_SetString(PyExc_ValueError,
                        "test_cframe: words are limited by 0 and 64000");
        return NULL;
    }
    /* Reserve the words on the C stack: the hard switches copy them. */
    volatile void **block = words ? alloca(words * sizeof(void *)) : NULL;
    for (long i = 0; i < words; i++) {
        block[i] = (void *)block;
    }
    PyObject *r = Py_NewRef(Py_None);
    for (long i = 0; i < switches; i++) {
        Py_DECREF(r);
        r = PyStackless_Schedule(Py_None, 0);
        if (r == NULL) {
            return NULL;
        }
    }
    return r;
}

static PyObject *
test_cstate(PyObject *self, PyObject *callable)
{
    /* Called from C without permission: a switch inside is hard. */
    return PyObject_CallNoArgs(callable);
}

static PyObject *
unwind_token(PyObject *self, PyObject *unused)
{
    /* Py_UnwindToken is never handed to Python code: its repr. */
    return PyObject_Repr((PyObject *)Py_UnwindToken);
}

/* Call callable() with `units` added to the thread's count of C recursion
 * left while it runs: C code that keeps that count as it pleases (an
 * extension that switches C stacks of its own saves and restores it).
 * The switches made in the call must still see this C frame. */
static PyObject *
call_hiding_c_recursion(PyObject *self, PyObject *args)
{
    PyObject *callable;
    int units;
    if (!PyArg_ParseTuple(args, "Oi:call_hiding_c_recursion",
                          &callable, &units)) {
        return NULL;
    }
    PyThreadState *tstate = PyThreadState_Get();
    int before = tstate->c_recursion_remaining;
    tstate->c_recursion_remaining = before + units;
    PyObject *res = PyObject_CallNoArgs(callable);
    tstate->c_recursion_remaining = before;
    return res;
}

/* --- the types and their checks (A-41) ----------------------------------- */

static PyObject *
check_types(PyObject *self, PyObject *o)
{
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:i}",
                         "PyTasklet_Check", PyTasklet_Check(o),
                         "PyTasklet_CheckExact", PyTasklet_CheckExact(o),
                         "PyChannel_Check", PyChannel_Check(o),
                         "PyChannel_CheckExact", PyChannel_CheckExact(o),
                         "PyBomb_Check", PyBomb_Check(o),
                         "PyCStack_Check", PyCStack_Check(o),
                         "STACKLESS_UNWINDING", STACKLESS_UNWINDING(o));
}

/* --- the module ------------------------------------------------------------ */

#define VAR(name, func) {#name, (PyCFunction)(func), METH_VARARGS, NULL}
#define ONE(name, func) {#name, (PyCFunction)(func), METH_O, NULL}
#define NOA(name, func) {#name, (PyCFunction)(func), METH_NOARGS, NULL}

static PyMethodDef methods[] = {
    VAR(PyTasklet_New, t_new),
    VAR(PyTasklet_Setup, t_setup),
    VAR(PyTasklet_BindEx, t_bindex),
    VAR(PyTasklet_BindThread, t_bindthread),
    ONE(PyTasklet_Run, t_run),
    ONE(PyTasklet_Run_nr, t_run_nr),
    ONE(PyTasklet_Switch, t_switch),
    ONE(PyTasklet_Switch_nr, t_switch_nr),
    ONE(PyTasklet_Remove, t_remove),
    ONE(PyTasklet_Insert, t_insert),
    VAR(PyTasklet_RaiseException, t_raiseexception),
    VAR(PyTasklet_Throw, t_throw),
    ONE(PyTasklet_Kill, t_kill),
    VAR(PyTasklet_KillEx, t_killex),
    VAR(PyTasklet_SetAtomic, t_setatomic),
    ONE(PyTasklet_GetAtomic, t_getatomic),
    VAR(PyTasklet_SetIgnoreNesting, t_setignorenesting),
    ONE(PyTasklet_GetIgnoreNesting, t_getignorenesting),
    ONE(PyTasklet_GetPendingIrq, t_getpendingirq),
    ONE(PyTasklet_GetFrame, t_getframe),
    ONE(PyTasklet_GetBlockTrap, t_getblocktrap),
    VAR(PyTasklet_SetBlockTrap, t_setblocktrap),
    ONE(PyTasklet_IsMain, t_ismain),
    ONE(PyTasklet_IsCurrent, t_iscurrent),
    ONE(PyTasklet_GetRecursionDepth, t_getrecursiondepth),
    ONE(PyTasklet_GetNestingLevel, t_getnestinglevel),
    ONE(PyTasklet_Alive, t_alive),
    ONE(PyTasklet_Paused, t_paused),
    ONE(PyTasklet_Scheduled, t_scheduled),
    ONE(PyTasklet_Restorable, t_restorable),
    ONE(PyChannel_New, ch_new),
    VAR(PyChannel_Send, ch_send),
    VAR(PyChannel_Send_nr, ch_send_nr),
    ONE(PyChannel_Receive, ch_receive),
    ONE(PyChannel_Receive_nr, ch_receive_nr),
    VAR(PyChannel_SendException, ch_sendexception),
    VAR(PyChannel_SendThrow, ch_sendthrow),
    ONE(PyChannel_GetQueue, ch_getqueue),
    ONE(PyChannel_Close, ch_close),
    ONE(PyChannel_Open, ch_open),
    ONE(PyChannel_GetClosing, ch_getclosing),
    ONE(PyChannel_GetClosed, ch_getclosed),
    ONE(PyChannel_GetPreference, ch_getpreference),
    VAR(PyChannel_SetPreference, ch_setpreference),
    ONE(PyChannel_GetScheduleAll, ch_getscheduleall),
    VAR(PyChannel_SetScheduleAll, ch_setscheduleall),
    ONE(PyChannel_GetBalance, ch_getbalance),
    VAR(PyStackless_Schedule, s_schedule),
    VAR(PyStackless_Schedule_nr, s_schedule_nr),
    NOA(PyStackless_GetRunCount, s_getruncount),
    NOA(PyStackless_GetCurrent, s_getcurrent),
    NOA(PyStackless_GetCurrentId, s_getcurrentid),
    VAR(PyStackless_RunWatchdog, s_runwatchdog),
    VAR(PyStackless_RunWatchdogEx, s_runwatchdogex),
    ONE(PyStackless_SetChannelCallback, s_setchannelcallback),
    ONE(PyStackless_SetScheduleCallback, s_setschedulecallback),
    ONE(PyStackless_SetScheduleFastcallback, s_setschedulefastcallback),
    VAR(PyStackless_Call_Main, s_call_main),
    VAR(run_outside, run_outside),
    VAR(post_from_thread, post_from_thread),
    VAR(post_later, post_later),
    {"softswitchablefunc", softswitchablefunc,
     METH_VARARGS | METH_STACKLESS, NULL},
    {"forgets_getarg", forgets_getarg, METH_O | METH_STACKLESS, NULL},
    {"test_PyEval_EvalFrameEx", (PyCFunction)(void (*)(void))test_eval_frame,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"test_cframe", (PyCFunction)(void (*)(void))test_cframe,
     METH_VARARGS | METH_KEYWORDS, NULL},
    ONE(test_cstate, test_cstate),
    NOA(unwind_token, unwind_token),
    VAR(call_hiding_c_recursion, call_hiding_c_recursion),
    ONE(check_types, check_types),
    {NULL}
};

static int
module_exec(PyObject *m)
{
    if (PyModule_AddIntConstant(m, "Py_WATCHDOG_THREADBLOCK",
                                Py_WATCHDOG_THREADBLOCK) < 0
        || PyModule_AddIntConstant(m, "PY_WATCHDOG_SOFT",
                                   PY_WATCHDOG_SOFT) < 0
        || PyModule_AddIntConstant(m, "PY_WATCHDOG_IGNORE_NESTING",
                                   PY_WATCHDOG_IGNORE_NESTING) < 0
        || PyModule_AddIntConstant(m, "PY_WATCHDOG_TOTALTIMEOUT",
                                   PY_WATCHDOG_TOTALTIMEOUT) < 0
        || PyModule_AddIntConstant(m, "METH_STACKLESS", METH_STACKLESS) < 0
        || PyModule_AddIntConstant(m, "Py_TPFLAGS_HAVE_STACKLESS_CALL",
                                   (long)Py_TPFLAGS_HAVE_STACKLESS_CALL) < 0
        || PyModule_AddIntConstant(m, "OUTSIDE_CALL_MAIN",
                                   OUTSIDE_CALL_MAIN) < 0
        || PyModule_AddIntConstant(m, "OUTSIDE_CALLMETHOD_MAIN",
                                   OUTSIDE_CALLMETHOD_MAIN) < 0
        || PyModule_AddIntConstant(m, "OUTSIDE_CALLCMETHOD_MAIN",
                                   OUTSIDE_CALLCMETHOD_MAIN) < 0
        || PyModule_AddIntConstant(m, "OUTSIDE_SCHEDULE_ALL",
                                   OUTSIDE_SCHEDULE_ALL) < 0
        || PyModule_AddIntConstant(m, "OUTSIDE_API", OUTSIDE_API) < 0
        || PyModule_AddIntConstant(m, "OUTSIDE_DIRECT", OUTSIDE_DIRECT) < 0
        || PyModule_AddStringConstant(m, "STACKLESS_VERSION",
                                      STACKLESS_VERSION) < 0)
    {
        return -1;
    }
    if (PyType_Ready(&demo_type) < 0
        || PyModule_AddObjectRef(m, "SoftSwitchableDemo",
                                 (PyObject *)&demo_type) < 0)
    {
        return -1;
    }
    return PyStackless_InitFunctionDeclaration(&demo_decl, m, NULL);
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, module_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_teststackless",
    .m_doc = "Tests of the C API of Stackless (stackless_api.h).",
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__teststackless(void)
{
    return PyModuleDef_Init(&module_def);
}
