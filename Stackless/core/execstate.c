/* What a tasklet takes with it.
 *
 * Every field of a PyThreadState that describes the code running on it,
 * rather than the OS thread, is saved here when a tasklet is switched out
 * and restored when it is switched in.  This file and the inline park and
 * unpark of stackless_impl.h are the only code that knows which fields
 * those are (see the design notes on CPython 3.13, section 3).  The first
 * ones belong to the frames and move with every switch (slp_execstate);
 * the last five belong to the C stack, and only a hard switch, which
 * keeps a C stack, saves them (slp_cstate):
 *
 *   current_frame            the top of the tasklet's frame chain; the
 *                            chain of a suspended tasklet is reachable
 *                            from no thread, so no frame walker sees it
 *   datastack_chunk/top/limit  the tasklet's own chunks of frames
 *   py_recursion_remaining   saved as a depth: the limit may change while
 *                            the tasklet sleeps (sys.setrecursionlimit)
 *   c_recursion_remaining    per C stack, and each tasklet has its own
 *   stackless_eval           the innermost call of the eval loop: per C
 *                            stack too
 *   recursion_headroom       nonzero only while raising RecursionError
 *   exc_info, exc_state      the handled exceptions; exc_state is copied
 *                            by value, since running generators point at
 *                            &tstate->exc_state
 *   context (+context_ver)   contextvars: each tasklet has its own current
 *                            context; the version is bumped so that
 *                            ContextVar caches notice the change
 *   tracing, what_event      set while a monitoring callback runs
 *   delete_later             the trashcan's list, per C stack
 *
 * A suspended chain must not lead into C stack memory: each call of the
 * eval loop from C puts an entry frame on the C stack and links the frames
 * it runs to it, and once the tasklet's stack slice is copied away that
 * memory belongs to another tasklet (cpython#113037).  Saving takes the
 * entry frames out of the chain (remembering each link), restoring puts
 * them back; in between, `tasklet.frame`, `f_back` and anything else that
 * walks the chain sees only the frames in the heap.  The number of entry
 * frames is the tasklet's nesting level plus one.  A soft switch has no
 * entry frame to hide: the chain it parks starts at the eval loop's.
 *
 * Not here, because they are the thread's: the thread id, the GIL state,
 * the thread's dict, async exceptions, async generator hooks, and the
 * trace and profile functions, whose per-tasklet handling (spec D-1) is
 * the scheduler's business.
 */

#include "stackless_impl.h"
#include "pycore_code.h"          // _Py_Instrument()
#include "pycore_genobject.h"     // _PyFrame_GetGenerator()
#include "pycore_pyerrors.h"      // _PyErr_ClearExcState()
#include "pycore_stackless.h"     // _PyStackless_FreeChunk()

/* Take the C stack entry frames out of the chain starting at
 * st->current_frame, remembering them in cst. */
static void
hide_entry_frames(slp_execstate *st, slp_cstate *cst)
{
    _PyInterpreterFrame **link = &st->current_frame;
    cst->nhidden = 0;
    while (*link != NULL) {
        _PyInterpreterFrame *f = *link;
        if (f->owner != FRAME_OWNED_BY_CSTACK) {
            link = &f->previous;
            continue;
        }
        if (cst->nhidden == cst->hidden_capacity
            && slp_cstate_reserve(cst, cst->nhidden + 1) < 0)
        {
            /* slp_switch_reserve() made room before the switch. */
            Py_FatalError("Stackless: out of memory saving a frame chain");
        }
        cst->hidden[cst->nhidden].link = link;
        cst->hidden[cst->nhidden].entry = f;
        cst->nhidden++;
        *link = f->previous;
    }
}

static void
show_entry_frames(slp_cstate *cst)
{
    for (int i = cst->nhidden - 1; i >= 0; i--) {
        *cst->hidden[i].link = cst->hidden[i].entry;
    }
    cst->nhidden = 0;
}

