/* Tasklets and channels in pickles (spec P-2, P-3, P-4, M-21.9).
 *
 * A tasklet reduces to (type(t), (), state), with the state of 3.7's
 * layout
 *
 *     (flags, tempval, nesting_level, frames, exc_type, exc_value,
 *      exc_traceback, exc_owner)
 *
 *   flags         bits 0-1 blocked (two's complement of 2 bits: 1 send,
 *                 3 receive), 2 atomic, 3 ignore_nesting, 4 unused, 5
 *                 block_trap, 6 zombie, 7 pending_irq; ours: 8 no_push,
 *                 set only for a top frame preempted after its call (the
 *                 result on its stack already): a top frame that waits
 *                 for a call takes the result of the builtin it stopped
 *                 in, or its tempval
 *   nesting_level its C nesting when pickled (read back, it must be an
 *                 int >= 0; the frames say what can run)
 *   frames        the outermost first: what _wrap.reduce_frame makes of
 *                 each Python frame (a frame state, by default: frames.c),
 *                 running generators whose frames are in the chain
 *                 (generators.c), and cframes (cframes.c) for the other
 *                 entries: our shims, a soft-switchable C function, and at
 *                 the top a result of its own to resume with
 *                 (slp_resume_value), and with PICKLEFLAGS_PRESERVE_
 *                 TRACING_STATE its trace and profile functions
 *                 (slp_restore_tracing).  A bound tasklet, not started:
 *                 [cframe run_cframe(func, args, kwargs)]; a tasklet
 *                 suspended in its function, C code of no frame of its
 *                 own: [invalid run_cframe]; a new or dead one: [].
 *   exc_*         the exception its frames handle, or None three times
 *   exc_owner     None, or the generator whose frame handles the topmost
 *                 handled exception (its state has it; read back, it must
 *                 be a generator, coroutine or async generator, or None)
 *
 * __setstate__ rebuilds the tasklet: it must be new, and it stays paused,
 * in the unpickling thread; insert() or run() it.  Every entry is checked
 * before anything changes (verify.c): a state that does not fit raises
 * ValueError or TypeError and leaves the tasklet as it was.  A frame that
 * ran C code when it was pickled comes back as the invalid shim, which
 * raises RuntimeError when the tasklet gets there.  Besides frame states,
 * the frames may be frame objects (from _wrap.frame, frames.c).
 *
 * A channel reduces to (type(ch), (), (balance, flags, [blocked tasklets])),
 * flags closing 1, schedule_all 2, preference + 1 shifted by 2.  Its
 * __setstate__ links the tasklets listed into its queue, in order.  It may
 * run before the tasklets' own __setstate__ (a tasklet's frame refers to
 * the channel it waits on): those are linked while still new, and stay
 * blocked when their state comes.  One whose state never comes (a pickle
 * made by hand) is dropped from the channel by the first operation that
 * finds it there (channel.c).
 */

#include "../core/stackless_impl.h"
#include "pycore_code.h"
#include "pycore_frame.h"
#include "pycore_genobject.h"

#define F_BLOCKED       3
#define F_ATOMIC        (1 << 2)
#define F_IGNORE_NEST   (1 << 3)
#define F_UNUSED        (1 << 4)
#define F_BLOCK_TRAP    (1 << 5)
#define F_ZOMBIE        (1 << 6)
#define F_PENDING_IRQ   (1 << 7)
#define F_NO_PUSH       (1 << 8)
#define F_ALL           ((1 << 9) - 1)

/* --- tasklet.__reduce__ -------------------------------------------------- */

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

/* A Python frame of the chain, through _wrap.reduce_frame (P-5): the
 * reducer gets its frame object.  Without a reducer, its state. */
static PyObject *
reduce_frame(slp_interp *si, _PyInterpreterFrame *f)
{
    if (si->reduce_frame == NULL || _PyFrame_IsIncomplete(f)) {
        return slp_frame_state_of(si, f);
    }
    PyFrameObject *fo = _PyFrame_GetFrameObject(f);
    if (fo == NULL) {
        return NULL;
    }
    return PyObject_CallOneArg(si->reduce_frame, (PyObject *)fo);
}

