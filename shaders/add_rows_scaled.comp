#version 450
// add_rows_scaled: out[rows[i]][c] += scales[i] * a[i][c] for i < n, c < n_cols. The rows are
// strictly increasing, so no two invocations touch one element; rows[i] - row0 is a row's place
// in the bound window of out. Grid: x over columns, y (with a loop) over i.
#include "common.glsl"
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer Rows { int rows[]; };
layout(binding = 2) readonly buffer Scales { float scales[]; };
layout(binding = 3) buffer Out { float out_[]; };

layout(push_constant) uniform Push { // sym_vk_push_add_rows
    uint n_cols, n, a_off, out_off, idx_off, row0;
} p;

void main() {
    uint c = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    if (c >= p.n_cols) return;
    for (uint i = gl_WorkGroupID.y; i < p.n; i += gl_NumWorkGroups.y) {
        uint o = p.out_off + (uint(rows[p.idx_off + i]) - p.row0) * p.n_cols + c;
        out_[o] = out_[o] + scales[p.idx_off + i] * a[p.a_off + i * p.n_cols + c];
    }
}
