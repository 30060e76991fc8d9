/* Soft switching: tasklets that switch in the eval loop, as frames only.
 *
 * A tasklet started by the runner with a Python function runs that
 * function's frame in an eval loop that the runner called: nothing but
 * that eval loop and the runner is under its frames on the C stack.  When
 * it switches from code of that eval loop (a switching builtin called by a
 * CALL of its frames, or a tick of the eval breaker), no C state of its
 * own needs keeping: its frames are parked (the stack pointer of the top
 * one saved, as for a Python call waiting on its callee) and the eval loop
 * goes on with the frames of the tasklet switched to, if that one has no C
 * stack either; else that one's C stack is restored, and ours dropped.
 *
 * A parked tasklet resumes in whatever eval loop switches to it, or, from
 * a tasklet with a C stack, in a new eval loop called by the runner at the
 * snapshot: its bottom frame is linked to that eval loop's entry frame
 * while it runs, and to nothing while it is parked, so that no frame
 * walker leaves its chain.
 *
 * c_recursion_remaining tells whether the tasklet is in the eval loop of
 * the runner: each eval loop called from C takes its share of it, and the
 * runner sets it to the same value before each call.  Soft switches leave
 * it alone, as they leave the C stack alone.
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_ceval.h"
#include "pycore_pyerrors.h"
#include "pycore_tstate.h"        // _PyThreadStateImpl
#include "pycore_opcode_utils.h"  // RESUME, JUMP_BACKWARD
#include "pycore_code.h"          // _Py_GetBaseOpcode()
#include "pycore_opcode_metadata.h"   // _PyOpcode_Caches
#include "pycore_frame.h"
#include "pycore_genobject.h"

/* Can the current tasklet be parked softly, in a builtin called by the
 * eval loop (from_call) or in the eval breaker?  `c_calls`: the units of
 * C recursion taken since the eval loop called (by the vectorcall of a
 * builtin function, say). */
int
slp_can_park_softly_in(slp_thread *th, int from_call, int c_calls)
{
    PyThreadState *tstate = th->tstate;
    return slp_runs_in_runner_eval(tstate, th, c_calls)
           && (!from_call || (slp_softcall_active(tstate)
                              && !slp_call_monitored(tstate)))
           && slp_soft_enabled(th, tstate->interp);
}

int
slp_can_park_softly(slp_thread *th, int from_call)
{
    return slp_can_park_softly_in(th, from_call, 0);
}

/* A soft switch to `next`, the head of the runqueue now, is decided, for
 * the eval loop to make: the current tasklet resumes with `result`
 * (stolen), or if NULL with its tempval, as the builtin's result. */
static void
soft_switch_decided(slp_thread *th, PyTaskletObject *next,
                    PyObject *result)
{
    PyTaskletObject *cur = th->current;
    assert(next != cur && next->in_runqueue && th->head == next);
    assert(th->soft_next == NULL);
    Py_XSETREF(cur->resume_value, result);
    cur->resume_push = 1;
    th->soft_next = (PyTaskletObject *)Py_NewRef(next);
    /* Until the eval loop makes the switch, nothing else may switch. */
    th->switch_trap++;
}

/* slp_switch_to_soft() where the switch cannot be soft. */
static SLP_NOINLINE PyObject *
switch_to_hard(slp_thread *th, PyTaskletObject *next, PyObject *result)
{
    PyObject *res = slp_switch_to(th, next);
    if (result == NULL || res == NULL) {
        Py_XDECREF(result);
        return res;
    }
    Py_DECREF(res);
    return result;
}

PyObject *
slp_switch_to_soft(slp_thread *th, PyTaskletObject *next, PyObject *result)
{
    PyTaskletObject *cur = th->current;
    /* A bad stack reference (spec M-21.5) fails as a hard switch does. */
    if (next == cur || !slp_can_park_softly(th, 1)
        || slp_bad_transfer(th, next))
    {
        return switch_to_hard(th, next, result);
    }
    next = slp_switch_prologue(th, cur, next);
    soft_switch_decided(th, next, result);
    return slp_soft_switched;
}

/* Code of `t` is about to run again, its state installed. */
static inline void
resumed(slp_thread *th, PyTaskletObject *t)
{
    slp_after_switch_in(th, t);
    if (slp_reinstrument(th->tstate, &t->exec) < 0) {
        PyErr_FormatUnraisable("Exception instrumenting a resumed tasklet");
    }
    slp_restore_tracing(th->tstate, t);
}

