#version 450
// rope: rotates pairs of each head in place. One thread per (token, head, pair); the angle as the
// reference computes it (rope_cos_sin in common.glsl, freq from the host's powf).
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer Freq { float freq[]; };

layout(push_constant) uniform Push { // sym_vk_push_rope
    uint n_tok, n_head, head_dim, row_stride;
    int pos0;
    float freq_scale;
    uint neox, x_off, freq_off;
} p;

void main() {
    uint half_ = p.head_dim / 2u;
    uint idx = lin_group() * WG + gl_LocalInvocationID.x;
    if (idx >= p.n_tok * p.n_head * half_) return;
    uint i = idx % half_;
    uint h = (idx / half_) % p.n_head;
    uint t = idx / (half_ * p.n_head);
    vec2 cs = rope_cos_sin(p.pos0 + int(t), p.freq_scale, freq[p.freq_off + i]);
    float c = cs.x, s = cs.y;
    uint i0 = p.x_off + t * p.row_stride + h * p.head_dim + (p.neox != 0u ? i : 2u * i);
    uint i1 = i0 + (p.neox != 0u ? half_ : 1u);
    float x0 = x[i0], x1 = x[i1];
    x[i0] = x0 * c - x1 * s;
    x[i1] = x0 * s + x1 * c;
}