static PyObject *
frames_of(PyTaskletObject *t)
{
    slp_interp *si = t->thread != NULL ? t->thread->si
                                       : slp_get_thread()->si;
    PyObject *frames = PyList_New(0);
    if (frames == NULL) {
        return NULL;
    }
    for (_PyInterpreterFrame *f = t->exec.current_frame; f; f = f->previous) {
        PyObject *item;
        const slp_cframe_kind *kind;
        if (f->owner == FRAME_OWNED_BY_GENERATOR && f->stacktop >= 0) {
            /* Its generator, which pickles the frame (generators.c). */
            item = Py_NewRef((PyObject *)_PyFrame_GetGenerator(f));
        }
        else if ((kind = slp_cframe_kind_of_code(
                      si, _PyFrame_GetCode(f))) != NULL)
        {
            item = slp_cframe_of_frame(kind, si, f);
        }
        else {
            item = reduce_frame(si, f);
        }
        if (append_new(frames, item) < 0) {
            goto error;
        }
    }
    if (PyList_Reverse(frames) < 0) {
        goto error;
    }
    if (PyList_GET_SIZE(frames) == 0) {
        /* Suspended in its function, C code: nothing to restore. */
        PyCFrameObject *cf = slp_cframe_new(&slp_cframe_run);
        if (cf != NULL) {
            cf->valid = 0;
        }
        if (append_new(frames, (PyObject *)cf) < 0) {
            goto error;
        }
    }
    return frames;

error:
    Py_DECREF(frames);
    return NULL;
}

/* The generator whose frame handles the topmost exception of t's chain,
 * if not t itself. */
static PyObject *
exc_owner_of(PyTaskletObject *t)
{
    _PyErr_StackItem *ei = t->exec.exc_info;
    if (ei == NULL || ei == &t->exec.exc_state) {
        return Py_None;
    }
    for (_PyInterpreterFrame *f = t->exec.current_frame; f; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_GENERATOR) {
            PyGenObject *gen = _PyFrame_GetGenerator(f);
            if (&gen->gi_exc_state == ei) {
                return ei->exc_value != NULL ? (PyObject *)gen : Py_None;
            }
        }
    }
    return Py_None;
}

PyObject *
slp_tasklet_reduce(PyTaskletObject *t)
{
    /* Current, even where its thread waits for work (S-12): the thread
     * state holds its frames, not t->exec. */
    if (t->thread != NULL && t->thread->current == t) {
        PyErr_SetString(PyExc_RuntimeError,
                        "You cannot __reduce__ the tasklet which is current.");
        return NULL;
    }
    long flags = (t->blocked & F_BLOCKED)
                 | (t->atomic ? F_ATOMIC : 0)
                 | (t->ignore_nesting ? F_IGNORE_NEST : 0)
                 | (t->block_trap ? F_BLOCK_TRAP : 0)
                 | (t->is_zombie ? F_ZOMBIE : 0)
                 | (t->pending_irq ? F_PENDING_IRQ : 0);
    if (t->state == SLP_STARTED && t->exec.saved && t->soft_parked
        && !t->resume_push && t->exec.current_frame != NULL
        && t->exec.current_frame->return_offset != 0)
    {
        flags |= F_NO_PUSH;
    }
    PyObject *frames, *exc = NULL, *owner = Py_None;
    if (t->state == SLP_STARTED && t->exec.saved) {
        frames = frames_of(t);
        exc = t->exec.exc_state.exc_value;
        owner = exc_owner_of(t);
    }
    else if (t->state == SLP_BOUND) {
        frames = PyList_New(0);
        PyCFrameObject *cf = slp_cframe_new(&slp_cframe_run);
        if (cf != NULL) {
            cf->ob1 = Py_NewRef(t->func);
            cf->ob2 = Py_NewRef(t->args);
            cf->ob3 = Py_XNewRef(t->kwargs);
        }
        if (frames != NULL && append_new(frames, (PyObject *)cf) < 0) {
            Py_CLEAR(frames);
        }
        else if (frames == NULL) {
            Py_XDECREF(cf);
        }
    }
    else {
        frames = PyList_New(0);
    }
    if (frames == NULL) {
        return NULL;
    }
    /* At the top, what few tasklets have: a result of their own to resume
     * with, and with PICKLEFLAGS_PRESERVE_TRACING_STATE, trace and profile
     * functions. */
    if (t->resume_value != NULL) {
        PyCFrameObject *cf = slp_cframe_new(&slp_cframe_resume_value);
        if (cf != NULL) {
            cf->ob1 = Py_NewRef(t->resume_value);
        }
        if (append_new(frames, (PyObject *)cf) < 0) {
            Py_DECREF(frames);
            return NULL;
        }
    }
    slp_thread *th = slp_get_thread();
    long pflags = th != NULL ? th->pickle_flags : 0;
    if ((pflags & SLP_PICKLEFLAGS_PRESERVE_TRACING_STATE)
        && t->extra != NULL
        && (t->extra->trace_obj != NULL || t->extra->profile_obj != NULL))
    {
        PyObject *hooks[2] = {NULL, NULL};
        const char *names[] = {"trace_function", "profile_function"};
        for (int i = 0; i < 2; i++) {
            hooks[i] = PyObject_GetAttrString((PyObject *)t, names[i]);
            if (hooks[i] == NULL) {
                Py_XDECREF(hooks[0]);
                Py_DECREF(frames);
                return NULL;
            }
            if (hooks[i] == Py_None) {
                Py_CLEAR(hooks[i]);
            }
        }
        PyCFrameObject *cf = slp_cframe_new(&slp_cframe_tracing);
        if (cf != NULL) {
            cf->ob1 = hooks[0];
            cf->ob2 = hooks[1];
        }
        else {
            Py_XDECREF(hooks[0]);
            Py_XDECREF(hooks[1]);
        }
        if (append_new(frames, (PyObject *)cf) < 0) {
            Py_DECREF(frames);
            return NULL;
        }
    }
    PyObject *nesting = PyObject_GetAttrString((PyObject *)t,
                                               "nesting_level");
    if (nesting == NULL) {
        Py_DECREF(frames);
        return NULL;
    }
    PyObject *state;
    if (exc != NULL) {
        PyObject *tb = PyException_GetTraceback(exc);
        state = Py_BuildValue("(lONNOOOO)", flags, t->tempval, nesting,
                              frames, (PyObject *)Py_TYPE(exc), exc,
                              tb != NULL ? tb : Py_None, owner);
        Py_XDECREF(tb);
    }
    else {
        state = Py_BuildValue("(lONNOOOO)", flags, t->tempval, nesting,
                              frames, Py_None, Py_None, Py_None, owner);
    }
    if (state == NULL) {
        return NULL;
    }
    return Py_BuildValue("(O()N)", (PyObject *)Py_TYPE(t), state);
}

