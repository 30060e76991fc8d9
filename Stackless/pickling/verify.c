/* Is an unpickled frame safe to run?
 *
 * The eval loop trusts its frames: a LOAD_FAST reads a local that the
 * compiler proved bound, a FOR_ITER calls the tp_iternext of what sits
 * under it, a RERAISE jumps to the int it finds, a LIST_APPEND appends to
 * what it takes for a list.  A frame that comes from a pickle may hold
 * anything in those slots, so before it runs, its code is executed
 * abstractly, forward from the point where the frame resumes, over every
 * path the eval loop could take from there (exception handlers included),
 * with what each slot is known to hold: the properties of the actual
 * objects in the frame at the start, and those of what each instruction
 * pushes after.  At a join the properties that hold on every path are
 * kept.  Every instruction reached checks what it assumes of its inputs:
 * a frame passes only if no path can reach an instruction with an input it
 * does not expect.  The stack depth must agree on all paths, and with the
 * depth the frame was saved with.
 *
 * What is checked is what the eval loop does not check itself (it raises
 * a TypeError for most wrong types); it is listed with each opcode below.
 * The analysis runs on the de-specialized bytecode: specialized
 * instructions guard their own assumptions.  A result is cached per code
 * object, resume point and properties of the frame's slots, so that many
 * tasklets stopped at one place are checked once.
 */

#include "../core/stackless_impl.h"
#include "pycore_code.h"              // _PyCode_GetCode()
#include "pycore_intrinsics.h"
#include "pycore_opcode_metadata.h"
#include "pycore_opcode_utils.h"

/* What a slot is known to hold: a set of properties. */
typedef uint16_t kind;
#define K_NONNULL   0x0001      /* an object (not NULL) */
#define K_EXC       0x0002      /* an exception instance */
#define K_EXC_NONE  0x0004      /* an exception instance or None */
#define K_LASTI     0x0008      /* an int that is an offset into the code */
#define K_ITER      0x0010      /* its type has a tp_iternext */
#define K_LIST      0x0020      /* exactly a list */
#define K_DICT      0x0040      /* exactly a dict */
#define K_SET       0x0080      /* exactly a set */
#define K_TUPLE     0x0100      /* exactly a tuple */
#define K_CELL      0x0200      /* a cell */
#define K_FUNC      0x0400      /* a function */
#define K_CODE      0x0800      /* a code object */
#define K_ANY       K_NONNULL

static kind
slp_kind_of(PyObject *v, int ncode)
{
    if (v == NULL) {
        return 0;
    }
    kind k = K_NONNULL;
    PyTypeObject *tp = Py_TYPE(v);
    if (PyExceptionInstance_Check(v)) {
        k |= K_EXC | K_EXC_NONE;
    }
    else if (v == Py_None) {
        k |= K_EXC_NONE;
    }
    else if (PyLong_CheckExact(v)) {
        int overflow;
        long x = PyLong_AsLongAndOverflow(v, &overflow);
        if (!overflow && x >= 0 && x < ncode) {
            k |= K_LASTI;
        }
    }
    else if (tp == &PyList_Type) {
        k |= K_LIST;
    }
    else if (tp == &PyDict_Type) {
        k |= K_DICT;
    }
    else if (tp == &PySet_Type) {
        k |= K_SET;
    }
    else if (tp == &PyTuple_Type) {
        k |= K_TUPLE;
    }
    else if (tp == &PyCell_Type) {
        k |= K_CELL;
    }
    else if (tp == &PyFunction_Type) {
        k |= K_FUNC;
    }
    else if (tp == &PyCode_Type) {
        k |= K_CODE;
    }
    if (tp->tp_iternext != NULL) {
        k |= K_ITER;
    }
    return k;
}

/* --- the analysis ------------------------------------------------------ */

typedef struct {
    PyCodeObject *co;
    const _Py_CODEUNIT *code;   /* de-specialized */
    int n;                      /* code units */
    int nlocals;                /* co_nlocalsplus */
    int width;                  /* nlocals + co_stacksize */
    unsigned char *start;       /* start[i]: an instruction (or prefix)
                                   starts at i */
    int *oparg;                 /* the full oparg of the instruction at i */
    int *depth;                 /* -1: not reached */
    kind *kinds;                /* width per code unit */
    int *work;
    unsigned char *queued;
    int nwork;
    kind *cur;                  /* the state being transferred */
    int d;
    const char *error;          /* why the frame is refused */
    int error_at;
} analysis;

static int
fail(analysis *a, int at, const char *why)
{
    if (a->error == NULL) {
        a->error = why;
        a->error_at = at;
    }
    return -1;
}

