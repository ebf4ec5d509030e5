#version 450
// matmul_coop (prefill on tensor cores, GL_NV_cooperative_matrix 16x16x16 f16 -> f32):
// out[m][row0 + n] = scale_inv[m] * sum_k (hi[m][k] + lo[m][k]) * W[n][k] (+ bias), with hi/lo
// from gemm_split (use_lo = 0 with fp16 math: hi only). W (f16, or bf16 converted to f16; the
// backend checks bf16 values fit) is staged in shared memory. 128 threads = 4 subgroups of 32;
// a 64 x 64 tile per workgroup, 32 x 32 (2 x 2 matrices) per subgroup, K in steps of 32.
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#include "common.glsl"
layout(local_size_x = 128) in;

const uint BM = 64u, BN = 64u, BK = 32u;

layout(binding = 0) readonly buffer XS { uint xs[]; };
layout(binding = 1) readonly buffer Scale { float scale_inv[]; };
layout(binding = 2) readonly buffer W { uint w[]; };
layout(binding = 2) readonly buffer W4 { uvec4 w4[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };
layout(binding = 4) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_coop
    uint m, n, k, k_pad;
    uint hi_off, lo_off, scale_off, w_off, b_off, out_off;
    uint out_stride, row0, has_bias, use_lo, vec_ok;
} p;

shared float16_t Ah[BM * BK];
shared float16_t Al[BM * BK];
shared float16_t Bt[BN * BK]; // Bt[n * BK + k]: W rows, i.e. B = W^T in column-major order
shared float Cs[BM * BN];

#define F16MAT fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define F32MAT fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = tid / 32u;
    uint bn = gl_WorkGroupID.x * BN, bm = gl_WorkGroupID.y * BM;
    uint sm = (sg / 2u) * 32u, sn = (sg % 2u) * 32u;
    F32MAT acc[2][2];
    [[unroll]] for (uint i = 0u; i < 2u; i++)
        [[unroll]] for (uint j = 0u; j < 2u; j++) acc[i][j] = F32MAT(0.0);
    uint hw = p.k_pad / 2u;

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        // A: 64 rows x 32 k = 1024 words (hi) + 1024 (lo): 8 + 8 per thread
        [[unroll]] for (uint q = 0u; q < 8u; q++) {
            uint e = tid + 128u * q;
            uint r = e / (BK / 2u), c = 2u * (e % (BK / 2u));
            uint gm = bm + r;
            vec2 h = vec2(0.0), l = vec2(0.0);
            if (gm < p.m) { // k0 + c < k_pad always: rows are zero-padded to k_pad
                h = unpackHalf2x16(xs[(p.hi_off >> 1) + gm * hw + (k0 + c) / 2u]);
                if (p.use_lo != 0u) l = unpackHalf2x16(xs[(p.lo_off >> 1) + gm * hw + (k0 + c) / 2u]);
            }
            Ah[r * BK + c] = float16_t(h.x);
            Ah[r * BK + c + 1u] = float16_t(h.y);
            Al[r * BK + c] = float16_t(l.x);
            Al[r * BK + c + 1u] = float16_t(l.y);
        }
        // B: 64 rows of W x 32 k
        if (p.vec_ok != 0u) { // rows and w_off multiples of 8 elements, k % 8 == 0
            [[unroll]] for (uint q = 0u; q < 2u; q++) {
                uint e = tid + 128u * q; // 256 uvec4 = 64 rows x 4
                uint r = e / 4u, c = 8u * (e % 4u);
                uint gn = bn + r, gk = k0 + c;
                vec4 a = vec4(0.0), b = vec4(0.0);
                if (gn < p.n && gk < p.k) unpack8(w4[(p.w_off + gn * p.k + gk) / 8u], DTYPE, a, b);
                [[unroll]] for (uint z = 0u; z < 4u; z++) {
                    Bt[r * BK + c + z] = float16_t(a[z]);
                    Bt[r * BK + c + 4u + z] = float16_t(b[z]);
                }
            }
        } else {
            [[unroll]] for (uint q = 0u; q < 16u; q++) {
                uint e = tid + 128u * q;
                uint r = e / BK, c = e % BK;
                uint gn = bn + r, gk = k0 + c;
                float v = 0.0;
                if (gn < p.n && gk < p.k) {
                    uint idx = p.w_off + gn * p.k + gk;
                    v = elem_in_word(w[word_of(idx, DTYPE)], idx, DTYPE);
                }
                Bt[r * BK + c] = float16_t(v);
            }
        }
        barrier();
        [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
            F16MAT a[2], al[2], b[2];
            [[unroll]] for (uint i = 0u; i < 2u; i++) {
                coopMatLoadNV(a[i], Ah, (sm + 16u * i) * BK + kk, BK, false);
                coopMatLoadNV(al[i], Al, (sm + 16u * i) * BK + kk, BK, false);
            }
            [[unroll]] for (uint j = 0u; j < 2u; j++)
                coopMatLoadNV(b[j], Bt, (sn + 16u * j) * BK + kk, BK, true);
            [[unroll]] for (uint i = 0u; i < 2u; i++)
                [[unroll]] for (uint j = 0u; j < 2u; j++) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
                    if (p.use_lo != 0u) acc[i][j] = coopMatMulAddNV(al[i], b[j], acc[i][j]);
                }
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < 2u; i++)
        [[unroll]] for (uint j = 0u; j < 2u; j++)
            coopMatStoreNV(acc[i][j], Cs, (sm + 16u * i) * BN + sn + 16u * j, BN, false);
    barrier();
    for (uint e = tid; e < BM * BN; e += 128u) {
        uint r = e / BN, c = e % BN;
        uint gm = bm + r, gn = bn + c;
        if (gm >= p.m || gn >= p.n) continue;
        uint o = p.row0 + gn;
        float b = p.has_bias != 0u ? bias[p.b_off + o] : 0.0;
        out_[p.out_off + gm * p.out_stride + o] = Cs[e] * scale_inv[p.scale_off + gm] + b;
    }
}
