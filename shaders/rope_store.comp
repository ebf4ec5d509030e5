#version 450
// rope_store (prefill attn_in): q rotated in place; k rotated and v copied into their cache rows
// [pos0, pos0 + n_tok), converted to the cache's type (DTYPE) as store_rows does. One dispatch
// instead of rope(q), rope(k), store_rows(k), store_rows(v). One thread per token and quad: two
// RoPE pairs of a q or k head whose four elements fill two whole 32-bit words of a 16-bit cache
// (normal: elements 4m..4m+3; neox: 2m, 2m+1 and the same plus head_dim/2), or four
// consecutive elements of v. Needs head_dim % 4 == 0. Angles as rope.comp.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) buffer Q { float q[]; };
layout(binding = 1) readonly buffer K { float k[]; };
layout(binding = 2) readonly buffer V { float v[]; };
layout(binding = 3) buffer KC { uint kc[]; };
layout(binding = 4) buffer VC { uint vc[]; };
layout(binding = 5) readonly buffer Freq { float freq[]; };

layout(push_constant) uniform Push { // sym_vk_push_rope_store
    uint n_tok, n_head, n_head_kv, head_dim, q_stride, kv_dim;
    int pos0;
    float freq_scale;
    uint neox, q_off, k_off, v_off, kc_off, vc_off, freq_off;
} p;

// Elements e and e + 1 (e even) of a cache window at element offset off (even).
void store2(bool to_k, uint e, float a, float b) {
    if (DTYPE == DT_F32) {
        if (to_k) {
            kc[p.kc_off + e] = floatBitsToUint(a);
            kc[p.kc_off + e + 1u] = floatBitsToUint(b);
        } else {
            vc[p.vc_off + e] = floatBitsToUint(a);
            vc[p.vc_off + e + 1u] = floatBitsToUint(b);
        }
        return;
    }
    uint w = f32_to_type(a, DTYPE) | (f32_to_type(b, DTYPE) << 16);
    if (to_k)
        kc[(p.kc_off + e) >> 1] = w;
    else
        vc[(p.vc_off + e) >> 1] = w;
}

void main() {
    uint half_ = p.head_dim / 2u, quads = half_ / 2u;
    uint qi = p.n_head * quads, ki = p.n_head_kv * quads, vi = p.kv_dim / 4u;
    uint per = qi + ki + vi;
    uint idx = lin_group() * WG + gl_LocalInvocationID.x;
    if (idx >= p.n_tok * per) return;
    uint t = idx / per, r = idx % per;
    if (r >= qi + ki) { // v: four elements
        uint e = 4u * (r - qi - ki), src = p.v_off + t * p.kv_dim + e;
        store2(false, t * p.kv_dim + e, v[src], v[src + 1u]);
        store2(false, t * p.kv_dim + e + 2u, v[src + 2u], v[src + 3u]);
        return;
    }
    bool is_k = r >= qi;
    uint rr = is_k ? r - qi : r, h = rr / quads, m = rr % quads;
    // the quad's elements within the head: pairs (a, a1) with freq 2m, (b, b1) with freq 2m + 1
    uint e0, e1, e2, e3;
    if (p.neox != 0u) {
        e0 = 2u * m; e1 = e0 + half_; e2 = e0 + 1u; e3 = e1 + 1u;
    } else {
        e0 = 4u * m; e1 = e0 + 1u; e2 = e0 + 2u; e3 = e0 + 3u;
    }
    uint base = is_k ? p.k_off + t * p.kv_dim + h * p.head_dim
                     : p.q_off + t * p.q_stride + h * p.head_dim;
    float x0 = is_k ? k[base + e0] : q[base + e0], x1 = is_k ? k[base + e1] : q[base + e1];
    float x2 = is_k ? k[base + e2] : q[base + e2], x3 = is_k ? k[base + e3] : q[base + e3];
    vec2 cs0 = rope_cos_sin(p.pos0 + int(t), p.freq_scale, freq[p.freq_off + 2u * m]);
    vec2 cs1 = rope_cos_sin(p.pos0 + int(t), p.freq_scale, freq[p.freq_off + 2u * m + 1u]);
    float y0 = x0 * cs0.x - x1 * cs0.y, y1 = x0 * cs0.y + x1 * cs0.x;
    float y2 = x2 * cs1.x - x3 * cs1.y, y3 = x2 * cs1.y + x3 * cs1.x;
    if (!is_k) {
        q[base + e0] = y0;
        q[base + e1] = y1;
        q[base + e2] = y2;
        q[base + e3] = y3;
        return;
    }
    uint c = t * p.kv_dim + h * p.head_dim;
    if (p.neox != 0u) { // words (e0, e2) and (e1, e3)
        store2(true, c + e0, y0, y2);
        store2(true, c + e1, y1, y3);
    } else { // words (e0, e1) and (e2, e3)
        store2(true, c + e0, y0, y1);
        store2(true, c + e2, y2, y3);
    }
}