/* Merge the state (kinds, depth) into the one at code unit t. */
static int
reach(analysis *a, int t, const kind *k, int d)
{
    if (t < 0 || t >= a->n || !a->start[t]) {
        return fail(a, t, "a jump to no instruction");
    }
    if (d < 0 || d > a->width - a->nlocals) {
        return fail(a, t, "the stack would over- or underflow");
    }
    kind *here = a->kinds + (size_t)t * a->width;
    int changed = 0;
    if (a->depth[t] < 0) {
        a->depth[t] = d;
        memcpy(here, k, (a->nlocals + d) * sizeof(kind));
        changed = 1;
    }
    else if (a->depth[t] != d) {
        return fail(a, t, "the stack depth differs between paths");
    }
    else {
        for (int i = 0; i < a->nlocals + d; i++) {
            kind m = here[i] & k[i];
            if (m != here[i]) {
                here[i] = m;
                changed = 1;
            }
        }
    }
    if (changed && !a->queued[t]) {
        a->queued[t] = 1;
        a->work[a->nwork++] = t;
    }
    return 0;
}

/* An exception raised at `offset` with the stack of depth d (kinds k):
 * to its handler, if there is one. */
static int
raise_at(analysis *a, int offset, const kind *k, int d)
{
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(
        a->co->co_exceptiontable);
    const unsigned char *end = p + PyBytes_GET_SIZE(a->co->co_exceptiontable);
    while (p < end) {
        int start, size, target, dl;
        if (slp_exception_entry(&p, end, &start, &size, &target, &dl) < 0) {
            return fail(a, offset, "a malformed exception table");
        }
        if (offset < start || offset >= start + size) {
            continue;
        }
        int level = dl >> 1;
        if (level > d) {
            return fail(a, offset, "a handler expects a deeper stack");
        }
        kind h[2];
        int nh = 0;
        if (dl & 1) {
            h[nh++] = K_NONNULL | K_LASTI;
        }
        h[nh++] = K_NONNULL | K_EXC | K_EXC_NONE;
        /* The state at the handler: the slots under its level, then the
         * lasti and the exception. */
        kind *tmp = PyMem_Malloc((a->nlocals + level + 2) * sizeof(kind));
        if (tmp == NULL) {
            return fail(a, offset, "no memory");
        }
        memcpy(tmp, k, (a->nlocals + level) * sizeof(kind));
        memcpy(tmp + a->nlocals + level, h, nh * sizeof(kind));
        int r = reach(a, target, tmp, level + nh);
        PyMem_Free(tmp);
        return r;
    }
    return 0;       /* out of the frame */
}

/* Accessors on the state being transferred: S(i) is the i-th slot from
 * the top (S(1) the top), L(i) a local. */
#define S(i)  (a->cur[a->nlocals + a->d - (i)])
#define L(i)  (a->cur[(i)])

static int
need(analysis *a, int at, int depth_from_top, kind props, const char *what)
{
    if (depth_from_top > a->d) {
        return fail(a, at, "the stack would underflow");
    }
    if ((S(depth_from_top) & props) != props) {
        return fail(a, at, what);
    }
    return 0;
}

static int
pop(analysis *a, int at, int n)
{
    for (int i = 1; i <= n; i++) {
        if (need(a, at, i, K_NONNULL, "a NULL where an object is read") < 0) {
            return -1;
        }
    }
    a->d -= n;
    return 0;
}

static int
push(analysis *a, int at, kind k)
{
    if (a->nlocals + a->d >= a->width) {
        return fail(a, at, "the stack would overflow");
    }
    a->cur[a->nlocals + a->d++] = k;
    return 0;
}

static int
local(analysis *a, int at, int i)
{
    if (i < 0 || i >= a->nlocals) {
        return fail(a, at, "no such local");
    }
    return 0;
}

/* Transfer the state at instruction i (op, oparg; the next one at `next`)
 * to its successors.  a->cur holds a copy of the state at i. */
