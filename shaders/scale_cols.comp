#version 450
// scale_cols: w[r][i] = round(w[r][i] * g[i]) for the n_rows rows of the bound window of w, in
// w's type (DTYPE f32 or f16; f16 rounded to nearest even as base/half.h does, so the result is
// the reference's bit for bit); g of type GTYPE. An invocation owns one 32-bit word of w (two
// f16 elements, or one f32): no two invocations write one word. A product of finite values that
// does not fit w's type (inf after rounding) sets flag[0]; with apply 0 nothing is written (the
// host checks first, then applies). Grid: x over words of a row, y (with a loop) over rows.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint GTYPE = 0;

layout(binding = 0) buffer W { uint w[]; };
layout(binding = 1) readonly buffer G { uint g[]; };
layout(binding = 2) buffer Flag { uint flag[]; };

layout(push_constant) uniform Push { // sym_vk_push_scale_cols
    uint n_cols, n_rows, w_off, g_off, apply;
} p;

// The f16 bits of a * b, flagging a finite product that rounds to infinity.
uint scaled_f16(uint h, float s) {
    float a = f16_to_f32(h), v = a * s;
    uint r = f32_to_f16(v);
    if ((r & 0x7fffu) == 0x7c00u && !isinf(a) && !isinf(s)) atomicOr(flag[0], 1u);
    return r;
}

float g_at(uint i) {
    uint e = p.g_off + i;
    return elem_in_word(g[word_of(e, GTYPE)], e, GTYPE);
}

void main() {
    // f16 rows start on a word boundary only when n_cols and w_off are even: the host sends f16
    // weights here only then
    uint per_word = DTYPE == DT_F32 ? 1u : 2u;
    uint n_words = (p.n_cols + per_word - 1u) / per_word;
    uint wi = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    if (wi >= n_words) return;
    for (uint r = gl_WorkGroupID.y; r < p.n_rows; r += gl_NumWorkGroups.y) {
        uint at = (p.w_off + r * p.n_cols) / per_word + wi;
        uint nv;
        if (DTYPE == DT_F32) {
            float a = uintBitsToFloat(w[at]), s = g_at(wi), v = a * s;
            if (isinf(v) && !isinf(a) && !isinf(s)) atomicOr(flag[0], 1u);
            nv = floatBitsToUint(v);
        } else {
            uint v = w[at];
            uint i0 = wi * 2u;
            uint lo = scaled_f16(v & 0xffffu, g_at(i0));
            uint hi = i0 + 1u < p.n_cols ? scaled_f16(v >> 16, g_at(i0 + 1u)) : (v >> 16);
            nv = lo | (hi << 16);
        }
        if (p.apply != 0u) w[at] = nv;
    }
}
