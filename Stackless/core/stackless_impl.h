#ifndef Py_STACKLESS_IMPL_H
#define Py_STACKLESS_IMPL_H

/* The Stackless core: data structures shared by its files.
 *
 *   thread.c      per-interpreter and per-thread state, and their ends
 *   runqueue.c    the runqueue, and who runs next (deadlock rules)
 *   switch.c      what every switch does, and the hard switch
 *   runner.c      where tasklets start and end: the thread's snapshot
 *   softswitch.c  soft switching: parking and resuming frame chains in
 *                 the eval loop, where a preempted frame resumes
 *   shims.c       frames pushed in place of C calls, and shim frames
 *   watchdog.c    schedule(), run(), the timer and preemption
 *   softcall.c    how the builtins that switch are called, and the
 *                 chunks of the frame data stack
 *   execstate.c   what a tasklet takes with it: the thread-state fields
 *                 saved and restored on every switch
 *   cstack.c      saved C stack slices (hard switching), over platf/
 *   stackdepth.c  the value stack of a suspended frame, for the collector
 *   tasklet.c     the tasklet type
 *   channel.c     the channel type
 *   bomb.c        the bomb type (an exception in transit)
 *
 * Ownership.  The runqueue and each channel's queue hold a strong
 * reference to every tasklet in them; a thread's `current` and `main` are
 * strong references of their own.  A tasklet holds a strong reference to
 * the channel it is blocked on.  A blocked tasklet is in its channel's
 * queue and in no runqueue; a paused one is in no chain.
 */

#include "Python.h"
#include "pycore_frame.h"
#include "pycore_interp.h"
#include "pycore_pystate.h"
#include "pycore_stackless.h"
#include "stackless_api.h"        // the types and the public API
#include "cstack.h"

#if defined(__GNUC__)
#  define SLP_NOINLINE __attribute__((noinline))
#  define SLP_NORETURN __attribute__((noreturn))
#  define SLP_INLINE inline __attribute__((always_inline))
#else
#  define SLP_NOINLINE
#  define SLP_NORETURN
#  define SLP_INLINE inline
#endif

typedef struct _slp_thread slp_thread;
typedef struct _tasklet PyTaskletObject;
typedef struct _channel PyChannelObject;

/* --- execstate.c ------------------------------------------------------- */

/* A link of a suspended frame chain that pointed to an entry frame of the
 * eval loop, which lives on the C stack (see execstate.c). */
typedef struct {
    _PyInterpreterFrame **link;
    _PyInterpreterFrame *entry;
} slp_hidden_link;

/* The part of a PyThreadState that belongs to the running tasklet's
 * frames: what every switch, soft or hard, moves. */
typedef struct {
    _PyInterpreterFrame *current_frame;
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    int py_recursion_depth;         /* limit - remaining: limits may change */
    int saved;                      /* holds a suspended tasklet's state */
    _PyErr_StackItem *exc_info;     /* NULL: &tstate->exc_state */
    _PyErr_StackItem exc_state;
    PyObject *context;
    uintptr_t instrumentation_version;  /* the interpreter's, at saving */
} slp_execstate;

/* The part that belongs to the tasklet's C stack: what only a hard
 * switch saves. */
typedef struct {
    /* The innermost call of the eval loop on the C stack. */
    _PyInterpreterFrame *eval_entry;
    int c_recursion_remaining;
    int recursion_headroom;
    int tracing;
    int what_event;
    PyObject *delete_later;
    /* While suspended: the entry frames taken out of the chain. */
    slp_hidden_link *hidden;
    int nhidden;
    int hidden_capacity;
    /* While suspended: the top frame, if the switch was made by a
     * builtin its CALL called, whose inputs are then intact; else NULL
     * (see stackdepth.c). */
    _PyInterpreterFrame *calling_frame;
    /* While suspended: switched by a builtin that C code called, from the
     * top frame's instruction (tasklet.c_calls). */
    int switched_in_c;
} slp_cstate;

/* A hard switch saves and restores both parts. */
extern void slp_execstate_save(PyThreadState *ts, slp_execstate *st,
                               slp_cstate *cst);
extern void slp_execstate_restore(PyThreadState *ts, slp_execstate *st,
                                  slp_cstate *cst);

/* The interpreter's version of instrumentation, which sys.monitoring and
 * sys.settrace bump: a relaxed atomic load (a plain one under the GIL,
 * which the compiler does not fail to inline). */
static SLP_INLINE uintptr_t
slp_instrumentation_version(PyInterpreterState *interp)
{
#ifdef Py_GIL_DISABLED
    return _Py_atomic_load_uintptr_relaxed(
        &interp->ceval.instrumentation_version);
#else
    return interp->ceval.instrumentation_version;
#endif
}

/* Save and restore only the fields every switch moves, soft or hard: the
 * frames, their data stack, the Python recursion depth, the handled
 * exceptions and the context (see execstate.c).  Inline: soft switches
 * do little else.  slp_frames_save() copies them into st, which holds
 * them from then on (an empty chunk grown above the frames goes: a
 * blocked tasklet stays small); slp_frames_load() copies them back. */
static SLP_INLINE void
slp_frames_save(PyThreadState *ts, slp_execstate *st)
{
    if (ts->datastack_chunk != NULL && _PyStackless_EMPTY_GROWN_CHUNK(ts)) {
        _PyStackless_PopGrownChunk(ts);
    }
    st->instrumentation_version = slp_instrumentation_version(ts->interp);
    st->saved = 1;
    st->current_frame = ts->current_frame;
    st->datastack_chunk = ts->datastack_chunk;
    st->datastack_top = ts->datastack_top;
    st->datastack_limit = ts->datastack_limit;
    st->py_recursion_depth = ts->py_recursion_limit
                             - ts->py_recursion_remaining;
    st->exc_info = ts->exc_info == &ts->exc_state ? NULL : ts->exc_info;
    st->exc_state = ts->exc_state;
    st->context = ts->context;              /* the reference moves */
}

static SLP_INLINE void
slp_frames_load(PyThreadState *ts, slp_execstate *st)
{
    assert(st->saved);
    st->saved = 0;
    ts->current_frame = st->current_frame;
    ts->datastack_chunk = st->datastack_chunk;
    ts->datastack_top = st->datastack_top;
    ts->datastack_limit = st->datastack_limit;
    ts->py_recursion_remaining = ts->py_recursion_limit
                                 - st->py_recursion_depth;
    ts->exc_state = st->exc_state;
    ts->exc_info = st->exc_info == NULL ? &ts->exc_state : st->exc_info;
    ts->context = st->context;
    ts->context_ver++;      /* ContextVar caches see the change */
    /* st keeps stale copies, which `saved` tells nobody to read. */
}

/* The thread state holds no frames, once they are saved and before the
 * state of another tasklet is loaded, where code may run in between. */
static inline void
slp_execstate_empty(PyThreadState *ts)
{
    ts->current_frame = NULL;
    ts->datastack_chunk = NULL;
    ts->datastack_top = NULL;
    ts->datastack_limit = NULL;
    ts->exc_state.exc_value = NULL;
    ts->exc_state.previous_item = NULL;
    ts->exc_info = &ts->exc_state;
    ts->context = NULL;
}

/* The state a new tasklet starts with: no frames, an empty data stack,
 * recursion depth 0, no handled exception, `context` (may be NULL); the C
 * state of the thread's snapshot, where new tasklets start. */
extern void slp_execstate_init(slp_execstate *st, PyObject *context);
extern void slp_cstate_init(slp_cstate *cst, int c_recursion_remaining);
/* Release what a dead tasklet's state still owns (its data stack). */
extern void slp_execstate_clear(slp_execstate *st);
/* Clear the frames of a suspended chain that will never run again: frame
 * objects keep copies, generators in it are finished (execstate.c). */
extern void slp_frames_clear(slp_execstate *st);
/* The suspended chain moves to the thread of ts (bind_thread()). */
extern void slp_frames_move_to_thread(slp_execstate *st, PyThreadState *ts);
extern int slp_execstate_traverse(slp_execstate *st,
                                  _PyInterpreterFrame *calling,
                                  visitproc visit, void *arg);
/* After resuming: re-instrument the tasklet's code if monitoring events
 * changed while it was suspended. */
extern int slp_reinstrument_frames(PyThreadState *ts);

static inline int
slp_reinstrument(PyThreadState *ts, slp_execstate *st)
{
    if (slp_instrumentation_version(ts->interp)
        == st->instrumentation_version)
    {
        return 0;
    }
    return slp_reinstrument_frames(ts);
}

/* The next entry of a code object's exception table (its format:
 * Objects/exception_handling_notes.txt), read at *p and moved past:
 * start, size and target in code units, and depth << 1 | lasti.  -1 if the
 * table ends inside the entry. */
