/* Stackless/platf/switch_aarch64_aapcs.S: the stack switch, aarch64 AAPCS64.
 *
 *   void *slp_switch_stack(slp_switch_callback cb, void *context)
 *
 * Saved on the stack, because AAPCS64 makes a callee preserve them:
 *   x19-x28        the callee-saved integer registers
 *   x29, x30       frame pointer and link register (our return address)
 *   d8-d15         the low 64 bits of v8-v15, the callee-saved part of the
 *                  SIMD registers
 *   FPCR           rounding mode and trap enables: global state a thread
 *                  expects unchanged by a call
 * Everything else is caller-saved.  sp is what we switch; it stays 16-byte
 * aligned.  No return address signing (PAC) is used here; a build with
 * -mbranch-protection would need it added.
 *
 * Frame (176 bytes):
 *   [sp, #0] x29, x30   [#16..#95] x19-x28   [#96..#159] d8-d15
 *   [#160] FPCR         [#168] padding
 */

        .text
        .globl  slp_switch_stack
        .hidden slp_switch_stack
        .type   slp_switch_stack, %function
        .p2align 2
slp_switch_stack:
        .cfi_startproc
        stp     x29, x30, [sp, #-176]!
        .cfi_def_cfa_offset 176
        .cfi_offset x29, -176
        .cfi_offset x30, -168
        mov     x29, sp
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]

        mov     x19, x0                 /* x19 = cb (ours until the loads) */
        mov     x20, x1                 /* x20 = context */

        mov     x0, x20                 /* sp = cb(context, SAVE, sp) */
        mov     w1, #0
        mov     x2, sp
        blr     x19

        mov     sp, x0                  /* the switch */
        mov     x29, sp

        mov     x0, x20                 /* result = cb(context, RESTORE, sp) */
        mov     w1, #1
        mov     x2, sp
        blr     x19

        ldr     x9, [sp, #160]          /* the target's registers */
        msr     fpcr, x9
        ldp     d14, d15, [sp, #144]
        ldp     d12, d13, [sp, #128]
        ldp     d10, d11, [sp, #112]
        ldp     d8, d9, [sp, #96]
        ldp     x27, x28, [sp, #80]
        ldp     x25, x26, [sp, #64]
        ldp     x23, x24, [sp, #48]
        ldp     x21, x22, [sp, #32]
        ldp     x19, x20, [sp, #16]
        ldp     x29, x30, [sp], #176
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30
        ret
        .cfi_endproc
        .size   slp_switch_stack, .-slp_switch_stack