static int
transfer(analysis *a, int i, int op, int oparg, int next)
{
    int d0 = a->d;
    /* Any instruction may raise: its handler sees the stack under the
     * instruction's inputs, which it leaves alone. */
    if (raise_at(a, i, a->cur, d0) < 0) {
        return -1;
    }
    switch (op) {
    case NOP: case RESUME: case JUMP_FORWARD: case JUMP_BACKWARD:
    case JUMP_BACKWARD_NO_INTERRUPT:
        break;
    case POP_JUMP_IF_TRUE: case POP_JUMP_IF_FALSE:
    case POP_JUMP_IF_NONE: case POP_JUMP_IF_NOT_NONE: {
        if (pop(a, i, 1) < 0) {
            return -1;
        }
        /* COPY 1 before it: the copy left on the stack is known not to
         * be None where the jump says so. */
        int copied = i > 0 && a->code[i - 1].op.code == COPY
                     && a->code[i - 1].op.arg == 1 && a->start[i - 1]
                     && a->d > 0;
        kind saved = copied ? S(1) : 0;
        int not_none_if_jump = op == POP_JUMP_IF_NOT_NONE;
        if (copied && (op == POP_JUMP_IF_NONE || not_none_if_jump)
            && (saved & K_EXC_NONE))
        {
            if (not_none_if_jump) {
                S(1) = saved | K_EXC;
            }
            if (reach(a, next + oparg, a->cur, a->d) < 0) {
                return -1;
            }
            S(1) = not_none_if_jump ? saved : (kind)(saved | K_EXC);
            return reach(a, next, a->cur, a->d);
        }
        if (reach(a, next + oparg, a->cur, a->d) < 0) {
            return -1;
        }
        return reach(a, next, a->cur, a->d);
    }
    case FOR_ITER:
        if (need(a, i, 1, K_NONNULL | K_ITER,
                 "FOR_ITER over what is not an iterator") < 0)
        {
            return -1;
        }
        /* Exhausted: the iterator goes, and END_FOR and POP_TOP are
         * skipped. */
        a->d--;
        if (reach(a, next + oparg + 2, a->cur, a->d) < 0) {
            return -1;
        }
        a->d++;
        return push(a, i, K_ANY) < 0 ? -1 : reach(a, next, a->cur, a->d);
    case SEND:
        if (pop(a, i, 2) < 0) {
            return -1;
        }
        a->d += 2;
        S(1) = K_ANY;
        if (reach(a, next + oparg, a->cur, a->d) < 0) {
            return -1;
        }
        break;
    case END_SEND: {
        if (pop(a, i, 2) < 0) {
            return -1;
        }
        kind v = a->cur[a->nlocals + a->d + 1];
        if (push(a, i, v) < 0) {
            return -1;
        }
        break;
    }
    case COPY: {
        if (oparg < 1 || need(a, i, oparg, K_NONNULL,
                              "COPY of a NULL") < 0)
        {
            return fail(a, i, "a bad COPY");
        }
        if (push(a, i, S(oparg)) < 0) {
            return -1;
        }
        break;
    }
    case SWAP: {
        if (oparg < 2 || oparg > a->d) {
            return fail(a, i, "a bad SWAP");
        }
        kind t = S(1);
        S(1) = S(oparg);
        S(oparg) = t;
        break;
    }
    case PUSH_NULL:
        if (push(a, i, 0) < 0) {
            return -1;
        }
        break;
    case LOAD_CONST:
        if (oparg >= PyTuple_GET_SIZE(a->co->co_consts)) {
            return fail(a, i, "no such constant");
        }
        if (push(a, i, slp_kind_of(PyTuple_GET_ITEM(a->co->co_consts, oparg),
                                   a->n)) < 0)
        {
            return -1;
        }
        break;
    case RETURN_CONST:
        return 0;
    case RETURN_VALUE:
        return pop(a, i, 1);
    case RAISE_VARARGS:
        return pop(a, i, oparg);
    case RERAISE:
        if (need(a, i, 1, K_NONNULL | K_EXC,
                 "RERAISE of what is not an exception") < 0
            || (oparg && need(a, i, 1 + oparg, K_NONNULL | K_LASTI,
                              "RERAISE to what is not an offset") < 0))
        {
            return -1;
        }
        return 0;
    case LOAD_FAST: case LOAD_FAST_CHECK: case LOAD_FAST_AND_CLEAR: {
        if (local(a, i, oparg) < 0) {
            return -1;
        }
        kind k = L(oparg);
        if (op == LOAD_FAST && !(k & K_NONNULL)) {
            return fail(a, i, "an unbound local where it must be bound");
        }
        if (op == LOAD_FAST_CHECK) {
            k |= K_NONNULL;
        }
        if (op == LOAD_FAST_AND_CLEAR) {
            L(oparg) = 0;
        }
        if (push(a, i, k) < 0) {
            return -1;
        }
        break;
    }
    case LOAD_FAST_LOAD_FAST: {
        int x = oparg >> 4, y = oparg & 15;
        if (local(a, i, x) < 0 || local(a, i, y) < 0) {
            return -1;
        }
        if (!(L(x) & L(y) & K_NONNULL)) {
            return fail(a, i, "an unbound local where it must be bound");
        }
        if (push(a, i, L(x)) < 0 || push(a, i, L(y)) < 0) {
            return -1;
        }
        break;
    }
    case STORE_FAST:
        if (local(a, i, oparg) < 0 || a->d < 1) {
            return fail(a, i, "a bad STORE_FAST");
        }
        L(oparg) = S(1);            /* may be NULL: LOAD_FAST_AND_CLEAR */
        a->d--;
        break;
    case STORE_FAST_LOAD_FAST: {
        int x = oparg >> 4, y = oparg & 15;
        if (local(a, i, x) < 0 || local(a, i, y) < 0 || a->d < 1) {
            return fail(a, i, "a bad STORE_FAST_LOAD_FAST");
        }
        L(x) = S(1);
        a->d--;
        if (!(L(y) & K_NONNULL)) {
            return fail(a, i, "an unbound local where it must be bound");
        }
        if (push(a, i, L(y)) < 0) {
            return -1;
        }
        break;
    }
    case STORE_FAST_STORE_FAST: {
        int x = oparg >> 4, y = oparg & 15;
        if (local(a, i, x) < 0 || local(a, i, y) < 0 || a->d < 2) {
            return fail(a, i, "a bad STORE_FAST_STORE_FAST");
        }
        a->d -= 2;                  /* either may be NULL */
        L(x) = a->cur[a->nlocals + a->d + 1];
        L(y) = a->cur[a->nlocals + a->d];
        break;
    }
    case DELETE_FAST:
        if (local(a, i, oparg) < 0) {
            return -1;
        }
        L(oparg) = 0;
        break;
    case MAKE_CELL:
        if (local(a, i, oparg) < 0) {
            return -1;
        }
        L(oparg) = K_NONNULL | K_CELL;
        break;
    case COPY_FREE_VARS:
        for (int j = 0; j < oparg; j++) {
            int slot = a->nlocals - oparg + j;
            if (slot < 0) {
                return fail(a, i, "a bad COPY_FREE_VARS");
            }
            L(slot) = K_NONNULL | K_CELL;
        }
        break;
    case LOAD_DEREF: case STORE_DEREF: case DELETE_DEREF:
    case LOAD_FROM_DICT_OR_DEREF:
        if (local(a, i, oparg) < 0) {
            return -1;
        }
        if (!(L(oparg) & K_CELL)) {
            return fail(a, i, "a cell variable that holds no cell");
        }
        if (op == STORE_DEREF || op == LOAD_FROM_DICT_OR_DEREF) {
            if (pop(a, i, 1) < 0) {
                return -1;
            }
        }
        if ((op == LOAD_DEREF || op == LOAD_FROM_DICT_OR_DEREF)
            && push(a, i, K_ANY) < 0)
        {
            return -1;
        }
        break;
    case PUSH_EXC_INFO: {
        if (need(a, i, 1, K_NONNULL | K_EXC,
                 "an exception handled that is not an exception") < 0)
        {
            return -1;
        }
        kind e = S(1);
        S(1) = K_NONNULL | K_EXC_NONE;
        if (push(a, i, e) < 0) {
            return -1;
        }
        break;
    }
    case POP_EXCEPT:
        if (need(a, i, 1, K_NONNULL | K_EXC_NONE,
                 "POP_EXCEPT of what is not an exception") < 0)
        {
            return -1;
        }
        a->d--;
        break;
    case WITH_EXCEPT_START:
        if (need(a, i, 1, K_NONNULL | K_EXC,
                 "WITH_EXCEPT_START of what is not an exception") < 0
            || need(a, i, 3, K_NONNULL | K_LASTI,
                    "WITH_EXCEPT_START without an offset") < 0
            || pop(a, i, 4) < 0)
        {
            return -1;
        }
        a->d += 4;
        if (push(a, i, K_ANY) < 0) {
            return -1;
        }
        break;
    case CLEANUP_THROW:
        if (need(a, i, 1, K_NONNULL | K_EXC,
                 "CLEANUP_THROW of what is not an exception") < 0
            || pop(a, i, 3) < 0 || push(a, i, K_ANY) < 0
            || push(a, i, K_ANY) < 0)
        {
            return -1;
        }
        break;
    case END_ASYNC_FOR:
        if (need(a, i, 1, K_NONNULL | K_EXC,
                 "END_ASYNC_FOR of what is not an exception") < 0
            || pop(a, i, 2) < 0)
        {
            return -1;
        }
        break;
    case CHECK_EG_MATCH:
        if (pop(a, i, 2) < 0 || push(a, i, K_NONNULL | K_EXC_NONE) < 0
            || push(a, i, K_NONNULL | K_EXC_NONE) < 0)
        {
            return -1;
        }
        break;
    case LIST_APPEND: case SET_ADD: case LIST_EXTEND: case SET_UPDATE:
    case DICT_UPDATE: case DICT_MERGE: case MAP_ADD: {
        int nin = op == MAP_ADD ? 2 : 1;
        kind props = op == LIST_APPEND || op == LIST_EXTEND ? K_LIST
                     : op == SET_UPDATE ? K_SET
                     : op == MAP_ADD ? K_DICT : 0;
        if (oparg < 1 || need(a, i, nin + oparg, K_NONNULL | props,
                              "a container of the wrong type") < 0
            || pop(a, i, nin) < 0)
        {
            return -1;
        }
        break;
    }
    case BUILD_LIST: case BUILD_SET: case BUILD_TUPLE:
        if (pop(a, i, oparg) < 0
            || push(a, i, K_NONNULL | (op == BUILD_LIST ? K_LIST
                                       : op == BUILD_SET ? K_SET
                                       : K_TUPLE)) < 0)
        {
            return -1;
        }
        break;
    case BUILD_MAP:
        if (pop(a, i, 2 * oparg) < 0 || push(a, i, K_NONNULL | K_DICT) < 0) {
            return -1;
        }
        break;
    case BUILD_CONST_KEY_MAP:
        if (need(a, i, 1, K_NONNULL | K_TUPLE, "keys that are no tuple") < 0
            || pop(a, i, oparg + 1) < 0 || push(a, i, K_NONNULL | K_DICT) < 0)
        {
            return -1;
        }
        break;
    case MAKE_FUNCTION:
        if (need(a, i, 1, K_NONNULL | K_CODE,
                 "MAKE_FUNCTION of what is not code") < 0
            || pop(a, i, 1) < 0 || push(a, i, K_NONNULL | K_FUNC) < 0)
        {
            return -1;
        }
        break;
    case SET_FUNCTION_ATTRIBUTE: {
        kind props = oparg == MAKE_FUNCTION_KWDEFAULTS ? K_DICT
                     : oparg == MAKE_FUNCTION_ANNOTATIONS ? 0 : K_TUPLE;
        if (need(a, i, 1, K_NONNULL | K_FUNC,
                 "SET_FUNCTION_ATTRIBUTE of what is not a function") < 0
            || need(a, i, 2, K_NONNULL | props,
                    "a function attribute of the wrong type") < 0)
        {
            return -1;
        }
        kind f = S(1);
        a->d -= 2;
        if (push(a, i, f) < 0) {
            return -1;
        }
        break;
    }
    case CALL: case CALL_KW: {
        int k = op == CALL_KW;
        if (k && need(a, i, 1, K_NONNULL | K_TUPLE,
                      "keyword names that are no tuple") < 0)
        {
            return -1;
        }
        if (pop(a, i, oparg + k) < 0 || a->d < 2) {
            return fail(a, i, "a bad call");
        }
        /* self_or_null may be NULL, the callable not. */
        if (need(a, i, 2, K_NONNULL, "a call of NULL") < 0) {
            return -1;
        }
        a->d -= 2;
        if (push(a, i, K_ANY) < 0) {
            return -1;
        }
        break;
    }
    case CALL_FUNCTION_EX:
        if ((oparg & 1) && need(a, i, 1, K_NONNULL | K_DICT,
                                "keyword arguments that are no dict") < 0)
        {
            return -1;
        }
        a->d -= oparg & 1;
        if (a->d < 3 || need(a, i, 1, K_NONNULL, "NULL arguments") < 0
            || need(a, i, 3, K_NONNULL, "a call of NULL") < 0)
        {
            return fail(a, i, "a bad call");
        }
        a->d -= 3;
        if (push(a, i, K_ANY) < 0) {
            return -1;
        }
        break;
    case LOAD_GLOBAL:
        if (push(a, i, K_ANY) < 0 || ((oparg & 1) && push(a, i, 0) < 0)) {
            return -1;
        }
        break;
    case LOAD_ATTR:
        if (pop(a, i, 1) < 0 || push(a, i, K_ANY) < 0
            || ((oparg & 1) && push(a, i, 0) < 0))
        {
            return -1;
        }
        break;
    case LOAD_SUPER_ATTR:
        if (pop(a, i, 3) < 0 || push(a, i, K_ANY) < 0
            || ((oparg & 1) && push(a, i, 0) < 0))
        {
            return -1;
        }
        break;
    case CALL_INTRINSIC_1: {
        kind props = oparg == INTRINSIC_LIST_TO_TUPLE ? K_LIST
                     : oparg == INTRINSIC_STOPITERATION_ERROR ? K_EXC
                     : oparg == INTRINSIC_TYPEALIAS ? K_TUPLE : 0;
        if (need(a, i, 1, K_NONNULL | props,
                 "an intrinsic's argument of the wrong type") < 0
            || pop(a, i, 1) < 0
            || push(a, i, oparg == INTRINSIC_STOPITERATION_ERROR
                          ? K_NONNULL | K_EXC | K_EXC_NONE : K_ANY) < 0)
        {
            return -1;
        }
        break;
    }
    case CALL_INTRINSIC_2: {
        if ((oparg == INTRINSIC_PREP_RERAISE_STAR
             && need(a, i, 1, K_NONNULL | K_LIST,
                     "an intrinsic's argument of the wrong type") < 0)
            || (oparg == INTRINSIC_SET_FUNCTION_TYPE_PARAMS
                && need(a, i, 2, K_NONNULL | K_FUNC,
                        "an intrinsic's argument of the wrong type") < 0)
            || pop(a, i, 2) < 0
            || push(a, i, oparg == INTRINSIC_PREP_RERAISE_STAR
                          ? K_NONNULL | K_EXC_NONE : K_ANY) < 0)
        {
            return -1;
        }
        break;
    }
    case GET_ITER:
        if (pop(a, i, 1) < 0 || push(a, i, K_NONNULL | K_ITER) < 0) {
            return -1;
        }
        break;
    case RETURN_GENERATOR: case INTERPRETER_EXIT: case YIELD_VALUE:
        /* Only at the start of a generator, only in C's frames, only in a
         * generator (whose resume points are checked for it). */
        if (op != YIELD_VALUE || !(a->co->co_flags
                                   & (CO_GENERATOR | CO_COROUTINE
                                      | CO_ASYNC_GENERATOR)))
        {
            return fail(a, i, "an instruction that cannot resume here");
        }
        if (pop(a, i, 1) < 0 || push(a, i, K_ANY) < 0) {
            return -1;
        }
        break;
    default: {
        /* Pops its inputs (objects), pushes objects; a few keep their
         * first inputs in place. */
        int npop = _PyOpcode_num_popped(op, oparg);
        int npush = _PyOpcode_num_pushed(op, oparg);
        if (npop < 0 || npush < 0 || OPCODE_HAS_JUMP(op)
            || IS_SCOPE_EXIT_OPCODE(op))
        {
            return fail(a, i, "an unknown instruction");
        }
        int keep = 0;
        switch (op) {
        case GET_ANEXT: case IMPORT_FROM: case GET_LEN: case MATCH_MAPPING:
        case MATCH_SEQUENCE: case CHECK_EXC_MATCH:
            keep = 1;
            break;
        case MATCH_KEYS:
            keep = 2;
            break;
        }
        if (pop(a, i, npop) < 0) {
            return -1;
        }
        a->d += keep;
        for (int j = keep; j < npush; j++) {
            if (push(a, i, K_ANY) < 0) {
                return -1;
            }
        }
        break;
    }
    }
    if (IS_UNCONDITIONAL_JUMP_OPCODE(op)) {
        int t = IS_BACKWARDS_JUMP_OPCODE(op) ? next - oparg : next + oparg;
        return reach(a, t, a->cur, a->d);
    }
    return reach(a, next, a->cur, a->d);
}