/* --- where a preempted frame resumes ------------------------------------
 *
 * A frame stops at a tick of the eval breaker.  The eval breaker of the
 * calls (CALL's _CHECK_PERIODIC, CALL_KW, CALL_FUNCTION_EX) runs after
 * the call's work: a frame preempted softly there is parked as after any
 * call, and goes on with the next instruction.  That of RESUME and
 * JUMP_BACKWARD (and their instrumented forms) runs *before* the
 * instruction's work: the jump is not made yet, the PY_START, PY_RESUME
 * or JUMP event not given, the code not instrumented anew.  A frame
 * preempted softly there is parked before its instruction:
 *
 *     instr_ptr       the instruction's first code unit (that of its
 *                     EXTENDED_ARG prefix, if it has one)
 *     return_offset   0
 *
 * and executes the whole instruction when it resumes, as if it had never
 * stopped.  No other parked frame has a return_offset of 0 (a call's is
 * past the CALL), so the frame says by itself how it resumes.  Two things
 * follow, both for deliver_resume():
 *
 *   - the eval breaker runs again first, and must not preempt again at
 *     once, or run(1) would never make progress: the tasklet gets one more
 *     tick for it;
 *   - an exception thrown in (kill(), throw(), a collected tasklet) is
 *     raised *in* the instruction, where an exception of the eval breaker
 *     (KeyboardInterrupt) is raised on stock CPython, so that the handlers
 *     around it run: instr_ptr moves over the prefix to the instruction
 *     proper and return_offset past it, as the eval loop leaves them.
 */

/* The first code unit of the instruction at `index` (that of its
 * EXTENDED_ARG prefix, if it has one), found by walking the code from its
 * start: the unit before an instruction may be a cache entry of the one
 * before, which can hold anything.  Linear in the code's size, and only
 * run when a frame is preempted or a channel iteration ends: the eval
 * loop keeps nothing for it. */
static int
instruction_start(PyCodeObject *co, int index)
{
    int start = 0;
    for (int i = 0; i < index; ) {
        int op = _Py_GetBaseOpcode(co, i);
        i += 1 + _PyOpcode_Caches[op];
        if (op != EXTENDED_ARG) {
            start = i;
        }
    }
    return start;
}

/* `frame` is preempted in the instruction at instr_ptr: it is parked
 * before it if the instruction has done nothing yet. */
static SLP_NOINLINE void
preempted_at(slp_thread *th, _PyInterpreterFrame *frame)
{
    th->soft_preempt = 0;
    PyCodeObject *co = _PyFrame_GetCode(frame);
    int index = (int)(frame->instr_ptr - _PyCode_CODE(co));
    int op = _Py_GetBaseOpcode(co, index);
    if (op == RESUME || op == JUMP_BACKWARD) {
        frame->instr_ptr = _PyCode_CODE(co) + instruction_start(co, index);
        frame->return_offset = 0;
    }
}

/* deliver_resume() for `top`, parked before its instruction. */
static SLP_NOINLINE void
resume_before(slp_thread *th, PyTaskletObject *t, _PyInterpreterFrame *top)
{
    if (PyBomb_Check(t->tempval)) {
        PyCodeObject *co = _PyFrame_GetCode(top);
        int index = (int)(top->instr_ptr - _PyCode_CODE(co));
        while (_Py_GetBaseOpcode(co, index) == EXTENDED_ARG) {
            index++;
        }
        top->instr_ptr = _PyCode_CODE(co) + index;
        top->return_offset = (uint16_t)(
            1 + _PyOpcode_Caches[_Py_GetBaseOpcode(co, index)]);
    }
    else if (th->tick_budget >= 0) {
        th->tick_budget++;      /* the tick of the eval breaker run again */
    }
}

/* A tasklet parked in the FOR_ITER of a channel (iteration) resumes with
 * StopIteration raised: a sender ended the iteration.  The loop ends, as
 * FOR_ITER ends it when its iterator is exhausted: the iterator is popped
 * and the tasklet goes on after the loop's END_FOR and POP_TOP. */
static void
end_for_iter(_PyInterpreterFrame *top)
{
    PyCodeObject *co = _PyFrame_GetCode(top);
    int index = (int)(top->instr_ptr - _PyCode_CODE(co));
    if (_Py_GetBaseOpcode(co, index) != FOR_ITER) {
        return;
    }
    int oparg = 0;
    for (int i = instruction_start(co, index); i <= index; i++) {
        oparg = (oparg << 8) | _PyCode_CODE(co)[i].op.arg;
    }
    PyErr_Clear();
    Py_DECREF(_PyFrame_StackPop(top));
    top->return_offset += oparg + 2;
}

/* The top frame of a resumed parked tasklet, with the result of its
 * builtin pushed, or the exception of a bomb raised. */
