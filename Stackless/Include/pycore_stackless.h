#ifndef Py_INTERNAL_STACKLESS_H
#define Py_INTERNAL_STACKLESS_H

/* The hooks that upstream files call into Stackless (Py_BUILD_CORE only).
 * Each is one line at its call site in a patch; all the work is here, in
 * Stackless/core/.  Each does nothing for a thread or interpreter that
 * never used stackless. */

#ifndef Py_BUILD_CORE
#  error "this header requires Py_BUILD_CORE define"
#endif

#include "pycore_frame.h"         // _PyThreadState_HasStackSpace()
#include "pycore_tstate.h"        // _PyThreadStateImpl

/* Python/pystate.c, PyThreadState_Clear(): the thread's tasklets end
 * (spec X-5).  Runs the thread's code only if tstate is current. */
extern void _PyStackless_ThreadClear(PyThreadState *tstate);

/* Python/pystate.c, tstate_delete_common(): free the scheduler state. */
extern void _PyStackless_ThreadDelete(PyThreadState *tstate);

/* Python/pylifecycle.c, _Py_Finalize(), after atexit: the calling
 * thread's tasklets with C state end (spec X-6). */
extern void _PyStackless_Finalize(PyThreadState *tstate);

/* Modules/_threadmodule.c, thread_shutdown(): at shutdown, tstate joins
 * the non-daemon threads (joining 1) until they have ended (joining 0):
 * meanwhile it can make no tasklet runnable for them (spec S-12). */
extern void _PyStackless_JoinThreads(PyThreadState *tstate, int joining);

/* Python/pystate.c, interpreter_clear(): drop callbacks and handlers. */
extern void _PyStackless_InterpClear(PyInterpreterState *interp);

/* Python/ceval_gil.c, _Py_HandlePending(): a tick of the watchdog timer
 * (spec S-5) while _PY_STACKLESS_TICK_BIT is set in the eval breaker.
 * Returns -1 with an exception set, else 0. */
#define _PY_STACKLESS_TICK_BIT (1U << 7)
extern int _PyStackless_Tick(PyThreadState *tstate);

/* Python/ceval_gil.c, _Py_HandlePending(): while the current tasklet is
 * atomic, no eval-breaker work is done: no GIL hand-off, signals and
 * asynchronous exceptions wait (spec T-11).  Returns 1 then; a running
 * watchdog timer goes on counting, and a preemption that falls due waits
 * for atomic to end. */
extern int _PyStackless_IsAtomic(PyThreadState *tstate);

/* --- soft switching (Stackless/core/softcall.c, softswitch.c) ---------
 *
 * The builtins that switch tasklets (channel.send, schedule, ...) are
 * builtin functions and method descriptors as CPython makes them from a
 * PyMethodDef, whose flags have METH_STACKLESS, the bit CPython keeps for
 * Stackless.  Such a def is the head of a _PyStackless_MethodDef, which
 * gives what CPython's objects do not have.  CALL specializes its calls of
 * them (of the method descriptor, and of the builtin function or method
 * bound to its __self__) to CALL_STACKLESS (Python/specialize.c), which
 * calls the entry the def has for that object.  The generic call paths of
 * the eval loop (Python/bytecodes.c: CALL, CALL_NON_PY_GENERAL, CALL_KW)
 * call them through _PyStackless_Vectorcall().  Either way the builtin
 * knows that the eval loop is its direct caller.  Every other caller goes
 * through the vectorcall that CPython gives the objects of such a def
 * (Objects/methodobject.c, descrobject.c): _PyStackless_MethodVectorcall().
 * When such a builtin switches
 * softly, it returns NULL with the switch pending for the calling frame
 * (stackless_pending), and a marker exception where the code between
 * needs one (a debug build, instrumentation, FOR_ITER); the CALL drops
 * its inputs and goes to `error:`, where the eval loop sees the switch
 * pending for its frame (before anything else) and calls
 * _PyStackless_SoftSwitch(), stack pointer saved and return_offset set as
 * for a Python call.  That parks the frame
 * chain of the tasklet that leaves and returns the top frame of the
 * tasklet that comes in; the eval loop goes on with it at instr_ptr +
 * return_offset, or at `error:` if an exception is set.
 *
 * The entry of CALL_STACKLESS may also make the switch at once, when
 * nothing can run between it and the eval loop (channel.c): it returns
 * _PyStackless_SWITCHED, and CALL_STACKLESS parks its frame as for a
 * Python call and goes on with the current frame, the one switched to.
 */

