#version 450
// mv_qkv (the attention block's input for n_tok <= 8, devices with subgroup arithmetic):
// xn = rmsnorm(x, g, eps) on the fly (NORM); q, k, v = xn Wq^T, xn Wk^T, xn Wv^T (+ biases);
// RoPE on q and k (rope.comp's angle and rotation); q -> q_out (f32), k and v -> the caches at
// their token's row, converted to CDTYPE as store_rows.comp does. A group of KS subgroups per
// RoPE pair of rows (two dot rows of mv.glsl; V rows are paired the same way), RPW pairs per
// workgroup.
// Each workgroup takes pairs of one matrix (the loop is included once per matrix).
// 16-bit cache elements are written with atomicAnd/atomicOr on their word: the two halves of a
// word may belong to pairs of different subgroups (neox layout).
#include "common.glsl"
layout(local_size_x_id = 0) in;
const uint NDR = 2u;
layout(constant_id = 5) const uint RPW = 8;    // pairs per workgroup
layout(constant_id = 7) const uint CDTYPE = 1; // cache type

layout(binding = 2) readonly buffer Wq { uint wq[]; };
layout(binding = 2) readonly buffer Wq4 { uvec4 wq4[]; };
layout(binding = 3) readonly buffer Wk { uint wk[]; };
layout(binding = 3) readonly buffer Wk4 { uvec4 wk4[]; };
layout(binding = 4) readonly buffer Wv { uint wv[]; };
layout(binding = 4) readonly buffer Wv4 { uvec4 wv4[]; };
layout(binding = 5) readonly buffer Bq { float bq[]; };
layout(binding = 6) readonly buffer Bk { float bk[]; };
layout(binding = 7) readonly buffer Bv { float bv[]; };
layout(binding = 8) writeonly buffer QOut { float q_out[]; };
layout(binding = 9) buffer KCache { uint kc[]; };
layout(binding = 10) buffer VCache { uint vc[]; };
layout(binding = 11) readonly buffer Freq { float freq[]; };

#include "mv.glsl"

layout(push_constant) uniform Push { // sym_vk_push_mv_qkv
    uint n_in, n_tok, x_off, g_off, wq_off, wk_off, wv_off, bq_off, bk_off, bv_off;
    uint q_off, q_stride, kc_off, vc_off, kv_stride;
    uint n_head, n_head_kv, head_dim, pos0, freq_off, flags;
    float eps, freq_scale;
} p;

#define MV_N_IN p.n_in
#define MV_N_TOK p.n_tok
#define MV_X_OFF p.x_off
#define MV_G_OFF p.g_off
#define MV_EPS p.eps

const uint F_VEC = 8u, F_NEOX = 16u, F_BQ = 32u, F_BK = 64u, F_BV = 128u;

float bias_of(uint m, uint r) {
    if (m == 0u) return (p.flags & F_BQ) != 0u ? bq[p.bq_off + r] : 0.0;
    if (m == 1u) return (p.flags & F_BK) != 0u ? bk[p.bk_off + r] : 0.0;
    return (p.flags & F_BV) != 0u ? bv[p.bv_off + r] : 0.0;
}

void cache_store(uint m, uint e, float v) {
    if (CDTYPE == DT_F32) {
        if (m == 1u)
            kc[e] = floatBitsToUint(v);
        else
            vc[e] = floatBitsToUint(v);
        return;
    }
    uint sh = (e & 1u) * 16u, bits = f32_to_type(v, CDTYPE) << sh;
    uint keep = sh == 0u ? 0xffff0000u : 0x0000ffffu;
    if (m == 1u) {
        atomicAnd(kc[e >> 1], keep);
        atomicOr(kc[e >> 1], bits);
    } else {
        atomicAnd(vc[e >> 1], keep);
        atomicOr(vc[e >> 1], bits);
    }
}

// RoPE (Q, K), bias, and the stores of one pair of rows r0, r1 of matrix m.
void pair_out(uint m, uint i, uint r0, uint r1, float acc[NDR * MAXT], float ss[MAXT]) {
    float b0 = bias_of(m, r0), b1 = bias_of(m, r1);
    [[unroll]] for (uint t = 0u; t < MAXT; t++) {
        if (t >= p.n_tok) break;
        float a = acc[t] * ss[t] + b0, b = acc[MAXT + t] * ss[t] + b1;
        if (m < 2u) {
            vec2 cs = rope_cos_sin(int(p.pos0 + t), p.freq_scale, freq[p.freq_off + i]);
            float ra = a * cs.x - b * cs.y, rb = a * cs.y + b * cs.x;
            a = ra;
            b = rb;
        }
        if (m == 0u) {
            q_out[p.q_off + t * p.q_stride + r0] = a;
            q_out[p.q_off + t * p.q_stride + r1] = b;
        } else {
            uint e = (m == 1u ? p.kc_off : p.vc_off) + t * p.kv_stride;
            cache_store(m, e + r0, a);
            cache_store(m, e + r1, b);
        }
    }
}

void main() {
    const bool mv_norm = NORM; // a specialization constant: no norm code in plain products
    bool mv_vec = (p.flags & F_VEC) != 0u;
    bool neox = (p.flags & F_NEOX) != 0u;
    uint half_ = p.head_dim / 2u;
    uint q_pairs = p.n_head * half_, kv_pairs = p.n_head_kv * half_;
    // whole workgroups per matrix (Q, then K, then V), so that the matrix is known for the
    // whole loop: each gets its own copy of the loop, with its loads free of selection
    uint wg_q = (q_pairs + RPW - 1u) / RPW, wg_kv = (kv_pairs + RPW - 1u) / RPW;
    uint wgi = lin_group(), m = 0u, n_pairs = q_pairs, off = p.wq_off;
    if (wgi >= wg_q + wg_kv) {
        m = 2u, wgi -= wg_q + wg_kv, n_pairs = kv_pairs, off = p.wv_off;
    } else if (wgi >= wg_q) {
        m = 1u, wgi -= wg_q, n_pairs = kv_pairs, off = p.wk_off;
    }
    uint first = wgi * RPW, ng = mv_n_groups();
    uint n_it = (RPW + ng - 1u) / ng; // the same for every group: mv_item has barriers
    if (m == 0u) {
#define MV_W4(r, mm, i) wq4[i]
#define MV_W1(r, mm, i) wq[i]
#include "mv_qkv_loop.glsl"
#undef MV_W4
#undef MV_W1
    } else if (m == 1u) {
#define MV_W4(r, mm, i) wk4[i]
#define MV_W1(r, mm, i) wk[i]
#include "mv_qkv_loop.glsl"
#undef MV_W4
#undef MV_W1
    } else {
#define MV_W4(r, mm, i) wv4[i]
#define MV_W1(r, mm, i) wv[i]
#include "mv_qkv_loop.glsl"
#undef MV_W4
#undef MV_W1
    }
}
