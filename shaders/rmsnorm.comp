#version 450
// rmsnorm: out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w (unit_w: w = 1, not read). One
// workgroup per row (rows looped
// when there are more than the grid). out may alias x: each thread reads its elements before it
// writes them, and the sum is complete before any write.
#define NEED_REDUCE
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { uint w[]; };
layout(binding = 2) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_rmsnorm
    uint n_cols, n_rows, x_off, w_off, out_off;
    float eps;
    uint unit_w;
} p;

void main() {
    uint tid = gl_LocalInvocationID.x;
    for (uint r = lin_group(); r < p.n_rows; r += n_groups()) {
        uint xr = p.x_off + r * p.n_cols;
        float ss = 0.0;
        for (uint i = tid; i < p.n_cols; i += WG) {
            float v = x[xr + i];
            ss += v * v;
        }
        ss = wg_sum(ss);
        float scale = 1.0 / sqrt(ss / float(p.n_cols) + p.eps);
        for (uint i = tid; i < p.n_cols; i += WG) {
            uint e = p.w_off + i;
            float wv = p.unit_w != 0u ? 1.0 : elem_in_word(w[word_of(e, DTYPE)], e, DTYPE);
            out_[p.out_off + r * p.n_cols + i] = x[xr + i] * scale * wv;
        }
    }
}
