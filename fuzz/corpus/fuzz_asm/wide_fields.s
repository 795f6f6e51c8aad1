; generic blob: 69 bytes; code: 58 bytes; jump table: 0 entries of 0 bytes
        ecalli 1:4                      ;      0: 0a 01 00 00 00
        load_imm_64 r3:0xf3, 0x807060504030201 ;      5: 14 f3 01 02 03 04 05 06 07 08
        store_imm_u8 1:4, 2:2           ;     15: 1e 04 01 00 00 00 02 00
        load_imm r12:14, -1:2           ;     23: 33 0e ff ff
L27:
        store_imm_ind_u8 r12:15, 0:4, 9 ;     27: 46 4f 00 00 00 00 09
        branch_eq_imm r12:13, 0:2, L27  ;     34: 51 2d 00 00 f9
        move_reg r12:13, r12:15         ;     39: 64 fd
        store_ind_u8 r12:13, r12:14, 0:2 ;     41: 78 ed 00 00
L45:
        branch_eq r12:15, r12:13, L45:1 ;     45: aa df 00
        load_imm_jump_ind r12:14, r12:14, 5, 0:2 ;     48: b4 ee 01 05 00 00
        add_32 r12:0xff, r12:15, r12:15 ;     54: be ff ff
        trap                            ;     57: 00
