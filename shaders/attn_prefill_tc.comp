#version 450
// attn_prefill_tc (many query tokens on tensor cores, GL_NV_cooperative_matrix 16x16x16 f16 ->
// f32; an f16 K/V cache, head_dim D a multiple of 16 up to 128; else attn_prefill_rt):
// flash attention. A workgroup of 4 subgroups takes one query head and a block of BQ = 64 tokens,
// 16 per subgroup; K and V tiles of BKV = 32 positions pass through shared memory as raw f16
// bits, up to the block's causal limit. Each subgroup keeps its 16 query rows (scaled, rounded to
// f16) as D/16 A fragments and its 16 x D output as D/16 f32 accumulators. Per tile: scores
// S = Q K^T (2 accumulators), stored to shared memory, where two lanes per row apply the causal
// mask and the online softmax and write the probabilities P (f16) back; the output is rescaled
// by each row's factor (a fragment's rows are found once by loading a matrix of row numbers,
// since the element layout of a fragment is the implementation's), then O += P V. At the end
// the output leaves through shared memory, divided by the row sums. Rows past n_tok are computed
// on zero queries and not written.
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
layout(local_size_x_id = 0) in; // 128 (the host checks)
layout(constant_id = 4) const uint D = 128;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uvec4 k4[]; };
layout(binding = 2) readonly buffer V { uvec4 v4[]; };
layout(binding = 3) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_attn_prefill
    uint n_tok, n_head, n_head_kv, pos0;
    uint q_off, k_off, v_off, out_off;
    uint q_stride, kv_stride, out_stride;
    float scale;
} p;

const uint NSG = 4u, BQ = 16u * NSG, BKV = 32u;
const uint NDF = D / 16u;  // fragments along the head
const uint RS = D / 8u + 1u; // a staged row of D halves, in uvec4, padded by one
const uint PRS = BKV / 8u + 1u; // a row of P, in uvec4, padded
const uint KV_U4 = BKV * RS; // one K or V tile
const uint Q_U4 = BQ * RS;   // the query block (staged once, where the K/V tiles go later)
const uint TILE_U4 = Q_U4 > 2u * KV_U4 ? Q_U4 : 2u * KV_U4;

shared uvec4 tiles[TILE_U4];          // Q, then K at 0 and V at KV_U4
shared uvec4 ps[NSG * 16u * PRS];     // P of each subgroup (f16)
shared float sc[NSG * 16u * BKV];     // S of each subgroup; also the output's way out
shared float rowsh[NSG * 16u];        // row factors (alpha), then 1 / row sums
shared float xch[NSG * 32u];          // the two lanes of a row exchange partial results

#define F16MAT fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define F32MAT fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>

