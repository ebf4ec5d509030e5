#version 450
// matmul_coop (prefill on tensor cores, GL_NV_cooperative_matrix 16x16x16 f16 -> f32):
// out[m][row0 + n] = scale_inv[m] * sum_k (hi[m][k] + lo[m][k]) * W[n][k] (+ bias) (+ out with
// accumulate), with hi/lo from gemm_split (use_lo = 0 with fp16 math: hi only). WM x WN
// subgroups of 32; each owns SM x SN blocks of 16 x 16, so a workgroup computes
// (16 SM WM) x (16 SN WN). Tiles are staged in shared memory as raw f16 bits (uvec4 = 8 halves;
// rows padded by PAD uvec4 against bank conflicts), so f16 weights and the split activations
// need no conversion; bf16 weights are converted as they are stored to shared memory (the
// backend only sends bf16 here when every value fits f16). The next K step's tiles are loaded into registers while
// the tensor cores work on the current one (one shared stage: 48 KiB would not hold two).
// vec_ok: W rows and w_off are multiples of 8 elements (16-byte loads). Results leave through a
// 16 x 16 staging block per subgroup (in Ah, after the last step), where scale and bias are
// applied.
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
layout(local_size_x_id = 0) in;              // WG = 32 WM WN (set by the host)
layout(constant_id = 4) const uint SM = 2;  // 16-row blocks per subgroup (1..4)
layout(constant_id = 5) const uint SN = 2;  // 16-column blocks per subgroup (1..4)
layout(constant_id = 6) const uint PAD = 1; // extra uvec4 per staged row
layout(constant_id = 7) const uint BK8 = 4; // K per step, in uvec4 (8 halves); even, <= 16
layout(constant_id = 8) const uint WM = 2;  // subgroups along M
layout(constant_id = 9) const uint WN = 2;  // subgroups along N
layout(constant_id = 10) const bool LO = true; // lo halves possible (f32 activations): the
                                               // push constant use_lo then decides; false: no
                                               // Al tile in shared memory

const uint NT = 32u * WM * WN;
const uint BM = 16u * SM * WM, BN = 16u * SN * WN, RS = BK8 + PAD;
const uint NA = (BM * BK8 + NT - 1u) / NT; // A uvec4 (each of hi and lo) per thread and step
const uint NB = (BN * BK8 + NT - 1u) / NT; // B uvec4 per thread and step

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

// Ah also stages the results at the end (a 16 x 16 f32 block per subgroup: 64 uvec4), so that
// the 8 KiB they need go to the tiles: 80 of K per step fit a 128 x 128 tile.
const uint CS = WM * WN * 64u;
shared uvec4 Ah[BM * RS > CS ? BM * RS : CS];
shared uvec4 Al[LO ? BM * RS : 1u];
shared uvec4 Bt[BN * RS]; // W rows: B = W^T read column-major

#define F16MAT fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define F32MAT fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

// The 16 bits of element idx of W (any alignment), as stored.
uint w_half(uint idx) {
    uint wd = w[idx >> 1];
    return (idx & 1u) != 0u ? (wd >> 16) : (wd & 0xffffu);
}

// Eight bf16 in a uvec4 -> eight f16 bits. packHalf2x16 is the hardware's conversion of two
// floats (one instruction on NVIDIA): a bf16 that fits f16 converts exactly, or rounds to
// nearest where it lands among f16's subnormals, like f32_to_f16. Converting in software cost
// 4.5x of the product (26 against 119 TFLOP/s on an H100).
uvec4 bf16x8_to_f16(uvec4 q) {
    uvec4 o;
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        o[i] = packHalf2x16(vec2(uintBitsToFloat(q[i] << 16), uintBitsToFloat(q[i] & 0xffff0000u)));
    return o;
}

