#version 450
// topk: the k largest values of a row of n f32 with their indices, largest first, equal values
// by the lower index, NaN never chosen — the candidates the sampler's top-k keeps (sampler.c).
// out[2i] = value, out[2i + 1] = index (as f32, exact below 2^24); past the row's non-NaN
// values, index -1.
// Each workgroup takes per_group values and keeps its best k: shared memory holds SN keys, the
// best k so far in front and the next SN - k values behind them, sorted (bitonic, descending)
// until the slice is used up; then writes its k keys to part. The last workgroup to finish
// (counted in cnt, reset by it) does the same over the G * k keys and writes out. A key is
// (the value's bits made to order as unsigned integers, ~index): larger keys are larger
// values, then lower indices; a NaN's or an empty slot's key is (0, 0), below every other.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint SN = 2048; // keys sorted at once (a power of two > k)

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Out { float out_[]; };
layout(binding = 2) coherent buffer Part { uvec2 part[]; };
layout(binding = 3) coherent buffer Cnt { uint cnt[]; };

layout(push_constant) uniform Push { // sym_vk_push_topk
    uint n, k, per_group, x_off, out_off, part_off, cnt_off;
} p;

shared uvec2 sk[SN];
shared bool sh_last;

uvec2 key_of(float v, uint i) {
    if (isnan(v)) return uvec2(0u);
    uint u = v == 0.0 ? 0u : floatBitsToUint(v); // -0 as +0: equal values, ordered by index
    return uvec2((u & 0x80000000u) != 0u ? ~u : u | 0x80000000u, ~i);
}

bool key_less(uvec2 a, uvec2 b) { return a.x < b.x || (a.x == b.x && a.y < b.y); }

// sk[0, SN) in descending key order (bitonic network; every invocation takes part)
void sort_desc() {
    uint tid = gl_LocalInvocationID.x;
    for (uint size = 2u; size <= SN; size <<= 1u) {
        for (uint stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (uint t = tid; t < SN / 2u; t += WG) {
                uint i = 2u * t - (t & (stride - 1u)), j = i + stride;
                bool desc = (i & size) == 0u;
                uvec2 a = sk[i], b = sk[j];
                if (key_less(a, b) == desc) {
                    sk[i] = b;
                    sk[j] = a;
                }
            }
            barrier();
        }
    }
}

// Keeps in sk[0, k) the best k of m inputs (from x when keys is false, else from part), taking
// them SN - k at a time. Uniform in the workgroup.
void best_k(uint first, uint m, bool keys) {
    uint tid = gl_LocalInvocationID.x;
    for (uint i = tid; i < p.k; i += WG) sk[i] = uvec2(0u);
    for (uint c0 = 0u; c0 < m; c0 += SN - p.k) {
        for (uint i = tid; i < SN - p.k; i += WG) {
            uint e = c0 + i;
            uvec2 kv = uvec2(0u);
            if (e < m) kv = keys ? part[first + e] : key_of(x[p.x_off + first + e], first + e);
            sk[p.k + i] = kv;
        }
        barrier();
        sort_desc();
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x, g = lin_group(), G = n_groups();
    uint first = g * p.per_group;
    uint m = first < p.n ? min(p.per_group, p.n - first) : 0u;
    best_k(first, m, false);
    if (G > 1u) {
        for (uint i = tid; i < p.k; i += WG) part[p.part_off + g * p.k + i] = sk[i];
        memoryBarrierBuffer();
        barrier();
        if (tid == 0u) sh_last = atomicAdd(cnt[p.cnt_off], 1u) == G - 1u;
        barrier();
        if (!sh_last) return; // uniform
        memoryBarrierBuffer();
        best_k(p.part_off, G * p.k, true);
    }
    for (uint i = tid; i < p.k; i += WG) {
        uvec2 kv = sk[i];
        bool none = kv.x == 0u && kv.y == 0u;
        uint u = (kv.x & 0x80000000u) != 0u ? kv.x & 0x7fffffffu : ~kv.x;
        out_[p.out_off + 2u * i] = none ? 0.0 : uintBitsToFloat(u);
        out_[p.out_off + 2u * i + 1u] = none ? -1.0 : float(~kv.y);
    }
    if (G > 1u && tid == 0u) cnt[p.cnt_off] = 0u; // ready for the next dispatch
}
