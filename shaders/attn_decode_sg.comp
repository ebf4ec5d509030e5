#version 450
// attn_decode_sg (few query tokens, devices with subgroup arithmetic; one dispatch): the causal
// positions [0, pos0 + t] of token t are cut into chunks of chunk_len; a workgroup takes (kv
// head, group of GB query heads sharing it, chunk, token). Each subgroup walks its share of the
// chunk PB positions at a time: its lanes hold DPL consecutive dimensions of the head (K and V
// rows are read coalesced, once for all GB heads), scores meet in subgroupAdd, and an online
// softmax keeps (max, sum, output) per head in registers. The subgroups' states are joined in
// shared memory. With one chunk that is the output; else each workgroup writes its partial
// state, and the last workgroup of its (kv head, head group, token) to finish — counted with an
// atomic, reset by that workgroup — joins the chunks into the output (the attn_combine step,
// without a second dispatch). K/V rows past a token's position are never read.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint D = 128; // head_dim
layout(constant_id = 5) const uint GB = 1;  // query heads per workgroup
layout(constant_id = 6) const uint SGS = 32; // the device's subgroup size (SPIR-V 1.5: fixed)
const uint NSG = WG / SGS;
const uint DPL = (D + SGS - 1u) / SGS; // dimensions per lane
const uint PB = 4u;                    // positions per subgroup step
const uint MAX_CHUNKS = 16u;           // chunks of one (kv head, head group, token): ops_attn.c

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { uint k[]; };
layout(binding = 2) readonly buffer V { uint v[]; };
layout(binding = 3) writeonly buffer Out { float out_[]; };
layout(binding = 4) coherent buffer Part { float part[]; };
layout(binding = 5) coherent buffer Cnt { uint cnt[]; };

layout(push_constant) uniform Push { // sym_vk_push_attn_decode_sg
    uint n_tok, n_head, n_head_kv, pos0;
    uint q_off, k_off, v_off, out_off, part_off, cnt_off;
    uint q_stride, kv_stride, out_stride, chunk_len, n_chunks, n_hgroups;
    float scale;
} p;

shared float sh_o[NSG * GB * D];
shared float sh_m[NSG * GB], sh_l[NSG * GB];
shared bool sh_last;

