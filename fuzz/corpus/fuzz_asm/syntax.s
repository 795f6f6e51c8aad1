.jump_size 3
.jump loop
.jump 0
start:  load_imm r1, -1
        load_imm_64 r2, 0xffffffffffffffff
        store_imm_u32 0x20000, -0x80000000
loop:   add_imm_64 r1, r1, 1:2
        branch_ne_imm r1, 10, loop
        branch_lt_u r1, r2, 0
        jump loop:4
        .insn 33 01 05
        jump_ind r0, 0
        .byte 0xaa, 1
.ro_data
        .u16 0x1234, -2
        .zero 9
.rw_data
        .u64 -1