// Eight elements of row gn of W from column gk, as stored (zeros past the edges). bf16 is
// converted only as the tile is stored to shared memory: converting here would wait for the load
// at once, instead of during the products of the current step.
uvec4 load_b(uint gn, uint gk) {
    if (gn >= p.n || gk >= p.k) return uvec4(0u);
    if (p.vec_ok != 0u) // k % 8 == 0: the whole group of 8 is inside the row
        return w4[(p.w_off + gn * p.k + gk) / 8u];
    uint base = p.w_off + gn * p.k + gk;
    uint hv[8];
    [[unroll]] for (uint z = 0u; z < 8u; z++) hv[z] = gk + z < p.k ? w_half(base + z) : 0u;
    return uvec4(hv[0] | (hv[1] << 16), hv[2] | (hv[3] << 16), hv[4] | (hv[5] << 16),
                 hv[6] | (hv[7] << 16));
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = tid / 32u, lane = tid % 32u;
    uint bn = gl_WorkGroupID.x * BN, bm = gl_WorkGroupID.y * BM;
    uint sm = (sg / WN) * 16u * SM, sn = (sg % WN) * 16u * SN;
    F32MAT acc[4][4];
    [[unroll]] for (uint i = 0u; i < SM; i++)
        [[unroll]] for (uint j = 0u; j < SN; j++) acc[i][j] = F32MAT(0.0);
    uint row8 = p.k_pad / 8u; // uvec4 per split row (k_pad is a multiple of 32)
    uvec4 ra_h[NA], ra_l[NA], rb[NB];

    for (uint k0 = 0u; k0 < p.k; k0 += 8u * BK8) {
        if (k0 == 0u) { // the first step's tiles; later ones arrive during the products below
            [[unroll]] for (uint q = 0u; q < NA; q++) {
                uint e = tid + q * NT, r = e / BK8, c = e % BK8;
                uint gm = bm + r, gk8 = c;
                ra_h[q] = uvec4(0u);
                ra_l[q] = uvec4(0u);
                if (e < BM * BK8 && gm < p.m && gk8 < row8) {
                    ra_h[q] = xs4[p.hi_off / 8u + gm * row8 + gk8];
                    if (LO && p.use_lo != 0u) ra_l[q] = xs4[p.lo_off / 8u + gm * row8 + gk8];
                }
            }
            [[unroll]] for (uint q = 0u; q < NB; q++) {
                uint e = tid + q * NT, r = e / BK8, c = e % BK8;
                rb[q] = e < BN * BK8 ? load_b(bn + r, 8u * c) : uvec4(0u);
            }
        }
        barrier(); // the previous step's products have read the shared tiles
        [[unroll]] for (uint q = 0u; q < NA; q++) {
            uint e = tid + q * NT;
            if (e < BM * BK8) {
                Ah[(e / BK8) * RS + e % BK8] = ra_h[q];
                if (LO) Al[(e / BK8) * RS + e % BK8] = ra_l[q];
            }
        }
        [[unroll]] for (uint q = 0u; q < NB; q++) {
            uint e = tid + q * NT;
            if (e < BN * BK8)
                Bt[(e / BK8) * RS + e % BK8] = DTYPE == DT_BF16 ? bf16x8_to_f16(rb[q]) : rb[q];
        }
        barrier();
        uint k1 = k0 + 8u * BK8;
        if (k1 < p.k) { // the next step's tiles, in flight during the products
            [[unroll]] for (uint q = 0u; q < NA; q++) {
                uint e = tid + q * NT, r = e / BK8, c = e % BK8;
                uint gm = bm + r, gk8 = k1 / 8u + c;
                ra_h[q] = uvec4(0u);
                ra_l[q] = uvec4(0u);
                if (e < BM * BK8 && gm < p.m && gk8 < row8) {
                    ra_h[q] = xs4[p.hi_off / 8u + gm * row8 + gk8];
                    if (LO && p.use_lo != 0u) ra_l[q] = xs4[p.lo_off / 8u + gm * row8 + gk8];
                }
            }
            [[unroll]] for (uint q = 0u; q < NB; q++) {
                uint e = tid + q * NT, r = e / BK8, c = e % BK8;
                rb[q] = e < BN * BK8 ? load_b(bn + r, k1 + 8u * c) : uvec4(0u);
            }
        }
        [[unroll]] for (uint kk = 0u; kk < BK8; kk += 2u) { // 16 k = 2 uvec4
            F16MAT a[4], al[4], b[4];
            [[unroll]] for (uint i = 0u; i < SM; i++) {
                coopMatLoadNV(a[i], Ah, (sm + 16u * i) * RS + kk, RS, false);
                if (LO && p.use_lo != 0u) coopMatLoadNV(al[i], Al, (sm + 16u * i) * RS + kk, RS, false);
            }
            [[unroll]] for (uint j = 0u; j < SN; j++)
                coopMatLoadNV(b[j], Bt, (sn + 16u * j) * RS + kk, RS, true);
            [[unroll]] for (uint i = 0u; i < SM; i++)
                [[unroll]] for (uint j = 0u; j < SN; j++) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
                    if (LO && p.use_lo != 0u) acc[i][j] = coopMatMulAddNV(al[i], b[j], acc[i][j]);
                }
        }
    }
    barrier(); // every subgroup's last products have read Ah: it stages the results now
    [[unroll]] for (uint i = 0u; i < SM; i++)
        [[unroll]] for (uint j = 0u; j < SN; j++) {
            coopMatStoreNV(acc[i][j], Ah, sg * 64u, 4u, false); // rows of 16 f32 = 4 uvec4
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < 256u; e += 32u) {
                uint gm = bm + sm + 16u * i + e / 16u, gn = bn + sn + 16u * j + e % 16u;
                if (gm >= p.m || gn >= p.n) continue;
                uint o = p.row0 + gn;
                float b = p.has_bias != 0u ? bias[p.b_off + o] : 0.0;
                uint idx = p.out_off + gm * p.out_stride + o;
                float c = uintBitsToFloat(Ah[sg * 64u + e / 4u][e % 4u]);
                float v = c * scale_inv[p.scale_off + gm] + b;
                if (p.accumulate != 0u) v += out_[idx];
                out_[idx] = v;
            }
            subgroupBarrier(); // the block is read before the next one overwrites it
        }
}