#undef S
#undef L

static int
run(analysis *a)
{
    while (a->nwork > 0 && a->error == NULL) {
        int i = a->work[--a->nwork];
        a->queued[i] = 0;
        memcpy(a->cur, a->kinds + (size_t)i * a->width,
               a->width * sizeof(kind));
        a->d = a->depth[i];
        int op = a->code[i].op.code;
        if (op == CACHE || op == RESERVED || !IS_VALID_OPCODE(op)
            || _PyOpcode_Deopt[op] != op || op >= MIN_INSTRUMENTED_OPCODE)
        {
            return fail(a, i, "no instruction of this Python");
        }
        if (op == EXTENDED_ARG) {
            if (reach(a, i + 1, a->cur, a->d) < 0) {
                return -1;
            }
            continue;
        }
        int next = i + 1 + _PyOpcode_Caches[op];
        if (transfer(a, i, op, a->oparg[i], next) < 0) {
            return -1;
        }
    }
    return a->error == NULL ? 0 : -1;
}

/* --- the resume points ---------------------------------------------------
 *
 * Where a frame may stop, and how it goes on (fc->mode):
 *
 *   SLP_RESUME_BEFORE   a tasklet's top frame preempted at a RESUME or
 *                       JUMP_BACKWARD, which runs again (return_offset 0)
 *   SLP_RESUME_PUSH     a frame waiting for a call: the result is pushed
 *                       and it goes on return_offset units further; the
 *                       callee may also raise (or a bomb be thrown in)
 *   SLP_RESUME_NOPUSH   a top frame preempted after a call, its result
 *                       on the stack already
 *   SLP_RESUME_GEN      a generator that has not started or is suspended
 *                       at a yield: the value sent is pushed at instr_ptr,
 *                       and a throw() raises at the instruction before
 */