/* Include/methodobject.h defines METH_STACKLESS as 0 unless STACKLESS is
 * defined before Python.h.  Defining STACKLESS would also give every
 * type's Py_TPFLAGS_DEFAULT the bits Py_TPFLAGS_HAVE_STACKLESS_EXTENSION
 * (object.h), changing __flags__ of all classes: the bit is given here
 * instead, to the files that include this header. */
#undef METH_STACKLESS
#define METH_STACKLESS 0x0100

/* Objects/typeobject.c, update_one_slot() and inherit_slots(): the class
 * has Py_TPFLAGS_HAVE_STACKLESS_CALL, the other bit CPython keeps for
 * Stackless, exactly while its instances are called through a Python-level
 * __call__ (tp_call is slot_tp_call, whatever object __call__ is): spec
 * M-21.10.  Kept with tp_call wherever typeobject.c sets it, so that it
 * follows assignment and deletion of __call__ on the class or a base. */
#ifndef Py_TPFLAGS_HAVE_STACKLESS_CALL
#  define Py_TPFLAGS_HAVE_STACKLESS_CALL (1UL << 15)
#endif

/* The entry of CALL_STACKLESS: `callable` and `args` (nargs of them, the
 * space before args[0] writable, as for PY_VECTORCALL_ARGUMENTS_OFFSET)
 * are the CALL's inputs, whose references it takes.  Returns the result,
 * or NULL with an exception set or a switch pending, or
 * _PyStackless_SWITCHED. */
typedef PyObject *(*_PyStackless_CallEntry)(PyThreadState *tstate,
                                            PyObject *callable,
                                            PyObject **args, int nargs);

/* A PyMethodDef of the core with METH_STACKLESS also has this bit, and
 * is the head of one of these (Stackless/core/softcall.c sets both).  An
 * extension's def may have METH_STACKLESS alone (stackless_api.h): its
 * function takes the stackless protocol, and is called as any builtin,
 * with the permission to switch softly when the eval loop calls it. */
#define _PyStackless_METH_CORE 0x4000
#define _PyStackless_IsCoreDef(ml) \
    (((ml)->ml_flags & (METH_STACKLESS | _PyStackless_METH_CORE)) \
     == (METH_STACKLESS | _PyStackless_METH_CORE))

typedef struct {
    PyMethodDef def;
    /* The entries of CALL_STACKLESS: for the method descriptor, whose
     * arguments begin with the object, and for the builtin function or
     * method, whose object is its __self__. */
    _PyStackless_CallEntry unbound_call;
    _PyStackless_CallEntry call;
} _PyStackless_MethodDef;

static inline _PyStackless_MethodDef *
_PyStackless_MethodDefOf(PyMethodDef *ml)
{
    assert(_PyStackless_IsCoreDef(ml));
    return (_PyStackless_MethodDef *)
           ((char *)ml - offsetof(_PyStackless_MethodDef, def));
}

/* The entry of CALL_STACKLESS for `callable`, or NULL if it is not a
 * builtin that may switch tasklets. */
extern PyObject *_PyStackless_ForeignEntry(PyThreadState *tstate,
                                           PyObject *callable,
                                           PyObject **args, int nargs);

static inline _PyStackless_CallEntry
_PyStackless_CallEntryOf(PyObject *callable)
{
    PyMethodDef *ml;
    if (Py_IS_TYPE(callable, &PyMethodDescr_Type)) {
        ml = ((PyMethodDescrObject *)callable)->d_method;
        if (!(ml->ml_flags & METH_STACKLESS)) {
            return NULL;
        }
        return (ml->ml_flags & _PyStackless_METH_CORE)
               ? _PyStackless_MethodDefOf(ml)->unbound_call
               : _PyStackless_ForeignEntry;
    }
    if (Py_IS_TYPE(callable, &PyCFunction_Type)) {
        ml = ((PyCFunctionObject *)callable)->m_ml;
        if (!(ml->ml_flags & METH_STACKLESS)) {
            return NULL;
        }
        return (ml->ml_flags & _PyStackless_METH_CORE)
               ? _PyStackless_MethodDefOf(ml)->call
               : _PyStackless_ForeignEntry;
    }
    return NULL;
}

