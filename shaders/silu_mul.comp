#version 450
// silu_mul: out = silu(gate) * up, elementwise; out may alias gate or up.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_binary
    uint n, a_off, b_off, out_off;
} p;

void main() {
    uint i = lin_group() * WG + gl_LocalInvocationID.x;
    if (i >= p.n) return;
    float g = a[p.a_off + i];
    out_[p.out_off + i] = g / (1.0 + exp(-g)) * b[p.b_off + i];
}
