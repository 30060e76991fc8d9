/* An embedding host in the manner of a game server: a C main loop drives
 * thousands of Python agents, each a tasklet.
 *
 *     cc host.c $(pkg-config --cflags --libs python3-embed) -o host
 *     ./host [AGENTS [FRAMES [DIR-OF-agents.py]]]
 *
 * Each frame the host
 *   1. pumps its own input events into a channel (C code sending, with no
 *      Python frame on the stack: the host is "outside" Python);
 *   2. runs the tasklets for a budget of interpreter ticks
 *      (PyStackless_RunWatchdogEx), which returns the tasklet it
 *      interrupted when the budget runs out;
 *   3. puts that tasklet back at the end of the runqueue, or kills it if it
 *      was the one interrupted too often lately (a runaway script);
 *   4. renders statistics now and then.
 * The agents, and the tasklets that handle events, are created from C.
 * The program exits with 0 if everything it expects happened.
 */

#include <Python.h>
#include <stackless_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET 20000        /* ticks per frame */
#define HOG_STRIKES 3       /* interruptions of a tasklet within */
#define HOG_WINDOW 10       /* ... this many frames, before a kill */
#define DISPATCHERS 3       /* tasklets receiving the host's events */

static PyObject *agents_mod;

static PyObject *
attr(const char *name)
{
    return PyObject_GetAttrString(agents_mod, name);
}

/* A tasklet running func(*args), made and scheduled from C. */
static int
spawn(PyObject *func, PyObject *args)
{
    PyTaskletObject *t = PyTasklet_New(NULL, func);
    if (t == NULL) {
        return -1;
    }
    int r = PyTasklet_Setup(t, args, NULL);
    Py_DECREF(t);
    return r;
}

static int
setup(int n_agents)
{
    PyObject *agent = attr("agent");
    PyObject *dispatcher = attr("dispatcher");
    PyObject *hog = attr("hog");
    int r = -1;
    if (agent == NULL || dispatcher == NULL || hog == NULL) {
        goto done;
    }
    for (int i = 0; i < n_agents; i++) {
        PyObject *args = Py_BuildValue("(si)", "", i);
        PyObject *name = PyUnicode_FromFormat("agent-%d", i);
        if (args == NULL || name == NULL) {
            Py_XDECREF(args);
            Py_XDECREF(name);
            goto done;
        }
        PyTuple_SetItem(args, 0, name);     /* steals name */
        int s = spawn(agent, args);
        Py_DECREF(args);
        if (s < 0) {
            goto done;
        }
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL || spawn(hog, empty) < 0) {
        Py_XDECREF(empty);
        goto done;
    }
    for (int i = 0; i < DISPATCHERS; i++) {
        if (spawn(dispatcher, empty) < 0) {
            Py_DECREF(empty);
            goto done;
        }
    }
    Py_DECREF(empty);
    r = 0;
done:
    Py_XDECREF(agent);
    Py_XDECREF(dispatcher);
    Py_XDECREF(hog);
    return r;
}

static const char *event_kinds[] = {"key", "mouse", "net"};

int
main(int argc, char **argv)
{
    int n_agents = argc > 1 ? atoi(argv[1]) : 2000;
    int frames = argc > 2 ? atoi(argv[2]) : 60;
    int failed = 1;

    Py_Initialize();
    /* agents.py: in the directory given, or the current one. */
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", argc > 3 ? argv[3] : ".");
    PyObject *sys_path = PySys_GetObject("path");
    PyObject *d = PyUnicode_FromString(dir);
    if (sys_path == NULL || d == NULL || PyList_Insert(sys_path, 0, d) < 0) {
        goto error;
    }
    Py_DECREF(d);
    agents_mod = PyImport_ImportModule("agents");
    if (agents_mod == NULL || setup(n_agents) < 0) {
        goto error;
    }
    PyChannelObject *events = (PyChannelObject *)attr("events");
    if (events == NULL) {
        goto error;
    }

    /* How often each tasklet was interrupted: {tasklet: count}. */
    PyObject *strikes = PyDict_New();
    if (strikes == NULL) {
        goto error;
    }
    int interrupted = 0, killed = 0, sent = 0, backlog = 0;
    for (int frame = 0; frame < frames; frame++) {
        /* 1. This frame's input, three events, sent while a dispatcher
         * waits for them: the host never blocks (with the channel's
         * preference for the sender, a send to a waiting receiver returns
         * at once), the rest waits for the next frame. */
        backlog += 3;
        while (backlog > 0 && PyChannel_GetBalance(events) < 0) {
            PyObject *ev = Py_BuildValue("(si)", event_kinds[sent % 3], 1);
            if (ev == NULL || PyChannel_Send(events, ev) < 0) {
                Py_XDECREF(ev);
                goto error;
            }
            Py_DECREF(ev);
            sent++;
            backlog--;
        }
        if (frame % HOG_WINDOW == 0) {
            PyDict_Clear(strikes);
        }
        /* 2. The frame's budget. */
        PyObject *t = PyStackless_RunWatchdogEx(BUDGET,
                                                PY_WATCHDOG_TOTALTIMEOUT);
        if (t == NULL) {
            goto error;
        }
        /* 3. The tasklet that was running when the budget ran out. */
        if (t != Py_None) {
            interrupted++;
            PyObject *old = PyDict_GetItemWithError(strikes, t);
            long n = old != NULL ? PyLong_AsLong(old) + 1 : 1;
            PyObject *count = PyLong_FromLong(n);
            if (count == NULL || PyDict_SetItem(strikes, t, count) < 0) {
                Py_XDECREF(count);
                goto error;
            }
            Py_DECREF(count);
            if (n >= HOG_STRIKES) {
                printf("frame %3d: killing a tasklet interrupted %ld "
                       "times\n", frame, n);
                if (PyTasklet_Kill((PyTaskletObject *)t) < 0
                    || PyDict_DelItem(strikes, t) < 0)
                {
                    goto error;
                }
                killed++;
            }
            else if (PyTasklet_Insert((PyTaskletObject *)t) < 0) {
                goto error;
            }
        }
        Py_DECREF(t);
        /* 4. Statistics. */
        if (frame % 20 == 0 || frame == frames - 1) {
            PyObject *s = PyObject_CallMethod(agents_mod, "summary", NULL);
            if (s == NULL) {
                goto error;
            }
            printf("frame %3d: %s, %d runnable, %d events waiting\n", frame,
                   PyUnicode_AsUTF8(s), PyStackless_GetRunCount(), backlog);
            Py_DECREF(s);
        }
    }
    Py_DECREF(strikes);

    /* Every event reached a handler; the hog is gone; agents walked. */
    PyObject *stats = attr("stats");
    PyObject *n_events = stats ? PyDict_GetItemString(stats, "events") : NULL;
    PyObject *steps = stats ? PyDict_GetItemString(stats, "steps") : NULL;
    long got = n_events ? PyLong_AsLong(n_events) : -1;
    long walked = steps ? PyLong_AsLong(steps) : -1;
    printf("sent %d events, dispatched %ld; %ld steps; %d interruptions, "
           "%d killed\n", sent, got, walked, interrupted, killed);
    failed = !(got >= sent - DISPATCHERS && sent > frames
               && walked >= n_agents && killed == 1);
    Py_XDECREF(stats);
    Py_DECREF(events);
    Py_CLEAR(agents_mod);
    if (Py_FinalizeEx() < 0) {
        return 120;
    }
    return failed;

error:
    PyErr_Print();
    Py_FinalizeEx();
    return 2;
}
