#version 450
// attn_prefill_rt (many query tokens, head_dim D a multiple of 4 up to 128; else attn_prefill):
// flash attention tiled in registers. A workgroup of 128 invocations takes one query head and a
// block of BQ = 32 tokens; K then V tiles of BKV = 32 positions pass through shared memory (as
// f32) up to the block's causal limit. Scores: each invocation computes a 2 x 4 block of the
// 32 x 32 score tile (rows 2rg, 2rg + 1; positions jg + 8i), reading float4s of Q and K rows
// (rows padded by 4 floats so that the 8 rows a subgroup reads at once lie in distinct banks).
// Online softmax: 4 invocations per row each read the row, and write their 8 probabilities back.
// Output: each invocation keeps 2 rows x D/8 dimensions (float4 c + 8e) of the output in
// registers, rescaled as the row maximum grows. Positions after a token's own (pos0 + t) are
// masked; rows past n_tok stay empty and are not written.
#include "common.glsl"
layout(local_size_x_id = 0) in; // 128 (the host checks)
layout(constant_id = 4) const uint D = 128;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uint k[]; };
layout(binding = 2) readonly buffer V { uint v[]; };
layout(binding = 3) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_attn_prefill
    uint n_tok, n_head, n_head_kv, pos0;
    uint q_off, k_off, v_off, out_off;
    uint q_stride, kv_stride, out_stride;
    float scale;
} p;

const uint BQ = 32u, BKV = 32u;
const uint D4 = D / 4u;        // float4 per row
const uint DP4 = D4 + 1u;      // padded row, in float4
const uint SP = BKV + 1u;      // padded score row
const uint NE = (D4 + 7u) / 8u; // float4 of the output per row and invocation

shared vec4 qs[BQ * DP4];
shared vec4 kvs[BKV * DP4];
shared float ss[BQ * SP];
shared float row_m[BQ], row_l[BQ], row_a[BQ];

void load_tile(uint kv0, uint kv_end, uint kvh, bool is_v) {
    for (uint e = gl_LocalInvocationID.x; e < BKV * D; e += 128u) {
        uint j = e / D, d = e % D;
        uint pos = kv0 + j;
        float val = 0.0;
        if (pos < kv_end) {
            uint idx = (is_v ? p.v_off : p.k_off) + pos * p.kv_stride + kvh * D + d;
            uint wd = is_v ? v[word_of(idx, DTYPE)] : k[word_of(idx, DTYPE)];
            val = elem_in_word(wd, idx, DTYPE);
        }
        kvs[j * DP4 + d / 4u][d % 4u] = val;
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * BQ;
    uint kvh = h / (p.n_head / p.n_head_kv);
    uint n_q = min(BQ, p.n_tok - t0);
    uint kv_end = p.pos0 + t0 + n_q; // exclusive: the block's last token sees [0, kv_end)
    uint rg = tid / 8u, jg = tid % 8u; // rows 2rg, 2rg + 1; positions (scores) jg + 8i
    uint sr = tid / 4u, sq = tid % 4u; // softmax: row sr, probabilities 8sq .. 8sq + 7

    for (uint e = tid; e < BQ * D; e += 128u) {
        uint r = e / D, d = e % D;
        qs[r * DP4 + d / 4u][d % 4u] =
            r < n_q ? q[p.q_off + (t0 + r) * p.q_stride + h * D + d] * p.scale : 0.0;
    }
    if (tid < BQ) {
        row_m[tid] = -1.0 / 0.0;
        row_l[tid] = 0.0;
    }
    vec4 o0[NE], o1[NE];
    [[unroll]] for (uint e = 0u; e < NE; e++) {
        o0[e] = vec4(0.0);
        o1[e] = vec4(0.0);
    }

    for (uint kv0 = 0u; kv0 < kv_end; kv0 += BKV) {
        barrier(); // kvs free (the previous V tile consumed); qs and the rows initialized
        load_tile(kv0, kv_end, kvh, false);
        barrier();
        // scores: rows 2rg, 2rg + 1 against positions jg + 8i
        float s[8];
        [[unroll]] for (uint i = 0u; i < 8u; i++) s[i] = 0.0;
        for (uint d4 = 0u; d4 < D4; d4++) {
            vec4 qa = qs[(2u * rg) * DP4 + d4], qb = qs[(2u * rg + 1u) * DP4 + d4];
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                vec4 kk = kvs[(jg + 8u * i) * DP4 + d4];
                s[i] += dot(qa, kk);
                s[4u + i] += dot(qb, kk);
            }
        }
        [[unroll]] for (uint a = 0u; a < 2u; a++) {
            uint r = 2u * rg + a;
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                uint j = jg + 8u * i, pos = kv0 + j;
                bool ok = r < n_q && pos <= p.pos0 + t0 + r;
                ss[r * SP + j] = ok ? s[a * 4u + i] : -1.0 / 0.0;
            }
        }
        barrier(); // scores complete; the K tile no longer needed
        // online softmax of row sr: every one of its 4 invocations reads the whole row
        float row[BKV];
        float mx = -1.0 / 0.0;
        [[unroll]] for (uint j = 0u; j < BKV; j++) {
            row[j] = ss[sr * SP + j];
            mx = max(mx, row[j]);
        }
        float m_old = row_m[sr], m_new = max(m_old, mx);
        barrier(); // the row is read (by all 4) and row_m too, before they are written
        bool live = m_new != -1.0 / 0.0; // rows past n_tok stay empty
        float sum = 0.0;
        [[unroll]] for (uint j = 0u; j < BKV; j++) {
            float pr = live ? exp(row[j] - m_new) : 0.0;
            sum += pr;
            if (j / 8u == sq) ss[sr * SP + j] = pr;
        }
        if (sq == 0u) {
            float alpha = live ? exp(m_old - m_new) : 1.0;
            row_m[sr] = m_new;
            row_l[sr] = row_l[sr] * alpha + sum;
            row_a[sr] = alpha;
        }
        load_tile(kv0, kv_end, kvh, true);
        barrier();
        // output: rows 2rg, 2rg + 1, float4 jg + 8e of the dimensions
        float a0 = row_a[2u * rg], a1 = row_a[2u * rg + 1u];
        [[unroll]] for (uint e = 0u; e < NE; e++) {
            o0[e] *= a0;
            o1[e] *= a1;
        }
        for (uint j = 0u; j < BKV; j++) {
            float p0 = ss[(2u * rg) * SP + j], p1 = ss[(2u * rg + 1u) * SP + j];
            [[unroll]] for (uint e = 0u; e < NE; e++) {
                uint c4 = jg + 8u * e;
                if (c4 < D4) {
                    vec4 vv = kvs[j * DP4 + c4];
                    o0[e] += p0 * vv;
                    o1[e] += p1 * vv;
                }
            }
        }
    }
    barrier();
    [[unroll]] for (uint a = 0u; a < 2u; a++) {
        uint r = 2u * rg + a;
        if (r >= n_q) continue;
        float inv = 1.0 / row_l[r];
        [[unroll]] for (uint e = 0u; e < NE; e++) {
            uint c4 = jg + 8u * e;
            if (c4 >= D4) continue;
            vec4 val = (a == 0u ? o0[e] : o1[e]) * inv;
            uint base = p.out_off + (t0 + r) * p.out_stride + h * D + 4u * c4;
            out_[base] = val.x;
            out_[base + 1u] = val.y;
            out_[base + 2u] = val.z;
            out_[base + 3u] = val.w;
        }
    }
}
