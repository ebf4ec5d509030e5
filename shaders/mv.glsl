// mv.glsl — the dot-product core of the subgroup matrix-vector kernels (mv, mv_gate, mv_qkv).
// One subgroup computes up to NDR "dot rows" (rows of one or more weight matrices) against the
// n_tok (<= MAXT) rows of x, RMS-normalized on the fly when asked: x is binding 0 (f32), the
// norm weight binding 1 (type NDTYPE); the including kernel binds the weights and defines
// MV_W4(r, m, i) (uvec4 i of matrix m for dot row r) and MV_W1(r, m, i) (word i) first.
// vec (K % 8 == 0, every row start 16-byte aligned): lanes take 8-element steps (one uvec4 of a
// 16-bit W, two of an f32 W), MV_U steps in flight per lane; else single elements.
// Partial sums stay per lane in acc/ss (private globals) until mv_reduce (subgroupAdd only).
const uint MAXT = 8u;
const uint MV_U = 4u;
layout(constant_id = 6) const uint NDTYPE = 0;

layout(binding = 0) readonly buffer MvX { float x[]; };
layout(binding = 0) readonly buffer MvX4 { vec4 x4[]; };
layout(binding = 1) readonly buffer MvG { uint g[]; };
layout(binding = 1) readonly buffer MvG4 { uvec4 g4[]; };

uint dr_mat[NDR];  // matrix of each dot row
uint dr_base[NDR]; // first element of each dot row in its binding
float acc[NDR * MAXT];
float ss[MAXT];

void mv_dot(uint n_in, uint n_tok, uint x_off, uint g_off, bool norm, bool vec, uint ndr) {
    uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
    [[unroll]] for (uint t = 0u; t < MAXT; t++) ss[t] = 0.0;
    [[unroll]] for (uint j = 0u; j < NDR * MAXT; j++) acc[j] = 0.0;
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

// Sums the lanes' partials (the whole subgroup must call it). Afterwards ss[t] holds the RMSNorm
// factor of token t (1 without norm).
void mv_reduce(uint n_in, uint n_tok, bool norm, float eps) {
    [[unroll]] for (uint t = 0u; t < MAXT; t++) {
        if (t >= n_tok) break;
        [[unroll]] for (uint r = 0u; r < NDR; r++) acc[r * MAXT + t] = subgroupAdd(acc[r * MAXT + t]);
        ss[t] = norm ? 1.0 / sqrt(subgroupAdd(ss[t]) / float(n_in) + eps) : 1.0;
    }
}
