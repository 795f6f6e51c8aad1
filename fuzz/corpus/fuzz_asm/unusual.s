; generic blob: 37 bytes; code: 26 bytes; jump table: 2 entries of 2 bytes
.jump_size 2
.jump L16                               ; entry 0, djump address 2
.jump 5                                 ; entry 1, djump address 4
        .byte 0x99                      ;      0
        fallthrough                     ;      1: 01
        .byte 0xaa, 0xbb                ;      2
        load_imm r12:0xfd, 5:4          ;      4: 33 fd 05 00 00 00
        .insn ff 01                     ;     10: invalid opcode 255 (traps)
        .insn 14 01 02                  ;     12: decodes as load_imm_64 r1, 0xc821c80a21aa2802
L15:
        jump L15                        ;     15: 28
L16:
        branch_eq r1, r2, L26           ;     16: aa 21 0a
        add_64 r12:0xc8, r1, r2         ;     19: c8 21 c8
        store_u16 r2:0x12, 0:1          ;     22: 3c 12 00
        trap                            ;     25: 00
L26:
