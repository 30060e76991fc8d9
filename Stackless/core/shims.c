/* Frames the eval loop runs in place of C calls, and the shim frames.
 *
 * 3.13 makes some Python-to-Python calls through C: __enter__ and
 * __exit__ of with blocks, a method called with an explicit self, next(),
 * send() and throw() of generators and coroutines, Context.run(),
 * channel.send_sequence().  In a tasklet that switches softly they push
 * frames instead, which run in the tasklet's eval loop like any call, so
 * that a switch inside them is soft and leaves no C state.  The code that
 * pushes them asks the eval loop to go on with them (SLP_PENDING_ENTER,
 * at the `error:` of the calling frame: slp_enter_pushed_frame()); nothing
 * may switch in between (switch_trap).
 *
 * Where the C function did work around the call (turn a generator's
 * return into StopIteration, exit a context, loop over a sequence), a
 * shim frame does it: a code object assembled here, made once per
 * interpreter and kept in slp_interp, which the caller waits for as for
 * any call.  Like the shim CPython pushes for __init__ (_Py_InitCleanup),
 * a shim never runs its RESUME, so that tracebacks, frame walkers and
 * monitoring do not see it.  Each has a name of its own (co_name).
 */

#include "stackless_impl.h"
#include "pycore_stackless.h"
#include "pycore_ceval.h"
#include "pycore_pyerrors.h"
#include "pycore_tstate.h"        // _PyThreadStateImpl
#include "opcode.h"               // NB_ADD
#include "pycore_opcode_utils.h"
#include "pycore_code.h"
#include "pycore_frame.h"         // _PyFrame_PushTrampolineUnchecked()
#include "pycore_genobject.h"     // _PyGen_SetStopIterationValue()
#include "pycore_long.h"          // _PyLong_GetZero()

/* --- Python calls that 3.13 makes through C ------------------------------
 *
 * In a tasklet that switches softly, two calls of Python methods that the
 * eval loop of 3.13 makes through C push their frame instead, which runs
 * in the eval loop like any call, so that a switch in it is soft:
 * __enter__ in BEFORE_WITH (which jumps to the frame itself), and a bound
 * method that a generic CALL gets with an explicit first argument, as the
 * __exit__ of a with block is called (the CALL goes on with the frame at
 * `error:`, as with a soft switch).  Elsewhere, and when monitoring or
 * tracing watches the CALL, they go through C as upstream. */

static PyFunctionObject *
python_method(PyObject *method)
{
    PyObject *func = PyMethod_GET_FUNCTION(method);
    if (Py_IS_TYPE(func, &PyFunction_Type)
        && ((PyFunctionObject *)func)->vectorcall == _PyFunction_Vectorcall)
    {
        return (PyFunctionObject *)func;
    }
    return NULL;
}

/* The frame of func(*argv), pushed, not linked; NULL with an exception if
 * the arguments do not fit it. */
static _PyInterpreterFrame *
push_call(PyThreadState *tstate, PyFunctionObject *func,
          PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t n = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(argv[i]);
    }
    PyCodeObject *co = (PyCodeObject *)func->func_code;
    PyObject *locals = co->co_flags & CO_OPTIMIZED
                       ? NULL : Py_NewRef(func->func_globals);
    /* Steals func, locals and the arguments. */
    return _PyEvalFramePushAndInit(
        tstate, (PyFunctionObject *)Py_NewRef((PyObject *)func), locals,
        argv, nargs, kwnames);
}

/* Frames are pushed for the CALL that runs: it ends with NULL returned,
 * and the eval loop goes on with them at `error:` (slp_enter_pushed_frame()).
 * Nothing may switch in between. */
void
slp_enter_request(slp_thread *th, _PyInterpreterFrame *top,
                  _PyInterpreterFrame *base, PyGenObject *gen,
                  int need_marker)
{
    th->soft_enter = top;
    th->soft_enter_base = base;
    th->soft_enter_gen = gen;
    th->switch_trap++;
    slp_soft_switch_request(th->tstate, SLP_PENDING_ENTER, need_marker);
}

/* The frame of method(*args), a Python method, for the eval loop to run
 * as a call (DISPATCH_INLINED), if the running tasklet switches softly;
 * else NULL, and the instruction calls it through C.  `self_only`: only
 * if self alone fits it. */
static _PyInterpreterFrame *
push_method_frame(PyThreadState *tstate, PyObject *method,
                  PyObject *const *args, Py_ssize_t nargs, int self_only)
{
    slp_thread *th = slp_thread_of(tstate);
    PyFunctionObject *func = python_method(method);
    if (func == NULL || !slp_can_park_softly(th, 0)
        || tstate->py_recursion_remaining <= 1)
    {
        return NULL;
    }
    PyCodeObject *co = (PyCodeObject *)func->func_code;
    if (self_only
        && (co->co_argcount != 1 || co->co_kwonlyargcount != 0
            || (co->co_flags & (CO_VARARGS | CO_VARKEYWORDS))))
    {
        return NULL;
    }
    PyObject *argv[4];
    assert(nargs < 4);
    argv[0] = PyMethod_GET_SELF(method);
    for (Py_ssize_t i = 0; i < nargs; i++) {
        argv[i + 1] = args[i];
    }
    _PyInterpreterFrame *f = push_call(tstate, func, argv, nargs + 1, NULL);
    if (f == NULL) {
        PyErr_Clear();      /* the call through C reports it */
    }
    return f;
}

_PyInterpreterFrame *
_PyStackless_EnterFrame(PyThreadState *tstate, PyObject *enter)
{
    /* Only if self fits: no error to report but a lack of memory. */
    return push_method_frame(tstate, enter, NULL, 0, 1);
}

_PyInterpreterFrame *
_PyStackless_ExitFrame(PyThreadState *tstate, PyObject *exit,
                       PyObject *const *args)
{
    return push_method_frame(tstate, exit, args, 3, 0);
}

/* --- generators resumed by a call -----------------------------------------
 *
 * next(gen), gen.send(value) and gen.throw(exc) of a generator or
 * coroutine that is not running, called by a CALL of the eval loop of a
 * tasklet that switches softly, run the generator's frame in that eval
 * loop, as `yield from` does, instead of in an eval loop of their own.
 * The builtin, sure of its caller, arms the thread state for the
 * generator (_PyStackless_ArmGen...()); gen_send_ex2() (Objects/
 * genobject.c), once it checked the generator's state, pushes its frame
 * then (_PyStackless_GenEnter()) where it would evaluate it, and returns
 * an error that the C functions in between pass on: the CALL ends, and
 * the eval loop goes on with the frame at `error:`.
 *
 * The caller waits for a shim frame, whose code (gen_shim_code) waits for
 * the generator's frame as a SEND does.  Where the generator yields, the
 * shim returns the value; where it returns, the shim raises StopIteration
 * as the builtins would; an exception of the generator goes through it.
 * Like the shim that CPython pushes for __init__ (_Py_InitCleanup), it
 * never runs its RESUME, so that frame walkers and tracebacks skip it, and
 * it has no monitoring events.
 */

#define GEN_SHIM_RETURN 4       /* where a return of the generator goes */
#define GEN_DEFAULT_SHIM_RETURN 6

/* The shim's CALL: the generator returned `value`. */
static PyObject *
gen_returned(PyObject *Py_UNUSED(module), PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    else {
        _PyGen_SetStopIterationValue(value);
    }
    return NULL;
}

static PyMethodDef gen_returned_def = {
    "next", gen_returned, METH_O, NULL
};

/* A shim's code object, made on first use and kept in *slot (the
 * interpreter's): `ncode` code units, the constants the function `helper`
 * of the module (None if NULL) and the `nextra` of `extra`, no location,
 * `exctable`.  It is checked against the states its frames are in (see
 * check_shim()).  NULL with an exception if there is no memory for it,
 * or if the check fails (SystemError: the code above is wrong). */
static int check_shim(PyCodeObject *co, int kind);

static PyCodeObject *
shim_code(PyObject **slot, int kind, const char *name,
          const _Py_CODEUNIT *code, int ncode, PyMethodDef *helper,
          PyObject *const *extra, int nextra, int stacksize,
          const char *exctable, Py_ssize_t exctable_size)
{
    if (*slot != NULL) {
        return (PyCodeObject *)*slot;
    }
    /* No location: entries of up to 8 code units without one. */
    char lines[16];
    int nlines = 0;
    for (int left = ncode; left > 0; left -= 8) {
        int n = left < 8 ? left : 8;
        assert(nlines < (int)sizeof(lines));
        lines[nlines++] = (char)(128 | (PY_CODE_LOCATION_INFO_NONE << 3)
                                 | (n - 1));
    }
    PyCodeObject *co = NULL;
    PyObject *bytes = PyBytes_FromStringAndSize(
        (const char *)code, ncode * sizeof(_Py_CODEUNIT));
    PyObject *func = helper != NULL ? PyCFunction_New(helper, NULL)
                                    : Py_NewRef(Py_None);
    PyObject *consts = func != NULL ? PyTuple_New(1 + nextra) : NULL;
    if (consts != NULL) {
        PyTuple_SET_ITEM(consts, 0, Py_NewRef(func));
        for (int i = 0; i < nextra; i++) {
            PyTuple_SET_ITEM(consts, 1 + i, Py_NewRef(extra[i]));
        }
    }
    PyObject *uname = PyUnicode_FromString(name);
    PyObject *file = PyUnicode_FromString("<stackless>");
    PyObject *linetable = PyBytes_FromStringAndSize(lines, nlines);
    PyObject *empty = PyTuple_New(0);
    PyObject *table = PyBytes_FromStringAndSize(exctable, exctable_size);
    if (bytes != NULL && consts != NULL && uname != NULL && file != NULL
        && linetable != NULL && empty != NULL && table != NULL)
    {
        co = PyUnstable_Code_New(
            0, 0, 0, stacksize, CO_OPTIMIZED | CO_NO_MONITORING_EVENTS,
            bytes, consts, empty, empty, empty, empty, file, uname, uname, 0,
            linetable, table);
    }
    Py_XDECREF(bytes);
    Py_XDECREF(func);
    Py_XDECREF(consts);
    Py_XDECREF(uname);
    Py_XDECREF(file);
    Py_XDECREF(linetable);
    Py_XDECREF(empty);
    Py_XDECREF(table);
    if (co != NULL && check_shim(co, kind) < 0) {
        Py_CLEAR(co);
    }
    *slot = (PyObject *)co;
    return co;
}

static PyCodeObject *
gen_shim_code(slp_interp *si)
{
    /* Stack: the generator, under what it yields or returns. */
    static const _Py_CODEUNIT code[] = {
        {.op = {SEND, GEN_SHIM_RETURN - 2}},    /* waits for the frame */
        {.op = {CACHE, 0}},
        {.op = {END_SEND, 0}},                  /* it yielded */
        {.op = {RETURN_VALUE, 0}},
        {.op = {END_SEND, 0}},                  /* it returned */
        {.op = {LOAD_CONST, 0}},                /* gen_returned(value) */
        {.op = {SWAP, 2}},
        {.op = {PUSH_NULL, 0}},
        {.op = {SWAP, 2}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {RESUME, 0}},                    /* never reached */
    };
    return shim_code(&si->gen_shim, 0, "next", code,
                     (int)Py_ARRAY_LENGTH(code), &gen_returned_def, NULL, 0,
                     3, "", 0);
}

/* next(gen, default): the default waits under the generator.  Where the
 * generator yields, the shim returns the value; where it returns, the
 * default.  (A generator's frame raises no StopIteration: its code turns
 * one into RuntimeError.) */
static PyCodeObject *
gen_default_shim_code(slp_interp *si)
{
    static const _Py_CODEUNIT code[] = {
        {.op = {SEND, GEN_DEFAULT_SHIM_RETURN - 2}},    /* waits */
        {.op = {CACHE, 0}},
        {.op = {END_SEND, 0}},                  /* it yielded */
        {.op = {SWAP, 2}},
        {.op = {POP_TOP, 0}},                   /* the default goes */
        {.op = {RETURN_VALUE, 0}},
        {.op = {END_SEND, 0}},                  /* it returned */
        {.op = {POP_TOP, 0}},                   /* the value goes */
        {.op = {RETURN_VALUE, 0}},
        {.op = {RESUME, 0}},                    /* never reached */
    };
    return shim_code(&si->gen_default_shim, 1, "next", code,
                     (int)Py_ARRAY_LENGTH(code), NULL, NULL, 0, 3, "", 0);
}

/* Push a shim frame of `code` whose stack holds the `n` objects `objs`
 * (new references), waiting at `wait` for a frame to return
 * `return_offset` code units further (or to start there, at 0); NULL if
 * there is no memory for it (no error set). */
static _PyInterpreterFrame *
push_shim(PyThreadState *tstate, PyCodeObject *code, PyObject *const *objs,
          int n, int wait, int return_offset)
{
    if (code == NULL
        || !_PyStackless_HasStackSpace(tstate, code->co_framesize))
    {
        PyErr_Clear();
        return NULL;
    }
    _PyInterpreterFrame *sf = _PyFrame_PushTrampolineUnchecked(tstate, code,
                                                               n);
    sf->f_globals = sf->f_builtins = NULL;   /* set by debug builds only */
    for (int i = 0; i < n; i++) {
        sf->localsplus[i] = Py_NewRef(objs[i]);
    }
    sf->instr_ptr = _PyCode_CODE(code) + wait;
    sf->return_offset = (uint16_t)return_offset;
    sf->previous = NULL;
    return sf;
}

/* The value stack of the frame running a CALL of `nargs` arguments, if
 * it is one of the call instructions in `ops` (0-terminated), else NULL. */
