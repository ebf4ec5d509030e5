#version 450
// attn_prefill (many query tokens, flash-attention style): one workgroup per (query head, block
// of BQ tokens). K then V tiles of BKV positions pass through shared memory up to the block's
// causal limit; scores live only in a BQ x BKV tile; an online softmax rescales the BQ x D output
// accumulator (in shared memory) as the running maximum grows. Positions after a token's own
// (pos0 + t) are masked. Tile sizes come from the host so that everything fits shared memory.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint D = 128;
layout(constant_id = 5) const uint BQ = 16;
layout(constant_id = 6) const uint BKV = 16;

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

shared float qs[BQ * D];
shared float kvs[BKV * D];
shared float ss[BQ * BKV];
shared float os[BQ * D];
shared float row_m[BQ], row_l[BQ], row_a[BQ];

void load_tile(uint kv0, uint kv_end, uint kvh, bool is_v) {
    for (uint e = gl_LocalInvocationID.x; e < BKV * D; e += WG) {
        uint j = e / D, d = e % D;
        uint pos = kv0 + j;
        float val = 0.0;
        if (pos < kv_end) {
            uint idx = (is_v ? p.v_off : p.k_off) + pos * p.kv_stride + kvh * D + d;
            uint wd = is_v ? v[word_of(idx, DTYPE)] : k[word_of(idx, DTYPE)];
            val = elem_in_word(wd, idx, DTYPE);
        }
        kvs[e] = val;
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.x, t0 = gl_WorkGroupID.y * BQ;
    uint kvh = h / (p.n_head / p.n_head_kv);
    uint n_q = min(BQ, p.n_tok - t0);
    uint kv_end = p.pos0 + t0 + n_q; // exclusive: the last token of the block sees [0, kv_end)

    for (uint e = tid; e < BQ * D; e += WG) {
        uint r = e / D, d = e % D;
        qs[e] = r < n_q ? q[p.q_off + (t0 + r) * p.q_stride + h * D + d] * p.scale : 0.0;
        os[e] = 0.0;
    }
    for (uint r = tid; r < BQ; r += WG) {
        row_m[r] = -1.0 / 0.0;
        row_l[r] = 0.0;
    }

    for (uint kv0 = 0u; kv0 < kv_end; kv0 += BKV) {
        barrier(); // kvs free (previous V tile consumed), qs/os/rows initialized
        load_tile(kv0, kv_end, kvh, false);
        barrier();
        for (uint e = tid; e < BQ * BKV; e += WG) {
            uint r = e / BKV, j = e % BKV;
            uint pos = kv0 + j;
            float s = -1.0 / 0.0;
            if (r < n_q && pos <= p.pos0 + t0 + r) {
                s = 0.0;
                for (uint d = 0u; d < D; d++) s += qs[r * D + d] * kvs[j * D + d];
            }
            ss[e] = s;
        }
        barrier(); // scores complete, K tile no longer needed
        for (uint r = tid; r < BQ; r += WG) {
            float m_old = row_m[r], mx = -1.0 / 0.0;
            for (uint j = 0u; j < BKV; j++) mx = max(mx, ss[r * BKV + j]);
            float m_new = max(m_old, mx);
            float alpha = 1.0, sum = 0.0;
            if (m_new != -1.0 / 0.0) { // rows past n_tok stay empty
                alpha = exp(m_old - m_new);
                for (uint j = 0u; j < BKV; j++) {
                    float pr = exp(ss[r * BKV + j] - m_new);
                    ss[r * BKV + j] = pr;
                    sum += pr;
                }
            } else {
                for (uint j = 0u; j < BKV; j++) ss[r * BKV + j] = 0.0;
            }
            row_m[r] = m_new;
            row_l[r] = row_l[r] * alpha + sum;
            row_a[r] = alpha;
        }
        load_tile(kv0, kv_end, kvh, true);
        barrier();
        for (uint e = tid; e < BQ * D; e += WG) {
            uint r = e / D, d = e % D;
            float o = os[e] * row_a[r];
            for (uint j = 0u; j < BKV; j++) o += ss[r * BKV + j] * kvs[j * D + d];
            os[e] = o;
        }
    }
    barrier();
    for (uint e = tid; e < BQ * D; e += WG) {
        uint r = e / D, d = e % D;
        if (r < n_q) out_[p.out_off + (t0 + r) * p.out_stride + h * D + d] = os[e] / row_l[r];
    }
}
