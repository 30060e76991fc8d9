/* What a tasklet takes with it.
 *
 * Every field of a PyThreadState that describes the code running on it,
 * rather than the OS thread, is saved here when a tasklet is switched out
 * and restored when it is switched in.  This is the only file that knows
 * which fields those are (see the design notes on CPython 3.13, section 3):
 *
 *   current_frame            the top of the tasklet's frame chain; the
 *                            chain of a suspended tasklet is reachable
 *                            from no thread, so no frame walker sees it
 *   datastack_chunk/top/limit  the tasklet's own chunks of frames
 *   py_recursion_remaining   saved as a depth: the limit may change while
 *                            the tasklet sleeps (sys.setrecursionlimit)
 *   c_recursion_remaining    per C stack, and each tasklet has its own
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
 * frames is the tasklet's nesting level plus one.
 *
 * Not here, because they are the thread's: the thread id, the GIL state,
 * the thread's dict, async exceptions, async generator hooks, and the
 * trace and profile functions, whose per-tasklet handling (spec D-1) is
 * the scheduler's business.
 */

#include "stackless_impl.h"
#include "pycore_code.h"          // _Py_Instrument()
#include "pycore_stackless.h"     // _PyStackless_FreeChunk()

/* Take the C stack entry frames out of the chain starting at *first. */
static void
hide_entry_frames(slp_execstate *st)
{
    _PyInterpreterFrame **link = &st->current_frame;
    st->nhidden = 0;
    while (*link != NULL) {
        _PyInterpreterFrame *f = *link;
        if (f->owner != FRAME_OWNED_BY_CSTACK) {
            link = &f->previous;
            continue;
        }
        if (st->nhidden == st->hidden_capacity) {
            int cap = st->hidden_capacity ? 2 * st->hidden_capacity : 8;
            slp_hidden_link *h = PyMem_RawRealloc(st->hidden,
                                                  cap * sizeof(*h));
            if (h == NULL) {
                Py_FatalError("Stackless: out of memory saving a frame chain");
            }
            st->hidden = h;
            st->hidden_capacity = cap;
        }
        st->hidden[st->nhidden].link = link;
        st->hidden[st->nhidden].entry = f;
        st->nhidden++;
        *link = f->previous;
    }
}

static void
show_entry_frames(slp_execstate *st)
{
    for (int i = st->nhidden - 1; i >= 0; i--) {
        *st->hidden[i].link = st->hidden[i].entry;
    }
    st->nhidden = 0;
}

/* The fields every switch moves, soft or hard: the frames, their data
 * stack, the Python recursion depth, the handled exceptions and the
 * context.  The thread state is left empty of them. */
static void
take_frames(PyThreadState *ts, slp_execstate *st)
{
    st->instrumentation_version = _Py_atomic_load_uintptr_relaxed(
        &ts->interp->ceval.instrumentation_version);
    st->saved = 1;
    st->current_frame = ts->current_frame;
    st->datastack_chunk = ts->datastack_chunk;
    st->datastack_top = ts->datastack_top;
    st->datastack_limit = ts->datastack_limit;
    st->py_recursion_depth = ts->py_recursion_limit - ts->py_recursion_remaining;
    st->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
    st->exc_state = ts->exc_state;
    st->context = ts->context;              /* the reference moves */

    ts->current_frame = NULL;
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    ts->exc_info = &ts->exc_state;
    ts->context = NULL;
}

/* The reverse; st keeps only what slp_reinstrument() reads. */
static void
give_frames(PyThreadState *ts, slp_execstate *st)
{
    assert(ts->current_frame == NULL && ts->datastack_chunk == NULL);
    assert(ts->exc_state.exc_value == NULL && ts->context == NULL);
    ts->current_frame = st->current_frame;
    ts->datastack_chunk = st->datastack_chunk;
    ts->datastack_top = st->datastack_top;
    ts->datastack_limit = st->datastack_limit;
    ts->py_recursion_remaining = ts->py_recursion_limit - st->py_recursion_depth;
    ts->exc_state = st->exc_state;
    ts->exc_info = st->exc_info == NULL ? &ts->exc_state : st->exc_info;
    ts->context = st->context;
    ts->context_ver++;

    st->saved = 0;
    st->current_frame = NULL;
    st->datastack_chunk = NULL;
    st->datastack_top = st->datastack_limit = NULL;
    st->exc_info = NULL;
    st->exc_state.exc_value = NULL;
    st->exc_state.previous_item = NULL;
    st->context = NULL;
}

void
slp_execstate_save(PyThreadState *ts, slp_execstate *st)
{
    take_frames(ts, st);
    hide_entry_frames(st);
    st->c_recursion_remaining = ts->c_recursion_remaining;
    st->recursion_headroom = ts->recursion_headroom;
    st->tracing = ts->tracing;
    st->what_event = ts->what_event;
    st->delete_later = ts->delete_later;
    ts->delete_later = NULL;
}

void
slp_execstate_restore(PyThreadState *ts, slp_execstate *st)
{
    show_entry_frames(st);
    give_frames(ts, st);
    ts->c_recursion_remaining = st->c_recursion_remaining;
    ts->recursion_headroom = st->recursion_headroom;
    ts->tracing = st->tracing;
    ts->what_event = st->what_event;
    ts->delete_later = st->delete_later;
    st->delete_later = NULL;
}

/* A soft switch leaves the C stack, and what belongs to it, in place. */
void
slp_execstate_park(PyThreadState *ts, slp_execstate *st)
{
    take_frames(ts, st);
    st->nhidden = 0;
}

void
slp_execstate_unpark(PyThreadState *ts, slp_execstate *st)
{
    give_frames(ts, st);
}

/* sys.monitoring and sys.settrace instrument the code of the frames that
 * are running when their events change, not the code of suspended
 * tasklets.  A tasklet resumed after such a change brings its code up to
 * date before it goes on.  Call after the switch: the chain is walked. */
int
slp_reinstrument(PyThreadState *ts, slp_execstate *st)
{
    PyInterpreterState *interp = ts->interp;
    if (_Py_atomic_load_uintptr_relaxed(&interp->ceval.instrumentation_version)
        == st->instrumentation_version)
    {
        return 0;
    }
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
slp_execstate_init(slp_execstate *st, PyThreadState *ts, PyObject *context)
{
    memset(st, 0, sizeof(*st));     /* st owns no buffer yet */
    st->py_recursion_depth = 0;
    /* A new tasklet starts where the thread's snapshot was taken: its C
     * recursion budget is the one the thread had there, minus nothing. */
    st->c_recursion_remaining = ts->c_recursion_remaining;
    st->what_event = -1;
    st->context = Py_XNewRef(context);
}

void
slp_execstate_clear(slp_execstate *st)
{
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
    slp_execstate_free(st);
}

void
slp_execstate_free(slp_execstate *st)
{
    PyMem_RawFree(st->hidden);
    st->hidden = NULL;
    st->nhidden = st->hidden_capacity = 0;
}

int
slp_execstate_traverse(slp_execstate *st, visitproc visit, void *arg)
{
    if (!st->saved) {
        return 0;
    }
    /* The frames, with their value stacks (stackdepth.c).  References the
     * suspended C stack holds in C variables are not seen: what they
     * point to stays alive, which is safe. */
    Py_VISIT(st->exc_state.exc_value);
    Py_VISIT(st->context);
    return slp_frames_traverse(st->current_frame, visit, arg);
}