static inline _PyInterpreterFrame *
deliver_resume(PyThreadState *tstate, PyTaskletObject *t)
{
    _PyInterpreterFrame *top = tstate->current_frame;
    if (top->return_offset == 0) {
        resume_before(t->thread, t, top);
    }
    if (PyBomb_Check(t->tempval)) {
        PyObject *val = t->tempval;
        t->tempval = Py_NewRef(Py_None);
        Py_CLEAR(t->resume_value);
        slp_bomb_explode(val);
        Py_DECREF(val);
        if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            end_for_iter(top);
        }
        return top;
    }
    slp_push_resume_value(top, t);
    return top;
}

/* The function of a bound tasklet, if its frame can be pushed: a Python
 * function, or a method of one (*self is then set). */
PyFunctionObject *
slp_soft_function(slp_thread *th, PyTaskletObject *t, PyObject **self)
{
    PyObject *func = t->func;
    *self = NULL;
    if (!slp_soft_enabled(th, th->tstate->interp)
        || PyBomb_Check(t->tempval))
    {
        return NULL;
    }
    if (Py_IS_TYPE(func, &PyMethod_Type)) {
        *self = PyMethod_GET_SELF(func);
        func = PyMethod_GET_FUNCTION(func);
    }
    if (!Py_IS_TYPE(func, &PyFunction_Type)
        || ((PyFunctionObject *)func)->vectorcall != _PyFunction_Vectorcall)
    {
        /* A partial, an instance with a Python __call__...: pycall.c. */
        *self = NULL;
        return slp_resolved_function(t->func);
    }
    return (PyFunctionObject *)func;
}

/* Start a bound tasklet, made current, whose function is a Python one: its
 * thread-state fields are installed, with a small first chunk of data
 * stack that fits the function's frame, and the frame is pushed.  Returns
 * the frame, or NULL with an exception (the tasklet started and ends). */