static PyObject **
calling_stack(_PyInterpreterFrame *f, Py_ssize_t nargs, const int *ops)
{
    if (f == NULL || f->owner == FRAME_OWNED_BY_CSTACK
        || f->instr_ptr->op.arg != nargs)
    {
        return NULL;
    }
    int op = f->instr_ptr->op.code;
    while (*ops != 0 && *ops != op) {
        ops++;
    }
    if (*ops == 0) {
        return NULL;
    }
    PyCodeObject *co = _PyFrame_GetCode(f);
    return f->localsplus + co->co_nlocalsplus;
}

/* Is `callable` the builtin method `meth` of obj (gen): a method
 * descriptor of its type called with obj as self, or bound to obj and
 * called alone? */
static int
is_method_of(PyObject *callable, PyObject *self, PyObject *gen,
              PyCFunction meth)
{
    if (self == gen) {
        return Py_IS_TYPE(callable, &PyMethodDescr_Type)
               && ((PyMethodDescrObject *)callable)->d_method->ml_meth == meth
               && PyDescr_TYPE(callable) == Py_TYPE(gen);
    }
    return self == NULL && PyCFunction_CheckExact(callable)
           && ((PyCFunctionObject *)callable)->m_ml->ml_meth == meth
           && ((PyCFunctionObject *)callable)->m_self == gen;
}

/* The eval loop calls a builtin with a pointer into the frame's value
 * stack, above the callable and the self or NULL of the call, which
 * identify it: a C caller in between would have its own array, or a bound
 * method in the slot of the NULL. */
static int
called_with(PyThreadState *tstate, PyObject *const *args, Py_ssize_t nargs,
            PyObject *gen, PyCFunction meth, const int *ops)
{
    _PyInterpreterFrame *f = tstate->current_frame;
    PyObject **stack = calling_stack(f, nargs, ops);
    if (stack == NULL || args < (PyObject *const *)stack + 2
        || args + nargs > (PyObject *const *)stack
                          + _PyFrame_GetCode(f)->co_stacksize)
    {
        return 0;
    }
    if (gen == NULL) {
        /* A builtin function that takes the generator: next(). */
        return args[-1] == NULL && PyCFunction_CheckExact(args[-2])
               && ((PyCFunctionObject *)args[-2])->m_ml->ml_meth == meth;
    }
    return is_method_of(args[-2], args[-1], gen, meth);
}

/* No monitoring tool wants the PY_THROW event of a throw(). */
static inline int
no_throw_events(PyThreadState *tstate)
{
    return tstate->interp->monitors.tools[PY_MONITORING_EVENT_PY_THROW] == 0;
}

/* A builtin that the eval loop of the current tasklet called, directly
 * or through its vectorcall (which takes a unit of C recursion), can have
 * a frame run there: that loop is the runner's, there is room for the
 * frame and a shim, and no monitoring tool waits for the builtin to
 * return. */
static int
can_push_at_call(slp_thread *th)
{
    return th->tstate->py_recursion_remaining > 2
           && (slp_can_park_softly_in(th, 0, 0) || slp_can_park_softly_in(th, 0, 1))
           && !slp_call_monitored(th->tstate);
}

/* The generator's frame can run in the tasklet's eval loop. */
static int
can_resume_here(slp_thread *th, PyGenObject *gen, int throw)
{
    /* A throw() into a `yield from` goes to the generator delegated to,
     * in C. */
    return (Py_IS_TYPE(gen, &PyGen_Type) || Py_IS_TYPE(gen, &PyCoro_Type))
           && gen->gi_frame_state
              < (throw ? FRAME_SUSPENDED_YIELD_FROM : FRAME_EXECUTING)
           && can_push_at_call(th);
}

/* `dflt`: the default of next(gen, default), or NULL. */
static void
arm_gen(PyThreadState *tstate, slp_thread *th, PyObject *gen, PyObject *dflt)
{
    ((_PyThreadStateImpl *)tstate)->stackless_gen = gen;
    th->armed_frame = tstate->current_frame;
    th->armed_instr = tstate->current_frame->instr_ptr;
    th->armed_default = dflt;
}

void
_PyStackless_ArmGenNext(PyObject *const *args, Py_ssize_t nargs,
                        PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_BUILTIN_FAST, 0};
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (th != NULL && can_resume_here(th, (PyGenObject *)args[0], 0)
        && called_with(tstate, args, nargs, NULL, meth, ops))
    {
        arm_gen(tstate, th, args[0], nargs == 2 ? args[1] : NULL);
    }
}

int
_PyStackless_ArmGenThrow(PyObject *gen, PyObject *const *args,
                         Py_ssize_t nargs, PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_METHOD_DESCRIPTOR_FAST,
                              CALL_BUILTIN_FAST, 0};
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (th != NULL && can_resume_here(th, (PyGenObject *)gen, 1)
        && called_with(tstate, args, nargs, gen, meth, ops))
    {
        arm_gen(tstate, th, gen, NULL);
        return 1;
    }
    return 0;
}

void
_PyStackless_DisarmGen(void)
{
    ((_PyThreadStateImpl *)_PyThreadState_GET())->stackless_gen = NULL;
}

/* gen.send(arg): a METH_O method gets no pointer to its argument, and the
 * stack depth before the CALL tells where the call's inputs are. */
void
_PyStackless_ArmGenSend(PyObject *gen, PyObject *arg, PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_METHOD_DESCRIPTOR_O,
                              CALL_BUILTIN_O, 0};
    PyThreadState *tstate = _PyThreadState_GET();
    slp_thread *th = slp_thread_of(tstate);
    if (th == NULL || !can_resume_here(th, (PyGenObject *)gen, 0)) {
        return;
    }
    _PyInterpreterFrame *f = tstate->current_frame;
    PyObject **stack = calling_stack(f, 1, ops);
    if (stack == NULL) {
        return;
    }
    PyCodeObject *co = _PyFrame_GetCode(f);
    int depth = slp_stack_depth_cached(th, co, _PyInterpreterFrame_LASTI(f));
    if (depth < 3 || depth > co->co_stacksize) {
        return;
    }
    PyObject **in = stack + depth - 3;
    if (in[2] == arg && is_method_of(in[0], in[1], gen, meth)) {
        arm_gen(tstate, th, gen, NULL);
    }
}

static int gen_push(PyThreadState *tstate, slp_thread *th, PyGenObject *gen,
                    PyObject *arg, PyObject *thrown, PyObject *dflt);

