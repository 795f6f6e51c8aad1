; fib.s: the n-th Fibonacci number (fib(0) = 0, fib(1) = 1, mod 2^64),
; n being the 64-bit little-endian argument word.  Result in r7.
;
;   nub asm examples/fib.s -o examples/fib.pvm
;   nub run examples/fib.pvm --data 0a00000000000000   -> r7 = 55

.stack_size 4096

        branch_lt_u_imm r8, 8, short    ; need one word
        load_ind_u64 r9, r7, 0          ; r9 = n
        load_imm r7, 0                  ; r7 = fib(i), i = 0
        load_imm r10, 1                 ; r10 = fib(i + 1)
        fallthrough                     ; branch targets must start a block
loop:   branch_eq_imm r9, 0, done
        add_64 r11, r7, r10             ; fib(i + 2)
        move_reg r7, r10
        move_reg r10, r11
        add_imm_64 r9, r9, -1
        jump loop
done:   jump_ind r0, 0                  ; halt with fib(n) in r7
short:  trap
