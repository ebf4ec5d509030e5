// mv.glsl — the dot-product core of the subgroup matrix-vector kernels (mv, mv_gate, mv_qkv).
// KS subgroups (a group) compute up to NDR "dot rows" (rows of one or more weight matrices)
// against the n_tok (<= MAXT) rows of x, RMS-normalized on the fly when asked: x is binding 0
// (f32), the norm weight binding 1 (type NDTYPE); the including kernel binds the weights and
// defines MV_W4(r, m, i) (uvec4 i of matrix m for dot row r) and MV_W1(r, m, i) (word i) first.
// vec (K % 8 == 0, every row start 16-byte aligned): the group's lanes take interleaved
// 8-element steps (one uvec4 of a 16-bit W, two of an f32 W), MV_U steps in flight per lane;
// else single elements. Partial sums stay per lane in acc/ss (private globals) until mv_reduce:
// subgroupAdd, then (KS > 1) shared memory across the group's subgroups.
const uint MAXT = 8u;
layout(constant_id = 6) const uint NDTYPE = 0;
layout(constant_id = 8) const uint MV_U = 4; // 8-element steps in flight per lane
layout(constant_id = 9) const uint KS = 1;   // subgroups sharing each group of dot rows
const uint MV_MAX_SG = WG / 4u;              // subgroups are at least 4 wide here (vk/ops.c)
shared float mv_red[MV_MAX_SG * (NDR + 1u) * MAXT];

layout(binding = 0) readonly buffer MvX { float x[]; };
layout(binding = 0) readonly buffer MvX4 { vec4 x4[]; };
layout(binding = 1) readonly buffer MvG { uint g[]; };
layout(binding = 1) readonly buffer MvG4 { uvec4 g4[]; };

uint dr_mat[NDR];  // matrix of each dot row
uint dr_base[NDR]; // first element of each dot row in its binding
float acc[NDR * MAXT];
float ss[MAXT];

// lane: this invocation's place in its group (ks * subgroup size + lane), step: the group's
// width. ndr 0: nothing to do (an idle item; the caller still takes part in mv_reduce).
void mv_dot(uint n_in, uint n_tok, uint x_off, uint g_off, bool norm, bool vec, uint ndr,
            uint lane, uint sgs) {
    [[unroll]] for (uint t = 0u; t < MAXT; t++) ss[t] = 0.0;
    [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) acc[j] = 0.0;
    if (ndr == 0u) return;
    if (vec) {
        uint n8 = n_in / 8u;
        for (uint i0 = lane; i0 < n8; i0 += MV_U * sgs) {
            uvec4 wa[MV_U * NDR], wb[MV_U * NDR];
            [[unroll]] for (uint u = 0u; u < MV_U; u++) {
                uint i = i0 + u * sgs;
                [[unroll]] for (uint r = 0u; r < NDR; r++) {
                    wa[u * NDR + r] = uvec4(0u);
                    wb[u * NDR + r] = uvec4(0u);
                    if (r < ndr && i < n8) {
                        if (DTYPE == DT_F32) {
                            wa[u * NDR + r] = MV_W4(r, dr_mat[r], dr_base[r] / 4u + 2u * i);
                            wb[u * NDR + r] = MV_W4(r, dr_mat[r], dr_base[r] / 4u + 2u * i + 1u);
                        } else {
                            wa[u * NDR + r] = MV_W4(r, dr_mat[r], dr_base[r] / 8u + i);
                        }
                    }
                }
            }
            [[unroll]] for (uint u = 0u; u < MV_U; u++) {
                uint i = i0 + u * sgs;
                if (i >= n8) break;
                vec4 g0 = vec4(1.0), g1 = vec4(1.0);
                if (norm) {
                    if (NDTYPE == DT_F32) {
                        g0 = uintBitsToFloat(g4[g_off / 4u + 2u * i]);
                        g1 = uintBitsToFloat(g4[g_off / 4u + 2u * i + 1u]);
                    } else {
                        unpack8(g4[g_off / 8u + i], NDTYPE, g0, g1);
                    }
                }
                vec4 w0[NDR], w1[NDR];
                [[unroll]] for (uint r = 0u; r < NDR; r++) {
                    if (DTYPE == DT_F32) {
                        w0[r] = uintBitsToFloat(wa[u * NDR + r]);
                        w1[r] = uintBitsToFloat(wb[u * NDR + r]);
                    } else {
                        unpack8(wa[u * NDR + r], DTYPE, w0[r], w1[r]);
                    }
                }
                [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                    if (t >= n_tok) break;
                    uint xb = (x_off + t * n_in) / 4u + 2u * i;
                    vec4 x0 = x4[xb], x1 = x4[xb + 1u];
                    if (norm) {
                        ss[t] += dot(x0, x0) + dot(x1, x1);
                        x0 *= g0;
                        x1 *= g1;
                    }
                    [[unroll]] for (uint r = 0u; r < NDR; r++)
                        acc[r * MAXT + t] += dot(w0[r], x0) + dot(w1[r], x1);
                }
            }
        }
    } else {
        for (uint i = lane; i < n_in; i += sgs) {
            float gv = 1.0;
            if (norm) gv = elem_in_word(g[word_of(g_off + i, NDTYPE)], g_off + i, NDTYPE);
            float wv[NDR];
            [[unroll]] for (uint r = 0u; r < NDR; r++) {
                uint e = dr_base[r] + i;
                wv[r] = r < ndr ? elem_in_word(MV_W1(r, dr_mat[r], word_of(e, DTYPE)), e, DTYPE) : 0.0;
            }
            [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                if (t >= n_tok) break;
                float xv = x[x_off + t * n_in + i];
                if (norm) {
                    ss[t] += xv * xv;
                    xv *= gv;
                }
                [[unroll]] for (uint r = 0u; r < NDR; r++) acc[r * MAXT + t] += wv[r] * xv;
            }
        }
    }
}

