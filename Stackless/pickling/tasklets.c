/* Tasklets and channels in pickles (spec P-2, P-3, P-4).
 *
 * A tasklet reduces to (type(t), (), state), with the state
 *
 *     (version, flags, tempval, content, exc, extras)
 *
 *   version       format and bytecode magic number (frames.c)
 *   flags         atomic 1, ignore_nesting 2, block_trap 4, pending_irq 8,
 *                 resume_push 16 (its top frame takes the result of the
 *                 builtin it stopped in)
 *   content       a started tasklet: the list of its frames' states, the
 *                 outermost first; a bound one: (func, args, kwargs); else
 *                 None (new, or dead)
 *   exc           the exception its frames handle, or None
 *   extras        None, or a dict: "resume_value", the result its top frame
 *                 resumes with when it has one of its own (else its tempval
 *                 is that result); with PICKLEFLAGS_PRESERVE_TRACING_STATE,
 *                 "trace_function" and "profile_function" (spec P-2)
 *
 * __setstate__ rebuilds the tasklet: it must be new, and it stays paused,
 * in the unpickling thread; insert() or run() it.  Every frame is checked
 * before anything changes (verify.c): a state that does not fit raises
 * ValueError or TypeError and leaves the tasklet as it was.  A frame that
 * ran C code when it was pickled comes back as the invalid shim, which
 * raises RuntimeError when the tasklet gets there.
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

#define F_ATOMIC        1
#define F_IGNORE_NEST   2
#define F_BLOCK_TRAP    4
#define F_PENDING_IRQ   8
#define F_RESUME_PUSH   16

/* --- tasklet.__reduce__ -------------------------------------------------- */

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
        PyObject *fs;
        if (f->owner == FRAME_OWNED_BY_GENERATOR && f->stacktop >= 0) {
            /* Its generator, which pickles the frame (generators.c). */
            fs = Py_NewRef((PyObject *)_PyFrame_GetGenerator(f));
        }
        else {
            fs = slp_frame_state_of(si, f);
            if (fs != NULL && si->reduce_frame != NULL) {
                Py_SETREF(fs, PyObject_CallOneArg(si->reduce_frame, fs));
            }
        }
        if (fs == NULL) {
            goto error;
        }
        int r = PyList_Append(frames, fs);
        Py_DECREF(fs);
        if (r < 0) {
            goto error;
        }
    }
    if (PyList_Reverse(frames) < 0) {
        goto error;
    }
    return frames;

error:
    Py_DECREF(frames);
    return NULL;
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
    long flags = (t->atomic ? F_ATOMIC : 0)
                 | (t->ignore_nesting ? F_IGNORE_NEST : 0)
                 | (t->block_trap ? F_BLOCK_TRAP : 0)
                 | (t->pending_irq ? F_PENDING_IRQ : 0)
                 | (t->resume_push ? F_RESUME_PUSH : 0);
    PyObject *content, *exc = Py_None;
    if (t->state == SLP_STARTED && t->exec.saved) {
        content = frames_of(t);
        if (t->exec.exc_state.exc_value != NULL) {
            exc = t->exec.exc_state.exc_value;
        }
    }
    else if (t->state == SLP_BOUND) {
        content = PyTuple_Pack(3, t->func, t->args,
                               t->kwargs != NULL ? t->kwargs : Py_None);
    }
    else {
        content = Py_NewRef(Py_None);
    }
    if (content == NULL) {
        return NULL;
    }
    /* What few tasklets have: a result of their own to resume with, and
     * with PICKLEFLAGS_PRESERVE_TRACING_STATE, trace and profile
     * functions. */
    PyObject *extras = NULL;
    slp_thread *th = slp_get_thread();
    long pflags = th != NULL ? th->pickle_flags : 0;
    if (t->resume_value != NULL
        || ((pflags & SLP_PICKLEFLAGS_PRESERVE_TRACING_STATE)
            && t->extra != NULL
            && (t->extra->trace_obj != NULL || t->extra->profile_obj != NULL)))
    {
        extras = PyDict_New();
        if (extras == NULL
            || (t->resume_value != NULL
                && PyDict_SetItemString(extras, "resume_value",
                                        t->resume_value) < 0))
        {
            Py_XDECREF(extras);
            Py_DECREF(content);
            return NULL;
        }
        if (pflags & SLP_PICKLEFLAGS_PRESERVE_TRACING_STATE) {
            const char *names[] = {"trace_function", "profile_function"};
            for (int i = 0; i < 2; i++) {
                PyObject *f = PyObject_GetAttrString((PyObject *)t,
                                                     names[i]);
                if (f == NULL || (f != Py_None
                                  && PyDict_SetItemString(extras, names[i],
                                                          f) < 0))
                {
                    Py_XDECREF(f);
                    Py_DECREF(extras);
                    Py_DECREF(content);
                    return NULL;
                }
                Py_DECREF(f);
            }
        }
    }
    PyObject *state = Py_BuildValue("(llONON)", slp_pickle_version(), flags,
                                    t->tempval, content, exc,
                                    extras != NULL ? extras
                                                   : Py_NewRef(Py_None));
    if (state == NULL) {
        return NULL;
    }
    return Py_BuildValue("(O()N)", (PyObject *)Py_TYPE(t), state);
}

