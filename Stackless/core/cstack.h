#ifndef Py_STACKLESS_CSTACK_H
#define Py_STACKLESS_CSTACK_H

/* Saved C stacks: the policy of hard switching, above Stackless/platf/.
 *
 * All code that hard-switches on one OS thread shares one stack base, an
 * address high on the thread's stack.  A suspended piece of code is its
 * stack pointer `sp` plus a heap copy of the slice [sp, base).  Switching
 * saves the slice of the code that leaves and copies the slice of the code
 * that comes in back to where it was; only the memory below base changes
 * hands, so a suspended piece of code whose stack pointer is above base
 * (the thread's main code, when it switches from less deep than the point
 * where base was taken) saves nothing: nobody writes there.
 *
 * A slice is restored in place, so code resumes at the stack addresses it
 * had: pointers into its own stack stay valid.  This file uses only the C
 * library, so the platform harness (platf/test_switch.c) can test it too.
 */

#include <stddef.h>

typedef struct slp_cstack {
    char *sp;           /* stack pointer of the suspended code */
    size_t size;        /* bytes saved: base - sp, or 0 if sp >= base */
    size_t capacity;    /* bytes allocated at data */
    char *data;         /* the copy of [sp, sp + size) */
} slp_cstack;

#define SLP_CSTACK_INIT {NULL, 0, 0, NULL}

/* Suspend the running code into `save` and resume `target`.
 *
 * Returns -1, without switching, if memory for the copy ran out.  Else it
 * returns when something switches back to `save`: 1.
 *
 * With `target` NULL nothing is resumed: the running code is saved and the
 * call returns 0 at once.  `save` is then a snapshot that can be resumed
 * any number of times (it is never consumed); each resumption returns 1
 * from this same call, at the same place.  That is how new code starts on
 * a hard-switched stack: from a snapshot taken near the base.
 *
 * With `save` NULL the running code is not saved: it is abandoned, and
 * the call never returns.
 *
 * base must be above (at a higher address than) the frames of this call;
 * `save` and `target` must not be the same. */
extern int slp_cstack_switch(char *base, slp_cstack *save,
                             const slp_cstack *target);

/* Make room in `save` for the slice [here, base) and `slack` bytes more,
 * where `here` is the caller's stack pointer, so that a switch made from
 * at most `slack` bytes deeper needs no memory.  Returns -1 if there is
 * none; `save` is unchanged then. */
extern int slp_cstack_reserve(slp_cstack *save, char *base, size_t slack);

/* Free the copy (the slot can be reused). */
extern void slp_cstack_clear(slp_cstack *cst);

#endif /* !Py_STACKLESS_CSTACK_H */
