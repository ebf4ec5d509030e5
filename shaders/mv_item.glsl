// mv_item.glsl — included inside a loop body of an mv kernel (after mv.glsl): one item's dot
// products. The kernel has declared, in the enclosing scope:
//   uint dr_mat[NDR], dr_base[NDR]; // matrix and first element of each dot row
//   uint mv_ndr;                     // dot rows in use (0: an idle item, which still takes part
//                                    // in the reduction's barriers)
//   bool mv_norm, mv_vec;            // RMSNorm on the fly (NORM); 16-byte path
// and defined MV_N_IN, MV_N_TOK, MV_X_OFF, MV_G_OFF, MV_EPS. It declares
//   float acc[NDR * MAXT], ss[MAXT];
// after which the group's first subgroup holds the sums and ss[t] the RMSNorm factor of token
// t (1 without norm). Every invocation of the workgroup must reach it (barriers when KS > 1).
// vec: the group's lanes take interleaved 8-element steps (one uvec4 of a 16-bit W, two of an
// f32 W); else single elements.
float acc[NDR * MAXT], ss[MAXT];
{
    // the stride a compile-time constant (a specialization constant): the compiler can then
    // pipeline the loads of successive steps (a stride of gl_SubgroupSize streamed ~20% slower)
    uint lane_ = mv_lane();
    const uint step_ = KS * SGS;
    [[unroll]] for (uint t = 0u; t < MAXT; t++) ss[t] = 0.0;
    [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) acc[j] = 0.0;
    if (mv_ndr > 0u && mv_vec) {
        // one 8-element step per iteration, the loads under plain conditions (a select would
        // load past the rows): the shape of matvec.comp's loop, which streams best
        uint n8 = MV_N_IN / 8u;
        for (uint i = lane_; i < n8; i += step_) {
            vec4 g0 = vec4(1.0), g1 = vec4(1.0);
            if (mv_norm && !UNIT_G) {
                if (NDTYPE == DT_F32) {
                    g0 = uintBitsToFloat(g4[MV_G_OFF / 4u + 2u * i]);
                    g1 = uintBitsToFloat(g4[MV_G_OFF / 4u + 2u * i + 1u]);
                } else {
                    unpack8(g4[MV_G_OFF / 8u + i], NDTYPE, g0, g1);
                }
            }
            vec4 w0[NDR], w1[NDR];
            [[unroll]] for (uint r = 0u; r < NDR; r++) {
                w0[r] = vec4(0.0);
                w1[r] = vec4(0.0);
                if (r < mv_ndr) {
                    if (DTYPE == DT_F32) {
                        w0[r] = uintBitsToFloat(MV_W4(r, dr_mat[r], dr_base[r] / 4u + 2u * i));
                        w1[r] = uintBitsToFloat(MV_W4(r, dr_mat[r], dr_base[r] / 4u + 2u * i + 1u));
                    } else {
                        unpack8(MV_W4(r, dr_mat[r], dr_base[r] / 8u + i), DTYPE, w0[r], w1[r]);
                    }
                }
            }
            [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                if (t >= MV_N_TOK) break;
                uint xb = (MV_X_OFF + t * MV_N_IN) / 4u + 2u * i;
                vec4 x0 = x4[xb], x1 = x4[xb + 1u];
                if (mv_norm) {
                    ss[t] += dot(x0, x0) + dot(x1, x1);
                    if (!UNIT_G) {
                        x0 *= g0;
                        x1 *= g1;
                    }
                }
                [[unroll]] for (uint r = 0u; r < NDR; r++)
                    acc[r * MAXT + t] += dot(w0[r], x0) + dot(w1[r], x1);
            }
        }
    } else if (mv_ndr > 0u) {
        for (uint i = lane_; i < MV_N_IN; i += step_) {
            float gv = 1.0;
            if (mv_norm && !UNIT_G) gv = elem_in_word(g[word_of(MV_G_OFF + i, NDTYPE)], MV_G_OFF + i, NDTYPE);
            float wsc[NDR];
            [[unroll]] for (uint r = 0u; r < NDR; r++) {
                uint e = dr_base[r] + i;
                wsc[r] = r < mv_ndr ? elem_in_word(MV_W1(r, dr_mat[r], word_of(e, DTYPE)), e, DTYPE) : 0.0;
            }
            [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                if (t < MV_N_TOK) {
                    float xv = x[MV_X_OFF + t * MV_N_IN + i];
                    if (mv_norm) {
                        ss[t] += xv * xv;
                        xv *= gv;
                    }
                    [[unroll]] for (uint r = 0u; r < NDR; r++) acc[r * MAXT + t] += wsc[r] * xv;
                }
            }
        }
    }
    // reduce: subgroupAdd, then across the group's subgroups through shared memory
    [[unroll]] for (uint t = 0u; t < MAXT; t++) {
        if (t < MV_N_TOK) {
            [[unroll]] for (uint r = 0u; r < NDR; r++) acc[r * MAXT + t] = subgroupAdd(acc[r * MAXT + t]);
            ss[t] = subgroupAdd(ss[t]);
        }
    }
    if (KS > 1u) {
        const uint W_ = (NDR + 1u) * MAXT;
        uint sg_ = gl_SubgroupID;
        if (sg_ % KS != 0u && gl_SubgroupInvocationID == 0u) {
            [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) mv_red[sg_ * W_ + j] = acc[j];
            [[unroll]] for (uint t = 0u; t < MAXT; t++) mv_red[sg_ * W_ + NDR * MAXT + t] = ss[t];
        }
        barrier();
        if (sg_ % KS == 0u) {
            for (uint k = 1u; k < KS; k++) {
                [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) acc[j] += mv_red[(sg_ + k) * W_ + j];
                [[unroll]] for (uint t = 0u; t < MAXT; t++) ss[t] += mv_red[(sg_ + k) * W_ + NDR * MAXT + t];
            }
        }
        barrier(); // mv_red is written again by the next item
    }
    [[unroll]] for (uint t = 0u; t < MAXT; t++)
        ss[t] = mv_norm ? 1.0 / sqrt(ss[t] / float(MV_N_IN) + MV_EPS) : 1.0;
}
