#version 450
// softmax of each row in place: exp(x - max) / sum. One workgroup per row.
#define NEED_REDUCE
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) buffer X { float x[]; };

layout(push_constant) uniform Push { // sym_vk_push_rows
    uint n_cols, n_rows, x_off, out_off;
} p;

void main() {
    uint tid = gl_LocalInvocationID.x;
    for (uint r = lin_group(); r < p.n_rows; r += n_groups()) {
        uint base = p.x_off + r * p.n_cols;
        float m = -1.0 / 0.0;
        for (uint i = tid; i < p.n_cols; i += WG) m = max(m, x[base + i]);
        m = wg_max(m);
        float s = 0.0;
        for (uint i = tid; i < p.n_cols; i += WG) {
            float e = exp(x[base + i] - m);
            x[base + i] = e;
            s += e;
        }
        s = wg_sum(s);
        for (uint i = tid; i < p.n_cols; i += WG) x[base + i] = x[base + i] / s;
    }
}
