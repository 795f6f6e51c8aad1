; hash.s: a multiply-xor-rotate mixing loop over i = 0 .. n-1.
; in: r7 = n, r8 = seed; out: r7 = the final state.
; The same loop in C: native/hash.c.

        load_imm_64 r9, 0x9e3779b97f4a7c15
        load_imm r10, 0                 ; i
        branch_eq_imm r7, 0, done
loop:   xor r8, r8, r10                 ; h ^= i
        mul_64 r8, r8, r9               ; h *= K
        rot_r_64_imm r11, r8, 27
        shlo_r_imm_64 r12, r8, 31
        xor r8, r11, r12                ; h = rotr(h, 27) ^ (h >> 31)
        add_imm_64 r10, r10, 1
        branch_lt_u r10, r7, loop
done:   move_reg r7, r8
        jump_ind r0, 0