int
_PyStackless_GenEnter(PyThreadState *tstate, PyGenObject *gen, PyObject *arg,
                      int exc)
{
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    slp_thread *th = ts->stackless;
    int armed = ts->stackless_gen == (PyObject *)gen
                && th->armed_frame == tstate->current_frame
                && th->armed_instr == tstate->current_frame->instr_ptr;
    ts->stackless_gen = NULL;
    /* gen_send_ex2() reports the errors of other states. */
    if (!armed || gen->gi_frame_state >= FRAME_EXECUTING
        || (gen->gi_frame_state == FRAME_CREATED && arg != NULL
            && arg != Py_None))
    {
        return 0;
    }
    if (exc && !no_throw_events(tstate)) {
        return 0;           /* monitoring sees a throw: through C */
    }
    /* A thrown exception is set: keep it while the shim is made. */
    PyObject *thrown = exc ? _PyErr_GetRaisedException(tstate) : NULL;
    PyObject *dflt = th->armed_default;
    th->armed_default = NULL;
    return gen_push(tstate, th, gen, arg, thrown, dflt);
}

/* Push the generator's frame over a shim that turns its return into
 * StopIteration (or the default of next(gen, default)); 1 if done, else
 * 0 (no memory: the call through C reports it), `thrown` set again. */
static int
gen_push(PyThreadState *tstate, slp_thread *th, PyGenObject *gen,
         PyObject *arg, PyObject *thrown, PyObject *dflt)
{
    PyObject *objs[] = {dflt, (PyObject *)gen};
    _PyInterpreterFrame *sf = dflt == NULL
        ? push_shim(tstate, gen_shim_code(th->si), objs + 1, 1, 0,
                    GEN_SHIM_RETURN)
        : push_shim(tstate, gen_default_shim_code(th->si), objs, 2, 0,
                    GEN_DEFAULT_SHIM_RETURN);
    if (sf == NULL) {
        if (thrown != NULL) {
            _PyErr_SetRaisedException(tstate, thrown);
        }
        return 0;
    }
    /* As gen_send_ex2() does; the thread state's handled exception
     * changes when the frame starts (slp_enter_pushed_frame()). */
    _PyInterpreterFrame *gf = (_PyInterpreterFrame *)gen->gi_iframe;
    _PyFrame_StackPush(gf, Py_NewRef(arg != NULL ? arg : Py_None));
    gen->gi_frame_state = FRAME_EXECUTING;
    gf->previous = sf;
    gf->return_offset = 0;
    tstate->py_recursion_remaining -= 2;    /* as start_frame does */
    th->soft_enter_exc = thrown;
    /* The C functions in between pass on an error, not NULL alone. */
    slp_enter_request(th, gf, sf, gen, 1);
    return 1;
}

/* gen.__next__() called by a CALL of the eval loop (pycall.c), which
 * checked that frames can be pushed: 1 if the generator's frame was,
 * else 0 (the call goes through C, which reports the generator's
 * state). */
int
slp_gen_enter(PyThreadState *tstate, slp_thread *th, PyGenObject *gen)
{
    if (gen->gi_frame_state >= FRAME_EXECUTING) {
        return 0;
    }
    return gen_push(tstate, th, gen, NULL, NULL, NULL);
}

/* FOR_ITER over a generator, before it specialized (FOR_ITER_GEN): the
 * same as that, the generator's frame pushed over the loop's frame,
 * which gets what it yields, or where it returns, goes to the end of the
 * loop.  NULL with the marker, the frame pushed; else what
 * tp_iternext returns. */
PyObject *
_PyStackless_GenIterNext(PyThreadState *tstate, PyObject *iter)
{
    PyGenObject *gen = (PyGenObject *)iter;
    slp_thread *th = ((_PyThreadStateImpl *)tstate)->stackless;
    _PyInterpreterFrame *frame = tstate->current_frame;
    if (gen->gi_frame_state >= FRAME_EXECUTING || th->switch_trap != 0
        || !slp_soft_enabled(th, tstate->interp)
        || tstate->py_recursion_remaining <= 1
        || frame == NULL || frame->owner == FRAME_OWNED_BY_CSTACK
        || _Py_GetBaseOpcode(_PyFrame_GetCode(frame),
                             _PyInterpreterFrame_LASTI(frame)) != FOR_ITER)
    {
        return Py_TYPE(iter)->tp_iternext(iter);
    }
    /* FOR_ITER jumps oparg code units past its cache to its END_FOR. */
    const _Py_CODEUNIT *instr = frame->instr_ptr;
    int oparg = instr->op.arg;
    for (int shift = 8; instr > _PyCode_CODE(_PyFrame_GetCode(frame))
                        && instr[-1].op.code == EXTENDED_ARG; shift += 8)
    {
        instr--;
        oparg |= instr->op.arg << shift;
    }
    _PyInterpreterFrame *gf = (_PyInterpreterFrame *)gen->gi_iframe;
    _PyFrame_StackPush(gf, Py_NewRef(Py_None));
    gen->gi_frame_state = FRAME_EXECUTING;
    gf->return_offset = 0;
    tstate->py_recursion_remaining--;       /* as start_frame does */
    th->soft_enter_return_offset = 1 + INLINE_CACHE_ENTRIES_FOR_ITER + oparg;
    slp_enter_request(th, gf, gf, gen, 1);
    return NULL;
}

/* pycall.c or _PyStackless_GenEnter() pushed frames:
 * the caller waits for them as for any call.  A generator's frame starts
 * as in gen_send_ex2(), with the exception of a throw() raised. */
SLP_NOINLINE _PyInterpreterFrame *
slp_enter_pushed_frame(slp_thread *th, _PyInterpreterFrame *frame)
{
    PyThreadState *tstate = th->tstate;
    _PyInterpreterFrame *f = th->soft_enter;
    PyGenObject *gen = th->soft_enter_gen;
    PyObject *exc = th->soft_enter_exc;
    th->soft_enter_base->previous = frame;
    if (th->soft_enter_return_offset != 0) {
        /* FOR_ITER: where a return of the generator goes. */
        frame->return_offset = th->soft_enter_return_offset;
        th->soft_enter_return_offset = 0;
    }
    th->soft_enter = th->soft_enter_base = NULL;
    th->soft_enter_gen = NULL;
    th->soft_enter_exc = NULL;
    th->switch_trap--;
    if (gen != NULL) {
        gen->gi_exc_state.previous_item = tstate->exc_info;
        tstate->exc_info = &gen->gi_exc_state;
    }
    tstate->current_frame = f;
    if (exc != NULL) {
        /* The eval loop goes to `error:` in the frame, as a throw into
         * it does (throwflag), which instruments its code first. */
        _PyErr_SetRaisedException(tstate, exc);
        _PyErr_ChainStackItem();
        if (_Py_Instrument(_PyFrame_GetCode(f), tstate->interp) < 0) {
            PyErr_FormatUnraisable("Exception instrumenting a generator");
        }
    }
    return f;
}

/* --- contextvars.Context.run() ------------------------------------------
 *
 * ctx.run(func, ...) of a Python function, called by a CALL of the eval
 * loop of a tasklet that switches softly (after it entered the context),
 * pushes func's frame over a shim frame, whose code (context_shim_code)
 * waits for it as a CALL does, and exits the context when it returns or
 * raises.  The shim is as invisible as the generators' one.
 */