/* The instructions that call a Python frame and wait for it. */
static int
waits_for_frame(int op)
{
    switch (op) {
    case CALL: case CALL_KW: case CALL_FUNCTION_EX: case BINARY_SUBSCR:
    case LOAD_ATTR: case BEFORE_WITH: case SEND: case FOR_ITER:
        return 1;
    }
    return 0;
}

/* The depth the compiler gives the stack at code unit t must be d. */
static int
compiler_depth(analysis *a, int t, int d)
{
    if (t < 0 || t >= a->n || slp_stack_depth(a->co, t) != d) {
        return fail(a, t, "the stack depth is not the compiler's there");
    }
    return 0;
}

static int
seed(analysis *a, slp_frame_check *fc, kind *k)
{
    int index = fc->index;
    int ro = fc->return_offset;
    int d = fc->depth;
    if (index < 0 || index >= a->n || !a->start[index]) {
        return fail(a, index, "the offset is not an instruction");
    }
    /* The instruction proper, after its EXTENDED_ARG prefix. */
    int at = index;
    while (at < a->n && a->code[at].op.code == EXTENDED_ARG) {
        at++;
    }
    if (at >= a->n) {
        return fail(a, index, "the offset is not an instruction");
    }
    int op = a->code[at].op.code;
    int span = 1 + _PyOpcode_Caches[op];
    int oparg = a->oparg[at];
    switch (fc->mode) {
    case SLP_RESUME_BEFORE:
        if (op != RESUME && op != JUMP_BACKWARD) {
            return fail(a, index, "a frame preempted where it cannot be");
        }
        if (compiler_depth(a, index, d) < 0) {
            return -1;
        }
        return reach(a, index, k, d);
    case SLP_RESUME_GEN:
        if (index < 1 || !a->start[index - 1]
            || (a->code[index - 1].op.code != YIELD_VALUE
                && a->code[index - 1].op.code != RETURN_GENERATOR))
        {
            return fail(a, index, "a generator stopped after no yield");
        }
        /* gen_send_ex2() pushes the value sent, None for a throw(),
         * whose exception is raised at the yield. */
        k[a->nlocals + d] = K_ANY;
        if (compiler_depth(a, index, d + 1) < 0
            || raise_at(a, index - 1, k, d + 1) < 0)
        {
            return -1;
        }
        return reach(a, index, k, d + 1);
    case SLP_RESUME_PUSH:
    case SLP_RESUME_NOPUSH:
        break;
    default:
        return fail(a, index, "an unknown resume mode");
    }
    if (at != index) {
        return fail(a, index, "a call parked at its prefix");
    }
    if (fc->shim) {
        /* Our shims: their code is ours, the waiting points known. */
        slp_thread *th = slp_get_thread();
        if (th == NULL || fc->mode != SLP_RESUME_PUSH
            || !slp_shim_waits_at(th->si, a->co, index, ro, d))
        {
            PyErr_Clear();
            return fail(a, index, "a shim stopped where it does not wait");
        }
    }
    else if (!waits_for_frame(op)
             || (fc->mode == SLP_RESUME_NOPUSH
                 && op != CALL && op != CALL_KW && op != CALL_FUNCTION_EX)
             || (op == LOAD_ATTR && (oparg & 1)))
    {
        return fail(a, index, "a frame parked where it cannot wait");
    }
    else if (ro != span
             && !((op == SEND || op == FOR_ITER) && ro == span + oparg))
    {
        return fail(a, index, "a return offset that does not fit");
    }
    if (!fc->shim && compiler_depth(a, index + ro,
                                    d + (fc->mode == SLP_RESUME_PUSH)) < 0)
    {
        return -1;
    }
    /* The callee raises (resume_with_error() looks up the handler of the
     * unit before instr_ptr), or a bomb is thrown in (the unit before the
     * resume point). */
    if (raise_at(a, index - 1, k, d) < 0
        || raise_at(a, index + ro - 1, k, d) < 0)
    {
        return -1;
    }
    if (fc->mode == SLP_RESUME_NOPUSH) {
        return reach(a, index + ro, k, d);
    }
    k[a->nlocals + d] = K_ANY;
    if (op == SEND || op == FOR_ITER) {
        /* A generator called yields to the next instruction, returns to
         * the jump target; the end of a channel iteration (a bomb of
         * StopIteration) pops the iterator and skips END_FOR and POP_TOP. */
        if (reach(a, index + span, k, d + 1) < 0
            || reach(a, index + span + oparg, k, d + 1) < 0)
        {
            return -1;
        }
        if (op == FOR_ITER) {
            return reach(a, index + span + oparg + 2, k, d - 1);
        }
        return 0;
    }
    return reach(a, index + ro, k, d + 1);
}

