/* Stackless/platf/switch.S: the stack switch for the platform being built.
 * See switch.h for the contract. */

#if defined(__x86_64__) && !defined(_WIN32)
#  include "switch_x86_64_sysv.S"
#elif defined(__aarch64__) && defined(__ELF__)
#  include "switch_aarch64_aapcs.S"
#else
#  error "Stackless has no stack switch for this platform (Stackless/platf/)"
#endif

#if defined(__ELF__)
/* The stack is not executable. */
        .section .note.GNU-stack, "", %progbits
#endif
