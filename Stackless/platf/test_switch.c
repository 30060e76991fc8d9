/* A harness for the hard switch, without Python: the assembly of
 * switch.S and the stack copying of core/cstack.c, tested alone so that
 * it can run on another architecture under an emulator (qemu-user).
 *
 *   cc -O2 test_switch.c ../core/cstack.c switch.S -o test_switch
 *   ./test_switch          prints "ok: ..." and exits 0, or says what broke
 *
 * A main routine and three tasks switch round-robin.  Each task yields
 * from a different recursion depth, so every switch moves the stack
 * pointer up or down; across each switch, integer and floating-point
 * values live in callee-saved registers and on the stack, and are checked
 * afterwards, with the rounding mode.  Tasks start from a snapshot taken
 * near the base, as tasklets do; a second pass runs them from a shallower
 * point than the one the base was taken at.
 */

#include "../core/cstack.h"

#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NTASKS 3
#define ROUNDS 200

#if defined(__GNUC__)
#  define NOINLINE __attribute__((noinline))
#else
#  define NOINLINE
#endif

static char *base;
static slp_cstack snapshot = SLP_CSTACK_INIT;
static slp_cstack main_stack = SLP_CSTACK_INIT;
static slp_cstack task_stack[NTASKS];
static int started[NTASKS];
static int finished[NTASKS];
static int current = -1;            /* -1: the main routine */
static long switches;

static void
fail(const char *what, long a, long b)
{
    printf("FAIL: %s (%ld != %ld)\n", what, a, b);
    exit(1);
}

static slp_cstack *
stack_of(int who)
{
    return who < 0 ? &main_stack : &task_stack[who];
}

static NOINLINE void
switch_to(int who)
{
    int from = current;
    const slp_cstack *target = stack_of(who);
    if (who >= 0 && !started[who]) {
        started[who] = 1;
        target = &snapshot;
    }
    current = who;
    switches++;
    if (slp_cstack_switch(base, stack_of(from), target) != 1) {
        fail("switch did not resume with 1", 0, 1);
    }
    if (current != from) {
        fail("resumed the wrong routine", current, from);
    }
}

/* Values in many registers live across a switch. */
static NOINLINE long
yield_with_live_values(long seed)
{
    long a = seed * 3 + 1, b = seed * 5 + 2, c = seed * 7 + 3;
    long d = seed * 11 + 4, e = seed * 13 + 5, f = seed * 17 + 6;
    double x = (double)seed / 3.0, y = (double)seed * 1.5, z = x + y;
    double u = x * y, v = z - x, w = u / (y + 1.0);
    volatile long on_stack[8];
    for (int i = 0; i < 8; i++) {
        on_stack[i] = seed ^ (i * 0x5bd1e995L);
    }
    switch_to(-1);
    long sum = a + b + c + d + e + f;
    if (sum != seed * 56 + 21) {
        fail("integer registers", sum, seed * 56 + 21);
    }
    if (z != x + y || u != x * y || v != z - x || w != u / (y + 1.0)) {
        fail("floating-point registers", (long)(z * 1000), (long)((x + y) * 1000));
    }
    for (int i = 0; i < 8; i++) {
        if (on_stack[i] != (seed ^ (i * 0x5bd1e995L))) {
            fail("stack contents", on_stack[i], seed ^ (i * 0x5bd1e995L));
        }
    }
    return sum;
}

static NOINLINE long
descend(int depth, long seed)
{
    volatile char pad[64];
    pad[0] = (char)depth;
    if (depth == 0) {
        return yield_with_live_values(seed);
    }
    long r = descend(depth - 1, seed + 1) + pad[0];
    return r - pad[0];
}

static NOINLINE void
task_body(int me)
{
    for (long round = 0; round < ROUNDS; round++) {
        long seed = me * 100000 + round;
        /* Depths differ by task and by round: the stack pointer moves. */
        int depth = 5 + me * 40 + (int)(round % 7) * 3;
        descend(depth, seed);
    }
}

/* Takes the snapshot new tasks start from; each start returns here with 1. */
static NOINLINE void
take_snapshot(void)
{
    int r = slp_cstack_switch(base, &snapshot, NULL);
    if (r == 0) {
        return;
    }
    if (r != 1) {
        fail("snapshot resumed with", r, 1);
    }
    int me = current;
    task_body(me);
    finished[me] = 1;
    switch_to(-1);
    fail("a finished task was resumed", me, -1);
}

static NOINLINE void
run_rounds(void)
{
    char here;
    base = &here;
    take_snapshot();
    fesetround(FE_DOWNWARD);
    long live = 12345;
    double dlive = 0.25;
    while (1) {
        int any = 0;
        for (int t = 0; t < NTASKS; t++) {
            if (!finished[t]) {
                switch_to(t);
                any = 1;
            }
        }
        if (live != 12345 || dlive != 0.25) {
            fail("main routine's values", live, 12345);
        }
        if (fegetround() != FE_DOWNWARD) {
            fail("rounding mode (MXCSR/FPCR)", fegetround(), FE_DOWNWARD);
        }
        if (!any) {
            break;
        }
    }
    fesetround(FE_TONEAREST);
}

int
main(void)
{
    run_rounds();
    long expected = (long)NTASKS * (ROUNDS + 1) * 2;
    if (switches != expected) {
        fail("number of switches", switches, expected);
    }

    /* Again from main() itself, less deep than the base was taken: the
     * tasks start from the same snapshot. */
    for (int t = 0; t < NTASKS; t++) {
        started[t] = finished[t] = 0;
    }
    long before = switches;
    int remaining = NTASKS;
    while (remaining) {
        remaining = 0;
        for (int t = 0; t < NTASKS; t++) {
            if (!finished[t]) {
                switch_to(t);
                remaining++;
            }
        }
    }
    if (switches - before != expected) {
        fail("number of switches from above the base", switches - before, expected);
    }
    printf("ok: %ld switches, %d tasks, largest slice %zu bytes\n",
           switches, NTASKS, task_stack[NTASKS - 1].capacity);
    return 0;
}