/* --- the cache ----------------------------------------------------------
 *
 * Direct-mapped, per interpreter: the code object (its address and
 * version), the resume point and mode, and the kinds of the frame's slots.
 * Kinds of long frames are not cached. */

#define VERIFY_CACHE_SIZE 256
#define VERIFY_CACHE_SLOTS 48

typedef struct {
    PyCodeObject *code;
    uint32_t version;
    int index;
    int return_offset;
    int mode;
    int nslots;
    kind slots[VERIFY_CACHE_SLOTS];
} cache_entry;

static cache_entry verify_cache[VERIFY_CACHE_SIZE];

static cache_entry *
cache_slot(slp_frame_check *fc, const kind *k, int nslots)
{
    size_t h = ((uintptr_t)fc->code >> 4) * 31 + (size_t)fc->index * 7
               + (size_t)fc->return_offset * 3 + (size_t)fc->mode;
    for (int i = 0; i < nslots; i++) {
        h = h * 33 + k[i];
    }
    return &verify_cache[h % VERIFY_CACHE_SIZE];
}

static int
cache_hit(cache_entry *e, slp_frame_check *fc, const kind *k, int nslots)
{
    return e->code == fc->code && e->version == fc->code->co_version
           && e->index == fc->index && e->return_offset == fc->return_offset
           && e->mode == fc->mode && e->nslots == nslots
           && memcmp(e->slots, k, nslots * sizeof(kind)) == 0;
}

