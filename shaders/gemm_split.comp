#version 450
// gemm_split: prepares x for the cooperative-matrix GEMM without losing f32 precision. Row m is
// scaled by a power of two s (largest |x| lands in [2^14, 2^15): no f16 overflow, exact scaling)
// and split into hi = f16(x*s) and lo = f16(x*s - hi), so hi + lo carries ~22 significant bits.
// Rows are written k_pad (a multiple of 32) f16 long, zero-padded; scale_inv[m] = 1/s.
// One workgroup per row. LO false (f16 activations, the GEMM reads hi only): lo is not written.
// NORM 1 or 2: x is first RMS-normalized, exactly as rmsnorm.comp computes it, with a weight
// of ones (1: the norm folded into the products) or g (2, of type DTYPE): the prefill's
// attention and FFN inputs are split once for all their products, with no rmsnorm dispatch.
#define NEED_REDUCE
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const bool LO = true;
layout(constant_id = 5) const uint NORM = 0u;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer XS { uint xs[]; };
layout(binding = 2) writeonly buffer Scale { float scale_inv[]; };
layout(binding = 3) readonly buffer G { uint g[]; };

layout(push_constant) uniform Push { // sym_vk_push_split
    uint m, k, k_pad;
    uint x_off, hi_off, lo_off, scale_off;
    uint g_off;
    float eps;
} p;

// Element i of row xr, normalized (NORM) with scale inv.
float value(uint xr, uint i, float inv) {
    float v = x[xr + i];
    if (NORM == 0u) return v;
    float wv = 1.0;
    if (NORM == 2u) {
        uint e = p.g_off + i;
        wv = elem_in_word(g[word_of(e, DTYPE)], e, DTYPE);
    }
    return v * inv * wv;
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    for (uint r = lin_group(); r < p.m; r += n_groups()) {
        uint xr = p.x_off + r * p.k;
        float inv = 1.0;
        if (NORM != 0u) {
            float ss = 0.0;
            for (uint i = tid; i < p.k; i += WG) {
                float v = x[xr + i];
                ss += v * v;
            }
            ss = wg_sum(ss);
            inv = 1.0 / sqrt(ss / float(p.k) + p.eps);
        }
        float mx = 0.0;
        for (uint i = tid; i < p.k; i += WG) mx = max(mx, abs(value(xr, i, inv)));
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
            float v0 = (k0 < p.k ? value(xr, k0, inv) : 0.0) * s;
            float v1 = (k0 + 1u < p.k ? value(xr, k0 + 1u, inv) : 0.0) * s;
            // Rounding with integer operations on purpose: written as
            // v - unpackHalf2x16(packHalf2x16(v)), a driver may fold the round trip to v and
            // lo to 0 (seen on NVIDIA 580: the product then had f16 precision).
            uint h0 = f32_to_f16(v0), h1 = f32_to_f16(v1);
            precise float r0 = v0 - f16_to_f32(h0);
            precise float r1 = v1 - f16_to_f32(h1);
            xs[(p.hi_off >> 1) + r * half_words + j] = h0 | (h1 << 16);
            if (LO) xs[(p.lo_off >> 1) + r * half_words + j] = f32_to_f16(r0) | (f32_to_f16(r1) << 16);
        }
        if (tid == 0u) scale_inv[p.scale_off + r] = 1.0 / s;
    }
}
