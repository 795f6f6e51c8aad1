; add_regs.s: r7 = r7 + r8, then halt.  Made for `nub exec`, whose --regs
; set r7..r10 directly.  A generic blob has no SPI initialisation: every
; other register starts at zero, so r12 - 0x10000 is the halt address.
;
;   nub asm examples/add_regs.s -o examples/add_regs.pvm
;   nub exec examples/add_regs.pvm --regs 20,22              -> r7 = 42

        add_64 r7, r7, r8
        jump_ind r12, -0x10000
