#version 450
// matmul (prefill, shared-memory tiles): out[m][row0 + n] = sum_k x[m][k] * W[n][k] (+ bias)
// (+ out[m][row0 + n] with accumulate: the residual add fused).
// A workgroup of 256 threads computes a 64 (tokens) x 64 (rows of W) tile; each thread 4 x 4
// outputs spaced 16 apart (conflict-free shared reads). K advances 16 at a time through shared
// memory; W is converted to f32 as it is staged. vec_ok: 16-bit W rows start on even elements
// (two elements per word load). Edges are zero-filled. Fixed size: the tile shape, not the
// configured workgroup size, decides the thread count.
#include "common.glsl"
layout(local_size_x = 256) in;

const uint BM = 64u, BN = 64u, BK = 16u;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { uint w[]; };
layout(binding = 2) readonly buffer Bias { float bias[]; };
layout(binding = 3) buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_matmul
    uint m, n, k;
    uint x_off, w_off, b_off, out_off;
    uint out_stride, row0, has_bias, vec_ok;
    uint accumulate;
} p;

shared float As[BK][BM + 1u];
shared float Bs[BK][BN + 1u];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint tx = tid % 16u, ty = tid / 16u;
    uint bn = gl_WorkGroupID.x * BN, bm = gl_WorkGroupID.y * BM;
    float acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        // stage: 64 x 16 of x and of W, 4 elements of each per thread (k fastest: coalesced)
        [[unroll]] for (uint q = 0u; q < 4u; q++) {
            uint e = tid + 256u * q;
            uint r = e / BK, kk = e % BK;
            uint gk = k0 + kk;
            uint gm = bm + r;
            As[kk][r] = (gm < p.m && gk < p.k) ? x[p.x_off + gm * p.k + gk] : 0.0;
        }
        if (DTYPE != DT_F32 && p.vec_ok != 0u) {
            [[unroll]] for (uint q = 0u; q < 2u; q++) {
                uint e = tid + 256u * q; // one word = two k
                uint r = e / (BK / 2u), kk = 2u * (e % (BK / 2u));
                uint gk = k0 + kk, gn = bn + r;
                vec2 v = vec2(0.0);
                if (gn < p.n && gk < p.k) v = pair_of_word(w[(p.w_off + gn * p.k + gk) >> 1], DTYPE);
                Bs[kk][r] = v.x;
                Bs[kk + 1u][r] = gk + 1u < p.k ? v.y : 0.0;
            }
        } else {
            [[unroll]] for (uint q = 0u; q < 4u; q++) {
                uint e = tid + 256u * q;
                uint r = e / BK, kk = e % BK;
                uint gk = k0 + kk, gn = bn + r;
                float v = 0.0;
                if (gn < p.n && gk < p.k) {
                    uint idx = p.w_off + gn * p.k + gk;
                    v = elem_in_word(w[word_of(idx, DTYPE)], idx, DTYPE);
                }
                Bs[kk][r] = v;
            }
        }
        barrier();
        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            float a[4], b[4];
            [[unroll]] for (uint i = 0u; i < 4u; i++) a[i] = As[kk][ty + 16u * i];
            [[unroll]] for (uint j = 0u; j < 4u; j++) b[j] = Bs[kk][tx + 16u * j];
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint gm = bm + ty + 16u * i;
        if (gm >= p.m) continue;
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint gn = bn + tx + 16u * j;
            if (gn >= p.n) continue;
            uint o = p.row0 + gn;
            float b = p.has_bias != 0u ? bias[p.b_off + o] : 0.0;
            uint idx = p.out_off + gm * p.out_stride + o;
            float v = acc[i][j] + b;
            if (p.accumulate != 0u) v += out_[idx];
            out_[idx] = v;
        }
    }
}