/* _wrap.set_reduce_frame(func): func(frame) is pickled in place of each
 * Python frame of a tasklet (spec P-5); it gets the frame object.  None:
 * the frame's state is.  Returns the previous func. */
PyObject *
slp_set_reduce_frame(PyObject *module, PyObject *func)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    if (func != Py_None && !PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError,
                        "set_reduce_frame() takes a callable or None");
        return NULL;
    }
    slp_interp *si = th->si;
    PyObject *old = si->reduce_frame != NULL ? si->reduce_frame
                                             : Py_NewRef(Py_None);
    si->reduce_frame = func == Py_None ? NULL : Py_NewRef(func);
    return old;
}

/* --- tasklet.__setstate__ -------------------------------------------------- */

static int
is_generator_code(PyCodeObject *co)
{
    return (co->co_flags & (CO_GENERATOR | CO_COROUTINE
                            | CO_ASYNC_GENERATOR)) != 0;
}

/* The frame of item i of a tasklet's frames, for checking: a frame state
 * (valid or not), or a running generator whose frame the tasklet links. */
typedef struct {
    PyCodeObject *code;
    int valid;
    int index;
    int return_offset;
    int shim;
    int nslots;
    PyObject *const *slots;
} frame_view;

static int
view_of(PyObject *item, Py_ssize_t i, frame_view *v)
{
    if (item == Py_None) {
        /* Invalid C code (a cframe): the invalid shim stands for it. */
        *v = (frame_view){NULL, 0, 0, 0, 0, 0, NULL};
        return 0;
    }
    if (slp_FrameState_Check(item)) {
        slp_frame_state *fs = (slp_frame_state *)item;
        *v = (frame_view){fs->code, fs->valid, fs->index, fs->return_offset,
                          fs->shim != NULL, (int)Py_SIZE(fs), fs->slots};
        if (v->valid && is_generator_code(v->code)) {
            PyErr_Format(PyExc_ValueError,
                         "the frame of generator %R outside its generator",
                         v->code->co_name);
            return -1;
        }
        return 0;
    }
    if (slp_is_generator(item)) {
        if (i == 0) {
            PyErr_SetString(PyExc_ValueError,
                            "a tasklet's first frame is not a generator's");
            return -1;
        }
        _PyInterpreterFrame *f = slp_generator_frame_to_link(item);
        if (f == NULL) {
            return -1;
        }
        *v = (frame_view){_PyFrame_GetCode(f), 1,
                          _PyInterpreterFrame_LASTI(f), f->return_offset, 0,
                          f->stacktop, f->localsplus};
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "a tasklet's frame must be a frame state or a generator, "
                 "not '%.200s'", Py_TYPE(item)->tp_name);
    return -1;
}