#define _PyStackless_IsSwitching(callable) \
    (_PyStackless_CallEntryOf(callable) != NULL)

extern char _PyStackless_SwitchedToken;
#define _PyStackless_SWITCHED ((PyObject *)&_PyStackless_SwitchedToken)

extern PyObject *_PyStackless_SoftCall(PyThreadState *tstate,
                                       PyObject *callable,
                                       PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames);

/* Objects/methodobject.c, PyCMethod_New(), and Objects/descrobject.c,
 * PyDescr_NewMethod(): the vectorcall of the builtin functions, methods
 * and method descriptors of a def with METH_STACKLESS.  Not the eval
 * loop's calls, which take the ways above. */
extern PyObject *_PyStackless_MethodVectorcall(PyObject *callable,
                                               PyObject *const *args,
                                               size_t nargsf,
                                               PyObject *kwnames);

/* A callable that is not a Python function, reaching a generic call path
 * in a thread that uses tasklets: if it comes down to a Python function
 * (a bound method called with an explicit first argument, as __exit__
 * is; an instance with a Python __call__; a class with a Python
 * __init__; functools.partial; a chain of these) or to a generator's
 * __next__, its frames are pushed and the eval loop goes on with them,
 * as with a soft switch (SLP_PENDING_ENTER); else it is called through
 * C (Stackless/core/pycall.c). */
extern PyObject *_PyStackless_PyCall(PyThreadState *tstate,
                                     PyObject *callable,
                                     PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames);

/* A builtin function or method, or a method descriptor: softly if it
 * may switch, else as any other builtin (none comes down to a Python
 * function).  Out of line: the eval loop's hook stays small. */
extern PyObject *_PyStackless_BuiltinCall(PyThreadState *tstate,
                                          PyObject *callable,
                                          PyObject *const *args,
                                          size_t nargsf, PyObject *kwnames);

static inline PyObject *
_PyStackless_Vectorcall(PyThreadState *tstate, PyObject *callable,
                        PyObject *const *args, size_t nargsf,
                        PyObject *kwnames)
{
    if (Py_IS_TYPE(callable, &PyCFunction_Type)
        || Py_IS_TYPE(callable, &PyMethodDescr_Type))
    {
        return _PyStackless_BuiltinCall(tstate, callable, args, nargsf,
                                        kwnames);
    }
    if (((_PyThreadStateImpl *)tstate)->stackless != NULL) {
        return _PyStackless_PyCall(tstate, callable, args, nargsf, kwnames);
    }
    return PyObject_Vectorcall(callable, args, nargsf, kwnames);
}

/* Objects/call.c, _PyFunction_Vectorcall(), when the thread state's
 * stackless_try is set: a C function of the stackless protocol
 * (stackless_api.h) calls a Python function, and lets it run in the eval
 * loop that called the C function (the frame is pushed, and the call
 * returns Py_UnwindToken), where it can; else it is called as always.
 * The permission is taken either way (Stackless/module/capi.c). */
extern PyObject *_PyStackless_FunctionCall(PyThreadState *tstate,
                                           PyFunctionObject *func,
                                           PyObject *const *args,
                                           size_t nargsf, PyObject *kwnames);

/* Python/bytecodes.c, CALL_FUNCTION_EX, where the callable is not a
 * Python function: the same, for a call with *args and **kwargs
 * (callargs a tuple, kwargs a dict or NULL); and the builtins that switch
 * tasklets called so switch softly. */
extern PyObject *_PyStackless_CallEx(PyThreadState *tstate, PyObject *func,
                                     PyObject *callargs, PyObject *kwargs);

