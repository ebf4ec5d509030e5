#version 450
// set_cols: out[t][col0 + j] (+)= src[t][j] for t < n_rows, j < w (f32). The streaming forward
// pass assembles a product whose weight rows arrive in slices with it.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Src { float src[]; };
layout(binding = 1) buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_set_cols
    uint w, n_rows, out_cols, src_off, out_off, accumulate;
} p;

void main() {
    uint i = lin_group() * WG + gl_LocalInvocationID.x;
    if (i >= p.w * p.n_rows) return;
    uint t = i / p.w, j = i - t * p.w;
    float v = src[p.src_off + i];
    uint o = p.out_off + t * p.out_cols + j;
    out_[o] = p.accumulate != 0u ? out_[o] + v : v;
}