static inline int
slp_read_varint(const unsigned char **p, const unsigned char *end, int *value)
{
    if (*p >= end) {
        return -1;
    }
    int b = *(*p)++;
    int v = b & 63;
    while (b & 64) {
        if (*p >= end) {
            return -1;
        }
        b = *(*p)++;
        v = (v << 6) | (b & 63);
    }
    *value = v;
    return 0;
}

static inline int
slp_exception_entry(const unsigned char **p, const unsigned char *end,
                    int *start, int *size, int *target, int *depth_lasti)
{
    if (slp_read_varint(p, end, start) < 0
        || slp_read_varint(p, end, size) < 0
        || slp_read_varint(p, end, target) < 0
        || slp_read_varint(p, end, depth_lasti) < 0)
    {
        return -1;
    }
    return 0;
}

/* stackdepth.c: the depth of the value stack before the instruction at
 * `index` (in code units), or -1 if it cannot be known. */
extern int slp_stack_depth(PyCodeObject *co, int index);
/* The same, less the inputs of that instruction: the slots that hold
 * references while a frame is stopped in it (-1 if unknown). */
extern int slp_stack_depth_live(PyCodeObject *co, int index);
/* 0 if the depths of the value stack of co can be followed through it from
 * each entry (index, depth) and exception handler, the same on every
 * path, within 0..co_stacksize, through instructions the compiler emits
 * that start where an instruction starts and find their inputs on the
 * stack, and no path runs off the end:
 * for code objects made by hand.  Else -1 with ValueError. */
extern int slp_code_check_flow(PyCodeObject *co, const int (*entries)[2],
                               int nentries);
/* The depth before each code unit of co (from its start), -1 where none
 * (a cache, or unreached): a list.  ValueError if the depths cannot be
 * followed. */
extern PyObject *slp_stack_depths(PyCodeObject *co);
/* slp_stack_depth(), cached for the thread (freed with it). */
extern int slp_stack_depth_cached(slp_thread *th, PyCodeObject *co,
                                  int index);
/* Visit what the frames of a suspended chain hold (locals, value stack).
 * `calling`: a frame stopped in a CALL whose inputs are intact, or NULL. */
extern int slp_frames_traverse(_PyInterpreterFrame *f,
                               _PyInterpreterFrame *calling,
                               visitproc visit, void *arg);
/* Free what a C state owns apart from the state itself. */
extern void slp_cstate_free(slp_cstate *cst);
/* Room in cst to hide n entry frames: 0, or -1 (no memory). */
extern int slp_cstate_reserve(slp_cstate *cst, int n);

/* --- the tasklet ------------------------------------------------------- */

enum slp_tasklet_state {
    SLP_NEW = 0,        /* no frames: unbound, bound to a callable only, dead */
    SLP_BOUND,          /* has its initial call (func, args, kwargs) */
    SLP_STARTED,        /* runs or is suspended with a C stack */
};

struct _tasklet {
    PyObject_HEAD
    PyTaskletObject *next;      /* chain: runqueue (circular) or channel */
    PyTaskletObject *prev;
    slp_thread *thread;         /* owner; NULL once that thread ended */
    unsigned long thread_id;
    PyObject *tempval;          /* never NULL */
    PyObject *func;             /* SLP_BOUND: the initial call */
    PyObject *args;
    PyObject *kwargs;
    PyObject *context;          /* SLP_BOUND: the context it starts in */
    PyChannelObject *channel;   /* blocked on this one, or NULL */
    int blocked;                /* 0, 1 (send) or -1 (receive) */
    enum slp_tasklet_state state;
    unsigned int atomic:1;
    unsigned int ignore_nesting:1;
    unsigned int block_trap:1;
    unsigned int pending_irq:1;
    unsigned int in_runqueue:1;
    unsigned int is_main:1;
    /* Taken out of its thread by test_outside() (spec M-21.6) while that
     * runs tasklets: it runs on, below them, and nothing may switch to
     * it. */
    unsigned int outside:1;
    /* In its owner thread's list of tasklets (not main), which ends them
     * with the thread. */
    PyTaskletObject *owned_next;
    PyTaskletObject *owned_prev;
    slp_execstate exec;         /* SLP_STARTED and not current */
    /* What few tasklets need (slp_tasklet_extra), or NULL. */
    struct _slp_tasklet_extra *extra;
    PyObject *weakreflist;
    /* Soft switching.  base_frame: the bottom frame of a tasklet started
     * by pushing its function's frame (no C caller under it), else NULL.
     * soft_parked: suspended by a soft switch, as frames only; it resumes
     * with resume_value (if not NULL) or its tempval pushed on its top
     * frame's stack if resume_push is set. */
    _PyInterpreterFrame *base_frame;
    PyObject *resume_value;
    unsigned int soft_parked:1;
    unsigned int resume_push:1;
    /* It would not die: its C stack is in gc.garbage with it (T-15). */
    unsigned int is_zombie:1;
};

/* What a tasklet needs only if it was ever suspended with a C stack, or
 * had trace or profile functions of its own: allocated then, freed with
 * the tasklet.  Most tasklets, which switch softly and are not traced,
 * do without (spec S-7: a blocked tasklet costs a few hundred bytes). */
typedef struct _slp_tasklet_extra {
    slp_cstack cstack;          /* SLP_STARTED, not current, not parked */
    slp_cstate cstate;          /* likewise */
    /* Its trace and profile functions while not current (D-1).  A func
     * of NULL with an obj: a Python function, installed with
     * sys.settrace()/setprofile() when the tasklet is switched in. */
    Py_tracefunc trace_func;
    PyObject *trace_obj;
    Py_tracefunc profile_func;
    PyObject *profile_obj;
    /* tasklet.cstate (spec M-21.3), created when asked for or when the
     * tasklet is switched out with a C stack: the only strong reference
     * to it.  Its `task` points back here. */
    struct _slp_cstack_object *cs_obj;
    /* The latch (latch.c) whose action() the tasklet is in, or NULL. */
    PyObject *latch;
} slp_tasklet_extra;

/* The cstack type (spec M-21.3): a tasklet's C stack as seen from Python,
 * or a thread's initial stub (task NULL).  Every live one of an
 * interpreter is in one ring (borrowed links, slp_interp.cstack_ring);
 * it holds no reference.  size and the saved bytes are read from the
 * tasklet while the object is its cs_obj; startaddr, serial and
 * soft_equiv are its own. */
typedef struct _slp_cstack_object {
    PyObject_HEAD
    struct _slp_cstack_object *next;
    struct _slp_cstack_object *prev;
    PyTaskletObject *task;      /* borrowed; NULL: a stub, or orphaned */
    uintptr_t startaddr;        /* the stack base the slice belongs to */
    unsigned long long serial;  /* serial_last_jump at its creation */
    /* Saved where Stackless 3.7 would have switched softly (soft
     * switching on, no C state of the tasklet's own): its restoring is
     * not a jump to another lineage (spec M-21.2). */
    unsigned int soft_equiv:1;
} PyCStackObject;

/* A new cstack in the ring for `task` (NULL: a stub of th), with the
 * serial th->serial_last_jump.  NULL with an exception. */
extern PyCStackObject *slp_cstack_object_new(slp_thread *th,
                                             PyTaskletObject *task);
/* t.cstate: its cs_obj, created if need be (a new reference). */
extern PyObject *slp_tasklet_cstate(PyTaskletObject *t);
/* Before a hard switch out of the current tasklet (t->extra exists):
 * its cs_obj, new if it had none or one of another lineage.  0, or -1
 * with MemoryError. */
extern int slp_cstack_object_prepare(slp_thread *th, PyTaskletObject *t);
/* Would a switch to `next` resume a C stack that does not belong where
 * this thread's stacks go?  -1 with SystemError("bad stack reference in
 * transfer") if so (spec M-21.5), before anything is changed. */
extern int slp_check_transfer(slp_thread *th, PyTaskletObject *next);
/* The same test, without the exception. */
extern int slp_bad_transfer(slp_thread *th, PyTaskletObject *next);
/* serial_last_jump after a hard switch to `next` (spec M-21.2); `dropped`:
 * the C stack left was dropped (a dead tasklet's), not saved. */
extern void slp_serial_after_jump(slp_thread *th, PyTaskletObject *next,
                                  int dropped);
/* test_outside() (spec M-21.6, thread.c): None, or NULL with the error
 * of a round. */
extern PyObject *slp_test_outside(void);
/* A tasklet taken out by test_outside(): RuntimeError, -1. */
extern int slp_outside_error(PyTaskletObject *t);