static inline PyObject *
_PyStackless_Call(PyThreadState *tstate, PyObject *func, PyObject *callargs,
                  PyObject *kwargs)
{
    if (((_PyThreadStateImpl *)tstate)->stackless != NULL) {
        return _PyStackless_CallEx(tstate, func, callargs, kwargs);
    }
    return PyObject_Call(func, callargs, kwargs);
}

/* Python/bytecodes.c, FOR_ITER: the next item of `iter`.  Iterating
 * over a channel receives, and switches softly as receive() does; the
 * switch is pending with a marker exception set, which FOR_ITER takes to
 * `error:`.  If the tasklet resumes with StopIteration (a sender ended
 * the iteration), the loop ends there as FOR_ITER would end it. */
extern PyObject *_PyStackless_ChannelNext(PyObject *channel);
extern PyObject *_PyStackless_SoftIterNext(PyThreadState *tstate,
                                           PyObject *channel);

/* A generator, before FOR_ITER specialized for it, runs in the eval loop
 * as with FOR_ITER_GEN (Stackless/core/shims.c). */
extern PyObject *_PyStackless_GenIterNext(PyThreadState *tstate,
                                          PyObject *iter);

static inline PyObject *
_PyStackless_IterNext(PyThreadState *tstate, PyObject *iter)
{
    iternextfunc next = Py_TYPE(iter)->tp_iternext;
    if (next == _PyStackless_ChannelNext) {
        return _PyStackless_SoftIterNext(tstate, iter);
    }
    if (Py_IS_TYPE(iter, &PyGen_Type)
        && ((_PyThreadStateImpl *)tstate)->stackless != NULL)
    {
        return _PyStackless_GenIterNext(tstate, iter);
    }
    return next(iter);
}

/* Generators and coroutines resumed by a call (shims.c): next(gen)
 * (Python/bltinmodule.c), gen.send() and gen.throw() (Objects/
 * genobject.c) arm the thread state for the generator when a CALL of the
 * eval loop of a tasklet that switches softly called them; then
 * gen_send_ex2(), where it would run the generator's frame in an eval loop
 * of its own, pushes it for the caller's eval loop to go on with, and
 * returns an error that the builtins pass on.  (It is disarmed there, or
 * by the builtin that armed it.)  _PyStackless_InUse is set
 * once a thread uses tasklets: elsewhere, nothing but that flag, and in
 * gen_send_ex2() a field of the thread state, is read. */
extern int _PyStackless_InUse;

/* Modules/_pickle.c, for a dict, once _stackless is imported (the flag
 * says so: no cost before): where `table` (the pickler's dispatch table)
 * reduces modules (import stackless registers a reducer), the __dict__
 * of a module of sys.modules goes by reference, as
 * getattr(module, '__dict__'): that reduce value (a new reference), or
 * None for any other dict (and always without such a reducer); NULL with
 * an exception. */
PyAPI_DATA(int) _PyStackless_PickleModuleDicts;
PyAPI_FUNC(PyObject *) _PyStackless_ModuleDictReduce(PyObject *table,
                                                     PyObject *dict);
extern void _PyStackless_ArmGenNext(PyObject *const *args, Py_ssize_t nargs,
                                    PyCFunction meth);
extern void _PyStackless_ArmGenSend(PyObject *gen, PyObject *arg,
                                    PyCFunction meth);
extern int _PyStackless_ArmGenThrow(PyObject *gen, PyObject *const *args,
                                    Py_ssize_t nargs, PyCFunction meth);
extern void _PyStackless_DisarmGen(void);
extern int _PyStackless_GenEnter(PyThreadState *tstate, PyGenObject *gen,
                                 PyObject *arg, int exc);

/* Objects/genobject.c: the state of an asend() or athrow() awaitable of an
 * async generator, for pickling: ("asend" or "athrow", the generator, the
 * value sent or the exception's arguments (None: __anext__(), aclose()),
 * the state); and setting the state of a new one. */
extern PyObject *_PyStackless_AsyncGenAwaitableState(PyObject *o);
extern int _PyStackless_AsyncGenAwaitableSetState(PyObject *o, int state);