#define CTX_SHIM_CALL 1         /* where the shim waits */

static PyObject *
context_exit(PyObject *Py_UNUSED(module), PyObject *ctx)
{
    if (PyContext_Exit(ctx) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef context_exit_def = {
    "run", context_exit, METH_O, NULL
};

static PyCodeObject *
context_shim_code(slp_interp *si)
{
    /* Stack: the context.  An exception of the function is handled at 16
     * (the exception table): the lookup is made at the instruction before
     * the waiting CALL, a NOP. */
    static const _Py_CODEUNIT code[] = {
        {.op = {NOP, 0}},
        {.op = {CALL, 0}},                  /* waits for the frame */
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {SWAP, 2}},                  /* it returned: [value, ctx] */
        {.op = {LOAD_CONST, 0}},            /* context_exit(ctx) */
        {.op = {SWAP, 2}},
        {.op = {PUSH_NULL, 0}},
        {.op = {SWAP, 2}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_TOP, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {LOAD_CONST, 0}},            /* it raised: [ctx, exc] */
        {.op = {COPY, 3}},
        {.op = {PUSH_NULL, 0}},
        {.op = {SWAP, 2}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_TOP, 0}},
        {.op = {RERAISE, 0}},
        {.op = {RESUME, 0}},                /* never reached */
    };
    /* Code units 0 and 1, to 16, at depth 1, without lasti (see
     * Objects/exception_handling_notes.txt). */
    static const char table[] = {(char)(0x80 | 0), 2, 16, 1 << 1};
    return shim_code(&si->context_shim, 2, "run", code,
                     (int)Py_ARRAY_LENGTH(code), &context_exit_def, NULL, 0,
                     5, table, sizeof(table));
}

int
_PyStackless_ContextRun(PyThreadState *tstate, PyObject *ctx,
                        PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames, PyCFunction meth)
{
    static const int ops[] = {CALL, CALL_KW,
                              CALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS,
                              CALL_BUILTIN_FAST_WITH_KEYWORDS, 0};
    slp_thread *th = slp_thread_of(tstate);
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *callable = args[0];
    PyObject *self = NULL;
    if (Py_IS_TYPE(callable, &PyMethod_Type)) {
        self = PyMethod_GET_SELF(callable);
        callable = PyMethod_GET_FUNCTION(callable);
    }
    if (th == NULL || !Py_IS_TYPE(callable, &PyFunction_Type)
        || ((PyFunctionObject *)callable)->vectorcall != _PyFunction_Vectorcall
        || tstate->interp->monitors.tools[
               PY_MONITORING_EVENT_EXCEPTION_HANDLED] != 0
        || !can_push_at_call(th)
        || !called_with(tstate, args, nargs + nkw, ctx, meth, ops))
    {
        return 0;
    }
    _PyInterpreterFrame *sf = push_shim(tstate, context_shim_code(th->si),
                                        &ctx, 1, CTX_SHIM_CALL,
                                        1 + INLINE_CACHE_ENTRIES_CALL);
    if (sf == NULL) {
        return 0;           /* the call through C reports a lack of memory */
    }
    /* func(*args[1:]), with self first for a method: its slot is that of
     * the function, which stays alive in the caller's stack. */
    PyObject *const *argv = args + 1;
    Py_ssize_t n = nargs - 1;
    PyObject *saved = NULL;
    if (self != NULL) {
        argv = args;
        saved = args[0];
        ((PyObject **)args)[0] = self;
        n++;
    }
    _PyInterpreterFrame *f = push_call(tstate, (PyFunctionObject *)callable,
                                       argv, n, kwnames);
    if (saved != NULL) {
        ((PyObject **)args)[0] = saved;
    }
    if (f == NULL) {
        /* Its arguments do not fit: the error is the call's, and the
         * context is exited, as after a call through C. */
        PyObject *exc = _PyErr_GetRaisedException(tstate);
        _PyFrame_ClearExceptCode(sf);
        Py_DECREF(sf->f_executable);
        _PyThreadState_PopFrame(tstate, sf);
        (void)PyContext_Exit(ctx);
        _PyErr_ChainExceptions1(exc);
        return 1;
    }
    f->previous = sf;
    tstate->py_recursion_remaining -= 2;    /* as start_frame does */
    slp_enter_request(th, f, sf, NULL, 1);
    return 1;
}

/* --- channel.send_sequence() --------------------------------------------
 *
 * ch.send_sequence(iterable), called by a CALL of the eval loop of a
 * tasklet that switches softly, pushes a shim frame whose code
 * (send_sequence_shim_code) sends the items with channel.send, softly as
 * any send there, and returns how many it sent.  It starts at once, and is
 * as invisible as the other shims; an exception goes through it.
 */

#define SEQ_SHIM_END_FOR 19     /* where the iteration ends */

static PyCodeObject *
send_sequence_shim_code(slp_interp *si)
{
    /* Stack: the channel, the count, the iterator. */
    static const _Py_CODEUNIT code[] = {
        {.op = {FOR_ITER, SEQ_SHIM_END_FOR - 2}},
        {.op = {CACHE, 0}},
        {.op = {LOAD_CONST, 1}},            /* channel.send(ch, item) */
        {.op = {PUSH_NULL, 0}},
        {.op = {COPY, 6}},
        {.op = {COPY, 4}},
        {.op = {CALL, 2}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_TOP, 0}},               /* its result */
        {.op = {POP_TOP, 0}},               /* the item */
        {.op = {SWAP, 2}},                  /* the count + 1 */
        {.op = {LOAD_CONST, 2}},
        {.op = {BINARY_OP, NB_ADD}},
        {.op = {CACHE, 0}},
        {.op = {SWAP, 2}},
        {.op = {JUMP_BACKWARD, SEQ_SHIM_END_FOR}},      /* to 0 */
        {.op = {CACHE, 0}},
        {.op = {END_FOR, 0}},               /* skipped: [ch, count] */
        {.op = {POP_TOP, 0}},
        {.op = {SWAP, 2}},
        {.op = {POP_TOP, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {RESUME, 0}},                /* never reached */
    };
    assert(code[SEQ_SHIM_END_FOR].op.code == END_FOR);
    PyObject *send = PyDict_GetItemString(PyChannel_Type.tp_dict, "send");
    if (send == NULL) {
        return NULL;
    }
    PyObject *extra[] = {send, _PyLong_GetOne()};
    return shim_code(&si->send_sequence_shim, 3, "send_sequence", code,
                     (int)Py_ARRAY_LENGTH(code), NULL, extra, 2, 8, "", 0);
}

