/* The value stack of a suspended frame, for the garbage collector.
 *
 * A frame that is executing an instruction which called into C keeps its
 * stack pointer in a C local of the eval loop (frame->stacktop is -1).
 * When a tasklet is hard-switched out in that C call, the frame's value
 * stack holds the inputs of that instruction (a CALL's callable and
 * arguments, say), and nothing tells how many there are.
 *
 * They are found the way the compiler sizes the stack: the depth before
 * each instruction follows from the stack effects along every path from
 * the start and from each exception handler, and it is the same on all
 * paths.  The analysis runs on the code's de-specialized bytecode.  Where
 * the paths disagree, or an effect is unknown, the depth is reported
 * unknown (-1), and the caller visits the locals only: the collector must
 * never be shown a slot above the real top, which may hold a dangling
 * pointer, while leaving out a reference only keeps objects alive.
 *
 * Nor is the collector shown the inputs of the instruction the frame is
 * stopped in: nothing tells how far it got with them.  A CALL drops its
 * callable and arguments after the call, one by one, and a finalizer run
 * by one of them may switch: the slots of those dropped before are
 * dangling.  STORE_FAST stores the new value in its local before it drops
 * the old one (whose finalizer may switch): its input slot is a stale
 * second copy.  BEFORE_WITH drops the manager before it calls __enter__.
 * The slots below the inputs are the instruction's callers' business, and
 * stay as they are until it ends.  Its inputs that are still alive are
 * left out (they stay alive), and so are its outputs, which are written
 * at its end.  One case is known for sure, the common one: the top frame
 * of a tasklet that a switching builtin hard-switched, called by the
 * frame's CALL, whose inputs are intact until the builtin returns
 * (slp_cstate.calling_frame, set by the switch).
 */

#include "stackless_impl.h"
#include "pycore_code.h"          // _PyCode_GetCode()
#include "pycore_opcode_metadata.h"
#include "pycore_opcode_utils.h"

typedef struct {
    const _Py_CODEUNIT *code;
    int n;
    int *depth;
    int *work;
    int nwork;
    int limit;
    /* Checking code made by hand: every instruction reached must be a
     * known one, starting where an instruction starts, with its inputs on
     * the stack, and none may run off the end. */
    int strict;
    char *starts;
    int broken;             /* where the flow broke, +1 */
} flow;

static void
reach(flow *fl, int from, int i, int d)
{
    if (fl->broken) {
        return;
    }
    if (i < 0 || i >= fl->n || d < 0 || d > fl->limit
        || (fl->strict && !fl->starts[i]))
    {
        fl->broken = from + 1;
        return;
    }
    if (fl->depth[i] == -1) {
        fl->depth[i] = d;
        fl->work[fl->nwork++] = i;
    }
    else if (fl->depth[i] != d) {
        fl->broken = from + 1;
    }
}

/* The argument of the instruction at `index`, with its EXTENDED_ARG
 * prefixes. */
static int
oparg_at(const _Py_CODEUNIT *code, int index)
{
    int oparg = code[index].op.arg;
    for (int j = index, shift = 8;
         j > 0 && code[j - 1].op.code == EXTENDED_ARG; j--, shift += 8)
    {
        oparg |= code[j - 1].op.arg << shift;
    }
    return oparg;
}

/* The number of stack items the instruction at `index` of `code` pops. */
static int
inputs_of(const _Py_CODEUNIT *code, int index)
{
    return _PyOpcode_num_popped(code[index].op.code, oparg_at(code, index));
}

/* An opcode the compiler emits (not a cache, specialized or instrumented
 * form, or a number nothing uses). */
static int
is_base_opcode(int opcode)
{
    return opcode != CACHE && opcode != RESERVED
           && opcode < MIN_INSTRUMENTED_OPCODE
           && _PyOpcode_Deopt[opcode] == opcode
           && _PyOpcode_OpName[opcode] != NULL
           && _PyOpcode_OpName[opcode][0] != '<';
}

/* Follow the depths from the entries (index, depth) and from each handler
 * of co's exception table: the depth it gives, the lasti it may push, and
 * the exception. */