/* t->extra, allocated if need be; NULL with MemoryError. */
extern slp_tasklet_extra *slp_tasklet_extra_get(PyTaskletObject *t);


/* --- the channel ------------------------------------------------------- */

struct _channel {
    PyObject_HEAD
    PyTaskletObject *head;      /* blocked tasklets, FIFO, not circular */
    PyTaskletObject *tail;
    Py_ssize_t balance;         /* > 0 senders, < 0 receivers waiting */
    int preference;             /* -1, 0, 1 */
    unsigned int schedule_all:1;
    unsigned int closing:1;
    PyObject *weakreflist;
};


/* --- bomb.c ------------------------------------------------------------ */

struct _bomb {
    PyObject_HEAD
    PyObject *exc;              /* the exception instance */
};

/* A bomb holding the exception being raised (taken from the thread). */
extern PyObject *slp_bomb_from_error(void);
/* A bomb from raise-style arguments (T-8 rules); NULL with TypeError. */
extern PyObject *slp_bomb_from_raise_args(PyObject *exc, PyObject *val,
                                          PyObject *tb);
/* Raise the bomb's exception; returns NULL. */
extern PyObject *slp_bomb_explode(PyObject *bomb);

/* --- thread.c, runqueue.c, switch.c, runner.c, watchdog.c -------------- */

/* The most that the end of a tasklet leaves to drop after its switch. */
#define SLP_PENDING_DROPS 6

struct _slp_thread {
    PyThreadState *tstate;
    struct _slp_interp *si;     /* the interpreter's, until it is cleared */
    unsigned long thread_id;
    PyTaskletObject *main;
    PyTaskletObject *current;
    PyTaskletObject *head;      /* of the runqueue: runs now or next */
    /* From the schedule callback of a switch until the switch is made:
     * the tasklet it goes to (borrowed), which must stay in the
     * runqueue (remove() refuses it). */
    PyTaskletObject *switching_to;
    Py_ssize_t runcount;
    /* run() (spec M-21.1): NULL until the first run(), then a list:
     * [0] the tasklet whose run() armed the timer, or None; [1:] the
     * tasklets inside run() (watchdogs), outermost first. */
    PyObject *watchdogs;
    int switch_trap;
    /* In the channel callback (D-4): a channel operation of this thread
     * meanwhile raises RuntimeError.  Per thread: another thread's
     * operations go on while a callback runs here. */
    int in_channel_callback;
    long pickle_flags;
    /* Hard switching: the stack base, and the snapshot where the runner
     * starts tasklets and resumes soft-switched ones (runner.c). */
    char *cstack_base;
    slp_cstack snapshot;
    int snapshot_c_recursion;   /* c_recursion_remaining at the snapshot */
    /* The watchdog timer (spec S-5). */
    long tick_budget;           /* ticks left in the timeslice, or -1 */
    long tick_timeout;          /* the timeslice */
    int watchdog_flags;
    Py_ssize_t timer_level;     /* watchdogs list index of the timed run() */
    PyTaskletObject *interrupted;
    int soft_expired;
    int tick_deferred;          /* expired while preemption was blocked */
    PyObject *to_kill;          /* list: collected during a GC, kill soon */
    PyTaskletObject *owned;     /* list of its tasklets (borrowed), not main */
    /* Waiting for other threads to make a tasklet runnable (S-12; see
     * runqueue.c).  `waiting` is set and cleared by the thread itself,
     * `woken` by whoever releases `wakeup` for it. */
    PyThread_type_lock wakeup;  /* held, except while woken */
    int waiting;
    int woken;
    /* A file descriptor (set_thread_wakeup_fd(); -1: none) to which
     * slp_wake_thread() writes a byte: stacklesslib's hub waits in epoll
     * instead of on `wakeup`, and must learn that another thread made one
     * of ours runnable. */
    int wakeup_fd;
    /* The interpreter exits: main gets TaskletExit when it resumes. */
    int exit_main;
    /* Soft switching: what the eval loop must do at the `error:` of the
     * frame tstate->stackless_pending (SLP_PENDING_*); a switch decided,
     * for it to make. */
    int pending_what;
    PyTaskletObject *soft_next;
    /* Frames pushed for a call, for the eval loop to go on with: the top
     * one, the one its caller waits for (the same, or a shim below a
     * generator's frame), and that generator, which starts running. */
    _PyInterpreterFrame *soft_enter;
    _PyInterpreterFrame *soft_enter_base;
    PyGenObject *soft_enter_gen;
    PyObject *soft_enter_exc;           /* a throw() raises it there */
    uint16_t soft_enter_return_offset;  /* if not 0, the caller's */
    /* A builtin that resumes a generator was called by this frame, at
     * this instruction (tstate->stackless_gen is the generator). */
    _PyInterpreterFrame *armed_frame;
    _Py_CODEUNIT *armed_instr;
    PyObject *armed_default;            /* next(gen, default), borrowed */
    struct slp_depth_cache *depth_cache;    /* stackdepth.c */
    int soft_preempt;
    /* The reference the old current held, dropped after the switch. */
    PyObject *pending_decref;
    /* With it, when the old current ended: what the switch from it took
     * (its tempval, context and handled exception, the old tempval of the
     * tasklet its exception goes to), dropped after the switch as well.
     * Dropping may run code that switches, which must not come between
     * the choice of the next tasklet and the switch to it. */
    PyObject *pending_drops[SLP_PENDING_DROPS];
    int npending_drops;
    /* The frame whose CALL called the switching builtin that runs now,
     * when it was not called softly (softcall.c), or NULL. */
    _PyInterpreterFrame *calling_frame;
    /* A hard switch is a preemption (watchdog.c): no builtin made it. */
    int preempting;
    _PyStackChunk *spare_chunk;     /* of the frame data stack (softcall.c) */
    /* Serial numbers of C-stack lineages (spec M-21.2): a counter, the
     * serial of the last hard switch, and the initial stub (a cstack,
     * task NULL) of the current main tasklet. */
    unsigned long long serial;
    unsigned long long serial_last_jump;
    PyCStackObject *stub;
};

/* The calling thread's state, created on first use; NULL with an error. */
extern slp_thread *slp_get_thread(void);
/* The same, for tstate, the calling thread's. */
extern slp_thread *slp_thread_init(PyThreadState *tstate);

static inline slp_thread *
slp_get_thread_of(PyThreadState *tstate)
{
    slp_thread *th = ((_PyThreadStateImpl *)tstate)->stackless;
    if (th == NULL) {
        return slp_thread_init(tstate);
    }
    if (th->current == NULL) {
        /* Its tasklets were let go: code that runs while the thread
         * state is cleared (a weakref callback, a finalizer). */
        PyErr_SetString(PyExc_RuntimeError,
                        "the tasklets of this thread have ended");
        return NULL;
    }
    return th;
}
/* The thread state of this interpreter with the id `thread_id` (an int;
 * -1 or NULL: the calling thread), or NULL in *result if there is none.
 * -1 with TypeError if thread_id is no int. */
extern int slp_thread_state_by_id(PyObject *thread_id, PyThreadState **result);
/* The state of tstate if it has one, else NULL (no error). */
extern slp_thread *slp_thread_of(PyThreadState *tstate);

/* Drop a reference to op, which has others (the caller knows it): no
 * deallocation to check for, nor code to call. */
static SLP_INLINE void
slp_decref_alive(PyObject *op)
{
    assert(Py_REFCNT(op) > 1);
#ifdef Py_REF_DEBUG
    Py_DECREF(op);              /* which counts the references */
#else
    if (!_Py_IsImmortal(op)) {
        op->ob_refcnt--;
    }
#endif
}

/* Append t to the runqueue, which takes a new reference. */
static inline void
slp_runqueue_append(slp_thread *th, PyTaskletObject *t)
{
    assert(!t->in_runqueue && t->next == NULL && t->prev == NULL);
    PyTaskletObject *head = th->head;
    if (head == NULL) {
        t->next = t->prev = t;
        th->head = t;
    }
    else {
        t->prev = head->prev;
        t->next = head;
        head->prev->next = t;
        head->prev = t;
    }
    t->in_runqueue = 1;
    th->runcount++;
    Py_INCREF(t);
}
/* Link t, not in the runqueue, right after `after`, which is: the
 * runqueue takes the caller's reference. */
static inline void
slp_runqueue_link_after(slp_thread *th, PyTaskletObject *after,
                        PyTaskletObject *t)
{
    assert(!t->in_runqueue && after->in_runqueue);
    t->prev = after;
    t->next = after->next;
    after->next->prev = t;
    after->next = t;
    t->in_runqueue = 1;
    th->runcount++;
}
/* Insert t right after the head: it runs next (foreign run(), T-6). */
extern void slp_runqueue_insert_next(slp_thread *th, PyTaskletObject *t);
/* The thread's list of the tasklets it owns. */
extern void slp_owned_link(slp_thread *th, PyTaskletObject *t);
extern void slp_owned_unlink(PyTaskletObject *t);
/* End the C-state tasklets of the calling thread. */
extern void slp_kill_started(slp_thread *th);
extern void slp_runqueue_remove(slp_thread *th, PyTaskletObject *t);