/* Is item i of frames, a generator, kept alive by its caller, item i-1:
 * is it the top of that frame's stack, as FOR_ITER, SEND and the shims
 * leave it?  Only then is its frame linked: nothing else in the chain
 * refers to it.  A caller that ran C code (invalid) does not count: the
 * generator's frame becomes invalid too. */
static int
generator_kept(PyObject *frames, Py_ssize_t i)
{
    PyObject *item = PyList_GET_ITEM(frames, i);
    PyObject *prev = PyList_GET_ITEM(frames, i - 1);
    if (slp_FrameState_Check(prev)) {
        slp_frame_state *fs = (slp_frame_state *)prev;
        return fs->valid && Py_SIZE(fs) > fs->code->co_nlocalsplus
               && fs->slots[Py_SIZE(fs) - 1] == item;
    }
    if (slp_is_generator(prev)) {
        _PyInterpreterFrame *f =
            (_PyInterpreterFrame *)((PyGenObject *)prev)->gi_iframe;
        return f->stacktop > _PyFrame_GetCode(f)->co_nlocalsplus
               && f->localsplus[f->stacktop - 1] == item;
    }
    return 0;
}

/* The item stands for an invalid frame: an invalid frame state, or a
 * generator whose caller does not keep it. */
static int
item_invalid(PyObject *frames, Py_ssize_t i)
{
    PyObject *item = PyList_GET_ITEM(frames, i);
    if (item == Py_None) {
        return 1;
    }
    if (slp_FrameState_Check(item)) {
        return !((slp_frame_state *)item)->valid;
    }
    return !generator_kept(frames, i);
}

/* Check the frames (a list of frame states and running generators, the
 * outermost first) of a tasklet whose top frame resumes as `resume_push`
 * says; the size of the data stack they need in *size (in pointers). */
static int
check_frames(PyObject *frames, int resume_push, size_t *size)
{
    Py_ssize_t n = PyList_GET_SIZE(frames);
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return -1;
    }
    *size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(frames, i);
        frame_view v;
        if (view_of(item, i, &v) < 0) {
            return -1;
        }
        if (slp_is_generator(item)) {
            /* Linked once only. */
            for (Py_ssize_t j = 0; j < i; j++) {
                if (PyList_GET_ITEM(frames, j) == item) {
                    PyErr_SetString(PyExc_ValueError,
                                    "a generator twice in a tasklet");
                    return -1;
                }
            }
        }
        PyCodeObject *co = v.code;
        if (item_invalid(frames, i)) {
            if (slp_is_generator(item)
                && PyList_GET_ITEM(frames, i - 1) != NULL
                && !item_invalid(frames, i - 1))
            {
                PyErr_Format(PyExc_ValueError,
                             "generator %R is not kept by its caller",
                             co->co_name);
                return -1;
            }
            *size += slp_invalid_shim_code(th->si)->co_framesize;
            continue;
        }
        int top = i == n - 1;
        slp_frame_check fc = {
            .code = co,
            .index = v.index,
            .return_offset = v.return_offset,
            .mode = !top ? SLP_RESUME_PUSH
                    : v.return_offset == 0 ? SLP_RESUME_BEFORE
                    : resume_push ? SLP_RESUME_PUSH : SLP_RESUME_NOPUSH,
            .depth = v.nslots - co->co_nlocalsplus,
            .shim = v.shim,
            .slots = v.slots,
        };
        if (top && v.return_offset == 0 && resume_push) {
            PyErr_Format(PyExc_ValueError,
                         "frame of %R: stopped before its instruction, it "
                         "takes no result", co->co_name);
            return -1;
        }
        if (slp_verify_frame(&fc) < 0) {
            return -1;
        }
        if (!slp_is_generator(item)) {
            *size += co->co_framesize;
        }
    }
    return 0;
}

