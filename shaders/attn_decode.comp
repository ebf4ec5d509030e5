#version 450
// attn_decode (few query tokens, flash-decoding): the causal positions [0, pos0 + t] of token t
// are cut into chunks of chunk_len; one workgroup takes (kv head, group of GB query heads that
// share it, chunk, token), walks its chunk WG positions at a time with an online softmax, and
// writes its partial state (unnormalized output, max, sum) for attn_combine. K and V are read
// once per kv head, not once per query head; no score matrix exists outside shared memory.
// Thread j scores position p0 + j (a whole K row); for the V product thread d owns output
// dimensions d, d + WG, ... . pair_ok: K rows 16-byte aligned (2: uvec4 loads) or, for 16-bit
// types, starting on even elements (1: word loads).
#define NEED_REDUCE
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint D = 128; // head_dim
layout(constant_id = 5) const uint GB = 1;  // query heads per workgroup
const uint DPT = (D + WG - 1u) / WG;        // output dimensions per thread

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uint k[]; };
layout(binding = 1) readonly buffer K4 { uvec4 k4[]; };
layout(binding = 2) readonly buffer V { uint v[]; };
layout(binding = 3) writeonly buffer Part { float part[]; };

layout(push_constant) uniform Push { // sym_vk_push_attn_decode
    uint n_tok, n_head, n_head_kv, pos0;
    uint q_off, k_off, v_off, part_off;
    uint q_stride, kv_stride, chunk_len, n_chunks, n_hgroups, pair_ok, c_base;
    float scale;
} p;

shared float qs[GB * D];
shared float ps[GB * WG];

float kv_at(uint e) { return elem_in_word(k[word_of(e, DTYPE)], e, DTYPE); }
float vv_at(uint e) { return elem_in_word(v[word_of(e, DTYPE)], e, DTYPE); }

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint kvh = gl_WorkGroupID.x / p.n_hgroups, hg = gl_WorkGroupID.x % p.n_hgroups;
    uint c = p.c_base + gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    uint pos_base = p.c_base * p.chunk_len; // the first position of the bound K/V slice
    uint group = p.n_head / p.n_head_kv;
    uint g0 = hg * GB;                       // first query head of this workgroup, in the group
    uint n_g = min(GB, group - g0);
    uint n_pos = p.pos0 + t + 1u;
    uint start = c * p.chunk_len, end = min(start + p.chunk_len, n_pos);
    uint part_stride = D + 2u;

    for (uint e = tid; e < GB * D; e += WG) {
        uint g = e / D, d = e % D;
        qs[e] = g < n_g ? q[p.q_off + t * p.q_stride + (kvh * group + g0 + g) * D + d] * p.scale : 0.0;
    }
    float m[GB], l[GB], acc[GB * DPT];
    [[unroll]] for (uint g = 0u; g < GB; g++) {
        m[g] = -1.0 / 0.0;
        l[g] = 0.0;
        [[unroll]] for (uint i = 0u; i < DPT; i++) acc[g * DPT + i] = 0.0;
    }
    barrier();

    for (uint p0 = start; p0 < end; p0 += WG) { // uniform: start/end are per workgroup
        uint pos = p0 + tid;
        bool valid = pos < end;
        float s[GB];
        [[unroll]] for (uint g = 0u; g < GB; g++) s[g] = 0.0;
        if (valid) {
            uint kb = p.k_off + (pos - pos_base) * p.kv_stride + kvh * D;
            if (p.pair_ok == 2u && DTYPE == DT_F32) { // 16-byte rows: 4 f32 per load
                for (uint d = 0u; d < D; d += 4u) {
                    vec4 kk = uintBitsToFloat(k4[(kb + d) >> 2]);
                    [[unroll]] for (uint g = 0u; g < GB; g++)
                        s[g] += dot(vec4(qs[g * D + d], qs[g * D + d + 1u], qs[g * D + d + 2u],
                                         qs[g * D + d + 3u]), kk);
                }
            } else if (p.pair_ok == 2u) { // 8 halves per load
                for (uint d = 0u; d < D; d += 8u) {
                    vec4 ka, kc;
                    unpack8(k4[(kb + d) >> 3], DTYPE, ka, kc);
                    [[unroll]] for (uint g = 0u; g < GB; g++) {
                        uint qb = g * D + d;
                        s[g] += dot(vec4(qs[qb], qs[qb + 1u], qs[qb + 2u], qs[qb + 3u]), ka) +
                                dot(vec4(qs[qb + 4u], qs[qb + 5u], qs[qb + 6u], qs[qb + 7u]), kc);
                    }
                }
            } else if (DTYPE != DT_F32 && p.pair_ok != 0u) {
                for (uint d = 0u; d + 1u < D; d += 2u) {
                    vec2 kk = pair_of_word(k[(kb + d) >> 1], DTYPE);
                    [[unroll]] for (uint g = 0u; g < GB; g++)
                        s[g] += qs[g * D + d] * kk.x + qs[g * D + d + 1u] * kk.y;
                }
                if ((D & 1u) != 0u) {
                    float kk = kv_at(kb + D - 1u);
                    [[unroll]] for (uint g = 0u; g < GB; g++) s[g] += qs[g * D + D - 1u] * kk;
                }
            } else {
                for (uint d = 0u; d < D; d++) {
                    float kk = kv_at(kb + d);
                    [[unroll]] for (uint g = 0u; g < GB; g++) s[g] += qs[g * D + d] * kk;
                }
            }
        }
        float alpha[GB];
        [[unroll]] for (uint g = 0u; g < GB; g++) {
            float mx = wg_max(valid ? s[g] : -1.0 / 0.0);
            float m_new = max(m[g], mx); // finite: position p0 is always valid
            alpha[g] = exp(m[g] - m_new);
            float pr = valid ? exp(s[g] - m_new) : 0.0;
            ps[g * WG + tid] = pr;
            l[g] = l[g] * alpha[g] + wg_sum(pr);
            m[g] = m_new;
        }
        barrier(); // ps complete
        uint n_here = min(WG, end - p0);
        [[unroll]] for (uint i = 0u; i < DPT; i++) {
            uint d = tid + i * WG;
            if (d >= D) break;
            float o[GB];
            [[unroll]] for (uint g = 0u; g < GB; g++) o[g] = acc[g * DPT + i] * alpha[g];
            for (uint j = 0u; j < n_here; j++) {
                float vv = vv_at(p.v_off + (p0 + j - pos_base) * p.kv_stride + kvh * D + d);
                [[unroll]] for (uint g = 0u; g < GB; g++) o[g] += ps[g * WG + j] * vv;
            }
            [[unroll]] for (uint g = 0u; g < GB; g++) acc[g * DPT + i] = o[g];
        }
        barrier(); // ps is rewritten by the next step
    }

    [[unroll]] for (uint g = 0u; g < GB; g++) {
        if (g >= n_g) break;
        uint h = kvh * group + g0 + g;
        uint base = p.part_off + ((t * p.n_head + h) * p.n_chunks + c) * part_stride;
        [[unroll]] for (uint i = 0u; i < DPT; i++) {
            uint d = tid + i * WG;
            if (d < D) part[base + d] = acc[g * DPT + i];
        }
        if (tid == 0u) {
            part[base + D] = m[g]; // -inf for an empty chunk
            part[base + D + 1u] = l[g];
        }
    }
}
