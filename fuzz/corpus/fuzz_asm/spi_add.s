; add.s: sum of two u64 arguments
.stack_size 4096
        load_ind_u64 r9, r7, 0        ; first argument word
        load_ind_u64 r10, r7, 8       ; second
        add_64 r7, r9, r10
        jump_ind r0, 0                ; r0 holds the halt address