// Sums the group's partials: every invocation of the workgroup must call it (barriers when
// KS > 1); afterwards the group's first subgroup holds the sums, and ss[t] the RMSNorm factor of
// token t (1 without norm).
void mv_reduce(uint n_in, uint n_tok, bool norm, float eps) {
    [[unroll]] for (uint t = 0u; t < MAXT; t++) {
        if (t >= n_tok) break;
        [[unroll]] for (uint r = 0u; r < NDR; r++) acc[r * MAXT + t] = subgroupAdd(acc[r * MAXT + t]);
        ss[t] = subgroupAdd(ss[t]);
    }
    if (KS > 1u) {
        const uint W = (NDR + 1u) * MAXT;
        uint sg = gl_SubgroupID;
        if (sg % KS != 0u && gl_SubgroupInvocationID == 0u) {
            [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) mv_red[sg * W + j] = acc[j];
            [[unroll]] for (uint t = 0u; t < MAXT; t++) mv_red[sg * W + NDR * MAXT + t] = ss[t];
        }
        barrier();
        if (sg % KS == 0u) {
            for (uint k = 1u; k < KS; k++) {
                [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) acc[j] += mv_red[(sg + k) * W + j];
                [[unroll]] for (uint t = 0u; t < MAXT; t++) ss[t] += mv_red[(sg + k) * W + NDR * MAXT + t];
            }
        }
        barrier(); // mv_red is written again by the next item
    }
    [[unroll]] for (uint t = 0u; t < MAXT; t++)
        ss[t] = norm ? 1.0 / sqrt(ss[t] / float(n_in) + eps) : 1.0;
}

// The group of this subgroup, the number of groups, and this invocation's lane in its group.
uint mv_group() { return gl_SubgroupID / KS; }
uint mv_n_groups() { return gl_NumSubgroups / KS; }
uint mv_lane() { return (gl_SubgroupID % KS) * gl_SubgroupSize + gl_SubgroupInvocationID; }
bool mv_leader() { return gl_SubgroupID % KS == 0u && gl_SubgroupInvocationID == 0u; }
