; subvm_fib.s: fib(n) where every call is a sub-VM (docs/kernel.md).
; in: r7 = n; out: r7 = fib(n).  For n >= 2 it spawns a fresh Instance of
; its own Image into slot 1 (DERIVE_SPAWN, ecalli 18), calls it with n - 1
; (HOST_CALL, ecalli 26: the callee's r7 = our r9), then does the same with
; n - 2.  fib(20) = 6765 runs 21 891 VMs.

        branch_lt_u_imm r7, 2, done
        move_reg r11, r7                ; n
        load_imm r7, -1                 ; the running Image
        load_imm r9, 1                  ; into slot 1
        ecalli 18
        load_imm r7, 1                  ; call slot 1
        load_imm r8, 0                  ; endpoint 0
        add_imm_64 r9, r11, -1          ; n - 1
        ecalli 26
        move_reg r12, r7                ; fib(n - 1)
        load_imm r7, -1
        load_imm r9, 1                  ; a fresh Instance replaces the old one
        ecalli 18
        load_imm r7, 1
        load_imm r8, 0
        add_imm_64 r9, r11, -2          ; n - 2
        ecalli 26
        add_64 r7, r7, r12
        fallthrough
done:   load_imm r2, -65536             ; the halt address
        jump_ind r2, 0
