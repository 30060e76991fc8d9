/* Saved C stacks: see cstack.h. */

#include "cstack.h"
#include "../platf/switch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#  define SLP_CSTACK_NOINLINE __attribute__((noinline))
#else
#  define SLP_CSTACK_NOINLINE
#endif

/* AddressSanitizer (tools/build asan).  The stack slices hold the
 * redzones of live frames, which the sanitizer's memcpy would report:
 * they are copied by code it does not check.  The frames of the code that
 * left never return, so the poison of their redzones and of their
 * variables out of scope stays in the shadow of the stack, where the
 * frames restored (and those they call later) keep their variables: at
 * each switch the shadow of the stack from the lower of the two stack
 * pointers (the code that leaves, the code restored) up to the base is
 * cleared.  The restored frames lose their redzones (the
 * sanitizer checks less there, and reports nothing false).  The copies
 * stay on the thread's stack, so no fiber-switching annotation is
 * needed. */
#if defined(__SANITIZE_ADDRESS__)
#  define SLP_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SLP_ASAN 1
#  endif
#endif

#ifdef SLP_ASAN
#  include <sanitizer/asan_interface.h>

__attribute__((no_sanitize_address)) static void
stack_copy(char *dst, const char *src, size_t size)
{
    /* Not memcpy (intercepted); volatile: not turned into one. */
    volatile char *d = dst;
    const volatile char *s = src;
    for (size_t i = 0; i < size; i++) {
        d[i] = s[i];
    }
}

#  define SAVE_COPY(dst, src, size) stack_copy((dst), (src), (size))
#  define RESTORE_COPY(dst, src, size) stack_copy((dst), (src), (size))
#  define CLEAR_SHADOW(low, high)                                       \
    do {                                                                \
        if ((high) > (low)) {                                           \
            __asan_unpoison_memory_region((low),                        \
                                          (size_t)((high) - (low)));    \
        }                                                               \
    } while (0)
#else
#  define SAVE_COPY(dst, src, size) memcpy((dst), (src), (size))
#  define RESTORE_COPY(dst, src, size) memcpy((dst), (src), (size))
#  define CLEAR_SHADOW(low, high) ((void)0)
#endif

/* The switch in progress on this thread.  Not on the stack: the restore
 * phase overwrites the stack of the code that left. */
static _Thread_local struct {
    char *base;
    char *low;              /* the stack pointer of the code that leaves */
    slp_cstack *save;
    const slp_cstack *target;
    int error;
} transfer;

static void *
transfer_callback(void *context, int phase, void *sp_now)
{
    char *sp = (char *)sp_now;
    (void)context;

    if (phase == SLP_SWITCH_SAVE) {
        slp_cstack *save = transfer.save;
        transfer.low = sp;
        if (save == NULL) {
            return transfer.target->sp;     /* the running code is dropped */
        }
        size_t size = transfer.base > sp ? (size_t)(transfer.base - sp) : 0;
        if (size > save->capacity) {
            /* The old copy is dead: its code is running now. */
            char *data = malloc(size);
            if (data == NULL) {
                transfer.error = 1;
                return sp;
            }
            free(save->data);
            save->data = data;
            save->capacity = size;
        }
        SAVE_COPY(save->data, sp, size);
        save->sp = sp;
        save->size = size;
        return transfer.target == NULL ? sp : transfer.target->sp;
    }

    /* SLP_SWITCH_RESTORE: we run below the target's stack pointer now. */
    CLEAR_SHADOW(transfer.low < sp ? transfer.low : sp, transfer.base);
    if (transfer.error) {
        return (void *)(intptr_t)-1;
    }
    if (transfer.target == NULL) {
        return (void *)(intptr_t)0;
    }
    RESTORE_COPY(transfer.target->sp, transfer.target->data,
                 transfer.target->size);
    return (void *)(intptr_t)1;
}

int
slp_cstack_switch(char *base, slp_cstack *save, const slp_cstack *target)
{
    transfer.base = base;
    transfer.save = save;
    transfer.target = target;
    transfer.error = 0;
    return (int)(intptr_t)slp_switch_stack(transfer_callback, NULL);
}

SLP_CSTACK_NOINLINE int
slp_cstack_reserve(slp_cstack *save, char *base, size_t slack)
{
    char here = 0;
    char *sp = (char *)&here;
    size_t size = (base > sp ? (size_t)(base - sp) : 0) + slack;
    if (size <= save->capacity) {
        return 0;
    }
    /* Not a copy anybody needs: it is made by the switch. */
    char *data = malloc(size);
    if (data == NULL) {
        return -1;
    }
    free(save->data);
    save->data = data;
    save->capacity = size;
    save->size = 0;
    return 0;
}

void
slp_cstack_clear(slp_cstack *cst)
{
    free(cst->data);
    cst->data = NULL;
    cst->capacity = 0;
    cst->size = 0;
    cst->sp = NULL;
}