_PyInterpreterFrame *
slp_start_soft(slp_thread *th, PyTaskletObject *t, PyFunctionObject *func,
           PyObject *self)
{
    PyThreadState *tstate = th->tstate;
    assert(tstate->current_frame == NULL && tstate->context == NULL);
    tstate->context = t->context;       /* the reference moves */
    t->context = NULL;
    tstate->context_ver++;
    tstate->py_recursion_remaining = tstate->py_recursion_limit;
    t->state = SLP_STARTED;

    PyCodeObject *co = (PyCodeObject *)func->func_code;
    if (tstate->datastack_chunk == NULL) {
        /* A root chunk (push_chunk() in Python/pystate.c): data[0] is
         * never used, so the chunk is never popped. */
        size_t size = offsetof(_PyStackChunk, data)
                      + (2 + (size_t)co->co_framesize) * sizeof(PyObject *);
        _PyStackChunk *chunk = _PyStackless_AllocChunk(size);
        if (chunk != NULL) {
            slp_push_chunk(tstate, chunk, size);
        }
        /* else the push below makes a standard chunk, or fails */
    }

    Py_ssize_t nargs = PyTuple_GET_SIZE(t->args);
    Py_ssize_t nkw = t->kwargs != NULL ? PyDict_GET_SIZE(t->kwargs) : 0;
    Py_ssize_t n = (self != NULL) + nargs + nkw;
    PyObject *small[8];
    PyObject **argv = n <= 8 ? small : PyMem_Malloc(n * sizeof(PyObject *));
    PyObject *kwnames = NULL;
    _PyInterpreterFrame *frame = NULL;
    if (self == NULL && (PyObject *)func != t->func) {
        /* It comes down to func through partials, __call__... */
        frame = slp_push_resolved_call(tstate, t->func, t->args, t->kwargs);
        goto done;
    }
    if (argv == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t i = 0;
    if (self != NULL) {
        argv[i++] = Py_NewRef(self);
    }
    for (Py_ssize_t k = 0; k < nargs; k++) {
        argv[i++] = Py_NewRef(PyTuple_GET_ITEM(t->args, k));
    }
    if (nkw > 0) {
        kwnames = PyTuple_New(nkw);
        if (kwnames == NULL) {
            for (Py_ssize_t k = 0; k < i; k++) {
                Py_DECREF(argv[k]);
            }
            goto done;
        }
        Py_ssize_t pos = 0, k = 0;
        PyObject *key, *value;
        while (PyDict_Next(t->kwargs, &pos, &key, &value)) {
            PyTuple_SET_ITEM(kwnames, k++, Py_NewRef(key));
            argv[i++] = Py_NewRef(value);
        }
    }
    PyObject *locals = co->co_flags & CO_OPTIMIZED
                       ? NULL : Py_NewRef(func->func_globals);
    /* Steals func, locals and the arguments. */
    frame = _PyEvalFramePushAndInit(tstate, (PyFunctionObject *)Py_NewRef(func),
                                    locals, argv, (self != NULL) + nargs,
                                    kwnames);
done:
    Py_XDECREF(kwnames);
    if (argv != small && argv != NULL) {
        PyMem_Free(argv);
    }
    Py_CLEAR(t->func);
    Py_CLEAR(t->args);
    Py_CLEAR(t->kwargs);
    if (frame != NULL) {
        t->base_frame = frame;
        frame->previous = NULL;
        tstate->current_frame = frame;
    }
    return frame;
}

/* In the eval loop with entry frame `entry`, whose tasklet was parked or
 * has ended: go on with th->current, which is not parked (it starts, or
 * has a C stack).  Returns the frame to go on with, as
 * _PyStackless_SoftSwitch(), or switches the C stack and never returns. */
static SLP_NOINLINE _PyInterpreterFrame *
enter_unparked(slp_thread *th, _PyInterpreterFrame *entry)
{
    PyThreadState *tstate = th->tstate;
    for (;;) {
        PyTaskletObject *t = th->current;
        if (t->soft_parked) {
            slp_unpark_soft(tstate, t, entry);
            resumed(th, t);
            return deliver_resume(tstate, t);
        }
        slp_execstate_empty(tstate);
        PyObject *self;
        PyFunctionObject *func = t->state == SLP_BOUND
                                 ? slp_soft_function(th, t, &self) : NULL;
        if (func == NULL) {
            slp_hard_enter(th);
        }
        _PyInterpreterFrame *frame = slp_start_soft(th, t, func, self);
        if (frame != NULL) {
            frame->previous = entry;
            /* As start_frame does in the eval loop. */
            tstate->py_recursion_remaining--;
        }
        slp_after_switch(th);
        slp_restore_tracing(tstate, t);     /* new tasklets start untraced */
        if (frame != NULL) {
            return frame;
        }
        /* Its arguments did not fit: it ends at once. */
        slp_end_current(th, NULL);
    }
}

/* The same for any th->current: the common case, a parked one, inline. */
static inline _PyInterpreterFrame *
enter_soft(slp_thread *th, _PyInterpreterFrame *entry)
{
    PyTaskletObject *t = th->current;
    if (t->soft_parked) {
        slp_unpark_soft(th->tstate, t, entry);
        resumed(th, t);
        return deliver_resume(th->tstate, t);
    }
    return enter_unparked(th, entry);
}

/* The marker exception of the pending switch goes.  Another exception
 * comes from a monitoring callback of the CALL (its C_RAISE event), which
 * failed: it is reported, and the switch is made. */
static SLP_NOINLINE void
drop_marker(PyThreadState *tstate)
{
    PyObject *exc = _PyErr_GetRaisedException(tstate);
    if (slp_soft_switch_marker_check(exc)) {
        Py_DECREF(exc);
        return;
    }
    _PyErr_SetRaisedException(tstate, exc);
    PyErr_FormatUnraisable("Exception in a callback while switching "
                           "tasklets");
}

_PyInterpreterFrame *
_PyStackless_SoftSwitch(PyThreadState *tstate, _PyInterpreterFrame *frame,
                        _PyInterpreterFrame *entry)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_thread *th = ts->stackless;
    int what = th->pending_what;
    assert(ts->stackless_pending == frame);
    ts->stackless_pending = NULL;
    if (tstate->current_exception != NULL) {
        drop_marker(tstate);
    }
    if (what == SLP_PENDING_ENTER) {
        return slp_enter_pushed_frame(th, frame);
    }
    th->switch_trap--;
    PyTaskletObject *prev = th->current;
    PyTaskletObject *next = th->soft_next;
    th->soft_next = NULL;
    if (th->soft_preempt) {
        preempted_at(th, frame);
    }
    slp_park_soft(tstate, prev);
    if (prev->extra != NULL && prev->extra->cstack.data != NULL) {
        /* An old copy, of no use now. */
        slp_cstack_clear(&prev->extra->cstack);
    }
    slp_save_tracing(tstate, prev);
    assert(th->pending_decref == NULL);
    th->pending_decref = (PyObject *)prev;
    slp_set_current(th, next);          /* soft_next's reference */
    return enter_soft(th, entry);
}

_PyInterpreterFrame *
_PyStackless_Resume(PyThreadState *tstate, _PyInterpreterFrame *frame,
                    _PyInterpreterFrame *entry)
{
    slp_thread *th = slp_thread_of(tstate);
    PyTaskletObject *t = th->current;
    assert(t->soft_parked && frame == t->base_frame);
    (void)frame;
    tstate->current_frame = NULL;   /* the eval loop's entry linked it */
    slp_unpark_soft(tstate, t, entry);
    resumed(th, t);
    return deliver_resume(tstate, t);
}
