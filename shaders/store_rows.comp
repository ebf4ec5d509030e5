#version 450
// store_rows: f32 source elements -> cache elements [cache_off, cache_off + n_elems) converted to
// the cache's type (DTYPE) with round-to-nearest-even. For 16-bit caches one thread owns one
// 32-bit word, so a region that starts or ends inside a word keeps the neighbour's half intact.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Src { float src[]; };
layout(binding = 1) buffer Cache { uint cache[]; };

layout(push_constant) uniform Push { // sym_vk_push_store
    uint n_elems, src_off, cache_off;
} p;

void main() {
    uint j = lin_group() * WG + gl_LocalInvocationID.x;
    if (DTYPE == DT_F32) {
        if (j < p.n_elems) cache[p.cache_off + j] = floatBitsToUint(src[p.src_off + j]);
        return;
    }
    uint first = p.cache_off >> 1, last = (p.cache_off + p.n_elems - 1u) >> 1;
    uint wi = first + j;
    if (wi > last) return;
    uint e0 = wi * 2u, e1 = e0 + 1u; // cache elements in this word
    uint word = 0u;
    bool in0 = e0 >= p.cache_off, in1 = e1 < p.cache_off + p.n_elems;
    if (!in0 || !in1) word = cache[wi];
    if (in0) word = (word & 0xffff0000u) | f32_to_type(src[p.src_off + (e0 - p.cache_off)], DTYPE);
    if (in1) word = (word & 0x0000ffffu) | (f32_to_type(src[p.src_off + (e1 - p.cache_off)], DTYPE) << 16);
    cache[wi] = word;
}