/* next(gen) and next(gen, default). */
static inline void
_PyStackless_SoftNext(PyObject *const *args, Py_ssize_t nargs,
                      PyCFunction meth)
{
    if (_PyStackless_InUse && Py_IS_TYPE(args[0], &PyGen_Type)) {
        _PyStackless_ArmGenNext(args, nargs, meth);
    }
}

static inline void
_PyStackless_SoftSend(PyObject *gen, PyObject *arg, PyCFunction meth)
{
    if (_PyStackless_InUse) {
        _PyStackless_ArmGenSend(gen, arg, meth);
    }
}

/* throw() may fail before it resumes the generator: 1 if it must call
 * _PyStackless_DisarmGen() once done. */
static inline int
_PyStackless_SoftThrow(PyObject *gen, PyObject *const *args,
                       Py_ssize_t nargs, PyCFunction meth)
{
    return _PyStackless_InUse
           && _PyStackless_ArmGenThrow(gen, args, nargs, meth);
}

/* In gen_send_ex2(): 1 if the generator's frame was pushed (NULL is then
 * returned, with an error). */
static inline int
_PyStackless_GenPushed(PyThreadState *tstate, PyGenObject *gen,
                       PyObject *arg, int exc)
{
    return ((_PyThreadStateImpl *)tstate)->stackless_gen != NULL
           && _PyStackless_GenEnter(tstate, gen, arg, exc);
}

/* Python/context.c, Context.run(): the function given, a Python one,
 * called by a CALL of the eval loop of a tasklet that switches softly,
 * runs in that eval loop over a shim frame that exits the context after
 * it: 1 if so (or if its arguments did not fit, an error set), and run()
 * returns NULL (shims.c). */
extern int _PyStackless_ContextRun(PyThreadState *tstate, PyObject *ctx,
                                   PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames, PyCFunction meth);

static inline int
_PyStackless_SoftContextRun(PyThreadState *tstate, PyObject *ctx,
                            PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, PyCFunction meth)
{
    return _PyStackless_InUse
           && _PyStackless_ContextRun(tstate, ctx, args, nargs, kwnames,
                                      meth);
}

/* Python/bytecodes.c, BEFORE_WITH: the frame of __enter__, pushed, if it
 * is a Python method taking no argument and the running tasklet switches
 * softly; else NULL, and it is called through C, as upstream does.  The
 * eval loop runs the frame as a call whose result is __enter__'s. */
extern struct _PyInterpreterFrame *_PyStackless_EnterFrame(
    PyThreadState *tstate, PyObject *enter);

static inline struct _PyInterpreterFrame *
_PyStackless_PushEnterFrame(PyThreadState *tstate, PyObject *enter)
{
    if (((_PyThreadStateImpl *)tstate)->stackless == NULL
        || !Py_IS_TYPE(enter, &PyMethod_Type))
    {
        return NULL;
    }
    return _PyStackless_EnterFrame(tstate, enter);
}

/* Python/bytecodes.c, WITH_EXCEPT_START: the same for __exit__, called
 * with the exception's type, value and traceback (args). */
extern struct _PyInterpreterFrame *_PyStackless_ExitFrame(
    PyThreadState *tstate, PyObject *exit, PyObject *const *args);

static inline struct _PyInterpreterFrame *
_PyStackless_PushExitFrame(PyThreadState *tstate, PyObject *exit,
                           PyObject *const *args)
{
    if (((_PyThreadStateImpl *)tstate)->stackless == NULL
        || !Py_IS_TYPE(exit, &PyMethod_Type))
    {
        return NULL;
    }
    return _PyStackless_ExitFrame(tstate, exit, args);
}

/* Python/ceval.c: each call of the eval loop records its entry frame in
 * the thread state while it runs (and gives back the outer call's when it
 * returns), so that the scheduler knows which call runs the code that
 * asks to switch: a soft switch is made only in the call that runs the
 * tasklet's bottom frame, with no C code between.  A hard switch, which
 * changes C stacks, saves and restores the record with the C stack. */