/* Unlink t from the runqueue; the runqueue's reference goes to the
 * caller. */
static inline void
slp_runqueue_unlink(slp_thread *th, PyTaskletObject *t)
{
    assert(t->in_runqueue);
    if (t->next == t) {
        th->head = NULL;
    }
    else {
        if (th->head == t) {
            th->head = t->next;
        }
        t->prev->next = t->next;
        t->next->prev = t->prev;
    }
    t->next = t->prev = NULL;
    t->in_runqueue = 0;
    th->runcount--;
}

/* Make room for the C stack of the current tasklet, and what else a hard
 * switch from it needs, so that a switch begun here cannot run out of
 * memory when it saves them: 0, or -1 with MemoryError. */
extern int slp_switch_reserve(slp_thread *th);

/* Switch from the current tasklet to `next`, which becomes current and
 * the head of the runqueue.  The caller has put the current tasklet where
 * it belongs (runqueue, channel, nowhere).  Returns the caller's tempval
 * when it resumes (a new reference), or NULL with an exception: a bomb,
 * or a switch that failed (the caller restores its state then). */
extern PyObject *slp_switch_to(slp_thread *th, PyTaskletObject *next);

/* The tasklet to switch to when the current one leaves the runqueue
 * (spec S-12): the head of the runqueue, else the innermost watchdog or
 * main if it is paused (waiting for other threads first when they could
 * make a tasklet runnable).  NULL with RuntimeError("Deadlock...") when
 * nothing can run; the current tasklet must then stay where it is.  NULL
 * without an exception when signals came while the thread waited: the
 * caller puts the current tasklet back where it was, calls
 * slp_handle_signals() and, if that did not raise, tries again.
 * `leaving` is the current tasklet, not in the runqueue any more. */
extern PyTaskletObject *slp_next_after_leaving(slp_thread *th,
                                               PyTaskletObject *leaving);
/* S-12 (2): wait, without the GIL, while the runqueue is empty and another
 * thread can still make a tasklet of ours runnable.  0: one is runnable;
 * -1: no other thread can make progress (a deadlock), no exception set;
 * -2: signals came (the main thread).  With `in_place`, their handlers
 * run here, switches trapped, and -2 means that one raised; else they
 * are left to the caller (slp_handle_signals()). */
extern int slp_wait_for_work(slp_thread *th, int in_place);
/* Run the Python signal handlers, as the eval loop does: -1 if one
 * raised. */
extern int slp_handle_signals(slp_thread *th);
/* A thread ended: the waiting threads of interp look again (runqueue.c). */
extern void slp_wake_waiters(PyInterpreterState *interp);
/* The thread that started the interpreter. */
extern int slp_is_initial_thread(slp_thread *th);

/* The calling thread runs a collection of the garbage collector: its
 * tasklets must not switch (switch.c).  Other threads may, while the
 * collection lets them run (a finalizer that releases the GIL). */
static inline int
slp_collecting(PyThreadState *tstate)
{
    return ((_PyThreadStateImpl *)tstate)->stackless_collecting;
}

/* Errors of switching for T-2..T-14 and channels: -1 with RuntimeError
 * if switching is not possible now (a switch trap, a collection). */
extern int slp_switch_trap_error(slp_thread *th);

static inline int
slp_check_switch_trap(slp_thread *th)
{
    if (th->switch_trap > 0 || slp_collecting(th->tstate)) {
        return slp_switch_trap_error(th);
    }
    return 0;
}

extern PyObject *slp_schedule(PyObject *retval, int remove);
/* A tasklet that survived being killed at its end goes to gc.garbage. */
extern void slp_to_garbage(PyTaskletObject *t);
/* Kill a suspended tasklet of this thread up to 10 times (T-15); 1 if it
 * still lives.  `when` ends the unraisable message. */
extern int slp_kill_hard(PyTaskletObject *t, const char *when);
/* sys.settrace(func) or sys.setprofile(func), for the current tasklet. */
extern int slp_sys_sethook(PyObject *func, int profile);
/* Kill t at the next check of the eval breaker (it was collected while
 * the collector ran, when no switch is possible). */
extern int slp_kill_soon(slp_thread *th, PyTaskletObject *t);
/* atomic or nesting no longer blocks preemption: fire if it is due. */
extern void slp_preemption_unblocked(slp_thread *th);
extern PyObject *slp_run_watchdog(long timeout, int flags);

/* Make a tasklet of another thread runnable there, waking it. */
extern void slp_wake_thread(slp_thread *th);

/* Module attributes in need of the scheduler. */
extern PyObject *slp_get_current(void);
extern PyObject *slp_get_main(void);
extern Py_ssize_t slp_get_runcount(void);

/* Per-interpreter settings (spec X-1). */
typedef struct _slp_interp {
    PyObject *schedule_callback;
    PyObject *channel_callback;
    PyObject *error_handler;
    int soft_switch;
    /* Nonzero if one of the above keeps channel switches from the quick
     * way: soft switching off, a callback set.  Kept in step by
     * slp_interp_changed(). */
    int quick_off;
    long pickle_flags_default;
    /* Code of shim frames, created on first use (shims.c). */
    PyObject *gen_shim;
    PyObject *gen_default_shim;
    PyObject *context_shim;
    PyObject *send_sequence_shim;
    PyObject *invalid_shim;
    PyObject *softfunc_shim;
    /* _wrap.set_reduce_frame(): what a tasklet's frames reduce through. */
    PyObject *reduce_frame;
    /* _wrap.generator(): the function whose generators it makes. */
    PyObject *exhausted_generator;
    /* The thread that joins the non-daemon threads at shutdown, while it
     * does, or NULL (thread.c). */
    PyThreadState *joining;
    /* A member of the ring of cstack objects, or NULL (tasklet.c). */
    PyCStackObject *cstack_ring;
} slp_interp;

extern slp_interp *slp_get_interp(PyInterpreterState *interp);
/* The types of the module are ready (an embedding host may call the C
 * API before any code imported _stackless: it is imported then).  0, or
 * -1 with an exception. */
extern int slp_types_ready(void);

/* After a change of the settings of si that quick_off sums up. */
static inline void
slp_interp_changed(slp_interp *si)
{
    si->quick_off = !si->soft_switch || si->schedule_callback != NULL
                    || si->channel_callback != NULL;
}

/* The flags of run() (stackless_api.h). */
#define PY_WATCHDOG_THREADBLOCK     Py_WATCHDOG_THREADBLOCK

/* `next`, to which a switch was begun by slp_switch_prologue(), becomes
 * current (it takes the caller's reference). */
static inline void
slp_set_current(slp_thread *th, PyTaskletObject *next)
{
    th->current = next;
    th->switching_to = NULL;
    /* Its own, if it resumes in a builtin: do_switch() restores it. */
    th->calling_frame = NULL;
}

/* Keep `ob` (a reference, stolen; may be NULL) to be dropped after the
 * switch that the caller makes next, with pending_decref. */
static inline void
slp_drop_after_switch(slp_thread *th, PyObject *ob)
{
    if (ob == NULL) {
        return;
    }
    assert(th->npending_drops < SLP_PENDING_DROPS);
    th->pending_drops[th->npending_drops++] = ob;
}

/* Drop `ob` (NULL, or the old current's reference taken from
 * pending_decref) and the pending drops.  They are taken from th first:
 * the code that runs may switch. */
extern void slp_drop_pending(slp_thread *th, PyObject *ob);

/* Drop the reference the old current held, once the switch is made. */
static inline void
slp_after_switch(slp_thread *th)
{
    PyObject *ob = th->pending_decref;
    th->pending_decref = NULL;
    if (th->npending_drops > 0) {
        slp_drop_pending(th, ob);
        return;
    }
    Py_XDECREF(ob);
}

/* The same, in `t`, which resumes (is current now).  Dropping the last
 * reference may run code (the finalizer of a suspended tasklet kills it),
 * which may switch from t and back: the value t resumes with, in its
 * tempval, is kept from that switch, which would take it. */
static inline void
slp_after_switch_in(slp_thread *th, PyTaskletObject *t)
{
    PyObject *ob = th->pending_decref;
    if (ob == NULL) {
        assert(th->npending_drops == 0);
        return;
    }
    th->pending_decref = NULL;
    if (th->npending_drops == 0 && Py_REFCNT(ob) > 1) {
        slp_decref_alive(ob);
        return;
    }
    PyObject *val = t->tempval;
    t->tempval = Py_NewRef(Py_None);
    slp_drop_pending(th, ob);
    Py_SETREF(t->tempval, val);
}