/* Build the chain of `frames` in a new data stack, for t->exec. */
static int
build_chain(PyTaskletObject *t, PyObject *frames, size_t size, PyObject *exc)
{
    slp_thread *th = slp_get_thread();
    size_t bytes = offsetof(_PyStackChunk, data)
                   + (1 + size) * sizeof(PyObject *);
    /* Room for the frames, data[0] unused as in a root chunk. */
    _PyStackChunk *chunk = _PyStackless_AllocChunk(bytes);
    if (chunk == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    chunk->previous = NULL;
    chunk->size = bytes;
    chunk->top = 0;
    PyObject **top = &chunk->data[1];
    _PyInterpreterFrame *below = NULL, *base = NULL;
    _PyErr_StackItem *exc_below = &th->tstate->exc_state;
    Py_ssize_t n = PyList_GET_SIZE(frames);
    assert(n > 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(frames, i);
        int invalid = item_invalid(frames, i);
        if (!invalid && slp_is_generator(item)) {
            /* Its frame is its generator's; it handles its exceptions as
             * it runs (gen_send_ex2() pushed them). */
            PyGenObject *gen = (PyGenObject *)item;
            _PyInterpreterFrame *f = (_PyInterpreterFrame *)gen->gi_iframe;
            f->previous = below;
            below = f;
            gen->gi_exc_state.previous_item = exc_below;
            exc_below = &gen->gi_exc_state;
            continue;
        }
        _PyInterpreterFrame *f = (_PyInterpreterFrame *)top;
        if (!invalid) {
            slp_frame_state *fs = (slp_frame_state *)item;
            slp_frame_state_install(fs, f);
            top += fs->code->co_framesize;
        }
        else {
            PyCodeObject *shim = slp_invalid_shim_code(th->si);
            PyCodeObject *co = item == NULL || item == Py_None ? NULL
                : slp_FrameState_Check(item) ? ((slp_frame_state *)item)->code
                : _PyFrame_GetCode(
                    (_PyInterpreterFrame *)((PyGenObject *)item)->gi_iframe);
            PyObject *msg = co != NULL ? PyUnicode_FromFormat(
                "cannot execute invalid frame with %R: frame had a C state "
                "that can't be restored.", co->co_name)
                : PyUnicode_FromString(
                "cannot execute invalid frame of C code: it had a C state "
                "that can't be restored.");
            if (msg == NULL) {
                msg = Py_NewRef(Py_None);   /* still raises */
                PyErr_Clear();
            }
            f->f_executable = Py_NewRef(shim);
            f->f_funcobj = Py_NewRef(Py_None);
            f->f_globals = f->f_builtins = NULL;
            f->f_locals = NULL;
            f->frame_obj = NULL;
            f->instr_ptr = _PyCode_CODE(shim);
            f->return_offset = 1;
            f->owner = FRAME_OWNED_BY_THREAD;
            f->localsplus[0] = msg;
            f->stacktop = 1;
            top += shim->co_framesize;
        }
        f->previous = below;
        if (base == NULL) {
            base = f;
        }
        below = f;
    }
    slp_execstate *st = &t->exec;
    slp_execstate_init(st, NULL);
    st->current_frame = below;
    st->datastack_chunk = chunk;
    st->datastack_top = top;
    st->datastack_limit = (PyObject **)((char *)chunk + bytes);
    st->py_recursion_depth = (int)n;
    st->exc_state.exc_value = exc == Py_None ? NULL : Py_NewRef(exc);
    st->exc_info = exc_below == &th->tstate->exc_state ? NULL : exc_below;
    /* Its code is instrumented as the interpreter wants when it resumes. */
    st->instrumentation_version = 0;
    t->base_frame = base;
    t->soft_parked = 1;
    t->state = SLP_STARTED;
    return 0;
}

static int
int_of(PyObject *v, const char *what, long lo, long hi, long *x)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's %s must be an int, not "
                     "'%.200s'", what, Py_TYPE(v)->tp_name);
        return -1;
    }
    *x = PyLong_AsLong(v);
    if ((*x == -1 && PyErr_Occurred()) || *x < lo || *x > hi) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "bad tasklet %s %R", what, v);
        return -1;
    }
    return 0;
}

/* What a tasklet's frames say, once read: the chain's entries (frame
 * states, running generators, None for invalid C code), and the rest. */
typedef struct {
    PyObject *chain;            /* a new list */
    PyObject *run;              /* a valid run_cframe: a bound tasklet */
    PyObject *resume_value;
    PyObject *hooks[2];         /* trace, profile */
} frames_read;

static int
read_frames(PyObject *frames, frames_read *r)
{
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return -1;
    }
    memset(r, 0, sizeof(*r));
    r->chain = PyList_New(0);
    if (r->chain == NULL) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(frames);
    /* The tasklet-level cframes are at the top: from there, down. */
    Py_ssize_t top = n;
    int seen_tracing = 0;
    while (top > 0) {
        PyObject *item = PyList_GET_ITEM(frames, top - 1);
        if (!PyCFrame_Check(item)) {
            break;
        }
        PyCFrameObject *cf = (PyCFrameObject *)item;
        if (cf->kind == &slp_cframe_tracing && !seen_tracing
            && r->resume_value == NULL)
        {
            seen_tracing = 1;
            r->hooks[0] = cf->ob1 != Py_None ? cf->ob1 : NULL;
            r->hooks[1] = cf->ob2 != Py_None ? cf->ob2 : NULL;
        }
        else if (cf->kind == &slp_cframe_resume_value
                 && r->resume_value == NULL)
        {
            r->resume_value = cf->ob1;
        }
        else {
            break;
        }
        top--;
    }
    for (Py_ssize_t i = 0; i < top; i++) {
        PyObject *item = PyList_GET_ITEM(frames, i), *entry;
        if (PyCFrame_Check(item)) {
            PyCFrameObject *cf = (PyCFrameObject *)item;
            if (cf->kind == NULL) {
                PyErr_SetString(PyExc_ValueError,
                                "an empty cframe in a tasklet's frames");
                goto error;
            }
            if (cf->kind == &slp_cframe_run && cf->valid) {
                if (top != 1 || r->resume_value != NULL) {
                    PyErr_SetString(PyExc_ValueError, "a run_cframe is a "
                                    "tasklet's only frame");
                    goto error;
                }
                r->run = item;
                break;
            }
            if (!cf->valid) {
                entry = Py_NewRef(Py_None);
            }
            else if (cf->kind->restore != NULL) {
                entry = cf->kind->restore(cf->kind, th->si, cf);
            }
            else {
                PyErr_Format(PyExc_ValueError, "a cframe %s where frames "
                             "of the chain are", cf->kind->exec_name);
                goto error;
            }
        }
        else if (PyFrame_Check(item)) {
            entry = slp_frame_state_of_object(NULL, item);
        }
        else if (slp_FrameState_Check(item) || slp_is_generator(item)) {
            entry = Py_NewRef(item);
        }
        else {
            PyErr_Format(PyExc_TypeError, "a tasklet's frame must be a "
                         "frame, a frame state, a generator or a cframe, "
                         "not '%.200s'", Py_TYPE(item)->tp_name);
            goto error;
        }
        if (append_new(r->chain, entry) < 0) {
            goto error;
        }
    }
    return 0;

error:
    Py_CLEAR(r->chain);
    return -1;
}