void
slp_execstate_save(PyThreadState *ts, slp_execstate *st, slp_cstate *cst)
{
    slp_frames_save(ts, st);
    slp_execstate_empty(ts);
    hide_entry_frames(st, cst);
    cst->eval_entry = ((_PyThreadStateImpl *)ts)->stackless_eval;
    cst->c_recursion_remaining = ts->c_recursion_remaining;
    cst->recursion_headroom = ts->recursion_headroom;
    cst->tracing = ts->tracing;
    cst->what_event = ts->what_event;
    cst->delete_later = ts->delete_later;
    ts->delete_later = NULL;
}

void
slp_execstate_restore(PyThreadState *ts, slp_execstate *st, slp_cstate *cst)
{
    assert(ts->current_frame == NULL && ts->datastack_chunk == NULL);
    show_entry_frames(cst);
    slp_frames_load(ts, st);
    ((_PyThreadStateImpl *)ts)->stackless_eval = cst->eval_entry;
    ts->c_recursion_remaining = cst->c_recursion_remaining;
    ts->recursion_headroom = cst->recursion_headroom;
    ts->tracing = cst->tracing;
    ts->what_event = cst->what_event;
    ts->delete_later = cst->delete_later;
    cst->delete_later = NULL;
}

/* sys.monitoring and sys.settrace instrument the code of the frames that
 * are running when their events change, not the code of suspended
 * tasklets.  A tasklet resumed after such a change brings its code up to
 * date before it goes on.  Call after the switch: the chain is walked. */
int
slp_reinstrument_frames(PyThreadState *ts)
{
    PyInterpreterState *interp = ts->interp;
    for (_PyInterpreterFrame *f = ts->current_frame; f; f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_CSTACK
            && _Py_Instrument(_PyFrame_GetCode(f), interp) < 0)
        {
            return -1;
        }
    }
    return 0;
}

void
slp_execstate_init(slp_execstate *st, PyObject *context)
{
    memset(st, 0, sizeof(*st));
    st->saved = 1;              /* it holds the (empty) state */
    st->context = Py_XNewRef(context);
}

void
slp_cstate_init(slp_cstate *cst, int c_recursion_remaining)
{
    memset(cst, 0, sizeof(*cst));   /* cst owns no buffer yet */
    cst->c_recursion_remaining = c_recursion_remaining;
    cst->what_event = -1;
}

void
slp_execstate_clear(slp_execstate *st)
{
    if (!st->saved) {
        return;     /* stale copies of a state given back */
    }
    /* A dead tasklet has no frames left: only its chunks remain. */
    assert(st->current_frame == NULL);
    _PyStackChunk *chunk = st->datastack_chunk;
    while (chunk != NULL) {
        _PyStackChunk *prev = chunk->previous;
        _PyStackless_FreeChunk(chunk);
        chunk = prev;
    }
    st->datastack_chunk = NULL;
    st->datastack_top = NULL;
    st->datastack_limit = NULL;
    Py_CLEAR(st->exc_state.exc_value);
    Py_CLEAR(st->context);
    st->saved = 0;
}

/* --- frame chains ------------------------------------------------------
 *
 * A suspended chain is the tasklet's alone: no thread state points into
 * it, and its frames live in the tasklet's data stack, except those of
 * generators, which live in their generator objects.  The chain refers
 * to its thread in one place: the exception state of the lowest generator
 * in it links to the thread state's exc_state, where the generator was
 * entered (gen_send_ex2() and the SEND and FOR_ITER of generators push a
 * generator's gi_exc_state on tstate->exc_info).
 */

/* Clear the frames of a suspended chain that will never run again (the
 * tasklet is killed without a thread to run its handlers, or freed with
 * its frames), top down, as the eval loop clears the frames it leaves: a
 * frame object that outlives its frame (a traceback holds it) takes a
 * copy of it, with its f_back; a generator whose frame is in the chain is
 * finished, no longer running, and its frame cleared.  The chain's data
 * stack is freed after, by slp_execstate_clear().  Finalizers may run. */