/* A C schedule hook (stackless_api.h), kept as si->schedule_callback:
 * the function, or NULL if cb is a Python callback. */
extern slp_schedule_hook_func *slp_schedule_hook_of(PyObject *cb);
/* Install it (NULL removes), replacing the Python callback. */
extern int slp_set_schedule_hook(slp_interp *si,
                                 slp_schedule_hook_func *func);
/* capi.c */
extern int slp_capi_init(void);
/* Values posted by other threads wait (PyStackless_PostToChannel()); their
 * sender tasklets made now, in the main thread. */
extern int slp_posts_pending(void);
extern void slp_deliver_posts(void);
/* The main thread's wakeup fd, written to when a value is posted. */
extern void slp_set_posts_wakeup_fd(int fd);
extern void slp_capi_fini(void);
/* _stacklessmodule.c: our static types made unready, at the end of the
 * main interpreter. */
extern void slp_fini_types(void);
extern void slp_type_unready(PyTypeObject *type);

/* The schedule callback (D-3): cb(prev, next), under a switch trap,
 * errors reported as unraisable. */
extern void slp_call_schedule_callback_slow(slp_interp *si, slp_thread *th,
                                            PyTaskletObject *prev,
                                            PyTaskletObject *next);

static inline void
slp_call_schedule_callback(slp_thread *th, PyTaskletObject *prev,
                           PyTaskletObject *next)
{
    slp_interp *si = th->si;
    if (si != NULL && si->schedule_callback != NULL) {
        slp_call_schedule_callback_slow(si, th, prev, next);
    }
}

/* D-1: the trace and profile functions of the tasklet that leaves are
 * saved, those of the one that resumes (or starts) installed.  Nothing to
 * do in the common case, where neither traces. */
extern void slp_save_tracing_slow(PyThreadState *tstate,
                                  PyTaskletObject *prev);
extern void slp_restore_tracing_slow(PyThreadState *tstate,
                                     PyTaskletObject *me);

static inline void
slp_save_tracing(PyThreadState *tstate, PyTaskletObject *prev)
{
    if (tstate->c_tracefunc != NULL || tstate->c_profilefunc != NULL
        || (prev->extra != NULL
            && (prev->extra->trace_obj != NULL
                || prev->extra->profile_obj != NULL)))
    {
        slp_save_tracing_slow(tstate, prev);
    }
}

static inline void
slp_restore_tracing(PyThreadState *tstate, PyTaskletObject *me)
{
    if (tstate->c_tracefunc != NULL || tstate->c_profilefunc != NULL
        || me->extra != NULL)
    {
        slp_restore_tracing_slow(tstate, me);
    }
}

/* Paused: in no chain (neither runnable nor blocked). */
static inline int
slp_is_paused(PyTaskletObject *t)
{
    return !t->in_runqueue && t->blocked == 0;
}

/* The innermost watchdog (a tasklet inside run()), or main. */
extern PyTaskletObject *slp_innermost_watchdog(slp_thread *th);
/* run(timeout, soft=True) expired: the watchdog that resumes instead of
 * the tasklet switched to at the next voluntary switch, or NULL. */
extern PyTaskletObject *slp_soft_watchdog(slp_thread *th,
                                          PyTaskletObject *prev);

/* The first part of every switch: the watchdog of a soft run() may take
 * the place of `next`; next becomes the head of the runqueue; the timer
 * starts a new timeslice; the schedule callback is called.  Returns the
 * tasklet to switch to. */
static inline PyTaskletObject *
slp_switch_prologue(slp_thread *th, PyTaskletObject *prev,
                    PyTaskletObject *next)
{
    PyTaskletObject *w = th->soft_expired ? slp_soft_watchdog(th, prev)
                                          : NULL;
    if (w != NULL && w != next) {
        th->soft_expired = 0;
        next = w;
    }
    assert(next != prev && next->thread == th);
    if (!next->in_runqueue) {
        slp_runqueue_append(th, next);
    }
    th->head = next;
    if (th->tick_budget >= 0
        && !(th->watchdog_flags & PY_WATCHDOG_TOTALTIMEOUT))
    {
        th->tick_budget = th->tick_timeout;
    }
    /* The callback may release the GIL: neither it nor another thread
     * may take `next` out of the runqueue until it runs. */
    th->switching_to = next;
    slp_call_schedule_callback(th, prev, next);
    assert(next->in_runqueue && th->head == next);
    return next;
}

/* switch.c: the state of a tasklet that ended is dropped from the thread
 * state, its context and handled exception after the switch from it. */
extern void slp_drop_state(slp_thread *th);
/* switch.c: run th->current, whose C stack is not here, dropping the
 * running C stack (a soft-switched tasklet's or a dead one's).  Never
 * returns. */
extern void slp_hard_enter(slp_thread *th) SLP_NORETURN;

/* runner.c: take the snapshot new tasklets start from (called once, by
 * slp_thread_init(), whose frame is the stack base).  Returns normally
 * once it is taken, -1 if there is no memory for it; every start of a
 * tasklet resumes it again, and then it runs that tasklet and never
 * returns. */
extern int slp_take_snapshot(slp_thread *th);
/* runner.c: the current tasklet ended, with `result` from its function
 * (NULL: an exception), where its C stack is not needed: its state is
 * dropped and the next tasklet made current, not yet running; the caller
 * starts it, or slp_hard_enter()s it.  Returns it. */
extern PyTaskletObject *slp_end_current(slp_thread *th, PyObject *result);

/* channel.c: take a tasklet out of the channel it waits in (for kill,
 * throw and the end of the last tasklet). */
extern void slp_channel_remove_blocked(PyTaskletObject *t);
extern PyObject *slp_channel_action(slp_thread *th, PyChannelObject *ch,
                                    int dir, PyObject *value);

/* latch.c: one channel operation out of several (stacklesslib.select). */
extern PyTypeObject PyLatch_Type;
extern int slp_latch_fired(PyTaskletObject *t);
extern void slp_latch_take(PyTaskletObject *t);
extern PyObject *slp_latch_marker(PyTaskletObject *t);
/* For unpickling: t, paused, joins ch's queue in direction dir. */
extern void slp_channel_link_blocked(PyChannelObject *ch, PyTaskletObject *t,
                                     int dir);

/* --- soft switching (softcall.c, softswitch.c, shims.c) ---------------- */

/* What a builtin returns when it switched softly (never seen by Python). */
extern char slp_soft_switched_token;
#define slp_soft_switched ((PyObject *)&slp_soft_switched_token)
/* Ask the eval loop of tstate to make the soft switch decided, or to
 * go on with a frame pushed (SLP_PENDING_*), at `error:`.  The marker
 * exception is set if need_marker says the eval loop's code before
 * `error:` needs an exception set (FOR_ITER, the eval breaker), and in a
 * debug build. */
#define SLP_PENDING_SWITCH 1
#define SLP_PENDING_ENTER 2
extern void slp_soft_switch_marker_set(PyThreadState *tstate);

/* The CALL that the running frame makes now is watched: a tool of
 * sys.monitoring (or sys.setprofile(), cProfile) gets its CALL event, and
 * a C_RETURN or C_RAISE event for a builtin when the builtin returns.
 * That must be the call's own return, with its result: a builtin called
 * by a watched CALL switches hard.  (The instruction may be hidden under
 * INSTRUMENTED_LINE or INSTRUMENTED_INSTRUCTION: the code's monitors
 * tell.) */
static SLP_INLINE int
slp_call_monitored(PyThreadState *tstate)
{
    _PyCoMonitoringData *m =
        _PyFrame_GetCode(tstate->current_frame)->_co_monitoring;
    return m != NULL
           && m->active_monitors.tools[PY_MONITORING_EVENT_CALL] != 0;
}

static SLP_INLINE void
slp_soft_switch_request(PyThreadState *tstate, int what, int need_marker)
{
    /* A watched CALL switches hard (its C_RETURN event needs the result):
     * none of them asks. */
    assert(need_marker || !slp_call_monitored(tstate));
    _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
    ts->stackless->pending_what = what;
    ts->stackless_pending = tstate->current_frame;
#ifdef Py_DEBUG
    /* A debug build asserts an exception after a CALL that returns NULL. */
    need_marker = 1;
#endif
    if (need_marker) {
        slp_soft_switch_marker_set(tstate);
    }
}
/* The result of a switching builtin called softly: NULL with the switch
 * pending if it switched (slp_soft_switched), else `res`. */
