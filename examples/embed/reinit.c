/* An embedding program that starts and stops the interpreter several
 * times while tasklets are alive: runnable, blocked softly and switched
 * hard (with C state), in the main thread and in a second thread that is
 * still running at finalization.
 *
 *     cc reinit.c $(pkg-config --cflags --libs python3-embed) -o reinit
 *     ./reinit [CYCLES]
 *
 * Each Py_FinalizeEx() must succeed; the tasklets with C state are killed
 * (their `finally` clauses run, spec ), the others dropped.  With a
 * debug build, PyConfig.show_ref_count prints the total reference count
 * after each cycle ("[N refs, M blocks]"), which must not grow from one
 * cycle to the next.
 */

#include <Python.h>
#include <stackless_api.h>

#include <stdio.h>
#include <stdlib.h>

static const char script[] =
    "import stackless, sys, threading\n"
    "ended = []\n"
    "def soft(ch):\n"
    "    try:\n"
    "        ch.receive()\n"
    "    finally:\n"
    "        ended.append('soft')\n"
    "def hard(ch):\n"
    "    try:\n"
    "        sorted([1, 2], key=lambda x: ch.receive())\n"
    "    finally:\n"
    "        ended.append('hard')\n"
    "def runner():\n"
    "    while True:\n"
    "        stackless.schedule()\n"
    "def spawn_all():\n"
    "    ch = stackless.channel()\n"
    "    stackless.tasklet(soft)(ch)\n"
    "    stackless.tasklet(hard)(ch)\n"
    "    stackless.tasklet(runner)()\n"
    "    for _ in range(3):\n"
    "        stackless.schedule()\n"
    "    return ch\n"
    "main_ch = spawn_all()\n"
    "ready = threading.Event()\n"
    "def other_thread():\n"
    "    spawn_all()\n"
    "    ready.set()\n"
    "    block = stackless.channel()\n"
    "    while True:\n"
    "        stackless.schedule()\n"
    "t = threading.Thread(target=other_thread, daemon=True)\n"
    "t.start()\n"
    "ready.wait()\n";

int
main(int argc, char **argv)
{
    int cycles = argc > 1 ? atoi(argv[1]) : 3;
    for (int i = 0; i < cycles; i++) {
        PyConfig config;
        PyConfig_InitPythonConfig(&config);
        config.show_ref_count = 1;
        config.parse_argv = 0;
        PyStatus status = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(status)) {
            Py_ExitStatusException(status);
        }
        if (PyRun_SimpleString(script) < 0) {
            fprintf(stderr, "cycle %d: the script failed\n", i);
            return 1;
        }
        /* From C, with no Python frame running: the main tasklet blocks
         * the others' way once more. */
        PyObject *r = PyStackless_Schedule(Py_None, 0);
        if (r == NULL) {
            PyErr_Print();
            return 1;
        }
        Py_DECREF(r);
        printf("cycle %d: %d runnable in the main thread\n", i,
               PyStackless_GetRunCount());
        fflush(stdout);
        if (Py_FinalizeEx() < 0) {
            fprintf(stderr, "cycle %d: Py_FinalizeEx() failed\n", i);
            return 1;
        }
    }
    printf("done\n");
    return 0;
}