float k_at(uint e) { return elem_in_word(k[word_of(e, DTYPE)], e, DTYPE); }
float v_at(uint e) { return elem_in_word(v[word_of(e, DTYPE)], e, DTYPE); }

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    uint kvh = gl_WorkGroupID.x / p.n_hgroups, hg = gl_WorkGroupID.x % p.n_hgroups;
    uint c = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    uint group = p.n_head / p.n_head_kv;
    uint g0 = hg * GB, n_g = min(GB, group - g0);
    uint n_pos = p.pos0 + t + 1u;
    uint start = c * p.chunk_len, end = min(start + p.chunk_len, n_pos);
    uint d0 = lane * DPL; // this lane's first dimension

    float qv[GB * DPL], o[GB * DPL], m[GB], l[GB];
    // (the host keeps chunk_len <= MAX_CHUNKS chunks' worth; see ops_attn.c)
    [[unroll]] for (uint g = 0u; g < GB; g++) {
        m[g] = -1.0 / 0.0;
        l[g] = 0.0;
        uint qb = p.q_off + t * p.q_stride + (kvh * group + g0 + min(g, n_g - 1u)) * D;
        [[unroll]] for (uint i = 0u; i < DPL; i++) {
            o[g * DPL + i] = 0.0;
            qv[g * DPL + i] = g < n_g && d0 + i < D ? q[qb + d0 + i] * p.scale : 0.0;
        }
    }

    // K and V rows of a step's PB positions (past the end: the last valid row, finite, weighing
    // 0); the next step's rows are loaded before the current step is used (software pipelining)
    float kk[PB * DPL], vv[PB * DPL], kn[PB * DPL], vn[PB * DPL];
    uint p0 = start + sg * PB;
    [[unroll]] for (uint j = 0u; j < PB; j++) {
        uint row = min(min(p0 + j, end - 1u), n_pos - 1u) * p.kv_stride + kvh * D + d0;
        [[unroll]] for (uint i = 0u; i < DPL; i++) {
            kn[j * DPL + i] = p0 < end && d0 + i < D ? k_at(p.k_off + row + i) : 0.0;
            vn[j * DPL + i] = p0 < end && d0 + i < D ? v_at(p.v_off + row + i) : 0.0;
        }
    }
    for (; p0 < end; p0 += NSG * PB) { // uniform in the subgroup
        [[unroll]] for (uint i = 0u; i < PB * DPL; i++) {
            kk[i] = kn[i];
            vv[i] = vn[i];
        }
        uint p1 = p0 + NSG * PB;
        if (p1 < end) {
            [[unroll]] for (uint j = 0u; j < PB; j++) {
                uint row = min(p1 + j, end - 1u) * p.kv_stride + kvh * D + d0;
                [[unroll]] for (uint i = 0u; i < DPL; i++) {
                    kn[j * DPL + i] = d0 + i < D ? k_at(p.k_off + row + i) : 0.0;
                    vn[j * DPL + i] = d0 + i < D ? v_at(p.v_off + row + i) : 0.0;
                }
            }
        }
        float s[PB * GB];
        [[unroll]] for (uint j = 0u; j < PB; j++)
            [[unroll]] for (uint g = 0u; g < GB; g++) {
                float d = 0.0;
                [[unroll]] for (uint i = 0u; i < DPL; i++) d += qv[g * DPL + i] * kk[j * DPL + i];
                s[j * GB + g] = subgroupAdd(d);
            }
        [[unroll]] for (uint g = 0u; g < GB; g++) {
            float mx = m[g];
            [[unroll]] for (uint j = 0u; j < PB; j++)
                if (p0 + j < end) mx = max(mx, s[j * GB + g]);
            float alpha = exp(m[g] - mx); // 0 while m is -inf
            l[g] *= alpha;
            [[unroll]] for (uint i = 0u; i < DPL; i++) o[g * DPL + i] *= alpha;
            [[unroll]] for (uint j = 0u; j < PB; j++) {
                float pr = p0 + j < end ? exp(s[j * GB + g] - mx) : 0.0;
                l[g] += pr;
                [[unroll]] for (uint i = 0u; i < DPL; i++) o[g * DPL + i] += pr * vv[j * DPL + i];
            }
            m[g] = mx;
        }
    }

    // join the subgroups' states
    [[unroll]] for (uint g = 0u; g < GB; g++) {
        if (lane == 0u) {
            sh_m[sg * GB + g] = m[g];
            sh_l[sg * GB + g] = l[g];
        }
        [[unroll]] for (uint i = 0u; i < DPL; i++)
            if (d0 + i < D) sh_o[(sg * GB + g) * D + d0 + i] = o[g * DPL + i];
    }
    barrier();
    bool single = p.n_chunks == 1u;
    uint part_stride = D + 2u;
    for (uint e = tid; e < n_g * D; e += WG) {
        uint g = e / D, d = e % D;
        float M = -1.0 / 0.0;
        for (uint s2 = 0u; s2 < NSG; s2++) M = max(M, sh_m[s2 * GB + g]);
        float L = 0.0, O = 0.0;
        if (M != -1.0 / 0.0) {
            for (uint s2 = 0u; s2 < NSG; s2++) {
                float w = exp(sh_m[s2 * GB + g] - M);
                L += w * sh_l[s2 * GB + g];
                O += w * sh_o[(s2 * GB + g) * D + d];
            }
        }
        uint h = kvh * group + g0 + g;
        if (single) {
            out_[p.out_off + t * p.out_stride + h * D + d] = O / L;
        } else {
            uint base = p.part_off + ((t * p.n_head + h) * p.n_chunks + c) * part_stride;
            part[base + d] = O;
            if (d == 0u) {
                part[base + D] = M; // -inf for an empty chunk
                part[base + D + 1u] = L;
            }
        }
    }
    if (single) return; // uniform
    memoryBarrierBuffer();
    barrier();
    uint ci = p.cnt_off + (t * p.n_head_kv + kvh) * p.n_hgroups + hg;
    if (tid == 0u) sh_last = atomicAdd(cnt[ci], 1u) == p.n_chunks - 1u;
    barrier();
    if (!sh_last) return; // uniform
    memoryBarrierBuffer();
    // chunk 0 always holds position 0, so the maximum is finite; empty chunks weigh 0. At most
    // MAX_CHUNKS chunks, unrolled so that their loads are in flight together.
    for (uint e = tid; e < n_g * D; e += WG) {
        uint g = e / D, d = e % D;
        uint h = kvh * group + g0 + g;
        uint base = p.part_off + (t * p.n_head + h) * p.n_chunks * part_stride;
        float mc[MAX_CHUNKS], lc[MAX_CHUNKS], oc[MAX_CHUNKS];
        [[unroll]] for (uint cc = 0u; cc < MAX_CHUNKS; cc++) {
            uint b = base + min(cc, p.n_chunks - 1u) * part_stride;
            mc[cc] = cc < p.n_chunks ? part[b + D] : -1.0 / 0.0;
            lc[cc] = part[b + D + 1u];
            oc[cc] = part[b + d];
        }
        float M = -1.0 / 0.0;
        [[unroll]] for (uint cc = 0u; cc < MAX_CHUNKS; cc++) M = max(M, mc[cc]);
        float L = 0.0, O = 0.0;
        [[unroll]] for (uint cc = 0u; cc < MAX_CHUNKS; cc++) {
            if (mc[cc] == -1.0 / 0.0) continue;
            float w = exp(mc[cc] - M);
            L += w * lc[cc];
            O += w * oc[cc];
        }
        out_[p.out_off + t * p.out_stride + h * D + d] = O / L;
    }
    if (tid == 0u) cnt[ci] = 0u; // ready for the next dispatch
}