extern PyObject *slp_soft_result(PyThreadState *tstate, PyObject *res,
                                 int need_marker);
extern int slp_soft_switch_marker_check(PyObject *exc);
/* The running builtin was called by the eval loop's CALL of the frame
 * running now. */
static inline int
slp_softcall_active(PyThreadState *tstate)
{
    _PyInterpreterFrame *f = ((_PyThreadStateImpl *)tstate)->stackless_softcall;
    return f != NULL && f == tstate->current_frame;
}
/* A switching builtin (softcall.c): its def, which gets METH_STACKLESS,
 * with the entries of CALL_STACKLESS, and maybe a variant of its function
 * that takes the calling thread's state (and the argument of a method
 * called with one positional argument, or NULL for one that takes none),
 * which the soft calls of the eval loop and the C callers use where it
 * applies: it saves a lookup of a thread-local variable, which costs as
 * much as a fifth of a switch in a shared libpython.  The entries are
 * slp_call_entry(), or one of the builtin's own: for the method descriptor
 * (`obj.method(...)` calls it, with the object first) and for the method
 * bound to an object (`send = ch.send`, then `send(x)`), whose arguments
 * do not include the object. */
typedef PyObject *(*slp_tstate_func)(PyThreadState *tstate, PyObject *self,
                                     PyObject *arg);
typedef struct {
    _PyStackless_MethodDef head;
    slp_tstate_func tfunc;                  /* or NULL */
} slp_methoddef;
/* A switching builtin of Argument Clinic's METHODDEF, without a variant
 * nor entries of its own; a table of them ends with SLP_METHODDEF_END. */
#define SLP_METHODDEF(METHODDEF) \
    {{METHODDEF slp_call_entry, slp_call_entry}, NULL}
#define SLP_METHODDEF_END {{{NULL}}}
/* The entry of CALL_STACKLESS for every switching builtin without one of
 * its own: a soft call, then the inputs dropped. */
extern PyObject *slp_call_entry(PyThreadState *tstate, PyObject *callable,
                                PyObject **args, int nargs);

/* A builtin of the core called softly, as by the eval loop, from C code
 * that the eval loop called (the C API under the stackless protocol):
 * its result, or slp_soft_switched with the switch decided but not yet
 * asked of the eval loop. */
extern PyObject *slp_call_softly(PyThreadState *tstate, PyObject *callable,
                                 PyObject *const *args, size_t nargsf);
/* capi.c: an extension's builtin with METH_STACKLESS, called by the eval
 * loop: with the permission of the stackless protocol, if the tasklet can
 * switch softly.  Its Py_UnwindToken becomes NULL with the switch or the
 * frame it pushed pending, as for the core's builtins. */
extern PyObject *slp_protocol_call(PyThreadState *tstate, PyObject *callable,
                                   PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames);

/* Put the method descriptors of `defs` into a type's dict, or the
 * builtin functions into a module. */
extern int slp_add_switching_methods(PyTypeObject *type,
                                     slp_methoddef *defs);
extern int slp_add_switching_functions(PyObject *module,
                                       slp_methoddef *defs);
extern int slp_softcall_init(void);

/* The builtins whose first parameter is required take it by position or
 * by keyword, as Argument Clinic's code does, but tell a wrong count of
 * arguments in the original's words, which its test suite matches (spec
 * preamble, T): METH_O's "takes exactly one argument (N given)" for those
 * of that one parameter, PyArg_ParseTuple's "takes at least 1 argument
 * (0 given)" for those of a first parameter and *args (varargs).  The
 * keywords go through Argument Clinic's parser, `parser`, which names
 * the function and its first parameter (the only one with a name).
 * Returns the first argument, borrowed, or NULL with an exception set;
 * with varargs, the others are args[1:nargs]. */
extern PyObject *slp_first_argument(_PyArg_Parser *parser, int varargs,
                                    PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames);
/* Its parser, as Argument Clinic's code has it. */
#define SLP_FIRST_ARGUMENT_PARSER(var, func, param) \
    static const char * const var##_keywords[] = {param, NULL}; \
    static _PyArg_Parser var = { \
        .keywords = var##_keywords, \
        .fname = func, \
    }

/* Put a chunk of `size` bytes on top of the frame data stack, its data[0]
 * unused, as in a root chunk: popping a frame does not take it away. */
extern void slp_push_chunk(PyThreadState *tstate, _PyStackChunk *chunk,
                           size_t size);

/* ch.send_sequence(it) in the eval loop, if the calling builtin was
 * called by it directly and the current tasklet switches softly: 1 if
 * the frame that sends the items is pushed, for the eval loop to go on
 * with (the builtin returns NULL); else 0, and the builtin sends them. */
extern int slp_send_sequence_soft(slp_thread *th, PyObject *ch, PyObject *it);

/* The shims by name, for pickling (spec P-13): the code of the shim so
 * named (NULL with ValueError if none is), the name of a shim's code
 * (NULL if it is none). */
extern PyCodeObject *slp_shim_code_by_name(slp_interp *si, PyObject *name);
/* A dict of the shims' code objects by those names (made if need be). */
extern PyObject *slp_shim_codes(slp_interp *si);
extern const char *slp_shim_name(slp_interp *si, PyCodeObject *co);
/* Does a shim frame of code co wait at index for return_offset, with a
 * stack of depth items?  (The only states a suspended shim is in.) */
extern int slp_shim_waits_at(slp_interp *si, PyCodeObject *co, int index,
                             int return_offset, int depth);
/* Is co CPython's static shim (__init__'s), whose memory is read-only? */
extern int slp_shim_is_static(PyCodeObject *co);
/* The shim that stands in for a frame that cannot be restored. */
extern PyCodeObject *slp_invalid_shim_code(slp_interp *si);

/* Soft-switchable C functions (capi.c): push the shim frame that runs the
 * call of `state` (a new call, given `value` first), or a Python
 * function's frame, for the CALL that runs (SLP_PENDING_ENTER): 1 if
 * pushed, 0 if the tasklet cannot run it softly now (nothing done),
 * -1 with an exception (func: the arguments do not fit). */
extern int slp_softfunc_push(slp_thread *th, PyObject *state,
                             PyObject *value);
extern int slp_soft_function_call(slp_thread *th, PyFunctionObject *func,
                                  PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames);
/* The builtins the shim calls: step(state, value), and
 * step_exception(state, exc) (borrowed). */
extern int slp_softfunc_steps(PyObject **step, PyObject **step_exception);
/* The type of the state of such a call: _stackless.soft_switchable_call. */
extern PyTypeObject slp_softcall_type;
/* A builtin function of a switching def, with no module. */
extern PyObject *slp_switching_function(slp_methoddef *sd);

/* Switch as slp_switch_to(), softly if the calling builtin was called by
 * the eval loop directly and the current tasklet runs no C code of its
 * own: then it returns slp_soft_switched, and the caller returns that at
 * once.  The tasklet resumes with `result` (stolen, if not NULL) as the
 * builtin's result, or else with its tempval.  A hard switch returns
 * `result` or the tempval too, or NULL with an exception. */
extern PyObject *slp_switch_to_soft(slp_thread *th, PyTaskletObject *next,
                                    PyObject *result);

/* softswitch.c: can the current tasklet be parked softly, in a builtin
 * called by the eval loop (from_call) or in the eval breaker? */
extern int slp_can_park_softly(slp_thread *th, int from_call);
/* The same, `c_calls` units of C recursion taken since the eval loop
 * called (by the vectorcall of a builtin function, say). */
extern int slp_can_park_softly_in(slp_thread *th, int from_call,
                                  int c_calls);
/* softswitch.c: the function of a bound tasklet, if its frame can be
 * pushed: a Python function, or a method of one (*self is then set), or
 * what a chain of methods, partials and __call__ comes down to. */
extern PyFunctionObject *slp_soft_function(slp_thread *th,
                                           PyTaskletObject *t,
                                           PyObject **self);
/* softswitch.c: start a bound tasklet, made current, whose function is a
 * Python one: its frame pushed on a data stack of its own.  Returns the
 * frame, or NULL with an exception (the tasklet started and ends). */
extern _PyInterpreterFrame *slp_start_soft(slp_thread *th,
                                           PyTaskletObject *t,
                                           PyFunctionObject *func,
                                           PyObject *self);
/* shims.c: the frames pushed for a call (SLP_PENDING_ENTER) are linked
 * over `frame`, which waits for them as for a call; the frame to go on
 * with. */
extern _PyInterpreterFrame *slp_enter_pushed_frame(slp_thread *th,
                                                   _PyInterpreterFrame *frame);
