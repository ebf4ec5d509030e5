#version 450
// matmul_coop (prefill on tensor cores, GL_NV_cooperative_matrix 16x16x16 f16 -> f32):
// out[m][row0 + n] = scale_inv[m] * sum_k (hi[m][k] + lo[m][k]) * W[n][k] (+ bias), with hi/lo
// from gemm_split (use_lo = 0 with fp16 math: hi only). 128 threads = 2 x 2 subgroups of 32;
// each subgroup owns SM x SN blocks of 16 x 16, so a workgroup computes (32 SM) x (32 SN).
// Tiles are staged in shared memory as raw f16 bits (uvec4 = 8 halves; rows padded by PAD uvec4
// against bank conflicts), so f16 weights and the split activations need no conversion; bf16
// weights are converted as they are staged (the backend only sends bf16 here when every value
// fits f16). vec_ok: W rows and w_off are multiples of 8 elements (16-byte loads). Results leave
// through a 16 x 16 staging block per subgroup, where scale and bias are applied (and out added
// with accumulate).
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
layout(local_size_x = 128) in;
layout(constant_id = 4) const uint SM = 2;  // 16-row blocks per subgroup (1..4)
layout(constant_id = 5) const uint SN = 2;  // 16-column blocks per subgroup (1..4)
layout(constant_id = 6) const uint PAD = 1; // extra uvec4 per staged row
layout(constant_id = 7) const uint BK8 = 4; // K per step, in uvec4 (8 halves); even

const uint BM = 32u * SM, BN = 32u * SN, RS = BK8 + PAD;

layout(binding = 0) readonly buffer XS { uvec4 xs4[]; };
layout(binding = 1) readonly buffer Scale { float scale_inv[]; };
layout(binding = 2) readonly buffer W { uint w[]; };
layout(binding = 2) readonly buffer W4 { uvec4 w4[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };
layout(binding = 4) buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_coop
    uint m, n, k, k_pad;
    uint hi_off, lo_off, scale_off, w_off, b_off, out_off;
    uint out_stride, row0, has_bias, use_lo, vec_ok;
    uint accumulate;
} p;

shared uvec4 Ah[BM * RS];
shared uvec4 Al[BM * RS];
shared uvec4 Bt[BN * RS]; // W rows: B = W^T read column-major
shared float Cs[4u * 256u];

#define F16MAT fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define F32MAT fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

// f16 bits of element idx of W (any alignment).
uint w_half(uint idx) {
    uint wd = w[idx >> 1];
    uint h = (idx & 1u) != 0u ? (wd >> 16) : (wd & 0xffffu);
    return DTYPE == DT_F16 ? h : f32_to_f16(bf16_to_f32(h));
}

// Eight bf16 in a uvec4 -> eight f16 bits.
uvec4 bf16x8_to_f16(uvec4 q) {
    uvec4 o;
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        o[i] = f32_to_f16(uintBitsToFloat(q[i] << 16)) |
               (f32_to_f16(uintBitsToFloat(q[i] & 0xffff0000u)) << 16);
    return o;
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = tid / 32u, lane = tid % 32u;
    uint bn = gl_WorkGroupID.x * BN, bm = gl_WorkGroupID.y * BM;
    uint sm = (sg / 2u) * 16u * SM, sn = (sg % 2u) * 16u * SN;
    F32MAT acc[4][4];
    [[unroll]] for (uint i = 0u; i < SM; i++)
        [[unroll]] for (uint j = 0u; j < SN; j++) acc[i][j] = F32MAT(0.0);
    uint row8 = p.k_pad / 8u; // uvec4 per split row (k_pad is a multiple of 32)

    for (uint k0 = 0u; k0 < p.k; k0 += 8u * BK8) {
        // A: BM rows x BK8 uvec4 of hi and lo; split rows are zero-padded to k_pad
        for (uint e = tid; e < BM * BK8; e += 128u) {
            uint r = e / BK8, c = e % BK8;
            uint gm = bm + r, gk8 = k0 / 8u + c;
            uvec4 h = uvec4(0u), l = uvec4(0u);
            if (gm < p.m && gk8 < row8) {
                h = xs4[p.hi_off / 8u + gm * row8 + gk8];
                if (p.use_lo != 0u) l = xs4[p.lo_off / 8u + gm * row8 + gk8];
            }
            Ah[r * RS + c] = h;
            Al[r * RS + c] = l;
        }
        // B: BN rows of W x BK8 uvec4
        for (uint e = tid; e < BN * BK8; e += 128u) {
            uint r = e / BK8, c = e % BK8;
            uint gn = bn + r, gk = k0 + 8u * c;
            uvec4 v = uvec4(0u);
            if (gn < p.n && gk < p.k) {
                if (p.vec_ok != 0u) { // k % 8 == 0: the whole group of 8 is inside the row
                    v = w4[(p.w_off + gn * p.k + gk) / 8u];
                    if (DTYPE == DT_BF16) v = bf16x8_to_f16(v);
                } else {
                    uint base = p.w_off + gn * p.k + gk;
                    uint hv[8];
                    [[unroll]] for (uint z = 0u; z < 8u; z++) hv[z] = gk + z < p.k ? w_half(base + z) : 0u;
                    v = uvec4(hv[0] | (hv[1] << 16), hv[2] | (hv[3] << 16), hv[4] | (hv[5] << 16),
                              hv[6] | (hv[7] << 16));
                }
            }
            Bt[r * RS + c] = v;
        }
        barrier();
        [[unroll]] for (uint kk = 0u; kk < BK8; kk += 2u) { // 16 k = 2 uvec4
            F16MAT a[4], al[4], b[4];
            [[unroll]] for (uint i = 0u; i < SM; i++) {
                coopMatLoadNV(a[i], Ah, (sm + 16u * i) * RS + kk, RS, false);
                if (p.use_lo != 0u) coopMatLoadNV(al[i], Al, (sm + 16u * i) * RS + kk, RS, false);
            }
            [[unroll]] for (uint j = 0u; j < SN; j++)
                coopMatLoadNV(b[j], Bt, (sn + 16u * j) * RS + kk, RS, true);
            [[unroll]] for (uint i = 0u; i < SM; i++)
                [[unroll]] for (uint j = 0u; j < SN; j++) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
                    if (p.use_lo != 0u) acc[i][j] = coopMatMulAddNV(al[i], b[j], acc[i][j]);
                }
        }
        barrier();
    }
    [[unroll]] for (uint i = 0u; i < SM; i++)
        [[unroll]] for (uint j = 0u; j < SN; j++) {
            coopMatStoreNV(acc[i][j], Cs, sg * 256u, 16u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < 256u; e += 32u) {
                uint gm = bm + sm + 16u * i + e / 16u, gn = bn + sn + 16u * j + e % 16u;
                if (gm >= p.m || gn >= p.n) continue;
                uint o = p.row0 + gn;
                float b = p.has_bias != 0u ? bias[p.b_off + o] : 0.0;
                uint idx = p.out_off + gm * p.out_stride + o;
                float v = Cs[sg * 256u + e] * scale_inv[p.scale_off + gm] + b;
                if (p.accumulate != 0u) v += out_[idx];
                out_[idx] = v;
            }
            subgroupBarrier(); // the block is read before the next one overwrites it
        }
}
