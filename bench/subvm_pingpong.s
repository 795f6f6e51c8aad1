; subvm_pingpong.s: CALL/HALT round trips with one spawned Instance.
; in: r7 = rounds; out: r7 = rounds done.  With r7 = 0 it halts at once
; (the callee); otherwise it spawns its own Image into slot 1 once and
; calls it r7 times.

        branch_eq_imm r7, 0, done
        move_reg r11, r7                ; rounds
        load_imm r12, 0                 ; done so far
        load_imm r7, -1                 ; the running Image
        load_imm r9, 1                  ; into slot 1
        ecalli 18
        fallthrough
loop:   load_imm r7, 1                  ; call slot 1
        load_imm r8, 0                  ; endpoint 0
        load_imm r9, 0                  ; the callee's r7: halt at once
        ecalli 26
        add_imm_64 r12, r12, 1
        branch_lt_u r12, r11, loop
        move_reg r7, r12
        fallthrough
done:   load_imm r2, -65536             ; the halt address
        jump_ind r2, 0
