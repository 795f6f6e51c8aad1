; add.s: the sum of the first two 64-bit little-endian argument words.
;
; Standard program initialisation (GP A.7) leaves the arguments' address
; in r7, their length in r8 and the halt address in r0.  The result goes
; to r7; jumping to r0 halts.
;
;   nub asm examples/add.s -o examples/add.pvm
;   nub run examples/add.pvm \
;       --data 02000000000000002800000000000000        -> r7 = 42

.stack_size 4096                        ; SPI container (the stack is unused)

        branch_lt_u_imm r8, 16, short   ; need two words
        load_ind_u64 r9, r7, 0          ; r9 = args[0..8)
        load_ind_u64 r10, r7, 8         ; r10 = args[8..16)
        add_64 r7, r9, r10              ; r7 = r9 + r10 (mod 2^64)
        jump_ind r0, 0                  ; halt
short:  trap                            ; fewer than 16 argument bytes: panic