int
slp_send_sequence_soft(slp_thread *th, PyObject *ch, PyObject *it)
{
    PyThreadState *tstate = th->tstate;
    if (!slp_can_park_softly(th, 1) || tstate->py_recursion_remaining <= 1) {
        return 0;
    }
    PyObject *objs[] = {ch, _PyLong_GetZero(), it};
    _PyInterpreterFrame *sf = push_shim(
        tstate, send_sequence_shim_code(th->si), objs, 3, 0, 0);
    if (sf == NULL) {
        return 0;           /* the C loop reports a lack of memory */
    }
    tstate->py_recursion_remaining--;       /* as start_frame does */
    slp_enter_request(th, sf, sf, NULL, 0);
    return 1;
}

/* --- soft-switchable C functions ---------------------------------------
 *
 * PyStackless_CallFunction(), called under the stackless protocol by a
 * C function that the eval loop of a tasklet that switches softly called,
 * pushes a shim frame whose code (softfunc_shim_code) calls the C
 * function, step after step, until it returns: each time it switches
 * softly (it returns Py_UnwindToken), the frame waits in its CALL, as any
 * caller does, and calls it again with the value the tasklet resumes
 * with.  An exception that comes in while it waits (a kill, a throw)
 * goes to a handler that calls it with the exception set, for the
 * function to clean up.  The stack holds the state of the call (its
 * step, its slots; false when the function returned) and the value.
 * The shim starts at once (it is pushed for the CALL that runs, as
 * send_sequence's), and is as invisible as the other shims.
 */

#define SOFTFUNC_CALL 4             /* where the shim waits */
#define SOFTFUNC_EXC_CALL 25        /* where its handler waits */

static PyCodeObject *
softfunc_shim_code(slp_interp *si)
{
    /* Stack: the state, the value. */
    static const _Py_CODEUNIT code[] = {
        {.op = {LOAD_CONST, 1}},            /* step(state, value) */
        {.op = {PUSH_NULL, 0}},
        {.op = {COPY, 4}},
        {.op = {COPY, 4}},
        {.op = {CALL, 2}},                  /* SOFTFUNC_CALL */
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {SWAP, 2}},                  /* 8: its result is the value */
        {.op = {POP_TOP, 0}},
        {.op = {COPY, 2}},                  /* the call still runs? */
        {.op = {TO_BOOL, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {POP_JUMP_IF_FALSE, 1}},     /* to 18 */
        {.op = {CACHE, 0}},
        {.op = {JUMP_BACKWARD_NO_INTERRUPT, 18}},   /* to 0 */
        {.op = {SWAP, 2}},                  /* 18: it returned the value */
        {.op = {POP_TOP, 0}},
        {.op = {RETURN_VALUE, 0}},
        {.op = {LOAD_CONST, 2}},            /* 21: handler, stack: state, */
        {.op = {PUSH_NULL, 0}},             /* value, exception; */
        {.op = {COPY, 5}},                  /* step_exception(state, exc) */
        {.op = {COPY, 4}},
        {.op = {CALL, 2}},                  /* SOFTFUNC_EXC_CALL */
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {SWAP, 2}},                  /* the exception goes */
        {.op = {POP_TOP, 0}},
        {.op = {JUMP_BACKWARD_NO_INTERRUPT, 24}},   /* to 8 */
        {.op = {RESUME, 0}},                /* never reached */
    };
    /* One entry: the first CALL (and its caches) goes to 21, keeping the
     * state and the value (depth 2), without lasti.  It begins with the
     * instruction before: the eval loop looks up where the exception of a
     * callee (or one thrown into a waiting frame) goes at instr_ptr - 1. */
    static const char exctable[] = {
        (char)(0x80 | (SOFTFUNC_CALL - 1)), 2 + INLINE_CACHE_ENTRIES_CALL,
        21, 2 << 1
    };
    assert(code[SOFTFUNC_CALL].op.code == CALL);
    assert(code[SOFTFUNC_EXC_CALL].op.code == CALL);
    PyObject *step, *step_exception;
    if (slp_softfunc_steps(&step, &step_exception) < 0) {
        return NULL;
    }
    PyObject *extra[] = {step, step_exception};
    return shim_code(&si->softfunc_shim, 6, "soft_switchable", code,
                     (int)Py_ARRAY_LENGTH(code), NULL, extra, 2, 7,
                     exctable, sizeof(exctable));
}

int
slp_softfunc_push(slp_thread *th, PyObject *state, PyObject *value)
{
    PyThreadState *tstate = th->tstate;
    if (!slp_can_park_softly(th, 1) || tstate->py_recursion_remaining <= 1) {
        return 0;
    }
    PyObject *objs[] = {state, value};
    _PyInterpreterFrame *sf = push_shim(
        tstate, softfunc_shim_code(th->si), objs, 2, 0, 0);
    if (sf == NULL) {
        return 0;           /* the function runs from C, and says so */
    }
    tstate->py_recursion_remaining--;       /* as start_frame does */
    slp_enter_request(th, sf, sf, NULL, 0);
    return 1;
}

int
slp_soft_function_call(slp_thread *th, PyFunctionObject *func,
                       PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    PyThreadState *tstate = th->tstate;
    if (!(((PyCodeObject *)func->func_code)->co_flags & CO_OPTIMIZED)
        || !slp_can_park_softly(th, 1) || tstate->py_recursion_remaining <= 1)
    {
        return 0;
    }
    _PyInterpreterFrame *f = push_call(tstate, func, args, nargs, kwnames);
    if (f == NULL) {
        return -1;
    }
    tstate->py_recursion_remaining--;       /* as start_frame does */
    slp_enter_request(th, f, f, NULL, 0);
    return 1;
}

/* --- frames that cannot run: the invalid shim ---------------------------
 *
 * A frame that was pickled while it ran C code (a tasklet suspended with
 * its C stack) cannot be restored: what the C code held is lost.  It comes
 * back as a shim frame in its place (spec P-3), whose stack holds the
 * message.  It waits as a caller does, at 0 for 1: whatever its callee
 * returns, or if it is the top frame the value it is resumed with, it
 * raises RuntimeError, which goes on to the frames below. */

static PyObject *
invalid_frame_raise(PyObject *Py_UNUSED(module), PyObject *message)
{
    PyErr_SetObject(PyExc_RuntimeError, message);
    return NULL;
}

static PyMethodDef invalid_frame_raise_def = {
    "invalid_frame", invalid_frame_raise, METH_O, NULL
};

PyCodeObject *
slp_invalid_shim_code(slp_interp *si)
{
    /* Stack: the message. */
    static const _Py_CODEUNIT code[] = {
        {.op = {NOP, 0}},                   /* waits */
        {.op = {POP_TOP, 0}},               /* what it was given */
        {.op = {LOAD_CONST, 0}},            /* invalid_frame_raise(msg) */
        {.op = {PUSH_NULL, 0}},
        {.op = {COPY, 3}},
        {.op = {CALL, 1}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {CACHE, 0}},
        {.op = {RETURN_VALUE, 0}},          /* never reached */
        {.op = {RESUME, 0}},                /* never reached */
    };
    return shim_code(&si->invalid_shim, 5, "invalid_frame", code,
                     (int)Py_ARRAY_LENGTH(code), &invalid_frame_raise_def,
                     NULL, 0, 4, "", 0);
}