/* --- the entry point ------------------------------------------------------ */

int
slp_verify_frame(slp_frame_check *fc)
{
    PyCodeObject *co = fc->code;
    int nlocals = co->co_nlocalsplus;
    int nslots = nlocals + fc->depth;
    if (fc->depth < 0 || fc->depth > co->co_stacksize) {
        PyErr_Format(PyExc_ValueError,
                     "frame of %R: a stack of %d items, where the code "
                     "has room for %d", co->co_name, fc->depth,
                     co->co_stacksize);
        return -1;
    }
    int ncode = (int)Py_SIZE(co);
    /* The kinds of the slots, one more for a pushed value. */
    kind *k = PyMem_Malloc((nslots + 1) * sizeof(kind));
    if (k == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < nslots; i++) {
        k[i] = slp_kind_of(fc->slots[i], ncode);
    }
    /* Cell and free variables hold cells (the prologue made them). */
    for (int i = 0; i < nlocals; i++) {
        _PyLocals_Kind lk = _PyLocals_GetKind(co->co_localspluskinds, i);
        if ((lk & (CO_FAST_CELL | CO_FAST_FREE)) && !(k[i] & K_CELL)) {
            PyMem_Free(k);
            PyErr_Format(PyExc_ValueError,
                         "frame of %R: the cell variable %R holds no cell",
                         co->co_name,
                         PyTuple_GET_ITEM(co->co_localsplusnames, i));
            return -1;
        }
    }
    cache_entry *e = NULL;
    if (co->co_version != 0 && nslots <= VERIFY_CACHE_SLOTS) {
        e = cache_slot(fc, k, nslots);
        if (cache_hit(e, fc, k, nslots)) {
            PyMem_Free(k);
            return 0;
        }
    }

    /* The de-specialized code; the init shim's is static and read-only
     * (CPython's _Py_InitCleanup), and never specialized. */
    PyObject *bytes = fc->shim && slp_shim_is_static(co)
        ? PyBytes_FromStringAndSize((const char *)_PyCode_CODE(co),
                                    Py_SIZE(co) * sizeof(_Py_CODEUNIT))
        : _PyCode_GetCode(co);
    if (bytes == NULL) {
        PyMem_Free(k);
        return -1;
    }
    analysis a;
    memset(&a, 0, sizeof(a));
    a.co = co;
    a.code = (const _Py_CODEUNIT *)PyBytes_AS_STRING(bytes);
    a.n = (int)(PyBytes_GET_SIZE(bytes) / sizeof(_Py_CODEUNIT));
    a.nlocals = nlocals;
    a.width = nlocals + co->co_stacksize;
    a.start = PyMem_Calloc(a.n + 1, 1);
    a.queued = PyMem_Calloc(a.n + 1, 1);
    a.oparg = PyMem_Calloc(a.n + 1, sizeof(int));
    a.depth = PyMem_Malloc((a.n + 1) * sizeof(int));
    a.work = PyMem_Malloc((a.n + 1) * sizeof(int));
    a.kinds = PyMem_Malloc(((size_t)a.n * a.width + 1) * sizeof(kind));
    a.cur = PyMem_Malloc((a.width + 1) * sizeof(kind));
    int result = -1;
    if (a.start == NULL || a.queued == NULL || a.oparg == NULL
        || a.depth == NULL || a.work == NULL || a.kinds == NULL
        || a.cur == NULL)
    {
        PyErr_NoMemory();
        goto done;
    }
    /* Where instructions start, and their full opargs. */
    for (int i = 0, ext = 0; i < a.n; ) {
        int op = a.code[i].op.code;
        a.start[i] = 1;
        a.oparg[i] = ext | a.code[i].op.arg;
        ext = op == EXTENDED_ARG ? a.oparg[i] << 8 : 0;
        i += 1 + (op == EXTENDED_ARG ? 0 : _PyOpcode_Caches[op]);
    }
    for (int i = 0; i < a.n; i++) {
        a.depth[i] = -1;
    }
    if (seed(&a, fc, k) == 0) {
        (void)run(&a);
    }
    if (a.error != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "frame of %R cannot resume at offset %d: %s "
                     "(at offset %d)", co->co_name, fc->index, a.error,
                     a.error_at);
        goto done;
    }
    result = 0;
    if (e != NULL) {
        e->code = co;
        e->version = co->co_version;
        e->index = fc->index;
        e->return_offset = fc->return_offset;
        e->mode = fc->mode;
        e->nslots = nslots;
        memcpy(e->slots, k, nslots * sizeof(kind));
    }

done:
    PyMem_Free(a.start);
    PyMem_Free(a.queued);
    PyMem_Free(a.oparg);
    PyMem_Free(a.depth);
    PyMem_Free(a.work);
    PyMem_Free(a.kinds);
    PyMem_Free(a.cur);
    PyMem_Free(k);
    Py_DECREF(bytes);
    return result;
}
