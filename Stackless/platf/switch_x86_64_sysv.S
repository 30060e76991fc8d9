/* Stackless/platf/switch_x86_64_sysv.S: the stack switch, x86_64 System V.
 *
 *   void *slp_switch_stack(slp_switch_callback cb, void *context)
 *
 * Saved on the stack, because the System V AMD64 ABI makes a callee
 * preserve them:
 *   rbx, rbp, r12, r13, r14, r15   the callee-saved integer registers
 *   MXCSR                          its control bits (rounding, exception
 *                                  masks) are callee-saved
 *   x87 control word               callee-saved likewise
 * Everything else is caller-saved: the caller of this function expects it
 * clobbered anyway.  rsp is what we switch; rip is the return address on
 * the stack.  The 128-byte red zone below rsp holds nothing live across a
 * call, so the callbacks may use it.
 *
 * Layout after the prologue (rsp 16-byte aligned, as a call needs):
 *   0(rsp) MXCSR, 4(rsp) x87 CW, 8: r15, r14, r13, r12, rbx, rbp, ret addr
 */

        .text
        .globl  slp_switch_stack
        .hidden slp_switch_stack
        .type   slp_switch_stack, @function
        .p2align 4
slp_switch_stack:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset %r15, 0
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)

        movq    %rdi, %r12              /* r12 = cb (ours until the pops) */
        movq    %rsi, %r13              /* r13 = context */

        movq    %r13, %rdi              /* sp = cb(context, SAVE, rsp) */
        xorl    %esi, %esi
        movq    %rsp, %rdx
        call    *%r12

        movq    %rax, %rsp              /* the switch */

        movq    %r13, %rdi              /* result = cb(context, RESTORE, rsp) */
        movl    $1, %esi
        movq    %rsp, %rdx
        call    *%r12

        ldmxcsr (%rsp)                  /* the target's registers */
        fldcw   4(%rsp)
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   slp_switch_stack, .-slp_switch_stack
