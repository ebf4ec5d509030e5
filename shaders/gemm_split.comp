#version 450
// gemm_split: prepares x for the cooperative-matrix GEMM without losing f32 precision. Row m is
// scaled by a power of two s (largest |x| lands in [2^14, 2^15): no f16 overflow, exact scaling)
// and split into hi = f16(x*s) and lo = f16(x*s - hi), so hi + lo carries ~22 significant bits.
// Rows are written k_pad (a multiple of 32) f16 long, zero-padded; scale_inv[m] = 1/s.
// One workgroup per row.
#define NEED_REDUCE
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer XS { uint xs[]; };
layout(binding = 2) writeonly buffer Scale { float scale_inv[]; };

layout(push_constant) uniform Push { // sym_vk_push_split
    uint m, k, k_pad;
    uint x_off, hi_off, lo_off, scale_off;
} p;

void main() {
    uint tid = gl_LocalInvocationID.x;
    for (uint r = lin_group(); r < p.m; r += n_groups()) {
        uint xr = p.x_off + r * p.k;
        float mx = 0.0;
        for (uint i = tid; i < p.k; i += WG) mx = max(mx, abs(x[xr + i]));
        mx = wg_max(mx);
        int e = 0;
        float s = 1.0;
        if (mx > 0.0 && !isinf(mx) && !isnan(mx)) {
            frexp(mx, e); // mx < 2^e
            s = ldexp(1.0, 15 - e);
        }
        uint half_words = p.k_pad / 2u;
        for (uint j = tid; j < half_words; j += WG) {
            uint k0 = 2u * j;
            float v0 = (k0 < p.k ? x[xr + k0] : 0.0) * s;
            float v1 = (k0 + 1u < p.k ? x[xr + k0 + 1u] : 0.0) * s;
            // Rounding with integer operations on purpose: written as
            // v - unpackHalf2x16(packHalf2x16(v)), a driver may fold the round trip to v and
            // lo to 0 (seen on NVIDIA 580: the product then had f16 precision).
            uint h0 = f32_to_f16(v0), h1 = f32_to_f16(v1);
            precise float r0 = v0 - f16_to_f32(h0);
            precise float r1 = v1 - f16_to_f32(h1);
            xs[(p.hi_off >> 1) + r * half_words + j] = h0 | (h1 << 16);
            xs[(p.lo_off >> 1) + r * half_words + j] = f32_to_f16(r0) | (f32_to_f16(r1) << 16);
        }
        if (tid == 0u) scale_inv[p.scale_off + r] = 1.0 / s;
    }
}
