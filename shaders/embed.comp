#version 450
// embed: out[t][i] = table[ids[t]][i] as f32. The table may be bound in row slices (a table
// larger than maxStorageBufferRange); tokens whose id falls outside [row_lo, row_hi) are left to
// the dispatch of their slice. Grid: x over columns, y (with a loop) over tokens.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Table { uint table[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_embed
    uint n_cols, n_tok, row_lo, row_hi;
    uint table_off, ids_off, out_off;
} p;

void main() {
    uint i = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    if (i >= p.n_cols) return;
    for (uint t = gl_WorkGroupID.y; t < p.n_tok; t += gl_NumWorkGroups.y) {
        uint id = uint(ids[p.ids_off + t]);
        if (id < p.row_lo || id >= p.row_hi) continue;
        uint e = p.table_off + (id - p.row_lo) * p.n_cols + i;
        out_[p.out_off + t * p.n_cols + i] = elem_in_word(table[word_of(e, DTYPE)], e, DTYPE);
    }
}
