#version 450
// rope: rotates pairs of each head in place. One thread per (token, head, pair). The angle is
// computed exactly as the reference does (pos * freq_scale, then * freq with freq from the host's
// powf), then reduced to [-pi, pi] in three exact-ish steps so that sin/cos stay accurate for
// large positions.
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
    precise float pos = float(p.pos0 + int(t)) * p.freq_scale;
    precise float ang = pos * freq[p.freq_off + i];
    // 2*pi = C1 + C2 + C3; C1 has 8 significant bits so k * C1 is exact for |k| < 2^16.
    const float C1 = 6.28125;
    const float C2 = 1.9353071693331003e-03;
    const float C3 = 1.0253131677018246e-11;
    precise float k = round(ang * 0.15915494309189535);
    precise float r = fma(-k, C1, ang);
    r = fma(-k, C2, r);
    r = fma(-k, C3, r);
    float c = cos(r), s = sin(r);
    uint i0 = p.x_off + t * p.row_stride + h * p.head_dim + (p.neox != 0u ? i : 2u * i);
    uint i1 = i0 + (p.neox != 0u ? half_ : 1u);
    float x0 = x[i0], x1 = x[i1];
    x[i0] = x0 * c - x1 * s;
    x[i1] = x0 * s + x1 * c;
}
