; sort.s: insertion sort of n u32 values in place, then a checksum.
; in: r7 = address of the values, r8 = n; out: r7 = sum of a[i] * (i + 1).
; Loops are tested at the bottom, as a compiler would emit them.  The same
; algorithm in C: native/sort.c.

        load_imm r9, 1                  ; i
        branch_ge_u r9, r8, check       ; fewer than two values
outer:  shlo_l_imm_64 r10, r9, 2
        add_64 r10, r7, r10             ; p = &a[i]
        load_ind_u32 r11, r10, 0        ; key
        fallthrough
inner:  load_ind_u32 r12, r10, -4       ; p[-1]
        branch_ge_u r11, r12, place     ; key >= p[-1]: found the place
        store_ind_u32 r12, r10, 0       ; p[0] = p[-1]
        add_imm_64 r10, r10, -4
        branch_ne r10, r7, inner        ; not at a[0] yet
place:  store_ind_u32 r11, r10, 0       ; *p = key
        add_imm_64 r9, r9, 1
        branch_lt_u r9, r8, outer
check:  load_imm r9, 0                  ; i
        load_imm r10, 0                 ; sum
        move_reg r11, r7                ; p
        branch_eq_imm r8, 0, out
sum:    load_ind_u32 r12, r11, 0
        add_imm_64 r9, r9, 1
        mul_64 r12, r12, r9             ; a[i] * (i + 1)
        add_64 r10, r10, r12
        add_imm_64 r11, r11, 4
        branch_lt_u r9, r8, sum
out:    move_reg r7, r10
        jump_ind r0, 0
