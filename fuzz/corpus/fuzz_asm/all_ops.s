; every instruction of gp07 once
.jump top
top:
        trap
        fallthrough
        ecalli 7
        load_imm_64 r1, 0x123456789abcdef0
        store_imm_u8 0x20000, -1
        store_imm_u16 0x20000, -1
        store_imm_u32 0x20000, -1
        store_imm_u64 0x20000, -1
        jump top
        jump_ind r2, 0x20000
        load_imm r2, 0x20000
        load_u8 r2, 0x20000
        load_i8 r2, 0x20000
        load_u16 r2, 0x20000
        load_i16 r2, 0x20000
        load_u32 r2, 0x20000
        load_i32 r2, 0x20000
        load_u64 r2, 0x20000
        store_u8 r2, 0x20000
        store_u16 r2, 0x20000
        store_u32 r2, 0x20000
        store_u64 r2, 0x20000
        store_imm_ind_u8 r3, 8, 255
        store_imm_ind_u16 r3, 8, 255
        store_imm_ind_u32 r3, 8, 255
        store_imm_ind_u64 r3, 8, 255
        load_imm_jump r4, -5, top
        branch_eq_imm r4, -5, top
        branch_ne_imm r4, -5, top
        branch_lt_u_imm r4, -5, top
        branch_le_u_imm r4, -5, top
        branch_ge_u_imm r4, -5, top
        branch_gt_u_imm r4, -5, top
        branch_lt_s_imm r4, -5, top
        branch_le_s_imm r4, -5, top
        branch_ge_s_imm r4, -5, top
        branch_gt_s_imm r4, -5, top
        move_reg r5, r6
        sbrk r5, r6
        count_set_bits_64 r5, r6
        count_set_bits_32 r5, r6
        leading_zero_bits_64 r5, r6
        leading_zero_bits_32 r5, r6
        trailing_zero_bits_64 r5, r6
        trailing_zero_bits_32 r5, r6
        sign_extend_8 r5, r6
        sign_extend_16 r5, r6
        zero_extend_16 r5, r6
        reverse_bytes r5, r6
        store_ind_u8 r7, r8, 16
        store_ind_u16 r7, r8, 16
        store_ind_u32 r7, r8, 16
        store_ind_u64 r7, r8, 16
        load_ind_u8 r7, r8, 16
        load_ind_i8 r7, r8, 16
        load_ind_u16 r7, r8, 16
        load_ind_i16 r7, r8, 16
        load_ind_u32 r7, r8, 16
        load_ind_i32 r7, r8, 16
        load_ind_u64 r7, r8, 16
        add_imm_32 r7, r8, 16
        and_imm r7, r8, 16
        xor_imm r7, r8, 16
        or_imm r7, r8, 16
        mul_imm_32 r7, r8, 16
        set_lt_u_imm r7, r8, 16
        set_lt_s_imm r7, r8, 16
        shlo_l_imm_32 r7, r8, 16
        shlo_r_imm_32 r7, r8, 16
        shar_r_imm_32 r7, r8, 16
        neg_add_imm_32 r7, r8, 16
        set_gt_u_imm r7, r8, 16
        set_gt_s_imm r7, r8, 16
        shlo_l_imm_alt_32 r7, r8, 16
        shlo_r_imm_alt_32 r7, r8, 16
        shar_r_imm_alt_32 r7, r8, 16
        cmov_iz_imm r7, r8, 16
        cmov_nz_imm r7, r8, 16
        add_imm_64 r7, r8, 16
        mul_imm_64 r7, r8, 16
        shlo_l_imm_64 r7, r8, 16
        shlo_r_imm_64 r7, r8, 16
        shar_r_imm_64 r7, r8, 16
        neg_add_imm_64 r7, r8, 16
        shlo_l_imm_alt_64 r7, r8, 16
        shlo_r_imm_alt_64 r7, r8, 16
        shar_r_imm_alt_64 r7, r8, 16
        rot_r_64_imm r7, r8, 16
        rot_r_64_imm_alt r7, r8, 16
        rot_r_32_imm r7, r8, 16
        rot_r_32_imm_alt r7, r8, 16
        branch_eq r9, r10, top
        branch_ne r9, r10, top
        branch_lt_u r9, r10, top
        branch_lt_s r9, r10, top
        branch_ge_u r9, r10, top
        branch_ge_s r9, r10, top
        load_imm_jump_ind r11, r12, 2, 0
        add_32 r0, r1, r2
        sub_32 r0, r1, r2
        mul_32 r0, r1, r2
        div_u_32 r0, r1, r2
        div_s_32 r0, r1, r2
        rem_u_32 r0, r1, r2
        rem_s_32 r0, r1, r2
        shlo_l_32 r0, r1, r2
        shlo_r_32 r0, r1, r2
        shar_r_32 r0, r1, r2
        add_64 r0, r1, r2
        sub_64 r0, r1, r2
        mul_64 r0, r1, r2
        div_u_64 r0, r1, r2
        div_s_64 r0, r1, r2
        rem_u_64 r0, r1, r2
        rem_s_64 r0, r1, r2
        shlo_l_64 r0, r1, r2
        shlo_r_64 r0, r1, r2
        shar_r_64 r0, r1, r2
        and r0, r1, r2
        xor r0, r1, r2
        or r0, r1, r2
        mul_upper_s_s r0, r1, r2
        mul_upper_u_u r0, r1, r2
        mul_upper_s_u r0, r1, r2
        set_lt_u r0, r1, r2
        set_lt_s r0, r1, r2
        cmov_iz r0, r1, r2
        cmov_nz r0, r1, r2
        rot_l_64 r0, r1, r2
        rot_l_32 r0, r1, r2
        rot_r_64 r0, r1, r2
        rot_r_32 r0, r1, r2
        and_inv r0, r1, r2
        or_inv r0, r1, r2
        xnor r0, r1, r2
        max r0, r1, r2
        max_u r0, r1, r2
        min r0, r1, r2
        min_u r0, r1, r2