/* _wrap.set_reduce_frame(func): func(state) is pickled in place of the
 * state of each frame of a tasklet (spec P-5); it must unpickle to that
 * state.  None restores the default.  Returns the previous func. */
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
    if (n == 0) {
        /* A tasklet of a C function, suspended in it: the invalid shim
         * alone. */
        *size = slp_invalid_shim_code(th->si)->co_framesize;
        return 0;
    }
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
    for (Py_ssize_t i = 0; i < (n > 0 ? n : 1); i++) {
        PyObject *item = n > 0 ? PyList_GET_ITEM(frames, i) : NULL;
        int invalid = item == NULL || item_invalid(frames, i);
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
            PyCodeObject *co = item == NULL ? NULL
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
    st->py_recursion_depth = n > 0 ? (int)n : 1;
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
flag_bits(PyObject *v, long *flags)
{
    if (!PyLong_CheckExact(v)) {
        PyErr_Format(PyExc_TypeError, "tasklet flags must be an int, not "
                     "'%.200s'", Py_TYPE(v)->tp_name);
        return -1;
    }
    *flags = PyLong_AsLong(v);
    if (*flags == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*flags < 0 || *flags >= 32) {
        PyErr_Format(PyExc_ValueError, "bad tasklet flags %ld", *flags);
        return -1;
    }
    return 0;
}

PyObject *
slp_tasklet_setstate(PyTaskletObject *t, PyObject *state)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "a tasklet's state must be a tuple of 6 items");
        return NULL;
    }
    if (slp_check_pickle_version(PyTuple_GET_ITEM(state, 0), "tasklet") < 0) {
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
    long flags;
    if (flag_bits(PyTuple_GET_ITEM(state, 1), &flags) < 0) {
        return NULL;
    }
    PyObject *tempval = PyTuple_GET_ITEM(state, 2);
    PyObject *content = PyTuple_GET_ITEM(state, 3);
    PyObject *exc = PyTuple_GET_ITEM(state, 4);
    PyObject *extras = PyTuple_GET_ITEM(state, 5);
    PyObject *resume_value = NULL, *hooks[2] = {NULL, NULL};
    static const char *const hook_names[] = {"trace_function",
                                             "profile_function"};
    if (extras != Py_None) {
        if (!PyDict_CheckExact(extras)) {
            PyErr_Format(PyExc_TypeError, "a tasklet's extras must be a "
                         "dict or None, not '%.200s'",
                         Py_TYPE(extras)->tp_name);
            return NULL;
        }
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(extras, &pos, &key, &value)) {
            if (PyUnicode_Check(key)
                && PyUnicode_CompareWithASCIIString(key, "resume_value") == 0)
            {
                resume_value = value;
            }
            else if (PyUnicode_Check(key)
                     && PyUnicode_CompareWithASCIIString(key,
                                                         hook_names[0]) == 0
                     && PyCallable_Check(value))
            {
                hooks[0] = value;
            }
            else if (PyUnicode_Check(key)
                     && PyUnicode_CompareWithASCIIString(key,
                                                         hook_names[1]) == 0
                     && PyCallable_Check(value))
            {
                hooks[1] = value;
            }
            else {
                PyErr_Format(PyExc_ValueError,
                             "unknown tasklet extra %R", key);
                return NULL;
            }
        }
    }
    if (exc != Py_None && !PyExceptionInstance_Check(exc)) {
        PyErr_Format(PyExc_TypeError, "a tasklet's handled exception must "
                     "be an exception or None, not '%.200s'",
                     Py_TYPE(exc)->tp_name);
        return NULL;
    }
    int push = (flags & F_RESUME_PUSH) != 0;
    if (PyList_Check(content)) {
        size_t size;
        if (check_frames(content, push, &size) < 0) {
            return NULL;
        }
        Py_ssize_t n = PyList_GET_SIZE(content);
        if (n == 0 || item_invalid(content, n - 1)) {
            push = 1;           /* the invalid shim takes a value */
        }
        if (build_chain(t, content, size, exc) < 0) {
            return NULL;
        }
    }
    else if (PyTuple_Check(content) && PyTuple_GET_SIZE(content) == 3) {
        PyObject *res = PyObject_CallMethod(
            (PyObject *)t, "bind", "OOO", PyTuple_GET_ITEM(content, 0),
            PyTuple_GET_ITEM(content, 1), PyTuple_GET_ITEM(content, 2));
        if (res == NULL) {
            return NULL;
        }
        Py_DECREF(res);
    }
    else if (content != Py_None) {
        PyErr_Format(PyExc_TypeError, "a tasklet's frames must be a list, "
                     "not '%.200s'", Py_TYPE(content)->tp_name);
        return NULL;
    }
    if (t->blocked && t->state != SLP_STARTED) {
        /* A channel linked it, but it has no frame waiting there. */
        slp_channel_remove_blocked(t);
    }
    t->atomic = (flags & F_ATOMIC) != 0;
    t->ignore_nesting = (flags & F_IGNORE_NEST) != 0;
    t->block_trap = (flags & F_BLOCK_TRAP) != 0;
    t->pending_irq = (flags & F_PENDING_IRQ) != 0;
    t->resume_push = push;
    Py_SETREF(t->tempval, Py_NewRef(tempval));
    Py_XSETREF(t->resume_value, Py_XNewRef(resume_value));
    for (int i = 0; i < 2; i++) {
        if (hooks[i] != NULL
            && PyObject_SetAttrString((PyObject *)t, hook_names[i],
                                      hooks[i]) < 0)
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
