#version 450
// mv_gate (the MLP's first half for n_tok <= 8, devices with subgroup arithmetic):
// out[t][r] = silu(xn[t] . Wg[r]) * (xn[t] . Wu[r]) with xn = rmsnorm(x, g, eps) computed on the
// fly (NORM; else xn = x). A group of KS subgroups per row (both matrices: two dot rows of
// mv.glsl), RPW rows per workgroup; the SiLU is silu_mul.comp's.
#include "common.glsl"
layout(local_size_x_id = 0) in;
const uint NDR = 2u;
layout(constant_id = 5) const uint RPW = 8; // rows per workgroup

layout(binding = 2) readonly buffer Wg { uint wg[]; };
layout(binding = 2) readonly buffer Wg4 { uvec4 wg4[]; };
layout(binding = 3) readonly buffer Wu { uint wu[]; };
layout(binding = 3) readonly buffer Wu4 { uvec4 wu4[]; };
layout(binding = 4) writeonly buffer Out { float out_[]; };

// r is a compile-time constant after unrolling: the selection folds away
#define MV_W4(r, m, i) ((r) == 0u ? wg4[i] : wu4[i])
#define MV_W1(r, m, i) ((r) == 0u ? wg[i] : wu[i])
#include "mv.glsl"
#define MV_N_IN p.n_in
#define MV_N_TOK p.n_tok
#define MV_X_OFF p.x_off
#define MV_G_OFF p.g_off
#define MV_EPS p.eps

layout(push_constant) uniform Push { // sym_vk_push_mv_gate
    uint n_in, n_rows, n_tok, x_off, g_off, wg_off, wu_off, out_off, out_stride, flags;
    float eps;
} p;

const uint F_VEC = 8u;

void main() {
    const bool mv_norm = NORM; // a specialization constant: no norm code in plain products
    bool mv_vec = (p.flags & F_VEC) != 0u;
    uint first = lin_group() * RPW, ng = mv_n_groups();
    uint n_it = (RPW + ng - 1u) / ng; // the same for every group: mv_item has barriers
    for (uint it = 0u; it < n_it; it++) {
        uint k = it * ng + mv_group(), row = first + k;
        bool live = k < RPW && row < p.n_rows;
        uint rr = live ? row : 0u;
        uint mv_ndr = live ? 2u : 0u;
        uint dr_mat[NDR], dr_base[NDR];
        dr_mat[0] = 0u;
        dr_mat[1] = 1u;
        dr_base[0] = p.wg_off + rr * p.n_in;
        dr_base[1] = p.wu_off + rr * p.n_in;
#include "mv_item.glsl"
        if (!live || !mv_leader()) continue;
        [[unroll]] for (uint t = 0u; t < MAXT; t++) {
            if (t >= p.n_tok) break;
            float gt = acc[t] * ss[t], ut = acc[MAXT + t] * ss[t];
            out_[p.out_off + t * p.out_stride + row] = gt / (1.0 + exp(-gt)) * ut;
        }
    }
}