static inline struct _PyInterpreterFrame *
_PyStackless_EvalEnter(PyThreadState *tstate,
                       struct _PyInterpreterFrame *entry_frame)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    struct _PyInterpreterFrame *outer = ts->stackless_eval;
    ts->stackless_eval = entry_frame;
    return outer;
}

static inline void
_PyStackless_EvalLeave(PyThreadState *tstate,
                       struct _PyInterpreterFrame *outer)
{
    ((_PyThreadStateImpl *)tstate)->stackless_eval = outer;
}

/* Python/ceval.c, `error:`: a soft switch is pending for `frame`, the
 * frame whose CALL (or eval breaker, or FOR_ITER) asked for it.  Code that
 * runs in between (a finalizer called when the CALL drops its inputs) may
 * reach the `error:` of frames of its own, which go on as usual. */
#define _PyStackless_SWITCH_PENDING(tstate, frame) \
    (((_PyThreadStateImpl *)(tstate))->stackless_pending == (frame))

/* Python/ceval.c, after `error:` saw it: the frame to go on with; the
 * marker, if set, is dropped. */
extern struct _PyInterpreterFrame *_PyStackless_SoftSwitch(
    PyThreadState *tstate, struct _PyInterpreterFrame *frame,
    struct _PyInterpreterFrame *entry_frame);

/* The throwflag of _PyEval_EvalFrameDefault() with which the scheduler
 * resumes a soft-switched tasklet in a new call of the eval loop: `frame`
 * is the bottom frame of the tasklet's chain, and _PyStackless_Resume()
 * returns its top frame, to go on with as after _PyStackless_SoftSwitch. */
#define _PyStackless_RESUME 0x51a7
extern struct _PyInterpreterFrame *_PyStackless_Resume(
    PyThreadState *tstate, struct _PyInterpreterFrame *frame,
    struct _PyInterpreterFrame *entry_frame);

/* Python/pystate.c: chunks of the frame data stack.  Tasklets start with
 * a small chunk of their own; these keep a spare chunk per thread, so
 * that a call that crosses a chunk boundary again and again does not map
 * and unmap memory each time. */
extern _PyStackChunk *_PyStackless_AllocChunk(size_t size);
/* The size of the next chunk: CPython's 16 KB, or more for `roomy` bytes
 * (what CPython wants: the frame and room for more), or over a tasklet's
 * small chunks less, for at least `needed` bytes (softcall.c). */
extern size_t _PyStackless_ChunkSize(PyThreadState *tstate, size_t roomy,
                                     size_t needed);
extern void _PyStackless_FreeChunk(_PyStackChunk *chunk);

/* Python/bytecodes.c, the specialized instructions that push a frame
 * (calls of Python functions and classes, properties, __getitem__):
 * room for it.  A soft-started tasklet's first chunk fits its function's
 * frame exactly, so that a million blocked tasklets stay small; the first
 * call made from that frame finds no room there.  Rather than deoptimize
 * (a generic call, or for a class a call through C, where a switch is
 * hard), make room in a new chunk.  Its data[0] is left unused, as in a
 * root chunk, so that the return of that call does not pop it: the next
 * calls find room.  The grown chunk goes once it is empty and a frame
 * below it is cleared (Python/ceval.c, clear_thread_frame(), which every
 * frame of a thread goes through before it is popped), or when its
 * tasklet is switched out.  Returns 0 if out of memory (no exception set: the
 * generic path raises it). */
extern int _PyStackless_GrowDataStack(PyThreadState *tstate, int size);
extern void _PyStackless_PopGrownChunk(PyThreadState *tstate);

static inline int
_PyStackless_HasStackSpace(PyThreadState *tstate, int size)
{
    return _PyThreadState_HasStackSpace(tstate, size)
           || _PyStackless_GrowDataStack(tstate, size);
}

/* An empty grown chunk is on top (frames of CPython's own chunks start
 * at data[0], and a root chunk has no previous). */
#define _PyStackless_EMPTY_GROWN_CHUNK(tstate) \
    ((tstate)->datastack_top == &(tstate)->datastack_chunk->data[1] \
     && (tstate)->datastack_chunk->previous != NULL)

#endif /* !Py_INTERNAL_STACKLESS_H */