/* --- the registry of shims, for pickling (spec P-13) --------------------
 *
 * A pickled shim frame names its code; the code is this interpreter's. */

extern const struct _PyCode_DEF(8) _Py_InitCleanup;

static const char *const shim_names[] = {
    "gen_next", "gen_next_default", "context_run", "send_sequence",
    "init_cleanup", "invalid_frame", "soft_switchable", NULL
};

static PyCodeObject *
shim_by_index(slp_interp *si, int i)
{
    switch (i) {
    case 0: return gen_shim_code(si);
    case 1: return gen_default_shim_code(si);
    case 2: return context_shim_code(si);
    case 3: return send_sequence_shim_code(si);
    case 4: return (PyCodeObject *)&_Py_InitCleanup;
    case 5: return slp_invalid_shim_code(si);
    case 6: return softfunc_shim_code(si);
    }
    return NULL;
}

PyCodeObject *
slp_shim_code_by_name(slp_interp *si, PyObject *name)
{
    for (int i = 0; shim_names[i] != NULL; i++) {
        if (PyUnicode_CompareWithASCIIString(name, shim_names[i]) == 0) {
            PyCodeObject *co = shim_by_index(si, i);
            if (co == NULL && !PyErr_Occurred()) {
                PyErr_NoMemory();
            }
            return co;
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown resume function %R", name);
    return NULL;
}

PyObject *
slp_shim_codes(slp_interp *si)
{
    PyObject *d = PyDict_New();
    for (int i = 0; d != NULL && shim_names[i] != NULL; i++) {
        PyCodeObject *co = shim_by_index(si, i);
        if (co == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_NoMemory();
            }
            Py_CLEAR(d);
        }
        else if (PyDict_SetItemString(d, shim_names[i], (PyObject *)co) < 0) {
            Py_CLEAR(d);
        }
    }
    return d;
}

/* Where the shims wait for their callee (or, send_sequence, switch in a
 * channel.send), with the return offset and the depth of the stack: the
 * only states a shim frame is in while its tasklet is suspended.  In a
 * pickle, a shim frame is a cframe (spec M-21.7) of the shim's kind, i
 * the index where it waits, and its stack slots in ob1..ob3 and n: `to`
 * says where slot k goes (1 to 3: ob1 to ob3, 4: n, an int). */
static const struct {
    int shim, index, return_offset, depth;
    signed char to[4];
} shim_waits[] = {
    {0, 0, GEN_SHIM_RETURN, 1, {1}},        /* the generator */
    {1, 0, GEN_DEFAULT_SHIM_RETURN, 2, {2, 1}}, /* the default, the gen */
    {2, CTX_SHIM_CALL, 1 + INLINE_CACHE_ENTRIES_CALL, 1, {1}}, /* context */
    {3, 6, 1 + INLINE_CACHE_ENTRIES_CALL, 4, {1, 4, 2, 3}},
                                            /* ch, count, it, item */
    {3, 0, 2 + SEQ_SHIM_END_FOR - 2, 3, {1, 4, 2}}, /* a generator it
                                                       iterates */
    {4, 0, 0, 1, {1}},                      /* self, under __init__ */
    {5, 0, 1, 1, {1}},                      /* the message */
    {6, SOFTFUNC_CALL, 1 + INLINE_CACHE_ENTRIES_CALL, 2, {1, 2}},
                                            /* state, value */
    {6, SOFTFUNC_EXC_CALL, 1 + INLINE_CACHE_ENTRIES_CALL, 3, {1, 2, 3}},
                                            /* and the exception */
};

/* The shims pushed to start at once (push_shim() at 0 for 0), with the
 * depth of their stack. */
static const struct {
    int shim, depth;
} shim_starts[] = {
    {3, 3},                                 /* ch, count, it */
    {6, 2},                                 /* state, value */
};

/* Check the code of shim `kind`, made by hand, as the compiler's code is
 * made sure of: the depth of its stack must be the same on every path
 * from each state a frame of it can be in, and stay within its size.  A
 * frame starts at once (shim_starts), or is resumed where it waits
 * (shim_waits): returned to, with its callee's value pushed; a SEND or
 * FOR_ITER that waits for a generator, also at its next instruction, with
 * the value the generator yields pushed; exception handlers are entered
 * as the table says.  0, or -1 with SystemError. */
static int
check_shim(PyCodeObject *co, int kind)
{
    int entries[2 * Py_ARRAY_LENGTH(shim_waits)
                + Py_ARRAY_LENGTH(shim_starts)][2];
    int n = 0;
    const _Py_CODEUNIT *code = _PyCode_CODE(co);
    for (int i = 0; i < (int)Py_ARRAY_LENGTH(shim_starts); i++) {
        if (shim_starts[i].shim == kind) {
            entries[n][0] = 0;
            entries[n][1] = shim_starts[i].depth;
            n++;
        }
    }
    for (int i = 0; i < (int)Py_ARRAY_LENGTH(shim_waits); i++) {
        if (shim_waits[i].shim != kind) {
            continue;
        }
        int index = shim_waits[i].index, depth = shim_waits[i].depth;
        entries[n][0] = index + shim_waits[i].return_offset;
        entries[n][1] = depth + (shim_waits[i].return_offset != 0);
        n++;
        int op = code[index].op.code;
        if (op == SEND || op == FOR_ITER) {
            entries[n][0] = index + 1 + (op == SEND
                                         ? INLINE_CACHE_ENTRIES_SEND
                                         : INLINE_CACHE_ENTRIES_FOR_ITER);
            entries[n][1] = depth + 1;
            n++;
        }
    }
    if (slp_code_check_flow(co, (const int (*)[2])entries, n) < 0) {
        _PyErr_FormatFromCause(PyExc_SystemError,
                               "the code of the shim %R is wrong", co);
        return -1;
    }
    return 0;
}

int
slp_shim_waits_at(slp_interp *si, PyCodeObject *co, int index,
                  int return_offset, int depth)
{
    for (int i = 0; i < (int)Py_ARRAY_LENGTH(shim_waits); i++) {
        if (shim_by_index(si, shim_waits[i].shim) == co
            && shim_waits[i].index == index
            && shim_waits[i].return_offset == return_offset
            && shim_waits[i].depth == depth)
        {
            return 1;
        }
    }
    PyErr_Clear();
    /* Frames of other kinds registered for pickling (cframes.c). */
    return slp_cframe_code_waits_at(si, co, index, return_offset, depth);
}

/* --- shims as cframes ------------------------------------------------------ */

static int
shim_wait_entry(int shim, long index)
{
    for (int i = 0; i < (int)Py_ARRAY_LENGTH(shim_waits); i++) {
        if (shim_waits[i].shim == shim && shim_waits[i].index == index) {
            return i;
        }
    }
    return -1;
}

static PyCodeObject *
shim_kind_code(const slp_cframe_kind *kind, slp_interp *si)
{
    PyCodeObject *co = shim_by_index(si, kind->tag);
    if (co == NULL && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    return co;
}

static int
shim_kind_check(const slp_cframe_kind *kind, PyCFrameObject *cf)
{
    if (!cf->valid) {
        return 0;           /* it comes back as the invalid shim */
    }
    int e = shim_wait_entry(kind->tag, cf->i);
    if (e < 0) {
        PyErr_Format(PyExc_ValueError, "cframe %s: it does not wait at %ld",
                     kind->exec_name, cf->i);
        return -1;
    }
    PyObject *obs[] = {cf->ob1, cf->ob2, cf->ob3};
    int used[3] = {0, 0, 0};
    for (int k = 0; k < shim_waits[e].depth; k++) {
        int to = shim_waits[e].to[k];
        if (to >= 1 && to <= 3) {
            used[to - 1] = 1;
        }
    }
    for (int k = 0; k < 3; k++) {
        if (used[k] != (obs[k] != NULL)) {
            PyErr_Format(PyExc_ValueError, "cframe %s: ob%d must be %s",
                         kind->exec_name, k + 1,
                         used[k] ? "present" : "absent");
            return -1;
        }
    }
    if (cf->n < 0) {
        PyErr_Format(PyExc_ValueError, "cframe %s: n %ld is negative",
                     kind->exec_name, cf->n);
        return -1;
    }
    return 0;
}

static int
shim_kind_reduce(const slp_cframe_kind *kind, slp_interp *si,
                 _PyInterpreterFrame *f, PyCFrameObject *cf)
{
    PyCodeObject *co = _PyFrame_GetCode(f);
    int index = _PyInterpreterFrame_LASTI(f);
    int e = shim_wait_entry(kind->tag, index);
    if (f->stacktop < 0) {
        /* Stopped in C code it called (a hard switch): lost. */
        cf->valid = 0;
        return 0;
    }
    int depth = f->stacktop - co->co_nlocalsplus;
    if (e < 0 || shim_waits[e].return_offset != f->return_offset
        || shim_waits[e].depth != depth)
    {
        PyErr_Format(PyExc_ValueError, "cannot pickle the frame of %s "
                     "where it is", kind->exec_name);
        return -1;
    }
    PyObject **obs[] = {&cf->ob1, &cf->ob2, &cf->ob3};
    for (int k = 0; k < depth; k++) {
        PyObject *v = f->localsplus[co->co_nlocalsplus + k];
        int to = shim_waits[e].to[k];
        if (v == NULL) {
            PyErr_Format(PyExc_ValueError, "cannot pickle the frame of %s: "
                         "a NULL on its stack", kind->exec_name);
            return -1;
        }
        if (to == 4) {
            cf->n = PyLong_Check(v) ? PyLong_AsLong(v) : -1;
            if (cf->n < 0) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "cannot pickle the frame of "
                             "%s: a count of %R", kind->exec_name, v);
                return -1;
            }
        }
        else {
            *obs[to - 1] = Py_NewRef(v);
        }
    }
    cf->i = index;
    cf->valid = 1;
    return 0;
}