PyObject *
slp_tasklet_setstate(PyTaskletObject *t, PyObject *state)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "a tasklet's state must be a tuple of 8 items");
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    if (t->state != SLP_NEW || t->func != NULL || t->in_runqueue
        || t->is_main || t->thread != th)
    {
        PyErr_SetString(PyExc_RuntimeError,
                        "only a new tasklet of this thread takes a state");
        return NULL;
    }
    PyObject *const *it = &PyTuple_GET_ITEM(state, 0);
    long flags, nesting;
    if (int_of(it[0], "flags", 0, F_ALL, &flags) < 0
        || int_of(it[2], "nesting level", 0, INT_MAX, &nesting) < 0)
    {
        return NULL;
    }
    if ((flags & F_BLOCKED) == 2) {
        PyErr_Format(PyExc_ValueError, "bad tasklet flags %ld: blocked -2",
                     flags);
        return NULL;
    }
    PyObject *tempval = it[1];
    PyObject *frames = it[3];
    PyObject *exc_type = it[4], *exc = it[5], *exc_tb = it[6];
    PyObject *owner = it[7];
    if (!PyList_Check(frames)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's frames must be a list, "
                     "not '%.200s'", Py_TYPE(frames)->tp_name);
        return NULL;
    }
    if (exc != Py_None && !PyExceptionInstance_Check(exc)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's handled exception must "
                     "be an exception or None, not '%.200s'",
                     Py_TYPE(exc)->tp_name);
        return NULL;
    }
    if (exc_type != Py_None && !PyExceptionClass_Check(exc_type)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's exception type must be "
                     "an exception class or None, not '%.200s'",
                     Py_TYPE(exc_type)->tp_name);
        return NULL;
    }
    if (exc != Py_None && exc_type != Py_None
        && !PyObject_TypeCheck(exc, (PyTypeObject *)exc_type))
    {
        PyErr_SetString(PyExc_TypeError, "a tasklet's handled exception is "
                        "not of its exception type");
        return NULL;
    }
    if (exc_tb != Py_None && !PyTraceBack_Check(exc_tb)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's exception traceback must "
                     "be a traceback or None, not '%.200s'",
                     Py_TYPE(exc_tb)->tp_name);
        return NULL;
    }
    if (owner != Py_None && !slp_is_generator(owner)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's exception owner must be "
                     "a generator or None, not '%.200s'",
                     Py_TYPE(owner)->tp_name);
        return NULL;
    }
    frames_read r;
    if (read_frames(frames, &r) < 0) {
        return NULL;
    }
    PyObject *chain = r.chain;
    Py_ssize_t n = PyList_GET_SIZE(chain);
    /* The top frame takes a result if it waits for its call. */
    int push = 0;
    if (n > 0 && r.run == NULL) {
        frame_view v;
        if (view_of(PyList_GET_ITEM(chain, n - 1), n - 1, &v) < 0) {
            Py_DECREF(chain);
            return NULL;
        }
        push = v.return_offset != 0 && !(flags & F_NO_PUSH);
    }
    if (r.run != NULL) {
        PyCFrameObject *cf = (PyCFrameObject *)r.run;
        PyObject *res = PyObject_CallMethod(
            (PyObject *)t, "bind", "OOO", cf->ob1, cf->ob2,
            cf->ob3 != NULL ? cf->ob3 : Py_None);
        Py_DECREF(chain);
        if (res == NULL) {
            return NULL;
        }
        Py_DECREF(res);
    }
    else if (n > 0) {
        size_t size;
        if (check_frames(chain, push, &size) < 0) {
            Py_DECREF(chain);
            return NULL;
        }
        if (item_invalid(chain, n - 1)) {
            push = 1;           /* the invalid shim takes a value */
        }
        if (build_chain(t, chain, size, exc) < 0) {
            Py_DECREF(chain);
            return NULL;
        }
        Py_DECREF(chain);
    }
    else {
        Py_DECREF(chain);
    }
    if (t->blocked && t->state != SLP_STARTED) {
        /* A channel linked it, but it has no frame waiting there. */
        slp_channel_remove_blocked(t);
    }
    if (exc != Py_None && exc_tb != Py_None) {
        /* The traceback of a pickled exception is pickled beside it. */
        PyException_SetTraceback(exc, exc_tb);
    }
    t->atomic = (flags & F_ATOMIC) != 0;
    t->ignore_nesting = (flags & F_IGNORE_NEST) != 0;
    t->block_trap = (flags & F_BLOCK_TRAP) != 0;
    t->pending_irq = (flags & F_PENDING_IRQ) != 0;
    t->resume_push = t->state == SLP_STARTED && push;
    Py_SETREF(t->tempval, Py_NewRef(tempval));
    Py_XSETREF(t->resume_value, t->state == SLP_STARTED
                                ? Py_XNewRef(r.resume_value) : NULL);
    static const char *const hook_names[] = {"trace_function",
                                             "profile_function"};
    for (int i = 0; i < 2; i++) {
        if (r.hooks[i] != NULL && t->state == SLP_STARTED
            && PyObject_SetAttrString((PyObject *)t, hook_names[i],
                                      r.hooks[i]) < 0)
        {
            /* Only without memory: the tasklet is restored untraced. */
            PyErr_Clear();
        }
    }
    Py_RETURN_NONE;
}

/* --- channels ---------------------------------------------------------- */