static void
run_flow(PyCodeObject *co, flow *fl, const int (*entries)[2], int nentries)
{
    const _Py_CODEUNIT *code = fl->code;
    int n = fl->n;
    for (int e = 0; e < nentries; e++) {
        reach(fl, entries[e][0], entries[e][0], entries[e][1]);
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(
        co->co_exceptiontable);
    const unsigned char *end = p + PyBytes_GET_SIZE(co->co_exceptiontable);
    while (p < end && !fl->broken) {
        int start, size, target, dl;
        if (slp_exception_entry(&p, end, &start, &size, &target, &dl) < 0) {
            fl->broken = n + 1;
            break;
        }
        reach(fl, start, target, (dl >> 1) + (dl & 1) + 1);
    }

    while (fl->nwork > 0 && !fl->broken) {
        int i = fl->work[--fl->nwork];
        int d = fl->depth[i];
        int opcode = code[i].op.code;
        if (opcode == EXTENDED_ARG) {
            reach(fl, i, i + 1, d);
            continue;
        }
        int oparg = oparg_at(code, i);
        if (fl->strict && (!is_base_opcode(opcode)
                           || _PyOpcode_num_popped(opcode, oparg) > d))
        {
            fl->broken = i + 1;
            break;
        }
        int next = i + 1 + _PyOpcode_Caches[opcode];
        if (OPCODE_HAS_JUMP(opcode)) {
            int effect = PyCompile_OpcodeStackEffectWithJump(opcode, oparg, 1);
            if (effect == PY_INVALID_STACK_EFFECT) {
                fl->broken = i + 1;
                break;
            }
            int target = IS_BACKWARDS_JUMP_OPCODE(opcode) ? next - oparg
                                                          : next + oparg;
            reach(fl, i, target, d + effect);
        }
        if (!IS_UNCONDITIONAL_JUMP_OPCODE(opcode)
            && !IS_SCOPE_EXIT_OPCODE(opcode))
        {
            int effect = PyCompile_OpcodeStackEffectWithJump(opcode, oparg, 0);
            if (effect == PY_INVALID_STACK_EFFECT) {
                fl->broken = i + 1;
                break;
            }
            if (next < n || fl->strict) {
                reach(fl, i, next, d + effect);
            }
        }
    }
}

/* Set up fl for co's de-specialized code (which *bytes then holds): 0, or
 * -1 with an exception. */
static int
flow_init(flow *fl, PyCodeObject *co, int strict, PyObject **bytes)
{
    *bytes = _PyCode_GetCode(co);
    if (*bytes == NULL) {
        return -1;
    }
    memset(fl, 0, sizeof(*fl));
    fl->code = (const _Py_CODEUNIT *)PyBytes_AS_STRING(*bytes);
    fl->n = (int)(PyBytes_GET_SIZE(*bytes) / sizeof(_Py_CODEUNIT));
    fl->limit = co->co_stacksize;
    fl->strict = strict;
    int n = fl->n > 0 ? fl->n : 1;
    fl->depth = PyMem_Malloc(n * sizeof(int));
    fl->work = PyMem_Malloc(n * sizeof(int));
    fl->starts = strict ? PyMem_Calloc(n, 1) : NULL;
    if (fl->depth == NULL || fl->work == NULL || (strict && !fl->starts)) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < fl->n; i++) {
        fl->depth[i] = -1;
    }
    if (strict) {
        for (int i = 0; i < fl->n;
             i += 1 + _PyOpcode_Caches[fl->code[i].op.code])
        {
            fl->starts[i] = 1;
        }
    }
    return 0;
}

static void
flow_fini(flow *fl, PyObject *bytes)
{
    PyMem_Free(fl->depth);
    PyMem_Free(fl->work);
    PyMem_Free(fl->starts);
    Py_XDECREF(bytes);
}

static int stack_depth(PyCodeObject *co, int index, int live);

int
slp_stack_depth(PyCodeObject *co, int index)
{
    return stack_depth(co, index, 0);
}

int
slp_stack_depth_live(PyCodeObject *co, int index)
{
    return stack_depth(co, index, 1);
}

/* The depth before the instruction at `index`; with `live`, less its
 * inputs (-1 if that is less than 0). */
static int
stack_depth(PyCodeObject *co, int index, int live)
{
    flow fl;
    PyObject *bytes;
    int result = -1;
    static const int entry[1][2] = {{0, 0}};
    if (flow_init(&fl, co, 0, &bytes) < 0) {
        PyErr_Clear();
        goto done;
    }
    if (index < 0 || index >= fl.n) {
        goto done;
    }
    run_flow(co, &fl, entry, 1);
    if (!fl.broken) {
        result = fl.depth[index];
        if (live && result >= 0) {
            int n = inputs_of(fl.code, index);
            result = n >= 0 && n <= result ? result - n : -1;
        }
    }
done:
    flow_fini(&fl, bytes);
    return result;
}