void
slp_frames_clear(slp_execstate *st)
{
    if (!st->saved) {
        return;     /* stale copies: the frames are those of a thread */
    }
    _PyInterpreterFrame *top = st->current_frame;
    st->current_frame = NULL;
    st->exc_info = NULL;
    PyObject *exc = PyErr_GetRaisedException();
    /* The generators stay alive until their frames are cleared, whoever
     * drops them meanwhile (a finalizer run by the clearing).  Without
     * memory for that, the frames are cleared all the same. */
    PyObject *gens = NULL;
    for (_PyInterpreterFrame *f = top; f != NULL; f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_GENERATOR) {
            continue;
        }
        if ((gens == NULL && (gens = PyList_New(0)) == NULL)
            || PyList_Append(gens, (PyObject *)_PyFrame_GetGenerator(f)) < 0)
        {
            PyErr_Clear();
            break;
        }
    }
    _PyInterpreterFrame *f = top;
    while (f != NULL) {
        _PyInterpreterFrame *previous = f->previous;
        assert(f->owner != FRAME_OWNED_BY_CSTACK);
        if (f->stacktop < 0) {
            /* Stopped in an instruction that called C (a hard switch),
             * which holds the stack pointer: only the locals are known. */
            f->stacktop = _PyFrame_GetCode(f)->co_nlocalsplus;
        }
        if (f->owner == FRAME_OWNED_BY_GENERATOR) {
            /* As clear_gen_frame() in Python/ceval.c. */
            PyGenObject *gen = _PyFrame_GetGenerator(f);
            gen->gi_frame_state = FRAME_CLEARED;
            gen->gi_exc_state.previous_item = NULL;
            f->previous = NULL;
            _PyFrame_ClearExceptCode(f);
            _PyErr_ClearExcState(&gen->gi_exc_state);
        }
        else {
            /* As clear_thread_frame(); the chunk goes with the chain. */
            _PyFrame_ClearExceptCode(f);
            Py_DECREF(f->f_executable);
        }
        f = previous;
    }
    Py_XDECREF(gens);
    PyErr_SetRaisedException(exc);
}

/* The chain of st moves to the thread of `ts` (bind_thread() of a
 * soft-parked tasklet): the exception state of its lowest generator links
 * to that thread's exc_state. */
void
slp_frames_move_to_thread(slp_execstate *st, PyThreadState *ts)
{
    PyGenObject *lowest = NULL;
    for (_PyInterpreterFrame *f = st->current_frame; f; f = f->previous) {
        if (f->owner == FRAME_OWNED_BY_GENERATOR) {
            lowest = _PyFrame_GetGenerator(f);
        }
    }
    if (lowest != NULL) {
        lowest->gi_exc_state.previous_item = &ts->exc_state;
    }
}

int
slp_cstate_reserve(slp_cstate *cst, int n)
{
    if (n <= cst->hidden_capacity) {
        return 0;
    }
    int cap = cst->hidden_capacity ? 2 * cst->hidden_capacity : 8;
    while (cap < n) {
        cap *= 2;
    }
    slp_hidden_link *h = PyMem_RawRealloc(cst->hidden, cap * sizeof(*h));
    if (h == NULL) {
        return -1;
    }
    cst->hidden = h;
    cst->hidden_capacity = cap;
    return 0;
}

void
slp_cstate_free(slp_cstate *cst)
{
    PyMem_RawFree(cst->hidden);
    cst->hidden = NULL;
    cst->nhidden = cst->hidden_capacity = 0;
}

int
slp_execstate_traverse(slp_execstate *st, _PyInterpreterFrame *calling,
                       visitproc visit, void *arg)
{
    if (!st->saved) {
        return 0;
    }
    /* The frames, with their value stacks (stackdepth.c).  References the
     * suspended C stack holds in C variables are not seen: what they
     * point to stays alive, which is safe. */
    Py_VISIT(st->exc_state.exc_value);
    Py_VISIT(st->context);
    return slp_frames_traverse(st->current_frame, calling, visit, arg);
}