/* shims.c: ask the eval loop to go on with the frames pushed, `top`
 * over `base`, which is linked over the calling frame (and `gen`, if
 * not NULL, starts running); the CALL returns NULL, with the marker
 * exception if `need_marker`.  Nothing may switch in between. */
extern void slp_enter_request(slp_thread *th, _PyInterpreterFrame *top,
                              _PyInterpreterFrame *base, PyGenObject *gen,
                              int need_marker);
/* shims.c: gen.__next__() called by the eval loop: 1 if the generator's
 * frame was pushed (and the request made), else 0. */
extern int slp_gen_enter(PyThreadState *tstate, slp_thread *th,
                         PyGenObject *gen);
/* pycall.c */
extern int slp_pycall_init(void);
/* The Python function that a call of `callable` comes down to through
 * bound methods, partials and __call__ (not a class), or NULL. */
extern PyFunctionObject *slp_resolved_function(PyObject *callable);
/* The frame of callable(*args, **kwargs), such a callable, pushed (not
 * linked); NULL with an exception if the arguments do not fit. */
extern _PyInterpreterFrame *slp_push_resolved_call(PyThreadState *tstate,
                                                   PyObject *callable,
                                                   PyObject *args,
                                                   PyObject *kwargs);

/* _PyEval_EvalFrameDefault() takes PY_EVAL_C_STACK_UNITS (Python/ceval.c). */
#define SLP_EVAL_C_STACK_UNITS 2

/* Soft switching is on, and the eval loop is the interpreter's own. */
static SLP_INLINE int
slp_soft_enabled(slp_thread *th, PyInterpreterState *interp)
{
    return th->si != NULL && th->si->soft_switch
           && interp->eval_frame == NULL;
}

/* The current tasklet runs no C code of its own: its frames run in the
 * eval loop of the runner, which has taken `c_calls` units of C recursion
 * since (see softswitch.c).  Two records must agree: the call of the eval
 * loop running now is the one its bottom frame is linked to, and the
 * counter of C recursion is that of the runner's call.  Either alone can
 * be misled by C code that switches C stacks of its own and keeps them
 * as it pleases (greenlet does so with the counters). */
static SLP_INLINE int
slp_runs_in_runner_eval(PyThreadState *tstate, slp_thread *th, int c_calls)
{
    /* No current tasklet: the thread's tasklets were let go, and code
     * runs as the thread state is cleared (a weakref callback). */
    return th->current != NULL && th->current->base_frame != NULL
           && tstate->c_recursion_remaining
              == th->snapshot_c_recursion - SLP_EVAL_C_STACK_UNITS - c_calls
           && ((_PyThreadStateImpl *)tstate)->stackless_eval
              == th->current->base_frame->previous;
}

/* Park the running tasklet t, whose frames run in the eval loop of the
 * runner: its thread-state fields go into its state, and its chain is cut
 * from the eval loop's entry frame.  The thread state keeps copies until
 * the next tasklet's are loaded, or it is emptied. */
static SLP_INLINE void
slp_park_soft(PyThreadState *tstate, PyTaskletObject *t)
{
    slp_frames_save(tstate, &t->exec);
    t->base_frame->previous = NULL;
    t->soft_parked = 1;
}

/* The reverse, in the eval loop whose entry frame is `entry`. */
static SLP_INLINE void
slp_unpark_soft(PyThreadState *tstate, PyTaskletObject *t,
                _PyInterpreterFrame *entry)
{
    assert(t->soft_parked);
    slp_frames_load(tstate, &t->exec);
    t->base_frame->previous = entry;
    t->soft_parked = 0;
}

/* The result of the builtin that parked t, pushed on its top frame `top`
 * (if resume_push says so): its resume_value, or else its tempval (no
 * bomb), both taken from it (the tasklet keeps None and NULL).  Where t
 * has only one of them, nothing is dropped. */
static SLP_INLINE void
slp_push_resume_value(_PyInterpreterFrame *top, PyTaskletObject *t)
{
    PyObject *val = t->resume_value;
    if (val != NULL) {
        t->resume_value = NULL;
        Py_SETREF(t->tempval, Py_None);     /* immortal */
    }
    else {
        val = t->tempval;
        t->tempval = Py_None;
    }
    if (t->resume_push) {
        _PyFrame_StackPush(top, val);
    }
    else {
        Py_DECREF(val);
    }
}

/* The quick soft switch.  slp_switch_to_soft() serves every switching
 * builtin, and checks all that may stand in the way.  The switches of
 * channel operations, the most frequent, take a shorter way when nothing
 * stands in it: the channel's entry for CALL_STACKLESS (so that the
 * caller is the running frame) makes the switch at once, the one
 * slp_switch_to_soft() would make, with nothing run in between.  It
 * checks the interpreter's quick_off (soft switching on, no schedule or
 * channel callback), then this:
 * - no PEP 523 eval function, no collection running, no switch trap, no
 *   timed run(), and the tasklet runs no C code of its own (its CALL is
 *   not watched: a CALL that sys.monitoring watches is INSTRUMENTED_CALL);
 * - no trace or profile function is set, and neither tasklet has one of
 *   its own or an old C stack (no `extra`);
 * - `next` was parked softly, at the version of instrumentation now, and
 *   resumes with the builtin's result: its resume_value, or else its
 *   tempval, and not both (the tempval of a tasklet that runs is None).
 * The caller checks that `next` gets no bomb, that the references that
 * the CALL gives it do not keep its inputs alive, so that it may drop
 * them, and that the tempvals it replaces are None: the switch drops no
 * last reference. */
static SLP_INLINE int
slp_can_switch_now(PyThreadState *tstate, slp_thread *th,
                   PyTaskletObject *next)
{
    PyInterpreterState *interp = tstate->interp;
    assert(th->si != NULL && !th->si->quick_off);
    assert(!slp_call_monitored(tstate));
    return ((uintptr_t)interp->eval_frame | (uintptr_t)slp_collecting(tstate)
            | (uintptr_t)th->switch_trap | (th->tick_budget >= 0)
            | (uintptr_t)tstate->c_tracefunc | (uintptr_t)tstate->c_profilefunc
            | (uintptr_t)th->current->extra | (uintptr_t)next->extra) == 0
           && slp_runs_in_runner_eval(tstate, th, 0)
           && next->soft_parked && next->resume_push
           && (next->resume_value == NULL || next->tempval == Py_None)
           && next->exec.instrumentation_version
              == slp_instrumentation_version(interp);
}

/* Make the quick switch to `next`, in the runqueue (the current tasklet is
 * where it belongs), at once (slp_can_switch_now() said so): the current
 * tasklet is parked, to resume with `result` (stolen) or else its
 * tempval, and `next` comes in, its result pushed.  Returns
 * _PyStackless_SWITCHED, for CALL_STACKLESS to go on with the current
 * frame. */
static SLP_INLINE PyObject *
slp_switch_now(PyThreadState *tstate, slp_thread *th, PyTaskletObject *next,
               PyObject *result)
{
    PyTaskletObject *prev = th->current;
    _PyInterpreterFrame *entry = prev->base_frame->previous;
    assert(prev->resume_value == NULL && th->soft_next == NULL);
    assert(prev->extra == NULL && next->extra == NULL);
    th->head = next;
    slp_park_soft(tstate, prev);
    prev->resume_value = result;
    prev->resume_push = 1;
    /* prev is in the runqueue or in a channel, which keeps it alive. */
    th->current = (PyTaskletObject *)Py_NewRef(next);
    slp_decref_alive((PyObject *)prev);
    slp_unpark_soft(tstate, next, entry);
    slp_push_resume_value(tstate->current_frame, next);
    return _PyStackless_SWITCHED;
}

/* --- types to ready at module init ------------------------------------ */

extern int slp_init_types(PyObject *module);

/* --- pickling/ -----------------------------------------------------------
 *
 *   pickling/verify.c   is a frame safe to run: its code executed
 *                       abstractly from where it resumes
 *   pickling/frames.c   the frame state type (stackless._wrap.frame):
 *                       frames into pickles and back into chains
 *   pickling/tasklets.c tasklets and channels: __reduce__, __setstate__
 *   pickling/generators.c generators, coroutines and async generators
 */

/* stackless.pickle_flags() (spec P-11). */
#define SLP_PICKLEFLAGS_PRESERVE_TRACING_STATE 1
#define SLP_PICKLEFLAGS_PRESERVE_AG_FINALIZER 2
#define SLP_PICKLEFLAGS_RESET_AG_FINALIZER 4

/* The version of the pickled state of tasklets and generators: the format
 * and the interpreter's bytecode magic number. */
#define SLP_PICKLE_FORMAT 1
extern long slp_pickle_version(void);
/* Check a pickled version: -1 with ValueError naming both if it is not
 * ours. */
extern int slp_check_pickle_version(PyObject *v, const char *what);