int
slp_code_check_flow(PyCodeObject *co, const int (*entries)[2], int nentries)
{
    flow fl;
    PyObject *bytes;
    int res = -1;
    if (flow_init(&fl, co, 1, &bytes) < 0) {
        goto done;
    }
    run_flow(co, &fl, entries, nentries);
    if (fl.broken) {
        int at = fl.broken - 1;
        PyErr_Format(PyExc_ValueError,
                     "the stack of code object %R cannot be followed "
                     "from instruction %d (%s)", co, at,
                     at < fl.n ? _PyOpcode_OpName[fl.code[at].op.code]
                               : "the exception table");
        goto done;
    }
    res = 0;
done:
    flow_fini(&fl, bytes);
    return res;
}

PyObject *
slp_stack_depths(PyCodeObject *co)
{
    flow fl;
    PyObject *bytes, *res = NULL;
    static const int entry[1][2] = {{0, 0}};
    if (flow_init(&fl, co, 0, &bytes) < 0) {
        goto done;
    }
    run_flow(co, &fl, entry, fl.n > 0);
    if (fl.broken) {
        PyErr_Format(PyExc_ValueError,
                     "the stack of code object %R cannot be followed "
                     "from instruction %d", co, fl.broken - 1);
        goto done;
    }
    res = PyList_New(fl.n);
    for (int i = 0; res != NULL && i < fl.n; i++) {
        PyObject *d = PyLong_FromLong(fl.depth[i]);
        if (d == NULL) {
            Py_CLEAR(res);
            break;
        }
        PyList_SET_ITEM(res, i, d);
    }
done:
    flow_fini(&fl, bytes);
    return res;
}

/* A cache of depths for slp_stack_depth_cached(), direct-mapped.  A code
 * object is known by its address and version: another one allocated at
 * the same address has another version (a version of 0, given when the
 * interpreter ran out of them, is not cached). */
#define DEPTH_CACHE_SIZE 64

struct slp_depth_cache {
    struct {
        PyCodeObject *code;
        uint32_t version;
        int index;
        int depth;
    } entry[DEPTH_CACHE_SIZE];
};

int
slp_stack_depth_cached(slp_thread *th, PyCodeObject *co, int index)
{
    if (co->co_version == 0) {
        return slp_stack_depth(co, index);
    }
    if (th->depth_cache == NULL) {
        th->depth_cache = PyMem_RawCalloc(1, sizeof(struct slp_depth_cache));
        if (th->depth_cache == NULL) {
            return slp_stack_depth(co, index);
        }
    }
    size_t h = (((uintptr_t)co >> 4) ^ (uintptr_t)index * 31)
               % DEPTH_CACHE_SIZE;
    struct slp_depth_cache *c = th->depth_cache;
    if (c->entry[h].code == co && c->entry[h].version == co->co_version
        && c->entry[h].index == index)
    {
        return c->entry[h].depth;
    }
    int depth = slp_stack_depth(co, index);
    c->entry[h].code = co;
    c->entry[h].version = co->co_version;
    c->entry[h].index = index;
    c->entry[h].depth = depth;
    return depth;
}

/* Visit what the frames of a suspended chain hold.  Frames owned by a
 * generator are its business (its own traversal). */
int
slp_frames_traverse(_PyInterpreterFrame *f, _PyInterpreterFrame *calling,
                    visitproc visit, void *arg)
{
    for (; f != NULL; f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_THREAD) {
            continue;
        }
        Py_VISIT(f->frame_obj);
        Py_VISIT(f->f_locals);
        Py_VISIT(f->f_funcobj);
        Py_VISIT(f->f_executable);
        PyCodeObject *co = _PyFrame_GetCode(f);
        int top = f->stacktop;
        if (top < 0) {
            /* Stopped in an instruction that called C: the slots below
             * its inputs (see above), or with them if it is the CALL of
             * the builtin that switched. */
            int index = _PyInterpreterFrame_LASTI(f);
            /* CALL_FUNCTION_EX may have replaced its argument sequence
             * by a tuple, leaving the slot stale. */
            int intact = f == calling
                && _Py_GetBaseOpcode(co, index) != CALL_FUNCTION_EX;
            int depth = intact ? slp_stack_depth(co, index)
                               : slp_stack_depth_live(co, index);
            top = co->co_nlocalsplus + (depth > 0 ? depth : 0);
        }
        for (int i = 0; i < top; i++) {
            Py_VISIT(f->localsplus[i]);
        }
    }
    return 0;
}
