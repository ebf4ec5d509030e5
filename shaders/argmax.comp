#version 450
// argmax of each row: out[r] = index of the first largest non-NaN value (0 if none), as f32
// (exact below 2^24). One workgroup per row; a shared-memory tree of (value, index) pairs.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_rows
    uint n_cols, n_rows, x_off, out_off;
} p;

shared float sh_v[WG];
shared uint sh_i[WG];

const uint NONE = 0xffffffffu;

// Does (v, i) beat (bv, bi)? Larger value wins, then the smaller index; NONE loses to anything.
bool better(float v, uint i, float bv, uint bi) {
    if (i == NONE) return false;
    if (bi == NONE) return true;
    return v > bv || (v == bv && i < bi);
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    for (uint r = lin_group(); r < p.n_rows; r += n_groups()) {
        uint base = p.x_off + r * p.n_cols;
        float bv = 0.0;
        uint bi = NONE;
        for (uint i = tid; i < p.n_cols; i += WG) {
            float v = x[base + i];
            if (!isnan(v) && better(v, i, bv, bi)) {
                bv = v;
                bi = i;
            }
        }
        barrier();
        sh_v[tid] = bv;
        sh_i[tid] = bi;
        barrier();
        uint s = 1u;
        while (s < WG) s <<= 1;
        for (s >>= 1; s > 0u; s >>= 1) {
            if (tid < s && tid + s < WG && better(sh_v[tid + s], sh_i[tid + s], sh_v[tid], sh_i[tid])) {
                sh_v[tid] = sh_v[tid + s];
                sh_i[tid] = sh_i[tid + s];
            }
            barrier();
        }
        if (tid == 0u) out_[p.out_off + r] = sh_i[0] == NONE ? 0.0 : float(sh_i[0]);
    }
}
