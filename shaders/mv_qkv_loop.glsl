// mv_qkv_loop.glsl — the pair loop of mv_qkv.comp, included once per matrix with MV_W4/MV_W1
// naming that matrix's bindings (m, off, n_pairs, first, n_it, neox, half_ set by the caller).
for (uint it = 0u; it < n_it; it++) {
    uint kk = it * ng + mv_group(), pr = first + kk;
    bool live = kk < RPW && pr < n_pairs;
    uint j = live ? pr : 0u;
    uint h = j / half_, i = j % half_;
    uint r0 = h * p.head_dim + (neox ? i : 2u * i);
    uint r1 = r0 + (neox ? half_ : 1u);
    uint mv_ndr = live ? 2u : 0u;
    uint dr_mat[NDR], dr_base[NDR];
    dr_mat[0] = m;
    dr_mat[1] = m;
    dr_base[0] = off + r0 * p.n_in;
    dr_base[1] = off + r1 * p.n_in;
#include "mv_item.glsl"
    if (live && mv_leader()) pair_out(m, i, r0, r1, acc, ss);
}
