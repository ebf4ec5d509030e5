// mv.glsl — the dot-product core of the subgroup matrix-vector kernels (mv, mv_gate, mv_qkv).
// KS subgroups (a group) compute up to NDR "dot rows" (rows of one or more weight matrices)
// against the n_tok (<= MAXT) rows of x, RMS-normalized on the fly when asked: x is binding 0
// (f32), the norm weight binding 1 (type NDTYPE); the including kernel binds the weights and
// defines MV_W4(r, m, i) (uvec4 i of matrix m for dot row r) and MV_W1(r, m, i) (word i) first.
// The dot products themselves are mv_item.glsl, included inside the kernel's loop (its sums
// live in the kernel's own registers: arrays passed to functions would not).
const uint MAXT = 8u;
layout(constant_id = 6) const uint NDTYPE = 0;
layout(constant_id = 8) const uint SGS = 32; // the device's subgroup size (SPIR-V 1.5: fixed)
layout(constant_id = 9) const uint KS = 1;   // subgroups sharing each group of dot rows
layout(constant_id = 10) const bool NORM = false; // RMSNorm of x on the fly (g, eps)
layout(constant_id = 11) const bool UNIT_G = false; // with NORM: g is 1 (folded into W): no g loads
const uint MV_MAX_SG = WG / SGS;
shared float mv_red[MV_MAX_SG * (NDR + 1u) * MAXT];

layout(binding = 0) readonly buffer MvX { float x[]; };
layout(binding = 0) readonly buffer MvX4 { vec4 x4[]; };
layout(binding = 1) readonly buffer MvG { uint g[]; };
layout(binding = 1) readonly buffer MvG4 { uvec4 g4[]; };

// The group of this subgroup, the number of groups, and this invocation's lane in its group.
// The count comes from specialization constants, so that loop bounds are known to the
// compiler. When one group is the whole workgroup, lanes are the invocation index (as in
// matvec.comp; the reduction spans every subgroup, whatever their layout).
const uint MV_NG = WG / SGS / KS;
uint mv_group() { return MV_NG == 1u ? 0u : gl_SubgroupID / KS; }
uint mv_n_groups() { return MV_NG; }
uint mv_lane() {
    return MV_NG == 1u ? gl_LocalInvocationID.x
                       : (gl_SubgroupID % KS) * SGS + gl_SubgroupInvocationID;
}
bool mv_leader() { return gl_SubgroupID % KS == 0u && gl_SubgroupInvocationID == 0u; }
