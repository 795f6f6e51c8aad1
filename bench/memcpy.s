; memcpy.s: copy n bytes (a non-zero multiple of 32) from src to dst,
; reps times, four 64-bit words per iteration.
; in: r7 = dst, r8 = src, r9 = n, r10 = reps; out: r7 = bytes copied.
; The same loop in C: native/memcpy.c.

        load_imm r6, 0                  ; total
        add_64 r5, r8, r9               ; end of src
        branch_eq_imm r10, 0, done
rep:    move_reg r11, r8                ; s
        move_reg r12, r7                ; d
        fallthrough
copy:   load_ind_u64 r1, r11, 0
        load_ind_u64 r2, r11, 8
        load_ind_u64 r3, r11, 16
        load_ind_u64 r4, r11, 24
        store_ind_u64 r1, r12, 0
        store_ind_u64 r2, r12, 8
        store_ind_u64 r3, r12, 16
        store_ind_u64 r4, r12, 24
        add_imm_64 r11, r11, 32
        add_imm_64 r12, r12, 32
        branch_lt_u r11, r5, copy
        add_64 r6, r6, r9
        add_imm_64 r10, r10, -1
        branch_ne_imm r10, 0, rep
done:   move_reg r7, r6
        jump_ind r0, 0
