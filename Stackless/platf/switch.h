#ifndef Py_STACKLESS_PLATF_SWITCH_H
#define Py_STACKLESS_PLATF_SWITCH_H

/* The platform layer of hard switching: move the stack pointer to another
 * slice of the C stack, with the registers the ABI says a call preserves.
 * It knows nothing of tasklets; what is saved and restored, and where, is
 * decided by the callback (Stackless/core/cstack.c).
 *
 *   void *slp_switch_stack(cb, context)
 *
 * pushes the callee-saved registers, then calls
 *
 *   sp = cb(context, SLP_SWITCH_SAVE, sp_now)
 *
 * which saves what it must of the stack at and above sp_now and returns the
 * stack pointer to continue on (sp_now itself: no switch).  The stack
 * pointer is set to it, and
 *
 *   result = cb(context, SLP_SWITCH_RESTORE, sp)
 *
 * copies the target's stack back at and above sp.  The callback runs below
 * sp, so the copy never overwrites the code doing it.  Last, the registers
 * are popped (now the target's, from the restored stack) and `result` is
 * returned to the target's caller: the target resumes returning from its
 * own earlier call of slp_switch_stack.
 *
 * One file of assembly per ABI, all selected by switch.S:
 *   switch_x86_64_sysv.S    x86_64, System V ABI (Linux, BSDs, macOS)
 *   switch_aarch64_aapcs.S  aarch64, AAPCS64 (Linux)
 * Each says what it saves and why.  The stack is assumed to grow down.
 *
 * Not supported: shadow stacks (x86 CET, arm64 GCS), which forbid moving
 * the stack pointer like this.  The objects carry no property note asking
 * for them, so the linker leaves them off.
 */

#define SLP_SWITCH_SAVE     0
#define SLP_SWITCH_RESTORE  1

typedef void *(*slp_switch_callback)(void *context, int phase, void *sp);

extern void *slp_switch_stack(slp_switch_callback cb, void *context);

#endif /* !Py_STACKLESS_PLATF_SWITCH_H */
