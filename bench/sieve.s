; sieve.s: count the primes below n with the sieve of Eratosthenes.
; in: r7 = n, r8 = address of n zero bytes; out: r7 = the count.
; Loops are tested at the bottom and walk pointers, as a compiler would
; emit them.  The same algorithm in C: native/sieve.c.

        load_imm r9, 0                  ; count
        load_imm r10, 2                 ; i
        add_64 r11, r8, r7              ; end = flags + n
        add_imm_64 r12, r8, 2           ; p = &flags[i]
        branch_ge_u r10, r7, done       ; nothing below 2
outer:  load_ind_u8 r1, r12, 0
        branch_ne_imm r1, 0, next       ; composite
        add_imm_64 r9, r9, 1            ; a prime
        mul_64 r2, r10, r10             ; i * i
        branch_ge_u r2, r7, next
        add_64 r2, r8, r2               ; q = &flags[i * i]
        fallthrough
inner:  store_imm_ind_u8 r2, 0, 1       ; *q = 1
        add_64 r2, r2, r10              ; q += i
        branch_lt_u r2, r11, inner
next:   add_imm_64 r10, r10, 1
        add_imm_64 r12, r12, 1
        branch_lt_u r10, r7, outer
done:   move_reg r7, r9
        jump_ind r0, 0
