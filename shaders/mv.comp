#version 450
// mv (matrix-vector, n_tok <= 8, devices with subgroup arithmetic): out[t][row0 + r] =
// sum_i xn[t][i] W[r][i] (+ bias[row0 + r]) (+ out[t][row0 + r] with ACCUMULATE: the residual
// add fused), xn = x, or with NORM rmsnorm(x, g, eps) computed on the fly. A group of KS
// subgroups per block of NDR rows, RPW blocks per workgroup; lanes stride along the rows with
// 16-byte loads (mv.glsl) and the sums meet in subgroupAdd (and shared memory when KS > 1).
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint NDR = 2; // rows per subgroup
layout(constant_id = 5) const uint RPW = 4; // blocks of NDR rows per workgroup

layout(binding = 2) readonly buffer W { uint w[]; };
layout(binding = 2) readonly buffer W4 { uvec4 w4[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };
layout(binding = 4) buffer Out { float out_[]; };

#define MV_W4(r, m, i) w4[i]
#define MV_W1(r, m, i) w[i]
#include "mv.glsl"
#define MV_N_IN p.n_in
#define MV_N_TOK p.n_tok
#define MV_X_OFF p.x_off
#define MV_G_OFF p.g_off
#define MV_EPS p.eps

layout(push_constant) uniform Push { // sym_vk_push_mv
    uint n_in, n_rows, n_tok, x_off, g_off, w_off, b_off, out_off;
    uint out_stride, row0, flags;
    float eps;
} p;

const uint F_BIAS = 1u, F_ACCUMULATE = 2u, F_VEC = 8u;

void main() {
    const bool mv_norm = NORM; // a specialization constant: no norm code in plain products
    bool mv_vec = (p.flags & F_VEC) != 0u;
    uint wg_row = lin_group() * RPW * NDR, ng = mv_n_groups();
    uint n_it = (RPW + ng - 1u) / ng; // the same for every group: mv_item has barriers
    for (uint it = 0u; it < n_it; it++) {
        uint blk = it * ng + mv_group();
        uint r0 = wg_row + blk * NDR;
        uint mv_ndr = blk < RPW && r0 < p.n_rows ? min(NDR, p.n_rows - r0) : 0u;
        uint dr_mat[NDR], dr_base[NDR];
        [[unroll]] for (uint r = 0u; r < NDR; r++) {
            dr_mat[r] = 0u;
            dr_base[r] = p.w_off + (r0 + min(r, max(mv_ndr, 1u) - 1u)) * p.n_in;
        }
#include "mv_item.glsl"
        if (!mv_leader()) continue;
        [[unroll]] for (uint r = 0u; r < NDR; r++) {
            if (r >= mv_ndr) break;
            uint o = p.row0 + r0 + r;
            float b = (p.flags & F_BIAS) != 0u ? bias[p.b_off + o] : 0.0;
            [[unroll]] for (uint t = 0u; t < MAXT; t++) {
                if (t >= p.n_tok) break;
                uint idx = p.out_off + t * p.out_stride + o;
                float v = acc[r * MAXT + t] * ss[t] + b;
                if ((p.flags & F_ACCUMULATE) != 0u) v += out_[idx];
                out_[idx] = v;
            }
        }
    }
}
