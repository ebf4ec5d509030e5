#version 450
// scale_cols: w[r][i] = round(w[r][i] * g[i]) for the n_rows rows of the bound window of w, in
// w's type (DTYPE f32 or f16; f16 rounded to nearest even as base/half.h does, so the result is
// the reference's bit for bit); g of type GTYPE. An invocation owns one 32-bit word of w (two
// f16 elements, or one f32): no two invocations write one word. Grid: x over words of a row, y
// (with a loop) over rows.
#include "common.glsl"
layout(local_size_x_id = 0) in;
layout(constant_id = 4) const uint GTYPE = 0;

layout(binding = 0) buffer W { uint w[]; };
layout(binding = 1) readonly buffer G { uint g[]; };

layout(push_constant) uniform Push { // sym_vk_push_scale_cols
    uint n_cols, n_rows, w_off, g_off;
} p;

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
        if (DTYPE == DT_F32) {
            w[at] = floatBitsToUint(uintBitsToFloat(w[at]) * g_at(wi));
        } else {
            uint v = w[at];
            uint i0 = wi * 2u;
            uint lo = f32_to_f16(f16_to_f32(v & 0xffffu) * g_at(i0));
            uint hi = i0 + 1u < p.n_cols ? f32_to_f16(f16_to_f32(v >> 16) * g_at(i0 + 1u)) : (v >> 16);
            w[at] = lo | (hi << 16);
        }
    }
}
