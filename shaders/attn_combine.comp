#version 450
// attn_combine: joins attn_decode's per-chunk partial states of (token, head) into the output:
// out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c. One workgroup per (head, token); chunk 0
// always holds position 0, so M is finite and empty chunks (m = -inf) weigh 0.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint D = 128;

layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_attn_combine
    uint n_tok, n_head, n_chunks, part_off, out_off, out_stride;
} p;

void main() {
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    uint part_stride = D + 2u;
    uint base = p.part_off + (t * p.n_head + h) * p.n_chunks * part_stride;
    float M = -1.0 / 0.0;
    for (uint c = 0u; c < p.n_chunks; c++) M = max(M, part[base + c * part_stride + D]);
    float L = 0.0;
    for (uint c = 0u; c < p.n_chunks; c++) {
        float mc = part[base + c * part_stride + D];
        if (mc != -1.0 / 0.0) L += exp(mc - M) * part[base + c * part_stride + D + 1u];
    }
    for (uint d = gl_LocalInvocationID.x; d < D; d += WG) {
        float o = 0.0;
        for (uint c = 0u; c < p.n_chunks; c++) {
            float mc = part[base + c * part_stride + D];
            if (mc != -1.0 / 0.0) o += exp(mc - M) * part[base + c * part_stride + d];
        }
        out_[p.out_off + t * p.out_stride + h * D + d] = o / L;
    }
}