void main() {
    uint tid = gl_LocalInvocationID.x, sg = tid / 32u, lane = tid % 32u;
    uint h = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * BQ;
    uint kvh = h / (p.n_head / p.n_head_kv);
    uint n_q = min(BQ, p.n_tok - t0);
    uint kv_end = p.pos0 + t0 + n_q; // exclusive: the block's last token sees [0, kv_end)

    // the query block, scaled and rounded to f16 (zero rows past n_tok)
    for (uint e = tid; e < BQ * (D / 8u); e += 128u) {
        uint r = e / (D / 8u), c8 = e % (D / 8u);
        uvec4 w = uvec4(0u);
        if (r < n_q) {
            uint base = p.q_off + (t0 + r) * p.q_stride + h * D + 8u * c8;
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                w[i] = packHalf2x16(vec2(q[base + 2u * i], q[base + 2u * i + 1u]) * p.scale);
        }
        tiles[r * RS + c8] = w;
    }
    // the row of each element of an accumulator fragment: a matrix whose elements are their row
    for (uint e = lane; e < 256u; e += 32u) sc[sg * 16u * BKV + e] = float(e / 16u);
    barrier();
    F16MAT qf[NDF];
    [[unroll]] for (uint f = 0u; f < NDF; f++)
        coopMatLoadNV(qf[f], tiles, sg * 16u * RS + 2u * f, RS, false);
    F32MAT rows;
    coopMatLoadNV(rows, sc, sg * 16u * BKV, 16u, false);
    F32MAT o[NDF];
    [[unroll]] for (uint f = 0u; f < NDF; f++) o[f] = F32MAT(0.0);

    // softmax: lane pair (2r, 2r + 1) owns row r of this subgroup, columns 16 * (lane % 2) ..
    uint sr = lane / 2u, half_ = lane % 2u;
    uint qpos = p.pos0 + t0 + sg * 16u + sr;
    float m = -1.0 / 0.0, l = 0.0;

    for (uint kv0 = 0u; kv0 < kv_end; kv0 += BKV) {
        barrier(); // the tiles are free: Q read, or the previous tile's products done
        for (uint e = tid; e < 2u * BKV * (D / 8u); e += 128u) {
            uint is_v = e / (BKV * (D / 8u)), r = (e / (D / 8u)) % BKV, c8 = e % (D / 8u);
            uint pos = kv0 + r;
            uvec4 w = uvec4(0u);
            if (pos < kv_end) {
                uint at = ((is_v != 0u ? p.v_off : p.k_off) + pos * p.kv_stride + kvh * D) / 8u + c8;
                w = is_v != 0u ? v4[at] : k4[at];
            }
            tiles[is_v * KV_U4 + r * RS + c8] = w;
        }
        barrier();
        // S = Q K^T for the tile's two blocks of 16 positions
        [[unroll]] for (uint j = 0u; j < 2u; j++) {
            F32MAT s = F32MAT(0.0);
            [[unroll]] for (uint f = 0u; f < NDF; f++) {
                F16MAT kb;
                coopMatLoadNV(kb, tiles, j * 16u * RS + 2u * f, RS, true);
                s = coopMatMulAddNV(qf[f], kb, s);
            }
            coopMatStoreNV(s, sc, sg * 16u * BKV + 16u * j, BKV, false);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        // mask, online softmax, P
        float sv[16];
        float mx = m;
        [[unroll]] for (uint c = 0u; c < 16u; c++) {
            uint col = 16u * half_ + c, kpos = kv0 + col;
            float x = sc[(sg * 16u + sr) * BKV + col];
            sv[c] = kpos <= qpos && kpos < kv_end ? x : -1.0 / 0.0;
            mx = max(mx, sv[c]);
        }
        xch[sg * 32u + lane] = mx;
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        mx = max(mx, xch[sg * 32u + (lane ^ 1u)]);
        float alpha = mx == -1.0 / 0.0 ? 1.0 : exp(m - mx);
        float sum = 0.0;
        uint pw[8];
        [[unroll]] for (uint c = 0u; c < 16u; c += 2u) {
            float p0 = mx == -1.0 / 0.0 ? 0.0 : exp(sv[c] - mx);
            float p1 = mx == -1.0 / 0.0 ? 0.0 : exp(sv[c + 1u] - mx);
            sum += p0 + p1;
            pw[c / 2u] = packHalf2x16(vec2(p0, p1));
        }
        subgroupBarrier(); // both lanes have read xch
        xch[sg * 32u + lane] = sum;
        ps[(sg * 16u + sr) * PRS + 2u * half_] = uvec4(pw[0], pw[1], pw[2], pw[3]);
        ps[(sg * 16u + sr) * PRS + 2u * half_ + 1u] = uvec4(pw[4], pw[5], pw[6], pw[7]);
        if (half_ == 0u) rowsh[sg * 16u + sr] = alpha;
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        sum += xch[sg * 32u + (lane ^ 1u)];
        l = l * alpha + sum;
        m = mx;
        // O = alpha O + P V
        [[unroll]] for (uint f = 0u; f < NDF; f++)
            for (uint i = 0u; i < o[f].length(); i++) o[f][i] *= rowsh[sg * 16u + uint(rows[i])];
        F16MAT pf[2];
        [[unroll]] for (uint j = 0u; j < 2u; j++)
            coopMatLoadNV(pf[j], ps, sg * 16u * PRS + 2u * j, PRS, false);
        [[unroll]] for (uint f = 0u; f < NDF; f++)
            [[unroll]] for (uint j = 0u; j < 2u; j++) {
                F16MAT vb;
                coopMatLoadNV(vb, tiles, KV_U4 + j * 16u * RS + 2u * f, RS, false);
                o[f] = coopMatMulAddNV(pf[j], vb, o[f]);
            }
        subgroupBarrier(); // rowsh and ps are rewritten by the next tile
    }

    // out = O / l, a 16 x 16 block at a time through this subgroup's part of sc
    if (half_ == 0u) rowsh[sg * 16u + sr] = l > 0.0 ? 1.0 / l : 0.0;
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    [[unroll]] for (uint f = 0u; f < NDF; f++) {
        coopMatStoreNV(o[f], sc, sg * 16u * BKV, 16u, false);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = lane; e < 256u; e += 32u) {
            uint r = e / 16u, c = e % 16u, t = t0 + sg * 16u + r;
            if (t < p.n_tok)
                out_[p.out_off + t * p.out_stride + h * D + 16u * f + c] =
                    sc[sg * 16u * BKV + e] * rowsh[sg * 16u + r];
        }
        subgroupBarrier(); // read before the next block overwrites it
    }
}