static PyObject *
shim_kind_restore(const slp_cframe_kind *kind, slp_interp *si,
                  PyCFrameObject *cf)
{
    PyCodeObject *co = shim_kind_code(kind, si);
    int e = shim_wait_entry(kind->tag, cf->i);
    if (co == NULL) {
        return NULL;
    }
    if (e < 0 || !cf->valid) {
        PyErr_Format(PyExc_ValueError, "cframe %s: it does not wait at %ld",
                     kind->exec_name, cf->i);
        return NULL;
    }
    PyObject *slots[4];
    PyObject *obs[] = {cf->ob1, cf->ob2, cf->ob3};
    PyObject *count = NULL;
    int depth = shim_waits[e].depth;
    for (int k = 0; k < depth; k++) {
        int to = shim_waits[e].to[k];
        if (to == 4) {
            count = PyLong_FromLong(cf->n);
            if (count == NULL) {
                return NULL;
            }
            slots[k] = count;
        }
        else {
            slots[k] = obs[to - 1];
        }
        if (slots[k] == NULL) {
            PyErr_Format(PyExc_ValueError, "cframe %s: ob%d is absent",
                         kind->exec_name, to);
            Py_XDECREF(count);
            return NULL;
        }
    }
    PyObject *fs = slp_frame_state_of_shim(
        co, shim_names[kind->tag], shim_waits[e].index,
        shim_waits[e].return_offset, slots, depth);
    Py_XDECREF(count);
    return fs;
}

static int
shim_kind_waits_at(const slp_cframe_kind *kind, slp_interp *si, int index,
                   int return_offset, int depth)
{
    return 0;       /* the shims' own table answers first */
}

#define SHIM_KIND(name, tag_) {                                         \
    .exec_name = name, .tag = tag_, .check = shim_kind_check,           \
    .code = shim_kind_code, .reduce = shim_kind_reduce,                 \
    .restore = shim_kind_restore, .waits_at = shim_kind_waits_at,       \
}

/* 3.7's names where 3.7 had the same: channel_seq_callback (the loop of
 * send_sequence), slp_tp_init_callback (what is left to do after
 * __init__), execute_soft_switchable_func (a soft-switchable C function:
 * ob1 the state of its call, which pickles by the function's name). */
static const slp_cframe_kind shim_kinds[] = {
    SHIM_KIND("gen_next", 0),
    SHIM_KIND("gen_next_default", 1),
    SHIM_KIND("context_run", 2),
    SHIM_KIND("channel_seq_callback", 3),
    SHIM_KIND("slp_tp_init_callback", 4),
    SHIM_KIND("invalid_frame", 5),
    SHIM_KIND("execute_soft_switchable_func", 6),
};

const slp_cframe_kind *const slp_shim_cframe_kinds[] = {
    &shim_kinds[0], &shim_kinds[1], &shim_kinds[2], &shim_kinds[3],
    &shim_kinds[4], &shim_kinds[5], &shim_kinds[6], NULL
};

int
slp_shim_is_static(PyCodeObject *co)
{
    return co == (PyCodeObject *)&_Py_InitCleanup;
}

const char *
slp_shim_name(slp_interp *si, PyCodeObject *co)
{
    PyObject *mine[] = {si->gen_shim, si->gen_default_shim, si->context_shim,
                        si->send_sequence_shim,
                        (PyObject *)&_Py_InitCleanup, si->invalid_shim,
                        si->softfunc_shim};
    for (int i = 0; i < (int)Py_ARRAY_LENGTH(mine); i++) {
        if ((PyObject *)co == mine[i]) {
            return shim_names[i];
        }
    }
    return NULL;
}