PyObject *
slp_channel_reduce(PyChannelObject *ch)
{
    PyObject *blocked = PyList_New(0);
    if (blocked == NULL) {
        return NULL;
    }
    for (PyTaskletObject *t = ch->head; t != NULL; t = t->next) {
        if (PyList_Append(blocked, (PyObject *)t) < 0) {
            Py_DECREF(blocked);
            return NULL;
        }
    }
    long flags = (ch->closing ? 1 : 0) | (ch->schedule_all ? 2 : 0)
                 | ((long)(ch->preference + 1) << 2);
    return Py_BuildValue("(O()(nlN))", (PyObject *)Py_TYPE(ch), ch->balance,
                         flags, blocked);
}

PyObject *
slp_channel_setstate(PyChannelObject *ch, PyObject *state)
{
    Py_ssize_t balance;
    long flags;
    PyObject *blocked;
    if (!PyTuple_Check(state)
        || !PyArg_ParseTuple(state, "nlO!;a channel's state", &balance,
                             &flags, &PyList_Type, &blocked))
    {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError,
                            "a channel's state must be a tuple");
        }
        return NULL;
    }
    if (flags < 0 || flags >= 12 || (flags >> 2) > 2) {
        PyErr_Format(PyExc_ValueError, "bad channel flags %ld", flags);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(blocked);
    if (balance != n && balance != -n) {
        PyErr_Format(PyExc_ValueError, "a channel's balance %zd with %zd "
                     "blocked tasklets", balance, n);
        return NULL;
    }
    if (ch->head != NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a channel with blocked tasklets takes no state");
        return NULL;
    }
    slp_thread *th = slp_get_thread();
    if (th == NULL) {
        return NULL;
    }
    int dir = balance > 0 ? 1 : -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(blocked, i);
        if (!PyTasklet_Check(item)) {
            PyErr_Format(PyExc_TypeError, "a channel's blocked tasklet must "
                         "be a tasklet, not '%.200s'",
                         Py_TYPE(item)->tp_name);
            return NULL;
        }
        PyTaskletObject *t = (PyTaskletObject *)item;
        if (t->blocked && t->channel == ch) {
            continue;
        }
        int paused_frames = t->state == SLP_STARTED && t->soft_parked;
        int awaiting_state = t->state == SLP_NEW && t->func == NULL;
        if (t->blocked || t->in_runqueue || t->thread != th || t->is_main
            || !(paused_frames || awaiting_state))
        {
            PyErr_SetString(PyExc_ValueError,
                            "a channel can take only paused tasklets of "
                            "this thread, or new ones");
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTaskletObject *t = (PyTaskletObject *)PyList_GET_ITEM(blocked, i);
        if (!t->blocked) {
            slp_channel_link_blocked(ch, t, dir);
        }
    }
    ch->closing = (flags & 1) != 0;
    ch->schedule_all = (flags & 2) != 0;
    ch->preference = (int)(flags >> 2) - 1;
    Py_RETURN_NONE;
}

/* --- the dicts of modules (spec P-9) -------------------------------------
 *
 * The C pickler asks for each dict it saves (Modules/_pickle.c): only the
 * __dict__ of a module of sys.modules, found by its own __name__, goes by
 * reference.  The Python pickler does the same in stackless.py. */

int _PyStackless_PickleModuleDicts = 0;

PyObject *
_PyStackless_ModuleDictReduce(PyObject *table, PyObject *dict)
{
    PyObject *name, *mod = NULL, *res = NULL;
    if (PyDict_GetItemRef(dict, &_Py_ID(__name__), &name) < 0) {
        return NULL;
    }
    if (name == NULL || !PyUnicode_Check(name)) {
        Py_XDECREF(name);
        return Py_NewRef(Py_None);
    }
    mod = PyImport_GetModule(name);
    Py_DECREF(name);
    if (mod == NULL) {
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    }
    if (!PyModule_Check(mod) || PyModule_GetDict(mod) != dict) {
        Py_DECREF(mod);
        return Py_NewRef(Py_None);
    }
    /* Only where modules themselves are reduced (import stackless). */
    int has = PyMapping_HasKeyWithError(table, (PyObject *)&PyModule_Type);
    if (has <= 0) {
        Py_DECREF(mod);
        return has < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *builtins = PyEval_GetBuiltins();      /* borrowed */
    PyObject *getattr = builtins != NULL
        ? PyDict_GetItemWithError(builtins, &_Py_ID(getattr)) : NULL;
    if (getattr != NULL) {
        res = Py_BuildValue("(O(OO))", getattr, mod, &_Py_ID(__dict__));
    }
    else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_RuntimeError, "no builtin getattr");
    }
    Py_DECREF(mod);
    return res;
}