/* How a frame goes on when it resumes (see verify.c). */
enum {
    SLP_RESUME_BEFORE,
    SLP_RESUME_PUSH,
    SLP_RESUME_NOPUSH,
    SLP_RESUME_GEN,
};

typedef struct {
    PyCodeObject *code;
    int index;                  /* instr_ptr, in code units */
    int return_offset;
    int mode;                   /* SLP_RESUME_* */
    int depth;                  /* of its value stack */
    int shim;                   /* its code is one of our shims */
    PyObject *const *slots;     /* locals, then the stack; NULL allowed */
} slp_frame_check;

/* 0 if the frame is safe to run, else -1 with ValueError. */
extern int slp_verify_frame(slp_frame_check *fc);

/* The state of a frame, as pickled (stackless._wrap.frame_state). */
typedef struct {
    PyObject_VAR_HEAD           /* ob_size: the slots */
    PyCodeObject *code;
    PyObject *shim;             /* the name of a shim's code, or NULL */
    PyObject *func;             /* f_funcobj: a function, or None */
    PyObject *locals;           /* f_locals, or NULL */
    int index;                  /* instr_ptr, in code units */
    int return_offset;
    int valid;                  /* 0: it ran C code, has no stack */
    PyObject *slots[1];         /* locals, then the stack; NULL allowed */
} slp_frame_state;

extern PyTypeObject slp_FrameState_Type;
#define slp_FrameState_Check(op) Py_IS_TYPE(op, &slp_FrameState_Type)

/* The state of a suspended frame (not a generator's); NULL with an
 * exception. */
extern PyObject *slp_frame_state_of(slp_interp *si, _PyInterpreterFrame *f);
/* Fill the frame memory f (code->co_framesize) from fs, which is valid;
 * the caller sets f->previous. */
extern void slp_frame_state_install(slp_frame_state *fs,
                                    _PyInterpreterFrame *f);

/* Frame objects of tracebacks (frames.c): the state of a frame object's
 * frame; a frame object owning a frame of a state, f_back `back`. */
extern PyObject *slp_frame_state_of_object(PyObject *module, PyObject *ob);
extern PyObject *slp_frame_object_of_state(PyObject *module,
                                           PyObject *const *args,
                                           Py_ssize_t nargs);
/* A valid frame state of a shim's frame: code `co` (the shim named
 * `name`), at `index` for `return_offset`, its stack the n `slots` (no
 * NULL).  NULL with an exception. */
extern PyObject *slp_frame_state_of_shim(PyCodeObject *co, const char *name,
                                         int index, int return_offset,
                                         PyObject *const *slots, int n);

/* stackless._wrap.frame: a frame object to be, of 3.7's layout of a
 * frame's pickle (spec M-21.8). */
extern PyTypeObject slp_WrapFrame_Type;

/* Slots that may be NULL, pickled as (nulls, *values) (frames.c): the
 * tuple of n slots; and the slots of such a tuple (borrowed, NULL where
 * listed) into `slots`, at most `max`: their number, or -1 with TypeError
 * or ValueError (`what` names the tuple). */
extern PyObject *slp_into_tuple_with_nulls(PyObject *const *slots,
                                           Py_ssize_t n);
extern Py_ssize_t slp_from_tuple_with_nulls(PyObject *tup, PyObject **slots,
                                            Py_ssize_t max, const char *what);

/* --- cframes (pickling/cframes.c; spec M-21.7, P-12, P-13) ---------------
 *
 * A cframe is an entry of a tasklet's reduced frames that is not a Python
 * frame: it reduces to
 *
 *     (cframe, (), (valid, exec_name, (nulls, ob1, ob2, ob3), i, n))
 *
 * exec_name names its kind, registered here with what the kind needs.
 * Kinds that stand for frames of a tasklet's chain (our shims, and what
 * else runs as a frame of its own code: soft-switchable C functions) give
 * their code, and a reduce and a restore function; the others are read by
 * the tasklet's __setstate__ itself (tracing, the initial call, a result
 * to resume with). */
struct _cframe {
    PyObject_HEAD
    const struct _slp_cframe_kind *kind;    /* NULL until it has a state */
    PyObject *ob1, *ob2, *ob3;              /* NULL: absent */
    long i, n;
    int valid;
};

typedef struct _slp_cframe_kind {
    const char *exec_name;
    int tag;                    /* for the kind's functions */
    /* Check a state's ob1..3, i, n (cframe.__setstate__): 0, or -1 with
     * TypeError or ValueError.  NULL: anything goes. */
    int (*check)(const struct _slp_cframe_kind *kind, PyCFrameObject *cf);
    /* Kinds of frames of a chain: the code of those frames (NULL with an
     * exception if there is no memory for it), else NULL. */
    PyCodeObject *(*code)(const struct _slp_cframe_kind *kind,
                          slp_interp *si);
    /* Fill cf (ob1..3, i, n, valid) from f, a suspended frame of this
     * kind's code: 0, or -1 with an exception (one that cannot pickle). */
    int (*reduce)(const struct _slp_cframe_kind *kind, slp_interp *si,
                  _PyInterpreterFrame *f, PyCFrameObject *cf);
    /* The frame state (frames.c) of a valid cframe of this kind, which
     * the tasklet installs in its chain, checked by verify.c as a shim
     * (see waits_at); NULL with an exception. */
    PyObject *(*restore)(const struct _slp_cframe_kind *kind,
                         slp_interp *si, PyCFrameObject *cf);
    /* Does a frame of this kind's code wait at index for return_offset
     * with a stack of depth items (the states it is suspended in)? */
    int (*waits_at)(const struct _slp_cframe_kind *kind, slp_interp *si,
                    int index, int return_offset, int depth);
} slp_cframe_kind;

/* Register a kind (static storage): 0, or -1 with ValueError if another
 * kind has its name.  Registering a kind twice does nothing. */
extern int slp_register_cframe_kind(const slp_cframe_kind *kind);
/* The kind whose frames have code co, or NULL. */
extern const slp_cframe_kind *slp_cframe_kind_of_code(slp_interp *si,
                                                      PyCodeObject *co);
/* A new cframe of a kind, valid, with no objects; NULL with an
 * exception. */
extern PyCFrameObject *slp_cframe_new(const slp_cframe_kind *kind);
/* The cframe of f, a suspended frame of a kind's code. */
extern PyObject *slp_cframe_of_frame(const slp_cframe_kind *kind,
                                     slp_interp *si, _PyInterpreterFrame *f);
/* Does a frame of a registered kind's code co wait there (verify.c)? */
extern int slp_cframe_code_waits_at(slp_interp *si, PyCodeObject *co,
                                    int index, int return_offset, int depth);
/* Register the kinds of the core (module init). */
extern int slp_cframe_init(void);

/* The kinds the tasklet's state reads: tracing (ob1 the trace function,
 * ob2 the profile function), the initial call of a bound tasklet (ob1
 * func, ob2 args, ob3 kwargs) or, invalid, a tasklet suspended in C code
 * of no frame of its own, and the result its top frame resumes with
 * (ob1). */
extern const slp_cframe_kind slp_cframe_tracing;
extern const slp_cframe_kind slp_cframe_run;
extern const slp_cframe_kind slp_cframe_resume_value;
/* The kinds of the shims (shims.c). */
extern const slp_cframe_kind *const slp_shim_cframe_kinds[];

/* generators.c: generators, coroutines, async generators (copyreg). */
extern int slp_is_generator(PyObject *ob);
extern PyObject *slp_reduce_generator(PyObject *module, PyObject *gen);
extern PyObject *slp_new_generator(PyObject *module, PyObject *const *args,
                                   Py_ssize_t nargs);
/* stackless._wrap.generator (spec M-21.8): a subclass of GeneratorType,
 * whose instances are unstarted generators of an exhausted function. */
extern PyTypeObject slp_ExhaustedGenerator_Type;
extern int slp_exhausted_generator_init(void);
/* The frame of a running generator that a tasklet's state links; NULL
 * with ValueError if it cannot be. */
extern _PyInterpreterFrame *slp_generator_frame_to_link(PyObject *gen);

/* tasklets.c: the pickling methods of tasklets and channels, and
 * _wrap.set_reduce_frame(func). */
extern PyObject *slp_set_reduce_frame(PyObject *module, PyObject *func);
extern PyObject *slp_tasklet_reduce(PyTaskletObject *t);
extern PyObject *slp_tasklet_setstate(PyTaskletObject *t, PyObject *state);
extern PyObject *slp_channel_reduce(PyChannelObject *ch);
extern PyObject *slp_channel_setstate(PyChannelObject *ch, PyObject *state);

#endif /* !Py_STACKLESS_IMPL_H */
